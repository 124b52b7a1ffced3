"""Our library's training step, written the way a user writes it with the public API.

One cost function per workload (planar, deep, digits, tiny_batch), built from `_dense`, `_sigmoid`, `_relu`,
`_bce` and `_softmax_ce`. Those helpers use `tinygrad_dl.functional` when it provides the function, and otherwise
the same composition of Tensor operations written out. The update is `dl.optim.GradientDescent` when it exists,
otherwise the same in-place rule W := W - lr dW written out. `API` records which path is in use (printed by run.py).

To move a workload onto `dl.nn` (Dense layers), change its function only; `MLP` needs no edit.
"""
from __future__ import annotations

import numpy as np

import tinygrad_dl as dl

name = "ours"

try:
    import tinygrad_dl.functional as F
except ImportError:
    F = None
try:
    from tinygrad_dl.optim import GradientDescent
except ImportError:
    GradientDescent = None


def _has(fn):
    return F is not None and hasattr(F, fn)


API = {
    "sigmoid": "F.sigmoid" if _has("sigmoid") else "0.5 * (tanh(z / 2) + 1)",
    "relu": "F.relu" if _has("relu") else "dl.maximum(z, 0)",
    "bce": "F.binary_cross_entropy" if _has("binary_cross_entropy") else "-(Y*log A + (1-Y)*log(1-A)).mean()",
    "softmax_ce": "F.cross_entropy" if _has("cross_entropy") else "shifted log-softmax composition",
    "update": "dl.optim.GradientDescent" if GradientDescent is not None else "p.data -= lr * p.grad",
}


def available():
    return True, f"tinygrad_dl {getattr(dl, '__version__', '?')} ({', '.join(API.values())})"


# ---------------------------------------------------------------- building blocks (public API first)

def _dense(W, b, A_prev):
    """Z = W @ A_prev + b (notes 2.5)."""
    return W @ A_prev + b


def _sigmoid(Z):
    if _has("sigmoid"):
        return F.sigmoid(Z)
    return 0.5 * ((Z * 0.5).tanh() + 1.0)   # exact and stable for every finite z


def _relu(Z):
    if _has("relu"):
        return F.relu(Z)
    return dl.maximum(Z, 0.0)


def _bce(A, Y):
    """J = -(1/m) sum(Y log A + (1-Y) log(1-A)) for Y of shape (1, m)."""
    if _has("binary_cross_entropy"):
        return F.binary_cross_entropy(A, Y)
    return -(Y * A.log() + (1.0 - Y) * (1.0 - A).log()).mean()


def _softmax_ce(Z, Y):
    """J = -(1/m) sum(Y * log softmax(Z)) over axis 0, Y one-hot (n_classes, m)."""
    if _has("cross_entropy"):
        return F.cross_entropy(Z, Y)
    m = Z.shape[1]
    Zs = Z - Z.data.max(axis=0, keepdims=True)        # a constant shift: softmax is unchanged
    logp = Zs - Zs.exp().sum(axis=0, keepdims=True).log()
    return -(Y * logp).sum() * (1.0 / m)


# ---------------------------------------------------------------- one cost function per workload

def planar(params, X, Y):
    """X (2, 400) -> 4 tanh -> 1 sigmoid, binary cross-entropy."""
    W1, b1, W2, b2 = params
    A1 = _dense(W1, b1, X).tanh()
    A2 = _sigmoid(_dense(W2, b2, A1))
    return _bce(A2, Y)


def deep(params, X, Y):
    """X (12288, 209) -> 20 -> 7 -> 5 relu -> 1 sigmoid, binary cross-entropy."""
    W1, b1, W2, b2, W3, b3, W4, b4 = params
    A1 = _relu(_dense(W1, b1, X))
    A2 = _relu(_dense(W2, b2, A1))
    A3 = _relu(_dense(W3, b3, A2))
    A4 = _sigmoid(_dense(W4, b4, A3))
    return _bce(A4, Y)


def digits(params, X, Y):
    """X (64, 1797) -> 256 -> 256 relu -> 10 softmax cross-entropy."""
    W1, b1, W2, b2, W3, b3 = params
    A1 = _relu(_dense(W1, b1, X))
    A2 = _relu(_dense(W2, b2, A1))
    return _softmax_ce(_dense(W3, b3, A2), Y)


def tiny_batch(params, X, Y):
    """X (784, 64) -> 128 relu -> 10 softmax cross-entropy."""
    W1, b1, W2, b2 = params
    A1 = _relu(_dense(W1, b1, X))
    return _softmax_ce(_dense(W2, b2, A1), Y)


COSTS = {"planar": planar, "deep": deep, "digits": digits, "tiny-batch": tiny_batch}


class _ManualGD:
    """W := W - lr * dW in place, then forget the gradients (what GradientDescent does)."""

    def __init__(self, params, lr):
        self.params, self.lr = params, lr

    def step(self):
        lr = self.lr
        for p in self.params:
            p.data -= lr * p.grad

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class MLP:
    def __init__(self, problem):
        self.cost = COSTS[problem.name]
        self.X, self.Y = problem.X, problem.Y
        self.params = [dl.Tensor(p.copy(), requires_grad=True, name=n)
                       for p, n in zip(problem.params, problem.param_names())]
        opt_cls = GradientDescent if GradientDescent is not None else _ManualGD
        self.opt = opt_cls(self.params, lr=problem.lr)

    def step(self):
        J = self.cost(self.params, self.X, self.Y)
        J.backward()
        self.opt.step()
        self.opt.zero_grad()

    def gradients(self):
        J = self.cost(self.params, self.X, self.Y)
        J.backward()
        grads = [p.grad.copy() for p in self.params]
        self.opt.zero_grad()
        return float(J.item()), grads

    def param_arrays(self):
        return [p.data for p in self.params]


class Chain:
    def __init__(self, problem):
        self.x = dl.Tensor(problem.x.copy(), requires_grad=True)
        self.c, self.n = problem.factor, problem.n_ops

    def forward(self):
        y, c = self.x, self.c
        for _ in range(self.n):
            y = y * c
        return y.sum()

    def backward(self, J):
        self.x.grad = None
        J.backward()
        return self.x.grad

    def grad(self):
        return self.backward(self.forward()).copy()
