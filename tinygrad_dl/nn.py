"""Layers with parameters: Module, Dense, Sequential, activation and Dropout modules (course notes §2.1-§2.5, §3.1).

Everything is a composition of Tensor operations; no layer defines a derivative. Examples are COLUMNS: a Dense
layer maps A_prev (n_in, m) to Z = W @ A_prev + b (n_out, m), with W (n_out, n_in) and b (n_out, 1).

Registration works like PyTorch: assigning a Module or a Tensor with requires_grad=True to an attribute of a
Module registers it (`self.W = Tensor(..., requires_grad=True)`, `self.hidden = Dense(4, 3)`). A parameter's
`.name` is its path from the root module ("layers.0.W" inside a Sequential; "W" for a standalone Dense), set when
a module is attached to a parent, and a Dense names its output "<path>Z" (e.g. "layers.0.Z"): the visualizer
labels and groups the graph with these names.

    >>> import numpy as np, tinygrad_dl as dl, tinygrad_dl.functional as F
    >>> model = dl.nn.Sequential(dl.nn.Dense(30, 16, rng=0), dl.nn.ReLU(), dl.nn.Dense(16, 1, rng=1))
    >>> X, Y = np.ones((30, 5)), np.zeros((1, 5))                  # X (n_x, m), Y (1, m)
    >>> cost = F.binary_cross_entropy_with_logits(model(X), Y)
    >>> cost.backward()
    >>> [p.name for p in model.parameters()]
    ['layers.0.W', 'layers.0.b', 'layers.2.W', 'layers.2.b']
    >>> model[0](X).name
    'layers.0.Z'

Updating a parameter the course's way works: `layer.W = layer.W - lr * layer.W.grad` inside `dl.no_grad()` (or
any array of W's shape) writes the new values into the same parameter, which stays registered and keeps being the
tensor an optimizer holds. Assigning the result of an operation that is being recorded (outside no_grad) is
refused with the fix, rather than silently turning the parameter into a graph node.

`model.save("model.npz")` writes a .npz of float arrays; `model.load("model.npz")` reads it without unpickling.
`model.predict(X)` runs the model in eval mode under no_grad; `accuracy(output, Y, from_logits=...)` scores it.
"""
from __future__ import annotations

import math
import os
import secrets
import zipfile
import zlib

import numpy as np

from . import _checks, _namespace as _ns
from . import functional as F
from . import init as _init
from .tensor import Tensor, guarded, is_capturing, no_grad, replayed

__all__ = ["Module", "Dense", "Sequential", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Softmax", "Dropout",
           "predict", "predicted_labels", "accuracy"]


class Module:
    """Base class of layers and models: holds parameters and child modules, registered by attribute assignment.

    `model(A)` calls `forward(A)`. `training` (True after construction) is switched for the whole tree by
    `train()` / `eval()`; Dropout reads it. `state_dict()` returns copies; `save`/`load` use .npz files that are
    read with allow_pickle=False, so a file can never run code."""

    def __init__(self):
        d = self.__dict__
        if "_params" not in d:  # idempotent: a late super().__init__() must not forget registered attributes
            object.__setattr__(self, "_params", {})
            object.__setattr__(self, "_modules", {})
            object.__setattr__(self, "_prefix", "")
            object.__setattr__(self, "_training", True)

    # dl.jit keeps a captured program only while every `training` flag it read still has the same value
    training = property(lambda self: guarded(self, "_training"),
                        lambda self, mode: object.__setattr__(self, "_training", bool(mode)),
                        doc="True in training mode (Dropout drops units), False in prediction mode.")

    # --- registration -----------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_params" not in self.__dict__:
            Module.__init__(self)
        params, modules = self._params, self._modules
        old = params.get(name)
        if old is not None:
            if value is old:          # `W -= ...` in place gives back the same parameter: keep it where it is
                return
            if not isinstance(value, Module) and not _is_new_parameter(value):
                self._assign_values(name, old, value)    # W = W - lr dW: new values for the same parameter
                return
        elif value is not None and value is modules.get(name):
            return                    # the same child again: keep its place and its parameters' names
        params.pop(name, None)
        modules.pop(name, None)
        if isinstance(value, Module):
            modules[name] = value
            value._set_prefix(self._prefix + name + ".")
        elif isinstance(value, Tensor) and value.requires_grad:
            if value.creator is not None:
                raise TypeError(f"{type(self).__name__}.{name}: a parameter must be a leaf tensor created with "
                                f"requires_grad=True, not the result of an operation ({value.creator.name})")
            params[name] = value
            value.name = self._prefix + name
        object.__setattr__(self, name, value)

    def _assign_values(self, name, old: Tensor, value):
        """`module.<name> = value` over a registered parameter: copy the values into it (same object, still a
        parameter, `.grad` kept), or refuse with the fix; never drop it from parameters() silently."""
        where = f"{type(self).__name__}.{name}"
        path = old.name or name
        fix = (f"update a parameter in place: `with dl.no_grad(): module.{name} -= lr * module.{name}.grad`, or "
               f"`module.{name} = module.{name} - lr * module.{name}.grad` inside `dl.no_grad()`, or "
               f"`module.{name}.data = new_values`")
        if value is None:
            raise TypeError(f"{where}: assigning None would remove the parameter {path!r}; to remove it on purpose "
                            f"write `del module.{name}`")
        if isinstance(value, Tensor) and value.creator is not None and value.requires_grad:
            raise TypeError(f"{where}: the value is the result of an operation ({value.creator.name}) recorded for "
                            f"backprop, which would replace the parameter {path!r} by a node of the graph and drop "
                            f"it from parameters(); {fix}")
        arr = value.data if isinstance(value, Tensor) else value if _ns.is_foreign(value) else np.asarray(value)
        if _ns.is_foreign(arr):  # another library's values: the parameter moves there (as `.data = ...` does)
            if not _ns.is_floating(arr) or arr.shape != old.shape:
                raise TypeError(f"{where}: parameter {path!r} of shape {old.shape} holds floats; the value "
                                f"assigned has shape {arr.shape} and dtype {arr.dtype}")
            old.data = _ns.namespace(arr).asarray(arr, copy=True)
            return
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"{where}: parameter {path!r} holds floats; the value assigned has dtype {arr.dtype}")
        if arr.shape != old.shape:
            raise ValueError(f"{where}: parameter {path!r} has shape {old.shape} but the value assigned has shape "
                             f"{arr.shape}; to replace it by a parameter of another shape, assign "
                             f"Tensor(values, requires_grad=True)")
        # through the .data setter: a change of the parameter, so a graph that used the old values refuses to
        # backpropagate through them; the optimizer holds `old` itself, so it sees the new values
        old.data = np.array(arr, dtype=old.dtype, copy=True)

    def __delattr__(self, name):
        self._params.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def _children(self):
        """(name, module) pairs of the direct children, in registration order."""
        return self._modules.items()

    def _set_prefix(self, prefix: str):
        """Name every parameter below this module by its path from the root (called when attached to a parent)."""
        object.__setattr__(self, "_prefix", prefix)
        for name, p in self._params.items():
            p.name = prefix + name
        for name, child in self._children():
            child._set_prefix(prefix + name + ".")

    # --- parameters -------------------------------------------------------------------------------
    def named_parameters(self) -> list:
        """[(path, tensor), ...] for every parameter below this module (each tensor once), in registration order;
        paths are relative to this module, e.g. "layers.0.W"."""
        out, seen, stack = [], set(), [("", self)]
        while stack:
            prefix, mod = stack.pop()
            for name, p in mod._params.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append((prefix + name, p))
            stack.extend(reversed([(prefix + name + ".", child) for name, child in mod._children()]))
        return out

    def parameters(self) -> list:
        """Every parameter tensor (what an optimizer updates), each once."""
        return [p for _, p in self.named_parameters()]

    def weights(self) -> list:
        """The W matrices (parameters named "W"): what `F.l2_penalty` penalizes (§3.1; biases are not)."""
        return [p for name, p in self.named_parameters() if name.rsplit(".", 1)[-1] == "W"]

    def named_modules(self) -> list:
        """[(path, module), ...] for this module ("") and every module below it, depth first."""
        out, stack = [], [("", self)]
        while stack:
            path, mod = stack.pop()
            out.append((path, mod))
            stack.extend(reversed([((path + "." if path else "") + name, child)
                                   for name, child in mod._children()]))
        return out

    @replayed
    def zero_grad(self):
        """Forget every parameter's gradient (backward accumulates into .grad)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True):
        """Training mode for this module and all its children (Dropout drops units). Returns self."""
        for _, mod in self.named_modules():
            object.__setattr__(mod, "_training", bool(mode))
        return self

    def eval(self):
        """Prediction mode for this module and all its children (Dropout is the identity). Returns self."""
        return self.train(False)

    # --- calling ----------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def predict(self, X):
        """The output for X in eval mode (dropout off) under no_grad, each module's mode restored afterwards:
        `accuracy(model.predict(X_dev), Y_dev, from_logits=True)`. Same as `dl.nn.predict(model, X)`."""
        return predict(self, X)

    # --- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{path: copy of the parameter's array}: a snapshot that later in-place updates do not change."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state, strict: bool = True):
        """Copy arrays into the parameters, in place. Every name must match a parameter and every shape its
        parameter's shape (with strict=False, missing and extra names are skipped); nothing is changed unless all
        checks pass. Arrays are cast to each parameter's dtype. Returns self."""
        where = f"{type(self).__name__}.load_state_dict"
        own = dict(self.named_parameters())
        if strict:
            _check_names(where, own, list(state))
        checked = []
        for name, p in own.items():
            if name not in state:
                continue
            arr = state[name]
            arr = np.asarray(arr.data if isinstance(arr, Tensor) else arr)
            if arr.dtype.kind != "f":
                raise ValueError(f"{where}: parameter {name!r} has dtype {arr.dtype} in the state; expected "
                                 f"floating point")
            if arr.shape != p.shape:
                raise ValueError(f"{where}: parameter {name!r} has shape {arr.shape} in the state but "
                                 f"{p.shape} in the model")
            checked.append((p, arr))
        for p, arr in checked:
            if p.data.flags.writeable:
                np.copyto(p.data, arr, casting="unsafe")
                p._modified()   # new values in place: a graph that used the old ones must not backpropagate
            else:
                p.data = arr.astype(p.dtype, copy=True)
        return self

    def save(self, path):
        """Write the parameters to `path` (exactly that name) as a .npz archive: one float array per parameter
        path, no pickled objects. The file is replaced atomically; a new file gets the usual permissions (the
        umask applies, as for any file you create)."""
        path = os.fspath(path)
        state = self.state_dict()
        folder = os.path.dirname(os.path.abspath(path))
        while True:
            tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}.npz")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
                break
            except FileExistsError:
                continue
        try:
            with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
                for name, arr in state.items():
                    with zf.open(name + ".npy", "w", force_zip64=True) as out:
                        np.lib.format.write_array(out, np.ascontiguousarray(arr), allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        return path

    def load(self, path):
        """Load parameters saved by `save` (in place; see `load_state_dict`). Safe on any file: the archive's
        names, then each array's header (dtype and shape) are checked against the model BEFORE any data is read,
        and no more bytes are read than the model's own parameters hold. Object arrays (pickles) are refused, so
        a file can never run code; a damaged or crafted file is a ValueError. Returns self."""
        where = f"{type(self).__name__}.load"
        path = os.fspath(path)
        own = dict(self.named_parameters())
        try:
            zf = zipfile.ZipFile(path)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            with open(path, "rb") as f:
                single = f.read(6) == b"\x93NUMPY"
            if single:
                raise ValueError(f"{where}: {path!r} holds a single array, not a .npz archive of named "
                                 f"parameters") from None
            raise ValueError(f"{where}: {path!r} is not a parameter file written by Module.save (.npz of float "
                             f"arrays): {e}") from None
        try:
            with zf:
                state = _read_npz(zf, own, where)
        except ValueError as e:
            raise ValueError(f"{where}: {path!r}: {e}") from None
        try:
            return self.load_state_dict(state)
        except ValueError as e:
            raise ValueError(f"{where}: {path!r}: {e}") from None

    # --- display ----------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr."""
        return ""

    def __repr__(self):
        head = f"{type(self).__name__}({self.extra_repr()}"
        children = list(self._children())
        if not children:
            return head + ")"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return head + "\n" + "\n".join(lines) + "\n)"

    def _repr_html_(self):
        """Jupyter's rich display: the module tree with parameter shapes and counts (display.py)."""
        from .display import module_html
        return module_html(self)


def _is_new_parameter(value) -> bool:
    """A leaf Tensor that requires grad: what registers as a parameter."""
    return isinstance(value, Tensor) and value.requires_grad and value.creator is None


def _check_names(where: str, own: dict, names: list) -> None:
    """Every parameter of the model in `names` and nothing else, or a ValueError listing the differences."""
    missing = [k for k in own if k not in names]
    extra = [k for k in names if k not in own]
    if missing or extra:
        parts = ([f"missing parameter(s) {missing}"] if missing else []) + \
                ([f"unexpected array(s) {extra}"] if extra else [])
        raise ValueError(f"{where}: {'; '.join(parts)} (the model has {list(own)})")


_MAX_HEADER = 10_000   # bytes of a .npy header: NumPy's own default bound


def _read_npz(zf: zipfile.ZipFile, own: dict, where: str) -> dict:
    """The arrays of an open .npz, checked before reading: member names against the model's parameters, then each
    header's dtype (floats, never objects) and shape (the parameter's), then exactly that many bytes."""
    infos = zf.infolist()
    names = []
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ValueError(f"unexpected member {info.filename!r} (a .npz holds only <name>.npy arrays)")
        names.append(info.filename[:-4])
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"array(s) {dup} appear more than once")
    _check_names(where, own, names)
    state = {}
    for info, name in zip(infos, names):
        p = own[name]
        try:
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=_MAX_HEADER)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=_MAX_HEADER)
                else:
                    raise ValueError(f"unknown .npy format version {version}")
                if dtype.hasobject:
                    raise ValueError(f"array {name!r} cannot be read without unpickling (refused): dtype {dtype}")
                if dtype.kind != "f":
                    raise ValueError(f"parameter {name!r} has dtype {dtype} in the state; expected floating point")
                if tuple(shape) != p.shape:
                    raise ValueError(f"parameter {name!r} has shape {tuple(shape)} in the state but {p.shape} in "
                                     f"the model")
                n = math.prod(shape) * dtype.itemsize          # bounded by the model's own parameter
                data = f.read(n)
                if len(data) != n or f.read(1):
                    raise ValueError(f"array {name!r} holds {'less' if len(data) != n else 'more'} data than its "
                                     f"header's shape {tuple(shape)} says")
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError) as e:
            raise ValueError(f"array {name!r} is damaged or unreadable: {e}") from None
        except ValueError as e:
            msg = str(e)
            raise ValueError(msg if name in msg else f"array {name!r}: {msg}") from None
        state[name] = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
    return state


class Dense(Module):
    """A fully connected layer: Z = W @ A_prev + b (§2.5), W (n_out, n_in), b (n_out, 1).

    Not torch.nn.Linear: examples are COLUMNS here. Linear takes rows (m, n_in) and computes X W^T + b with b of
    shape (n_out,); Dense takes A_prev (n_in, m) and gives Z (n_out, m). W has the same shape in both, so
    `linear.weight` copies into `dense.W` as is, and `linear.bias` into `dense.b` as a column (reshape(-1, 1)).

    init: "he" (default; randn * sqrt(2/n_in), for ReLU), "xavier" (sqrt(1/n_in), for tanh), "glorot",
    "normal" (randn * 0.01, the course's first choice), "zeros", or a callable `init(shape, rng=, dtype=)`.
    b starts at zeros. rng: an np.random.Generator, an int seed or None. dtype: float64 (default) or float32;
    data inputs (arrays, tensors without gradient) are cast to it, so a float32 network computes in float32."""

    def __init__(self, n_in, n_out, init="he", rng=None, dtype=np.float64):
        super().__init__()
        where = "Dense"
        n_in, n_out = _checks.positive_int(n_in, where, "n_in"), _checks.positive_int(n_out, where, "n_out")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Dense: dtype must be float64 or float32, got {dtype}")
        fn = _init.get(init)
        W = np.asarray(fn((n_out, n_in), rng=rng, dtype=dtype))
        if W.shape != (n_out, n_in):
            raise ValueError(f"Dense({n_in} -> {n_out}): init returned shape {W.shape}, expected {(n_out, n_in)}")
        self.init = init if isinstance(init, str) else getattr(init, "__name__", type(init).__name__)
        self.W = Tensor(W, requires_grad=True, dtype=dtype)
        self.b = Tensor(np.zeros((n_out, 1), dtype=dtype), requires_grad=True)

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    def forward(self, A_prev) -> Tensor:
        """Z = W @ A_prev + b; A_prev has shape (n_in, m): features as rows, examples as columns."""
        W = self.W
        if type(A_prev) is not Tensor:
            if not isinstance(A_prev, Tensor):
                arr = A_prev if _ns.is_foreign(A_prev) else np.asarray(A_prev)  # (another library's stays there)
                if type(arr) is np.ndarray and arr.dtype.kind not in "biuf":  # complex, strings: never half-converted
                    raise TypeError(f"{self._label()}: input must hold real numbers, got dtype {arr.dtype}")
                A_prev = Tensor(arr, dtype=W.dtype)
        shape = A_prev.shape
        if len(shape) != 2 or shape[0] != W.shape[1]:
            raise ValueError(f"{self._label()}: expected input of shape ({W.shape[1]}, m) (features as rows, "
                             f"examples as columns), got {shape}" +
                             (" (transpose it: A.T)" if len(shape) == 2 and shape[1] == W.shape[1] else ""))
        if A_prev.dtype != W.dtype and not A_prev.requires_grad:
            A_prev = A_prev.astype(W.dtype)  # data follows the layer's dtype (float32 stays float32)
        Z = W @ A_prev + self.b
        Z.name = self._prefix + "Z"
        return Z

    def _label(self) -> str:
        path = self._prefix[:-1]
        return f"Dense({self.n_in} -> {self.n_out})" + (f" '{path}'" if path else "")

    def extra_repr(self) -> str:
        dtype = "" if self.W.dtype == np.float64 else f", dtype={self.W.dtype}"
        return f"{self.n_in} -> {self.n_out}, init={self.init}{dtype}"


class Sequential(Module):
    """Layers applied in order: Sequential(Dense(2, 4), Tanh(), Dense(4, 1)). Indexable, sized, iterable.
    `.layers` is the list of layers; their parameters are named "layers.<i>.W", "layers.<i>.b"."""

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} is a {type(layer).__name__}, not a Module "
                                f"(use dl.nn.Dense, dl.nn.ReLU, ...)")
        object.__setattr__(self, "layers", list(layers))
        self._set_prefix(self._prefix)

    def _children(self):
        return [(f"layers.{i}", layer) for i, layer in enumerate(self.layers)]

    def append(self, layer):
        """Add a layer at the end (and name its parameters). Returns self."""
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential.append: expected a Module, got {type(layer).__name__}")
        self.layers.append(layer)
        layer._set_prefix(f"{self._prefix}layers.{len(self.layers) - 1}.")
        return self

    def forward(self, A):
        for layer in self.layers:
            A = layer(A)
        return A

    def __getitem__(self, index):
        if isinstance(index, slice):
            part = Sequential.__new__(Sequential)   # shares the layers; their parameter names are left as they are
            Module.__init__(part)
            object.__setattr__(part, "layers", self.layers[index])
            return part
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        if not self.layers:
            return "Sequential()"
        lines = [f"  ({i}): " + repr(layer).replace("\n", "\n  ") for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"


# ============================================================ activation modules (§2.2)

class ReLU(Module):
    """A = max(0, Z) (F.relu)."""

    def forward(self, Z):
        return F.relu(Z)


class LeakyReLU(Module):
    """A = max(alpha Z, Z) (F.leaky_relu)."""

    def __init__(self, alpha=0.01):
        super().__init__()
        F.leaky_relu(Tensor(0.0), alpha)  # validates alpha now rather than at the first call
        self.alpha = float(alpha)

    def forward(self, Z):
        return F.leaky_relu(Z, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha:g}"


class Tanh(Module):
    """A = tanh(Z) (F.tanh)."""

    def forward(self, Z):
        return F.tanh(Z)


class Sigmoid(Module):
    """A = sigmoid(Z) (F.sigmoid)."""

    def forward(self, Z):
        return F.sigmoid(Z)


class Softmax(Module):
    """A = softmax(Z) over `axis` (classes are rows: axis 0) (F.softmax)."""

    def __init__(self, axis=0):
        super().__init__()
        self.axis = axis

    def forward(self, Z):
        return F.softmax(Z, self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"


class Dropout(Module):
    """Inverted dropout (§3.1) in training mode, the identity in eval mode (F.dropout).

    The probability, said unambiguously: `Dropout(keep_prob=0.8)` keeps 80 % of the units (the course's
    keep_prob); `Dropout(p=0.2)` drops 20 % (PyTorch's p); both give `Dropout(keep_prob=0.8)`. A value given by
    position is keep_prob (`Dropout(0.8)`), and one below 1/2 is refused as ambiguous: `Dropout(0.2)` is how
    PyTorch asks to drop 20 %.

    rng: an np.random.Generator (shared: its stream continues), an int seed (the layer makes its Generator once:
    a fresh mask at every call, the same sequence of masks for the same seed) or None. `mask` is the last mask
    drawn; set `fixed_mask = True` to reuse it on every call (e.g. for gradient checking: one forward pass in
    train mode, then `layer.fixed_mask = True`)."""

    def __init__(self, prob=None, /, rng=None, fixed_mask=False, *, keep_prob=None, p=None):
        super().__init__()
        self.keep_prob = F._keep_prob("Dropout", prob, keep_prob, p)
        self.rng = _checks.as_rng(rng, "Dropout")
        self.fixed_mask = bool(fixed_mask)
        self.mask = None

    @property
    def p(self) -> float:
        """The probability of dropping a unit (PyTorch's p): 1 - keep_prob."""
        return 1.0 - self.keep_prob

    def forward(self, A):
        if is_capturing():  # dl.jit: one form for both modes, decided again (and the mask drawn) at each replay
            A = A if isinstance(A, Tensor) else Tensor(A)
            return A * self._scale(A.shape, A.dtype)
        if not self.training or self.keep_prob == 1.0:
            return A if isinstance(A, Tensor) else Tensor(A)
        return F.dropout(A, keep_prob=self.keep_prob,
                         mask=self._next_mask(A.shape if isinstance(A, Tensor) else np.shape(A)))

    def _next_mask(self, shape):
        """Draw the next mask from `rng` (or keep the fixed one); it stays in `mask`."""
        if not (self.fixed_mask and self.mask is not None and self.mask.shape == shape):
            self.mask = self.rng.random(shape) < self.keep_prob
        return self.mask

    @replayed
    def _scale(self, shape, dtype):
        """What A is multiplied by: D / keep_prob with the next mask D in training mode, ones in prediction mode
        (A * 1 = A exactly). dl.jit's replay calls it at every step, reading the mode, keep_prob and rng then."""
        if not self.training or self.keep_prob == 1.0:
            return np.ones(shape, dtype)
        return F._scaled(self._next_mask(shape), 1.0 / self.keep_prob, np.dtype(dtype))

    def extra_repr(self):
        return f"keep_prob={self.keep_prob:g}"


# ============================================================ prediction and accuracy

def predict(model, X):
    """model(X) for prediction: in eval mode (dropout off), under no_grad (no graph), every module's training
    mode restored afterwards (even if the call raises). Returns the model's output (a Tensor without a graph)."""
    modules = [m for _, m in model.named_modules()] if isinstance(model, Module) else []
    modes = [m.training for m in modules]
    try:
        for m in modules:
            object.__setattr__(m, "training", False)
        with no_grad():
            return model(X)
    finally:
        for m, mode in zip(modules, modes):
            object.__setattr__(m, "training", mode)


def _output(output, where) -> np.ndarray:
    A = output.data if isinstance(output, Tensor) else output
    A = _ns.to_numpy(A) if _ns.is_foreign(A) else np.asarray(A)  # labels are NumPy's: values come back here
    if A.dtype.kind not in "biuf":
        raise TypeError(f"{where}: the output must hold real numbers, got dtype {A.dtype}")
    if A.ndim != 2 or A.shape[1] == 0:
        raise ValueError(f"{where}: expected the network's output of shape (n_y, m) with m >= 1 (examples as "
                         f"columns), got {A.shape}")
    return A


def predicted_labels(output, from_logits=None) -> np.ndarray:
    """The predicted class of each example, as ints of shape (m,), from the network's output (n_y, m).

    One output row (binary, §1.2): 1 where the probability A > 0.5, i.e. where the logit Z > 0; say which the row
    holds with `from_logits=True` (Z, e.g. the last Dense) or False (A, after a sigmoid): the thresholds differ.
    Several rows (softmax, §3.3): the row of the largest value (the same for logits and probabilities; the first
    one on ties). A NaN in a column makes its prediction -1 (never a class)."""
    where = "predicted_labels"
    A = _output(output, where)
    if A.shape[0] == 1:
        if from_logits is None:
            raise ValueError(f"{where}: one output row (binary): say whether it holds logits Z (threshold 0) or "
                             f"probabilities A = sigmoid(Z) (threshold 0.5): from_logits=True or from_logits=False")
        if not from_logits and np.any((A < 0) | (A > 1)):
            raise ValueError(f"{where}: from_logits=False but the output has values outside [0, 1] (min "
                             f"{np.nanmin(A):g}, max {np.nanmax(A):g}): these are logits; pass from_logits=True")
        labels = (A[0] > (0.0 if from_logits else 0.5)).astype(np.int64)
    else:
        labels = A.argmax(axis=0).astype(np.int64)
    labels[np.isnan(A).any(axis=0)] = -1
    return labels


def _true_labels(Y, n_y: int, m: int, where: str) -> np.ndarray:
    """Y as ints (m,): one-hot (n_y, m), labels (m,) or (1, m)."""
    Y = Y.data if isinstance(Y, Tensor) else Y
    Y = _ns.to_numpy(Y) if _ns.is_foreign(Y) else np.asarray(Y)
    if Y.dtype.kind not in "biuf":
        raise TypeError(f"{where}: Y must hold numbers, got dtype {Y.dtype}")
    if Y.ndim == 2 and Y.shape == (n_y, m) and n_y > 1:          # one-hot columns
        if not (np.isin(Y, (0, 1)).all() and np.all(Y.sum(axis=0) == 1)):
            raise ValueError(f"{where}: Y of shape {Y.shape} must be one-hot (a single 1 per column)")
        return Y.argmax(axis=0)
    if Y.shape in ((m,), (1, m)):
        y = Y.reshape(-1)
        if not np.all(np.isfinite(y) & (y == np.round(y))) or np.any(y < 0) or np.any(y >= max(n_y, 2)):
            raise ValueError(f"{where}: labels must be whole numbers in [0, {max(n_y, 2) - 1}] "
                             f"({'0/1 for one output row' if n_y == 1 else f'{n_y} classes'})")
        return y.astype(np.int64)
    raise ValueError(f"{where}: Y has shape {Y.shape}; for an output of shape {(n_y, m)} expected "
                     + (f"one-hot ({n_y}, {m}) or " if n_y > 1 else "") + f"labels ({m},) or (1, {m})")


def accuracy(output, Y, from_logits=None) -> float:
    """The fraction of examples whose predicted class (`predicted_labels`) equals the label.

    output: the network's output (n_y, m) (a Tensor or an array): logits or probabilities; for one row (binary)
    say which with from_logits=True/False. Y: one-hot (n_y, m), integer labels (m,) or (1, m) (0/1 when binary).
    NaN in the output gives NaN (a broken model never scores). Typical use:
    `accuracy(model.predict(X_dev), Y_dev, from_logits=True)`."""
    where = "accuracy"
    A = _output(output, where)
    n_y, m = A.shape
    labels = _true_labels(Y, n_y, m, where)
    pred = predicted_labels(A, from_logits)
    if np.isnan(A).any():
        return float("nan")
    return float(np.mean(pred == labels))
