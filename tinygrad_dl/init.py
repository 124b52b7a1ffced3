"""Weight initialization (course notes §2.4 Random Initialization, §3.2.2 Vanishing / Exploding Gradients).

Shapes are the course's `(n, n_prev)` = `(n[l], n[l-1])`: a layer's W has one row per unit and one column per
input. Every random function takes `rng`: an `np.random.Generator` (its stream continues), an int seed, or None
(fresh entropy); the same seed gives the same numbers, bit for bit. To draw several layers from one seed, make one
Generator and pass it to each (`rng = np.random.default_rng(0)`): the same int for two layers of one shape gives
them the same weights. The numbers are drawn in float64 and then cast to `dtype`, so a float32
network starts from the float64 network's weights rounded to float32.

    >>> import tinygrad_dl as dl
    >>> W1 = dl.init.he((20, 64), rng=0)          # randn(20, 64) * sqrt(2 / 64)
    >>> b1 = dl.init.zeros((20, 1))
"""
from __future__ import annotations

import numpy as np

from . import _checks

__all__ = ["as_rng", "zeros", "normal", "xavier", "he", "glorot", "get", "INITIALIZERS"]


def as_rng(rng=None, where: str = "rng") -> np.random.Generator:
    """An `np.random.Generator` from a Generator (returned as is, so its stream continues), an int seed
    (`np.random.default_rng(seed)`), or None (fresh entropy). A legacy `np.random.RandomState` is refused: pass
    `np.random.default_rng(seed)` instead. (The rule for every `rng=` of the library is in the README,
    "Randomness".)"""
    return _checks.as_rng(rng, where)


def _shape(shape, where: str) -> tuple:
    if _checks.is_int(shape):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{where}: shape must be a tuple of ints, got {shape!r}") from None
    if not all(_checks.is_int(n) and n >= 0 for n in shape):
        raise ValueError(f"{where}: shape must be a tuple of non-negative ints, got {shape!r}")
    return tuple(int(n) for n in shape)


def _layer_shape(shape, where: str) -> tuple:
    shape = _shape(shape, where)
    if len(shape) != 2:
        raise ValueError(f"{where}: expected a weight shape (n, n_prev) = (n[l], n[l-1]), got {shape}")
    if shape[1] == 0:
        raise ValueError(f"{where}: n_prev = 0 in shape {shape}: the scale sqrt(./n_prev) is undefined")
    return shape


def _float_dtype(dtype, where: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{where}: dtype must be a floating type (float64 or float32), got {dtype}")
    return dtype


def _randn(shape, scale, rng, dtype, where):
    dtype = _float_dtype(dtype, where)
    W = as_rng(rng, where).standard_normal(shape)   # float64 draws, whatever the dtype
    W *= scale
    return W if dtype == np.float64 else W.astype(dtype)


def zeros(shape, dtype=np.float64, rng=None) -> np.ndarray:
    """All zeros: the course's choice for b[l] (§2.4). Never for W: every unit of a layer would stay identical.

    `rng` is accepted and ignored, so every initializer can be called as `init(shape, rng=rng, dtype=dtype)`."""
    where = "init.zeros"
    return np.zeros(_shape(shape, where), dtype=_float_dtype(dtype, where))


def normal(shape, scale=0.01, rng=None, dtype=np.float64) -> np.ndarray:
    """W = randn(shape) * scale: small random numbers (§2.4; the course's np.random.randn(n, n_prev) * 0.01)."""
    scale = _checks.nonneg(scale, "init.normal", "scale")
    return _randn(_shape(shape, "init.normal"), scale, rng, dtype, "init.normal")


def xavier(shape, rng=None, dtype=np.float64) -> np.ndarray:
    """Xavier: W = randn(n, n_prev) * sqrt(1 / n_prev), so Var(w) = 1/n_prev (§3.2.2; for tanh)."""
    n, n_prev = shape = _layer_shape(shape, "init.xavier")
    return _randn(shape, np.sqrt(1.0 / n_prev), rng, dtype, "init.xavier")


def he(shape, rng=None, dtype=np.float64) -> np.ndarray:
    """He: W = randn(n, n_prev) * sqrt(2 / n_prev), so Var(w) = 2/n_prev (§3.2.2; for ReLU)."""
    n, n_prev = shape = _layer_shape(shape, "init.he")
    return _randn(shape, np.sqrt(2.0 / n_prev), rng, dtype, "init.he")


def glorot(shape, rng=None, dtype=np.float64) -> np.ndarray:
    """Glorot: W = randn(n, n_prev) * sqrt(2 / (n_prev + n)) (§3.2.2, the variant averaging fan-in and fan-out)."""
    n, n_prev = shape = _layer_shape(shape, "init.glorot")
    return _randn(shape, np.sqrt(2.0 / (n_prev + n)), rng, dtype, "init.glorot")


INITIALIZERS = {"zeros": zeros, "normal": normal, "xavier": xavier, "he": he, "glorot": glorot}


def get(name):
    """The initializer called `name` ("zeros", "normal", "xavier", "he", "glorot"); a callable is returned as is."""
    if callable(name):
        return name
    try:
        return INITIALIZERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"init.get: unknown initializer {name!r}; choose one of {sorted(INITIALIZERS)}") from None
