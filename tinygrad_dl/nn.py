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

`model.save("model.npz")` writes a .npz of float arrays; `model.load("model.npz")` reads it without unpickling.
"""
from __future__ import annotations

import numbers
import os
import tempfile
import zipfile

import numpy as np

from . import functional as F
from . import init as _init
from .tensor import Tensor

__all__ = ["Module", "Dense", "Sequential", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Softmax", "Dropout"]


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
            object.__setattr__(self, "training", True)

    # --- registration -----------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_params" not in self.__dict__:
            Module.__init__(self)
        params, modules = self._params, self._modules
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

    def zero_grad(self):
        """Forget every parameter's gradient (backward accumulates into .grad)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True):
        """Training mode for this module and all its children (Dropout drops units). Returns self."""
        for _, mod in self.named_modules():
            object.__setattr__(mod, "training", bool(mode))
        return self

    def eval(self):
        """Prediction mode for this module and all its children (Dropout is the identity). Returns self."""
        return self.train(False)

    # --- calling ----------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

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
        missing = [k for k in own if k not in state]
        extra = [k for k in state if k not in own]
        if strict and (missing or extra):
            parts = ([f"missing parameter(s) {missing}"] if missing else []) + \
                    ([f"unexpected array(s) {extra}"] if extra else [])
            raise ValueError(f"{where}: {'; '.join(parts)} (the model has {list(own)})")
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
            else:
                p.data = arr.astype(p.dtype, copy=True)
        return self

    def save(self, path):
        """Write the parameters to `path` (exactly that name) as a .npz archive: one float array per parameter
        path, no pickled objects. The file is replaced atomically."""
        path = os.fspath(path)
        state = self.state_dict()
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
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
        """Load parameters saved by `save` (in place; see `load_state_dict`). The file is read with
        allow_pickle=False: a file holding pickled objects is refused and cannot run code. Returns self."""
        where = f"{type(self).__name__}.load"
        path = os.fspath(path)
        try:
            npz = np.load(path, allow_pickle=False)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{where}: {path!r} is not a parameter file written by Module.save (.npz of float "
                             f"arrays): {e}") from None
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError(f"{where}: {path!r} holds a single array, not a .npz archive of named parameters")
        state = {}
        with npz:
            for name in npz.files:
                try:
                    state[name] = npz[name]
                except ValueError as e:
                    raise ValueError(f"{where}: array {name!r} in {path!r} cannot be read without unpickling "
                                     f"(refused): {e}") from None
                except (OSError, EOFError, zipfile.BadZipFile) as e:
                    raise ValueError(f"{where}: array {name!r} in {path!r} is damaged: {e}") from None
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


def _positive_int(n, where: str, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
        raise ValueError(f"{where}: {what} must be a positive int, got {n!r}")
    return int(n)


class Dense(Module):
    """A fully connected layer: Z = W @ A_prev + b (§2.5), W (n_out, n_in), b (n_out, 1).

    init: "he" (default; randn * sqrt(2/n_in), for ReLU), "xavier" (sqrt(1/n_in), for tanh), "glorot",
    "normal" (randn * 0.01, the course's first choice), "zeros", or a callable `init(shape, rng=, dtype=)`.
    b starts at zeros. rng: an np.random.Generator, an int seed or None. dtype: float64 (default) or float32;
    data inputs (arrays, tensors without gradient) are cast to it, so a float32 network computes in float32."""

    def __init__(self, n_in, n_out, init="he", rng=None, dtype=np.float64):
        super().__init__()
        where = "Dense"
        n_in, n_out = _positive_int(n_in, where, "n_in"), _positive_int(n_out, where, "n_out")
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
            A_prev = Tensor(A_prev, dtype=W.dtype) if not isinstance(A_prev, Tensor) else A_prev
        shape = A_prev.shape
        if len(shape) != 2 or shape[0] != W.shape[1]:
            raise ValueError(f"{self._label()}: expected input of shape ({W.shape[1]}, m) (features as rows, "
                             f"examples as columns), got {shape}" +
                             (" (transpose it: A.T)" if len(shape) == 2 and shape[1] == W.shape[1] else ""))
        if A_prev.dtype != W.dtype and not A_prev.requires_grad:
            A_prev = Tensor(A_prev.data, dtype=W.dtype)  # data follows the layer's dtype (float32 stays float32)
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

    rng: an np.random.Generator or an int seed (a reproducible stream of masks) or None. `mask` is the last mask
    drawn; set `fixed_mask = True` to reuse it on every call (e.g. for gradient checking: one forward pass in
    train mode, then `layer.fixed_mask = True`)."""

    def __init__(self, keep_prob, rng=None, fixed_mask=False):
        super().__init__()
        self.keep_prob = F._keep_prob(keep_prob, "Dropout")
        self.rng = _init.as_rng(rng, "Dropout")
        self.fixed_mask = bool(fixed_mask)
        self.mask = None

    def forward(self, A):
        if not self.training or self.keep_prob == 1.0:
            return A if isinstance(A, Tensor) else Tensor(A)
        shape = np.shape(A.data if isinstance(A, Tensor) else A)
        if not (self.fixed_mask and self.mask is not None and self.mask.shape == shape):
            self.mask = self.rng.random(shape) < self.keep_prob
        return F.dropout(A, self.keep_prob, mask=self.mask)

    def extra_repr(self):
        return f"keep_prob={self.keep_prob:g}"
