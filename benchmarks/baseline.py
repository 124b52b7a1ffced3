"""The baseline: the course's vectorized backprop written by hand in NumPy (notes 1.2.1 algorithm 1.3, 2.3, 2.5).

    Z[l] = W[l] A[l-1] + b[l],  A[l] = g(Z[l])
    dZ[L] = A[L] - Y                                   (sigmoid + binary cross-entropy, softmax + cross-entropy)
    dW[l] = (1/m) dZ[l] A[l-1]^T,  db[l] = (1/m) sum(dZ[l], axis=1)
    dZ[l-1] = W[l]^T dZ[l] * g'(Z[l-1])                 tanh' = 1 - A**2, relu' = (Z > 0)
    W := W - alpha dW,  b := b - alpha db              (in place)

This is the physical limit of a NumPy autograd: the same arithmetic with no graph. The 1/m is applied once to dZ[L]
(the same numbers, one multiplication fewer per layer), dX is never computed (X needs no gradient), and the update
allocates nothing (each fresh dW is scaled by alpha in place, then subtracted in place).
"""
from __future__ import annotations

import numpy as np

name = "numpy"


def available():
    return True, f"numpy {np.__version__} (hand-written course formulas)"


class MLP:
    """One training step of problem's network in plain NumPy; `params` are private copies, updated in place."""

    def __init__(self, problem):
        self.X, self.Y, self.lr = problem.X, problem.Y, problem.lr
        self.hidden, self.output = problem.hidden, problem.output
        self.params = [p.copy() for p in problem.params]
        self.L = len(self.params) // 2

    def cost_and_gradients(self):
        X, Y, params, L = self.X, self.Y, self.params, self.L
        m = X.shape[1]
        A, As = X, [X]
        for l in range(L - 1):
            Z = params[2 * l] @ A + params[2 * l + 1]
            A = np.tanh(Z) if self.hidden == "tanh" else np.maximum(Z, 0)
            As.append(A)
        Z = params[2 * L - 2] @ A + params[2 * L - 1]
        if self.output == "sigmoid":
            A = 1 / (1 + np.exp(-Z))
            cost = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m
        else:
            Zs = Z - Z.max(axis=0, keepdims=True)
            T = np.exp(Zs)
            S = T.sum(axis=0, keepdims=True)
            A = T / S
            cost = -np.sum(Y * (Zs - np.log(S))) / m
        dZ = (A - Y) * (1 / m)
        grads = [None] * (2 * L)
        for l in range(L - 1, -1, -1):
            A_prev = As[l]
            grads[2 * l] = dZ @ A_prev.T
            grads[2 * l + 1] = dZ.sum(axis=1, keepdims=True)
            if l > 0:
                dA = params[2 * l].T @ dZ
                dZ = dA * (1 - A_prev * A_prev) if self.hidden == "tanh" else dA * (A_prev > 0)
        return cost, grads

    def step(self):
        _, grads = self.cost_and_gradients()
        lr = self.lr
        for p, g in zip(self.params, grads):
            g *= lr      # the gradients are fresh arrays: scale them in place, then W -= lr dW allocates nothing
            p -= g

    def gradients(self):
        cost, grads = self.cost_and_gradients()
        return float(cost), grads

    def param_arrays(self):
        return self.params


class Chain:
    """y = x; N times y = y * c; J = sum(y). Backward: dJ/dy = 1, then N times g = g * c."""

    def __init__(self, problem):
        self.x, self.c, self.n = problem.x.copy(), problem.factor, problem.n_ops

    def forward(self):
        y, c = self.x, self.c
        for _ in range(self.n):
            y = y * c
        return y.sum()

    def backward(self, J):
        g, c = np.ones_like(self.x), self.c
        for _ in range(self.n):
            g = g * c
        return g

    def grad(self):
        return self.backward(self.forward())
