"""Gradient checking (course notes §3.2.3): backprop's dθ against two-sided differences dθ≈.

All parameters are flattened into one vector θ. For each element θ_i,
    dθ≈_i = (J(θ_i + ε) - J(θ_i - ε)) / (2ε),
and the check reports
    difference = ||dθ≈ - dθ||_2 / (||dθ≈||_2 + ||dθ||_2):
< 1e-7 great, < 1e-5 fine, > 1e-3 probably a bug. Unlike the course's bare number, the result also says WHERE:
a per-parameter breakdown names each tensor, its own relative difference and its worst elements.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .tensor import Tensor, no_grad, run_backward

__all__ = ["gradcheck", "GradcheckResult", "ParameterCheck", "verdict"]


def verdict(difference: float) -> str:
    """The course's reading of a relative difference (§3.2.3)."""
    if not np.isfinite(difference):
        return "broken: the difference is not finite (NaN or inf in the cost or a gradient)"
    if difference < 1e-7:
        return "great (< 1e-7)"
    if difference < 1e-5:
        return "fine (< 1e-5)"
    if difference <= 1e-3:
        return "suspicious (between 1e-5 and 1e-3): look at the parameters with the largest differences"
    return "likely a bug (> 1e-3)"


def _relative(numeric, backprop) -> float:
    num = np.linalg.norm(numeric - backprop)
    den = np.linalg.norm(numeric) + np.linalg.norm(backprop)
    return 0.0 if den == 0 and num == 0 else float(num / den)


@dataclass
class ParameterCheck:
    """One parameter's part of the check: its own relative difference and its worst elements
    (index, numeric dθ≈, backprop dθ), largest |dθ≈ - dθ| first."""
    name: str
    position: int                      # its place in the params list
    shape: tuple
    difference: float
    worst: list = field(default_factory=list)   # [(index tuple, numeric, backprop), ...]
    numeric: np.ndarray = field(default=None, repr=False)
    backprop: np.ndarray = field(default=None, repr=False)

    @property
    def verdict(self) -> str:
        return verdict(self.difference)


@dataclass
class GradcheckResult:
    """What `gradcheck` found. `difference` is over all parameters together (the course's number); `ok` is
    difference < threshold; `breakdown` has one ParameterCheck per parameter; str(result) is a readable report."""
    difference: float
    threshold: float
    eps: float
    breakdown: list
    numeric: np.ndarray = field(repr=False)    # dθ≈, all parameters flattened into one vector
    backprop: np.ndarray = field(repr=False)   # dθ

    @property
    def ok(self) -> bool:
        return bool(self.difference < self.threshold)

    @property
    def verdict(self) -> str:
        return verdict(self.difference)

    @property
    def worst(self) -> ParameterCheck:
        """The parameter whose own relative difference is the largest."""
        return max(self.breakdown, key=lambda c: (np.nan_to_num(c.difference, nan=np.inf), -c.position))

    def __bool__(self):
        return self.ok

    def report(self) -> str:
        lines = [f"gradient check: difference = {self.difference:.3e} -> {self.verdict}",
                 f"  (eps = {self.eps:g}, threshold = {self.threshold:g}, ok = {self.ok}, "
                 f"{self.numeric.size} elements)"]
        for c in self.breakdown:
            flag = "  <-- largest" if len(self.breakdown) > 1 and c is self.worst and c.difference >= 1e-5 else ""
            lines.append(f"  {c.name} {c.shape}: difference {c.difference:.3e}{flag}")
            for idx, num, bp in c.worst:
                lines.append(f"      [{', '.join(map(str, idx))}]  numeric {num: .10e}  backprop {bp: .10e}  "
                             f"|diff| {abs(num - bp):.2e}")
        return "\n".join(lines)

    __str__ = report


def _named(params):
    if hasattr(params, "named_parameters") and callable(params.named_parameters):
        pairs = list(params.named_parameters())
    else:
        if isinstance(params, Tensor):
            params = [params]
        pairs = [(None, p) for p in params]
    if not pairs:
        raise ValueError("gradcheck: params is empty")
    out, seen = [], set()
    for i, (name, p) in enumerate(pairs):
        if not isinstance(p, Tensor):
            raise TypeError(f"gradcheck: params[{i}] is a {type(p).__name__}, expected a Tensor")
        if not p.requires_grad:
            raise ValueError(f"gradcheck: params[{i}] (shape {p.shape}) does not require grad; "
                             f"create it with Tensor(..., requires_grad=True)")
        if id(p) in seen:
            raise ValueError(f"gradcheck: params[{i}] (shape {p.shape}) appears twice")
        seen.add(id(p))
        out.append((name or p.name or f"params[{i}]", p))
    return out


def _cost(f, where):
    J = f()
    if not isinstance(J, Tensor):
        raise TypeError(f"gradcheck: f() must return a Tensor (the cost J), got {type(J).__name__}")
    if J.size != 1:
        raise ValueError(f"gradcheck: f() must return a scalar cost, got shape {J.shape} ({where})")
    return J


def gradcheck(f, params, eps=1e-7, threshold=1e-7, top=3) -> GradcheckResult:
    """Check backprop against two-sided differences (§3.2.3).

    f: a function of no arguments returning the scalar cost J as a Tensor, computed from `params`
       (a list of Tensors with requires_grad=True, or a Module). It is called 2 * (number of elements) + 2 times.
    eps: the step ε; threshold: `result.ok` is difference < threshold; top: worst elements listed per parameter.

    dθ comes from one fresh backward pass that does not touch anyone's `.grad`; dθ≈_i from J(θ_i + ε) and
    J(θ_i - ε) evaluated under no_grad, in float64, divided by the step actually taken (θ_i + ε and θ_i - ε as
    stored, which is 2ε up to rounding). Every parameter's data is restored bit for bit, and every `.grad` is left
    as it was, even if f raises.

    f must be deterministic. A network with dropout draws a new mask on every call, which makes dθ≈ meaningless:
    re-create the random generator INSIDE f so every call draws the same mask, e.g.
        def f():
            rng = np.random.default_rng(0)        # same mask on every call
            A1 = F.dropout(F.relu(W1 @ X + b1), keep_prob=0.8, rng=rng)
            return F.binary_cross_entropy(F.sigmoid(W2 @ A1 + b2), Y)
    or check with keep_prob = 1 (or the model in eval() mode), then turn dropout back on.
    In float32, ε = 1e-7 is below the resolution of the numbers: a warning is issued; check in float64.
    """
    eps = float(eps)
    if not eps > 0 or not np.isfinite(eps):
        raise ValueError(f"gradcheck: eps must be a finite number > 0, got {eps}")
    if not callable(f):
        raise TypeError(f"gradcheck: f must be a function of no arguments returning the cost, got {type(f).__name__}")
    named = _named(params)
    tensors = [p for _, p in named]
    saved_data = [p.data.copy() for p in tensors]
    saved_grad = [p.grad for p in tensors]
    try:
        J = _cost(f, "backprop pass")
        if J.dtype != np.float64 or any(p.dtype != np.float64 for p in tensors):
            low = [n for n, p in named if p.dtype != np.float64] or ["the cost"]
            warnings.warn(f"gradcheck: {', '.join(low)} not float64; with eps = {eps:g} two-sided differences "
                          f"in float32 are dominated by rounding, so even correct gradients can differ by ~1e-2. "
                          f"Cast parameters and data to float64 for the check.", RuntimeWarning, stacklevel=2)
        J0 = float(J.item())
        if not J.requires_grad:
            raise ValueError("gradcheck: the cost does not depend on any parameter (or f ran under no_grad)")
        wanted = set(tensors)
        grads = run_backward([J], keep=wanted)
        del J
        backprop = [np.zeros(p.shape) if grads.get(p) is None else np.array(grads[p], dtype=np.float64)
                    for p in tensors]
        del grads
        with no_grad():
            J1 = float(_cost(f, "numeric pass").item())
            if J1 != J0 and not (np.isnan(J0) and np.isnan(J1)):
                warnings.warn(f"gradcheck: f() is not deterministic (J = {J0!r}, then {J1!r}); a dropout mask or "
                              f"other randomness drawn on each call spoils the check: see gradcheck's docstring",
                              RuntimeWarning, stacklevel=2)
            numeric = [_numeric(f, p, orig, eps) for p, orig in zip(tensors, saved_data)]
    finally:
        for p, data, g in zip(tensors, saved_data, saved_grad):
            np.copyto(p.data, data)
            p.grad = g
    breakdown = []
    for i, ((name, p), num, bp) in enumerate(zip(named, numeric, backprop)):
        gap = np.abs(num - bp).ravel()
        gap = np.where(np.isnan(gap), np.inf, gap)
        worst = np.argsort(-gap, kind="stable")[: max(int(top), 0)]
        breakdown.append(ParameterCheck(
            name=name, position=i, shape=tuple(p.shape), difference=_relative(num, bp),
            worst=[(tuple(int(k) for k in np.unravel_index(j, p.shape)), float(num.flat[j]), float(bp.flat[j]))
                   for j in worst],
            numeric=num, backprop=bp))
    theta_num = np.concatenate([n.ravel() for n in numeric])
    theta_bp = np.concatenate([b.ravel() for b in backprop])
    return GradcheckResult(difference=_relative(theta_num, theta_bp), threshold=float(threshold), eps=eps,
                           breakdown=breakdown, numeric=theta_num, backprop=theta_bp)


def _numeric(f, p, orig, eps) -> np.ndarray:
    """dθ≈ for every element of one parameter; p.data is perturbed in place and restored after each element."""
    data, out = p.data, np.empty(p.shape, dtype=np.float64)
    flat_orig = orig.reshape(-1)
    for i in range(orig.size):
        theta = flat_orig[i]
        data.flat[i] = theta + eps
        plus, up = float(_cost(f, "numeric pass").item()), float(data.flat[i])
        data.flat[i] = theta - eps
        minus, down = float(_cost(f, "numeric pass").item()), float(data.flat[i])
        data.flat[i] = theta
        step = up - down
        if step == 0:
            raise ValueError(f"gradcheck: eps = {eps:g} is too small to move a parameter element of value "
                             f"{float(theta):g} in {p.dtype}; use a larger eps")
        out.flat[i] = (plus - minus) / step
    return out
