"""The primitives: the only code in tinygrad_dl that knows a derivative.

Each op is one small class: a one-line math docstring, `forward` on arrays, and `backward(grad, out, *inputs)`
returning one gradient per input. Rules use only operations that Tensors and ndarrays share (`*`, `@`, `.T`,
`.reshape`, `.sum`, indexing) plus constant masks computed from values, so the same rule runs on raw ndarrays
for a first-order backward and on Tensors (recording a graph) for grad-of-grad. A gradient may be returned
shaped like the op's output: `Function` sums broadcast dimensions back to each input's shape.

A forward computes in its inputs' array library: NumPy directly (the fast path, `type(x) is _ndarray`), any
other Array API library through `namespace(x)` with the standard's names (`xp.exp`, `xp.sum`, `xp.permute_dims`);
whatever NumPy's functions accept (numbers, dl.jit's stand-ins) takes NumPy's path.
On such arrays the engine runs the rules on Tensors, so they reach the same forwards.

Subclassing `_Primitive` registers a class (`tensor.PRIMITIVES`), wherever it is defined, and the property tests in
tests/test_ops.py then require an entry for it in their domain table. The bottom of the file binds the Tensor's
operators and methods.
"""
from __future__ import annotations

import operator

import numpy as np

from . import _namespace as _ns
from ._namespace import namespace
from .tensor import PRIMITIVES, Function, ShapeError, Tensor, _ndarray, _value, derived

_foreign = _ns.is_foreign  # another library's array (not NumPy, nor what NumPy's functions take: numbers, stand-ins)


class _Primitive(Function):
    """The base class of the built-in primitives: defining a subclass registers it for the property tests."""
    __slots__ = ()
    ndarray_backward = True  # rules below are written with operations ndarrays and Tensors share

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            PRIMITIVES[cls.__name__] = cls


def _check_broadcast(op, a, b):
    """Refuse the rank-1 trap: (n, 1) against (n,) would silently broadcast to (n, n)."""
    if a.ndim != b.ndim and a.ndim and b.ndim and a.shape != b.shape:
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ShapeError(f"{op}: cannot broadcast shapes {a.shape} and {b.shape}; mixing a 1-D array with a 2-D "
                             f"one is almost always a mistake (reshape the 1-D array to a column (n, 1) or a row "
                             f"(1, n))") from None
        if shape != a.shape and shape != b.shape:
            raise ShapeError(f"{op}: shapes {a.shape} and {b.shape} would broadcast to {shape}, which is "
                             f"neither; mixing a 1-D array with a 2-D one is almost always a mistake "
                             f"(reshape the 1-D array to a column (n, 1) or a row (1, n))")


def _mask(condition, like):
    """A constant 0/1 mask in the dtype of `like` (values, not graph)."""
    return _ns.astype(condition, _value(like).dtype)


# ============================================================ elementwise arithmetic

class Add(_Primitive):
    """y = a + b;  dy/da = 1,  dy/db = 1"""
    __slots__ = ()
    saves_values = False

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("add", a, b)
        return a + b

    def backward(self, grad, out, a, b):
        return grad, grad


class Sub(_Primitive):
    """y = a - b;  dy/da = 1,  dy/db = -1"""
    __slots__ = ()
    saves_values = False

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("sub", a, b)
        return a - b

    def backward(self, grad, out, a, b):
        return grad, (-grad if self.inputs[1].requires_grad else None)


class Mul(_Primitive):
    """y = a * b;  dy/da = b,  dy/db = a"""
    __slots__ = ()

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("mul", a, b)
        return a * b

    def _reads(self, out):  # each input's gradient reads only the other input
        a, b = self.inputs
        return [(a, "input 0")] * b.requires_grad + [(b, "input 1")] * a.requires_grad

    def backward(self, grad, out, a, b):
        need_a, need_b = self.needs_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)


class Div(_Primitive):
    """y = a / b;  dy/da = 1 / b,  dy/db = -a / b**2 = -y / b"""
    __slots__ = ()

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("div", a, b)
        return a / b

    def _reads(self, out):  # 1/b for a; -(a/b)/b = -out/b for b
        b = self.inputs[1]
        return [(b, "input 1")] + [(out, "its output")] * b.requires_grad

    def backward(self, grad, out, a, b):
        need_a, need_b = self.needs_grad
        grad_a = grad / b
        return (grad_a if need_a else None), (-grad_a * out if need_b else None)


class Neg(_Primitive):
    """y = -x;  dy/dx = -1"""
    __slots__ = ()
    saves_values = False

    def forward(self, x):
        return -x

    def backward(self, grad, out, x):
        return (-grad,)


class Pow(_Primitive):
    """y = x**p for a constant p;  dy/dx = p * x**(p - 1)

    For p = 0 the derivative is 0 everywhere (x**0 = 1), also at x = 0 where p * x**(p - 1) would be 0 * inf."""
    __slots__ = ("p",)

    def __init__(self, p):
        if isinstance(p, (Tensor, np.ndarray)):
            raise TypeError("pow: the exponent must be a constant number, not a Tensor or an array "
                            "(for a varying exponent write (y * x.log()).exp())")
        self.p = float(p)

    def forward(self, x):
        if self.p == -0.5:  # 1 / sqrt(x), as PyTorch: NaN at -inf and -inf at -0.0, where pow gives 0 and +inf
            return 1.0 / (np.sqrt(x) if type(x) is _ndarray or not _foreign(x) else namespace(x).sqrt(x))
        return x ** self.p

    def backward(self, grad, out, x):
        if self.p == 0.0:  # p * x**(p - 1) would be 0 * inf = NaN at x = 0
            return (grad * 0.0,)
        if self.p == 0.5:  # 1 / (2 sqrt(x)) from the output: the signed zero and NaN of sqrt carry over
            return (grad * 0.5 / out,)
        return (grad * self.p * x ** (self.p - 1.0),)


# ============================================================ elementwise functions

class Exp(_Primitive):
    """y = exp(x);  dy/dx = y"""
    __slots__ = ()

    def forward(self, x):
        return np.exp(x) if type(x) is _ndarray or not _foreign(x) else namespace(x).exp(x)

    def backward(self, grad, out, x):
        return (grad * out,)


class Log(_Primitive):
    """y = log(x);  dy/dx = 1 / x"""
    __slots__ = ()

    def forward(self, x):
        return np.log(x) if type(x) is _ndarray or not _foreign(x) else namespace(x).log(x)

    def backward(self, grad, out, x):
        return (grad / x,)


class Tanh(_Primitive):
    """y = tanh(x);  dy/dx = 1 - y**2"""
    __slots__ = ()

    def forward(self, x):
        return np.tanh(x) if type(x) is _ndarray or not _foreign(x) else namespace(x).tanh(x)

    def backward(self, grad, out, x):
        return (grad * (1.0 - out * out),)


class Abs(_Primitive):
    """y = |x|;  dy/dx = sign(x), and 0 at the kink x = 0 (and at NaN, as in PyTorch)"""
    __slots__ = ()

    def forward(self, x):
        return np.abs(x) if type(x) is _ndarray or not _foreign(x) else namespace(x).abs(x)

    def backward(self, grad, out, x):
        xv = _value(x)
        return (grad * (_mask(xv > 0, out) - _mask(xv < 0, out)),)


class Maximum(_Primitive):
    """y = max(a, b) elementwise;  dy/da = [a > b] + [a = b] / 2,  dy/db = [b > a] + [a = b] / 2 (ties split)

    Where a or b is NaN (and so y), both get the whole gradient, as in PyTorch."""
    __slots__ = ()

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("maximum", a, b)
        if type(a) is _ndarray or not _foreign(a) or _ns.is_lazy(a):
            return np.maximum(a, b)  # (NumPy beside Dask: Dask's own ufunc takes over)
        return namespace(a).maximum(a, b)

    def backward(self, grad, out, a, b):
        need_a, need_b = self.needs_grad
        av, bv = _value(a), _value(b)
        half = _mask(av == bv, out) * 0.5  # written as 1 - [loses] - [tie] / 2 so that NaN (no order) gives 1
        return ((grad * (1.0 - _mask(av < bv, out) - half) if need_a else None),
                (grad * (1.0 - _mask(av > bv, out) - half) if need_b else None))


_SELECT_MIN = 4096  # elements: below this np.where's branches cost little (and the predictor learns small masks)
_BITS = {np.dtype(np.float16): np.int16, np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def select(cond, a, b):
    """np.where(cond, a, b), bit for bit. When one side is a 0-d +0.0 (relu's where(keep, z, 0)) and the array is
    large, the other side's bits are multiplied, as integers, by the 0/1 mask: no branch per element. np.where takes
    one, and mispredicts it on about half the elements of a random mask (numpy 2.4, one thread, (256, 1797)
    arrays: 2.2 ms in float32 and float64, against 0.19 ms and 0.42 ms). The result owns its memory, as np.where's."""
    if type(cond) is type(a) is type(b) is _ndarray and cond.size >= _SELECT_MIN and cond.dtype == np.bool_ \
            and a.dtype == b.dtype:
        bits = _BITS.get(a.dtype)
        if bits is not None and (a.ndim == 0 and b.shape == cond.shape and not a.view(bits)
                                 or b.ndim == 0 and a.shape == cond.shape and not b.view(bits)):
            out = np.empty(cond.shape, a.dtype)
            if a.ndim == 0:  # the bits of b times [not cond], as integers: b's bits or 0 (+0.0)
                np.multiply(b.view(bits), ~cond, out=out.view(bits))
            else:
                np.multiply(a.view(bits), cond, out=out.view(bits))
            return out
    return np.where(cond, a, b)


class Where(_Primitive):
    """y = a where cond else b;  dy/da = [cond],  dy/db = [not cond]  (cond is a constant mask)"""
    __slots__ = ("cond",)
    saves_values = False

    def __init__(self, cond):
        cond = _value(cond)
        if type(cond) is not _ndarray:
            cond = cond if _ns.is_foreign(cond) else np.asarray(cond)
        if (cond.dtype != np.bool_) if type(cond) is _ndarray else not _ns.is_bool(cond):
            raise TypeError(f"where: the condition must be boolean (e.g. z > 0); got dtype {cond.dtype}")
        self.cond = cond

    def forward(self, a, b):
        cond = self.cond
        if a.shape != b.shape:
            _check_broadcast("where", a, b)
        for v in (a, b):
            if v.shape != cond.shape:
                _check_broadcast("where", cond, v)
        if type(cond) is type(a) is type(b) is _ndarray:
            return np.where(cond, a, b) if cond.size < _SELECT_MIN else select(cond, a, b)
        if not (_foreign(cond) or _foreign(a) or _foreign(b)):
            return np.where(cond, a, b)
        return _ns.common("where", cond, a, b).where(cond, a, b)

    def backward(self, grad, out, a, b):
        need_a, need_b = self.needs_grad  # a boolean mask multiplies in the gradient's dtype
        return (grad * self.cond if need_a else None), (grad * ~self.cond if need_b else None)


class Log1p(_Primitive):
    """y = log(1 + x), accurate for tiny x;  dy/dx = 1 / (1 + x)"""
    __slots__ = ()

    def forward(self, x):
        return np.log1p(x) if type(x) is _ndarray or not _foreign(x) else namespace(x).log1p(x)

    def backward(self, grad, out, x):
        return (grad / (1.0 + x),)


class Sin(_Primitive):
    """y = sin(x);  dy/dx = cos(x)"""
    __slots__ = ()

    def forward(self, x):
        return np.sin(x) if type(x) is _ndarray or not _foreign(x) else namespace(x).sin(x)

    def backward(self, grad, out, x):
        return (grad * _unary(Cos, x),)


class Cos(_Primitive):
    """y = cos(x);  dy/dx = -sin(x)"""
    __slots__ = ()

    def forward(self, x):
        return np.cos(x) if type(x) is _ndarray or not _foreign(x) else namespace(x).cos(x)

    def backward(self, grad, out, x):
        return (-(grad * _unary(Sin, x)),)


def _unary(op, x):
    """A unary primitive on a Tensor (recorded, for grad-of-grad) or straight on an ndarray (first order)."""
    return op()._record(x) if isinstance(x, Tensor) else op().forward(x)


class Cast(_Primitive):
    """y = x converted to another float dtype;  dx = dy converted back"""
    __slots__ = ("dtype",)
    saves_values = False

    def __init__(self, dtype):
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:  # another library's dtype object (array_api_strict.float32, ...): checked where it runs
            self.dtype = dtype
            return
        if self.dtype.kind != "f":
            raise TypeError(f"astype: a Tensor holds floats (float64 or float32), not {self.dtype}; "
                            f"for integers or booleans use .numpy().astype(...)")

    def forward(self, x):
        if type(x) is _ndarray or not _foreign(x):
            return x.astype(self.dtype)
        xp = namespace(x)
        dtype = _ns.dtype_in(xp, self.dtype)
        if not xp.isdtype(dtype, "real floating"):
            raise TypeError(f"astype: a Tensor holds floats (float64 or float32), not {dtype}")
        return xp.astype(x, dtype)

    def backward(self, grad, out, x):
        return (Cast(x.dtype)._record(grad) if isinstance(grad, Tensor) else _ns.astype(grad, x.dtype),)


# ============================================================ linear algebra

class MatMul(_Primitive):
    """Y = A @ B;  dA = dY @ B.T,  dB = A.T @ dY"""
    __slots__ = ()

    def forward(self, a, b):
        if a.ndim != 2 or b.ndim != 2:
            raise ShapeError(f"matmul: expects 2-D matrices (n, k) @ (k, m); got {a.shape} @ {b.shape} "
                             f"(make vectors columns of shape (n, 1))")
        if a.shape[1] != b.shape[0]:
            raise ShapeError(f"matmul: cannot multiply {a.shape} by {b.shape}: inner sizes "
                             f"{a.shape[1]} and {b.shape[0]} differ")
        return a @ b

    def _reads(self, out):  # each input's gradient reads only the other input
        a, b = self.inputs
        return [(a, "input 0")] * b.requires_grad + [(b, "input 1")] * a.requires_grad

    def backward(self, grad, out, a, b):
        need_a, need_b = self.needs_grad
        return (grad @ b.T if need_a else None), (a.T @ grad if need_b else None)


# ============================================================ reductions

def _axes(axis, ndim, op="axis"):
    """Normalize an axis argument to a sorted tuple of non-negative axes (None: all)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for ax in axes:
        if isinstance(ax, (bool, np.bool_)) or not isinstance(ax, (int, np.integer)):
            raise TypeError(f"{op}: an axis must be an integer, got {ax!r}")
        if not -ndim <= ax < ndim:
            raise ShapeError(f"{op}: axis {ax} is out of range for a tensor with {ndim} dimensions")
        out.append(int(ax) % ndim if ndim else 0)
    return tuple(sorted(out))


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(_Primitive):
    """y = sum of x over axes;  dy/dx = 1 (the gradient is broadcast back over the summed axes)"""
    __slots__ = ("axis", "keepdims")
    saves_values = False

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, bool(keepdims)

    def forward(self, x):
        self.axis = _axes(self.axis, x.ndim, "sum")
        if type(x) is _ndarray or not _foreign(x):
            return np.add.reduce(x, axis=self.axis, keepdims=self.keepdims)
        return namespace(x).sum(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad, out, x):
        return (broadcast_to(grad.reshape(_kept_shape(x.shape, self.axis)), x.shape, like=x),)


class Max(_Primitive):
    """y = max of x over axes;  dy/dx = 1 at the maximum, split evenly among ties, 0 elsewhere

    A slice holding NaN has the max NaN, and its NaN elements share the gradient (as PyTorch's max())."""
    __slots__ = ("axis", "keepdims")

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, bool(keepdims)

    def forward(self, x):
        self.axis = _axes(self.axis, x.ndim, "max")
        empty = [ax for ax in self.axis if x.shape[ax] == 0]
        if empty:
            raise ShapeError(f"max: cannot take the max over axis {empty[0]} of shape {x.shape}: it is empty "
                             f"(the max of no numbers is undefined)")
        if type(x) is _ndarray or not _foreign(x):
            return np.maximum.reduce(x, axis=self.axis, keepdims=self.keepdims)
        return namespace(x).max(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad, out, x):
        kept = _kept_shape(x.shape, self.axis)
        xv, yv = _value(x), _value(out)
        if type(xv) is _ndarray or not _foreign(xv):
            hit = (xv == yv.reshape(kept)) | (xv != xv)  # a NaN anywhere in a slice makes its max NaN
            share = (hit / hit.sum(axis=self.axis, keepdims=True)).astype(yv.dtype)
        else:
            xp = _ns.common("max", xv, yv)
            hit = xp.astype((xv == xp.reshape(yv, kept)) | (xv != xv), yv.dtype)
            share = hit / xp.sum(hit, axis=self.axis, keepdims=True)
        return (grad.reshape(kept) * share,)


# ============================================================ shapes

class Reshape(_Primitive):
    """y = x viewed with another shape;  dx = dy reshaped back"""
    __slots__ = ("shape",)
    saves_values = False

    def __init__(self, shape):
        try:
            self.shape = tuple(operator.index(n) for n in shape)
        except TypeError:
            raise TypeError(f"reshape: sizes must be integers, got {tuple(shape)}") from None

    def forward(self, x):
        try:
            return x.reshape(self.shape) if type(x) is _ndarray or not _foreign(x) else _ns.reshape(x, self.shape)
        except ValueError:
            raise ShapeError(f"reshape: cannot reshape {x.shape} ({x.size} elements) into {self.shape}") from None

    def backward(self, grad, out, x):
        return (grad.reshape(x.shape),)


class Transpose(_Primitive):
    """y = x with its axes permuted;  dx = dy permuted back"""
    __slots__ = ("axes",)
    saves_values = False

    def __init__(self, axes=None):
        self.axes = None if axes is None else tuple(int(a) for a in axes)

    def forward(self, x):
        if self.axes is None:
            self.axes = tuple(reversed(range(x.ndim)))
        elif (len(self.axes) != x.ndim or any(not -x.ndim <= a < x.ndim for a in self.axes)
              or sorted(a % x.ndim for a in self.axes) != list(range(x.ndim))):
            raise ShapeError(f"transpose: axes {self.axes} are not a permutation of the {x.ndim} axes of {x.shape}")
        if type(x) is _ndarray or not _foreign(x):
            return x.transpose(self.axes)
        return namespace(x).permute_dims(x, self.axes)

    def backward(self, grad, out, x):
        return (grad.transpose(tuple(np.argsort([a % out.ndim for a in self.axes]))),)


class BroadcastTo(_Primitive):
    """y = x repeated along broadcast axes to `shape`;  dx = dy summed over them (done by Function)"""
    __slots__ = ("shape", "chunks")
    saves_values = False

    def __init__(self, shape, chunks=None):
        self.shape = tuple(shape)
        self.chunks = chunks  # Dask: the chunks of the result (those of the array it meets), not one huge block

    def forward(self, x):
        try:
            if type(x) is _ndarray or not _foreign(x):
                return np.broadcast_to(x, self.shape)
            return _ns.broadcast_to(x, self.shape, self.chunks)
        except ValueError:
            raise ShapeError(f"broadcast_to: cannot broadcast {x.shape} to {self.shape}") from None

    def backward(self, grad, out, x):
        return (grad,)


def _index(index):
    """Normalize an index: Tensors and lists become integer or boolean arrays; floats are refused."""
    parts = index if isinstance(index, tuple) else (index,)
    out, fancy = [], False
    for p in parts:
        if isinstance(p, Tensor):
            p = p._data
        if isinstance(p, list) and not p:
            p = np.zeros(0, dtype=np.intp)  # x[[]]: no elements, as in NumPy
        if isinstance(p, (list, np.ndarray)):
            p = np.asarray(p)
            if p.dtype.kind == "f":
                raise TypeError(f"getitem: index arrays must hold integers or booleans, got dtype {p.dtype}")
            fancy = fancy or p.dtype.kind in "iu"
        out.append(p)
    return (tuple(out) if isinstance(index, tuple) else out[0]), fancy


class GetItem(_Primitive):
    """y = x[index];  dx = zeros like x with dy added at index (repeated indices accumulate)"""
    __slots__ = ("index", "fancy")
    saves_values = False

    def __init__(self, index):
        self.index, self.fancy = _index(index)

    def forward(self, x):
        return x[self.index] if type(x) is _ndarray or not _foreign(x) else _ns.getitem(x, self.index, self.fancy)

    def backward(self, grad, out, x):
        return (scatter(grad, self.index, x.shape),)


class Scatter(_Primitive):
    """y = zeros(shape) with x added at index (GetItem's backward);  dx = dy[index]"""
    __slots__ = ("index", "fancy", "shape")
    saves_values = False

    def __init__(self, index, shape):
        self.index, self.fancy = _index(index)
        self.shape = tuple(shape)

    def forward(self, x):
        if type(x) is not _ndarray and _foreign(x):
            return _ns.scatter(x, self.index, self.shape, self.fancy)
        y = np.zeros(self.shape, dtype=x.dtype)
        if self.fancy:
            np.add.at(y, self.index, x)  # integer arrays may repeat an index: contributions add up
        else:
            y[self.index] = x
        return y

    def backward(self, grad, out, x):
        return (grad[self.index],)


class Concatenate(_Primitive):
    """y = [x1, x2, ...] joined along axis;  dx_i = the slice of dy that x_i filled"""
    __slots__ = ("axis",)
    saves_values = False

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        if not xs:
            raise ShapeError("concatenate: needs at least one tensor")
        first = xs[0].shape
        self.axis = _axes(self.axis, len(first), "concatenate")[0] if first else self.axis
        for x in xs[1:]:
            if x.ndim != len(first) or any(n != m for i, (n, m) in enumerate(zip(first, x.shape))
                                           if i != self.axis):
                raise ShapeError(f"concatenate: shapes {[t.shape for t in xs]} differ outside axis {self.axis}")
        if not any(type(x) is not _ndarray and _foreign(x) for x in xs):
            return np.concatenate(xs, axis=self.axis)
        return _ns.common("concatenate", *xs).concat(list(xs), axis=self.axis)

    def backward(self, grad, out, *xs):
        grads, start = [], 0
        for x in xs:
            stop = start + x.shape[self.axis]
            grads.append(grad[(slice(None),) * self.axis + (slice(start, stop),)])
            start = stop
        return tuple(grads)


# ============================================================ compositions the Tensor offers (no derivative here)

def broadcast_to(x, shape, like=None):
    """x repeated to `shape` (NumPy broadcasting). Works on Tensors (recorded) and on ndarrays. `like`: the tensor
    the result will meet; for a Dask array its chunks are taken over (a gradient spread back over a sum)."""
    if isinstance(x, Tensor):
        if x.shape == tuple(shape):
            return x
        chunks = _value(like).chunks if like is not None and _ns.is_lazy(_value(like)) else None
        return BroadcastTo(shape, chunks)._record(x)
    out = np.empty(shape, dtype=x.dtype)  # a plain copy: cheaper than np.broadcast_to's view for small arrays
    np.copyto(out, x)                     # (a NumPy function, so that dl.jit can trace the rules that use it)
    return out


def scatter(x, index, shape):
    """zeros(shape) with x added at index. Works on Tensors (recorded) and on ndarrays."""
    if isinstance(x, Tensor):
        return Scatter(index, shape)._record(x)
    return Scatter(index, shape).forward(x)


def where(cond, a, b):
    """a where cond is true, else b (cond: a boolean array, e.g. z > 0; not differentiable)."""
    return Where(cond)._record(a, b)


def maximum(a, b):
    """Elementwise max(a, b); at ties the gradient is split evenly."""
    return Maximum()._record(a, b)


def minimum(a, b):
    """Elementwise min(a, b) = -max(-a, -b); at ties the gradient is split evenly."""
    return -Maximum()._record(-a, -b)


def concatenate(tensors, axis=0):
    """Join tensors along an existing axis."""
    return Concatenate(axis)._record(*tensors)


def stack(tensors, axis=0):
    """Join tensors along a new axis: each is reshaped with a 1 inserted at `axis`, then concatenated."""
    ts = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not ts:
        raise ShapeError("stack: needs at least one tensor")
    ndim = ts[0].ndim + 1
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ShapeError(f"stack: axis {axis} is out of range for stacking tensors of shape {ts[0].shape} "
                         f"(the result has {ndim} dimensions: axis must be in [{-ndim}, {ndim - 1}])")
    ax = int(axis) % ndim
    return concatenate([t.reshape(t.shape[:ax] + (1,) + t.shape[ax:]) for t in ts], axis=ax)


def _mean(self, axis=None, keepdims=False):
    """Average over axes: sum * (1 / count); NaN over no elements (as NumPy and PyTorch)."""
    count = 1
    for ax in _axes(axis, self.ndim, "mean"):
        count *= self.shape[ax]
    return Sum(axis, keepdims)._record(self) * (1.0 / count if count else np.nan)


def _reduce_args(where, axis, keepdims, dim, keepdim, dtype, out):
    """Accept PyTorch's `dim=`/`keepdim=` beside NumPy's `axis=`/`keepdims=`, and NumPy's calling convention
    (`np.mean(t)` passes dtype= and out=)."""
    if dim is not None:
        if axis is not None and axis != dim:
            raise TypeError(f"{where}: got axis={axis!r} and dim={dim!r}; they are the same argument, pass one")
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    if out is not None:
        raise TypeError(f"{where}: out= is not supported (a Tensor's result is a new Tensor)")
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise TypeError(f"{where}: dtype={dtype!r}: a Tensor holds floats (float64 or float32)")
    return axis, bool(keepdims), dtype


def _reduction(reduce, where):
    def method(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None, out=None):
        if dim is None and keepdim is None and dtype is None and out is None:
            return reduce(self, axis, keepdims)
        axis, keepdims, dtype = _reduce_args(where, axis, keepdims, dim, keepdim, dtype, out)
        x = self if dtype is None or np.dtype(dtype) == self.dtype else Cast(dtype)._record(self)
        return reduce(x, axis, keepdims)
    method.__name__ = where
    method.__doc__ = f"{where} over `axis` (or PyTorch's `dim`); `keepdims` (or `keepdim`) keeps reduced axes as 1."
    return method


def _min(self, axis=None, keepdims=False):
    """Smallest value over axes: -max(-x); the gradient goes to the minimum (ties split evenly)."""
    return -Max(axis, keepdims)._record(-self)


def _var(self, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=None, correction=None):
    """Variance: sum((x - mean)**2) / (count - ddof), NumPy's default ddof=0 (the course's 1/m). PyTorch's
    `correction=` is the same as `ddof=` (note torch defaults to 1)."""
    axis, keepdims, _ = _reduce_args("var", axis, keepdims, dim, keepdim, None, None)
    if correction is not None:
        ddof = correction
    axes = _axes(axis, self.ndim, "var")
    count = 1
    for ax in axes:
        count *= self.shape[ax]
    d = self - self.mean(axis=axes, keepdims=True)
    return (d * d).sum(axis=axes, keepdims=keepdims) * (1.0 / (count - ddof) if count > ddof else float("nan"))


def _std(self, *args, **kwargs):
    """Standard deviation: sqrt(var) (same arguments as var). Where the variance is exactly 0 the value and the
    gradient are 0 (as PyTorch), not 0 * inf = NaN: the square root is taken of 1 there and its result discarded."""
    v = _var(self, *args, **kwargs)
    zero = derived(_is_zero, v)
    return Where(zero)._record(0.0, Where(zero)._record(1.0, v) ** 0.5)


def _is_zero(v):
    return v == 0


def _clip(self, min=None, max=None):
    """Values limited to [min, max]; the gradient is 1 inside (boundaries included) and 0 outside. NaN stays NaN,
    with gradient 0, as PyTorch's clamp."""
    if min is None and max is None:
        raise TypeError("clip: give min, max or both")
    inside, clipped = derived(_clip_values, self, min, max)
    return Where(inside)._record(self, clipped)  # np.clip keeps NaN: the value stays NaN


def _clip_values(x, min, max):
    """[min <= x <= max] (False at NaN) and np.clip(x, min, max): the mask and the constant branch of clip."""
    if type(x) is not _ndarray and _foreign(x):
        inside = None
        if min is not None:
            inside = x >= min
        if max is not None:
            inside = x <= max if inside is None else inside & (x <= max)
        return inside, namespace(x).clip(x, min, max)
    inside = np.ones(x.shape, dtype=bool)
    if min is not None:
        inside &= x >= min
    if max is not None:
        inside &= x <= max
    return inside, np.clip(x, min, max)


def _squeeze(self, axis=None, *, dim=None):
    """The same values without axes of size 1 (all of them, or the given ones)."""
    axis = dim if axis is None else axis
    axes = set(i for i, n in enumerate(self.shape) if n == 1) if axis is None else set(_axes(axis, self.ndim, "squeeze"))
    for ax in axes:
        if self.shape[ax] != 1:
            raise ShapeError(f"squeeze: axis {ax} of shape {self.shape} has size {self.shape[ax]}, not 1")
    return Reshape(tuple(n for i, n in enumerate(self.shape) if i not in axes))._record(self)


def _astype(self, dtype):
    """The values in another float dtype (differentiable; the gradient comes back in this tensor's dtype)."""
    if type(self._data) is not _ndarray and _foreign(self._data):
        dtype = _ns.dtype_in(namespace(self._data), dtype)
        return self if dtype == self.dtype else Cast(dtype)._record(self)
    return self if np.dtype(dtype) == self.dtype else Cast(dtype)._record(self)


def _shape_args(args):
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def _rpow(self, base):
    if isinstance(base, (int, float)) and base > 0:
        return (self * float(np.log(base))).exp()
    raise TypeError("pow: a constant base must be a positive number (base ** t = exp(t * log(base)))")


# ============================================================ binding: the Tensor's operators and methods

Tensor.__add__ = lambda self, other: Add()._record(self, other)
Tensor.__radd__ = lambda self, other: Add()._record(other, self)
Tensor.__sub__ = lambda self, other: Sub()._record(self, other)
Tensor.__rsub__ = lambda self, other: Sub()._record(other, self)
Tensor.__mul__ = lambda self, other: Mul()._record(self, other)
Tensor.__rmul__ = lambda self, other: Mul()._record(other, self)
Tensor.__truediv__ = lambda self, other: Div()._record(self, other)
Tensor.__rtruediv__ = lambda self, other: Div()._record(other, self)
Tensor.__neg__ = lambda self: Neg()._record(self)
Tensor.__pow__ = lambda self, p: Pow(p)._record(self)
Tensor.__rpow__ = _rpow
Tensor.__matmul__ = lambda self, other: MatMul()._record(self, other)
Tensor.__rmatmul__ = lambda self, other: MatMul()._record(other, self)
Tensor.__getitem__ = lambda self, index: GetItem(index)._record(self)
Tensor.exp = lambda self: Exp()._record(self)
Tensor.log = lambda self: Log()._record(self)
Tensor.tanh = lambda self: Tanh()._record(self)
Tensor.abs = lambda self: Abs()._record(self)
Tensor.sqrt = lambda self: Pow(0.5)._record(self)
Tensor.sum = _reduction(lambda x, axis, keepdims: Sum(axis, keepdims)._record(x), "sum")
Tensor.max = _reduction(lambda x, axis, keepdims: Max(axis, keepdims)._record(x), "max")
Tensor.min = _reduction(_min, "min")
Tensor.mean = _reduction(_mean, "mean")
Tensor.var = _var
Tensor.std = _std
Tensor.log1p = lambda self: Log1p()._record(self)
Tensor.sin = lambda self: Sin()._record(self)
Tensor.cos = lambda self: Cos()._record(self)
Tensor.__abs__ = lambda self: Abs()._record(self)
Tensor.clip = _clip
Tensor.squeeze = _squeeze
Tensor.flatten = lambda self: Reshape((self.size,))._record(self)
Tensor.clone = lambda self: Mul()._record(self, 1.0)
Tensor.astype = _astype
Tensor.reshape = lambda self, *shape: Reshape(_shape_args(shape))._record(self)
Tensor.transpose = lambda self, *axes: Transpose(_shape_args(axes) or None)._record(self)
Tensor.T = property(lambda self: Transpose()._record(self))
Tensor.broadcast_to = lambda self, *shape: broadcast_to(self, _shape_args(shape))
