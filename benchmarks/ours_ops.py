"""`ours-ops`: our step written with bare Tensor operations only (no dl.nn, no dl.functional, a hand-written
in-place update), to separate the engine's cost from the layers' and the functional checks' cost.

    Z = W @ A + b;  tanh: Z.tanh();  relu: dl.maximum(Z, 0);  sigmoid: 0.5 * (tanh(Z / 2) + 1)
    BCE = -(Y * log A + (1 - Y) * log(1 - A)).mean();  softmax CE = -(Y * log_softmax(Z)).sum() / m
"""
from __future__ import annotations

import tinygrad_dl as dl

from benchmarks.ours import Chain  # noqa: F401 - the chain is already bare Tensor operations

name = "ours-ops"


def available():
    return True, f"tinygrad_dl {getattr(dl, '__version__', '?')} (bare Tensor operations, manual update)"


def _sigmoid(Z):
    return 0.5 * ((Z * 0.5).tanh() + 1.0)


def _cost(params, X, Y, hidden, output):
    A, L = X, len(params) // 2
    for l in range(L - 1):
        Z = params[2 * l] @ A + params[2 * l + 1]
        A = Z.tanh() if hidden == "tanh" else dl.maximum(Z, 0.0)
    Z = params[-2] @ A + params[-1]
    if output == "sigmoid":
        A = _sigmoid(Z)
        return -(Y * A.log() + (1.0 - Y) * (1.0 - A).log()).mean()
    Zs = Z - Z.data.max(axis=0, keepdims=True)   # a constant shift: softmax is unchanged
    logp = Zs - Zs.exp().sum(axis=0, keepdims=True).log()
    return -(Y * logp).sum() * (1.0 / Z.shape[1])


class MLP:
    def __init__(self, problem):
        self.params = [dl.Tensor(p, requires_grad=True) for p in problem.params]   # copies
        self.X, self.Y, self.lr = problem.X, problem.Y, problem.lr
        self.hidden, self.output = problem.hidden, problem.output

    def step(self):
        _cost(self.params, self.X, self.Y, self.hidden, self.output).backward()
        lr = self.lr
        for p in self.params:
            p.data -= lr * p.grad
            p.grad = None

    def gradients(self):
        J = _cost(self.params, self.X, self.Y, self.hidden, self.output)
        J.backward()
        grads = [p.grad.copy() for p in self.params]
        for p in self.params:
            p.grad = None
        return float(J.item()), grads

    def param_arrays(self):
        return [p.data for p in self.params]
