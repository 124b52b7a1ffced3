"""Optimizers and learning-rate schedules (course notes §1.2.1 Gradient Descent, §3.3 Optimization Algorithms).

The exponentially weighted average of §3.3.2 lives in one place, `ExponentialAverage`; Momentum is one such
average of dW, RMSprop one of dW**2, and Adam is both. `step()` updates every parameter's `.data` in place with
NumPy ufuncs (`out=`): no graph is recorded and nothing is allocated per step after the first. Parameters whose
`.grad` is None are skipped; float32 parameters stay float32.

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
import numbers

import numpy as np

from . import _namespace as _ns
from .tensor import Tensor, _ndarray

__all__ = ["ExponentialAverage", "Optimizer", "GradientDescent", "Momentum", "RMSprop", "Adam",
           "inverse_time_decay", "exponential_decay"]


# ============================================================ exponentially weighted averages (§3.3.2)

def _check_beta(beta, where, name="beta") -> float:
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise TypeError(f"{where}: {name} must be a number in [0, 1), got {beta!r}")
    beta = float(beta)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"{where}: {name} must be in [0, 1), got {beta} "
                         f"(the average covers about 1/(1-{name}) steps; {name} = 1 would never move)")
    return beta


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

def _param_list(params, where) -> list:
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    if isinstance(params, Tensor):
        params = [params]
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{where}: params must be a list of Tensors (e.g. model.parameters()), "
                        f"got {type(params).__name__}") from None
    if not params:
        raise ValueError(f"{where}: got an empty list of parameters")
    seen = set()
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: params[{i}] is a {type(p).__name__}, expected a Tensor "
                            f"(wrap arrays as Tensor(W, requires_grad=True))")
        if p.creator is not None:
            raise ValueError(f"{where}: params[{i}] (shape {p.shape}) was computed by {p.creator.name}; "
                             f"only leaf tensors (parameters you created) can be optimized")
        if id(p) in seen:
            raise ValueError(f"{where}: params[{i}] (shape {p.shape}) appears twice; it would be updated twice")
        seen.add(id(p))
    return params


def _check_nonneg(x, where, name) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x) or x < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0, got {x!r}")
    return float(x)


class Optimizer:
    """Base class: holds the parameters, a settable `lr`, `zero_grad()`, and `step()` which calls
    `_update(i, W, dW)` for each parameter with a gradient (W is `.data`, to be updated in place)."""

    def __init__(self, params, lr):
        self.params = _param_list(params, type(self).__name__)
        self.lr = lr
        self._scratch = [None] * len(self.params)

    @property
    def lr(self) -> float:
        """The learning rate alpha; set it between steps (e.g. from a decay schedule)."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _check_nonneg(value, type(self).__name__, "lr")

    def zero_grad(self):
        """Set every parameter's `.grad` to None (the next backward starts afresh)."""
        for p in self.params:
            p.grad = None

    def step(self, cost=None):
        """One update of every parameter that has a gradient, in place, recording no graph.

        Lazy (Dask) gradients are computed first, all in ONE `dask.compute`, and `.grad` then holds their values.
        With `cost` (the cost Tensor of this step) its value is computed in that same pass and returned as a
        float, so logging the cost costs no second pass over the data; without it, step returns None."""
        value = None if cost is None else self._compute_lazy(cost)
        for i, p in enumerate(self.params):
            dW = p.grad
            if dW is None:
                continue
            W = p._data  # (the slot itself: the `data` property costs a call per parameter per step)
            if type(dW) is not _ndarray:  # (a parameter in another library has its gradient there too)
                self._step_any(i, p)
            elif dW.shape != W.shape:
                self._shape_error(i, W, dW)
            else:
                self._update(i, W, dW)
            p._modified()  # a graph that saved p's old values now refuses to backpropagate through them
        return value

    def _step_any(self, i, p):
        """The update of a parameter whose gradient is lazy (computed here, with all the others) or whose values
        live in another library (updated with its own operations; a Dask array is replaced, never changed)."""
        if _ns.is_lazy(p.grad):
            self._compute_lazy(None)
        W, dW = p.data, p.grad
        if dW.shape != W.shape:
            self._shape_error(i, W, dW)
        if type(W) is _ndarray and type(dW) is _ndarray:
            self._update(i, W, dW)
        elif type(W) is _ndarray:
            raise TypeError(f"{type(self).__name__}.step: params[{i}] is a NumPy array but its gradient is a "
                            f"{_ns.library_name(dW)} array; move the parameter there first "
                            f"(p.data = xp.asarray(p.data))")
        else:
            p._data = self._update_any(i, W, dW)

    def _shape_error(self, i, W, dW):
        raise ValueError(f"{type(self).__name__}.step: params[{i}] has shape {W.shape} but its grad has "
                         f"shape {dW.shape}")

    def _compute_lazy(self, cost):
        """Compute every lazy gradient (and the cost's value) in one `dask.compute`; `.grad` keeps the values."""
        grads = [p.grad for p in self.params]
        c = cost.data if isinstance(cost, Tensor) else cost
        *grads, c = _ns.compute(grads + [c])
        for p, g in zip(self.params, grads):
            p.grad = g
        return None if c is None else float(_ns.to_numpy(c).item())

    def _buffer(self, i, W) -> np.ndarray:
        """A scratch array shaped like W, allocated once per parameter."""
        buf = self._scratch[i]
        if buf is None or buf.shape != W.shape or buf.dtype != W.dtype:
            buf = self._scratch[i] = np.empty_like(W)
        return buf

    def _update(self, i, W, dW):
        raise NotImplementedError

    def _update_any(self, i, W, dW):
        """The update on another library's arrays: returns the new W (computed in place where the library can)."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({len(self.params)} parameters, lr={self.lr})"


class GradientDescent(Optimizer):
    """Gradient descent (§1.2.1, Algorithm 1.1): W := W - lr * dW."""

    def __init__(self, params, lr):
        super().__init__(params, lr)

    def _update(self, i, W, dW):
        buf = np.multiply(dW, self.lr, out=self._buffer(i, W), casting="same_kind")
        np.subtract(W, buf, out=W)

    def _update_any(self, i, W, dW):
        W -= dW * self.lr
        return W


class Momentum(Optimizer):
    """Gradient descent with momentum: v = beta v + (1 - beta) dW (an exponentially weighted average of the
    gradients, §3.3.2); W := W - lr * v. `bias_correction=True` divides v by 1 - beta**t (off in the course)."""

    def __init__(self, params, lr, beta=0.9, bias_correction=False):
        super().__init__(params, lr)
        self.beta = _check_beta(beta, "Momentum")
        self.v = [ExponentialAverage(self.beta, bias_correction) for _ in self.params]

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
    W := W - lr * dW / (sqrt(s) + eps). Equal to torch.optim.RMSprop with alpha = beta."""

    def __init__(self, params, lr, beta=0.999, eps=1e-8):
        super().__init__(params, lr)
        self.beta = _check_beta(beta, "RMSprop")
        self.eps = _check_nonneg(eps, "RMSprop", "eps")
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
    Matches torch.optim.Adam step for step (t counts the steps each parameter actually took)."""

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(params, lr)
        self.beta1 = _check_beta(beta1, "Adam", "beta1")
        self.beta2 = _check_beta(beta2, "Adam", "beta2")
        self.eps = _check_nonneg(eps, "Adam", "eps")
        self.m = [ExponentialAverage(self.beta1) for _ in self.params]
        self.v = [ExponentialAverage(self.beta2) for _ in self.params]

    def _update(self, i, W, dW):
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
    lr0 = _check_nonneg(lr0, where, "lr0")
    decay_rate = _check_nonneg(decay_rate, where, "decay_rate")
    return _out(lr0 / (1.0 + decay_rate * _epoch(epoch, where)))


def exponential_decay(lr0, epoch, base=0.95):
    """alpha = base**epoch_num * alpha0 (the course's 0.95**epoch_num * alpha0). Works on arrays of epochs."""
    where = "exponential_decay"
    lr0 = _check_nonneg(lr0, where, "lr0")
    base = _check_nonneg(base, where, "base")
    if base > 1:
        raise ValueError(f"{where}: base must be in [0, 1] for a decay, got {base}")
    return _out(base ** _epoch(epoch, where) * lr0)
