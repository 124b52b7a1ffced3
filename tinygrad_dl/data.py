"""Data utilities (course notes §3 train/dev/test, §3.1 data augmentation and early stopping, §3.2.1 normalizing
inputs, §3.3.1 mini-batches, §3.3.2 smoothing a noisy cost curve).

Examples are COLUMNS: X is (n_x, m), Y is (n_y, m) or integer labels of shape (m,). Row-major data (m, n), as
scikit-learn gives it, enters only through the explicit `columns(X_rows)`. Functions take ndarrays or Tensors and
give back the same kind. Arrays of another library (Dask, CuPy, array_api_strict) stay in it: `columns`, `split`,
`minibatches`, `one_hot` and `Normalizer` work on them (on Dask lazily; `Normalizer.fit` computes its statistics in
one pass, and `one_hot` without n_classes computes the largest label); image augmentation is NumPy's only.

Randomness is explicit. `split` and `augment` build a data set once: an int seed gives the same result every time.
`minibatches` is called once per epoch to draw a NEW order, so it takes a Generator made once before the loop (an
int seed would shuffle the same way every epoch, and is refused):

    >>> import numpy as np, tinygrad_dl as dl
    >>> X, Y = np.random.default_rng(0).normal(size=(3, 100)), np.arange(100) % 2
    >>> (X_tr, Y_tr), (X_dev, Y_dev), (X_te, Y_te) = dl.data.split(X, Y, (0.8, 0.1, 0.1), rng=0)
    >>> norm = dl.data.Normalizer().fit(X_tr)
    >>> rng = np.random.default_rng(0)
    >>> for epoch in range(2):
    ...     print([xb.shape for xb, yb in dl.data.minibatches(norm(X_tr), Y_tr, batch_size=32, rng=rng)])
    [(3, 32), (3, 32), (3, 16)]
    [(3, 32), (3, 32), (3, 16)]
"""
from __future__ import annotations

import numpy as np

from . import _checks, _namespace as _ns
from ._checks import as_rng
from .optim import ExponentialAverage
from .tensor import Tensor

__all__ = ["columns", "one_hot", "split", "Normalizer", "minibatches", "EarlyStopping", "smooth", "augment",
           "shift_images"]

_HINT = "examples are columns: X (n_x, m), Y (n_y, m) or labels (m,); use dl.data.columns(X) for (m, n) arrays"


def _array(X, where, name="X", numpy_only=False) -> np.ndarray:
    """X's values: an ndarray, or another library's array as it is (refused where only NumPy is supported)."""
    if isinstance(X, Tensor):
        X = X.data
    if X is None:
        raise TypeError(f"{where}: {name} is None")
    if _ns.is_foreign(X):
        if numpy_only:
            raise TypeError(f"{where}: works on NumPy arrays; {name} is a {_ns.library_name(X)} array (bring it "
                            f"back with .numpy() or np.asarray, or transform it chunk by chunk in its library)")
        return X
    return np.asarray(X)


def _take(A, idx):
    """The columns `idx` (a NumPy index array) of A along its last axis, in A's library."""
    if not _ns.is_foreign(A) or _ns.is_lazy(A):
        return A[..., idx]  # NumPy, and Dask (its own fancy indexing along one axis)
    xp = _ns.namespace(A)
    return xp.take(A, xp.asarray(idx), axis=A.ndim - 1)


def _like(arr, was_tensor):
    return Tensor(arr) if was_tensor else arr


def _examples(X, Y, where):
    """X as a 2-D (n_x, m) array, Y as (n_y, m) or (m,), with the same m."""
    Xa, Ya = _array(X, where, "X"), _array(Y, where, "Y")
    if Xa.ndim != 2:
        raise ValueError(f"{where}: X must be 2-D (n_x, m), got shape {Xa.shape}; {_HINT}")
    if Ya.ndim not in (1, 2):
        raise ValueError(f"{where}: Y must be (n_y, m) or labels (m,), got shape {Ya.shape}; {_HINT}")
    if Ya.shape[-1] != Xa.shape[1]:
        raise ValueError(f"{where}: X has m = {Xa.shape[1]} examples (shape {Xa.shape}) but Y has "
                         f"{Ya.shape[-1]} (shape {Ya.shape}); {_HINT}")
    return Xa, Ya


def columns(X_rows):
    """Row-major data (m, n), one example per row (scikit-learn's layout), as columns (n, m) = X_rows.T.
    A 1-D array of m values becomes one row (1, m). Explicit by design: shapes are never guessed."""
    if isinstance(X_rows, Tensor):
        if X_rows.ndim != 2:
            raise ValueError(f"columns: expected a 2-D (m, n) tensor, got shape {X_rows.shape}")
        return X_rows.T
    if _ns.is_foreign(X_rows):
        xp, A = _ns.namespace(X_rows), X_rows
        if A.ndim not in (1, 2):
            raise ValueError(f"columns: expected a 2-D (m, n) array (one example per row), got shape {A.shape}")
        return xp.reshape(A, (1, -1)) if A.ndim == 1 else xp.permute_dims(A, (1, 0))
    A = np.asarray(X_rows)
    if A.ndim == 1:
        return A.reshape(1, -1)
    if A.ndim != 2:
        raise ValueError(f"columns: expected a 2-D (m, n) array (one example per row), got shape {A.shape}")
    return np.ascontiguousarray(A.T)


def one_hot(labels, n_classes=None, dtype=np.float64) -> np.ndarray:
    """Integer labels (m,) as a one-hot matrix Y of shape (n_classes, m): Y[labels[i], i] = 1.
    No labels give an empty (n_classes, 0) matrix; then n_classes must be given (it cannot be inferred)."""
    where = "one_hot"
    y = _array(labels, where, "labels")
    if _ns.is_foreign(y):
        return _one_hot_any(y, n_classes, dtype, where)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{where}: expected integer labels of shape (m,), got shape {y.shape}")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise ValueError(f"{where}: labels must be whole numbers, got {y[~(np.isfinite(y) & (y == np.round(y)))][:3]}")
    if n_classes is None:
        if y.size == 0:
            raise ValueError(f"{where}: no labels (shape (0,)) and no n_classes: say how many classes, "
                             f"e.g. one_hot(labels, n_classes=10), to get an empty (10, 0) matrix")
    else:
        n_classes = _checks.integer(n_classes, where, "n_classes", 1)
    if y.size and y.min() < 0:
        raise ValueError(f"{where}: labels must be >= 0, got {y.min()}")
    if n_classes is None:
        n_classes = int(y.max()) + 1
        if n_classes > max(1 << 16, 2 * y.size):  # (n_classes, m) would be mostly empty, and possibly huge
            raise ValueError(f"{where}: the largest label is {y.max()}, so the one-hot matrix would have {n_classes} "
                             f"rows for {y.size} labels; pass n_classes= if that is really meant")
    elif y.size and y.max() >= n_classes:
        raise ValueError(f"{where}: label {y.max()} does not fit n_classes = {n_classes}")
    Y = np.zeros((n_classes, y.size), dtype=dtype)
    Y[y.astype(np.int64), np.arange(y.size)] = 1
    return Y


def _one_hot_any(y, n_classes, dtype, where):
    """one_hot in the labels' library (checked with the computation on Dask: see functional.cross_entropy)."""
    from .functional import _one_hot_any as mask  # (the same one-hot mask the cross-entropy builds)
    xp = _ns.namespace(y)
    if y.ndim != 1:
        raise ValueError(f"{where}: expected integer labels of shape (m,), got shape {y.shape}")
    if n_classes is None:
        if y.shape[0] == 0:
            raise ValueError(f"{where}: no labels (shape (0,)) and no n_classes: say how many classes, "
                             f"e.g. one_hot(labels, n_classes=10), to get an empty (10, 0) matrix")
        n_classes = int(_ns.to_numpy(xp.max(y))) + 1  # computes the labels once (pass n_classes= to stay lazy)
    n_classes = _checks.integer(n_classes, where, "n_classes", 1)
    return _ns.astype(mask(y, n_classes), dtype)


# ============================================================ train / dev / test (§3)

def split(X, Y, fractions=(0.98, 0.01, 0.01), rng=None, shuffle=True):
    """Shuffle the m columns and cut them into sets of the given fractions (§3: with big data the dev and test sets
    can be ~1%). Three fractions (train, dev, test) give ((X_train, Y_train), (X_dev, Y_dev), (X_test, Y_test));
    two (train, test) give ((X_train, Y_train), (X_test, Y_test)). Counts are floor(fraction * m), the leftover
    columns going to the largest remainders, so they always add up to m. The same int seed gives the same split."""
    where = "split"
    Xa, Ya = _examples(X, Y, where)
    try:
        fr = np.array([float(f) for f in fractions])
    except (TypeError, ValueError):
        raise TypeError(f"{where}: fractions must be two (train, test) or three (train, dev, test) numbers, "
                        f"got {fractions!r}") from None
    if fr.shape not in ((2,), (3,)) or not np.all(np.isfinite(fr)) or np.any(fr < 0) or abs(fr.sum() - 1) > 1e-9:
        raise ValueError(f"{where}: fractions must be two (train, test) or three (train, dev, test) numbers >= 0 "
                         f"adding up to 1, got {tuple(fractions)}")
    m = Xa.shape[1]
    counts = np.floor(fr * m).astype(int)
    for k in np.argsort(-(fr * m - counts), kind="stable")[: m - counts.sum()]:
        counts[k] += 1
    order = as_rng(rng, where).permutation(m) if shuffle else np.arange(m)
    bounds = np.cumsum(counts)[:-1]
    pieces = np.split(order, bounds)
    xt, yt = isinstance(X, Tensor), isinstance(Y, Tensor)
    return tuple((_like(_take(Xa, idx), xt), _like(_take(Ya, idx), yt)) for idx in pieces)


# ============================================================ normalizing inputs (§3.2.1)

class Normalizer:
    """x := (x - mu) / sigma, with mu = (1/m) sum_i x(i) and sigma^2 = (1/m) sum_i (x(i) - mu)**2 computed per
    feature (over axis 1, the examples) on the TRAINING set only, then applied to train, dev and test (§3.2.1).
    A constant feature gets mu = its value and sigma = 1: it becomes 0, never a division by zero.

        norm = Normalizer().fit(X_train)
        X_dev_n = norm(X_dev)                 # or norm.transform(X_dev)
    """

    def __init__(self):
        self.mu = None     # (n, 1)
        self.sigma = None  # (n, 1)

    def fit(self, X_train) -> "Normalizer":
        """Compute mu and sigma (shape (n, 1)) from X_train (n, m); returns self."""
        X = _array(X_train, "Normalizer.fit")
        if X.ndim != 2 or X.shape[1] == 0:
            raise ValueError(f"Normalizer.fit: X_train must be 2-D (n_x, m) with m >= 1, got shape {X.shape}; "
                             f"{_HINT}")
        if _ns.is_foreign(X):
            return self._fit_any(X)
        X = X.astype(np.float64, copy=False)
        mu = X.mean(axis=1, keepdims=True)
        sigma = np.sqrt(((X - mu) ** 2).mean(axis=1, keepdims=True))
        # a constant row's mean may differ from its value in the last bit; use the value itself and sigma = 1
        constant = (X.max(axis=1) == X.min(axis=1))[:, None]
        self.mu = np.where(constant, X[:, :1], mu)
        self.sigma = np.where(constant | (sigma == 0), 1.0, sigma)
        return self

    def _fit_any(self, X):
        """fit in X's library; on Dask the statistics are computed in one pass and kept as NumPy arrays (small:
        (n, 1)), as parameters are kept on the driver."""
        xp = _ns.namespace(X)
        X = _ns.astype(X, np.float64)
        mu = xp.mean(X, axis=1, keepdims=True)
        sigma = xp.sqrt(xp.mean((X - mu) ** 2, axis=1, keepdims=True))
        constant = xp.reshape(xp.max(X, axis=1) == xp.min(X, axis=1), (-1, 1))
        first = X[:, :1]
        if _ns.is_lazy(X):
            mu, sigma, constant, first = _ns.compute([mu, sigma, constant, first])
            xp = np
        self.mu = xp.where(constant, first, mu)
        self.sigma = xp.where(constant | (sigma == 0), xp.asarray(1.0, dtype=sigma.dtype), sigma)
        return self

    def fit_transform(self, X_train):
        """fit(X_train), then transform(X_train)."""
        return self.fit(X_train).transform(X_train)

    def _stats(self, X, where):
        if self.mu is None:
            raise ValueError(f"{where}: call fit(X_train) first")
        shape = X.shape
        if len(shape) != 2 or shape[0] != self.mu.shape[0]:
            raise ValueError(f"{where}: fitted on {self.mu.shape[0]} features, so X must be "
                             f"({self.mu.shape[0]}, m); got shape {tuple(shape)}; {_HINT}")
        if _ns.is_foreign(X) or _ns.is_foreign(self.mu):
            dtype = X.dtype if _ns.is_floating(X) else np.float64
            return _ns.astype(self.mu, dtype), _ns.astype(self.sigma, dtype)
        dtype = X.dtype if X.dtype.kind == "f" else np.float64
        return self.mu.astype(dtype, copy=False), self.sigma.astype(dtype, copy=False)

    def transform(self, X):
        """(X - mu) / sigma. A Tensor gives a Tensor (built from Tensor ops, so gradients flow through it);
        float32 stays float32."""
        if isinstance(X, Tensor):
            mu, sigma = self._stats(X, "Normalizer.transform")
            return (X - mu) / sigma
        X = X if _ns.is_foreign(X) else np.asarray(X)
        mu, sigma = self._stats(X, "Normalizer.transform")
        return (X - mu) / sigma

    __call__ = transform

    def inverse_transform(self, X):
        """X * sigma + mu: back to the original units."""
        Xa = X if isinstance(X, Tensor) or _ns.is_foreign(X) else np.asarray(X)
        mu, sigma = self._stats(Xa, "Normalizer.inverse_transform")
        return Xa * sigma + mu

    def __repr__(self):
        return f"Normalizer(n={None if self.mu is None else self.mu.shape[0]})"


# ============================================================ mini-batches (§3.3.1)

def minibatches(X, Y, batch_size=64, shuffle=True, rng=None):
    """Shuffle the columns of (X, Y) together, then yield consecutive slices of `batch_size` columns
    (X_b (n_x, b), Y_b (n_y, b) or (b,)); the last batch holds the remaining m mod batch_size columns (§3.3.1).
    Powers of two (64 .. 512) are the usual sizes. Arguments are checked and the permutation drawn at call time.

    rng: an np.random.Generator made once before the epoch loop (each call continues its stream: a new order every
    epoch, and the same seed reproduces the run), or None. An int seed is refused: called once per epoch, it would
    shuffle the same way every epoch."""
    where = "minibatches"
    Xa, Ya = _examples(X, Y, where)
    batch_size = _checks.integer(batch_size, where, "batch_size", 1)
    rng = as_rng(rng, where, per_call=True, what="order") if rng is not None or shuffle else None
    xt, yt = isinstance(X, Tensor), isinstance(Y, Tensor)
    if shuffle:
        order = rng.permutation(Xa.shape[1])
        Xa, Ya = _take(Xa, order), _take(Ya, order)
    return _batches(Xa, Ya, batch_size, xt, yt)


def _batches(Xa, Ya, batch_size, xt, yt):
    m = Xa.shape[1]
    for k in range(0, m, batch_size):
        end = min(k + batch_size, m)  # (the standard leaves a slice past the end unspecified)
        yield _like(Xa[:, k:end], xt), _like(Ya[..., k:end], yt)


# ============================================================ early stopping (§3.1)

class EarlyStopping:
    """Stop when the dev cost has not improved by more than `min_delta` for `patience` checks in a row (§3.1).

    `step(dev_cost, params)` returns True when training should stop; every time the dev cost improves it keeps
    a copy of the parameters (a Module or a list of Tensors), and `restore()` copies the best ones back in place.

        stopper = EarlyStopping(patience=5)
        for epoch in range(1000):
            train_one_epoch()
            if stopper.step(cost(model(X_dev), Y_dev), model):
                break
        stopper.restore()             # the model now holds the parameters of the best dev cost
    """

    def __init__(self, patience=5, min_delta=0.0):
        self.patience = _checks.integer(patience, "EarlyStopping", "patience", 1)
        self.min_delta = _checks.nonneg(min_delta, "EarlyStopping", "min_delta")
        self.reset()

    def reset(self):
        """Forget the history."""
        self.best_cost = float("inf")
        self.best_step = None   # 1-based count of step() calls at the best cost
        self.steps = 0
        self.bad_steps = 0      # checks since the last improvement
        self.should_stop = False
        self.best_params = None  # list of ndarray copies
        self._params = None

    def step(self, dev_cost, params=None) -> bool:
        """Record one dev cost (a float or a one-element Tensor); True means stop. NaN never counts as better."""
        if np.size(dev_cost) != 1:
            raise ValueError(f"EarlyStopping.step: expected one dev cost (a number), got shape {np.shape(dev_cost)}; "
                             f"reduce it first (e.g. the cost's mean)")
        cost = float(dev_cost.item() if isinstance(dev_cost, Tensor) else np.asarray(dev_cost).item())
        self.steps += 1
        if cost < self.best_cost - self.min_delta:
            self.best_cost, self.best_step, self.bad_steps = cost, self.steps, 0
            if params is not None:
                self._params = _checks.param_list(params, "EarlyStopping.step")
                self.best_params = [p.data.copy() for p in self._params]
        else:
            self.bad_steps += 1
        self.should_stop = self.bad_steps >= self.patience
        return self.should_stop

    def restore(self, params=None):
        """Copy the best parameters back into `params` (default: those passed to step), in place."""
        if self.best_params is None:
            raise ValueError("EarlyStopping.restore: no parameters were saved (pass them to step(dev_cost, params))")
        targets = self._params if params is None else _checks.param_list(params, "EarlyStopping.restore")
        if len(targets) != len(self.best_params):
            raise ValueError(f"EarlyStopping.restore: saved {len(self.best_params)} parameters, got {len(targets)}")
        for i, (p, best) in enumerate(zip(targets, self.best_params)):
            if p.shape != best.shape:
                raise ValueError(f"EarlyStopping.restore: parameter {i} has shape {p.shape}, the saved one "
                                 f"{best.shape}")
        for p, best in zip(targets, self.best_params):
            np.copyto(p.data, best)
            p._modified()       # new values in place: a graph that used the old ones must not backpropagate

    def __repr__(self):
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, best_cost={self.best_cost}, "
                f"best_step={self.best_step}, bad_steps={self.bad_steps})")


# ============================================================ smoothing a cost curve (§3.3.2)

def smooth(costs, beta=0.9, bias_correction=True) -> np.ndarray:
    """The exponentially weighted average of a cost history, one value per entry (§3.3.2):
    v_t = beta v_{t-1} + (1 - beta) cost_t, divided by 1 - beta**t (so the curve starts at the first cost,
    not at 0). Mini-batch costs are noisy (§3.3.1); plot them next to this."""
    vals = [c.item() if isinstance(c, Tensor) else c for c in costs] if not isinstance(costs, np.ndarray) else costs
    vals = np.asarray(vals, dtype=np.float64)
    if vals.ndim != 1:
        raise ValueError(f"smooth: costs must be a 1-D sequence of numbers, got shape {vals.shape}")
    avg = ExponentialAverage(beta, bias_correction)
    out = np.empty_like(vals)
    for t, c in enumerate(vals.tolist()):
        out[t] = avg.update(c)
    return out


# ============================================================ data augmentation (§3.1)

def _image_shape(image_shape, n, where):
    try:
        h, w = (int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: image_shape must be (h, w), got {image_shape!r}") from None
    if h < 1 or w < 1 or h * w != n:
        raise ValueError(f"{where}: image_shape {tuple(image_shape)} has {h * w} pixels but X has {n} rows "
                         f"(each column of X must be one h x w image flattened row by row)")
    return h, w


def _shift_amounts(d, m, limit, where, name) -> np.ndarray:
    """dy or dx as m ints clipped to [-limit, limit]: a shift by the image's size or more moves every pixel out."""
    if _checks.is_int(d):
        d = max(-limit, min(limit, int(d)))          # a Python int of any size, before NumPy sees it
    a = np.asarray(d)
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        a = np.clip(a, -limit, limit)
    elif a.dtype.kind not in "iu":
        raise TypeError(f"{where}: {name} must be whole numbers of pixels (ints), got {d!r}")
    try:
        a = np.broadcast_to(a, (m,))
    except ValueError:
        raise ValueError(f"{where}: {name} must be one int or {m} ints (one per image), got shape {a.shape}") \
            from None
    return np.clip(a, -limit, limit).astype(np.int64)


def shift_images(X, image_shape, dy, dx, flip=False):
    """Move each column-image of X (one flattened h x w image per column) by dy rows down and dx columns right,
    filling with zeros; where `flip` is True the image is first mirrored left-right. dy, dx, flip are scalars
    or arrays of length m (one per image). A shift by the image's size or more gives an all-zero image.
    Vectorized: one gather for all images."""
    where = "shift_images"
    Xa = _array(X, where, numpy_only=True)
    if Xa.ndim != 2:
        raise ValueError(f"{where}: X must be 2-D (h*w, m), got shape {Xa.shape}")
    n, m = Xa.shape
    h, w = _image_shape(image_shape, n, where)
    dy, dx = _shift_amounts(dy, m, h, where, "dy"), _shift_amounts(dx, m, w, where, "dx")
    flip = np.asarray(flip)
    if flip.dtype.kind not in "biu" or not np.isin(flip, (0, 1)).all():
        raise TypeError(f"{where}: flip must be True/False (one or one per image), got {flip!r}")
    try:
        flip = np.broadcast_to(flip.astype(bool), (m,))
    except ValueError:
        raise ValueError(f"{where}: flip must be one bool or {m} (one per image), got shape {flip.shape}") from None
    s = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))    # at most max(h, w): clipped above
    images = np.pad(Xa.T.reshape(m, h, w), ((0, 0), (s, s), (s, s)))   # zero fill around each image
    # output pixel (r, c) reads the (flipped) source pixel (r - dy, c - dx); +s for the padding
    rows = np.arange(h)[None, :] - dy[:, None] + s                                   # (m, h)
    cols = np.arange(w)[None, :] - dx[:, None]                                       # (m, w)
    cols = np.where(flip[:, None], w - 1 - cols, cols) + s
    out = images[np.arange(m)[:, None, None], rows[:, :, None], cols[:, None, :]]     # (m, h, w)
    return _like(np.ascontiguousarray(out.reshape(m, n).T), isinstance(X, Tensor))


def augment(X, Y, image_shape=(8, 8), flips=False, shifts=1, noise=0.0, copies=1, rng=None,
            include_original=True):
    """Data augmentation (§3.1): more training examples from transformed copies of the images in X.

    Each column of X is a flattened h x w image. Returns (X_aug, Y_aug) = the originals followed by `copies`
    transformed copies of every column, labels repeated in the same order. Each copy is shifted by a random
    (dy, dx) with |dy|, |dx| <= `shifts` pixels (zero fill), mirrored left-right with probability 1/2 only if
    `flips` (off by default: a flipped digit is another symbol), then gets Gaussian noise of std `noise`.
    Vectorized (no loop over images); the same rng seed gives the same result."""
    where = "augment"
    _array(X, where, "X", numpy_only=True), _array(Y, where, "Y", numpy_only=True)
    Xa, Ya = _examples(X, Y, where)
    n, m = Xa.shape
    h, w = _image_shape(image_shape, n, where)
    shifts = _checks.integer(shifts, where, "shifts")   # a shift of the image's size or more gives zeros
    if shifts >= 2 ** 62:
        raise ValueError(f"{where}: shifts must be an int >= 0 below 2**62 (drawn as int64), got {shifts}")
    copies = _checks.integer(copies, where, "copies")
    noise = _checks.nonneg(noise, where, "noise (a standard deviation)")
    if Xa.dtype.kind != "f":
        Xa = Xa.astype(np.float64)
    rng = as_rng(rng, where)
    N = copies * m
    src = np.tile(Xa, (1, copies))
    dy = rng.integers(-shifts, shifts + 1, size=N)
    dx = rng.integers(-shifts, shifts + 1, size=N)
    flip = rng.random(N) < 0.5 if flips else np.zeros(N, dtype=bool)
    new = shift_images(src, (h, w), dy, dx, flip)
    if noise > 0:
        new += (noise * rng.standard_normal(new.shape)).astype(new.dtype, copy=False)
    X_out = np.concatenate([Xa, new], axis=1) if include_original else new
    Y_out = np.concatenate([Ya] * (copies + bool(include_original)), axis=-1) if (copies or include_original) \
        else Ya[..., :0]
    return _like(X_out, isinstance(X, Tensor)), _like(Y_out, isinstance(Y, Tensor))
