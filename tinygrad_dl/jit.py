"""dl.jit: capture a training step once, replay it as flat NumPy, bit for bit what eager mode computes.

    @dl.jit
    def train_step(X, Y):
        opt.zero_grad()
        cost = F.binary_cross_entropy(model(X), Y)
        cost.backward()
        opt.step()
        return cost

    cost = train_step(X_batch, Y_batch)   # first call: eager, and captured; later calls: replayed
    train_step.cache_info()               # captures, replays, eager calls (and why)
    print(train_step.source)              # the replayed program: one NumPy statement per operation

Design. Define-by-run stays the definition of everything: the first call of a step (per shape, dtype and mode)
runs eagerly while a recorder watches it (a flag the engine tests once per op). Each primitive's own `forward`
and ndarray backward rule run once more on stand-ins of their arrays (_Sym), which write down the NumPy statements
they execute; the backward pass is laid out in the engine's own order (its topological sort, its reduction of
broadcast gradients, its order of adding contributions), and `.grad` is written as `Tensor.backward` writes it.
Every traced value is compared byte for byte with the eager one before the program is kept. Masks, shifts and
checks that compositions compute from values are `derived` calls, which the replay repeats on the new values; an
optimizer's `step` and `zero_grad`, and a dropout mask drawn from a Generator, are `replayed` calls, made again in
the same order. A shortcut a composition takes because of the values (`branch`: plain binary cross-entropy when no
log is clamped) is kept behind a check the replay makes before it has changed anything; when the check fails the
call is captured again (then in the general form, which holds for any values). Where a step is directly followed
by `zero_grad()`, the library's optimizers update in the gradients just computed (which nobody else sees) instead
of their own scratch buffers, as a hand-written `dW *= lr; W -= dW` does: the same numbers, from warm cache.
Parameters are read from their tensors at every replay (updated in place or rebound). Statements that depend on no
data are computed once, at the capture (constant folding); values nobody uses are dropped; the rest becomes one
Python function, which frees each value after its last use (`source` shows it without the `del` lines).

Guards. A program is keyed by the arguments' kinds, shapes and dtypes (numbers by value), the grad mode, and the
`training` flags its modules read; a new combination is captured again (a small cache per function). Anything a
replay could not repeat makes the capture unsafe, and that call and later ones with the same key run eagerly, with
a warning that names the reason and the line: Python reading values (`.item()`, `float(t)`, `bool(t)`, `.data`,
`.numpy()`, `np.asarray(t)`, NumPy on a mask from `t > 0`, `.grad`), a tensor changed in place outside an
optimizer, `retain_grad`, `dl.grad`, `create_graph` or a backward hook, a returned tensor whose graph is still
alive, a program longer than `max_statements`. `detect_anomaly` always runs eagerly.

Limits and pitfalls. Python runs only during a capture: a side effect of the function (appending to a list,
counting calls, setting `opt.lr` inside it) happens once, and numbers, arrays and attributes the function reads
from outside its arguments are constants of the program (set the learning rate outside the step; pass data that
changes as an argument). Inside a capture, array arguments arrive as Tensors (integer labels as an integer
Tensor). Returned tensors are fresh values without a graph. A user `Function` replays by calling its own
`forward`/`backward` (its forward must not depend on hidden state). Everything a program captured stays alive
while it is cached. A scalar and a 0-d array do not always give the same NaN, so the engine's np.asarray of NumPy
scalars is kept; bit-identity is promised on one machine (BLAS and SIMD kernels differ between CPUs).
"""
from __future__ import annotations

import collections
import copy
import functools
import inspect
import itertools
import keyword
import linecache
import math
import operator
import os
import re
import sys
import threading
import warnings

import numpy as np

from . import _namespace as _ns
from .ops import select as _select
from .tensor import (PRIMITIVES, REPLAYED, Function, Tensor, _ANOMALY, _CAPTURE, _CONSTANTS, _GRAD, _capture,
                     _mode, sum_to_shape, toposort)

__all__ = ["jit", "JitWarning", "JitInfo"]


class JitWarning(UserWarning):
    """dl.jit runs a call eagerly instead of replaying it (the message says why and where)."""


class _Untraceable(Exception):
    """A stand-in array was used in a way the tracer cannot write down (the op is then called as a whole)."""


class _TooLong(_Untraceable):
    """The program grew past `max_statements` (a capture that long would take long to compile)."""


class _Stale(Exception):
    """Raised by a replay, before it has changed anything, when a branch a composition took at the capture no
    longer holds for the new values (the call is then captured again)."""


class _Mismatch(Exception):
    """A traced value differs from the eager one (a bug, or a Function whose forward is not pure)."""


JitInfo = collections.namedtuple("JitInfo", "captures replays eager entries maxsize reasons")


# ============================================================ the tracer: stand-in arrays that write NumPy

_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "//": operator.floordiv,
        "%": operator.mod, "**": operator.pow, "@": operator.matmul, "&": operator.and_, "|": operator.or_,
        "^": operator.xor, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}
_IOPS = {"+": operator.iadd, "-": operator.isub, "*": operator.imul, "/": operator.itruediv, "**": operator.ipow,
         "&": operator.iand, "|": operator.ior, "^": operator.ixor}
_UNOPS = {"-": operator.neg, "+": operator.pos, "~": operator.invert}
_SHAPE_ONLY = (np.ones_like, np.zeros_like, np.empty_like)
_OPERATORS = {np.add: "+", np.subtract: "-", np.multiply: "*", np.true_divide: "/", np.matmul: "@",
              np.less: "<", np.less_equal: "<=", np.greater: ">", np.greater_equal: ">=", np.equal: "==",
              np.not_equal: "!=", np.bitwise_and: "&", np.bitwise_or: "|"}


class _Sym:
    """A value of the program: the real array (`value`) and the statement that makes it. Operations on a _Sym
    compute on the value and record themselves; converting it to a plain ndarray or a Python value raises."""

    __slots__ = ("value", "hint", "name", "builder", "tensor", "grad_of", "__weakref__")
    __array_priority__ = 10000

    def __init__(self, builder, value, hint):
        self.builder, self.value, self.hint, self.name = builder, value, hint, None
        self.tensor = self.grad_of = None  # the tensor it is the value (or the gradient) of: names it at the end

    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: self.value.ndim)
    dtype = property(lambda self: self.value.dtype)
    size = property(lambda self: self.value.size)
    T = property(lambda self: self.builder.attribute(self, "T"))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return self.builder.ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return self.builder.function(func, args, kwargs)

    def _refuse(self, *args, **kwargs):
        raise _Untraceable("a traced array was converted to a Python value or a plain array")

    __array__ = __bool__ = __float__ = __int__ = __index__ = __len__ = __iter__ = item = tolist = _refuse
    __hash__ = object.__hash__

    def __getitem__(self, index):
        return self.builder.getitem(self, index)

    def __setitem__(self, index, value):
        self.builder.setitem(self, index, value)

    def __neg__(self):
        return self.builder.unary("-", self)

    def __pos__(self):
        return self.builder.unary("+", self)

    def __invert__(self):
        return self.builder.unary("~", self)

    def __abs__(self):
        return self.builder.call(abs, (self,), {}, "abs")


def _method(name):
    return lambda self, *args, **kwargs: self.builder.method(self, name, args, kwargs)


for _name in ("reshape", "transpose", "sum", "astype", "copy", "max", "min", "any", "all", "ravel", "squeeze",
              "mean", "prod", "cumsum", "clip", "dot", "swapaxes", "flatten", "argmax", "argmin"):
    setattr(_Sym, _name, _method(_name))
for _op in _OPS:
    _dunder = {"+": "add", "-": "sub", "*": "mul", "/": "truediv", "//": "floordiv", "%": "mod", "**": "pow",
               "@": "matmul", "&": "and", "|": "or", "^": "xor", "<": "lt", "<=": "le", ">": "gt", ">=": "ge",
               "==": "eq", "!=": "ne"}[_op]
    setattr(_Sym, f"__{_dunder}__", lambda self, other, op=_op: self.builder.binary(op, self, other))
    if _op not in ("<", "<=", ">", ">=", "==", "!="):  # Python reflects comparisons by itself (a < b is b > a)
        setattr(_Sym, f"__r{_dunder}__", lambda self, other, op=_op: self.builder.binary(op, other, self))
    if _op in _IOPS:
        setattr(_Sym, f"__i{_dunder}__", lambda self, other, op=_op: self.builder.inplace(op, self, other))


def _val(x):
    """The real value behind a _Sym (or a bound constant), also inside tuples, lists and dicts."""
    if type(x) is _Sym:
        return x.value
    if type(x) is _Const:
        return x.obj
    if type(x) in (tuple, list):
        return type(x)(_val(v) for v in x)
    if type(x) is dict:
        return {k: _val(v) for k, v in x.items()}
    return x


def _syms_in(x, out):
    if type(x) is _Sym:
        out.append(x)
    elif type(x) in (tuple, list):
        for v in x:
            _syms_in(v, out)
    elif type(x) is dict:
        for v in x.values():
            _syms_in(v, out)
    return out


def _public_name(obj):
    """'np.exp' for a NumPy function or ufunc that NumPy exports under its own name, else None."""
    name = getattr(obj, "__name__", None)
    return f"np.{name}" if name and getattr(np, name, None) is obj else None


class _Stmt:
    """One line of the program: tokens (text, _Sym, or _Const), the _Syms it defines and uses, and its kind:
    "arith" (an operator or ufunc), "pure" (another NumPy call), "alloc" (depends on shapes only), "asarray" (the
    engine's np.asarray of a NumPy scalar: kept, as a scalar and a 0-d array do not give the same NaN),
    "derived" (a pure function of values), "check" (one that may raise),
    "mutate" (in place on `target`), "input" (an argument or a leaf read), "effect" (a Function's own method),
    "escape" (a replayed call, a .grad write, the return: what it uses leaves the program)."""

    __slots__ = ("tokens", "defs", "uses", "kind", "target", "fold", "shown")

    def __init__(self, tokens, defs, uses, kind, target=None):
        self.tokens, self.defs, self.uses, self.kind, self.target, self.fold = tokens, defs, uses, kind, target, False
        self.shown = None  # what `source` shows instead of the tokens (None: the tokens)

    @property
    def effect(self):
        return self.kind in ("mutate", "check", "effect", "escape")


class _Const:
    """A constant of the program, bound by name in the replay's namespace."""

    __slots__ = ("obj", "hint", "name")

    def __init__(self, obj, hint):
        self.obj, self.hint, self.name = obj, hint, None


class _Builder:
    """Writes the program: statements in order, their stand-ins, and the constants they refer to."""

    def __init__(self, limit=10**9):
        self.stmts, self.limit = [], limit
        self.consts = {}   # id(obj) -> _Const (the objects are kept alive by the _Const)
        self.adopted = {}  # id(array) -> (_Sym, array): fresh arrays a traced rule filled in place (see copyto)

    # --- values ---------------------------------------------------------------------------------------
    def new(self, value, hint):
        return _Sym(self, value, hint)

    def const(self, obj, hint="c"):
        c = self.consts.get(id(obj))
        if c is None:
            c = self.consts[id(obj)] = _Const(obj, hint)
        return c

    def emit(self, tokens, defs=(), kind="pure", target=None):
        if len(self.stmts) >= self.limit:
            raise _TooLong
        uses, ids = [], {id(d) for d in defs}  # (identity: == on a stand-in would be traced)
        for t in tokens:
            if type(t) is _Sym and id(t) not in ids:
                ids.add(id(t))
                uses.append(t)
        self.stmts.append(_Stmt(tokens, list(defs), uses, kind, target))

    def define(self, value, tokens, hint="t", kind="pure"):
        """`name = <tokens>`: a new stand-in for `value` (or the value itself when it is not an array)."""
        if not isinstance(value, (np.ndarray, np.generic)):
            raise _Untraceable(f"an operation returned a {type(value).__name__}")
        sym = self.new(value, hint)
        self.emit([sym, " = "] + tokens, defs=[sym], kind=kind)
        return sym

    # --- rendering of operands -----------------------------------------------------------------------
    def operand(self, x, paren=False):
        """Tokens for an operand: a stand-in, a literal, or a bound constant."""
        if type(x) is _Sym or type(x) is _Const:
            return [x]
        if x is None or x is Ellipsis or type(x) is bool or type(x) is str:
            return ["..." if x is Ellipsis else repr(x)]
        if type(x) is int:
            text = repr(x)
            return [f"({text})" if paren and x < 0 else text]
        if type(x) is float and math.isfinite(x):
            text = repr(x)
            return [f"({text})" if paren and (text.startswith("-")) else text]
        if type(x) in (tuple, list):
            inner = self.operands(x)
            if type(x) is tuple:
                return ["("] + inner + ([",)"] if len(x) == 1 else [")"])
            return ["["] + inner + ["]"]
        if type(x) is slice:
            return ["slice("] + self.operands((x.start, x.stop, x.step)) + [")"]
        if isinstance(x, np.dtype):
            return [self.const(x, str(x))]
        if isinstance(x, type) and _public_name(x):
            return [_public_name(x)]
        if callable(x) and _public_name(x):
            return [_public_name(x)]
        if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind == "f" and not x.flags.writeable:
            return [self.const(x, _number_hint(x))]
        return [self.const(x, "c")]

    def operands(self, xs):
        out = []
        for i, x in enumerate(xs):
            if i:
                out.append(", ")
            out += self.operand(x)
        return out

    def arguments(self, args, kwargs):
        out = self.operands(args)
        for k, v in kwargs.items():
            out += ([", "] if out else []) + [f"{k}="] + self.operand(v)
        return out

    def index(self, index):
        """Tokens of a subscript, written as NumPy users write it (a[:, 0], a[1:], a[idx])."""
        parts = index if type(index) is tuple else (index,)
        out = []
        for i, p in enumerate(parts):
            if i:
                out.append(", ")
            if type(p) is slice and all(v is None or type(v) is int for v in (p.start, p.stop, p.step)):
                text = ("" if p.start is None else str(p.start)) + ":" + ("" if p.stop is None else str(p.stop))
                out.append(text + ("" if p.step is None else f":{p.step}"))
            else:
                out += self.operand(p)
        if type(index) is tuple and len(parts) == 1:
            out.append(",")
        return out or ["()"]

    # --- operations ----------------------------------------------------------------------------------
    def binary(self, op, a, b):
        return self.define(_OPS[op](_val(a), _val(b)), self.operand(a, True) + [f" {op} "] + self.operand(b, True),
                           kind="arith")

    def inplace(self, op, a, b):
        _IOPS[op](a.value, _val(b))
        self.emit([a, f" {op}= "] + self.operand(b), kind="mutate", target=a)
        return a

    def unary(self, op, a):
        return self.define(_UNOPS[op](a.value), [op] + self.operand(a), kind="arith")

    def call(self, func, args, kwargs, text, hint="t"):
        """`t = text(args, kwargs)` for a plain function of arrays."""
        value = func(*_val(args), **_val(kwargs))
        kind = "asarray" if func is np.asarray and not kwargs else "alloc" if func in _SHAPE_ONLY else "pure"
        return self.define(value, [text, "("] + self.arguments(args, kwargs) + [")"], hint, kind)

    def ufunc(self, ufunc, method, inputs, kwargs):
        name = _public_name(ufunc)
        if name is None:
            raise _Untraceable(f"ufunc {ufunc!r} is not exported by NumPy under its name")
        text = name if method == "__call__" else f"{name}.{method}"
        value = getattr(ufunc, method)(*_val(inputs), **_val(kwargs))
        if method == "__call__" and not kwargs and type(inputs[0]) is not _Sym and ufunc in _OPERATORS \
                and isinstance(_val(inputs[0]), np.ndarray) and len(inputs) == 2:
            # an array on the left of an operator (1.0 + e with 1.0 a constant array): written as the operator,
            # which calls the same ufunc
            return self.define(value, self.operand(inputs[0]) + [f" {_OPERATORS[ufunc]} "] + self.operand(inputs[1]),
                               kind="arith")
        out = kwargs.get("out")
        if method == "at" or out is not None:  # in place: the target must be a program value
            target = inputs[0] if method == "at" else (out[0] if type(out) is tuple else out)
            if type(target) is not _Sym or (type(out) is tuple and len(out) != 1):
                raise _Untraceable("an in-place NumPy call on an array outside the program")
            self.emit([text, "("] + self.arguments(inputs, kwargs) + [")"], kind="mutate", target=target)
            return None if method == "at" else target
        return self.define(value, [text, "("] + self.arguments(inputs, kwargs) + [")"],
                           kind="arith" if method == "__call__" else "pure")

    def function(self, func, args, kwargs):
        name = _public_name(func)
        if name is None:
            raise _Untraceable(f"{func!r} is not exported by NumPy under its name")
        if func is np.copyto:
            dst = args[0] if args else kwargs.get("dst")
            if type(dst) is _Sym:
                np.copyto(*_val(args), **_val(kwargs))
                self.emit(["np.copyto("] + self.arguments(args, kwargs) + [")"], kind="mutate", target=dst)
                return None
            if not isinstance(dst, np.ndarray) or kwargs.get("where") is not None or len(args) > 2:
                raise _Untraceable("copyto into an array outside the program")
            # a fresh array filled completely (broadcast_to's copy): allocate it in the program
            fresh = self.define(np.empty(dst.shape, dst.dtype), ["np.empty("] + self.operands(
                (dst.shape,)) + [", "] + self.operand(dst.dtype) + [")"], kind="alloc")
            np.copyto(fresh.value, _val(args[1]))
            self.emit(["np.copyto(", fresh, ", "] + self.operand(args[1]) + [")"], kind="mutate", target=fresh)
            self.adopted[id(dst)] = (fresh, dst)
            return None
        value = func(*_val(args), **_val(kwargs))
        if value is None:
            raise _Untraceable(f"{name} returned None (an in-place function)")
        if func is np.where and len(args) == 3 and not kwargs:  # replayed as Where's forward computes it
            sym = self.define(value, [self.const(_select, "select"), "("] + self.arguments(args, kwargs) + [")"])
            self.stmts[-1].shown = [sym, " = ", name, "("] + self.arguments(args, kwargs) + [")"]
            return sym
        return self.define(value, [name, "("] + self.arguments(args, kwargs) + [")"])

    def method(self, obj, name, args, kwargs):
        value = getattr(obj.value, name)(*_val(args), **_val(kwargs))
        return self.define(value, [obj, f".{name}("] + self.arguments(args, kwargs) + [")"])

    def attribute(self, obj, name):
        return self.define(getattr(obj.value, name), [obj, f".{name}"])

    def getitem(self, obj, index):
        return self.define(obj.value[_val(index)], [obj, "["] + self.index(index) + ["]"])

    def setitem(self, obj, index, value):
        obj.value[_val(index)] = _val(value)
        self.emit([obj, "["] + self.index(index) + ["] = "] + self.operand(value), kind="mutate", target=obj)


def _number_hint(arr) -> str:
    """A readable name for a number constant: k0_5 for 0.5, km1 for -1.0, k1em08 for 1e-08."""
    v = arr.item()
    text = repr(v if v != int(v) or abs(v) >= 1e15 else int(v)) if math.isfinite(v) else ("inf" if v > 0 else
                                                                                           "minf" if v < 0 else "nan")
    text = text.replace("-", "m").replace(".", "_").replace("+", "")
    return "k" + re.sub(r"[^0-9a-zA-Z_]", "_", text)


def _identifier(name: str) -> str:
    name = re.sub(r"\W", "_", name.strip())
    if not name or name[0].isdigit():
        name = "t_" + name
    if keyword.iskeyword(name) or name in ("np", "None", "True", "False"):
        name += "_"
    return name


# ============================================================ values handed to Python during a capture

_NUMPY_DIR = os.path.dirname(np.__file__)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _from_library() -> bool:
    """Whether the NumPy call under way comes from tinygrad_dl (its compositions' own helpers), not user code."""
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith(_NUMPY_DIR)
                                 or frame.f_code.co_filename == __file__):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR)


def _site() -> str:
    """The line of user code under way: the innermost frame outside tinygrad_dl and NumPy."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith(_NUMPY_DIR)
                                 or frame.f_code.co_filename.startswith(_PACKAGE_DIR)):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}: {line}"


def _plain_arrays(x):
    if isinstance(x, _Derived):
        return x.view(np.ndarray)
    if type(x) in (tuple, list):
        return type(x)(_plain_arrays(v) for v in x)
    return x


class _Derived(np.ndarray):
    """A mask or constant computed from values during a capture (`t > 0`, a derived value), as Python code sees
    it. The library passes it on (the program recomputes it); NumPy on it in user code would compute something
    the replay cannot repeat, so the capture reports it and the function runs eagerly."""

    def _escape(self, what):
        cap = _active()
        if cap is not None and not _from_library():
            cap.fail(f"{what} on a mask computed from values (e.g. t > 0) runs in Python, which a replay would "
                     f"not repeat (use dl.where(mask, a, b) or multiply a tensor by the mask)")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        self._escape(f"np.{ufunc.__name__}")
        if "out" in kwargs:
            kwargs["out"] = _plain_arrays(kwargs["out"])
        return getattr(ufunc, method)(*_plain_arrays(inputs), **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        self._escape(f"np.{func.__name__}")
        return func(*_plain_arrays(args), **_plain_arrays(kwargs))

    def _wrap_method(name):
        def method(self, *args, **kwargs):
            self._escape(f"`.{name}()`" if not name.startswith("__") else f"`{name}`")
            return getattr(self.view(np.ndarray), name)(*args, **kwargs)
        return method

    for _n in ("__bool__", "__float__", "__int__", "__index__", "__iter__", "__getitem__", "__setitem__", "item",
               "tolist", "astype", "copy", "tobytes"):
        locals()[_n] = _wrap_method(_n)
    del _n, _wrap_method


# ============================================================ what the replay calls at run time

def _fresh(data, name):
    """A returned tensor: a new Tensor without a graph (the next replay does not overwrite it)."""
    t = Tensor._make(data if type(data) is np.ndarray else np.asarray(data))
    t.name = name
    return t


def _bound(fn, attrs):
    """A copy of a captured Function with some attributes set to this replay's values (e.g. where's condition)."""
    fn = copy.copy(fn)
    for k, v in attrs.items():
        setattr(fn, k, v)
    return fn


def _forward(fn, *arrays):
    """A primitive that could not be traced (or a user Function): its own forward, as the engine calls it."""
    data = fn.forward(*arrays)
    return data if type(data) is np.ndarray else np.asarray(data)


def _rule(fn, g, out, inputs, needs):
    """A backward rule that could not be traced (or a user Function's): called as run_backward calls it."""
    fn.inputs = tuple(Tensor._make(a, r) for a, r in zip(inputs, needs))  # rules read needs_grad from them
    token = _mode.set(_mode.get() & ~(_GRAD | _CAPTURE))
    try:
        if fn.ndarray_backward:
            return tuple(fn.backward(g, out, *inputs))
        raw = fn.backward(Tensor._make(g), Tensor._make(out), *fn.inputs)
    finally:
        _mode.reset(token)
        fn.inputs = None
    if isinstance(raw, (Tensor, np.ndarray)) or raw is None:
        raw = (raw,)
    return tuple(None if r is None else np.asarray(r._data if isinstance(r, Tensor) else r) for r in raw)


# ============================================================ the recorder

class _Capture:
    """Watches one eager call of the function (hooks called by the engine while the capture flag is set) and
    writes the program."""

    def __init__(self, owner):
        self.owner = owner
        self.b = _Builder(owner.max_statements)
        self.state = {}        # id(Tensor) -> (Tensor, requires_grad) of the leaves the program reads
        self.tensors = {}      # id(Tensor) -> (_Sym or _Const, Tensor): every tensor the program knows
        self.arrays = {}       # id(ndarray or NumPy scalar) -> (_Sym, obj): values the program computes
        self.leaves = {}       # id(Tensor) -> Tensor: leaf tensors read from their `.data` at replay
        self.leaf_read = {}    # id(Tensor) -> (_Sym, segment)
        self.segment = 0       # bumped by every replayed call (a leaf may be rebound: read it again)
        self.inputs = []       # (_Sym, the Tensor the function sees, index in the data arguments, is a Tensor)
        self.guards = {}       # (id(obj), attr) -> (obj, attr, value)
        self.problem = None    # (reason, site): the capture cannot be replayed
        self.branches = True   # shortcuts may be kept behind a check (not after one failed for this key)

    # --- failure ------------------------------------------------------------------------------------
    def fail(self, reason, site=None):
        if self.problem is None:
            self.problem = (reason, site or _site())

    def unsupported(self, what):
        self.fail(f"{what} cannot be replayed")

    def escape(self, what, t=None):
        label = f" of {t.name!r}" if isinstance(t, Tensor) and t.name else ""
        self.fail(f"{what}{label} reads values in Python (a replay would not run this line again)")

    # --- values -------------------------------------------------------------------------------------
    def value_of(self, x):
        """What the program uses for x: a _Sym (data, parameters, computed values) or a constant."""
        if isinstance(x, Tensor):
            hit = self.tensors.get(id(x))
            if hit is not None:
                sym = hit[0]
                if id(x) in self.leaves:  # a leaf: read from the tensor once per segment
                    return self.leaf(x)
                return sym
            shared = self.value_of(x._data)
            if type(shared) is _Sym:  # shares a value the program computes (detach(), a Tensor around an array)
                self.tensors[id(x)] = (shared, x)
                return shared
            return self.new_leaf(x)
        if isinstance(x, (np.ndarray, np.generic)):
            hit = self.arrays.get(id(x)) or self.b.adopted.get(id(x))
            if hit is not None:
                return hit[0]
            base = x.base if isinstance(x, np.ndarray) else None
            while isinstance(base, np.ndarray):  # np.asarray(view) of a tracked array: the same values
                hit = self.arrays.get(id(base))
                if hit is not None and _same_memory(x, base):
                    self.arrays[id(x)] = (hit[0], x)
                    return hit[0]
                base = base.base
        if type(x) in (tuple, list):
            return type(x)(self.value_of(v) for v in x)
        return x

    def new_leaf(self, t):
        if t.creator is not None and t.requires_grad:
            self.fail("a tensor computed outside the function (with a graph) is used inside it")
        arr = t._data
        if arr.ndim == 0 and not arr.flags.writeable and any(c is t for c in _CONSTANTS.values()):
            c = self.b.const(arr, _number_hint(arr))  # a number (1.0, 0.5, 1/m): a constant of the program
            self.tensors[id(t)] = (c, t)
            return c
        self.leaves[id(t)] = t
        self.tensors[id(t)] = (None, t)
        self.state[id(t)] = (t, t.requires_grad)
        return self.leaf(t)

    def leaf(self, t):
        hit = self.leaf_read.get(id(t))
        if hit is not None and hit[1] == self.segment:
            return hit[0]
        owner = self.b.const(t, "p_" + _identifier(t.name) if t.name else "p")
        sym = self.b.define(t._data, [owner, "._data"], _identifier(t.name) if t.name else "c", kind="input")
        self.leaf_read[id(t)] = (sym, self.segment)
        self.arrays.setdefault(id(t._data), (sym, t._data))
        return sym

    # --- hooks the engine calls ---------------------------------------------------------------------
    def op(self, fn, inputs, out):
        """A primitive ran (eagerly): write the NumPy it executes."""
        if self.problem is not None:
            return
        if type(out._data) is not np.ndarray and _ns.is_foreign(out._data):
            lib = _ns.library_name(out._data)
            self.fail(f"dl.jit replays NumPy only, and {fn.name} computed on an array from {lib}")
            return
        try:
            args = [self.value_of(x) for x in inputs]
            attrs = self.array_attributes(fn)
            traced = None
            if PRIMITIVES.get(type(fn).__name__) is type(fn):
                mark = len(self.b.stmts)
                try:
                    f = copy.copy(fn)
                    for k, v in attrs.items():
                        setattr(f, k, _plain(v))
                    traced = f.forward(*[_plain(a) for a in args])
                    if type(_val(traced)) is not np.ndarray:
                        traced = self.b.call(np.asarray, (traced,), {}, "np.asarray")
                    if type(traced) is not _Sym:
                        raise _Untraceable("the forward did not depend on the program's values")
                except _TooLong:
                    raise
                except _Untraceable:
                    del self.b.stmts[mark:]
                    traced = None
            elif attrs:
                self.fail(f"{fn.name} keeps an array computed from values as an attribute")
                return
            if traced is None:  # called as a whole: the Function's own forward
                f = self.b.const(fn, _identifier(fn.name.lower()))
                func = self.b.const(_forward, "_forward")
                target = self.b.const(_bound, "_bound")
                call = [target, "(", f, ", {"] + _dict_tokens(self.b, attrs) + ["})"] if attrs else [f]
                traced = self.b.new(out._data, "t")
                self.b.emit([traced, " = ", func, "("] + call + ([", "] if args else []) + self.b.operands(args)
                            + [")"], defs=[traced], kind="effect")
            elif not _same(traced.value, out._data):
                raise _Mismatch(f"{fn.name}: the traced forward differs from the eager one")
            if traced.tensor is None and not any(traced is a for a in args):
                traced.tensor = out  # named after the tensor (Dense names its Z after the op returns)
            self.tensors[id(out)] = (traced, out)
            self.arrays.setdefault(id(out._data), (traced, out._data))
        except _TooLong:
            self.fail(f"the program grew past {self.owner.max_statements} statements (max_statements)")
        except _Mismatch as e:
            self.fail(f"internal: {e}")
        except Exception as e:  # noqa: BLE001 - the capture fails, the eager call goes on
            self.fail(f"internal error while recording {fn.name}: {e!r}")

    def array_attributes(self, fn):
        """The attributes of a Function that hold arrays the program computes (where's condition, an index)."""
        out = {}
        names = [n for k in type(fn).__mro__ for n in getattr(k, "__slots__", ())]
        names += list(getattr(fn, "__dict__", {}))
        for name in names:
            if name in ("inputs", "site", "edits"):
                continue
            v = getattr(fn, name, None)
            if isinstance(v, (np.ndarray, tuple)):
                mapped = self.value_of(v)
                if _syms_in(mapped, []):
                    out[name] = mapped
        return out

    def derived(self, fn, args, out):
        """A value computed from values (a mask, a shift, a check): the replay calls fn again. Arrays are handed
        on as _Derived views, so that NumPy on them outside the library is noticed."""
        if self.problem is not None:
            return out
        try:
            return self._derived(fn, args, out)
        except _TooLong:
            self.fail(f"the program grew past {self.owner.max_statements} statements (max_statements)")
        except Exception as e:  # noqa: BLE001 - the capture fails, the eager call goes on
            self.fail(f"internal error while recording {getattr(fn, '__name__', fn)}: {e!r}")
        return out

    def _derived(self, fn, args, out):
        vals = [self.value_of(a) for a in args]
        outs = out if type(out) is tuple else (out,)
        flat = [a._data if isinstance(a, Tensor) else a for a in args]
        if any(o is a for o in outs for a in flat if isinstance(o, np.ndarray)):
            self.fail(f"internal: {fn.__name__} returned one of its arguments")
            return out
        public = _public_name(fn)
        func = [public] if public else [self.b.const(fn, getattr(fn, "__name__", "f"))]
        hints = getattr(fn, "outputs", None) or ["mask" if public else "m"] * len(outs)
        syms = [self.b.new(o, hint) for o, hint in zip(outs, hints)]
        lhs = []
        for i, s in enumerate(syms):
            lhs += ([", "] if i else []) + [s]
        kind = "check" if getattr(fn, "__name__", "").startswith("_check") else "derived"  # (checks always run)
        self.b.emit(lhs + [" = "] + func + ["("] + self.b.operands(vals) + [")"], defs=syms, kind=kind)
        handed = []
        for o, s in zip(outs, syms):
            if isinstance(o, (np.ndarray, np.generic)):
                self.arrays.setdefault(id(o), (s, o))
                o = np.asarray(o).view(_Derived)  # (a NumPy scalar too: `if t > 0` must be noticed)
                self.arrays.setdefault(id(o), (s, o))
            handed.append(o)
        return tuple(handed) if type(out) is tuple else handed[0]

    def branch(self, fn, args):
        """A shortcut a composition takes because fn(*args) is True: kept (the replay checks fn first and stops
        with _Stale if the answer changed) only if nothing the replay does before it changes any state, as a
        stopped replay must leave everything as it was. Otherwise False: the composition's general form."""
        if self.problem is not None:
            return True  # (this capture is given up: the call is eager's)
        if not self.branches or any(st.kind in ("mutate", "effect", "escape") for st in self.b.stmts):
            return False
        try:
            vals = [self.value_of(a) for a in args]
            self.b.emit(["if not ", self.b.const(fn, getattr(fn, "__name__", "f")), "("] + self.b.operands(vals)
                        + ["): raise ", self.b.const(_Stale, "Stale"), "  # (captured again)"], kind="check")
        except _TooLong:
            self.fail(f"the program grew past {self.owner.max_statements} statements (max_statements)")
        except Exception as e:  # noqa: BLE001
            self.fail(f"internal error while recording {getattr(fn, '__name__', fn)}: {e!r}")
        return True

    def call(self, method, args, kwargs):
        """A replayed library call (an optimizer's step, zero_grad, a dropout mask): made again at replay."""
        if self.problem is None:
            self.check_state()
        token = _mode.set(_mode.get() & ~_CAPTURE)
        try:
            result = method(*args, **kwargs)
        finally:
            _mode.reset(token)
        if self.problem is not None:
            return result
        try:
            self._call(method, args, result, kwargs)
        except _TooLong:
            self.fail(f"the program grew past {self.owner.max_statements} statements (max_statements)")
        except Exception as e:  # noqa: BLE001
            self.fail(f"internal error while recording {method.__qualname__}: {e!r}")
        return result

    def _call(self, method, args, result, kwargs):
        vals = [self.value_of(a) for a in args]
        kw = {k: self.value_of(v) for k, v in kwargs.items()}
        head = args[0] if args else None
        if head is not None and getattr(head, method.__name__, None) is not None and not isinstance(head, type) \
                and getattr(type(head), method.__name__, None) is not None:
            obj = self.b.const(head, _object_hint(head))
            tokens = [obj, f".{method.__name__}("] + self.b.arguments(vals[1:], kw) + [")"]
        else:
            tokens = [self.b.const(method, method.__name__), "("] + self.b.arguments(vals, kw) + [")"]
        if isinstance(result, np.ndarray):
            sym = self.b.new(result, "D" if "mask" in method.__name__ or "scale" in method.__name__ else "r")
            self.b.emit([sym, " = "] + tokens, defs=[sym], kind="escape")
            self.arrays.setdefault(id(result), (sym, result))
        else:
            self.b.emit(tokens, kind="escape")
        self.segment += 1
        self.snapshot()

    def guard(self, obj, attr, value):
        self.guards.setdefault((id(obj), attr), (obj, attr, value))

    # --- the state a replay must reproduce ------------------------------------------------------------
    def snapshot(self):
        self.state = {k: (t, t.requires_grad) for k, (t, _) in self.state.items()}

    def check_state(self):
        for t, rg in self.state.values():
            if t.requires_grad != rg:
                self.fail(f"requires_grad of a tensor{_called(t)} changed inside the function")

    # --- the backward pass --------------------------------------------------------------------------
    def backward(self, root, grad, retain_graph):
        """Tensor.backward under capture: lay out the engine's pass as statements, then run the real one and
        compare."""
        plan = None
        if self.problem is None:
            self.check_state()
            if root._retain:
                self.fail("retain_grad() cannot be replayed")
            mark = len(self.b.stmts)
            try:
                plan = self.trace_backward(root, grad)
            except _Skip:
                del self.b.stmts[mark:]
            except _TooLong:
                self.fail(f"the program grew past {self.owner.max_statements} statements (max_statements)")
            except _Mismatch as e:
                self.fail(f"internal: {e}")
            except Exception as e:  # noqa: BLE001
                self.fail(f"internal error while recording backward: {e!r}")
        token = _mode.set(_mode.get() & ~_CAPTURE)
        try:
            before = {} if plan is None else {id(t): t.grad for t, _ in plan}
            root.backward(grad, retain_graph)
            if plan is None and self.problem is None:  # eager went through where the layout gave up: refuse
                self.fail("internal: this backward pass could not be laid out")
            if plan is None or self.problem is not None:
                return
            for t, g in plan:
                want = _val(g) if before[id(t)] is None else before[id(t)] + _val(g)
                if not _same(want, t.grad):
                    self.fail(f"internal: the traced gradient of a tensor{_called(t)} differs from the eager one")
                    return
        finally:
            _mode.reset(token)
        self.snapshot()

    def trace_backward(self, root, grad):
        b = self.b
        if not root.requires_grad:
            raise _Skip
        order = toposort([root])  # the engine's own order
        r = self.value_of(root)
        if type(r) is not _Sym:
            raise _Skip
        if grad is None:
            if root._data.size != 1:
                raise _Skip
            g = b.call(np.ones_like, (r,), {}, "np.ones_like", "g")
        else:
            given = self.value_of(grad)
            if isinstance(grad, Tensor):
                g = given
            else:
                g = b.call(np.asarray, (given,), {"dtype": root._data.dtype}, "np.asarray", "g")
            if _val(g).shape != root.shape:
                raise _Skip
        seen = {id(grad._data if isinstance(grad, Tensor) else grad)}  # as Tensor.backward: never alias it
        grad_of = {root: g}
        for t in reversed(order):
            fn = t.creator
            if fn is None:
                continue
            g = grad_of.pop(t, None)
            if g is None:
                continue
            inputs = fn.inputs
            if inputs is None:
                raise _Skip  # freed by an earlier backward: eager raises
            out = self.value_of(t)
            if type(g) is _Sym and g.grad_of is None:
                g.grad_of = t  # named d<name> at the end
            grads = self.rule(fn, g, out, inputs)
            for x, gx in zip(inputs, grads):
                if gx is None or not x.requires_grad:
                    continue
                gx = self.fit(gx, x)
                if x in grad_of:
                    total = b.binary("+", grad_of[x], gx)
                    if type(total.value) is not np.ndarray:
                        total = b.call(np.asarray, (total,), {}, "np.asarray", "g")
                    grad_of[x] = total
                else:
                    grad_of[x] = gx
        plan = []
        for t, g in grad_of.items():
            if t.creator is not None:
                continue  # (keep="leaves"): intermediate gradients are dropped
            v = _val(g)
            if type(g) is not _Sym or id(v) in seen or v.base is not None or not v.flags.writeable:
                g = b.method(g, "copy", (), {}) if type(g) is _Sym else b.call(np.array, (g,), {}, "np.array")
            seen.add(id(g.value))
            g.grad_of = t
            owner = self.owner_of(t)
            b.emit([owner, ".grad = ", g, " if ", owner, ".grad is None else ", owner, ".grad + ", g], kind="escape")
            plan.append((t, g))
        return plan

    def owner_of(self, t):
        """The tensor object a replay writes `.grad` on: an argument, or a leaf the program holds."""
        for sym, wrapper, index, is_tensor in self.inputs:
            if wrapper is t:
                if not is_tensor:
                    raise _Skip
                return self.b.const(t, "x")  # replaced by the argument (see _Program)
        return self.b.const(t, "p_" + _identifier(t.name) if t.name else "p")

    def rule(self, fn, g, out, inputs):
        """The input gradients of one node: the primitive's ndarray rule traced, or the rule called as a whole."""
        b = self.b
        args = [self.value_of(x) for x in inputs]
        attrs = self.array_attributes(fn)
        if PRIMITIVES.get(type(fn).__name__) is type(fn) and fn.ndarray_backward:
            mark = len(b.stmts)
            try:
                f = copy.copy(fn)
                for k, v in attrs.items():
                    setattr(f, k, _plain(v))
                grads = f.backward(_plain(g), _plain(out), *[_plain(a) for a in args])
                grads = [self.adopt(x) for x in grads]
                for x in grads:
                    if x is not None and not isinstance(_val(x), (np.ndarray, np.generic)):
                        raise _Untraceable("a rule returned a non-array")
                return grads
            except _TooLong:
                raise
            except _Untraceable:
                del b.stmts[mark:]
        needs = tuple(x.requires_grad for x in inputs)
        f = b.const(fn, _identifier(fn.name.lower()))
        call = [b.const(_bound, "_bound"), "(", f, ", {"] + _dict_tokens(b, attrs) + ["})"] if attrs else [f]
        token = _mode.set(_mode.get() & ~_CAPTURE)
        try:
            value = _rule(_bound(fn, _val(attrs)), _val(g), _val(out), [_val(a) for a in args], needs)  # a copy
        finally:
            _mode.reset(token)
        syms = [None if v is None else b.new(v, "g") for v in value]
        lhs = []
        for i, s in enumerate(syms):
            lhs += ([", "] if i else []) + [s if s is not None else "_"]
        defs = [s for s in syms if s is not None]
        b.emit(lhs + ([","] if len(syms) == 1 else []) + [" = ", b.const(_rule, "_rule"), "("] + call + [", "]
               + b.operands((g, out, tuple(args), needs)) + [")"], defs=defs, kind="effect")
        return syms

    def adopt(self, x):
        """A rule's result: a stand-in, an array a traced rule filled (see copyto), or a constant."""
        if type(x) is _Sym or x is None:
            return x
        if isinstance(x, np.ndarray):
            hit = self.b.adopted.get(id(x))
            if hit is not None:
                return hit[0]
        return x

    def fit(self, gx, x):
        """The engine's fitting of a gradient to its input: undo broadcasting, then the input's dtype."""
        xd = x._data
        v = _val(gx)
        if type(v) is np.ndarray and v.shape == xd.shape and v.dtype is xd.dtype:
            return gx
        if v.shape != xd.shape:
            gx = sum_to_shape(gx, xd.shape)
            v = _val(gx)
        if type(v) is not np.ndarray:
            gx = self.b.call(np.asarray, (gx,), {}, "np.asarray", "g") if type(gx) is _Sym else np.asarray(gx)
            v = _val(gx)
        if v.dtype is not xd.dtype and v.dtype != xd.dtype:
            gx = gx.astype(xd.dtype)
        return gx

    # --- the result ---------------------------------------------------------------------------------
    def result(self, value):
        """Tokens that rebuild the function's return value at replay."""
        b = self.b
        if isinstance(value, Tensor):
            for sym, wrapper, index, is_tensor in self.inputs:
                if wrapper is value:
                    return [b.const(value, "x") if is_tensor else sym]  # an argument, as it was passed
            hit = self.tensors.get(id(value))
            sym = hit[0] if hit is not None else self.value_of(value._data)  # (detach() shares a value)
            if id(value) in self.leaves or type(sym) is not _Sym:
                return [b.const(value, "r")]  # a tensor the function did not compute: itself
            if value.requires_grad and value.creator is not None and value.creator.inputs is not None:
                self.fail("the function returns a tensor whose graph is still alive (call backward() inside the "
                          "function, or return a value computed under no_grad())")
            return [b.const(_fresh, "_fresh"), "(", sym, ", "] + b.operand(value.name) + [")"]
        if isinstance(value, (np.ndarray, np.generic)):
            hit = self.arrays.get(id(value))
            return [hit[0]] if hit is not None else b.operand(value)
        if type(value) in (tuple, list):
            out = ["(" if type(value) is tuple else "["]
            for i, v in enumerate(value):
                out += ([", "] if i else []) + self.result(v)
            return out + ([",)"] if type(value) is tuple and len(value) == 1 else [")" if type(value) is tuple
                                                                                   else "]"])
        if type(value) is dict:
            out = ["{"]
            for i, (k, v) in enumerate(value.items()):
                out += ([", "] if i else []) + b.operand(k) + [": "] + self.result(v)
            return out + ["}"]
        return b.operand(value)


def _plain(x):
    """What a traced rule receives: stand-ins as they are, bound constants as their objects."""
    if type(x) is _Const:
        return x.obj
    if type(x) in (tuple, list):
        return type(x)(_plain(v) for v in x)
    return x


class _Skip(Exception):
    """The eager pass is about to raise (or cannot be laid out): record nothing, let it."""


def _dict_tokens(b, attrs):
    out = []
    for i, (k, v) in enumerate(attrs.items()):
        out += ([", "] if i else []) + [repr(k) + ": "] + b.operand(v)
    return out


def _called(t) -> str:
    name = getattr(t, "name", None)
    return f" {name!r}" if name else ""


def _object_hint(obj) -> str:
    if hasattr(obj, "named_parameters") and hasattr(obj, "_prefix"):  # a Module: its path, or "model"
        return _identifier(obj._prefix.rstrip(".")) if obj._prefix else "model"
    if "Optimizer" in [k.__name__ for k in type(obj).__mro__]:
        return "opt"
    return _identifier(type(obj).__name__.lower())


def _same_memory(a, b) -> bool:
    """a is a view of all of b, element for element (np.asarray of a subclass, a reshape-free view)."""
    return (a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _same(a, b) -> bool:
    """Byte-for-byte equality (NaN payloads and signed zeros included), shape and dtype."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# ============================================================ the compiled program

class _Program:
    """One captured program: the replay function, its guards, and its source."""

    def __init__(self, cap, result_tokens, fn_name):
        self.guards = list(cap.guards.values())
        self.leaf_checks = [(t, t._data, t._data.shape, t._data.dtype, t.requires_grad) for t in cap.leaves.values()]
        b = cap.b
        ret = _Stmt(["return "] + result_tokens, [], [t for t in result_tokens if type(t) is _Sym], "escape")
        stmts = _inline_transposes(_dead_code(_fold(b.stmts + [ret], b)))
        taken, counters, ns = {"np"}, collections.Counter(), {"np": np}
        # the arguments: an array is used as it is; a tensor argument is passed itself (its `.grad` is written)
        params, head, tensor_args = [], [], {}
        for sym, wrapper, index, is_tensor in cap.inputs:
            if is_tensor:
                pname = _unique(_identifier(sym.hint) + "_t", taken)
                tensor_args[id(wrapper)] = pname
                head.append(_Stmt([sym, f" = {pname}._data"], [sym], [], "input"))
            else:
                pname = sym.name = _unique(_identifier(sym.hint), taken)
            params.append(pname)
        stmts = head + stmts
        _grads_as_scratch(stmts, b)
        for c in b.consts.values():
            if id(c.obj) in tensor_args:
                c.name = tensor_args[id(c.obj)]
            else:
                c.name = _unique(_identifier(c.hint), taken)
                ns[c.name] = c.obj
        # names: the tensors' own names where they have them (layers.0.W -> layers_0_W, its gradient
        # dlayers_0_W), numbered temporaries elsewhere
        for st in stmts:
            for sym in st.defs:
                if sym.name is None:
                    sym.name = _unique_sym(_display_hint(sym), taken, counters)
        last_use = {}
        for i, st in enumerate(stmts):
            for sym in st.uses:
                last_use[id(sym)] = i
        dying = collections.defaultdict(set)
        for i, st in enumerate(stmts):
            for sym in st.defs:
                dying[last_use.get(id(sym), i)].add(sym.name)
        lines, shown = [], []
        for i, st in enumerate(stmts):
            line = "    " + "".join(t if type(t) is str else t.name for t in st.tokens)
            lines.append(line)
            shown.append(line if st.shown is None else
                         "    " + "".join(t if type(t) is str else t.name for t in st.shown))
            if dying.get(i) and i < len(stmts) - 1:  # free each value after its last use, as eager mode does
                lines.append("    del " + ", ".join(sorted(dying[i])))
        name = _identifier(fn_name)
        consts = [f"{c.name} = {_describe(c.obj)}" for c in b.consts.values()
                  if isinstance(c.obj, np.ndarray) and c.name in ns and (c.obj.ndim == 0 or c.obj.size and
                                                                         np.all(c.obj == c.obj.flat[0]))]
        head = [f"def {name}({', '.join(params)}):"]
        if consts:
            head.insert(0, "# constants: " + ", ".join(consts))
        code = "\n".join(head + lines) + "\n"
        # what `source` shows: the same statements, without the `del` lines that free each value after its last use
        self.source = "\n".join(head + shown) + "\n"
        filename = f"<dl.jit {name} #{next(_programs)}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        exec(compile(code, filename, "exec"), ns)  # noqa: S102 - the program written above
        self.code, self.fn = code, ns[name]
        self.n_statements = sum(1 for line in lines if not line.lstrip().startswith("del "))

    def holds(self) -> bool:
        """Its guards hold: the modules' flags it read, and its leaves' shapes, dtypes and requires_grad."""
        for obj, attr, value in self.guards:
            if getattr(obj, attr) != value:
                return False
        for t, data, shape, dtype, rg in self.leaf_checks:
            d = t._data
            if d is not data and (d.shape != shape or d.dtype != dtype) or t.requires_grad is not rg:
                return False
        return True


def _describe(arr) -> str:
    """A number constant (0.5), or an array of one number computed at the capture (0.5 in shape (1, 400))."""
    return repr(arr.item()) if arr.ndim == 0 else f"{arr.flat[0].item()!r} in shape {arr.shape}"


def _display_hint(sym) -> str:
    if sym.tensor is not None and sym.tensor.name:
        return sym.tensor.name
    if sym.grad_of is not None:
        t = sym.grad_of
        return "d" + _identifier(t.name) if t.name else "g"
    return sym.hint


_programs = itertools.count(1)


def _unique(name, taken):
    base, k = name, 2
    while name in taken:
        name = f"{base}_{k}"
        k += 1
    taken.add(name)
    return name


def _unique_sym(hint, taken, counters):
    hint = _identifier(hint)
    if hint in ("t", "g", "m", "r", "c"):  # temporaries are numbered
        while True:
            counters[hint] += 1
            name = f"{hint}{counters[hint]}"
            if name not in taken:
                taken.add(name)
                return name
    return _unique(hint, taken)


def _users(stmts):
    users = collections.defaultdict(list)
    for st in stmts:
        for u in st.uses:
            users[id(u)].append(st)
    return users


def _replace(st, old, new):
    st.tokens = [new if t is old else t for t in st.tokens]
    st.uses = [u for u in st.uses if u is not old] + ([new] if type(new) is _Sym and
                                                      not any(u is new for u in st.uses) else [])


def _fold(stmts, b):
    """Statements that depend on no data (the gradient of the cost, 1.0, broadcast to a column) are computed once,
    at the capture, by the same NumPy calls: their results become constants of the program. Values that leave the
    program (.grad, returned, passed to a call) or are changed in place later are always computed afresh."""
    blocked = set()
    for st in stmts:
        if st.kind == "escape":
            blocked.update(id(u) for u in st.uses)
    while True:
        known = set()
        for st in stmts:
            if st.kind in ("arith", "pure", "asarray", "derived"):
                st.fold = all(id(u) in known for u in st.uses)
            elif st.kind == "alloc":
                st.fold = True
            elif st.kind == "mutate":
                st.fold = id(st.target) in known and all(id(u) in known for u in st.uses)
            else:
                st.fold = False
            if st.fold:
                known.update(id(d) for d in st.defs if id(d) not in blocked)
                st.fold = all(id(d) in known for d in st.defs)
        more = {id(st.target) for st in stmts if st.kind == "mutate" and not st.fold and id(st.target) in known}
        if more <= blocked:
            break
        blocked |= more
    users = _users(stmts)
    out = []
    for st in stmts:
        if st.fold:
            for d in st.defs:
                live = [u for u in users[id(d)] if not u.fold]
                if live:
                    const = b.const(d.value, "c")
                    for u in live:
                        _replace(u, d, const)
            continue
        out.append(st)
    return out


def _grads_as_scratch(stmts, b):
    """`opt.step()` directly followed by `opt.zero_grad()`: the gradients the program has just written to `.grad`
    are seen by nobody once zero_grad drops them, so the step may use them as its scratch buffers (cache-warm, as
    a hand-written `dW *= lr; W -= dW` uses them) instead of the optimizer's own (`_step_in_gradients`). Only the
    library's own optimizers (their updates are known to read dW no more once the buffer is written), and only
    gradients that share memory with no other value of the program and are used by nothing but their write."""
    from .optim import Optimizer  # (optim imports the engine; the engine does not import jit)
    users, values = _users(stmts), None
    writes = {}  # id(owner) -> the last gradient written to owner.grad so far (in program order)
    for st, nxt in zip(stmts, stmts[1:] + [None]):
        if st.kind != "escape":
            continue
        if len(st.tokens) == 9 and st.tokens[1] == ".grad = " and type(st.tokens[2]) is _Sym:
            writes[id(st.tokens[0])] = st.tokens[2]  # owner.grad = g if owner.grad is None else owner.grad + g
            continue
        opt = st.tokens[0] if len(st.tokens) == 3 else None
        if type(opt) is _Const and st.tokens[1:] == [".zero_grad(", ")"]:
            for p in getattr(opt.obj, "params", ()):  # what was written before is no longer .grad
                writes.pop(id(b.consts.get(id(p))), None)
            continue
        if type(opt) is not _Const or st.tokens[1:] != [".step(", ")"] or nxt is None or \
                nxt.tokens != [opt, ".zero_grad(", ")"]:
            continue
        if values is None:
            values = [d.value for s in stmts for d in s.defs] + [c.obj for c in b.consts.values()
                                                                   if isinstance(c.obj, np.ndarray)]
        kind = type(opt.obj)
        if not isinstance(opt.obj, Optimizer) or kind.__module__ != Optimizer.__module__ or \
                kind.step is not Optimizer.step or not kind._grad_as_scratch:
            continue
        grads = []
        for p in opt.obj.params:
            owner = b.consts.get(id(p))
            g = None if owner is None else writes.get(id(owner))
            if g is None or len(users.get(id(g), ())) != 1 or type(g.value) is not np.ndarray or \
                    g.value.size < _WARM_SCRATCH or sum(np.may_share_memory(v, g.value) for v in values) != 1:
                g = None
            grads.append(g)
        if any(g is not None for g in grads):
            st.shown = list(st.tokens)
            st.tokens = [opt, "._step_in_gradients(("] + [t for i, g in enumerate(grads) for t in (
                [", "] if i else []) + [g if g is not None else "None"]] + [",))" if len(grads) == 1 else "))"]
            st.uses = [g for g in grads if g is not None]


_WARM_SCRATCH = 4096  # elements: below this, an optimizer's own scratch buffer stays in cache anyway


def _inline_transposes(stmts):
    """`t = A1.T` used once, by a later statement, is written inside it (dW2 = dZ2 @ A1.T): a view, no computation,
    so nothing changes but the reading (and one assignment fewer)."""
    users = _users(stmts)
    drop = set()
    for i, st in enumerate(stmts):
        if st.kind != "pure" or len(st.defs) != 1 or st.tokens[2:] != [st.tokens[2], ".T"] or len(st.tokens) != 4:
            continue
        t, x = st.defs[0], st.tokens[2]
        use = users.get(id(t), [])
        if len(use) != 1 or use[0].kind == "mutate" or (type(x) is _Sym and any(
                u.kind == "mutate" and u.target is x for u in stmts[i + 1:stmts.index(use[0])])):
            continue
        consumer = use[0]
        tokens = []
        for tok in consumer.tokens:
            tokens += [x, ".T"] if tok is t else [tok]
        consumer.tokens = tokens
        consumer.uses = [u for u in consumer.uses if u is not t] + (
            [x] if type(x) is _Sym and not any(u is x for u in consumer.uses) else [])
        drop.add(id(st))
    return [st for st in stmts if id(st) not in drop]


def _dead_code(stmts):
    """Drop statements whose results nobody uses (effects stay: calls, checks, writes, returns)."""
    used = set()
    keep = []
    for st in reversed(stmts):
        if st.effect or any(id(s) in used for s in st.defs):
            keep.append(st)
            used.update(id(s) for s in st.uses)
    keep.reverse()
    return keep


# ============================================================ value readers watched during a capture

_swap_lock = threading.Lock()
_swap_depth = 0
_originals = {}
_replayed_originals = []  # (holder, name, function) of the `replayed` functions wrapped during captures


def _active():
    return _capture.get() if _mode.get() & _CAPTURE else None


def _install():
    """While some thread captures, Tensor's value readers report to the capture of the calling thread (other
    threads see no difference but a flag test)."""
    global _swap_depth
    with _swap_lock:
        _swap_depth += 1
        if _swap_depth > 1:
            return
        names = ("data", "numpy", "item", "tolist", "__array__", "__bool__", "__float__", "_modified",
                 "retain_grad", "grad", "__init__")
        for name in names:
            _originals[name] = Tensor.__dict__[name]
        data, grad, init = _originals["data"], _originals["grad"], _originals["__init__"]

        def reader(name, what):
            orig = _originals[name]

            def method(self, *args, **kwargs):
                cap = _active()
                if cap is not None:
                    cap.escape(what, self)
                return orig(self, *args, **kwargs)
            return method

        def get_data(self):
            cap = _active()
            if cap is not None:
                cap.escape("`.data`", self)
            return self._data

        def modified(self):
            cap = _active()
            if cap is not None:
                cap.fail(f"a tensor{_called(self)} is changed in place (`-=`, `.data = ...`) outside an optimizer's "
                         f"step()")
            return _originals["_modified"](self)

        def retain(self):
            cap = _active()
            if cap is not None:
                cap.unsupported("retain_grad()")
            return _originals["retain_grad"](self)

        def get_grad(self):
            cap = _active()
            if cap is not None:
                cap.escape("`.grad`", self)
            return grad.__get__(self, Tensor)

        def set_grad(self, value):
            cap = _active()
            if cap is not None and getattr(self, "requires_grad", False):  # (new tensors start with grad None)
                cap.fail(f"`.grad` of a tensor{_called(self)} is set in Python (use zero_grad() of the optimizer or "
                         f"the model)")
            grad.__set__(self, value)

        def init_(self, data, requires_grad=False, dtype=None, name=None):
            init(self, data, requires_grad, dtype, name)
            cap = _active()
            if cap is not None and cap.problem is None:
                src = data._data if isinstance(data, Tensor) else data
                if self._data is not src and isinstance(src, (np.ndarray, np.generic)) and id(src) in cap.arrays \
                        and type(cap.value_of(self._data)) is not _Sym:  # a converted copy, not a view
                    cap.derived(_tensor_data, (src, requires_grad, dtype), self._data)

        for fn in REPLAYED:  # a recording wrapper in place of each `replayed` function
            holder = sys.modules[fn.__module__]
            *path, name = fn.__qualname__.split(".")
            for part in path:
                holder = getattr(holder, part)
            _replayed_originals.append((holder, name, holder.__dict__[name]))
            setattr(holder, name, _recording(fn))

        Tensor.data = property(get_data, data.fset, doc=data.__doc__)
        Tensor.grad = property(get_grad, set_grad)
        Tensor._modified = modified
        Tensor.retain_grad = retain
        Tensor.__init__ = init_
        Tensor.numpy = reader("numpy", "`.numpy()`")
        Tensor.item = reader("item", "`.item()`")
        Tensor.tolist = reader("tolist", "`.tolist()`")
        Tensor.__array__ = reader("__array__", "converting a tensor to an array (np.asarray(t), NumPy on t)")
        Tensor.__bool__ = reader("__bool__", "`bool(t)` (an `if` on a tensor)")
        Tensor.__float__ = reader("__float__", "`float(t)`")


def _uninstall():
    global _swap_depth
    with _swap_lock:
        _swap_depth -= 1
        if _swap_depth:
            return
        for name, orig in _originals.items():
            setattr(Tensor, name, orig)
        _originals.clear()
        for holder, name, orig in _replayed_originals:
            setattr(holder, name, orig)
        _replayed_originals.clear()


def _recording(fn):
    """What stands in for a `replayed` function while some thread captures: the capture of the calling thread
    records the call (and makes it); other threads call the function."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        cap = _active()
        if cap is not None:
            return cap.call(fn, args, kwargs)
        return fn(*args, **kwargs)
    return call


def _tensor_data(data, requires_grad, dtype):
    """Tensor(data, requires_grad, dtype)'s array: the conversion a Tensor made of a computed array repeats."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)._data


# ============================================================ the decorator

_DATA = (np.ndarray, Tensor)


class jit:
    """Capture a step once (per argument shapes, dtypes and modes), replay it as flat NumPy afterwards.

    `dl.jit(fn)` or `@dl.jit`; `dl.jit(fn, max_captures=8)` sets the size of the cache of captured programs.
    The numbers a replay produces (values, `.grad`, parameters after `opt.step()`, optimizer state, the returned
    cost) are those eager mode produces, bit for bit. See the module's docstring for what is guarded, what runs
    eagerly, and the pitfalls; `cache_info()` counts captures, replays and eager calls, and `source` shows the
    program."""

    def __init__(self, fn=None, *, max_captures: int = 8, max_statements: int = 250_000):
        if fn is None:
            self._partial = (max_captures, max_statements)
            return
        if not callable(fn):
            raise TypeError(f"dl.jit: expected a function, got {type(fn).__name__}")
        if isinstance(max_captures, bool) or not isinstance(max_captures, int) or max_captures < 1:
            raise ValueError(f"dl.jit: max_captures must be a positive int, got {max_captures!r}")
        if isinstance(max_statements, bool) or not isinstance(max_statements, int) or max_statements < 1:
            raise ValueError(f"dl.jit: max_statements must be a positive int, got {max_statements!r}")
        functools.update_wrapper(self, fn)
        self.fn, self.maxsize, self.max_statements = fn, max_captures, max_statements
        self._cache = {}  # key -> _Entry, oldest capture first
        self._lock = threading.RLock()
        self._captures = self._replays = self._eager = 0
        self._reasons = collections.Counter()
        self._warned = set()
        self._last = None
        self._streak = 0  # captures in a row without a replay in between
        try:
            self._signature = inspect.signature(fn)
        except (TypeError, ValueError):
            self._signature = None

    def __get__(self, obj, objtype=None):  # a jitted method: bound like a function
        return self if obj is None else functools.partial(self.__call__, obj)

    # --- public -------------------------------------------------------------------------------------
    def cache_info(self) -> JitInfo:
        """Counts like functools.lru_cache's: captures (eager calls recorded), replays, eager calls (with the
        reasons), the number of cached argument keys and the cache's size."""
        return JitInfo(self._captures, self._replays, self._eager, len(self._cache), self.maxsize,
                       dict(self._reasons))

    def cache_clear(self):
        """Forget every captured program (the next call captures again)."""
        with self._lock:
            self._cache.clear()
            self._last = None

    @property
    def source(self) -> str:
        """The last program captured or replayed, as straight-line NumPy (what a replay executes)."""
        if self._last is None:
            reasons = [r for r in self._reasons if r != "detect_anomaly() is on"]
            return f"# not replayed: {reasons[-1]}" if reasons else "# nothing captured yet: call the function once"
        return self._last.source

    # --- calling ------------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if getattr(self, "fn", None) is None:  # @dl.jit(max_captures=...)
            if len(args) != 1 or kwargs:
                raise TypeError("dl.jit(max_captures=...) decorates one function")
            return jit(args[0], max_captures=self._partial[0], max_statements=self._partial[1])
        mode = _mode.get()
        if mode & (_CAPTURE | _ANOMALY):
            if mode & _CAPTURE:  # inside another function's capture: part of that program
                return self.fn(*args, **kwargs)
            return self._eagerly("detect_anomaly() is on", args, kwargs)
        key = None if kwargs else _array_key(args, mode)
        if key is None:
            other = _other_library(args, kwargs)
            if other is not None:  # another library's array: no program is captured (dl.jit replays NumPy)
                reason = f"dl.jit replays NumPy only, and an argument is an array from {other}"
                self._warn(reason)
                return self._eagerly(reason, args, kwargs)
            key, data, names = _key(args, kwargs, mode)
        else:
            data, names = args, None
        entry = self._cache.get(key)  # (replays need no lock: a program keeps its values in local variables)
        if entry is not None:
            if entry.eager is not None:
                return self._eagerly(entry.eager, args, kwargs)
            for prog in entry.programs:
                if prog.holds():
                    try:
                        result = prog.fn(*data)
                    except _Stale:  # a branch taken at its capture does not hold for these values: the next
                        entry.general = True  # capture of this key takes the general forms, which always hold
                        continue
                    self._replays += 1
                    self._streak = 0
                    self._last = prog
                    return result
        with self._lock:  # one capture at a time
            return self._capture(key, self._cache.get(key), args, kwargs, data,
                                 names or [f"arg{i}" for i in range(len(args))])

    def _eagerly(self, reason, args, kwargs):
        self._eager += 1
        self._reasons[reason] += 1
        return self.fn(*args, **kwargs)

    def _warn(self, reason):
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(f"dl.jit({getattr(self.fn, '__qualname__', self.fn)}): {reason}; running eagerly",
                          JitWarning, stacklevel=4)

    def _capture(self, key, entry, args, kwargs, data, names):
        if self._streak >= self.maxsize:
            reason = (f"captured {self._streak} times in a row without a replay (the arguments' shapes or number "
                      f"values change at every call: numbers are constants of a program, pass changing ones as "
                      f"arrays)")
            self._warn(reason)
            return self._eagerly(reason, args, kwargs)
        cap = _Capture(self)
        cap.branches = entry is None or not entry.general
        wrapped_args, wrapped_kwargs = _wrap(cap, args, kwargs, _parameter_names(self._signature, names))
        _install()
        mode_token = _mode.set(_mode.get() | _CAPTURE)
        cap_token = _capture.set(cap)
        try:
            result = self.fn(*wrapped_args, **wrapped_kwargs)
        finally:
            _capture.reset(cap_token)
            _mode.reset(mode_token)
            _uninstall()
        self._captures += 1
        self._streak += 1
        result = _unwrap(result, cap)
        if cap.problem is None:
            cap.check_state()
        program = None
        if cap.problem is None:
            try:
                tokens = cap.result(result)
            except _TooLong:
                cap.fail(f"the program grew past {self.max_statements} statements (max_statements)")
            except Exception as e:  # noqa: BLE001
                cap.fail(f"internal error while writing the result: {e!r}")
            if cap.problem is None:
                try:
                    program = _Program(cap, tokens, getattr(self.fn, "__name__", "step"))
                except Exception as e:  # noqa: BLE001 - a bug here must not cost the eager result
                    cap.fail(f"internal error while writing the program: {e!r}")
        if entry is None:
            entry = self._cache[key] = _Entry()
            while len(self._cache) > self.maxsize:
                del self._cache[next(iter(self._cache))]
        if program is None:
            reason, site = cap.problem
            reason = f"{reason} (at {site})"
            self._warn(reason)
            if not entry.programs:  # (programs of other variants of this key stay: their guards may hold again)
                entry.eager = reason
            self._reasons[reason] += 0
        else:
            entry.programs = [program] + entry.programs[:3]  # a few variants per key (modules switching train/eval)
            self._last = program
        return result


class _Entry:
    __slots__ = ("programs", "eager", "general")

    def __init__(self):
        self.programs, self.eager, self.general = [], None, False


def _array_key(args, mode):
    """The key of the usual call, arrays and tensors as positional arguments (None otherwise)."""
    key = [mode & _GRAD]
    for a in args:
        if type(a) is np.ndarray:
            key.append(a.shape)
            key.append(a.dtype)
        elif type(a) is Tensor:
            d = a._data
            key.append((d.shape, d.dtype, a.requires_grad, a.creator is None))
            key.append(None)
        else:
            return None
    n = len(args)
    if n > 1 and (args[0] is args[1] if n == 2 else len({id(a) for a in args}) < n):
        return None  # the same array twice: the general key says so
    return tuple(key)


def _other_library(args, kwargs):
    """The name of the first array library other than NumPy among the arguments (None if there is none)."""
    for x in list(args) + list(kwargs.values()):
        if isinstance(x, (tuple, list)):
            found = _other_library(x, {})
            if found is not None:
                return found
        x = x._data if isinstance(x, Tensor) else x
        if _ns.is_foreign(x):
            return _ns.library_name(x)
    return None


def _key(args, kwargs, mode):
    """The cache key of a call (kinds, shapes, dtypes; numbers by value), its data arguments, and their names."""
    parts, data, names = [mode & _GRAD], [], []
    seen = {}

    def walk(x, path):
        t = type(x)
        if t is np.ndarray or t is Tensor or isinstance(x, _DATA):
            k = id(x)
            if k in seen:
                return ("same", seen[k])
            seen[k] = len(data)
            data.append(x)
            names.append(path)
            if isinstance(x, Tensor):
                return ("T", x._data.shape, x._data.dtype.str, x.requires_grad, x.creator is None)
            return ("A", x.shape, x.dtype.str)
        if t is float:
            return ("f", repr(x))  # (repr tells -0.0 from 0.0, and a NaN equals itself)
        if t is int or t is bool or t is str or x is None:
            return (t.__name__, x)
        if isinstance(x, np.generic):
            v = x.item()
            return ("g", x.dtype.str, v if v == v else "nan", str(x))
        if t is tuple or t is list:
            return (t.__name__,) + tuple(walk(v, f"{path}_{i}") for i, v in enumerate(x))
        if t is dict:
            return ("dict",) + tuple((k, walk(v, f"{path}_{k}")) for k, v in x.items())
        return ("obj", id(x), x)

    for i, a in enumerate(args):
        parts.append(walk(a, f"arg{i}"))
    for k in sorted(kwargs):
        parts.append((k, walk(kwargs[k], k)))
    return tuple(parts), data, names


def _parameter_names(signature, names):
    """The data arguments' paths (arg0, arg1_2, label) with the function's parameter names (X, batch_2, label)."""
    positional = [] if signature is None else [
        p.name for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    out = []
    for path in names:
        m = re.match(r"arg(\d+)(.*)", path)
        if m and int(m.group(1)) < len(positional):
            path = positional[int(m.group(1))] + m.group(2)
        out.append(path)
    return out


def _wrap(cap, args, kwargs, names):
    """The arguments the function sees during a capture: arrays become Tensors the program knows as its inputs."""
    index = itertools.count()
    made = {}

    def wrap(x):
        if isinstance(x, (np.ndarray, Tensor)):
            if id(x) in made:
                return made[id(x)]
            i = next(index)
            if isinstance(x, Tensor):
                if x.creator is not None and x.requires_grad:
                    cap.fail("an argument is a tensor computed outside the function (with a graph)")
                sym = cap.b.new(x._data, names[i])
                cap.inputs.append((sym, x, i, True))
                cap.tensors[id(x)] = (sym, x)
                cap.arrays.setdefault(id(x._data), (sym, x._data))
                made[id(x)] = x
                return x
            t = Tensor(x) if x.dtype.kind == "f" else Tensor._make(x)
            sym = cap.b.new(x, names[i])
            cap.inputs.append((sym, t, i, False))
            cap.tensors[id(t)] = (sym, t)
            cap.arrays.setdefault(id(x), (sym, x))
            made[id(x)] = t
            return t
        if type(x) in (tuple, list):
            return type(x)(wrap(v) for v in x)
        if type(x) is dict:
            return {k: wrap(v) for k, v in x.items()}
        return x

    wrapped = tuple(wrap(a) for a in args)
    wrapped_kw = {k: wrap(kwargs[k]) for k in sorted(kwargs)}
    return wrapped, {k: wrapped_kw[k] for k in kwargs}


def _unwrap(value, cap):
    """The capture call's return value, with the Tensors made around array arguments replaced by the arrays."""
    for sym, wrapper, index, is_tensor in cap.inputs:
        if not is_tensor and value is wrapper:
            return sym.value
    if type(value) in (tuple, list):
        return type(value)(_unwrap(v, cap) for v in value)
    if type(value) is dict:
        return {k: _unwrap(v, cap) for k, v in value.items()}
    return value
