"""The workloads: shapes, data and initial parameters, as plain NumPy (no framework is imported here).

Every MLP workload is the course's L-layer network with examples as COLUMNS (notes 2.5):
X (n_x, m), Y (n_y, m), W[l] (n[l], n[l-1]), b[l] (n[l], 1), Z[l] = W[l] @ A[l-1] + b[l].
The hidden activation is tanh or relu; the output is a sigmoid with binary cross-entropy, or a softmax with
cross-entropy over axis 0. Costs average over the m examples.

The chain workload is y = x; N times y = y * CHAIN_FACTOR; J = sum(y): dJ/dx = CHAIN_FACTOR**N everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MLP_WORKLOADS = ("planar", "deep", "digits", "tiny-batch")
WORKLOADS = MLP_WORKLOADS + ("chain",)
CHAIN_SIZES = (10_000, 100_000, 1_000_000)
CHAIN_FACTOR = 1.0000001
CHAIN_SHAPE = (4, 4)
LEARNING_RATE = 0.01


@dataclass
class MLPProblem:
    """One MLP training problem: data, initial parameters [W1, b1, W2, b2, ...] and the network's description."""

    name: str
    layer_dims: tuple          # (n_x, n1, ..., n_L)
    hidden: str                # "tanh" or "relu"
    output: str                # "sigmoid" (with binary cross-entropy) or "softmax" (with cross-entropy)
    X: np.ndarray
    Y: np.ndarray              # (1, m) of 0/1 for sigmoid; one-hot (n_L, m) for softmax
    params: list               # initial [W1, b1, ..., WL, bL], in X's dtype
    lr: float = LEARNING_RATE
    labels: np.ndarray | None = None   # (m,) integer classes, for softmax outputs (torch wants them)
    note: str = ""

    @property
    def m(self) -> int:
        return self.X.shape[1]

    @property
    def dtype(self):
        return self.X.dtype

    def param_names(self) -> list:
        names = []
        for l in range(1, len(self.layer_dims)):
            names += [f"W{l}", f"b{l}"]
        return names

    def describe(self) -> str:
        dims = " -> ".join(str(d) for d in self.layer_dims[1:-1])
        out = f"{self.layer_dims[-1]} {self.output}"
        loss = "binary cross-entropy" if self.output == "sigmoid" else "softmax cross-entropy"
        return f"X {self.X.shape} -> {dims} {self.hidden} -> {out}, {loss}"


@dataclass
class ChainProblem:
    """y = x; n_ops times y = y * factor; J = sum(y)."""

    n_ops: int
    x: np.ndarray
    factor: float = CHAIN_FACTOR
    name: str = "chain"
    note: str = field(default="")

    @property
    def dtype(self):
        return self.x.dtype

    def describe(self) -> str:
        return f"x {self.x.shape}; {self.n_ops} times y = y * {self.factor}; J = sum(y)"

    def expected_grad(self) -> np.ndarray:
        """dJ/dx = factor**n_ops, computed in float64 (the oracle for every implementation)."""
        return np.full(self.x.shape, float(self.factor) ** self.n_ops)


def planar_flower(m: int, rng: np.random.Generator):
    """The course's 'flower' data set (two classes of petals), generated: X (2, m), Y (1, m)."""
    n_per_class = m // 2
    X = np.zeros((m, 2))
    Y = np.zeros((m, 1))
    a = 4.0  # maximum ray of the flower
    for j in range(2):
        ix = range(n_per_class * j, n_per_class * (j + 1))
        t = np.linspace(j * 3.12, (j + 1) * 3.12, n_per_class) + rng.standard_normal(n_per_class) * 0.2
        r = a * np.sin(4 * t) + rng.standard_normal(n_per_class) * 0.2
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y[ix] = j
    return X.T.copy(), Y.T.copy()


def _one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    Y = np.zeros((n_classes, labels.shape[0]))
    Y[labels, np.arange(labels.shape[0])] = 1.0
    return Y


def _init_params(layer_dims, rng, scale: str):
    """W[l] = randn * sqrt(k / n[l-1]) (k = 1 'xavier' as in the course's deep net, k = 2 'he', or 0.01 'small');
    b[l] small random (not zero) so that the gradient check also exercises the bias path."""
    params = []
    for l in range(1, len(layer_dims)):
        n, n_prev = layer_dims[l], layer_dims[l - 1]
        if scale == "small":
            s = 0.01
        elif scale == "he":
            s = np.sqrt(2.0 / n_prev)
        else:
            s = np.sqrt(1.0 / n_prev)
        params.append(rng.standard_normal((n, n_prev)) * s)
        params.append(rng.standard_normal((n, 1)) * 0.01)
    return params


def _load_digits():
    """scikit-learn's bundled digits (no download): X (64, 1797) scaled to [0, 1], integer labels (1797,)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    d = load_digits()
    return d.data.T / 16.0, d.target.astype(np.int64)


def make_mlp(name: str, dtype="float64", size: str = "full", seed: int = 0) -> MLPProblem:
    """Build the MLP workload `name` in `dtype`. size="tiny" gives the same network shape family at a few
    units and examples (for the smoke test's gradient checks)."""
    if name not in MLP_WORKLOADS:
        raise ValueError(f"make_mlp: unknown workload {name!r}; expected one of {MLP_WORKLOADS}")
    if size not in ("full", "tiny"):
        raise ValueError(f"make_mlp: size must be 'full' or 'tiny', got {size!r}")
    rng = np.random.default_rng(seed)
    tiny = size == "tiny"
    labels, note = None, ""
    if name == "planar":
        m = 20 if tiny else 400
        X, Y = planar_flower(m, rng)
        dims, hidden, output, scale = (2, 4, 1), "tanh", "sigmoid", "small"
        if tiny:
            scale = "xavier"   # bigger weights so that the tiny gradient check is not dominated by rounding
    elif name == "deep":
        n_x, m = (30, 9) if tiny else (12288, 209)
        X = rng.random((n_x, m))
        Y = (rng.random((1, m)) < 0.5).astype(np.float64)
        dims, hidden, output, scale = (n_x, 20, 7, 5, 1), "relu", "sigmoid", "xavier"
    elif name == "digits":
        loaded = None if tiny else _load_digits()
        if loaded is None:
            m = 25 if tiny else 1797
            X = rng.random((64, m))
            labels = rng.integers(0, 10, m)
            if not tiny:
                note = "scikit-learn not installed: random data of the digits' shape"
        else:
            X, labels = loaded
        dims = (64, 16, 16, 10) if tiny else (64, 256, 256, 10)
        hidden, output, scale = "relu", "softmax", "he"
        Y = _one_hot(labels, 10)
    else:  # tiny-batch
        n_x, m = (20, 8) if tiny else (784, 64)
        X = rng.random((n_x, m))
        labels = rng.integers(0, 10, m)
        Y = _one_hot(labels, 10)
        dims = (n_x, 12, 10) if tiny else (n_x, 128, 10)
        hidden, output, scale = "relu", "softmax", "he"
    params = _init_params(dims, rng, scale)
    dt = np.dtype(dtype)
    return MLPProblem(name=name, layer_dims=tuple(dims), hidden=hidden, output=output,
                      X=np.ascontiguousarray(X, dtype=dt), Y=np.ascontiguousarray(Y, dtype=dt),
                      params=[np.ascontiguousarray(p, dtype=dt) for p in params], labels=labels, note=note)


def make_chain(n_ops: int, dtype="float64", seed: int = 0) -> ChainProblem:
    """The chain workload: a (4, 4) tensor multiplied n_ops times by CHAIN_FACTOR."""
    if n_ops < 1:
        raise ValueError(f"make_chain: n_ops must be >= 1, got {n_ops}")
    rng = np.random.default_rng(seed)
    return ChainProblem(n_ops=n_ops, x=rng.standard_normal(CHAIN_SHAPE).astype(dtype))


class TapeChain:
    """The chain workload for a define-by-run autograd: y = x; N times y = y * c; J = y.sum(); backward from J.
    A subclass says how to make the leaf (`leaf`) and how to read its gradient as an ndarray (`to_numpy`)."""

    def __init__(self, problem):
        self.x = self.leaf(problem.x.copy())
        self.c, self.n = problem.factor, problem.n_ops

    def leaf(self, array):
        raise NotImplementedError

    def to_numpy(self, grad):
        return np.asarray(grad)

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
        return np.array(self.to_numpy(self.backward(self.forward())), copy=True)
