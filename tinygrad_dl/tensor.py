"""The Tensor, the Function base class of every primitive, and the reverse-mode engine.

A Tensor records the Function that made it (`creator`); a Function records its `inputs`. Nothing points back
from a Function to its output, so a graph is freed by reference counting the moment its last tensor goes.
`backward()` walks `toposort()` in reverse, keeps the gradients in a dict, and writes `.grad` on leaves at the end.
This module knows no derivative: every rule lives in `ops.py`, whose classes also bind the Tensor's operators.
"""
from __future__ import annotations

import contextvars
import functools
import gc
import os
import traceback

import numpy as np

# Grad mode and anomaly mode, per thread (and per asyncio task): one small int, read once per op.
_GRAD, _ANOMALY = 1, 2
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_mode = contextvars.ContextVar("tinygrad_dl_mode", default=_GRAD)


def is_grad_enabled() -> bool:
    """True when operations are being recorded for backward (not inside `no_grad()`)."""
    return bool(_mode.get() & _GRAD)


class _SetMode:
    """Context manager and decorator that switches flags of the per-thread mode on or off."""

    def __init__(self, flag: int, on: bool):
        self.flag, self.on, self._tokens = flag, on, []

    def __enter__(self):
        mode = _mode.get()
        self._tokens.append(_mode.set(mode | self.flag if self.on else mode & ~self.flag))
        return self

    def __exit__(self, *exc):
        _mode.reset(self._tokens.pop())
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with type(self)(self.flag, self.on):
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
    are copied, so in-place updates never touch the caller's array).
    """

    __slots__ = ("data", "grad", "requires_grad", "creator", "name", "_retain", "__weakref__")
    __array_ufunc__ = None  # ndarray <op> Tensor defers to Tensor's reflected operators instead of looping
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        if isinstance(data, Tensor):
            data = data.data
        arr = np.array(data, dtype=dtype, copy=True) if requires_grad else np.asarray(data, dtype=dtype)
        if dtype is None and arr.dtype.kind in "biu":
            arr = arr.astype(np.float64)
        if arr.dtype.kind != "f":
            raise TypeError(f"Tensor: data must be floating point to carry a gradient; got dtype {arr.dtype} "
                            f"(use float64 or float32)")
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.creator = None
        self.name = name
        self._retain = False

    @staticmethod
    def _make(data, requires_grad=False, creator=None):
        """Fast internal constructor: `data` is already a float ndarray."""
        t = _new(Tensor)
        t.data, t.grad, t.requires_grad, t.creator, t.name, t._retain = data, None, requires_grad, creator, None, False
        return t

    # --- plain properties ------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)

    def __len__(self):
        return len(self.data)

    def __bool__(self):
        return bool(self.data)  # as NumPy: a one-element tensor's truth; ambiguous for more (ValueError)

    def __float__(self):
        return float(self.data.item())

    def numpy(self) -> np.ndarray:
        """The value as an ndarray (shared, not copied)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        return self.data.item()

    def detach(self) -> "Tensor":
        """The same values, cut from the graph (shares memory)."""
        return Tensor._make(self.data)

    def retain_grad(self) -> "Tensor":
        """Keep `.grad` on this intermediate tensor after backward (leaves always keep theirs)."""
        self._retain = True
        return self

    def __repr__(self):
        extra = f", name={self.name!r}" if self.name else ""
        extra += f", creator={self.creator.name}" if self.creator is not None else ""
        extra += ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, precision=4, threshold=20, prefix="Tensor(")
        return f"Tensor({body}, dtype={self.dtype}{extra})"

    # comparisons are not differentiable: they return plain boolean arrays
    def __lt__(self, other): return self.data < _value(other)
    def __le__(self, other): return self.data <= _value(other)
    def __gt__(self, other): return self.data > _value(other)
    def __ge__(self, other): return self.data >= _value(other)
    __hash__ = object.__hash__

    # --- backward ----------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Backpropagate from this tensor; gradients ACCUMULATE into the `.grad` of leaves (and of tensors that
        called `retain_grad()`). A non-scalar output needs `grad` of its own shape."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input had requires_grad=True, "
                               "or it was computed under no_grad())")
        grads = run_backward([self], None if grad is None else [grad], retain_graph=retain_graph,
                             keep="leaves")
        seen = {id(_value(grad))}
        for t, g in grads.items():
            if id(g) in seen or g.base is not None or not g.flags.writeable:
                g = g.copy()  # never alias a caller's array, a view, or an array another tensor also got
            seen.add(id(g))
            t.grad = g if t.grad is None else t.grad + g

    def _repr_html_(self):
        """Jupyter's rich display: shape, dtype, name, creator, grad and a bounded preview (display.py)."""
        from .display import tensor_html
        return tensor_html(self)


_new = object.__new__


def _value(x):
    return x.data if isinstance(x, Tensor) else x


# --- Function: the base class of every primitive ------------------------------------------------------

PRIMITIVES: dict[str, type] = {}  # name -> class, filled as ops.py defines its classes


class Function:
    """One node of the graph: `forward` on ndarrays, `backward` with Tensors (see ops.py).

    Subclass it to write a primitive: `forward(self, *arrays) -> ndarray` and
    `backward(self, grad, out, *inputs) -> tuple` with one gradient per input (or None), each shaped like the
    input or like the output (broadcast dimensions are summed back here, in one place). Write the rule with
    Tensor operations on `grad`, `out` and `inputs`, so it is itself differentiable (grad-of-grad).
    Built-in primitives set `ndarray_backward = True`: their rule uses only operations that ndarrays share with
    Tensors, so for a first-order backward it runs directly on ndarrays (one definition, two speeds).
    """

    __slots__ = ("inputs", "site")
    ndarray_backward = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__ == "tinygrad_dl.ops" and not cls.__name__.startswith("_"):
            PRIMITIVES[cls.__name__] = cls

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
        # the hot path of every forward op: kept flat on purpose (one and two inputs without generic loops)
        try:
            if len(inputs) == 2:
                a, b = inputs
                if type(a) is not Tensor:
                    a = _constant(a, b if type(b) is Tensor else None)
                    inputs = a, b
                if type(b) is not Tensor:
                    b = _constant(b, a)
                    inputs = a, b
                data = self.forward(a.data, b.data)
                needs = a.requires_grad or b.requires_grad
            elif len(inputs) == 1 and type(inputs[0]) is Tensor:
                x = inputs[0]
                data = self.forward(x.data)
                needs = x.requires_grad
            else:
                inputs = _as_tensors(inputs)
                data = self.forward(*[t.data for t in inputs])
                needs = any(t.requires_grad for t in inputs)
        except ShapeError:
            raise
        except ValueError as e:  # NumPy's broadcasting errors, re-raised in our words
            shapes = " and ".join(str(np.shape(_value(t))) for t in inputs)
            raise ValueError(f"{self.name.lower()}: cannot combine shapes {shapes}: {e}") from None
        if type(data) is not np.ndarray:
            data = np.asarray(data)
        mode = _mode.get()
        if mode & _ANOMALY:
            self.site = _user_site()
            _check_finite(data, self, "forward value")
        out = _new(Tensor)
        out.data = data
        out.grad = out.name = None
        out._retain = False
        if needs and mode & _GRAD:
            self.inputs = inputs
            out.requires_grad = True
            out.creator = self
        else:
            out.requires_grad = False
            out.creator = None
        return out

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad, out, *inputs):
        raise NotImplementedError

    def __repr__(self):
        return f"<{self.name}>"


def _as_tensors(args) -> tuple:
    """Inputs as Tensors: numbers and arrays become constants (numbers in the dtype of the first tensor)."""
    ref = next((a for a in args if type(a) is Tensor), None)
    return tuple(a if type(a) is Tensor else _constant(a, ref) for a in args)


_CONSTANTS: dict = {}  # (value, dtype) -> constant Tensor: numbers like 1, 0.5, 1/m recur in every step


def _constant(x, ref):
    """Wrap a number or array as a constant Tensor; Python numbers take the dtype of the tensor beside them
    (NumPy 2's rule: a Python float never upcasts float32)."""
    if (type(x) is float or type(x) is int) and ref is not None:
        key = (x, ref.data.dtype)
        t = _CONSTANTS.get(key)
        if t is None:
            if len(_CONSTANTS) > 4096:
                _CONSTANTS.clear()
            arr = np.asarray(x, dtype=ref.data.dtype)
            arr.flags.writeable = False
            t = _CONSTANTS[key] = Tensor._make(arr)
        return t
    if isinstance(x, (float, int, np.number)) and not isinstance(x, bool) and ref is not None:
        return Tensor._make(np.asarray(x, dtype=ref.data.dtype))  # NumPy scalars too (not cached: they vary)
    if isinstance(x, np.ndarray) and x.dtype == np.bool_ and ref is not None:
        return Tensor._make(x.astype(ref.data.dtype))  # a mask multiplies in the tensor's dtype
    return Tensor(x)


def sum_to_shape(g, shape):
    """Undo broadcasting: sum a gradient shaped like an op's output back to one input's `shape`.
    Works on ndarrays and on Tensors (the one place broadcasting is undone)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    g = g.sum(axis=axes, keepdims=True) if axes else g
    return g.reshape(shape) if lead or g.shape != shape else g


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
    mode = _mode.get()
    token = _mode.set((mode | _GRAD) if create_graph else (mode & ~_GRAD))
    collecting = gc.isenabled()
    gc.disable()  # the pass frees the graph by reference counting; a cycle collection midway is wasted work
    try:
        for t in reversed(order):
            fn = t.creator
            if fn is None:
                continue
            g = grad_of.get(t) if keep_all or t._retain or t in wanted else grad_of.pop(t, None)
            if g is None:
                continue
            inputs = fn.inputs
            if create_graph or not fn.ndarray_backward:
                in_grads = _tensor_rule(fn, g, t, create_graph)
            elif len(inputs) == 2:  # first order: the rule runs directly on ndarrays
                in_grads = fn.backward(g, t.data, inputs[0].data, inputs[1].data)
            else:
                in_grads = fn.backward(g, t.data, *[x.data for x in inputs])
            if owned:
                owned.discard(id(g))  # a rule may pass g itself on to its inputs: no longer ours to add into
            if hook is not None or mode & _ANOMALY:
                in_grads = _fit_all(fn, in_grads, inputs)
                if hook is not None:
                    hook(t, fn, g, in_grads)
            for x, gx in zip(inputs, in_grads):
                if gx is not None and x.requires_grad:
                    xd = x.data
                    if type(gx) is not np.ndarray or gx.shape != xd.shape or gx.dtype is not xd.dtype:
                        gx = _fit(gx, x)
                    if x in grad_of:
                        _accumulate(grad_of, owned, x, gx)
                    else:
                        grad_of[x] = gx
            if not retain_graph:
                fn.inputs = None  # release the saved inputs: memory goes back now, a second pass is an error
    finally:
        _mode.reset(token)
        if collecting:
            gc.enable()
    if keep_all:
        return grad_of
    return {t: g for t, g in grad_of.items() if t.creator is None or t._retain or t in wanted}


def _tensor_rule(fn, g, out, create_graph):
    """Run a rule on Tensors: recorded for grad-of-grad, or under no_grad for rules written only for Tensors."""
    raw = fn.backward(g if type(g) is Tensor else Tensor._make(g), out, *fn.inputs)
    if len(raw) != len(fn.inputs):
        raise RuntimeError(f"{fn.name}.backward returned {len(raw)} gradients for {len(fn.inputs)} inputs")
    return raw if create_graph else [None if r is None else np.asarray(_value(r)) for r in raw]


def _fit(r, x):
    """Sum one gradient back to its input's shape (undo broadcasting) and give it the input's dtype."""
    xd = x.data
    if r.shape != xd.shape:
        r = sum_to_shape(r, xd.shape)
    if type(r) is not Tensor:
        if type(r) is not np.ndarray:
            r = np.asarray(r)  # NumPy gives scalars for 0-d results
        if r.dtype is not xd.dtype and r.dtype != xd.dtype:
            r = r.astype(xd.dtype)  # a float32 input gets a float32 gradient, whatever it met
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
        if r.data.size != 1:
            raise ValueError(f"backward: the output has shape {r.shape}, not a scalar; pass grad= of that shape "
                             f"(or reduce it first, e.g. cost = loss.mean())")
        g = np.ones_like(r.data)
    elif isinstance(g, Tensor):
        g = g if create_graph else g.data
    else:
        g = np.asarray(g, dtype=r.dtype)
    if g.shape != r.shape:
        raise ValueError(f"backward: grad has shape {g.shape} but the output has shape {r.shape}")
    return Tensor._make(g) if create_graph and not isinstance(g, Tensor) else g


def _accumulate(grad_of, owned, x, g):
    """Add one contribution to x's gradient: the second contribution allocates a fresh sum, later ones add
    into it in place (never into an array that a rule passed through or a caller handed in)."""
    old = grad_of.get(x)
    if old is None:
        grad_of[x] = g
    elif id(old) in owned and not isinstance(g, Tensor):
        np.add(old, g, out=old)
    else:
        new = old + g
        if type(new) is not Tensor:
            new = np.asarray(new)  # 0-d sums come back as NumPy scalars
            owned.add(id(new))
        grad_of[x] = new


def grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned as a list of Tensors (no `.grad` is touched).
    With `create_graph=True` the gradients are themselves differentiable (grad-of-grad, Hessian-vector products)."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is not None:
        grad_outputs = [grad_outputs] if isinstance(grad_outputs, (Tensor, np.ndarray)) else list(grad_outputs)
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
    if not np.all(np.isfinite(arr)):
        kind = "NaN" if np.isnan(arr).any() else "inf"
        raise FloatingPointError(f"detect_anomaly: {fn.name} produced {kind} in its {what} "
                                 f"(op created at {getattr(fn, 'site', None) or '<unknown>'})")
