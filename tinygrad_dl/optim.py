"""Optimizers and learning-rate schedules (course notes §1.2.1 Gradient Descent, §3.3 Optimization Algorithms).

The exponentially weighted average of §3.3.2 lives in one place, `ExponentialAverage`; Momentum is one such
average of dW, RMSprop one of dW**2, and Adam is both. `step()` updates every parameter's `.data` in place with
NumPy ufuncs (`out=`): no graph is recorded and nothing is allocated per step after the first. Parameters whose
`.grad` is None are skipped; float32 parameters stay float32.

Every optimizer takes `weight_decay=` (default 0): dW + weight_decay * W is used instead of dW, the gradient of
the course's L2 term (lambd / (2 m)) sum ||W||^2 with weight_decay = lambd / m (§3.1). Like that term it applies to
the weights only: pass the model itself (its W's decay, its b's do not), or say `decay=[...]` / `decay="all"`.
`state_dict()` / `load_state_dict()` save and resume training exactly (arrays only: `np.savez` writes them).

Lazy gradients (Dask arrays: data on workers, parameters as NumPy arrays on the driver) are computed by `step()`
all together, in one `dask.compute` that shares the forward and backward graph; `step(cost)` computes the cost in
the same pass and returns its value. Parameters held in another library (CuPy, array_api_strict) are updated
with that library's operations, in the same order of operations as NumPy's.

    >>> import numpy as np, tinygrad_dl as dl
    >>> W = dl.Tensor(np.ones((2, 3)), requires_grad=True)
    >>> opt = dl.optim.Adam([W], lr=0.01)
    >>> (W * W).sum().backward(); opt.step(); opt.zero_grad()
"""
from __future__ import annotations

import math

import numpy as np

from . import _checks, _namespace as _ns
from .tensor import Tensor, _ndarray, replayed

__all__ = ["ExponentialAverage", "Optimizer", "GradientDescent", "SGD", "Momentum", "RMSprop", "Adam",
           "inverse_time_decay", "exponential_decay"]


# ============================================================ exponentially weighted averages (§3.3.2)

_check_beta = _checks.beta


class ExponentialAverage:
    """Exponentially weighted average (§3.3.2): v_0 = 0, v_t = beta * v_{t-1} + (1 - beta) * x_t.

    With `bias_correction=True` the average reported is v_t / (1 - beta**t), exact from the first step for a
    constant sequence (without it the first values are pulled towards 0). `update(x)` takes a float or an array
    (one average per parameter) and returns the new average: a float for a float, a fresh array for an array.
    beta = 0 is the identity; the average spans roughly the last 1 / (1 - beta) values.

        >>> avg = ExponentialAverage(beta=0.9)
        >>> [round(avg.update(x), 4) for x in (10.0, 10.0, 20.0)]
        [10.0, 10.0, 13.69]
    """

    __slots__ = ("beta", "bias_correction", "t", "raw", "_ratio")

    def __init__(self, beta=0.9, bias_correction=True):
        self.beta = _check_beta(beta, "ExponentialAverage")
        self.bias_correction = bool(bias_correction)
        self._ratio = self.beta / (1.0 - self.beta)
        self.reset()

    def reset(self):
        """Forget everything: back to v_0 = 0, t = 0."""
        self.t = 0
        self.raw = None  # v_t without bias correction: a float, or an ndarray updated in place

    @property
    def correction(self) -> float:
        """The bias-correction divisor 1 - beta**t (1.0 when bias correction is off)."""
        return 1.0 - self.beta ** self.t if self.bias_correction else 1.0

    @property
    def value(self):
        """The current average (bias-corrected if asked); None before the first update."""
        if self.raw is None:
            return None
        if isinstance(self.raw, np.ndarray) or _ns.is_foreign(self.raw):
            if self.bias_correction:
                return self.raw / self.correction
            return self.raw.copy() if isinstance(self.raw, np.ndarray) else self.raw * 1.0
        return self.raw / self.correction

    def update(self, x):
        """Fold in x_t and return the average: v_t = beta v_{t-1} + (1 - beta) x_t, over (1 - beta**t) if corrected."""
        self.update_(x)
        return self.value

    def update_(self, x) -> None:
        """`update` without building the return value: the raw state `self.raw` is updated in place.
        The optimizers use this, with the bias correction folded into a scalar."""
        if isinstance(x, Tensor):
            x = x.data
        v, beta = self.raw, self.beta
        if type(x) is not _ndarray and _ns.is_foreign(x):
            self._update_any(x)
        elif v is None:
            if np.ndim(x) == 0 and not isinstance(x, np.ndarray):
                self.raw = (1.0 - beta) * float(x)
            else:
                x = np.asarray(x)
                self.raw = np.multiply(x, 1.0 - beta, dtype=x.dtype if x.dtype.kind == "f" else np.float64)
        elif isinstance(v, np.ndarray):
            if np.shape(x) != v.shape:
                raise ValueError(f"ExponentialAverage.update: x has shape {np.shape(x)} but the average so far "
                                 f"has shape {v.shape} (one average per array; use a new one for another shape)")
            # v = beta v + (1 - beta) x, computed in place as (1 - beta) * (beta/(1 - beta) * v + x): no temporary
            np.multiply(v, self._ratio, out=v)
            np.add(v, x, out=v, casting="same_kind")
            np.multiply(v, 1.0 - beta, out=v)
        else:
            if np.ndim(x) != 0:
                raise ValueError(f"ExponentialAverage.update: the average so far is a float, got an array of "
                                 f"shape {np.shape(x)}")
            self.raw = beta * v + (1.0 - beta) * float(x)
        self.t += 1

    def _update_any(self, x):
        """The same update on another library's array, in NumPy's order of operations."""
        v = self.raw
        if v is None:
            self.raw = x * (1.0 - self.beta)
            return
        if v.shape != x.shape:
            raise ValueError(f"ExponentialAverage.update: x has shape {x.shape} but the average so far has shape "
                             f"{v.shape} (one average per array; use a new one for another shape)")
        v = v * self._ratio
        v = v + x
        self.raw = v * (1.0 - self.beta)

    def __repr__(self):
        return f"ExponentialAverage(beta={self.beta}, bias_correction={self.bias_correction}, t={self.t})"


# ============================================================ optimizers

class Optimizer:
    """Base class: holds the parameters, a settable `lr`, `zero_grad()`, `step()`, the optional weight decay and
    the state (`state_dict()` / `load_state_dict()`). A subclass implements `_update(i, W, dW)`, updating
    W (`.data`) in place, and lists its settings in `_settings` and its per-parameter averages in `_averages`."""

    _settings: tuple = ()     # attribute names of the constructor's numbers, saved and checked by load_state_dict
    _averages: tuple = ()     # attribute names of lists of ExponentialAverage, one per parameter
    _grad_as_scratch = True   # `_update` reads dW no more once it has written into its scratch buffer

    def __init__(self, params, lr, weight_decay=0.0, decay=None):
        where = type(self).__name__
        self.params = _checks.param_list(params, where)
        self.lr = lr
        self.weight_decay = _checks.nonneg(weight_decay, where, "weight_decay")
        self._decays = self._decay_mask(params, decay, where)
        self._scratch = [None] * len(self.params)
        self._decayed = [None] * len(self.params)

    def _decay_mask(self, source, decay, where) -> list:
        """Which parameters weight_decay applies to (one bool per parameter)."""
        if isinstance(decay, str):
            if decay != "all":
                raise ValueError(f"{where}: decay must be 'all', a list of parameters or None, got {decay!r}")
            return [True] * len(self.params)
        if decay is None:
            if hasattr(source, "weights") and callable(source.weights):     # a Module: its W's, as F.l2_penalty
                chosen = source.weights()
                if self.weight_decay and not chosen:
                    raise ValueError(f"{where}: weight_decay={self.weight_decay:g} but the model has no weights "
                                     f"named W; say which parameters decay with decay=[...] or decay='all'")
            elif self.weight_decay:
                raise ValueError(
                    f"{where}: weight_decay={self.weight_decay:g} needs to know which parameters decay: the "
                    f"course's L2 term covers the weights W, not the biases b. Pass the model itself "
                    f"({where}(model, ...)) to decay its W's, or decay=[W1, W2, ...], or decay='all'")
            else:
                chosen = []
        else:
            chosen = _checks.param_list(decay, f"{where}: decay")
        ids = {id(p) for p in self.params}
        for p in chosen:
            if id(p) not in ids:
                raise ValueError(f"{where}: decay names a tensor of shape {p.shape} that is not among the "
                                 f"parameters being optimized")
        chosen_ids = {id(p) for p in chosen}
        return [id(p) in chosen_ids for p in self.params]

    @property
    def decay(self) -> list:
        """The parameters that weight_decay applies to."""
        return [p for p, d in zip(self.params, self._decays) if d]

    @property
    def lr(self) -> float:
        """The learning rate alpha; set it between steps (e.g. from a decay schedule)."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _checks.nonneg(value, type(self).__name__, "lr")
        self._lr_arrays = {}

    def _lr_in(self, dtype):
        """lr as a 0-d array of a float gradient's dtype: the number NumPy makes of the Python float for that
        dtype, without converting it at every multiplication (about 250 ns per parameter and step)."""
        k = self._lr_arrays.get(dtype)
        if k is None:
            if dtype.kind != "f":
                return self._lr
            k = self._lr_arrays[dtype] = np.asarray(self._lr, dtype=dtype)
        return k

    @replayed  # dl.jit's replay calls it again (as `step`): what it does depends on state outside the graph
    def zero_grad(self):
        """Set every parameter's `.grad` to None (the next backward starts afresh)."""
        for p in self.params:
            p.grad = None

    @replayed
    def step(self, cost=None):
        """One update of every parameter that has a gradient, in place, recording no graph. A gradient may be an
        ndarray (what backward() leaves in `.grad`) or a Tensor (what dl.grad returns).

        Lazy (Dask) gradients are computed first, all in ONE `dask.compute`, and `.grad` then holds their values.
        With `cost` (the cost Tensor of this step) its value is computed in that same pass and returned as a
        float, so logging the cost costs no second pass over the data; without it, step returns None."""
        value = None if cost is None else self._compute_lazy(cost)
        wd = self.weight_decay
        for i, p in enumerate(self.params):
            dW = p.grad
            if dW is None:
                continue
            if type(dW) is not _ndarray or dW.dtype.kind != "f":  # what backward() leaves: checked cheaply
                dW = self._gradient(i, p, dW)
                if type(dW) is not _ndarray or type(p._data) is not _ndarray:
                    self._step_any(i, p, dW)
                    continue
            W = p._data
            if dW.shape != W.shape:
                raise ValueError(f"{type(self).__name__}.step: params[{i}] has shape {W.shape} but its grad has "
                                 f"shape {dW.shape}")
            if wd and self._decays[i]:
                # dW + wd W: the gradient of (wd / 2) ||W||^2 added to the cost, in a buffer of its own
                g = self._decayed[i]
                if g is None or g.shape != W.shape or g.dtype != W.dtype:
                    g = self._decayed[i] = np.empty_like(W)
                np.multiply(W, wd, out=g)
                np.add(dW, g, out=g, casting="same_kind")
                dW = g
            self._update(i, W, dW)
            p._modified()  # a graph that saved p's old values now refuses to backpropagate through them
        return value

    def _gradient(self, i, p, dW):
        """A gradient that is not a float ndarray: a Tensor's values, a lazy array computed (with all the others,
        in one pass), another library's array as it is, integers as they are; anything else is refused."""
        if isinstance(dW, Tensor):
            dW = dW.data
        if type(dW) is not _ndarray and _ns.is_lazy(dW):
            self._compute_lazy(None)
            dW = p.grad
        if _ns.is_foreign(dW):
            return dW
        if not isinstance(dW, np.ndarray) or dW.dtype.kind not in "fiu":
            raise TypeError(f"{type(self).__name__}.step: params[{i}].grad must be an array of floats (or a "
                            f"Tensor), got {type(dW).__name__}" + (f" of dtype {dW.dtype}"
                                                                  if isinstance(dW, np.ndarray) else ""))
        return dW

    def _compute_lazy(self, cost):
        """Compute every lazy gradient (and the cost's value) in one `dask.compute`; `.grad` keeps the values."""
        grads = [p.grad.data if isinstance(p.grad, Tensor) else p.grad for p in self.params]
        c = cost.data if isinstance(cost, Tensor) else cost
        *grads, c = _ns.compute(grads + [c])
        for p, g in zip(self.params, grads):
            p.grad = g
        return None if c is None else float(_ns.to_numpy(c).item())

    def _step_any(self, i, p, dW):
        """The update of a parameter held in another library, with its own operations (the order of NumPy's)."""
        W = p._data
        if dW.shape != W.shape:
            raise ValueError(f"{type(self).__name__}.step: params[{i}] has shape {W.shape} but its grad has "
                             f"shape {dW.shape}")
        if type(W) is _ndarray:
            raise TypeError(f"{type(self).__name__}.step: params[{i}] is a NumPy array but its gradient is a "
                            f"{_ns.library_name(dW)} array; move the parameter there first "
                            f"(p.data = xp.asarray(p.data))")
        _ns.common(f"{type(self).__name__}.step", W, dW)
        if self.weight_decay and self._decays[i]:
            dW = dW + W * self.weight_decay
        p._data = self._update_any(i, W, dW)  # (in place where the library can; a Dask array is replaced)
        p._modified()

    def _step_in_gradients(self, grads):
        """`step()` for dl.jit's replay when `zero_grad()` follows at once: grads[i] (or None) is a fresh array of
        the replay that nothing else holds; if it is still params[i].grad, it serves as that parameter's scratch
        buffer, which is cache-warm where the optimizer's own is not. The numbers are step()'s, bit for bit."""
        own = self._scratch
        scratch = list(own)
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is not None and p.grad is g and type(p._data) is _ndarray and g.dtype == p._data.dtype \
                    and g.shape == p._data.shape:
                scratch[i] = g
        self._scratch = scratch
        try:
            return self.step()
        finally:
            self._scratch = own

    def _buffer(self, i, W) -> np.ndarray:
        """A scratch array shaped like W, allocated once per parameter."""
        buf = self._scratch[i]
        if buf is None or buf.shape != W.shape or buf.dtype != W.dtype:
            buf = self._scratch[i] = np.empty_like(W)
        return buf

    def _update(self, i, W, dW):
        raise NotImplementedError

    def _update_any(self, i, W, dW):
        """`_update` on another library's arrays: returns the new W (computed in place where the library can)."""
        raise NotImplementedError

    # --- saving and resuming ----------------------------------------------------------------------------------
    def _kind(self) -> str:
        return type(self).__name__

    def state_dict(self) -> dict:
        """Everything needed to resume training exactly, as {name: ndarray} (copies): the algorithm, lr,
        weight_decay and which parameters decay, the settings (beta, eps, ...), and for each parameter i its
        averages ("m.0", "v.0", ...) with their step counts ("m.0.t"). `np.savez(path, **opt.state_dict())`
        writes it without pickling; `opt.load_state_dict(np.load(path))` reads it back."""
        state = {"optimizer": np.array(self._kind()), "lr": np.array(self.lr),
                 "weight_decay": np.array(self.weight_decay), "decay": np.array(self._decays, dtype=bool)}
        for name in self._settings:
            state[name] = np.array(getattr(self, name))
        for name in self._averages:
            for i, avg in enumerate(getattr(self, name)):
                state[f"{name}.{i}.t"] = np.array(avg.t, dtype=np.int64)
                if avg.raw is not None:
                    state[f"{name}.{i}"] = np.array(_ns.to_numpy(avg.raw), copy=True)
        return state

    def load_state_dict(self, state):
        """Resume from `state_dict()` (a dict or the NpzFile of np.load): lr and every average are restored (as
        copies). The optimizer must have been built the same way: the same algorithm, the parameters in the same
        order and shapes, the same settings (beta, eps, weight_decay, decay); any difference is a ValueError and
        nothing is changed. Returns self."""
        where = f"{type(self).__name__}.load_state_dict"
        try:
            keys = set(state.keys())
        except AttributeError:
            raise TypeError(f"{where}: expected the dict of state_dict() (or np.load of it), got "
                            f"{type(state).__name__}") from None

        def get(key):
            if key not in keys:
                raise ValueError(f"{where}: the state has no {key!r} (was it written by state_dict()?)")
            return np.asarray(state[key])

        kind = get("optimizer")
        if kind.shape != () or str(kind) != self._kind():
            raise ValueError(f"{where}: the state is for {kind}, not {self._kind()}")
        decays = get("decay")
        if decays.shape != (len(self.params),):
            raise ValueError(f"{where}: the state is for {decays.size} parameters, this optimizer has "
                             f"{len(self.params)}")
        for name, want in [("weight_decay", self.weight_decay)] + [(n, getattr(self, n)) for n in self._settings]:
            got = get(name)
            if got.shape != () or got.item() != want:
                raise ValueError(f"{where}: the state has {name}={got}, this optimizer {name}={want}; build it "
                                 f"with the same settings")
        if decays.tolist() != self._decays:
            raise ValueError(f"{where}: the state decays parameters {np.flatnonzero(decays).tolist()}, this "
                             f"optimizer {np.flatnonzero(self._decays).tolist()}")
        lr = _checks.nonneg(get("lr").item(), where, "lr")
        restored = []
        for name in self._averages:
            for i, (avg, p) in enumerate(zip(getattr(self, name), self.params)):
                t = get(f"{name}.{i}.t")
                if t.shape != () or t.dtype.kind not in "iu" or t < 0:
                    raise ValueError(f"{where}: {name}.{i}.t must be a step count (an int >= 0), got {t}")
                raw = None
                if int(t) > 0:
                    raw = get(f"{name}.{i}")
                    if raw.dtype.kind != "f" or raw.shape != p.shape:
                        raise ValueError(f"{where}: {name}.{i} has shape {raw.shape} and dtype {raw.dtype}; "
                                         f"params[{i}] has shape {p.shape} (floats expected)")
                    raw = raw.copy()
                    if type(p._data) is not _ndarray:  # the average lives where its parameter does
                        raw = _ns.namespace(p._data).asarray(raw)
                restored.append((avg, int(t), raw))
        self.lr = lr
        for avg, t, raw in restored:
            avg.t, avg.raw = t, raw
        return self

    def __repr__(self):
        extra = f", weight_decay={self.weight_decay:g} on {sum(self._decays)}" if self.weight_decay else ""
        return f"{type(self).__name__}({len(self.params)} parameters, lr={self.lr}{extra})"


class GradientDescent(Optimizer):
    """Gradient descent (§1.2.1, Algorithm 1.1): W := W - lr * dW. Also `SGD` (PyTorch's name; plain, no
    momentum): with mini-batches it is the course's mini-batch gradient descent (§3.3.1)."""

    def __init__(self, params, lr, weight_decay=0.0, decay=None):
        super().__init__(params, lr, weight_decay, decay)

    def _update(self, i, W, dW):
        # (_buffer and _lr_in written out: this runs for every parameter at every step)
        buf, lr = self._scratch[i], self._lr_arrays.get(dW.dtype)
        if buf is None or buf.shape != W.shape or buf.dtype != W.dtype:
            buf = self._buffer(i, W)
        np.multiply(dW, self._lr_in(dW.dtype) if lr is None else lr, out=buf)  # (casting="same_kind": the default)
        np.subtract(W, buf, out=W)

    def _update_any(self, i, W, dW):
        W -= dW * self.lr
        return W


class SGD(GradientDescent):
    """PyTorch's name for gradient descent: W := W - lr * dW (exactly `GradientDescent`). PyTorch's `momentum=`
    is not accepted here: it means v = momentum v + dW, which is not the course's average; use
    `Momentum(params, lr, beta)` (the same as torch's SGD(lr=lr * (1 - beta), momentum=beta))."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, decay=None):
        if momentum != 0:
            raise ValueError(f"SGD: momentum={momentum!r} is not supported: PyTorch's momentum (v = mu v + dW) is not "
                             f"the course's; use dl.optim.Momentum(params, lr, beta={momentum!r}), which matches "
                             f"torch.optim.SGD(lr=lr * (1 - beta), momentum=beta)")
        super().__init__(params, lr, weight_decay, decay)

    def _kind(self) -> str:
        return "GradientDescent"


class Momentum(Optimizer):
    """Gradient descent with momentum: v = beta v + (1 - beta) dW (an exponentially weighted average of the
    gradients, §3.3.2); W := W - lr * v. `bias_correction=True` divides v by 1 - beta**t (off in the course).

    `momentum=` is accepted for `beta` (PyTorch's name for the coefficient). PyTorch's SGD leaves out the
    (1 - beta) factor: Momentum(lr, beta) makes the same steps as torch.optim.SGD(lr=lr * (1 - beta),
    momentum=beta)."""

    _settings = ("beta", "bias_correction")
    _averages = ("v",)

    def __init__(self, params, lr, beta=0.9, bias_correction=False, *, momentum=None, weight_decay=0.0,
                 decay=None):
        super().__init__(params, lr, weight_decay, decay)
        if momentum is not None:
            if beta != 0.9:
                raise ValueError(f"Momentum: give beta={beta!r} or momentum={momentum!r}, not both (the same "
                                 f"coefficient)")
            beta = _check_beta(momentum, "Momentum", "momentum")
        self.beta = _check_beta(beta, "Momentum")
        self.bias_correction = bool(bias_correction)
        self.v = [ExponentialAverage(self.beta, self.bias_correction) for _ in self.params]

    def _update(self, i, W, dW):
        v = self.v[i]
        v.update_(dW)
        buf = np.multiply(v.raw, self.lr / v.correction, out=self._buffer(i, W), casting="same_kind")
        np.subtract(W, buf, out=W)

    def _update_any(self, i, W, dW):
        v = self.v[i]
        v.update_(dW)
        W -= v.raw * (self.lr / v.correction)
        return W


class RMSprop(Optimizer):
    """RMSprop: s = beta s + (1 - beta) dW**2 (an exponentially weighted average of squared gradients);
    W := W - lr * dW / (sqrt(s) + eps). Equal to torch.optim.RMSprop with alpha = beta (the course's alpha is
    the learning rate, so the name is not taken over)."""

    _settings = ("beta", "eps")
    _averages = ("s",)
    _grad_as_scratch = False  # its update divides dW by the scratch buffer

    def __init__(self, params, lr, beta=0.999, eps=1e-8, *, weight_decay=0.0, decay=None):
        super().__init__(params, lr, weight_decay, decay)
        self.beta = _check_beta(beta, "RMSprop")
        self.eps = _checks.nonneg(eps, "RMSprop", "eps")
        self.s = [ExponentialAverage(self.beta, bias_correction=False) for _ in self.params]

    def _update(self, i, W, dW):
        s, buf = self.s[i], self._buffer(i, W)
        s.update_(np.multiply(dW, dW, out=buf, casting="same_kind"))
        np.sqrt(s.raw, out=buf, casting="same_kind")
        buf += self.eps
        np.divide(dW, buf, out=buf, casting="same_kind")
        buf *= self.lr
        np.subtract(W, buf, out=W)

    def _update_any(self, i, W, dW):
        s = self.s[i]
        s.update_(dW * dW)
        W -= dW / (_ns.namespace(W).sqrt(s.raw) + self.eps) * self.lr
        return W


class Adam(Optimizer):
    """Adam = momentum + RMSprop, two exponentially weighted averages with bias correction (§3.3.2):
    m = beta1 m + (1 - beta1) dW,  v = beta2 v + (1 - beta2) dW**2,
    m_hat = m / (1 - beta1**t),  v_hat = v / (1 - beta2**t),  W := W - lr * m_hat / (sqrt(v_hat) + eps).
    Matches torch.optim.Adam step for step (t counts the steps each parameter actually took), also with
    weight_decay (added to dW, as torch's Adam; not AdamW). `betas=(beta1, beta2)` is PyTorch's spelling."""

    _settings = ("beta1", "beta2", "eps")
    _averages = ("m", "v")

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, *, betas=None, weight_decay=0.0,
                 decay=None):
        super().__init__(params, lr, weight_decay, decay)
        if betas is not None:
            if (beta1, beta2) != (0.9, 0.999):
                raise ValueError(f"Adam: give beta1/beta2 or betas={betas!r}, not both")
            try:
                beta1, beta2 = betas
            except (TypeError, ValueError):
                raise _checks.BadArgument(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.beta1 = _check_beta(beta1, "Adam", "beta1")
        self.beta2 = _check_beta(beta2, "Adam", "beta2")
        self.eps = _checks.nonneg(eps, "Adam", "eps")
        self.m = [ExponentialAverage(self.beta1) for _ in self.params]
        self.v = [ExponentialAverage(self.beta2) for _ in self.params]

    @property
    def betas(self) -> tuple:
        """(beta1, beta2), PyTorch's spelling."""
        return self.beta1, self.beta2

    def _update(self, i, W, dW):
        # in place, in one scratch buffer: on a (784, 64) -> 128 -> 10 step this is 11.10M instructions vs 11.33M for
        # W -= lr * m_hat / (sqrt(v_hat) + eps) written plainly, and no 800 KB temporaries (1.7-2.1 ms vs 2.2-2.5 ms
        # per step, one BLAS thread, interleaved runs on a busy 2-core machine)
        m, v, buf = self.m[i], self.v[i], self._buffer(i, W)
        m.update_(dW)
        v.update_(np.multiply(dW, dW, out=buf, casting="same_kind"))
        # the corrections are scalars: sqrt(v_hat) = sqrt(v) / sqrt(1 - beta2**t), lr * m_hat = lr / (1 - beta1**t) * m
        np.sqrt(v.raw, out=buf, casting="same_kind")
        buf /= math.sqrt(v.correction)
        buf += self.eps
        np.divide(m.raw, buf, out=buf, casting="same_kind")
        buf *= self.lr / m.correction
        np.subtract(W, buf, out=W)

    def _update_any(self, i, W, dW):
        m, v = self.m[i], self.v[i]
        m.update_(dW)
        v.update_(dW * dW)
        W -= m.raw / (_ns.namespace(W).sqrt(v.raw) / math.sqrt(v.correction) + self.eps) * (self.lr / m.correction)
        return W


# ============================================================ learning-rate decay (§3.3)

def _epoch(epoch, where):
    e = np.asarray(epoch, dtype=np.float64)
    if not np.all(np.isfinite(e)) or np.any(e < 0):
        raise ValueError(f"{where}: epoch must be >= 0, got {epoch!r}")
    return e


def _out(x):
    return float(x) if np.ndim(x) == 0 else x


def inverse_time_decay(lr0, decay_rate, epoch):
    """alpha = alpha0 / (1 + decay_rate * epoch_num). Works on an int epoch or an array of epochs."""
    where = "inverse_time_decay"
    lr0 = _checks.nonneg(lr0, where, "lr0")
    decay_rate = _checks.nonneg(decay_rate, where, "decay_rate")
    return _out(lr0 / (1.0 + decay_rate * _epoch(epoch, where)))


def exponential_decay(lr0, epoch, base=0.95):
    """alpha = base**epoch_num * alpha0 (the course's 0.95**epoch_num * alpha0). Works on arrays of epochs."""
    where = "exponential_decay"
    lr0 = _checks.nonneg(lr0, where, "lr0")
    base = _checks.nonneg(base, where, "base")
    if base > 1:
        raise ValueError(f"{where}: base must be in [0, 1] for a decay, got {base}")
    return _out(base ** _epoch(epoch, where) * lr0)
