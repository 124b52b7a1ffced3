"""Gradient checking (course notes §3.2.3): backprop's dθ against two-sided differences dθ≈.

All parameters are flattened into one vector θ. For each element θ_i,
    dθ≈_i = (J(θ_i + ε) - J(θ_i - ε)) / (2ε),
and the check reports
    difference = ||dθ≈ - dθ||_2 / (||dθ≈||_2 + ||dθ||_2):
< 1e-7 great, < 1e-5 fine, > 1e-3 probably a bug. Unlike the course's bare number, the result also says WHERE:
a per-parameter breakdown names each tensor, its own relative difference and its worst elements. NaN or inf
anywhere makes the difference NaN: the check fails and says so.
"""
from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _checks
from .tensor import Tensor, no_grad, run_backward, toposort
from .testing import finite_differences

__all__ = ["gradcheck", "GradcheckResult", "ParameterCheck", "verdict"]

# The course's reading of a relative difference (§3.2.3): (below this, grade, verdict, colour in notebooks).
_GRADES = [(1e-7, "great", "great (< 1e-7)", "#1a7f37"),
           (1e-5, "fine", "fine (< 1e-5)", "#4d7c0f"),
           (1e-3, "suspicious", "suspicious (between 1e-5 and 1e-3): look at the parameters with the largest "
                                "differences", "#c2410c"),
           (np.inf, "likely a bug", "likely a bug (> 1e-3)", "#b91c1c")]
_NAN = ("NaN", "NaN: the cost or a gradient is NaN or inf, so nothing can be compared (the breakdown shows where)",
        "#b91c1c")


def _grading(difference):
    d = float(difference)
    if not np.isfinite(d):
        return _NAN
    for limit, grade, text, colour in _GRADES:
        if d < limit or (grade == "suspicious" and d == limit):
            return grade, text, colour
    return _GRADES[-1][1:]


def verdict(difference: float) -> str:
    """The course's reading of a relative difference (§3.2.3); NaN (or inf) reads as "NaN: ...", never as a pass."""
    return _grading(difference)[1]


def _relative(numeric, backprop) -> float:
    """||numeric - backprop|| / (||numeric|| + ||backprop||); NaN if either holds NaN or inf. Both are scaled by a
    power of two first (exact), so huge or tiny finite gradients neither overflow nor underflow the norms."""
    numeric, backprop = np.asarray(numeric, dtype=np.float64), np.asarray(backprop, dtype=np.float64)
    if not (np.isfinite(numeric).all() and np.isfinite(backprop).all()):
        return float("nan")
    scale = max(float(np.max(np.abs(numeric), initial=0.0)), float(np.max(np.abs(backprop), initial=0.0)))
    if scale == 0:
        return 0.0
    e = -np.frexp(scale)[1]
    numeric, backprop = np.ldexp(numeric, e), np.ldexp(backprop, e)
    return float(np.linalg.norm(numeric - backprop) / (np.linalg.norm(numeric) + np.linalg.norm(backprop)))


def _count_nonfinite(label, a) -> str:
    nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    parts = ([f"{nan} NaN"] if nan else []) + ([f"{inf} inf"] if inf else [])
    return f"{label} has {' and '.join(parts)}" if parts else ""


@dataclass(repr=False)
class ParameterCheck:
    """One parameter's part of the check: its own relative difference and its worst elements
    (index, numeric dθ≈, backprop dθ), largest |dθ≈ - dθ| first (NaN and inf first of all)."""
    name: str
    position: int                      # its place in the params list
    shape: tuple
    difference: float
    worst: list = field(default_factory=list)   # [(index tuple, numeric, backprop), ...]
    numeric: np.ndarray = None
    backprop: np.ndarray = None
    dtype: str = "float64"             # the parameter's own dtype (the check itself runs in float64)

    @property
    def verdict(self) -> str:
        return verdict(self.difference)

    def nonfinite(self) -> str:
        """Where NaN or inf came from ("backprop has 2 NaN; numeric has 1 inf"), or "" if all is finite."""
        parts = [_count_nonfinite("backprop", self.backprop), _count_nonfinite("numeric", self.numeric)]
        return "; ".join(p for p in parts if p)

    def __repr__(self):
        return f"ParameterCheck(name={self.name!r}, shape={self.shape}, difference={self.difference:.2g})"


@dataclass(repr=False)
class GradcheckResult:
    """What `gradcheck` found. `difference` is over all parameters together (the course's number); `ok` is
    difference < threshold (never for NaN); `breakdown` has one ParameterCheck per parameter; str(result) is a
    readable report, and a notebook shows it as a table with the verdict coloured."""
    difference: float
    threshold: float
    eps: float
    breakdown: list
    numeric: np.ndarray                # dθ≈, all parameters flattened into one vector
    backprop: np.ndarray               # dθ
    cost: float = float("nan")         # J at the parameters' values
    note: str = ""                     # why the check could not run fully in float64, if it could not

    @property
    def ok(self) -> bool:
        return bool(self.difference < self.threshold)

    @property
    def verdict(self) -> str:
        return verdict(self.difference)

    @property
    def worst(self) -> ParameterCheck:
        """The parameter whose own relative difference is the largest (NaN counts as the largest)."""
        return max(self.breakdown, key=lambda c: (np.nan_to_num(c.difference, nan=np.inf), -c.position))

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return (f"GradcheckResult(difference={self.difference:.2g}, verdict={_grading(self.difference)[0]!r}, "
                f"ok={self.ok})")

    def _header(self):
        cast = sorted({c.dtype for c in self.breakdown} - {"float64"})
        where = "checked in float64" + (f" (parameters in {', '.join(cast)} were cast for the check)" if cast else "")
        return (f"eps = {self.eps:g}, threshold = {self.threshold:g}, ok = {self.ok}, {self.numeric.size} elements, "
                f"{where}")

    def _flag(self, c):
        big = not (c.difference < 1e-5)
        return len(self.breakdown) > 1 and c is self.worst and big

    def report(self) -> str:
        lines = [f"gradient check: difference = {self.difference:.3e} -> {self.verdict}", f"  ({self._header()})"]
        if not np.isfinite(self.cost):
            lines.append(f"  the cost J itself is {self.cost} at the parameters' values")
        if self.note:
            lines.append(f"  note: {self.note}")
        for c in self.breakdown:
            flag = "  <-- largest" if self._flag(c) else ""
            bad = c.nonfinite()
            lines.append(f"  {c.name} {c.shape}: difference {c.difference:.3e}{flag}" + (f"  ({bad})" if bad else ""))
            for idx, num, bp in c.worst:
                lines.append(f"      [{', '.join(map(str, idx))}]  numeric {num: .10e}  backprop {bp: .10e}  "
                             f"|diff| {abs(num - bp):.2e}")
        return "\n".join(lines)

    __str__ = report

    def _repr_pretty_(self, printer, cycle):
        """IPython's plain-text display: the report."""
        printer.text(self.report())

    def _repr_html_(self) -> str:
        """A notebook's display: the report as a table, the verdict coloured (every piece of text escaped)."""
        esc = html.escape
        _, text, colour = _grading(self.difference)
        rows = []
        for c in self.breakdown:
            grade, _, shade = _grading(c.difference)
            worst = "<br>".join(f"[{esc(', '.join(map(str, idx)))}] numeric {num:.6e}, backprop {bp:.6e}"
                                for idx, num, bp in c.worst)
            bad = c.nonfinite()
            bold = ' style="font-weight:bold"' if self._flag(c) else ""
            rows.append(f'<tr{bold}><td><code>{esc(str(c.name))}</code></td><td>{esc(str(c.shape))}</td>'
                        f'<td style="color:{shade}">{c.difference:.3e} ({esc(grade)})'
                        + (f"<br>{esc(bad)}" if bad else "") + "</td>"
                        f'<td style="font-family:monospace;font-size:90%">{worst}</td></tr>')
        notes = "" if np.isfinite(self.cost) else \
            f"<p>the cost J itself is {self.cost} at the parameters' values</p>"
        notes += f"<p>note: {esc(self.note)}</p>" if self.note else ""
        return (f'<div class="tinygrad-dl-gradcheck"><p><b>gradient check</b>: difference = '
                f'{self.difference:.3e} &rarr; <span style="color:{colour};font-weight:bold">{esc(text)}</span></p>'
                f'<p style="font-size:90%">{esc(self._header())}</p>{notes}'
                "<table><thead><tr><th>parameter</th><th>shape</th><th>difference</th><th>worst elements</th>"
                "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


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
    if all(p.size == 0 for _, p in out):
        raise ValueError("gradcheck: every parameter is empty: there is nothing to check")
    return out


def _cost(f, where):
    J = f()
    if not isinstance(J, Tensor):
        raise TypeError(f"gradcheck: f() must return a Tensor (the cost J), got {type(J).__name__}")
    if J.size != 1:
        raise ValueError(f"gradcheck: f() must return a scalar cost, got shape {J.shape} ({where})")
    return J


def _below_float64(J, params) -> str:
    """Why the check is not fully in float64 although the parameters are: the cost, or a tensor computed from a
    parameter, in a narrower dtype (a cast in f, or a Function whose forward returns float32). "" if none."""
    depends, low = set(params), []
    for t in toposort([J]):
        fn = t.creator
        if fn is not None and any(x in depends for x in fn.inputs):
            depends.add(t)
            if t.dtype.itemsize < 8 and len(low) < 3:
                low.append(f"{fn.name} gives {t.dtype}")
    if J.dtype.itemsize < 8 and not low:
        low.append(f"the cost is {J.dtype}")
    if not low:
        return ""
    return (f"f computes in lower precision even with float64 parameters ({', '.join(low)}), so this check cannot "
            f"run in float64: rounding dominates two-sided differences there, and even correct gradients can "
            f"differ by ~1e-2. Let f compute in its parameters' dtype to check in float64.")


def gradcheck(f, params, eps=1e-7, threshold=1e-7, top=3) -> GradcheckResult:
    """Check backprop against two-sided differences (§3.2.3).

    f: a function of no arguments returning the scalar cost J as a Tensor, computed from `params`
       (a list of Tensors with requires_grad=True, or a Module). It is called 2 * (number of elements) + 2 times.
    eps: the step ε; threshold: `result.ok` is difference < threshold; top: worst elements listed per parameter.

    The check runs in float64 whatever the parameters' dtype: each parameter's data is swapped for a float64
    copy while f runs, and the original arrays (same objects, same dtype, same bits) are put back afterwards,
    even if f raises. dθ comes from one fresh backward pass that does not touch anyone's `.grad`; dθ≈ from
    `testing.finite_differences` under no_grad (J(θ_i ± ε) divided by the step actually taken). If f computes in
    float32 even so (a cast inside it), a warning says where, and the result's `note` keeps it.

    NaN or inf in the cost, in backprop's dθ or in the differences makes the difference NaN: `ok` is False, the
    verdict says NaN, and the breakdown shows which parameters and elements.

    f must be deterministic. A network with dropout draws a new mask on every call, which makes dθ≈ meaningless:
    re-create the random generator INSIDE f so every call draws the same mask, e.g.
        def f():
            rng = np.random.default_rng(0)        # same mask on every call
            A1 = F.dropout(F.relu(W1 @ X + b1), keep_prob=0.8, rng=rng)
            return F.binary_cross_entropy(F.sigmoid(W2 @ A1 + b2), Y)
    or check with keep_prob = 1 (or the model in eval() mode), then turn dropout back on.
    """
    for name, v in (("eps", eps), ("threshold", threshold)):
        if not _checks._is_real(v):
            raise TypeError(f"gradcheck: {name} must be a finite number > 0, got {v!r}")
    eps, threshold = float(eps), float(threshold)
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"gradcheck: eps must be a finite number > 0, got {eps}")
    if not (np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"gradcheck: threshold must be a finite number > 0, got {threshold}")
    if not callable(f):
        raise TypeError(f"gradcheck: f must be a function of no arguments returning the cost, got {type(f).__name__}")
    named = _named(params)
    tensors = [p for _, p in named]
    originals = [p.data for p in tensors]
    saved_grad = [p.grad for p in tensors]
    # the float64 copies are swapped in and the originals back through the private slot: the values a graph
    # saved come back untouched, so this is not an in-place change (a `.data = ...` would count as one)
    try:
        for p, data in zip(tensors, originals):
            p._data = np.array(data, dtype=np.promote_types(data.dtype, np.float64), order="C")   # a copy
        J = _cost(f, "backprop pass")
        if not J.requires_grad:
            raise ValueError("gradcheck: the cost does not depend on any parameter (or f ran under no_grad)")
        note = _below_float64(J, tensors)
        if note:
            warnings.warn(f"gradcheck: {note}", RuntimeWarning, stacklevel=2)
        J0 = float(J.item())
        grads = run_backward([J], keep=set(tensors))
        del J
        backprop = [np.zeros(p.shape) if grads.get(p) is None else np.array(grads[p], dtype=np.float64)
                    for p in tensors]
        del grads
        with no_grad():
            J1 = float(_cost(f, "numeric pass").item())
            if not (J1 == J0 or (np.isnan(J0) and np.isnan(J1))):
                warnings.warn(f"gradcheck: f() is not deterministic (J = {J0!r}, then {J1!r}); a dropout mask or "
                              f"other randomness drawn on each call spoils the check: see gradcheck's docstring",
                              RuntimeWarning, stacklevel=2)
            numeric = []
            for name, p in named:
                try:
                    numeric.append(finite_differences(lambda: _cost(f, "numeric pass"), p.data, eps))
                except ValueError as e:
                    if "too small to move" not in str(e):
                        raise
                    raise ValueError(f"gradcheck: parameter {name}: {e}") from None
    finally:
        for p, data, g in zip(tensors, originals, saved_grad):
            p._data = data
            p.grad = g
    breakdown = []
    for i, ((name, p), num, bp, data) in enumerate(zip(named, numeric, backprop, originals)):
        gap = np.abs(num - bp).ravel()
        gap = np.where(np.isnan(gap), np.inf, gap)
        worst = np.argsort(-gap, kind="stable")[: max(int(top), 0)]
        breakdown.append(ParameterCheck(
            name=name, position=i, shape=tuple(p.shape), difference=_relative(num, bp),
            worst=[(tuple(int(k) for k in np.unravel_index(j, p.shape)), float(num.flat[j]), float(bp.flat[j]))
                   for j in worst],
            numeric=num, backprop=bp, dtype=str(data.dtype)))
    theta_num = np.concatenate([n.ravel() for n in numeric])
    theta_bp = np.concatenate([b.ravel() for b in backprop])
    return GradcheckResult(difference=_relative(theta_num, theta_bp), threshold=threshold, eps=eps,
                           breakdown=breakdown, numeric=theta_num, backprop=theta_bp, cost=J0, note=note)
