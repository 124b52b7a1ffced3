"""Activations, costs, the L2 penalty and dropout: compositions of the primitives in ops.py, nothing else.

No function here knows a derivative: each one is a few Tensor operations, and backprop follows from the primitives.
Stability is part of the contract: for every finite input (|z| up to 1e3 and past the float64 exp limit ~709) the
values and gradients are finite and accurate to rounding, with no overflow or divide warnings. The recipes:

- never exponentiate a positive number: `exp(-|z|)` is built as `exp(z * s)` with a constant sign s = -1 where
  z >= 0 and +1 elsewhere, so each side carries its own slope (an `abs` would have slope 0 at z = 0, and
  sigmoid'(0) must be exactly 1/4);
- shift by a constant (detached) max before a softmax;
- feed `log` only safe inputs and choose the clamped value with `where` (no log(0) is ever evaluated);
- log(1 + x) for small x: `log(1 + x)` carries the gradient 1/(1 + x), exact to rounding, and a constant
  correction `np.log1p(x) - log(1 + x)` (at most ~1e-16, no gradient) restores the digits that 1 + x rounded away;
- NaN, +-inf and empty inputs give what PyTorch gives: a comparison is written so that NaN (for which every
  comparison is false) falls on the branch that carries it through, never on a constant.

Examples are columns: Z, A, Y have shape (n, m) and costs average over the m columns (the last axis).

    >>> import tinygrad_dl as dl, tinygrad_dl.functional as F
    >>> Z = dl.Tensor([[0.0, 2.0, -3.0]], requires_grad=True)
    >>> J = F.binary_cross_entropy_with_logits(Z, [[1.0, 0.0, 1.0]])
    >>> J.backward()
    >>> Z.grad                                  # (sigmoid(Z) - Y) / m; exactly (1/2 - 1)/3 at Z = 0
    array([[-0.16666667,  0.29359903, -0.31752471]])
"""
from __future__ import annotations

import numpy as np

from . import _checks
from .ops import where
from .tensor import Tensor

__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "softmax", "log_softmax", "logsumexp", "softplus",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "mse", "l2_penalty",
           "dropout"]

_LOG_FLOOR = -100.0                # PyTorch's clamp of log in binary cross-entropy
_TINY = float(np.exp(_LOG_FLOOR))  # log(x) > -100  <=>  x > exp(-100) (to rounding)


# ============================================================ helpers (values only: no graph)

def _tensor(x, where_: str, what: str = "input") -> Tensor:
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where_}: {what} must be a Tensor or an array of floats; got {type(x).__name__} ({e})") \
            from None


def _const(cond, a, b, dtype):
    """The constant array `a where cond else b` in `dtype` (one allocation)."""
    return np.where(cond, dtype.type(a), dtype.type(b))


def _per_example(A: Tensor) -> float:
    """1/m, with m the number of examples (columns, the last axis); NaN for m = 0, as a mean over nothing."""
    m = A.shape[-1] if A.ndim else 1
    return 1.0 / m if m else np.nan


def _target(where_: str, A: Tensor, Y, a_name: str = "A"):
    """Y as an ndarray in A's dtype (or as a Tensor if it requires grad), of exactly A's shape."""
    if isinstance(Y, Tensor):
        if Y.shape != A.shape:
            raise ValueError(f"{where_}: Y has shape {Y.shape} but {a_name} has shape {A.shape}; they must match "
                             f"exactly (no broadcasting): one column per example, e.g. (1, m)")
        if Y.requires_grad:
            return Y
        Y = Y.data
    Y = np.asarray(Y)
    if Y.dtype.kind not in "biuf":
        raise TypeError(f"{where_}: Y must hold numbers, got dtype {Y.dtype}")
    if Y.shape != A.shape:
        raise ValueError(f"{where_}: Y has shape {Y.shape} but {a_name} has shape {A.shape}; they must match "
                         f"exactly (no broadcasting): one column per example, e.g. (1, m)")
    return Y if Y.dtype == A.dtype else Y.astype(A.dtype)


def _axis(z: Tensor, axis, where_: str) -> int:
    if not _checks.is_int(axis):
        raise TypeError(f"{where_}: axis must be an int, got {axis!r}")
    if not -z.ndim <= axis < max(z.ndim, 1):
        raise ValueError(f"{where_}: axis {axis} is out of range for shape {z.shape}")
    if z.ndim == 0:
        raise ValueError(f"{where_}: needs at least one axis; got a scalar")
    return int(axis)


def _shift(z: Tensor, axis: int) -> np.ndarray:
    """The max over `axis` as a constant: subtracting it changes no softmax, and no exp can overflow
    (-inf over an empty axis)."""
    return np.max(z.data, axis=axis, keepdims=True, initial=-np.inf)


def _log1p(x: Tensor) -> Tensor:
    """log(1 + x) for x >= 0, with the value of np.log1p (see the module docstring)."""
    L = (1.0 + x).log()
    return L + (np.log1p(x.data) - L.data)


def _keep_prob(where_: str, positional=None, keep_prob=None, p=None) -> float:
    """The probability of KEEPING a unit, from exactly one of: `keep_prob=` (the course's name), `p=` (PyTorch's
    name: the probability of DROPPING a unit, keep_prob = 1 - p) or a value given by position, read as keep_prob.
    A positional value below 1/2 is refused as ambiguous: keeping fewer than half the units is rare in the course,
    and `Dropout(0.2)` is how PyTorch asks to drop 20 %."""
    given = [k for k, v in (("by position", positional), ("keep_prob", keep_prob), ("p", p)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"{where_}: give the probability once, as keep_prob= (keep a unit) or p= (drop a unit, "
                         f"PyTorch's name), not both {' and '.join(given)}")
    if p is not None:
        return 1.0 - _checks.number(p, where_, "p", low=0.0, high=1.0, high_open=True,
                                    expected="a number in [0, 1) (PyTorch's probability of dropping a unit)")
    if keep_prob is not None:
        return _checks.probability(keep_prob, where_, "keep_prob")
    value = _checks.probability(positional, where_, "keep_prob")
    if value < 0.5:
        raise ValueError(f"{where_}: {positional!r} given by position is ambiguous: keep_prob={positional!r} (the "
                         f"course: keep {value:.0%} of units) or PyTorch's p={positional!r} (drop {value:.0%})? "
                         f"Write keep_prob={positional!r} or p={positional!r}")
    return value


# ============================================================ activations (§1.2, §2.2, §2.3)

def sigmoid(z) -> Tensor:
    """sigmoid(z) = 1 / (1 + exp(-z))  (§1.2; sigmoid' = sigmoid (1 - sigmoid), §2.3).

    Computed as where(z >= 0, 1, e) / (1 + e) with e = exp(-|z|) in (0, 1]: 5 ops, no overflow, and exactly
    sigmoid'(0) = 1/4."""
    z = _tensor(z, "sigmoid")
    pos = z.data >= 0
    e = (z * _const(pos, -1, 1, z.dtype)).exp()
    return where(pos, 1.0, e) / (1.0 + e)


def tanh(z) -> Tensor:
    """tanh(z) (§2.2; tanh' = 1 - tanh^2, §2.3): the Tanh primitive, stable for every z."""
    return _tensor(z, "tanh").tanh()


def relu(z) -> Tensor:
    """ReLU(z) = max(0, z) (§2.2), as where(z <= 0, 0, z): slope 1 for z > 0 and 0 for z <= 0 (0 at the kink).
    NaN is not <= 0: it takes the z side, so relu(NaN) = NaN with slope 1 (as PyTorch)."""
    z = _tensor(z, "relu")
    return where(z.data <= 0, 0.0, z)


def leaky_relu(z, alpha=0.01) -> Tensor:
    """Leaky ReLU(z) = max(alpha z, z) (§2.2): z * s with the constant slope s = 1 for z > 0, alpha for z <= 0
    (one op; slope alpha at the kink, as PyTorch)."""
    z = _tensor(z, "leaky_relu")
    alpha = _checks.number(alpha, "leaky_relu", "alpha")
    return z * _const(z.data > 0, 1, alpha, z.dtype)


def softplus(z) -> Tensor:
    """softplus(z) = log(1 + exp(z)) = max(z, 0) + log(1 + exp(-|z|)); softplus' = sigmoid. Exact to rounding
    for every finite z (= -log_expit(-z))."""
    z = _tensor(z, "softplus")
    pos = z.data >= 0
    e = (z * _const(pos, -1, 1, z.dtype)).exp()
    return where(pos, z, 0.0) + _log1p(e)


def softmax(z, axis=0) -> Tensor:
    """softmax(z)_i = exp(z_i) / sum_j exp(z_j) over `axis` (classes are rows: axis 0), computed on z minus its
    (constant) max, so no exp overflows."""
    z = _tensor(z, "softmax")
    axis = _axis(z, axis, "softmax")
    e = (z - _shift(z, axis)).exp()
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z, axis=0) -> Tensor:
    """log softmax(z) = s - log(sum exp(s)) with s = z - max(z) over `axis` (the max is a constant)."""
    z = _tensor(z, "log_softmax")
    axis = _axis(z, axis, "log_softmax")
    s = z - _shift(z, axis)
    if s.size == 0:
        return s  # nothing to normalize (and no log of an empty sum)
    return s - s.exp().sum(axis=axis, keepdims=True).log()


def logsumexp(z, axis=0, keepdims=False) -> Tensor:
    """log(sum exp(z)) over `axis` = M + log(sum exp(z - M)) with M = max(z) a constant; exact to rounding even
    where the result is near 0 (as scipy.special.logsumexp). An all -inf slice gives -inf, one holding +inf
    gives inf, an empty axis -inf (the log of an empty sum), as PyTorch."""
    z = _tensor(z, "logsumexp")
    axis = _axis(z, axis, "logsumexp")
    if z.shape[axis] == 0:
        out = z.sum(axis=axis, keepdims=True) + (-np.inf)
        return out if keepdims else out.reshape(np.squeeze(out.data, axis=axis).shape)
    M = _shift(z, axis)
    infinite = np.isinf(M)
    if infinite.any():
        M = np.where(infinite, 0.0, M)  # inf - inf would be NaN: an infinite max needs no shift (as PyTorch)
    e = (z - M).exp()
    S = e.sum(axis=axis, keepdims=True)
    # S = 1 + r (the max contributes exp(0) = 1): restore the digits of r that 1 + r rounded away, as _log1p
    r = e.data.copy()
    np.put_along_axis(r, np.argmax(z.data, axis=axis, keepdims=True), 0.0, axis=axis)
    with np.errstate(divide="ignore"):  # log 0 of an all -inf slice: no correction there (below)
        correction = np.log1p(r.sum(axis=axis, keepdims=True)) - np.log(S.data)
    if infinite.any():
        correction = np.where(infinite, 0.0, correction)  # unshifted, the max did not contribute exactly 1
    out = S.log() + (correction + M)
    return out if keepdims else out.reshape(np.squeeze(M, axis=axis).shape)


# ============================================================ costs (§1.2, §3.1)

def binary_cross_entropy(A, Y) -> Tensor:
    """J = -(1/m) sum(Y log A + (1 - Y) log(1 - A))  (§1.2), A in [0, 1], Y of A's shape (n_y, m).

    Each log is clamped at -100 (PyTorch's convention): A = 0 or 1 gives a finite cost and a finite gradient
    (the clamped side contributes 0 to the gradient). A NaN in A makes the cost and its gradient NaN (PyTorch
    refuses it). For logits prefer `binary_cross_entropy_with_logits`."""
    A = _tensor(A, "binary_cross_entropy", "A")
    Y = _target("binary_cross_entropy", A, Y)
    inv_m = _per_example(A)
    lo, hi = (A.data.min(), A.data.max()) if A.size else (0.5, 0.5)
    if lo != lo or hi != hi:  # NaN: check the range of the other numbers (NaN itself propagates below)
        lo, hi = np.fmin.reduce(A.data, axis=None), np.fmax.reduce(A.data, axis=None)
    if lo < 0 or hi > 1:
        raise ValueError(f"binary_cross_entropy: A must hold probabilities in [0, 1] (min {lo:g}, max {hi:g}); "
                         f"apply sigmoid first, or use binary_cross_entropy_with_logits(Z, Y)")
    one_minus_A = 1.0 - A
    if lo > _TINY and 1.0 - hi > _TINY:   # the usual case: no clamp anywhere, plain logs
        log_A, log_1mA = A.log(), one_minus_A.log()
        # log(1 - A) loses relative digits only where A is small (error ~ eps / A): below 1e-4, restore them
        digits = np.log1p(-A.data) - log_1mA.data if lo < 1e-4 else None
    else:
        log_A, log_1mA = _clamped_log(A), _clamped_log(one_minus_A)
        ok = one_minus_A.data > _TINY  # NaN: no correction (its log is NaN already)
        digits = np.where(ok, np.log1p(-np.where(ok, A.data, 0.0)) - log_1mA.data, 0.0)
    # log(1 - A) carries the gradient; a constant adds back the digits 1 - A rounded away (as _log1p), so a tiny
    # A costs -log1p(-A) ~ A rather than 0, like PyTorch
    total = (Y * log_A + (1.0 - Y) * log_1mA).sum()
    if digits is not None:
        total = total + np.asarray(np.sum((1.0 - (Y.data if isinstance(Y, Tensor) else Y)) * digits))
    return total * -inv_m


def _clamped_log(x: Tensor) -> Tensor:
    """max(log x, -100), never evaluating log(0): where x <= exp(-100) the log sees 1 and `where` picks -100.
    NaN is not <= exp(-100): it reaches the log and stays NaN."""
    low = x.data <= _TINY
    if not low.any():
        return x.log()
    return where(low, _LOG_FLOOR, where(low, 1.0, x).log())


def binary_cross_entropy_with_logits(Z, Y) -> Tensor:
    """J = -(1/m) sum(Y log sigmoid(Z) + (1 - Y) log(1 - sigmoid(Z))) from the logits Z (§1.2), computed as
    (1/m) sum(max(Z, 0) - Y Z + log(1 + exp(-|Z|))): finite value and gradient (sigmoid(Z) - Y)/m for every
    finite Z, and exactly (1/2 - Y)/m at Z = 0 (where logistic regression starts)."""
    Z = _tensor(Z, "binary_cross_entropy_with_logits", "Z")
    Y = _target("binary_cross_entropy_with_logits", Z, Y, "Z")
    inv_m = _per_example(Z)
    pos = Z.data >= 0
    e = (Z * _const(pos, -1, 1, Z.dtype)).exp()     # exp(-|Z|), in (0, 1]
    L = (1.0 + e).log()
    correction = np.sum(np.log1p(e.data) - L.data)  # constant: the digits 1 + e rounded away (see _log1p)
    slope = pos.astype(Z.dtype) - Y                 # max(Z, 0) - Y Z = Z * ([Z >= 0] - Y)
    return ((Z * slope + L).sum() + correction) * inv_m


def cross_entropy(Z, Y) -> Tensor:
    """Softmax cross-entropy J = -(1/m) sum(Y * log softmax(Z)) over the classes (axis 0) and the m examples.

    Z: logits (n_classes, m), n_classes >= 2. Y: one-hot (n_classes, m), integer labels of shape (m,), or soft
    labels (n_classes, m). The gradient is (softmax(Z) - Y) / m. A class with Y = 0 costs nothing (0 log 0 = 0),
    so a masked logit of -inf is fine where it is not the target (as PyTorch's class-index targets); a Y that
    requires grad enters as the plain product Y * log softmax(Z) (as PyTorch's probability targets)."""
    Z = _tensor(Z, "cross_entropy", "Z")
    if Z.ndim != 2:
        raise ValueError(f"cross_entropy: Z must be logits of shape (n_classes, m), got shape {Z.shape}")
    if Z.shape[0] == 0:
        raise ValueError(f"cross_entropy: Z has shape {Z.shape}, no classes: expected logits of shape "
                         f"(n_classes, m) with n_classes >= 2")
    if Z.shape[0] == 1:
        raise ValueError(f"cross_entropy: Z has shape {Z.shape}, one class: a softmax over one class is always 1 "
                         f"and its cost always 0; for a yes/no output of shape (1, m) use "
                         f"binary_cross_entropy_with_logits(Z, Y) on logits (or binary_cross_entropy(A, Y) on "
                         f"probabilities)")
    Y = _class_targets(Z, Y)
    s = Z - _shift(Z, 0)
    log_p = s - s.exp().sum(axis=0, keepdims=True).log()
    if isinstance(Y, Tensor):          # a target that needs its own gradient: the plain formula
        picked = Y * log_p
    else:                              # pick log p where Y != 0: a -inf next to Y = 0 never meets 0 * -inf
        nz = Y if Y.dtype == np.bool_ else Y != 0
        picked = where(nz, log_p, 0.0)
        if Y.dtype != np.bool_ and not (Y == nz).all():
            picked = Y * picked        # soft labels (one-hot labels are the picking alone)
    return picked.sum() * -_per_example(Z)


def _class_targets(Z: Tensor, Y):
    n, m = Z.shape
    expected = f"expected one-hot ({n}, {m}) or integer labels ({m},)"
    if isinstance(Y, Tensor) and Y.requires_grad:
        return _target("cross_entropy", Z, Y, "Z")
    y = np.asarray(Y.data if isinstance(Y, Tensor) else Y)
    if y.ndim == 1:
        if y.dtype.kind not in "iu":
            if y.dtype.kind not in "bf" or not np.all(np.isfinite(y) & (y == np.round(y))):
                raise ValueError(f"cross_entropy: Y has shape {y.shape} and dtype {y.dtype}; {expected} "
                                 f"(1-D labels must be whole numbers)")
            y = y.astype(np.int64)
        if y.shape != (m,):
            raise ValueError(f"cross_entropy: Y has shape {y.shape} but Z has shape {Z.shape}; {expected}")
        if m and (y.min() < 0 or y.max() >= n):
            raise ValueError(f"cross_entropy: labels must lie in [0, {n}) for {n} classes; got min {y.min()}, "
                             f"max {y.max()}")
        one_hot = np.zeros((n, m), dtype=np.bool_)
        one_hot[y, np.arange(m)] = True
        return one_hot
    if y.shape != Z.shape:
        hint = " (integer labels must have shape (m,): use Y.reshape(-1))" if y.shape == (1, m) else ""
        raise ValueError(f"cross_entropy: Y has shape {y.shape} but Z has shape {Z.shape}; {expected}{hint}")
    return _target("cross_entropy", Z, y, "Z")


def mse(A, Y) -> Tensor:
    """J = (1/m) sum_i ||a(i) - y(i)||^2 = (1/m) sum((A - Y)**2): the course's cost (an average over the m
    examples) of the per-example squared error, summed over the n_y outputs. For n_y = 1 this is the mean
    squared error (PyTorch's `mse_loss`); the gradient is 2 (A - Y) / m."""
    A = _tensor(A, "mse", "A")
    Y = _target("mse", A, Y)
    d = A - Y
    return (d * d).sum() * _per_example(A)


def l2_penalty(weights, lambd, m) -> Tensor:
    """(lambd / (2 m)) sum_l ||W[l]||_F^2  (§3.1): add it to the cost; biases are not penalized.

    `weights`: a list of the W tensors (or a Module: its `weights()`); m: the number of training examples in
    the cost it is added to. Its gradient is (lambd / m) W[l], the course's weight decay term."""
    if hasattr(weights, "weights") and callable(weights.weights):
        weights = weights.weights()
    elif isinstance(weights, (Tensor, np.ndarray)):
        weights = [weights]
    weights = [_tensor(W, "l2_penalty", "each weight") for W in weights]
    if not weights:
        raise ValueError("l2_penalty: no weights given (pass a list of the W tensors, e.g. model.weights())")
    lambd = _checks.nonneg(lambd, "l2_penalty", "lambd")
    m = _checks.positive_int(m, "l2_penalty", "m (the number of examples)")
    total = None
    for W in weights:
        squares = (W * W).sum()
        total = squares if total is None else total + squares
    return total * (float(lambd) / (2.0 * int(m)))


# ============================================================ dropout (§3.1)

def dropout(A, prob=None, /, training=True, rng=None, mask=None, *, keep_prob=None, p=None) -> Tensor:
    """Inverted dropout (§3.1): D = rand(A.shape) < keep_prob; A * D / keep_prob. Identity when not training or
    keep_prob == 1. The mask is a constant (gradient D / keep_prob).

    The probability: `keep_prob=0.8` (the course's: keep 80 % of units) or `p=0.2` (PyTorch's: drop 20 %); a value
    given by position is keep_prob, and one below 1/2 is refused as ambiguous (`dropout(A, 0.2)`).
    rng: an np.random.Generator, made once before the training loop (its stream continues: a fresh mask at each
    call), or None. An int seed is refused: it would draw the same mask at every call.
    mask: a boolean array of A's shape to use instead of drawing one (e.g. a fixed mask for gradient checking)."""
    keep = _keep_prob("dropout", prob, keep_prob, p)
    if rng is not None:   # checked on every call, drawn from only when needed (None costs an entropy read)
        rng = _checks.as_rng(rng, "dropout", per_call=True, what="mask")
    A = _tensor(A, "dropout", "A")
    if not training or keep == 1.0:
        return A
    if mask is None:
        D = _checks.as_rng(rng, "dropout").random(A.shape) < keep
    else:
        D = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        if D.shape != A.shape:
            raise ValueError(f"dropout: mask has shape {D.shape} but A has shape {A.shape}")
        if D.dtype != np.bool_:
            if D.dtype.kind not in "biuf" or not np.isin(D, (0, 1)).all():
                raise ValueError(f"dropout: mask must be boolean (or 0/1), got dtype {D.dtype}")
            D = D.astype(bool)
    return A * _const(D, 1.0 / keep, 0, A.dtype)


# The activations people reach for as methods (`z.sigmoid()`, `z.relu()`), bound here: they are compositions.
Tensor.sigmoid = sigmoid
Tensor.relu = relu
