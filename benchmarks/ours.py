"""Our library's training step, written the way a user writes it with the public API.

`ours` (this module): one model per workload built from `dl.nn` (Dense, Tanh, ReLU, Sigmoid in a Sequential), the
cost from `dl.functional` (binary_cross_entropy, cross_entropy), and `dl.optim.GradientDescent`. Where a layer
of the public API is missing, the same composition of Tensor operations is used instead (`API` says which).
`ours-ops` (module `ours_ops`): the same step with bare Tensor operations (`W @ A + b`, `.tanh()`, ...), to show
what the layers and the functional checks cost on top of the engine.

To change how a workload is written, edit its function below (one per workload); `MLP` needs no edit.
"""
from __future__ import annotations

import numpy as np

import tinygrad_dl as dl
from benchmarks.workloads import TapeChain

name = "ours"

try:
    import tinygrad_dl.functional as F
except ImportError:
    F = None
try:
    import tinygrad_dl.nn as nn
except ImportError:
    nn = None
try:
    from tinygrad_dl.optim import GradientDescent
except ImportError:
    GradientDescent = None

API = {
    "layers": "dl.nn.Sequential(Dense, Tanh/ReLU, Sigmoid)" if nn is not None else "W @ A + b, Tensor methods",
    "costs": "F.binary_cross_entropy, F.cross_entropy" if F is not None else "compositions of Tensor ops",
    "update": "dl.optim.GradientDescent" if GradientDescent is not None else "p.data -= lr * p.grad",
}


def available():
    return True, f"tinygrad_dl {getattr(dl, '__version__', '?')} ({'; '.join(API.values())})"


# ---------------------------------------------------------------- compositions used when a layer is missing

def sigmoid(Z):
    """0.5 * (tanh(z / 2) + 1): exact and stable for every finite z."""
    return F.sigmoid(Z) if F is not None else 0.5 * ((Z * 0.5).tanh() + 1.0)


def relu(Z):
    return F.relu(Z) if F is not None else dl.maximum(Z, 0.0)


def bce(A, Y):
    """J = -(1/m) sum(Y log A + (1-Y) log(1-A)) for Y of shape (1, m)."""
    if F is not None:
        return F.binary_cross_entropy(A, Y)
    return -(Y * A.log() + (1.0 - Y) * (1.0 - A).log()).mean()


def softmax_ce(Z, Y):
    """J = -(1/m) sum(Y * log softmax(Z)) over axis 0, Y one-hot (n_classes, m)."""
    if F is not None:
        return F.cross_entropy(Z, Y)
    m = Z.shape[1]
    Zs = Z - Z.data.max(axis=0, keepdims=True)        # a constant shift: softmax is unchanged
    logp = Zs - Zs.exp().sum(axis=0, keepdims=True).log()
    return -(Y * logp).sum() * (1.0 / m)


class _Dense:
    """Z = W @ A_prev + b, for when dl.nn is missing."""

    def __init__(self, n_in, n_out, dtype):
        self.W = dl.Tensor(np.zeros((n_out, n_in), dtype=dtype), requires_grad=True)
        self.b = dl.Tensor(np.zeros((n_out, 1), dtype=dtype), requires_grad=True)

    def __call__(self, A_prev):
        return self.W @ A_prev + self.b


def _dense(n_in, n_out, dtype):
    return nn.Dense(n_in, n_out, dtype=dtype) if nn is not None else _Dense(n_in, n_out, dtype)


def _sequential(*layers):
    if nn is not None:
        return nn.Sequential(*layers)
    def forward(A):
        for layer in layers:
            A = layer(A)
        return A
    forward.layers = list(layers)
    return forward


def _act(kind):
    if nn is not None:
        return {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}[kind]()
    return {"tanh": lambda Z: Z.tanh(), "relu": relu, "sigmoid": sigmoid}[kind]


# ---------------------------------------------------------------- one model and cost per workload
# Each returns (dense layers in order, cost(X, Y) -> scalar Tensor).

def planar(dt):
    """X (2, 400) -> 4 tanh -> 1 sigmoid, binary cross-entropy."""
    l1, l2 = _dense(2, 4, dt), _dense(4, 1, dt)
    model = _sequential(l1, _act("tanh"), l2, _act("sigmoid"))
    return [l1, l2], lambda X, Y: bce(model(X), Y)


def deep(dt):
    """X (12288, 209) -> 20 -> 7 -> 5 relu -> 1 sigmoid, binary cross-entropy."""
    ls = [_dense(12288, 20, dt), _dense(20, 7, dt), _dense(7, 5, dt), _dense(5, 1, dt)]
    model = _sequential(ls[0], _act("relu"), ls[1], _act("relu"), ls[2], _act("relu"), ls[3], _act("sigmoid"))
    return ls, lambda X, Y: bce(model(X), Y)


def digits(dt):
    """X (64, 1797) -> 256 -> 256 relu -> 10 softmax cross-entropy (on the logits)."""
    ls = [_dense(64, 256, dt), _dense(256, 256, dt), _dense(256, 10, dt)]
    model = _sequential(ls[0], _act("relu"), ls[1], _act("relu"), ls[2])
    return ls, lambda X, Y: softmax_ce(model(X), Y)


def tiny_batch(dt):
    """X (784, 64) -> 128 relu -> 10 softmax cross-entropy (on the logits)."""
    ls = [_dense(784, 128, dt), _dense(128, 10, dt)]
    model = _sequential(ls[0], _act("relu"), ls[1])
    return ls, lambda X, Y: softmax_ce(model(X), Y)


MODELS = {"planar": planar, "deep": deep, "digits": digits, "tiny-batch": tiny_batch}


def _tiny_model(problem):
    """The same network family at the tiny sizes of the smoke test (layer sizes from the problem)."""
    dims, dt = problem.layer_dims, problem.dtype
    ls = [_dense(dims[i], dims[i + 1], dt) for i in range(len(dims) - 1)]
    layers = []
    for i, l in enumerate(ls):
        layers.append(l)
        if i < len(ls) - 1:
            layers.append(_act(problem.hidden))
    if problem.output == "sigmoid":
        layers.append(_act("sigmoid"))
        model = _sequential(*layers)
        return ls, lambda X, Y: bce(model(X), Y)
    model = _sequential(*layers)
    return ls, lambda X, Y: softmax_ce(model(X), Y)


class _ManualGD:
    """W := W - lr * dW in place, then forget the gradients (what GradientDescent does)."""

    def __init__(self, params, lr):
        self.params, self.lr = params, lr

    def step(self):
        for p in self.params:
            p.data -= self.lr * p.grad

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class MLP:
    def __init__(self, problem):
        full = problem.layer_dims == _FULL_DIMS.get(problem.name)
        layers, self.cost = (MODELS[problem.name](problem.dtype) if full else _tiny_model(problem))
        self.params = []
        for layer in layers:
            self.params += [layer.W, layer.b]
        for p, value in zip(self.params, problem.params):   # the shared initial values
            if p.shape != value.shape or p.dtype != value.dtype:
                raise ValueError(f"ours: parameter {p.shape} {p.dtype} does not match {value.shape} {value.dtype}")
            p.data[...] = value
        self.X, self.Y = problem.X, problem.Y
        opt_cls = GradientDescent if GradientDescent is not None else _ManualGD
        self.opt = opt_cls(self.params, lr=problem.lr)

    def step(self):
        J = self.cost(self.X, self.Y)
        J.backward()
        self.opt.step()
        self.opt.zero_grad()

    def gradients(self):
        J = self.cost(self.X, self.Y)
        J.backward()
        grads = [p.grad.copy() for p in self.params]
        self.opt.zero_grad()
        return float(J.item()), grads

    def param_arrays(self):
        return [p.data for p in self.params]


_FULL_DIMS = {"planar": (2, 4, 1), "deep": (12288, 20, 7, 5, 1), "digits": (64, 256, 256, 10),
              "tiny-batch": (784, 128, 10)}


class Chain(TapeChain):
    def leaf(self, array):
        return dl.Tensor(array, requires_grad=True)
