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
  comparison is false) falls on the branch that carries it through, never on a constant;
- nothing is read with `.data`: every mask, shift, correction or check computed from values is a small NumPy
  function called through `derived` (plain NumPy in eager mode; dl.jit's replay calls it again on the new
  values, so nothing computed from data is ever frozen). Where eager mode takes a shortcut for the usual case
  (binary cross-entropy with nothing clamped, one-hot targets), a capture takes the general form, which gives
  the same numbers bit for bit;
- on another library's arrays (Dask, CuPy, array_api_strict) the same helpers compute with that library's
  functions, and lazy (Dask) values take the general form too, so nothing is computed while the graph is built.
  Checks of values (probabilities in [0, 1], labels in range, a 0/1 mask) then run with the computation: on
  Dask their ValueError comes from the step that computes (the optimizer's `step()`, `.item()`). There the
  Tensor stands on the left of an operator with a plain array (`t * x`): CuPy's and array_api_strict's arrays
  refuse an unknown right operand instead of handing the operation to the Tensor.

Examples are columns: Z, A, Y have shape (n, m) and costs average over the m columns (the last axis).

    >>> import tinygrad_dl as dl, tinygrad_dl.functional as F
    >>> Z = dl.Tensor([[0.0, 2.0, -3.0]], requires_grad=True)
    >>> J = F.binary_cross_entropy_with_logits(Z, [[1.0, 0.0, 1.0]])
    >>> J.backward()
    >>> Z.grad                                  # (sigmoid(Z) - Y) / m; exactly (1/2 - 1)/3 at Z = 0
    array([[-0.16666667,  0.29359903, -0.31752471]])
"""
from __future__ import annotations

import functools

import numpy as np

from . import _checks, _namespace as _ns
from ._namespace import namespace
from .ops import where
from .tensor import Tensor, _ndarray, branch, derived, is_capturing, replayed

__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "softmax", "log_softmax", "logsumexp", "softplus",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "mse", "l2_penalty",
           "dropout"]

_LOG_FLOOR = -100.0                # PyTorch's clamp of log in binary cross-entropy
_TINY = float(np.exp(_LOG_FLOOR))  # log(x) > -100  <=>  x > exp(-100) (to rounding)
_foreign = _ns.is_foreign          # another library's array: the helpers below call its namespace


# ============================================================ helpers: arguments (shapes and types only)

def _tensor(x, where_: str, what: str = "input") -> Tensor:
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where_}: {what} must be a Tensor or an array of floats; got {type(x).__name__} ({e})") \
            from None


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
        Y = Y._data
    if type(Y) is not _ndarray and (_foreign(Y) or type(A._data) is not _ndarray):
        return _foreign_target(where_, A, Y, a_name)
    Y = np.asarray(Y)
    if Y.dtype.kind not in "biuf":
        raise TypeError(f"{where_}: Y must hold numbers, got dtype {Y.dtype}")
    if Y.shape != A.shape:
        raise ValueError(f"{where_}: Y has shape {Y.shape} but {a_name} has shape {A.shape}; they must match "
                         f"exactly (no broadcasting): one column per example, e.g. (1, m)")
    if type(A._data) is not _ndarray:
        _ns.common(where_, A._data, Y)  # NumPy targets join Dask's graph; beside other libraries: an error
    return Y if Y.dtype == A.dtype else derived(np.ndarray.astype, Y, A.dtype)


def _foreign_target(where_, A, Y, a_name):
    """_target for arrays of another library: in that library, of A's shape and dtype."""
    if not _foreign(Y):
        Y = namespace(A._data).asarray(Y)  # a list or number next to another library's A: made there
    _ns.common(where_, A._data, Y)
    xp = namespace(Y)
    if not xp.isdtype(Y.dtype, ("bool", "integral", "real floating")):
        raise TypeError(f"{where_}: Y must hold numbers, got dtype {Y.dtype}")
    if Y.shape != A.shape:
        raise ValueError(f"{where_}: Y has shape {Y.shape} but {a_name} has shape {A.shape}; they must match "
                         f"exactly (no broadcasting): one column per example, e.g. (1, m)")
    return Y if Y.dtype == A.dtype else derived(_ns.astype, Y, A.dtype)


def _axis(z: Tensor, axis, where_: str) -> int:
    if not _checks.is_int(axis):
        raise TypeError(f"{where_}: axis must be an int, got {axis!r}")
    if not -z.ndim <= axis < max(z.ndim, 1):
        raise ValueError(f"{where_}: axis {axis} is out of range for shape {z.shape}")
    if z.ndim == 0:
        raise ValueError(f"{where_}: needs at least one axis; got a scalar")
    return int(axis)


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


# ============================================================ helpers: values (plain NumPy, called via `derived`)
# Each is a pure function of its arguments; the ones named _check_* refuse bad values (and so always run, even where
# their result is not needed). `outputs` names their results in dl.jit's source. On another library's arrays each
# computes the same values with that library's functions (the Array API standard's names), branch-free.

def _less_equal(x, c):
    """[x <= c], in x's library (np.less_equal for NumPy)."""
    return np.less_equal(x, c) if type(x) is _ndarray or not _foreign(x) else x <= c


def _kept(z):
    """[not z <= 0]: where relu keeps z (z > 0, and NaN, which propagates). One mask for the forward and the
    backward (where(keep, z, 0) multiplies the gradient by keep itself, with no complement to compute)."""
    if type(z) is _ndarray or not _foreign(z):
        mask = np.less_equal(z, 0)
        return np.logical_not(mask, out=mask)
    return ~(z <= 0)


_kept.outputs = ("keep",)


def _not_equal(x, c):
    """[x != c], in x's library (np.not_equal for NumPy)."""
    return np.not_equal(x, c) if type(x) is _ndarray or not _foreign(x) else x != c


def _checked(x, check):
    """x once `check` (a NumPy function that raises on bad values) has passed on it: on Dask each chunk is checked
    where it is computed (no chunk waits for another, so memory stays one chunk deep), with the computation."""
    meta = np.empty((0,) * x.ndim, dtype=x.dtype)  # (given: Dask need not call the check to learn the type)
    return x.map_blocks(_pass_checked, check, dtype=x.dtype, meta=meta)


def _pass_checked(block, check):
    check(block)
    return block


def _pos_and_sign(z):
    """[z >= 0], and the sign s = -1 there, +1 elsewhere (NaN included): exp(z * s) is exp(-|z|) with each side's
    own slope."""
    pos = z >= 0
    if type(z) is not _ndarray and _foreign(z):
        return pos, 1.0 - 2.0 * _ns.astype(pos, z.dtype)  # the same -1 and +1
    # 1 - 2 [z >= 0] is exactly -1 or +1; arithmetic, as np.where is 4-7x slower on large arrays of mixed signs
    return pos, np.asarray(1, z.dtype) + np.asarray(-2, z.dtype) * pos


_pos_and_sign.outputs = ("pos", "sign")


def _scaled(mask, s, dtype):
    """mask * s in `dtype`: s where the mask is True, +0.0 elsewhere (s > 0), as np.where(mask, s, 0), faster."""
    if type(mask) is not _ndarray and _foreign(mask):
        return _ns.astype(mask, dtype) * s
    return mask * np.asarray(s, dtype)


_scaled.outputs = ("scale",)


def _as_float(mask, dtype):
    """A boolean mask as 0.0 / 1.0 in `dtype`."""
    return _ns.astype(mask, dtype)


_as_float.outputs = ("step",)


def _float_minus(mask, y):
    """[mask] - y in y's dtype (the slope of max(z, 0) - y z, with mask = [z >= 0])."""
    return _ns.astype(mask, y.dtype) - y


_float_minus.outputs = ("slope",)


def _leaky_slope(z, alpha):
    """1 where z > 0, alpha elsewhere (NaN included), in z's dtype."""
    if type(z) is not _ndarray and _foreign(z):
        xp = namespace(z)
        return xp.where(z > 0, xp.asarray(1.0, dtype=z.dtype), xp.asarray(alpha, dtype=z.dtype))
    return np.where(z > 0, z.dtype.type(1), z.dtype.type(alpha))


_leaky_slope.outputs = ("slope",)


def _max_shift(z, axis):
    """The max over `axis` as a constant: subtracting it changes no softmax, and no exp can overflow
    (-inf over an empty axis)."""
    if type(z) is not _ndarray and _foreign(z):
        xp = namespace(z)
        if z.shape[axis] == 0:
            return xp.full(tuple(1 if i == axis % z.ndim else n for i, n in enumerate(z.shape)), -np.inf, dtype=z.dtype)
        return xp.max(z, axis=axis, keepdims=True)
    return np.maximum.reduce(z, axis=axis, keepdims=True, initial=-np.inf)  # (np.max's own call, without its wrapper)


_max_shift.outputs = ("shift",)


def _finite(M):
    """M with its infinities replaced by 0: inf - inf would be NaN, and an infinite max needs no shift."""
    if type(M) is not _ndarray and _foreign(M):
        xp = namespace(M)
        return xp.where(xp.isinf(M), xp.zeros_like(M), M)
    return np.where(np.isinf(M), 0.0, M)


_finite.outputs = ("finite_shift",)


def _log1p_digits(x, L):
    """np.log1p(x) - log(1 + x): the digits that 1 + x rounded away (at most ~1e-16)."""
    if type(x) is not _ndarray and _foreign(x):
        return namespace(x).log1p(x) - L
    return np.log1p(x) - L


_log1p_digits.outputs = ("digits",)


def _sum_log1p_digits(x, L):
    """The sum of np.log1p(x) - log(1 + x), as a 0-d array in x's dtype."""
    if type(x) is not _ndarray and _foreign(x):
        xp = namespace(x)
        return xp.sum(xp.log1p(x) - L)
    return np.asarray(np.add.reduce(np.log1p(x) - L, axis=None), dtype=x.dtype)  # (np.sum, without its wrapper)


_sum_log1p_digits.outputs = ("digits",)


def _lse_correction(z, e, S, M, axis):
    """S = 1 + r (the max contributes exp(0) = 1): log1p(r) - log(S) restores the digits of r that 1 + r rounded
    away (as _log1p), plus the finite shift; no correction where the max is infinite (it was not shifted)."""
    if type(z) is not _ndarray and _foreign(z):
        return _lse_correction_any(z, e, S, M, axis)
    infinite = np.isinf(M)
    r = e.copy()
    np.put_along_axis(r, np.argmax(z, axis=axis, keepdims=True), 0.0, axis=axis)
    with np.errstate(divide="ignore"):  # log 0 of an all -inf slice: no correction there (below)
        correction = np.log1p(r.sum(axis=axis, keepdims=True)) - np.log(S)
    return np.where(infinite, 0.0, correction) + np.where(infinite, 0.0, M)


_lse_correction.outputs = ("correction",)


def _lse_correction_any(z, e, S, M, axis):
    """_lse_correction with the standard's functions: the first maximum of each slice (np.argmax's) is zeroed by a
    mask of positions, as put_along_axis does."""
    xp = namespace(z)
    axis = axis % z.ndim
    infinite = xp.isinf(M)
    positions = xp.reshape(xp.arange(z.shape[axis]), tuple(-1 if i == axis else 1 for i in range(z.ndim)))
    first = positions == xp.argmax(z, axis=axis, keepdims=True)
    r = xp.where(first, xp.zeros_like(e), e)
    correction = xp.log1p(xp.sum(r, axis=axis, keepdims=True)) - xp.log(S)
    zero = xp.zeros_like(M)
    return xp.where(infinite, zero, correction) + xp.where(infinite, zero, M)


def _check_probabilities(A):
    """Refuse A outside [0, 1] (NaN aside, which propagates); returns A's (min, max), NaN if A holds NaN."""
    if not A.size:
        return A.dtype.type(0.5), A.dtype.type(0.5)
    lo, hi = np.minimum.reduce(A, axis=None), np.maximum.reduce(A, axis=None)
    if lo >= 0 and hi <= 1:  # (False at NaN)
        return lo, hi
    a, b = (lo, hi) if lo == lo and hi == hi else (np.fmin.reduce(A, axis=None), np.fmax.reduce(A, axis=None))
    if a < 0 or b > 1:
        raise ValueError(f"binary_cross_entropy: A must hold probabilities in [0, 1] (min {a:g}, max {b:g}); "
                         f"apply sigmoid first, or use binary_cross_entropy_with_logits(Z, Y)")
    return lo, hi


_check_probabilities.outputs = ("lo", "hi")


def _probabilities_any(A):
    """A's (min, max) with NaN left out, and a zero shaped like A (A - A) once A is checked to lie in [0, 1]: at
    once for an eager library, chunk by chunk as the cost is computed on Dask. Adding the zero makes the value and
    the gradient wait for the check."""
    xp = namespace(A)
    if A.size == 0:
        half = xp.asarray(0.5, dtype=A.dtype)
        return half, half, xp.zeros_like(A)
    nan = xp.isnan(A)
    lo = xp.min(xp.where(nan, xp.asarray(np.inf, dtype=A.dtype), A))
    hi = xp.max(xp.where(nan, xp.asarray(-np.inf, dtype=A.dtype), A))
    if _ns.is_lazy(A):
        checked = _checked(A, _check_probabilities)
        return lo, hi, checked - checked
    _check_probabilities(np.asarray([float(lo), float(hi)]) if float(lo) <= float(hi) else np.zeros(0))
    return lo, hi, None


_probabilities_any.outputs = ("lo", "hi", "zero")


def _plain_bce(lo, hi) -> bool:
    """No log is clamped and 1 - A loses no digit worth restoring (False when A holds NaN)."""
    return lo >= 1e-4 and 1.0 - hi > _TINY


def _one_minus(y):
    """1 - y (a target's complement)."""
    return 1.0 - y


_one_minus.outputs = ("one_minus_Y",)


def _bce_safe(A, Y, lo, hi):
    """The constants of binary cross-entropy's general form: A + C0 and C1 - A are A and 1 - A where their log is
    above -100 and exactly 1 (log 0) where it is clamped; the coefficients Y and 1 - Y are 0 there."""
    if lo > _TINY and 1.0 - hi > _TINY:  # nothing clamped: A + 0 and 1 - A (0-d constants: no array to fill)
        return np.zeros((), A.dtype), np.ones((), A.dtype), Y.copy(), 1.0 - Y
    one = A.dtype.type
    low_A, low_1mA = A <= _TINY, (1.0 - A) <= _TINY
    return (np.where(low_A, one(1), one(0)), np.where(low_1mA, one(2), one(1)), np.where(low_A, one(0), Y),
            np.where(low_1mA, one(0), 1.0 - Y))


_bce_safe.outputs = ("C0", "C1", "Y_safe", "one_minus_Y")


def _bce_correction(A, Y, log_1mA, lo, hi):
    """What the general form adds to sum(Y log A + (1 - Y) log(1 - A)): -100 for each clamped log, and the digits
    log1p(-A) - log(1 - A) that 1 - A rounded away (as _log1p); exactly 0 where the plain formula applies."""
    if _plain_bce(lo, hi):
        return np.zeros((), A.dtype)
    ok = (1.0 - A) > _TINY  # NaN: no correction (its log is NaN already)
    digits = np.where(ok, np.log1p(-np.where(ok, A, 0.0)) - log_1mA, 0.0)
    total = np.sum((1.0 - Y) * digits)
    low_A, low_1mA = A <= _TINY, (1.0 - A) <= _TINY
    if low_A.any() or low_1mA.any():
        total = total + _LOG_FLOOR * (np.sum(np.where(low_A, Y, 0.0)) + np.sum(np.where(low_1mA, 1.0 - Y, 0.0)))
    return np.asarray(total, dtype=A.dtype)


_bce_correction.outputs = ("correction",)


def _bce_digits(A, Y, log_1mA, lo, hi):
    """The digits correction alone (for the form that clamps with `where`); exactly 0 where the plain formula
    applies."""
    if _plain_bce(lo, hi):
        return np.zeros((), A.dtype)
    ok = (1.0 - A) > _TINY
    digits = np.where(ok, np.log1p(-np.where(ok, A, 0.0)) - log_1mA, 0.0)
    return np.asarray(np.sum((1.0 - Y) * digits), dtype=A.dtype)


_bce_digits.outputs = ("digits",)


def _bce_safe_any(A, Y):
    """_bce_safe's general form in A's library (branch-free: no value decides anything before it is computed)."""
    xp = namespace(A)
    zero, one, two = (xp.asarray(v, dtype=A.dtype) for v in (0.0, 1.0, 2.0))
    low_A, low_1mA = A <= _TINY, (1.0 - A) <= _TINY
    return (xp.where(low_A, one, zero), xp.where(low_1mA, two, one), xp.where(low_A, zero, Y),
            xp.where(low_1mA, zero, 1.0 - Y))


_bce_safe_any.outputs = _bce_safe.outputs


def _bce_correction_any(A, Y, log_1mA, lo, hi, clamps=True):
    """_bce_correction (with clamps) or _bce_digits (without) in A's library, branch-free: 0 where the plain
    formula applies (as NumPy's)."""
    xp = namespace(A)
    zero = xp.asarray(0.0, dtype=A.dtype)
    ok = (1.0 - A) > _TINY
    digits = xp.where(ok, xp.log1p(-xp.where(ok, A, zero)) - log_1mA, zero)
    total = xp.sum((1.0 - Y) * digits)
    if clamps:
        low_A, low_1mA = A <= _TINY, (1.0 - A) <= _TINY
        total = total + _LOG_FLOOR * (xp.sum(xp.where(low_A, Y, zero)) + xp.sum(xp.where(low_1mA, 1.0 - Y, zero)))
    plain = (lo >= 1e-4) & ((1.0 - hi) > _TINY)
    return xp.where(plain, zero, total)


_bce_correction_any.outputs = ("correction",)


def _check_whole_labels(y, expected):
    """Refuse 1-D labels that are not whole numbers; returns them as int64."""
    if not np.all(np.isfinite(y) & (y == np.round(y))):
        raise ValueError(f"cross_entropy: Y has shape {y.shape} and dtype {y.dtype}; {expected} "
                         f"(1-D labels must be whole numbers)")
    return y.astype(np.int64)


_check_whole_labels.outputs = ("labels",)


def _check_one_hot(y, n):
    """Integer labels (m,) as a boolean one-hot mask (n, m); refuses labels outside [0, n)."""
    m = y.shape[0]
    if m and (y.min() < 0 or y.max() >= n):
        raise ValueError(f"cross_entropy: labels must lie in [0, {n}) for {n} classes; got min {y.min()}, "
                         f"max {y.max()}")
    one_hot = np.zeros((n, m), dtype=np.bool_)
    one_hot[y, np.arange(m)] = True
    return one_hot


_check_one_hot.outputs = ("one_hot",)


def _check_bool_mask(D):
    """A 0/1 mask as booleans (anything else refused)."""
    if not np.isin(D, (0, 1)).all():
        raise ValueError(f"dropout: mask must be boolean (or 0/1), got dtype {D.dtype}")
    return D.astype(bool)


_check_bool_mask.outputs = ("D",)


@replayed
def _draw_mask(rng, shape, keep_prob):
    """D = rand(shape) < keep_prob, drawn from `rng` (dl.jit's replay draws again, from the same Generator, in
    the same order as eager mode)."""
    return _checks.as_rng(rng, "dropout").random(shape) < keep_prob


# ============================================================ activations (§1.2, §2.2, §2.3)

def sigmoid(z) -> Tensor:
    """sigmoid(z) = 1 / (1 + exp(-z))  (§1.2; sigmoid' = sigmoid (1 - sigmoid), §2.3).

    Computed as where(z >= 0, 1, e) / (1 + e) with e = exp(-|z|) in (0, 1]: 5 ops, no overflow, and exactly
    sigmoid'(0) = 1/4."""
    z = _tensor(z, "sigmoid")
    pos, sign = derived(_pos_and_sign, z)
    e = (z * sign).exp()
    return where(pos, 1.0, e) / (1.0 + e)


def tanh(z) -> Tensor:
    """tanh(z) (§2.2; tanh' = 1 - tanh^2, §2.3): the Tanh primitive, stable for every z."""
    return _tensor(z, "tanh").tanh()


def relu(z) -> Tensor:
    """ReLU(z) = max(0, z) (§2.2), as where(not z <= 0, z, 0): slope 1 for z > 0 and 0 for z <= 0 (0 at the kink).
    NaN is not <= 0: it takes the z side, so relu(NaN) = NaN with slope 1 (as PyTorch)."""
    z = _tensor(z, "relu")
    return where(derived(_kept, z), z, 0.0)


def leaky_relu(z, alpha=0.01) -> Tensor:
    """Leaky ReLU(z) = max(alpha z, z) (§2.2): z * s with the constant slope s = 1 for z > 0, alpha for z <= 0
    (one op; slope alpha at the kink, as PyTorch)."""
    z = _tensor(z, "leaky_relu")
    alpha = _checks.number(alpha, "leaky_relu", "alpha")
    return z * derived(_leaky_slope, z, float(alpha))


def softplus(z) -> Tensor:
    """softplus(z) = log(1 + exp(z)) = max(z, 0) + log(1 + exp(-|z|)); softplus' = sigmoid. Exact to rounding
    for every finite z (= -log_expit(-z))."""
    z = _tensor(z, "softplus")
    pos, sign = derived(_pos_and_sign, z)
    e = (z * sign).exp()
    L = (1.0 + e).log()                                  # log(1 + e), the digits 1 + e rounded away added back
    return where(pos, z, 0.0) + (L + derived(_log1p_digits, e, L))


def softmax(z, axis=0) -> Tensor:
    """softmax(z)_i = exp(z_i) / sum_j exp(z_j) over `axis` (classes are rows: axis 0), computed on z minus its
    (constant) max, so no exp overflows."""
    z = _tensor(z, "softmax")
    axis = _axis(z, axis, "softmax")
    e = (z - derived(_max_shift, z, axis)).exp()
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z, axis=0) -> Tensor:
    """log softmax(z) = s - log(sum exp(s)) with s = z - max(z) over `axis` (the max is a constant)."""
    z = _tensor(z, "log_softmax")
    axis = _axis(z, axis, "log_softmax")
    s = z - derived(_max_shift, z, axis)
    if s.size == 0:
        return s  # nothing to normalize (and no log of an empty sum)
    return s - s.exp().sum(axis=axis, keepdims=True).log()


def logsumexp(z, axis=0, keepdims=False) -> Tensor:
    """log(sum exp(z)) over `axis` = M + log(sum exp(z - M)) with M = max(z) a constant; exact to rounding even
    where the result is near 0 (as scipy.special.logsumexp). An all -inf slice gives -inf, one holding +inf
    gives inf, an empty axis -inf (the log of an empty sum), as PyTorch."""
    z = _tensor(z, "logsumexp")
    axis = _axis(z, axis, "logsumexp")
    reduced = tuple(n for i, n in enumerate(z.shape) if i != axis % z.ndim)
    if z.shape[axis] == 0:
        out = z.sum(axis=axis, keepdims=True) + (-np.inf)
        return out if keepdims else out.reshape(reduced)
    M = derived(_max_shift, z, axis)
    e = (z - derived(_finite, M)).exp()   # inf - inf would be NaN: an infinite max needs no shift (as PyTorch)
    S = e.sum(axis=axis, keepdims=True)
    out = S.log() + derived(_lse_correction, z, e, S, M, axis)
    return out if keepdims else out.reshape(reduced)


# ============================================================ costs (§1.2, §3.1)

def binary_cross_entropy(A, Y) -> Tensor:
    """J = -(1/m) sum(Y log A + (1 - Y) log(1 - A))  (§1.2), A in [0, 1], Y of A's shape (n_y, m).

    Each log is clamped at -100 (PyTorch's convention): A = 0 or 1 gives a finite cost and a finite gradient
    (the clamped side contributes 0 to the gradient). A NaN in A makes the cost and its gradient NaN (PyTorch
    refuses it). For logits prefer `binary_cross_entropy_with_logits`."""
    A = _tensor(A, "binary_cross_entropy", "A")
    Y = _target("binary_cross_entropy", A, Y)
    inv_m = _per_example(A)
    if type(A._data) is not _ndarray and _foreign(A._data):
        return _bce_any(A, Y, inv_m)
    lo, hi = derived(_check_probabilities, A)
    if lo >= 1e-4 and 1.0 - hi > _TINY and (not is_capturing() or branch(_plain_bce, lo, hi)):  # (_plain_bce)
        # the usual case: no log is clamped, and 1 - A keeps its digits (A >= 1e-4): the plain formula
        one_minus_A = 1.0 - A
        one_minus_Y = 1.0 - Y if isinstance(Y, Tensor) or not is_capturing() else derived(_one_minus, Y)
        return (Y * A.log() + one_minus_Y * one_minus_A.log()).sum() * -inv_m
    # The general form, exact for every A in [0, 1] (its numbers are those of the plain formula wherever that
    # applies; dl.jit's capture takes it where a replay could not check the branch). Each log is clamped at -100
    # without ever evaluating log(0), and a constant adds back the digits 1 - A rounded away (as _log1p), so a
    # tiny A costs -log1p(-A) ~ A rather than 0, like PyTorch.
    if isinstance(Y, Tensor):   # a target with its own gradient: the logs are clamped with `where`
        one_minus_A = 1.0 - A
        log_1mA = _clamped_log(one_minus_A)
        total = (Y * _clamped_log(A) + (1.0 - Y) * log_1mA).sum()
        return (total + derived(_bce_digits, A, Y, log_1mA, lo, hi)) * -inv_m
    # a constant target: log(A + C0) and log(C1 - A) are log A and log(1 - A), or exactly 0 where clamped (their
    # coefficients are 0 there, and the -100's are part of the correction): as cheap as the plain formula
    C0, C1, Y_safe, one_minus_Y = derived(_bce_safe, A, Y, lo, hi)
    log_A, log_1mA = (A + C0).log(), (C1 - A).log()
    total = (Y_safe * log_A + one_minus_Y * log_1mA).sum()
    return (total + derived(_bce_correction, A, Y, log_1mA, lo, hi)) * -inv_m


def _bce_any(A, Y, inv_m):
    """binary_cross_entropy on another library's arrays: always the general form (on Dask nothing may decide a
    branch before the graph is computed), with NumPy's numbers."""
    lo, hi, zero = derived(_probabilities_any, A)
    if zero is not None:
        A = A + zero  # (on Dask: A, checked chunk by chunk)
    if isinstance(Y, Tensor):
        log_1mA = _clamped_log(1.0 - A)
        total = (Y * _clamped_log(A) + (1.0 - Y) * log_1mA).sum()
        return (total + derived(_bce_correction_any, A, Y, log_1mA, lo, hi, False)) * -inv_m
    C0, C1, Y_safe, one_minus_Y = derived(_bce_safe_any, A, Y)
    # C1 - A and Y_safe * log_A as the Tensor's own operators: an array of another library on the left would
    # refuse the Tensor (see the module's note); the numbers are the same
    log_A, log_1mA = (A + C0).log(), A.__rsub__(C1).log()
    total = (log_A * Y_safe + log_1mA * one_minus_Y).sum()
    return (total + derived(_bce_correction_any, A, Y, log_1mA, lo, hi)) * -inv_m


def _clamped_log(x: Tensor) -> Tensor:
    """max(log x, -100), never evaluating log(0): where x <= exp(-100) the log sees 1 and `where` picks -100.
    NaN is not <= exp(-100): it reaches the log and stays NaN."""
    low = derived(np.less_equal if type(x._data) is _ndarray else _less_equal, x, _TINY)
    return where(low, _LOG_FLOOR, where(low, 1.0, x).log())


def binary_cross_entropy_with_logits(Z, Y) -> Tensor:
    """J = -(1/m) sum(Y log sigmoid(Z) + (1 - Y) log(1 - sigmoid(Z))) from the logits Z (§1.2), computed as
    (1/m) sum(max(Z, 0) - Y Z + log(1 + exp(-|Z|))): finite value and gradient (sigmoid(Z) - Y)/m for every
    finite Z, and exactly (1/2 - Y)/m at Z = 0 (where logistic regression starts)."""
    Z = _tensor(Z, "binary_cross_entropy_with_logits", "Z")
    Y = _target("binary_cross_entropy_with_logits", Z, Y, "Z")
    inv_m = _per_example(Z)
    pos, sign = derived(_pos_and_sign, Z)
    e = (Z * sign).exp()                                    # exp(-|Z|), in (0, 1]
    L = (1.0 + e).log()
    correction = derived(_sum_log1p_digits, e, L)          # constant: the digits 1 + e rounded away (see _log1p)
    # max(Z, 0) - Y Z = Z * ([Z >= 0] - Y)
    if not isinstance(Y, Tensor):
        slope = derived(_float_minus, pos, Y)
    elif type(Z._data) is _ndarray:
        slope = derived(_as_float, pos, Z.dtype) - Y
    else:  # [Z >= 0] - Y, as the Tensor's own operator (see the module's note on other libraries)
        slope = Y.__rsub__(derived(_as_float, pos, Z.dtype))
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
    s = Z - derived(_max_shift, Z, 0)
    log_p = s - s.exp().sum(axis=0, keepdims=True).log()
    if isinstance(Y, Tensor):          # a target that needs its own gradient: the plain formula
        picked = Y * log_p
    elif type(Y) is not _ndarray and _foreign(Y):  # (the same, in Y's library, multiplied as a capture does)
        one_hot = _ns.is_bool(Y)
        picked = where(Y if one_hot else derived(_not_equal, Y, 0), log_p, 0.0)
        if not one_hot:
            picked = picked * Y
    else:                              # pick log p where Y != 0: a -inf next to Y = 0 never meets 0 * -inf
        nz = Y if Y.dtype == np.bool_ else derived(np.not_equal, Y, 0)
        picked = where(nz, log_p, 0.0)
        # soft labels; one-hot labels are the picking alone (Y * picked gives the same numbers: a capture, which
        # must not look at the values, always multiplies)
        if Y.dtype != np.bool_ and (is_capturing() or not (Y == nz).all()):
            picked = Y * picked
    return picked.sum() * -_per_example(Z)


def _class_targets(Z: Tensor, Y):
    n, m = Z.shape
    expected = f"expected one-hot ({n}, {m}) or integer labels ({m},)"
    if isinstance(Y, Tensor) and Y.requires_grad:
        return _target("cross_entropy", Z, Y, "Z")
    y = Y._data if isinstance(Y, Tensor) else Y
    if _foreign(y) or type(Z._data) is not _ndarray and not isinstance(y, np.ndarray):
        return _class_targets_any(Z, y, expected)
    y = np.asarray(y)
    if y.ndim == 1:
        if y.dtype.kind not in "iu":
            if y.dtype.kind not in "bf":
                raise ValueError(f"cross_entropy: Y has shape {y.shape} and dtype {y.dtype}; {expected} "
                                 f"(1-D labels must be whole numbers)")
            y = derived(_check_whole_labels, y, expected)
        if y.shape != (m,):
            raise ValueError(f"cross_entropy: Y has shape {y.shape} but Z has shape {Z.shape}; {expected}")
        return derived(_check_one_hot, y, n)
    if y.shape != Z.shape:
        hint = " (integer labels must have shape (m,): use Y.reshape(-1))" if y.shape == (1, m) else ""
        raise ValueError(f"cross_entropy: Y has shape {y.shape} but Z has shape {Z.shape}; {expected}{hint}")
    return _target("cross_entropy", Z, y, "Z")


def _class_targets_any(Z: Tensor, y, expected):
    """_class_targets for another library's arrays: integer labels become a one-hot mask in that library, checked
    to lie in [0, n) (on Dask, when the cost is computed)."""
    n, m = Z.shape
    if not _foreign(y):
        y = namespace(Z._data).asarray(y)
    xp = _ns.common("cross_entropy", Z._data, y)
    if y.ndim != 1:
        if y.shape != Z.shape:
            raise ValueError(f"cross_entropy: Y has shape {y.shape} but Z has shape {Z.shape}; {expected}")
        return _target("cross_entropy", Z, y, "Z")
    if y.shape != (m,):
        raise ValueError(f"cross_entropy: Y has shape {y.shape} but Z has shape {Z.shape}; {expected}")
    if not xp.isdtype(y.dtype, ("integral", "real floating", "bool")):
        raise ValueError(f"cross_entropy: Y has shape {y.shape} and dtype {y.dtype}; {expected}")
    return derived(_one_hot_any, y, n)


def _one_hot_any(y, n):
    """Labels (m,) as a one-hot mask (n, m), in y's library: [k == y_j]. The labels must be whole numbers in
    [0, n): checked at once for an eager library, chunk by chunk as the cost is computed on Dask."""
    xp = namespace(y)
    if xp.isdtype(y.dtype, "bool"):
        y = xp.astype(y, xp.int64)
    if _ns.is_lazy(y):
        y = _checked(y, functools.partial(_check_label_values, n=n))
    elif y.shape[0]:
        whole = xp.all(y == xp.round(y)) if xp.isdtype(y.dtype, "real floating") else True
        _check_label_values(np.asarray([float(xp.min(y)), float(xp.max(y))]), n, bool(whole))
    return xp.reshape(xp.arange(n, dtype=y.dtype), (n, 1)) == xp.reshape(y, (1, y.shape[0]))


_one_hot_any.outputs = ("one_hot",)


def _check_label_values(y, n, whole=None):
    """Refuse labels (a NumPy array of them, or of their min and max) that are not whole numbers in [0, n)."""
    if not y.size:
        return
    if whole is None:
        whole = bool(np.all(np.isfinite(y) & (y == np.round(y))))
    lo, hi = float(np.min(y)), float(np.max(y))
    if not (whole and 0 <= lo and hi < n):
        raise ValueError(f"cross_entropy: labels must be whole numbers in [0, {n}) for {n} classes; got min {lo:g}, "
                         f"max {hi:g}" + ("" if whole else " and numbers that are not whole"))


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
    elif isinstance(weights, (Tensor, np.ndarray)) or _foreign(weights):
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
    if type(A._data) is not _ndarray and _foreign(A._data):
        return A * derived(_scaled, _mask_any(A._data, keep, rng, mask), 1.0 / keep, A.dtype)
    if mask is None:
        D = _draw_mask(rng, A.shape, keep)
    else:
        D = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
        if D.shape != A.shape:
            raise ValueError(f"dropout: mask has shape {D.shape} but A has shape {A.shape}")
        if D.dtype != np.bool_:
            if D.dtype.kind not in "biuf":
                raise ValueError(f"dropout: mask must be boolean (or 0/1), got dtype {D.dtype}")
            D = derived(_check_bool_mask, D)
    return A * derived(_scaled, D, 1.0 / keep, A.dtype)


def _mask_any(A, keep, rng, mask):
    """dropout's mask for another library's A, in that library. Drawn: from `rng` in NumPy (the same numbers as
    for a NumPy A) and moved there; on Dask, chunk by chunk from seeds that `rng` draws (reproducible, never a
    whole mask on the driver). Given: checked to be 0/1 (on Dask, when the graph is computed)."""
    xp = namespace(A)
    if mask is None:
        if _ns.is_lazy(A):
            drawn = _checks.as_rng(rng, "dropout").integers(2**63, size=A.numblocks)
            seeds = {index: int(drawn[index]) for index in np.ndindex(*A.numblocks)}
            return A.map_blocks(_draw_block, keep=keep, seeds=seeds, dtype=bool)
        return xp.asarray(_draw_mask(rng, A.shape, keep))
    D = mask._data if isinstance(mask, Tensor) else mask
    if not _foreign(D):
        D = xp.asarray(np.asarray(D))  # a mask given in NumPy (or a list) moves to A's library
    _ns.common("dropout", A, D)
    if D.shape != A.shape:
        raise ValueError(f"dropout: mask has shape {D.shape} but A has shape {A.shape}")
    if _ns.is_bool(D):
        return D
    if not namespace(D).isdtype(D.dtype, ("integral", "real floating")):
        raise ValueError(f"dropout: mask must be boolean (or 0/1), got dtype {D.dtype}")
    if _ns.is_lazy(D):
        return _checked(D, _check_bool_mask) != 0  # checked chunk by chunk
    xd = namespace(D)
    if not bool(xd.all((D == 0) | (D == 1))):
        raise ValueError("dropout: mask must be boolean (or 0/1), got other values")
    return D != 0


def _draw_block(block, keep, seeds, block_id=None):
    """One chunk of a Dask dropout mask, from its own seed."""
    return np.random.default_rng(seeds[block_id]).random(block.shape) < keep


# The activations people reach for as methods (`z.sigmoid()`, `z.relu()`), bound here: they are compositions.
Tensor.sigmoid = sigmoid
Tensor.relu = relu
