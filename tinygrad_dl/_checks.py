"""Argument checks shared by the toolkit modules (data, functional, init, nn, optim). Internal: not public API.

Every check takes `where` (the function or class the user called) and `name` (the argument), and its message
says both, the value received and what was expected. A value of the wrong kind (a string, None, a bool where a
number is expected) raises `BadArgument`, which is both a TypeError and a ValueError, so callers written against
either keep working; a number out of range raises ValueError.

Randomness: the one rule for every `rng=` argument
--------------------------------------------------
`rng` is an `np.random.Generator`, an int seed, or None (fresh entropy from the operating system).

* An int seed becomes `np.random.default_rng(seed)` once, in the thing that receives it, and the draws continue
  from there. A layer (`Dense`, `Dropout`) keeps that Generator for its whole life: `Dropout(keep_prob=0.8, rng=1)`
  draws a fresh mask at every forward pass, and the same seed gives the same sequence of masks.
* A function that builds something once (`init.he`, `data.split`, `data.augment`) gives the same result for the
  same int seed, every time it is called.
* A function called at every step or epoch of training to draw something NEW (`F.dropout`'s mask,
  `data.minibatches`' shuffle) would draw the same thing at every call from an int seed, silently defeating
  it; so these take only a Generator (or None). Make it once, before the loop, and pass it on every call:

      rng = np.random.default_rng(0)
      for epoch in range(10):
          for X_b, Y_b in dl.data.minibatches(X, Y, 64, rng=rng):    # a new order every epoch
              ...

Passing a Generator anywhere continues its stream, so one Generator can drive a whole run; building the same
model and Generator from the same seeds reproduces the run bit for bit (also twice in one process).
"""
from __future__ import annotations

import math
import numbers

import numpy as np


class BadArgument(TypeError, ValueError):
    """An argument of the wrong kind (both a TypeError and a ValueError)."""


def _is_real(x) -> bool:
    """True for real numbers (Python or NumPy), False for bools."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def is_int(x) -> bool:
    """True for Python and NumPy integers, False for bools."""
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def number(x, where: str, name: str, *, low=None, high=None, low_open=False, high_open=False,
           finite=True, expected: str | None = None) -> float:
    """A real number (not a bool), finite unless `finite=False`, within [low, high] (open ends if asked)."""
    expected = expected or _range_text(low, high, low_open, high_open, finite)
    if not _is_real(x):
        raise BadArgument(f"{where}: {name} must be {expected}, got {x!r}")
    v = float(x)
    bad = math.isnan(v) or (finite and math.isinf(v))
    if low is not None:
        bad = bad or (v <= low if low_open else v < low)
    if high is not None:
        bad = bad or (v >= high if high_open else v > high)
    if bad:
        raise ValueError(f"{where}: {name} must be {expected}, got {x!r}")
    return v


def _range_text(low, high, low_open, high_open, finite) -> str:
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a {'finite ' if finite else ''}number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a {'finite ' if finite else ''}number {'<' if high_open else '<='} {high:g}"
    return "a finite number" if finite else "a number"


def nonneg(x, where: str, name: str) -> float:
    """A finite number >= 0 (a learning rate, eps, a noise std, lambd, weight_decay)."""
    return number(x, where, name, low=0.0)


def probability(x, where: str, name: str = "keep_prob") -> float:
    """A probability of keeping a unit: a number in (0, 1]."""
    return number(x, where, name, low=0.0, high=1.0, low_open=True,
                  expected="a number in (0, 1] (the probability of keeping a unit)")


def beta(x, where: str, name: str = "beta") -> float:
    """The coefficient of an exponentially weighted average, in [0, 1)."""
    if not _is_real(x):
        raise BadArgument(f"{where}: {name} must be a number in [0, 1), got {x!r}")
    v = float(x)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{where}: {name} must be in [0, 1), got {v} "
                         f"(the average covers about 1/(1-{name}) steps; {name} = 1 would never move)")
    return v


def integer(x, where: str, name: str, low: int = 0) -> int:
    """An int (not a bool) >= low."""
    if not is_int(x):
        raise BadArgument(f"{where}: {name} must be an int >= {low}, got {x!r}")
    if x < low:
        raise ValueError(f"{where}: {name} must be an int >= {low}, got {x!r}")
    return int(x)


def positive_int(x, where: str, name: str) -> int:
    """An int >= 1 (a layer size, a batch size, a patience)."""
    return integer(x, where, name, low=1)


def param_list(params, where: str) -> list:
    """The parameters to update: a Module (or anything with `.parameters()`), one Tensor, or an iterable of
    distinct leaf Tensors; never empty."""
    from .tensor import Tensor
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


def as_rng(rng, where: str = "rng", *, per_call: bool = False, what: str = "draw") -> np.random.Generator:
    """An `np.random.Generator` under the rule in this module's docstring.

    A Generator is returned as is (its stream continues); None gives fresh entropy; an int seed gives
    `np.random.default_rng(seed)`, except where `per_call=True` (a function that draws something new at every
    call of a training loop), which refuses an int and says how to make the Generator once."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if is_int(rng):
        if rng < 0:
            raise ValueError(f"{where}: a seed must be a non-negative int, got {rng}")
        if per_call:
            raise TypeError(f"{where}: rng={rng} would draw the same {what} at every call, silently defeating it "
                            f"in a training loop; make the Generator once, before the loop: "
                            f"rng = np.random.default_rng({rng}), then pass rng=rng to every call (its stream "
                            f"continues, and the same seed still reproduces the whole run)")
        return np.random.default_rng(int(rng))
    raise TypeError(f"{where}: rng must be an np.random.Generator, an int seed or None; got "
                    f"{type(rng).__name__} (use np.random.default_rng(seed))")
