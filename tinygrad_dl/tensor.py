"""The Tensor, the Function base class of every primitive, and the reverse-mode engine.

A Tensor records the Function that made it (`creator`); a Function records its `inputs`. Nothing points back
from a Function to its output, so a graph is freed by reference counting the moment its last tensor goes.
`backward()` walks `toposort()` in reverse, keeps the gradients in a dict, and writes `.grad` on leaves at the end.
This module knows no derivative: every rule lives in `ops.py`, whose classes also bind the Tensor's operators.
"""
from __future__ import annotations

import contextvars
import copy
import functools
import inspect
import math
import operator
import os
import traceback
import weakref

import numpy as np

from . import _namespace as _ns

_ndarray, _generic = np.ndarray, np.generic  # fast-path tests: a module global reads faster than np.ndarray
# Grad mode, anomaly mode and dl.jit's capture, per thread (and per asyncio task): one small int, read once per op.
_GRAD, _ANOMALY, _CAPTURE = 1, 2, 4
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_mode = contextvars.ContextVar("tinygrad_dl_mode", default=_GRAD)
_entered = contextvars.ContextVar("tinygrad_dl_mode_tokens", default=())  # (mode object, token) per `with`, per context
_capture = contextvars.ContextVar("tinygrad_dl_capture", default=None)  # the recorder, while dl.jit captures


def is_grad_enabled() -> bool:
    """True when operations are being recorded for backward (not inside `no_grad()`)."""
    return bool(_mode.get() & _GRAD)


class _SetMode:
    """Context manager and decorator that switches flags of the per-thread mode on or off.

    One object may be entered from several threads or asyncio tasks at once (each context keeps its own tokens),
    and as a decorator of a generator function it holds while the generator's body runs, not only while it is
    created."""

    def __init__(self, flag: int, on: bool):
        self.flag, self.on = flag, on

    def __enter__(self):
        mode = _mode.get()
        token = _mode.set(mode | self.flag if self.on else mode & ~self.flag)
        _entered.set(_entered.get() + ((self, token),))
        return self

    def __exit__(self, *exc):
        stack = _entered.get()
        i = max(k for k, (ctx, _) in enumerate(stack) if ctx is self)
        _mode.reset(stack[i][1])
        _entered.set(stack[:i] + stack[i + 1:])
        return False

    def __call__(self, func):
        flag, on = self.flag, self.on
        if inspect.isgeneratorfunction(func):
            @functools.wraps(func)
            def generator(*args, **kwargs):
                gen = func(*args, **kwargs)
                resume, arg = gen.send, None
                while True:
                    try:
                        with _SetMode(flag, on):
                            value = resume(arg)
                    except StopIteration as stop:
                        return stop.value
                    try:
                        resume, arg = gen.send, (yield value)
                    except GeneratorExit:
                        with _SetMode(flag, on):
                            gen.close()
                        raise
                    except BaseException as exc:  # thrown into us: pass it on, inside the mode
                        resume, arg = gen.throw, exc
            return generator

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with _SetMode(flag, on):
                return func(*args, **kwargs)
        return wrapper


def no_grad():
    """Record nothing inside: `with dl.no_grad(): ...` or `@dl.no_grad()`. Per thread, not global."""
    return _SetMode(_GRAD, False)


def enable_grad():
    """Record operations again inside a `no_grad()` block."""
    return _SetMode(_GRAD, True)


def detect_anomaly():
    """Raise at the first op whose forward value or backward gradient holds NaN or inf, naming the op and the
    line of user code that created it. Off by default; costs nothing when off."""
    return _SetMode(_ANOMALY, True)


class ShapeError(ValueError):
    """A shape mismatch, reported in our words by the op that met it, before NumPy's."""


class Tensor:
    """An n-dimensional array of floats that records the operations made from it (define-by-run).

    Tensor(data, requires_grad=False, dtype=None, name=None): Python numbers, lists and integer arrays become
    float64; float32 stays float32. An ndarray is used without copying unless `requires_grad=True` (parameters
    are copied, so in-place updates never touch the caller's array). An array of another library that follows the
    Python Array API standard (Dask, CuPy, array_api_strict, ...) stays in its library: every op on it computes
    there, and only `.item()`, `.numpy()`, `np.asarray(t)` and printing bring values back to NumPy.
    """

    __slots__ = ("_data", "grad", "requires_grad", "creator", "name", "_retain", "_version", "__weakref__")
    __array_ufunc__ = None  # ndarray <op> Tensor defers to Tensor's reflected operators instead of looping
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        if isinstance(data, Tensor):
            data = data._data
        elif data is None:
            raise TypeError("Tensor: data is None (a gradient that was never computed, or a value never set?)")
        elif isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flatten_lists(data)):
            raise TypeError("Tensor: a list of Tensors would cut them from the graph; join them with "
                            "dl.stack(tensors) (new axis) or dl.concatenate(tensors, axis) instead")
        if type(data) is not _ndarray and _ns.is_foreign(data):
            arr = _ns.as_float(data, dtype, copy=requires_grad)  # stays in its own library
        else:
            arr = np.array(data, dtype=dtype, copy=True) if requires_grad else np.asarray(data, dtype=dtype)
            if dtype is None and arr.dtype.kind in "biu":
                arr = arr.astype(np.float64)
            if arr.dtype.kind != "f":
                raise TypeError(f"Tensor: data must be floating point to carry a gradient; got dtype {arr.dtype} "
                                f"(use float64 or float32)")
        self._data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.creator = None
        self.name = name
        self._retain = False

    @staticmethod
    def _make(data, requires_grad=False, creator=None):
        """Fast internal constructor: `data` is already a float ndarray."""
        t = _new(Tensor)
        t._data, t.grad, t.requires_grad, t.creator, t.name, t._retain = data, None, requires_grad, creator, None, False
        return t

    @property
    def data(self) -> np.ndarray:
        """The values: an ndarray, or the array of the library the tensor computes in (Dask, CuPy, ...; moving
        parameters there is `p.data = xp.asarray(p.data)`). Assigning to it (`t.data = ...`, `t.data -= ...`)
        counts as a change of the tensor: a graph that saved it refuses to backpropagate through the old values."""
        return self._data

    @data.setter
    def data(self, value):
        self._data = value
        self._modified()

    def _modified(self):
        """Record that the values changed in place (optimizers call this after each update). The count goes on the
        tensor and on the memory it views, so a change made through a view or a detached copy is seen too."""
        global _EDITS
        _EDITS += 1
        self._version = _EDITS
        data = self._data
        root = data if type(data) is np.ndarray and data.base is None else _root(data)
        entry = _ARRAY_EDITS.get(id(root))
        if entry is not None and entry[0]() is root:
            entry[1] = _EDITS
            return
        try:
            key = id(root)
            ref = weakref.ref(root, lambda _, key=key: _ARRAY_EDITS.pop(key, None))
        except TypeError:  # an array type without weak references: the tensor's own count still holds
            return
        _ARRAY_EDITS[key] = [ref, _EDITS]

    # --- plain properties ------------------------------------------------------
    shape = property(lambda self: self._data.shape)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    dtype = property(lambda self: self._data.dtype)

    def __len__(self):
        if type(self._data) is _ndarray or self.ndim == 0:
            return len(self._data)
        return self.shape[0]

    def __bool__(self):
        return bool(self.data)  # as NumPy: a one-element tensor's truth; ambiguous for more (ValueError)

    def __float__(self):
        return float(self.item())

    def numpy(self) -> np.ndarray:
        """The value as an ndarray (shared, not copied). For another library's array this is where values come
        back to NumPy: a Dask array is computed, a GPU array copied to the host."""
        data = self._data
        return data if type(data) is _ndarray else _ns.to_numpy(data)

    def item(self) -> float:
        """The value of a one-element tensor as a Python float (computes it, for a Dask array)."""
        data = self._data
        return data.item() if type(data) is _ndarray else _ns.to_numpy(data).item()

    def detach(self) -> "Tensor":
        """The same values, cut from the graph (shares memory)."""
        return Tensor._make(self._data)

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t), plt.plot(t), ...: the values (the graph is not followed into NumPy)."""
        data = self.numpy()
        if copy:
            return np.array(data, dtype=dtype, copy=True)
        return data if dtype is None else data.astype(dtype, copy=False)

    def tolist(self):
        """The values as (nested) Python lists of floats."""
        return self.numpy().tolist()

    def retain_grad(self) -> "Tensor":
        """Keep `.grad` on this intermediate tensor after backward (leaves always keep theirs)."""
        self._retain = True
        return self

    def __repr__(self):
        extra = f", name={self.name!r}" if self.name else ""
        extra += f", creator={self.creator.name}" if self.creator is not None else ""
        extra += ", requires_grad=True" if self.requires_grad else ""
        data = self._data
        if type(data) is not _ndarray and _ns.is_lazy(data):
            return f"Tensor({data!r}{extra})"  # Dask's summary: printing never computes a lazy array
        if type(data) is not _ndarray:
            extra = f", array={_ns.library(data)}" + extra
            data = _ns.to_numpy(data)
        body = np.array2string(data, precision=4, threshold=20, prefix="Tensor(")
        return f"Tensor({body}, dtype={self.dtype}{extra})"

    # --- in-place updates: the course's `W -= alpha * dW`, under no_grad() -----------------------------
    def _inplace(self, other, ufunc, symbol):
        if is_grad_enabled() and (self.requires_grad or getattr(other, "requires_grad", False)):
            if self.creator is None and self.requires_grad:
                raise RuntimeError(
                    f"in-place {symbol} on a leaf tensor{_called(self)} that requires grad would be recorded as a new "
                    f"op and the parameter would stop being a leaf; update it inside `with dl.no_grad():` "
                    f"(as optimizers do), or change `.data` directly")
            return NotImplemented  # a recorded tensor: Python falls back to the ordinary operator (a new node)
        value = _value(other)
        data = self._data
        if type(data) is not _ndarray:
            return self._inplace_foreign(value, symbol)
        if not data.flags.writeable:
            raise ValueError(f"in-place {symbol}: the data of this tensor{_called(self)} is read-only")
        result_shape = np.broadcast_shapes(data.shape, np.shape(value))
        if result_shape != data.shape:
            raise ShapeError(f"in-place {symbol}: the right side of shape {np.shape(value)} would change the tensor's "
                             f"shape {data.shape} to {result_shape}")
        ufunc(data, value, out=data, casting="same_kind")
        self._modified()
        return self

    def _inplace_foreign(self, value, symbol):
        """In place on another library's array: its own in-place operator (a Dask array, immutable, is replaced)."""
        data = self._data
        if not isinstance(value, (int, float)):
            _ns.common(f"in-place {symbol}", data, value)
        result_shape = np.broadcast_shapes(data.shape, np.shape(value))
        if result_shape != data.shape:
            raise ShapeError(f"in-place {symbol}: the right side of shape {np.shape(value)} would change the tensor's "
                             f"shape {data.shape} to {result_shape}")
        self._data = _INPLACE[symbol](data, value)
        self._modified()
        return self

    def __iadd__(self, other): return self._inplace(other, np.add, "+=")
    def __isub__(self, other): return self._inplace(other, np.subtract, "-=")
    def __imul__(self, other): return self._inplace(other, np.multiply, "*=")
    def __itruediv__(self, other): return self._inplace(other, np.true_divide, "/=")

    # comparisons are not differentiable: they return plain boolean arrays (masks that dl.jit recomputes)
    def __lt__(self, other): return derived(np.less, self, other)
    def __le__(self, other): return derived(np.less_equal, self, other)
    def __gt__(self, other): return derived(np.greater, self, other)
    def __ge__(self, other): return derived(np.greater_equal, self, other)
    __hash__ = object.__hash__

    # --- backward ----------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Backpropagate from this tensor; gradients ACCUMULATE into the `.grad` of leaves (and of tensors that
        called `retain_grad()`). A non-scalar output needs `grad` of its own shape."""
        if _mode.get() & _CAPTURE:
            return _capture.get().backward(self, grad, retain_graph)  # dl.jit records the pass, then runs it
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input had requires_grad=True, "
                               "or it was computed under no_grad())")
        grads = run_backward([self], None if grad is None else [grad], retain_graph=retain_graph,
                             keep="leaves")
        seen = {id(_value(grad))}
        for t, g in grads.items():
            if type(g) is not _ndarray:
                if id(g) in seen and not _ns.is_lazy(g):  # (a Dask array never changes: sharing is safe)
                    g = _ns.namespace(g).asarray(g, copy=True)
            elif id(g) in seen or g.base is not None or not g.flags.writeable:
                g = g.copy()  # never alias a caller's array, a view, or an array another tensor also got
            seen.add(id(g))
            t.grad = g if t.grad is None else t.grad + g

    def _repr_html_(self):
        """Jupyter's rich display: shape, dtype, name, creator, grad and a bounded preview (display.py)."""
        from .display import tensor_html
        return tensor_html(self)


_new = object.__new__
_INPLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv}


def _flatten_lists(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flatten_lists(x)
        else:
            yield x


def _value(x):
    return x._data if isinstance(x, Tensor) else x


def _shape(x) -> tuple:
    x = _value(x)
    return x.shape if hasattr(x, "shape") else np.shape(x)


# --- what dl.jit's capture needs from the rest of the library ----------------------------------------------
# Four helpers let compositions and library objects say what a captured program must recompute, check or repeat;
# derived, branch and guarded cost one flag test when no capture runs, replayed nothing.

def derived(fn, *args):
    """fn(*values): a value computed from tensors' values outside the graph (a mask, a constant shift, a
    correction term, a check that raises). Tensors among `args` are passed as their arrays; the result has no
    gradient. dl.jit records the call, so its replay computes the value again from the new data (never frozen)."""
    if len(args) == 1:  # (the usual case, without building a list: this runs in every step)
        a = args[0]
        out = fn(a._data if isinstance(a, Tensor) else a)
    else:
        out = fn(*[a._data if isinstance(a, Tensor) else a for a in args])
    if _mode.get() & _CAPTURE:
        return _capture.get().derived(fn, args, out)
    return out


REPLAYED: list = []  # the functions marked by `replayed`


def replayed(fn):
    """Mark a library function whose effects lie outside the graph (an optimizer's step and zero_grad, a dropout
    mask drawn from a Generator): dl.jit's replay calls it again, in the same order, with the same arguments,
    instead of freezing what it did. The mark costs nothing: only while dl.jit captures does a recording wrapper
    stand in its place."""
    REPLAYED.append(fn)
    return fn


def guarded(obj, attr: str):
    """getattr(obj, attr) for a flag that decides Python control flow (a module's `training`): dl.jit keeps a
    captured program only while the flag has the value it had during the capture."""
    value = getattr(obj, attr)
    if _mode.get() & _CAPTURE:
        _capture.get().guard(obj, attr, value)
    return value


def branch(fn, *args) -> bool:
    """bool(fn(*values)): whether a composition may take a shortcut that holds for these values (e.g. no log of
    binary cross-entropy is clamped). Eagerly, just the answer. While dl.jit captures, a True is kept only where a
    replay can check it again before it has changed anything (no optimizer step, in-place change or dropout draw
    before it in the function); the replay then checks fn first, and if the answer has changed the call is
    captured again. Where it cannot be kept, the answer is False: the composition takes its general form."""
    value = bool(fn(*[a._data if isinstance(a, Tensor) else a for a in args]))
    if value and _mode.get() & _CAPTURE:
        return _capture.get().branch(fn, args)
    return value


def is_capturing() -> bool:
    """True while dl.jit captures a function in this thread (compositions then take their general,
    branch-free form, which gives the same numbers as the shortcuts eager mode may take)."""
    return bool(_mode.get() & _CAPTURE)


# --- Function: the base class of every primitive ------------------------------------------------------

PRIMITIVES: dict[str, type] = {}  # name -> class: every subclass of the primitive base class in ops.py
_EDITS = 0  # counts in-place changes of tensors; a tensor's _version is the count at its last change
_ARRAY_EDITS: dict = {}  # id(base array) -> [weak reference to it, count at the last change through any tensor]


def _root(arr):
    """The array that owns the memory `arr` views."""
    base = getattr(arr, "base", None)
    while isinstance(base, np.ndarray):
        arr, base = base, base.base
    return arr


def _edits_of(t) -> int:
    """The count at the last in-place change of t's values, through t or through any tensor sharing its memory."""
    root = _root(t._data)
    entry = _ARRAY_EDITS.get(id(root))
    shared = entry[1] if entry is not None and entry[0]() is root else 0
    return max(getattr(t, "_version", 0), shared)
_UNSET = object()


class Function:
    """One node of the graph: `forward` on ndarrays, `backward` with Tensors (see ops.py).

    Subclass it to write a primitive: `forward(self, *arrays) -> ndarray` and
    `backward(self, grad, out, *inputs) -> tuple` with one gradient per input (or None), each shaped like the
    input or like the output (broadcast dimensions are summed back here, in one place). Write the rule with
    Tensor operations on `grad`, `out` and `inputs`, so it is itself differentiable (grad-of-grad).
    Built-in primitives set `ndarray_backward = True`: their rule uses only operations that ndarrays share with
    Tensors, so for a first-order backward it runs directly on ndarrays (one definition, two speeds).
    An instance may be called more than once: each call records its own node (a copy of the instance).
    """

    __slots__ = ("inputs", "site", "edits")
    ndarray_backward = False
    saves_values = True  # False for rules that never read the values of inputs or output (add, reshape, ...)

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def rule(self) -> str:
        """The op's one-line math docstring."""
        return (type(self).__doc__ or "").strip().splitlines()[0] if type(self).__doc__ else ""

    @property
    def needs_grad(self) -> tuple:
        """Which inputs need a gradient (rules skip the expensive ones that do not)."""
        inputs = self.inputs
        if len(inputs) == 2:
            return inputs[0].requires_grad, inputs[1].requires_grad
        return tuple([x.requires_grad for x in inputs])

    @classmethod
    def apply(cls, *inputs, **params):
        """Build the op with its constant parameters and call it on `inputs` (Tensors, numbers or arrays)."""
        return cls(**params)(*inputs)

    def __call__(self, *inputs):
        """Run the op; an instance already recorded in a graph runs as a fresh copy, so each call is its own node."""
        fn = self if getattr(self, "inputs", _UNSET) is _UNSET else copy.copy(self)
        return Function._record(fn, *inputs)

    def _record(self, *inputs):
        # the hot path of every forward op, kept flat on purpose (one and two inputs without generic loops): a planar
        # training step runs 1.26M instructions with it and 1.52M with the generic branch alone (callgrind).
        # The library's own call sites (ops.py) make a fresh instance every time, so they call this directly.
        try:
            if len(inputs) == 2:
                a, b = inputs
                if type(a) is not Tensor:
                    a = _constant(a, b if type(b) is Tensor else None)
                    inputs = a, b
                if type(b) is not Tensor:
                    b = _constant(b, a)
                    inputs = a, b
                ad, bd = a._data, b._data
                if type(ad) is not type(bd):  # one library, or NumPy beside Dask; never a silent conversion
                    _ns.common(self.name.lower(), ad, bd)
                data = self.forward(ad, bd)
                needs = a.requires_grad or b.requires_grad
            elif len(inputs) == 1 and type(inputs[0]) is Tensor:
                x = inputs[0]
                data = self.forward(x._data)
                needs = x.requires_grad
            else:
                inputs = _as_tensors(inputs)
                arrays = [t._data for t in inputs]
                if any(type(d) is not _ndarray for d in arrays):
                    _ns.common(self.name.lower(), *arrays)
                data = self.forward(*arrays)
                needs = any(t.requires_grad for t in inputs)
        except ShapeError:
            raise
        except _OperandError as e:
            raise TypeError(f"{self.name.lower()}: {e}") from None
        except ValueError as e:  # NumPy's broadcasting errors, re-raised in our words
            shapes = " and ".join(str(_shape(t)) for t in inputs)
            raise ValueError(f"{self.name.lower()}: cannot combine shapes {shapes}: {e}") from None
        if type(data) is not _ndarray and (isinstance(data, _generic) or not _ns.is_foreign(data)):
            data = np.asarray(data)  # NumPy gives scalars for 0-d results
        mode = _mode.get()
        if mode & _ANOMALY:
            self.site = _user_site()
            _check_finite(data, self, "forward value")
        out = _new(Tensor)
        out._data = data
        out.grad = out.name = None
        out._retain = False
        if needs and mode & _GRAD:
            self.inputs = inputs
            self.edits = _EDITS
            out.requires_grad = True
            out.creator = self
        else:
            out.requires_grad = False
            out.creator = None
        if mode & _CAPTURE:
            _capture.get().op(self, inputs, out)
        return out

    def forward(self, *arrays):
        raise NotImplementedError

    def _reads(self, out) -> list:
        """The tensors whose values the rule reads, with their role: checked for changes made in place after the
        forward pass. By default all inputs and the output; primitives that read less say so."""
        return [(out, "its output")] + [(x, f"input {i}") for i, x in enumerate(self.inputs)]

    def backward(self, grad, out, *inputs):
        raise NotImplementedError

    def __repr__(self):
        return f"<{self.name}>"


def _as_tensors(args) -> tuple:
    """Inputs as Tensors: numbers and arrays become constants (numbers in the dtype of the first tensor)."""
    ref = next((a for a in args if type(a) is Tensor), None)
    return tuple(a if type(a) is Tensor else _constant(a, ref) for a in args)


class _GradShapeError(ShapeError):
    """A rule's gradient that fits neither its input nor a broadcast of it; the engine adds the op's name."""


class _OperandError(TypeError):
    """An operand that cannot become a Tensor; the op that met it adds its name."""


_CONSTANTS: dict = {}  # (value, dtype) -> constant Tensor: numbers like 1, 0.5, 1/m recur in every step


def _constant(x, ref):
    """Wrap a number or array as a constant Tensor; Python numbers take the dtype of the tensor beside them
    (NumPy 2's rule: a Python float never upcasts float32)."""
    if (type(x) is float or type(x) is int) and ref is not None:
        if type(ref._data) is not _ndarray and not _ns.is_lazy(ref._data):
            return Tensor._make(_ns.constant(x, ref._data))  # in the library of the tensor beside it
        # 0.0 == -0.0 and NaN != NaN: the cache holds only numbers whose equality means identity
        if x == x and (x != 0 or type(x) is int or math.copysign(1.0, x) > 0):
            key = (x, ref._data.dtype)
            t = _CONSTANTS.get(key)
            if t is None:
                if len(_CONSTANTS) > 4096:
                    _CONSTANTS.clear()
                arr = np.asarray(x, dtype=ref._data.dtype)
                arr.flags.writeable = False
                t = _CONSTANTS[key] = Tensor._make(arr)
            return t
        return Tensor._make(np.asarray(x, dtype=ref._data.dtype))
    if x is None:
        raise _OperandError("an operand is None (a gradient that was never computed, or a value never set?)")
    if isinstance(x, (float, int, np.number)) and not isinstance(x, bool) and ref is not None:
        if type(ref._data) is _ndarray:
            return Tensor._make(np.asarray(x, dtype=ref._data.dtype))  # NumPy scalars too (not cached: they vary)
        return Tensor._make(_ns.constant(x.item() if isinstance(x, np.number) else x, ref._data))
    if isinstance(x, np.ndarray) and x.dtype == np.bool_ and ref is not None:
        return Tensor._make(derived(np.ndarray.astype, x, ref._data.dtype))  # a mask multiplies in the tensor's dtype
    if ref is not None and _ns.is_foreign(x) and _ns.is_bool(x):
        return Tensor._make(_ns.astype(x, ref._data.dtype))
    return Tensor(x)


def sum_to_shape(g, shape):
    """Undo broadcasting: sum a gradient shaped like an op's output back to one input's `shape`.
    Works on ndarrays and on Tensors (the one place broadcasting is undone), and on other libraries' arrays."""
    got = g.shape
    if got == shape:
        return g
    if type(g) is not _ndarray and type(g) is not Tensor and _ns.is_foreign(g):
        g = Tensor._make(g)  # another library's array: the Tensor's sum and reshape call its namespace
        with _SetMode(_GRAD, False):
            return sum_to_shape(g, shape)._data
    lead = g.ndim - len(shape)
    if lead < 0:
        raise _GradShapeError(f"returned a gradient of shape {got} for an input of shape {shape}; it must have "
                              f"the input's shape (or the output's shape, when the input was broadcast)")
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    g = g.sum(axis=axes, keepdims=True) if axes else g
    if g.shape[lead:] != shape:  # not a broadcast of the input: refuse rather than reshape into a wrong answer
        raise _GradShapeError(f"returned a gradient of shape {got} for an input of shape {shape}; it must have "
                              f"the input's shape (or the output's shape, when the input was broadcast)")
    return g.reshape(shape) if lead else g


# --- the engine -------------------------------------------------------------------------------------------

def toposort(roots, include_constants=False) -> list:
    """All tensors the roots depend on, inputs before outputs. Iterative (a million-op chain is fine).
    Constants (tensors that need no gradient) are left out unless `include_constants=True`."""
    order, seen = [], set()
    stack = [(r, False) for r in roots]
    pop, push, visit = stack.pop, stack.append, seen.add
    while stack:
        t, expanded = pop()
        if expanded:
            order.append(t)
            continue
        if t in seen:
            continue
        visit(t)
        push((t, True))
        fn = t.creator
        if fn is not None:
            inputs = fn.inputs
            if inputs is None:
                raise RuntimeError(f"backward: the graph through {fn.name} was already freed by an earlier "
                                   f"backward(); pass retain_graph=True to the first backward to go through it again")
            for x in inputs:
                if (include_constants or x.requires_grad) and x not in seen:
                    push((x, False))
    return order


def run_backward(roots, grads=None, *, retain_graph=False, create_graph=False, hook=None, keep=None) -> dict:
    """The backward pass: {tensor: gradient}, ndarrays (or recorded Tensors when `create_graph=True`).

    keep=None returns every tensor's gradient; keep="leaves" only leaves' and `retain_grad()` tensors';
    a set of tensors returns those (plus leaves). Other intermediate gradients are dropped as soon as used.
    `hook(out, fn, grad_out, input_grads)` sees every op in the engine's order (the visualizer uses it).
    """
    order = toposort(roots)
    keep_all, wanted = keep is None, keep if isinstance(keep, (set, frozenset)) else ()
    grad_of, owned = {}, set()  # owned: ids of sums this pass allocated, safe to add into in place
    for r, g in zip(roots, grads or [None] * len(roots)):
        _accumulate(grad_of, owned, r, _root_grad(r, g, create_graph))
    # Rules run on Tensors when recording (grad-of-grad) and for other libraries' arrays, whose forwards call the
    # arrays' own namespace; a first-order NumPy pass runs them directly on ndarrays.
    on_tensors = create_graph
    for g in grad_of.values():
        if type(g) is not _ndarray:
            on_tensors = True
    mode = _mode.get()
    if mode & _CAPTURE:
        _capture.get().unsupported("a backward pass with grad(), create_graph or a hook")
    token = _mode.set((mode | _GRAD) if create_graph else (mode & ~_GRAD))
    try:
        for t in reversed(order):
            fn = t.creator
            if fn is None:
                continue
            g = grad_of.get(t) if keep_all or t._retain or t in wanted else grad_of.pop(t, None)
            if g is None:
                continue
            inputs = fn.inputs
            if fn.edits != _EDITS and fn.saves_values:  # something changed in place since fn ran: was it ours?
                _check_unchanged(fn, t, inputs)
            if on_tensors or not fn.ndarray_backward:
                in_grads = _tensor_rule(fn, g, t, create_graph)
            elif len(inputs) == 2:  # first order, on ndarrays; the direct two-input call: 2.8% fewer instructions per
                # planar step than the generic call below (callgrind, 1.265M vs 1.301M)
                in_grads = fn.backward(g, t._data, inputs[0]._data, inputs[1]._data)
            else:
                in_grads = fn.backward(g, t._data, *[x._data for x in inputs])
            if owned:
                owned.discard(id(g))  # a rule may pass g itself on to its inputs: no longer ours to add into
            if hook is not None or mode & _ANOMALY:
                in_grads = _fit_all(fn, in_grads, inputs)
                if hook is not None:
                    hook(t, fn, g, in_grads)
            for x, gx in zip(inputs, in_grads):
                if gx is not None and x.requires_grad:
                    xd = x._data
                    if type(gx) is not _ndarray or gx.shape != xd.shape or gx.dtype is not xd.dtype:
                        gx = _fit(gx, x)
                        on_tensors = on_tensors or type(gx) is not _ndarray  # another library's array from here on
                    if x in grad_of:
                        _accumulate(grad_of, owned, x, gx)
                    else:
                        grad_of[x] = gx
            if not retain_graph:
                fn.inputs = None  # release the saved inputs: memory goes back now, a second pass is an error
    except _GradShapeError as e:
        i = next((k for k, r in enumerate(in_grads) if r is not None and _shape(r) != inputs[k].shape), "?")
        raise ShapeError(f"{fn.name}.backward {e} (input {i})") from None
    finally:
        _mode.reset(token)
    if keep_all:
        return grad_of
    return {t: g for t, g in grad_of.items() if t.creator is None or t._retain or t in wanted}


def _check_unchanged(fn, out, inputs):
    """Refuse to backpropagate through values that changed in place after the op saved them."""
    edits = fn.edits  # a tensor's _version is set only when it changes in place: unchanged tensors have none
    changed = [(x, role) for x, role in fn._reads(out) if _edits_of(x) > edits]
    if changed:
        x, role = changed[0]
        raise RuntimeError(
            f"backward: {role}{_called(x)} of shape {x.shape} of {fn.name} was changed in place (an optimizer step, "
            f"`-=`, or `.data = ...`) after {fn.name} used it in the forward pass; its gradient would use the new "
            f"values. Call backward() before changing parameters, or recompute the forward pass after the change")


def _called(t) -> str:
    return f" {t.name!r}" if t.name else ""


def _tensor_rule(fn, g, out, create_graph):
    """Run a rule on Tensors: recorded for grad-of-grad, or under no_grad for rules written only for Tensors."""
    raw = fn.backward(g if type(g) is Tensor else Tensor._make(g), out, *fn.inputs)
    n = len(fn.inputs)
    if isinstance(raw, (Tensor, np.ndarray)) or raw is None or _ns.is_foreign(raw):
        if n != 1:
            raise TypeError(f"{fn.name}.backward returned a single {type(raw).__name__}; it must return a tuple of "
                            f"{n} gradients, one per input (None for an input that needs none)")
        raw = (raw,)
    elif not isinstance(raw, (tuple, list)):
        raise TypeError(f"{fn.name}.backward must return a tuple of {n} gradients (one per input), "
                        f"got {type(raw).__name__}")
    if len(raw) != n:
        raise TypeError(f"{fn.name}.backward returned {len(raw)} gradients for its {n} inputs; return one per "
                        f"input, in order (None for an input that needs none)")
    for i, (r, x) in enumerate(zip(raw, fn.inputs)):
        if r is None:
            continue
        if (not isinstance(r, (Tensor, np.ndarray, float, int, np.number)) or isinstance(r, bool)) \
                and not _ns.is_foreign(r):
            raise TypeError(f"{fn.name}.backward: the gradient for input {i} is a {type(r).__name__}, "
                            f"expected a Tensor shaped like the input {x.shape} (or like the output)")
        if create_graph and x.requires_grad and not isinstance(r, Tensor):
            raise TypeError(f"{fn.name}.backward returned an ndarray for input {i} while create_graph=True: a rule "
                            f"computed on `.data` (ndarrays) records no graph, so every second derivative through "
                            f"it would silently be 0. Write the rule with Tensor operations on grad, out and inputs")
        if create_graph and type(g) is Tensor and g.requires_grad and x.requires_grad and not r.requires_grad:
            raise TypeError(f"{fn.name}.backward: the gradient for input {i} does not depend on the incoming "
                            f"gradient (was it computed from `.data`?); under create_graph=True its second "
                            f"derivatives would silently be 0. Write the rule with Tensor operations on grad, out "
                            f"and inputs")
    return raw if create_graph else [None if r is None else _array(_value(r)) for r in raw]


def _array(r):
    """A rule's result as an array: NumPy scalars and numbers become ndarrays; other libraries' arrays stay."""
    if type(r) is _ndarray:
        return r
    return np.asarray(r) if isinstance(r, _generic) or not _ns.is_foreign(r) else r


def _fit(r, x):
    """Sum one gradient back to its input's shape (undo broadcasting) and give it the input's dtype."""
    xd = x._data
    if r.shape != xd.shape:
        r = sum_to_shape(r, xd.shape)
    if type(r) is not Tensor:
        if type(r) is not _ndarray:
            r = _array(r)  # NumPy gives scalars for 0-d results
        if r.dtype is not xd.dtype and r.dtype != xd.dtype:
            r = _ns.astype(r, xd.dtype)  # a float32 input gets a float32 gradient, whatever it met
    return r


def _fit_all(fn, raw, inputs):
    """Every input's gradient fitted to it, checked for NaN/inf under detect_anomaly()."""
    fitted = [None if r is None else _fit(r, x) for r, x in zip(raw, inputs)]
    if _mode.get() & _ANOMALY:
        for r in fitted:
            if r is not None:
                _check_finite(_value(r), fn, "gradient")
    return fitted


def _root_grad(r, g, create_graph):
    if g is None:
        if r._data.size != 1:
            raise ValueError(f"backward: the output has shape {r.shape}, not a scalar; pass grad= of that shape "
                             f"(or reduce it first, e.g. cost = loss.mean())")
        g = np.ones_like(r._data) if type(r._data) is _ndarray else _ns.namespace(r._data).ones_like(r._data)
    elif isinstance(g, Tensor):
        g = g if create_graph else g._data
    elif type(r._data) is not _ndarray:
        g = _foreign_grad(r._data, g)
    else:
        g = np.asarray(g, dtype=r.dtype)
    if g.shape != r.shape:
        raise ValueError(f"backward: grad has shape {g.shape} but the output has shape {r.shape}")
    return Tensor._make(g) if create_graph and not isinstance(g, Tensor) else g


def _foreign_grad(out, g):
    """A gradient handed in for an output in another library: its arrays must be ones the output combines with."""
    xp = _ns.namespace(out)
    if isinstance(g, np.ndarray) or _ns.is_foreign(g):
        if _ns.common("backward", out, g) is not _ns.namespace(g):
            g = xp.asarray(g)  # a NumPy gradient for a Dask output joins its graph (no NumPy-sized rule runs)
        return g if g.dtype == out.dtype else _ns.astype(g, out.dtype)
    return xp.asarray(g, dtype=out.dtype)


def _accumulate(grad_of, owned, x, g):
    """Add one contribution to x's gradient: the second contribution allocates a fresh sum, later ones add
    into it in place (never into an array that a rule passed through or a caller handed in)."""
    old = grad_of.get(x)
    if old is None:
        grad_of[x] = g
    elif id(old) in owned and type(g) is _ndarray:
        np.add(old, g, out=old)
    else:
        new = old + g
        if type(new) is not Tensor:
            new = _array(new)  # 0-d sums come back as NumPy scalars
            if type(new) is _ndarray:
                owned.add(id(new))
        grad_of[x] = new


def grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned as a list of Tensors (no `.grad` is touched).
    With `create_graph=True` the gradients are themselves differentiable (grad-of-grad, Hessian-vector products)."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is not None:
        single_grad = isinstance(grad_outputs, (Tensor, np.ndarray)) or _ns.is_foreign(grad_outputs)
        grad_outputs = [grad_outputs] if single_grad else list(grad_outputs)
    for o in outputs:
        if not o.requires_grad:
            raise RuntimeError("grad: an output does not require grad (it does not depend on any input)")
    retain = create_graph if retain_graph is None else retain_graph
    found = run_backward(outputs, grad_outputs, retain_graph=retain, create_graph=create_graph, keep=set(inputs))
    result = []
    for i, x in enumerate(inputs):
        g = found.get(x)
        if g is None:
            if not allow_unused:
                raise ValueError(f"grad: input {i} (shape {x.shape}) is not used to compute the outputs; "
                                 f"pass allow_unused=True to get None for it")
            result.append(None)
        else:
            result.append(g if isinstance(g, Tensor) else Tensor._make(g))
    return result


# --- anomaly detection ------------------------------------------------------------------------------------

def _user_site() -> str:
    """The innermost stack frame outside the tinygrad_dl package: the line of user code that created an op."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not frame.filename.startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<unknown>"


def _check_finite(arr, fn, what):
    xp = np if type(arr) is _ndarray or not _ns.is_foreign(arr) else _ns.namespace(arr)
    if not bool(xp.all(xp.isfinite(arr))):  # (on a Dask array this computes: anomaly mode looks at every value)
        kind = "NaN" if bool(xp.any(xp.isnan(arr))) else "inf"
        raise FloatingPointError(f"detect_anomaly: {fn.name} produced {kind} in its {what} "
                                 f"(op created at {getattr(fn, 'site', None) or '<unknown>'})")
