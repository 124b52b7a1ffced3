"""The one seam between the engine and the arrays it computes on (the Python Array API standard).

NumPy is the default and the fast path: the engine and the primitives test `type(x) is np.ndarray` and call NumPy
as they always did. Any other array that follows the standard (it has `__array_namespace__`: CuPy,
`array_api_strict`, ...) or is a Dask array stays what it is, and a primitive calls the same function from the
array's own namespace, `namespace(x).exp(x)`. Nothing here converts to NumPy behind the user's back: `to_numpy` runs
only where the user asks for values (`.item()`, `.numpy()`, `np.asarray(t)`, printing, the visualizer).

Two operands of one op must live in one library. The exception is NumPy beside Dask: Dask combines them itself (the
NumPy array joins the lazy graph), which is how parameters on the driver meet data spread over workers.
"""
from __future__ import annotations

import math

import numpy as np

_BY_TYPE: dict = {np.ndarray: np}  # array type -> its namespace, found once per type


def namespace(x):
    """The Array API namespace of the array `x`: NumPy itself for ndarrays, the library's namespace otherwise
    (via array-api-compat when it is installed, which Dask arrays need; else `x.__array_namespace__()`)."""
    xp = _BY_TYPE.get(type(x))
    if xp is None:
        xp = _BY_TYPE[type(x)] = _find(x)
    return xp


def _find(x):
    if not is_foreign(x):
        return np  # NumPy's arrays and scalars, and whatever its functions take
    try:
        import array_api_compat
    except ImportError:
        array_api_compat = None
    if array_api_compat is not None:
        try:
            return array_api_compat.array_namespace(x)
        except TypeError:
            pass
    if is_lazy(x):
        raise ImportError("Dask arrays need the package array-api-compat: pip install 'tinygrad_dl[dask]'")
    get = getattr(x, "__array_namespace__", None)
    if get is None:
        raise TypeError(f"{library(x)} arrays ({type(x).__name__}) do not follow the Python Array API standard "
                        f"(no __array_namespace__)")
    return get()


def is_foreign(x) -> bool:
    """True for an array of another library that a Tensor keeps as it is (not NumPy, not a Python number or list)."""
    if isinstance(x, (np.ndarray, np.generic)):
        return False
    return hasattr(x, "__array_namespace__") or is_lazy(x)


def is_lazy(x) -> bool:
    """True for a Dask array (any Dask collection): its values exist only once computed."""
    return type(x) is not np.ndarray and hasattr(type(x), "__dask_graph__")


def library(x) -> str:
    """The name of the library an array comes from, for error messages: 'numpy', 'dask', 'cupy', ..."""
    return type(x).__module__.split(".")[0]


def common(op: str, *arrays):
    """The namespace the operands of one op compute in: their own if they share it; Dask's when the others are
    NumPy arrays (NumPy joins the lazy graph, as Dask itself combines them). Anything else is a TypeError that
    names both libraries: an array is never moved between libraries behind the user's back."""
    spaces = {}
    for a in arrays:
        spaces.setdefault(namespace(a), a)
    if len(spaces) == 1:
        return next(iter(spaces))
    lazy = [xp for xp, a in spaces.items() if is_lazy(a)]
    if len(spaces) == 2 and len(lazy) == 1 and np in spaces:
        return lazy[0]
    a, b = list(spaces.values())[:2]
    raise TypeError(f"{op}: cannot combine arrays of two libraries in one op: {library_name(a)} and "
                    f"{library_name(b)}. Nothing is moved between libraries behind your back: move one explicitly "
                    f"first (e.g. with the other library's asarray(...), or .numpy() to come back to NumPy)")


def library_name(x) -> str:
    """The library of an array as people write it: NumPy, Dask, CuPy, array_api_strict, ..."""
    name = library(x)
    return {"numpy": "NumPy", "dask": "Dask", "cupy": "CuPy", "torch": "PyTorch", "jax": "JAX"}.get(name, name)


def to_numpy(x) -> np.ndarray:
    """The values as a NumPy array: computes a Dask array, copies a GPU array to the host. Called only where the
    user asks for values."""
    if type(x) is np.ndarray:
        return x
    if is_lazy(x):
        import dask
        x, = dask.compute(x)
    if type(x) is np.ndarray:
        return x
    get = getattr(x, "get", None)  # CuPy: device to host
    if library(x) == "cupy" and callable(get):
        return get()
    try:
        return np.from_dlpack(x)
    except (TypeError, AttributeError, BufferError, RuntimeError):
        return np.asarray(x)


def compute(arrays) -> list:
    """The arrays with every lazy one computed, all in ONE `dask.compute` (the work they share is done once);
    the others pass through unchanged."""
    arrays = list(arrays)
    lazy = [i for i, a in enumerate(arrays) if a is not None and is_lazy(a)]
    if lazy:
        import dask
        for i, value in zip(lazy, dask.compute(*[arrays[i] for i in lazy])):
            arrays[i] = value
    return arrays


# --- dtypes, written once for every namespace ------------------------------------------------------------

def dtype_in(xp, dtype):
    """`dtype` as a dtype of the namespace xp: NumPy-style names and dtypes (np.float32, "float64") by name,
    the namespace's own dtype objects as they are."""
    if xp is np:
        return np.dtype(dtype)
    try:
        name = np.dtype(dtype).name
    except TypeError:
        return dtype  # already the library's own dtype object
    found = getattr(xp, name, None)
    if found is None:
        raise TypeError(f"the array library {xp.__name__} has no dtype {name}")
    return found


def is_floating(x) -> bool:
    if not is_foreign(x):
        return x.dtype.kind == "f"
    xp = namespace(x)
    return xp.isdtype(x.dtype, "real floating")


def is_bool(x) -> bool:
    if not is_foreign(x):
        return x.dtype == np.bool_
    return namespace(x).isdtype(x.dtype, "bool")


def astype(x, dtype):
    """x converted to `dtype` (a dtype of x's namespace, or a NumPy-style one)."""
    if type(x) is np.ndarray or not is_foreign(x):
        return x.astype(dtype)
    xp = namespace(x)
    return xp.astype(x, dtype_in(xp, dtype))


def as_float(x, dtype=None, copy=False):
    """A foreign array as the data of a Tensor: floats stay, integers and booleans become float64 (or `dtype`);
    anything else is refused with the Tensor's message."""
    xp = namespace(x)
    if dtype is not None:
        want = dtype_in(xp, dtype)
        if not xp.isdtype(want, "real floating"):
            raise TypeError(f"Tensor: data must be floating point to carry a gradient; got dtype {want} "
                            f"(use float64 or float32)")
        return xp.astype(x, want) if x.dtype != want else (_copy(xp, x) if copy else x)
    if xp.isdtype(x.dtype, "real floating"):
        return _copy(xp, x) if copy else x
    if xp.isdtype(x.dtype, ("integral", "bool")):
        return xp.astype(x, xp.float64)
    raise TypeError(f"Tensor: data must be floating point to carry a gradient; got dtype {x.dtype} "
                    f"(use float64 or float32)")


def _copy(xp, x):
    return x if is_lazy(x) else xp.asarray(x, copy=True)  # a Dask array is never changed in place: no copy


def constant(value, like):
    """A Python number as a 0-d array next to `like`: NumPy for NumPy and Dask (NumPy joins Dask's graph),
    the library's own array otherwise."""
    if type(like) is np.ndarray or is_lazy(like):
        return np.asarray(value, dtype=like.dtype)
    return namespace(like).asarray(value, dtype=like.dtype)


def broadcast_to(x, shape, chunks=None):
    """x repeated to `shape` in its library; a Dask array in the given chunks (those of the array it will meet),
    so that a gradient spread back over a sum is never one block the size of the data."""
    if chunks is not None and is_lazy(x):
        import dask.array as da
        return da.broadcast_to(x, shape, chunks=chunks)
    return namespace(x).broadcast_to(x, shape)


def reshape(x, shape):
    """x with another shape. Dask reshapes only by merging or splitting axes evenly: other reshapes go through
    the flat array (a merge, then a split)."""
    xp = namespace(x)
    try:
        return xp.reshape(x, shape)
    except NotImplementedError:
        if not is_lazy(x):
            raise
        return xp.reshape(xp.reshape(x, (-1,)), shape)


# --- indexing: NumPy's index rules on any array ----------------------------------------------------------

def getitem(x, index, fancy):
    """x[index] for a NumPy-style index (from the GetItem primitive). Dask indexes natively; other libraries
    take basic indices natively and array indices through `take` on the flattened array (the standard's
    portable way), with the positions computed once by NumPy from the index alone."""
    if is_lazy(x) or not (fancy or _has_arrays(index)):
        return x[index if is_lazy(x) else _full(index, x.ndim)]
    xp = namespace(x)
    pos = np.arange(math.prod(x.shape)).reshape(x.shape)[index]
    flat = xp.take(xp.reshape(x, (-1,)), xp.asarray(pos.reshape(-1)), axis=0)
    return xp.reshape(flat, pos.shape)


def scatter(x, index, shape, fancy):
    """zeros(shape) with x added at index (repeated positions add up, in order, as np.add.at): y is gathered
    from x by `take`, one round per repeat of a position, so every library computes the same sums."""
    xp = namespace(x)
    size = math.prod(shape)
    pos = np.arange(size).reshape(shape)[index].reshape(-1)  # where each element of x lands in y (flat)
    n = pos.size
    order = np.argsort(pos, kind="stable")
    landing = pos[order]
    rank = np.arange(n) - np.searchsorted(landing, landing, side="left")  # 0 for a first visit, 1 for a repeat...
    rounds = int(rank.max()) + 1 if n else 0
    src = np.full((max(rounds, 1), size), n, dtype=np.int64)  # n points at an appended 0: "nothing lands here"
    src[rank, landing] = order
    padded = xp.concat([xp.reshape(x, (-1,)), xp.zeros((1,), dtype=x.dtype)])
    if not fancy:  # each position receives at most one element: a gather, exactly an assignment
        y = xp.take(padded, xp.asarray(src[0]), axis=0)
    else:
        y = xp.zeros((size,), dtype=x.dtype)
        for r in range(rounds):
            y = y + xp.take(padded, xp.asarray(src[r]), axis=0)
    return xp.reshape(y, shape)


def _has_arrays(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, np.ndarray) for p in parts)


def _full(index, ndim):
    """A basic index with the trailing `...` NumPy implies (the standard asks for it to be written)."""
    parts = index if isinstance(index, tuple) else (index,)
    if any(p is Ellipsis for p in parts):
        return parts
    return parts + (Ellipsis,)
