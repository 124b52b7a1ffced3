"""NaN, +-inf, +-0 and empty inputs through every primitive and every composition, against PyTorch.

Two tables drive the sweep: PRIMITIVE_CASES (one entry per op in tinygrad_dl.tensor.PRIMITIVES: a primitive added
without an entry fails `test_every_primitive_has_edge_cases`) and COMPOSITION_CASES (one entry per function in
tinygrad_dl.functional, plus the compositions the Tensor offers: mean, minimum, sqrt). Each case runs our op and
PyTorch's on the same inputs with the same upstream gradient and compares the value and every input's gradient:
NaN in the same places, infinities equal with their sign, finite numbers to 1e-12 (float64) and the sign of every
zero, except where a case says why the sign of a zero carries no meaning there.

Where we deliberately differ from PyTorch, DIFFERENCES says how and why, and the cases concerned carry their own
oracle (a closed form in NumPy, or PyTorch used the way the difference says); `test_differences_are_documented`
keeps the list and the cases in step. Everything runs in float64 and again in float32 (to 1e-5).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_dl as dl
import tinygrad_dl.functional as F
from tinygrad_dl import ops
from tinygrad_dl.tensor import PRIMITIVES

from conftest import need_module

pytestmark = pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning")  # torch's var of nothing

NAN, INF = float("nan"), float("inf")
SPECIAL = [NAN, INF, -INF, 0.0, -0.0, 1.5, -2.0]
PAIRS = [np.array(v) for v in zip(*[(a, b) for a in SPECIAL for b in SPECIAL])]  # every (a, b), 49 of them

# Deliberate differences from PyTorch: case id prefix -> what differs and why.
DIFFERENCES = {
    "Max/axis": "over an axis, torch.amax sends NaN gradients to every element of a slice holding a NaN; we follow "
                "torch.max()'s full reduction instead: the NaN elements share the gradient, the others get 0",
    "binary_cross_entropy_with_logits/limit": "at Z = -inf with Y > 0 the cost is its limit +inf; torch's formula "
                                              "(1 - Y) Z - log sigmoid(Z) gives -inf + inf = NaN (the gradients "
                                              "agree: (sigmoid(Z) - Y) / m)",
    "binary_cross_entropy/nan": "torch refuses a NaN prediction ('should be between 0 and 1'); NaN propagates "
                                "instead: the cost and the NaN element's gradient are NaN",
    "binary_cross_entropy/saturated": "at A = 0 or 1 (and wherever A (1 - A) < 1e-12) torch divides its gradient "
                                      "by max(A (1 - A), 1e-12); we give the exact derivative of the clamped cost "
                                      "(0 on a clamped side, 1/(1 - A) or -1/A on the other)",
    "cross_entropy/soft": "a constant soft target Y = 0 against a -inf logit costs 0 (0 log 0 = 0); torch's "
                          "probability targets give NaN there",
    "var/infinite": "we differentiate the composition sum((x - mean)**2) / n (so grad-of-grad is right); torch's "
                    "var_backward drops the mean's term (zero for finite data), so where the mean is infinite it "
                    "gives +-inf at the finite elements and we NaN; the variance is NaN either way",
    "std/infinite": "as var/infinite",
    "cross_entropy/one-row": "a (1, m) output is refused (a softmax over one class is always 1, its cost always 0: "
                             "use the binary losses); torch returns 0",
}


@pytest.fixture(scope="module")
def torch():
    return need_module("torch")


# ============================================================ comparing values

def assert_same(ours, want, what, zero_sign=True, rtol=1e-12):
    """NaN where `want` has NaN, the same infinities, finite numbers to rtol, and (optionally) signed zeros."""
    ours, want = np.asarray(ours), np.asarray(want)
    assert ours.shape == want.shape, f"{what}: shape {ours.shape}, expected {want.shape}"
    bad = np.isnan(ours) != np.isnan(want)
    assert not bad.any(), f"{what}: NaN at {np.argwhere(bad).tolist()}: got {ours[bad]}, expected {want[bad]}"
    inf = np.isinf(want) | np.isinf(ours)
    bad = inf & (ours != want)
    assert not bad.any(), f"{what}: infinities differ at {np.argwhere(bad).tolist()}: got {ours[bad]}, " \
                          f"expected {want[bad]}"
    fin = np.isfinite(want)
    np.testing.assert_allclose(ours[fin], want[fin], rtol=rtol, atol=1e-300, err_msg=what)
    if zero_sign:
        zero = fin & (want == 0)
        bad = zero & (np.signbit(ours) != np.signbit(want))
        assert not bad.any(), f"{what}: the sign of zero differs at {np.argwhere(bad).tolist()}: got " \
                              f"{ours[bad]}, expected {want[bad]}"


def upstream(shape, dtype=np.float64):
    """A distinct positive upstream gradient per output element (a permuted gradient would show)."""
    return (1.0 + np.arange(int(np.prod(shape))) / 16.0).reshape(shape).astype(dtype)


class Case:
    """ours(*Tensors) and theirs(torch, *torch tensors) on `inputs` (all get a gradient).

    expect(torch, *arrays) -> (value, [grads]) replaces PyTorch for a documented difference. raises=(Error, pattern):
    we refuse the input with that message (and PyTorch must refuse it too unless the case is a difference).
    value_zero_sign / grad_zero_sign=False when the sign of a zero is an accident of summation order."""

    def __init__(self, ours, theirs, *inputs, expect=None, raises=None, value_zero_sign=True,
                 grad_zero_sign=True):
        self.ours, self.theirs, self.inputs, self.expect, self.raises = ours, theirs, inputs, expect, raises
        self.value_zero_sign, self.grad_zero_sign = value_zero_sign, grad_zero_sign


def run_ours(case, dtype=np.float64):
    ts = [dl.Tensor(np.asarray(x, dtype=dtype), requires_grad=True) for x in case.inputs]
    with np.errstate(all="ignore"):
        out = case.ours(*ts)
        g = upstream(out.shape, dtype)
        out.backward(g)
    return out.data, [t.grad for t in ts], g


def run_torch(torch, case, g, dtype=np.float64):
    ts = [torch.tensor(np.asarray(x, dtype=dtype), requires_grad=True) for x in case.inputs]
    out = case.theirs(torch, *ts)
    out.backward(torch.tensor(g).to(out.dtype))
    return out.detach().numpy(), [np.zeros(t.shape, dtype) if t.grad is None else t.grad.numpy() for t in ts]


def check(torch, name, case, dtype=np.float64):
    if case.raises is not None:
        error, pattern = case.raises
        with pytest.raises(error, match=pattern):
            run_ours(case)
        if not name.startswith(tuple(DIFFERENCES)):  # refused where PyTorch refuses too
            ts = [torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True) for x in case.inputs]
            with pytest.raises((RuntimeError, IndexError, ValueError)):
                case.theirs(torch, *ts)
        return
    value, grads, g = run_ours(case, dtype)
    if case.expect is not None:
        want, want_grads = case.expect(torch, *[np.asarray(x, dtype=np.float64) for x in case.inputs])
    else:
        want, want_grads = run_torch(torch, case, g, dtype)
    rtol = 1e-12 if dtype == np.float64 and value.dtype == np.float64 else 1e-5
    want_dtype = np.asarray(want).dtype if case.expect is None else dtype
    assert value.dtype == want_dtype, f"{name}: value of dtype {value.dtype}, expected {want_dtype}"
    assert_same(value, want, f"{name}: value", case.value_zero_sign, rtol)
    assert len(grads) == len(want_grads)
    for i, (got, w) in enumerate(zip(grads, want_grads)):
        assert got is not None, f"{name}: input {i} got no gradient"
        assert got.dtype == dtype, f"{name}: gradient of input {i} of dtype {got.dtype}"
        assert_same(got, w, f"{name}: gradient of input {i}", case.grad_zero_sign, rtol)


# ============================================================ the primitives

def unary(op, theirs, **kw):
    """An elementwise op at every special value, and on empty arrays."""
    cases = {"special": Case(lambda x: op()(x), theirs, np.array(SPECIAL), **kw)}
    for shape in [(3, 0), (0,), (0, 3)]:
        cases[f"empty{shape}"] = Case(lambda x: op()(x), theirs, np.zeros(shape))
    return cases


def binary(op, theirs, empty_grad_zero_sign=True):
    """An elementwise binary op at every pair of special values, and on empty (and broadcast empty) arrays."""
    cases = {"special": Case(lambda a, b: op()(a, b), theirs, *PAIRS)}
    for sa, sb in [((3, 0), (3, 0)), ((0,), (0,)), ((3, 0), (3, 1)), ((1, 0), (3, 1)), ((0, 3), ())]:
        cases[f"empty{sa}{sb}"] = Case(lambda a, b: op()(a, b), theirs, np.zeros(sa), np.ones(sb),
                                       grad_zero_sign=empty_grad_zero_sign)
    return cases


def pow_cases():
    cases = {}
    for p in [0.0, 1.0, 2.0, 3.0, 0.5, -0.5, -1.0, -2.0, 1.5, -1.5]:
        cases[f"p={p}"] = Case(lambda x, p=p: ops.Pow(p)(x), lambda torch, x, p=p: x ** p, np.array(SPECIAL))
    cases["empty"] = Case(lambda x: ops.Pow(2.0)(x), lambda torch, x: x ** 2.0, np.zeros((3, 0)))
    return cases


def where_cases():
    cond = np.arange(PAIRS[0].size) % 2 == 0
    cases = {"special": Case(lambda a, b: ops.Where(cond)(a, b),
                             lambda torch, a, b: torch.where(torch.tensor(cond), a, b), *PAIRS)}
    empty = np.zeros((3, 0), bool)
    cases["empty"] = Case(lambda a, b: ops.Where(empty)(a, b),
                          lambda torch, a, b: torch.where(torch.tensor(empty), a, b), np.zeros((3, 0)), np.ones((3, 1)))
    return cases


def matmul_cases():
    a = np.array([[NAN, 1.0, 0.0], [INF, -INF, 2.0], [0.0, -0.0, 1.5], [INF, 0.0, 1.0]])
    b = np.array([[0.0, 1.0], [1.0, -0.0], [-2.0, INF]])
    mm = lambda x, y: ops.MatMul()(x, y)  # noqa: E731
    tmm = lambda torch, x, y: x @ y  # noqa: E731
    cases = {"special": Case(mm, tmm, a, b, value_zero_sign=False, grad_zero_sign=False)}  # BLAS sums in any order
    for sa, sb in [((3, 0), (0, 2)), ((0, 3), (3, 2)), ((3, 2), (2, 0))]:
        cases[f"empty{sa}@{sb}"] = Case(mm, tmm, np.ones(sa), np.ones(sb))
    return cases


REDUCE = np.array([[NAN, 1.0, NAN], [INF, INF, 1.0], [-INF, -INF, -INF], [0.0, -0.0, -1.0], [1.0, 2.0, 3.0],
                   [INF, -INF, 0.0]])


def sum_cases():
    cases = {}
    for axis in [None, 0, 1]:
        for keep in [False, True]:
            cases[f"axis={axis},keepdims={keep}"] = Case(
                lambda x, a=axis, k=keep: ops.Sum(a, k)(x),
                lambda torch, x, a=axis, k=keep: x.sum((0, 1) if a is None else a, keepdim=k),
                REDUCE, value_zero_sign=False)  # -0 + -0: NumPy starts from the first element, torch from +0
    for shape, axis in [((3, 0), None), ((3, 0), 0), ((3, 0), 1), ((0,), None), ((0, 3), 1)]:
        cases[f"empty{shape},axis={axis}"] = Case(
            lambda x, a=axis: ops.Sum(a)(x), lambda torch, x, a=axis: x.sum() if a is None else x.sum(a),
            np.zeros(shape))
    return cases


def _max_oracle(axis, keepdims):
    """torch.max()'s full reduction applied to each slice along `axis` (its rule: the NaN elements, else the
    tied maxima, share the gradient evenly)."""
    def expect(torch, x):
        axes = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
        rest = [i for i in range(x.ndim) if i not in axes]
        moved = np.transpose(x, rest + list(axes))
        rows = moved.reshape(int(np.prod([x.shape[i] for i in rest])), -1)
        value = np.max(x, axis=axis, keepdims=keepdims)
        g = upstream(value.shape).reshape(-1)
        out, grads = [], []
        for row, gi in zip(rows, g):
            t = torch.tensor(row, requires_grad=True)
            m = t.max()
            m.backward(torch.tensor(gi))
            out.append(m.item())
            grads.append(t.grad.numpy())
        grad = np.transpose(np.array(grads).reshape(moved.shape), np.argsort(rest + list(axes)))
        return np.array(out).reshape(value.shape), [grad]
    return expect


def max_cases():
    cases = {}
    cases["special,axis=None"] = Case(lambda x: ops.Max()(x), lambda torch, x: x.max(), REDUCE[:2],
                                      value_zero_sign=False)  # max(0, -0) is either
    cases["special,no NaN"] = Case(lambda x: ops.Max()(x), lambda torch, x: x.max(), REDUCE[1:],
                                   value_zero_sign=False)
    for axis in [0, 1, (0, 1)]:
        for keep in [False, True]:
            cases[f"axis={axis},keepdims={keep}"] = Case(
                lambda x, a=axis, k=keep: ops.Max(a, k)(x), None, REDUCE, expect=_max_oracle(axis, keep),
                value_zero_sign=False)
    cases["empty(3, 0),axis=0"] = Case(lambda x: ops.Max(0)(x), lambda torch, x: x.amax(0), np.zeros((3, 0)))
    cases["empty(0, 3),axis=1"] = Case(lambda x: ops.Max(1)(x), lambda torch, x: x.amax(1), np.zeros((0, 3)))
    for shape, axis in [((3, 0), None), ((3, 0), 1), ((0,), None), ((0,), 0)]:
        cases[f"empty{shape},axis={axis}"] = Case(
            lambda x, a=axis: ops.Max(a)(x), lambda torch, x, a=axis: x.max() if a is None else x.amax(a),
            np.zeros(shape), raises=(ValueError, r"max: .*empty"))
    return cases


def shape_cases():
    x = np.array([SPECIAL[:6]]).reshape(2, 3)
    e = np.zeros((3, 0))
    reshape = {"special": Case(lambda t: ops.Reshape((3, 2))(t), lambda torch, t: t.reshape(3, 2), x),
               "empty": Case(lambda t: ops.Reshape((0, 3))(t), lambda torch, t: t.reshape(0, 3), e),
               "empty,-1": Case(lambda t: ops.Reshape((-1,))(t), lambda torch, t: t.reshape(-1), e),
               "empty,ambiguous": Case(lambda t: ops.Reshape((0, -1))(t), lambda torch, t: t.reshape(0, -1), e,
                                       raises=(ValueError, r"reshape: cannot reshape \(3, 0\)"))}
    transpose = {"special": Case(lambda t: ops.Transpose()(t), lambda torch, t: t.T, x),
                 "empty": Case(lambda t: ops.Transpose((1, 0))(t), lambda torch, t: t.permute(1, 0), e)}
    broadcast = {"special": Case(lambda t: ops.BroadcastTo((2, 2, 3))(t), lambda torch, t: t.broadcast_to(2, 2, 3),
                                 x),
                 "empty": Case(lambda t: ops.BroadcastTo((3, 0))(t), lambda torch, t: t.broadcast_to(3, 0),
                               np.zeros((1, 0))),
                 "to empty": Case(lambda t: ops.BroadcastTo((3, 0))(t), lambda torch, t: t.broadcast_to(3, 0),
                                  np.zeros((3, 1)))}
    return reshape, transpose, broadcast


def index_cases():
    x = np.array(SPECIAL)
    rep = np.array([0, 0, 3, 4, 4, 1])
    getitem = {"special": Case(lambda t: ops.GetItem(rep)(t), lambda torch, t: t[torch.tensor(rep)], x),
               "slice": Case(lambda t: ops.GetItem(slice(None, None, -2))(t), lambda torch, t: t.flip(0)[::2], x),
               "empty list": Case(lambda t: ops.GetItem([])(t), lambda torch, t: t[[]], x),
               "empty array": Case(lambda t: ops.GetItem(np.array([], dtype=int))(t),
                                   lambda torch, t: t[torch.tensor([], dtype=torch.long)], x),
               "of empty": Case(lambda t: ops.GetItem((slice(None), slice(0, 0)))(t), lambda torch, t: t[:, 0:0],
                                np.zeros((3, 2))),
               "row of empty": Case(lambda t: ops.GetItem(1)(t), lambda torch, t: t[1], np.zeros((3, 0)))}

    def torch_scatter(index, shape):
        def f(torch, t):
            base = torch.zeros(shape, dtype=t.dtype)
            return base.index_put((torch.tensor(index, dtype=torch.long),), t, accumulate=True)
        return f
    scatter = {"special": Case(lambda t: ops.Scatter(rep, (5,))(t), torch_scatter(rep, (5,)), x[:6]),
               "empty index": Case(lambda t: ops.Scatter(np.array([], dtype=int), (3,))(t),
                                   torch_scatter(np.array([], dtype=int), (3,)), np.zeros(0)),
               "into empty": Case(lambda t: ops.Scatter((slice(None), slice(0, 0)), (3, 0))(t),
                                  lambda torch, t: t * 1.0, np.zeros((3, 0)))}
    return getitem, scatter


def concatenate_cases():
    x = np.array(SPECIAL)
    return {"special": Case(lambda a, b: ops.Concatenate(0)(a, b), lambda torch, a, b: torch.cat([a, b]), x,
                            x[::-1].copy()),
            "empty": Case(lambda a, b: ops.Concatenate(1)(a, b), lambda torch, a, b: torch.cat([a, b], 1),
                          np.zeros((3, 0)), np.ones((3, 2))),
            "both empty": Case(lambda a, b: ops.Concatenate(0)(a, b), lambda torch, a, b: torch.cat([a, b]),
                               np.zeros(0), np.zeros(0))}


_reshape, _transpose, _broadcast = shape_cases()
_getitem, _scatter = index_cases()
PRIMITIVE_CASES = {
    "Add": binary(ops.Add, lambda torch, a, b: a + b),
    "Sub": binary(ops.Sub, lambda torch, a, b: a - b),
    "Mul": binary(ops.Mul, lambda torch, a, b: a * b),
    "Div": binary(ops.Div, lambda torch, a, b: a / b),
    "Neg": unary(ops.Neg, lambda torch, x: -x),
    "Pow": pow_cases(),
    "Exp": unary(ops.Exp, lambda torch, x: x.exp()),
    "Log": unary(ops.Log, lambda torch, x: x.log()),
    "Log1p": unary(ops.Log1p, lambda torch, x: x.log1p())
    | {"at -1": Case(lambda x: ops.Log1p()(x), lambda torch, x: x.log1p(), np.array([-1.0, -1e-300, 1e-300]))},
    "Sin": unary(ops.Sin, lambda torch, x: x.sin()),
    "Cos": unary(ops.Cos, lambda torch, x: x.cos()),
    "Cast": {f"to {np.dtype(to).name}{label}": Case(lambda x, to=to: ops.Cast(to)(x),
                                                    lambda torch, x, to=to: x.to(getattr(torch, np.dtype(to).name)), v)
             for to in (np.float32, np.float64)
             for label, v in [("", np.array(SPECIAL)), (", empty", np.zeros((3, 0)))]},
    "Tanh": unary(ops.Tanh, lambda torch, x: x.tanh()),
    "Abs": unary(ops.Abs, lambda torch, x: x.abs()),
    "Maximum": binary(ops.Maximum, lambda torch, a, b: torch.maximum(a, b)),
    "Where": where_cases(),
    "MatMul": matmul_cases(),
    "Sum": sum_cases(),
    "Max": max_cases(),
    "Reshape": _reshape,
    "Transpose": _transpose,
    "BroadcastTo": _broadcast,
    "GetItem": _getitem,
    "Scatter": _scatter,
    "Concatenate": concatenate_cases(),
}


def test_every_primitive_has_edge_cases():
    assert set(PRIMITIVE_CASES) == set(PRIMITIVES), \
        "add edge cases (NaN, inf, -0.0, empty) for each new primitive to PRIMITIVE_CASES"


def _ids(table):
    return [(f"{name}/{label}") for name, cases in sorted(table.items()) for label in cases]


def _case(table, case_id):
    name, label = case_id.split("/", 1)
    return table[name][label]


@pytest.mark.parametrize("case_id", _ids(PRIMITIVE_CASES))
def test_primitive_matches_torch(torch, case_id):
    check(torch, case_id, _case(PRIMITIVE_CASES, case_id))


def _float32(table):
    """The cases PyTorch judges directly (the documented differences carry float64 closed forms)."""
    return [case_id for case_id in _ids(table) if _case(table, case_id).expect is None
            and _case(table, case_id).raises is None]


@pytest.mark.parametrize("case_id", _float32(PRIMITIVE_CASES))
def test_primitive_matches_torch_in_float32(torch, case_id):
    check(torch, case_id, _case(PRIMITIVE_CASES, case_id), np.float32)


# ============================================================ the compositions

# columns of logits (classes are rows): masked -inf entries, all -inf, +inf, NaN, signed zeros, ordinary numbers
LOGITS = np.array([[-INF, -INF, INF, NAN, -INF, 0.0, -INF, INF, 1.0],
                   [0.5, 0.5, 0.5, 0.0, -INF, -0.0, -INF, INF, 2.0],
                   [1.0, 1.0, 1.0, 1.0, 0.0, 1.5, -INF, 0.0, 3.0]])
LABELS = np.array([1, 0, 0, 2, 2, 0, 1, 2, 1])
EMPTY_SHAPES = [(3, 0), (0,), (0, 3)]


def elementwise(ours, theirs, **kw):
    cases = {"special": Case(ours, theirs, np.array(SPECIAL), **kw)}
    for shape in EMPTY_SHAPES:
        cases[f"empty{shape}"] = Case(ours, theirs, np.zeros(shape))
    return cases


def softmax_like(ours, theirs):
    """ours(z, axis), theirs(torch, z, axis): over axis 0 of LOGITS and axis 1 of its transpose, and empty."""
    cases = {"axis=0": Case(lambda z: ours(z, 0), lambda torch, z: theirs(torch, z, 0), LOGITS),
             "axis=1": Case(lambda z: ours(z, 1), lambda torch, z: theirs(torch, z, 1), LOGITS.T.copy())}
    for shape, axis in [((3, 0), 0), ((3, 0), 1), ((0,), 0), ((0, 3), 0), ((0, 3), 1)]:
        cases[f"empty{shape},axis={axis}"] = Case(lambda z, a=axis: ours(z, a),
                                                  lambda torch, z, a=axis: theirs(torch, z, a), np.zeros(shape))
    return cases


def per_example(torch_sum):
    """Our costs average over the m columns: PyTorch's sum divided by m (NaN when m = 0, as a mean)."""
    def theirs(torch, *ts):
        return torch_sum(torch, *ts) / ts[0].shape[-1]
    return theirs


def _value_label(v):
    return "nan" if v != v else repr(v)


def bce_with_logits_cases():
    def ours(y):
        return lambda z: F.binary_cross_entropy_with_logits(z, y)

    def theirs(y):
        return per_example(lambda torch, z: torch.nn.functional.binary_cross_entropy_with_logits(
            z, torch.tensor(y, dtype=z.dtype), reduction="sum"))

    def limit(y):
        def f(torch, z):  # PyTorch's gradient (sigmoid(Z) - Y) / m; the value is the limit +inf of -Y log sigmoid(Z)
            _, grads = run_torch(torch, Case(None, theirs(y), z), upstream(()))
            return np.inf, grads
        return f
    cases = {}
    for v in SPECIAL:   # one case per value: a NaN column would hide the rest of the sum
        for y in [0.0, 1.0, 0.3, NAN, INF]:
            Z, Y = np.array([[v, 0.5]]), np.array([[y, 1.0]])
            label = f"z={_value_label(v)},y={_value_label(y)}"
            if v == -INF and y in (1.0, 0.3):
                cases[f"limit/{label}"] = Case(ours(Y), None, Z, expect=limit(Y))
            else:
                cases[label] = Case(ours(Y), theirs(Y), Z)
    cases["target needs grad"] = Case(
        lambda z, y: F.binary_cross_entropy_with_logits(z, y),
        per_example(lambda torch, z, y: torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="sum")),
        np.array([[0.0, -0.0, 2.0, INF]]), np.array([[0.3, 1.0, 0.0, 0.0]]))
    for shape in [(1, 0), (0, 3)]:
        y = np.zeros(shape)
        cases[f"empty{shape}"] = Case(ours(y), theirs(y), np.zeros(shape), value_zero_sign=False)
    return cases


def _bce_closed_form(A, Y):
    """J = -(1/m) sum(Y max(log A, -100) + (1 - Y) max(log(1 - A), -100)) and its derivative, in NumPy: a clamped
    side contributes nothing to the gradient; NaN propagates."""
    m = A.shape[-1]
    with np.errstate(all="ignore"):
        log_A, log_1mA = np.log(A), np.log1p(-A)
        J = -np.sum(Y * np.maximum(log_A, -100.0) + (1 - Y) * np.maximum(log_1mA, -100.0)) / m
        dA = -(np.where(log_A <= -100, 0.0, Y / A) - np.where(log_1mA <= -100, 0.0, (1 - Y) / (1 - A))) / m
    return J, dA


def test_bce_closed_form_is_torch_where_torch_is_exact(torch):
    """The NumPy oracle of the documented differences agrees with PyTorch wherever PyTorch accepts the input and
    its gradient formula is exact (A (1 - A) >= 1e-12)."""
    A = np.array([[0.0, 1.0, 1e-300, 0.5, 0.25, 1e-5, 1 - 1e-5, 0.9]] * 3)
    Y = np.array([[0.0] * 8, [1.0] * 8, [0.3] * 8])
    J, dA = _bce_closed_form(A, Y)
    At = torch.tensor(A, requires_grad=True)
    want = torch.nn.functional.binary_cross_entropy(At, torch.tensor(Y), reduction="sum") / A.shape[1]
    want.backward()
    assert J == pytest.approx(want.item(), rel=1e-12)
    exact = A * (1 - A) >= 1e-12
    np.testing.assert_allclose(dA[exact], At.grad.numpy()[exact], rtol=1e-12)


def bce_cases():
    def expect(y):
        def f(torch, a):
            J, dA = _bce_closed_form(a, y)
            return J, [dA * upstream(())]
        return f

    def theirs(y):
        return per_example(lambda torch, a: torch.nn.functional.binary_cross_entropy(
            a, torch.tensor(y, dtype=a.dtype), reduction="sum"))
    cases = {}
    for v in [NAN, 0.0, -0.0, 1.0, 1e-300, 1 - 1e-16, 0.25]:
        for y in [0.0, 1.0, 0.3]:
            A, Y = np.array([[v, 0.5]]), np.array([[y, 1.0]])
            label = f"a={_value_label(v)},y={_value_label(y)}"
            if v != v:
                cases[f"nan/{label}"] = Case(lambda a, Y=Y: F.binary_cross_entropy(a, Y), None, A, expect=expect(Y))
            elif v * (1 - v) < 1e-12:  # (the sign of a zero gradient on a clamped side means nothing)
                cases[f"saturated/{label}"] = Case(lambda a, Y=Y: F.binary_cross_entropy(a, Y), None, A,
                                                   expect=expect(Y), grad_zero_sign=False)
            else:
                cases[label] = Case(lambda a, Y=Y: F.binary_cross_entropy(a, Y), theirs(Y), A)
    cases["nan beside out of range"] = Case(lambda a: F.binary_cross_entropy(a, np.ones((1, 2))), None,
                                            np.array([[NAN, 1.5]]), raises=(ValueError, r"max 1\.5"))
    for shape in [(1, 0), (0, 3)]:
        y = np.zeros(shape)
        cases[f"empty{shape}"] = Case(lambda a, y=y: F.binary_cross_entropy(a, y), theirs(y), np.zeros(shape),
                                      value_zero_sign=False)
    return cases


def cross_entropy_cases():
    def ce(torch, z, labels):
        return torch.nn.functional.cross_entropy(z.T, torch.tensor(labels), reduction="sum")
    ordinary = np.array([0.5, -1.0, 2.0])
    cases = {}
    for j, label in enumerate(LABELS):   # one case per column of LOGITS, beside an ordinary column
        Z = np.stack([LOGITS[:, j], ordinary], axis=1)
        labels = np.array([label, 2])
        one_hot = np.eye(3)[labels].T.copy()
        cases[f"labels/{j}"] = Case(lambda z, l=labels: F.cross_entropy(z, l),
                                    per_example(lambda torch, z, l=labels: ce(torch, z, l)), Z)
        cases[f"one-hot/{j}"] = Case(lambda z, y=one_hot: F.cross_entropy(z, y),
                                     per_example(lambda torch, z, l=labels: ce(torch, z, l)), Z)
    soft = np.array([[0.0, 0.0, 0.0, 0.2, 0.0, 0.2, 0.0, 0.0, 0.3],
                     [0.6, 0.5, 0.0, 0.2, 0.0, 0.3, 1.0, 0.5, 0.3],
                     [0.4, 0.5, 1.0, 0.6, 1.0, 0.5, 0.0, 0.5, 0.4]])

    def soft_oracle(y):
        def f(torch, z):   # the definition with 0 log 0 = 0, in PyTorch
            Zt = torch.tensor(z, requires_grad=True)
            Yt = torch.tensor(y)
            J = -torch.where(Yt != 0, Yt * torch.log_softmax(Zt, 0), 0.0).sum() / z.shape[1]
            J.backward(torch.tensor(upstream(())))
            return J.detach().numpy(), [Zt.grad.numpy()]
        return f
    for j in range(LOGITS.shape[1]):
        Z = np.stack([LOGITS[:, j], ordinary], axis=1)
        Y = np.stack([soft[:, j], [0.2, 0.3, 0.5]], axis=1)
        cases[f"soft/{j}"] = Case(lambda z, y=Y: F.cross_entropy(z, y), None, Z, expect=soft_oracle(Y))
        cases[f"target needs grad/{j}"] = Case(
            lambda z, y: F.cross_entropy(z, y),
            per_example(lambda torch, z, y: torch.nn.functional.cross_entropy(z.T, y.T, reduction="sum")), Z, Y)
    cases["empty(3, 0)"] = Case(lambda z: F.cross_entropy(z, np.zeros(0, int)),
                                per_example(lambda torch, z: ce(torch, z, np.zeros(0, int))), np.zeros((3, 0)))
    cases["no classes"] = Case(lambda z: F.cross_entropy(z, np.zeros(2, int)),
                               lambda torch, z: ce(torch, z, np.zeros(2, int)), np.zeros((0, 2)),
                               raises=(ValueError, r"cross_entropy: Z has shape \(0, 2\), no classes"))
    cases["one-row"] = Case(lambda z: F.cross_entropy(z, np.zeros(2, int)),
                            lambda torch, z: ce(torch, z, np.zeros(2, int)), np.ones((1, 2)),
                            raises=(ValueError, r"cross_entropy: Z has shape \(1, 2\), one class.*"
                                                r"binary_cross_entropy_with_logits"))
    return cases


def mse_cases():
    def theirs(y):
        return per_example(lambda torch, a: torch.nn.functional.mse_loss(a, torch.tensor(y, dtype=a.dtype),
                                                                         reduction="sum"))
    cases = {}
    for a in SPECIAL:
        for y in SPECIAL:
            A, Y = np.array([[a, 1.0]]), np.array([[y, 0.5]])
            cases[f"a={_value_label(a)},y={_value_label(y)}"] = Case(lambda t, Y=Y: F.mse(t, Y), theirs(Y), A)
    cases["target needs grad"] = Case(lambda a, y: F.mse(a, y), per_example(
        lambda torch, a, y: torch.nn.functional.mse_loss(a, y, reduction="sum")),
        np.array([[0.0, -0.0, 1.5, 2.0]]), np.array([[-0.0, 0.0, 1.5, -1.0]]),
        grad_zero_sign=False)  # -(2 (A - Y)) at A = Y: the sign of that zero is an accident of the formula
    for shape in [(1, 0), (0, 3)]:
        y = np.zeros(shape)
        cases[f"empty{shape}"] = Case(lambda a, y=y: F.mse(a, y), theirs(y), np.zeros(shape))
    return cases


def l2_cases():
    W2 = np.array([[1.0, -0.0, 2.0]])
    ours = lambda *ws: F.l2_penalty(list(ws), 0.3, 5)  # noqa: E731
    theirs = lambda torch, *ws: sum((w * w).sum() for w in ws) * (0.3 / 10)  # noqa: E731
    cases = {f"w={_value_label(v)}": Case(ours, theirs, np.array([[v, 1.5]]), W2) for v in SPECIAL}
    cases["empty"] = Case(ours, theirs, np.zeros((3, 0)), W2)
    return cases


def dropout_cases():
    mask = np.array([True, False, True, False, True, False, True])
    ours = lambda m: (lambda a: F.dropout(a, 0.8, mask=m))  # noqa: E731
    theirs = lambda m: (lambda torch, a: a * torch.tensor(m) / 0.8)  # noqa: E731
    cases = {"special": Case(ours(mask), theirs(mask), np.array(SPECIAL)),
             "special, dropped": Case(ours(~mask), theirs(~mask), np.array(SPECIAL))}
    for shape in EMPTY_SHAPES:
        cases[f"empty{shape}"] = Case(ours(np.zeros(shape, bool)), theirs(np.zeros(shape, bool)), np.zeros(shape))
    return cases


def logsumexp_cases():
    cases = {}
    for keep in [False, True]:
        cases[f"axis=0,keepdims={keep}"] = Case(lambda z, k=keep: F.logsumexp(z, 0, k),
                                                lambda torch, z, k=keep: z.logsumexp(0, keepdim=k), LOGITS)
    cases["axis=1"] = Case(lambda z: F.logsumexp(z, 1), lambda torch, z: z.logsumexp(1), LOGITS.T.copy())
    for shape, axis in [((3, 0), 0), ((3, 0), 1), ((0,), 0), ((0, 3), 0), ((0, 3), 1)]:
        cases[f"empty{shape},axis={axis}"] = Case(lambda z, a=axis: F.logsumexp(z, a),
                                                  lambda torch, z, a=axis: z.logsumexp(a), np.zeros(shape))
    return cases


COMPOSITION_CASES = {
    "sigmoid": elementwise(F.sigmoid, lambda torch, z: torch.sigmoid(z)),
    "tanh": elementwise(F.tanh, lambda torch, z: torch.tanh(z)),
    "relu": elementwise(F.relu, lambda torch, z: torch.relu(z),
                        value_zero_sign=False),  # torch's relu(-0.0) is -0.0, ours +0.0: max(0, -0) is either
    "leaky_relu": elementwise(lambda z: F.leaky_relu(z, 0.01),
                              lambda torch, z: torch.nn.functional.leaky_relu(z, 0.01)),
    "softplus": elementwise(F.softplus, lambda torch, z: torch.nn.functional.softplus(z)),
    "softmax": softmax_like(F.softmax, lambda torch, z, a: torch.softmax(z, a)),
    "log_softmax": softmax_like(F.log_softmax, lambda torch, z, a: torch.log_softmax(z, a)),
    "logsumexp": logsumexp_cases(),
    "binary_cross_entropy": bce_cases(),
    "binary_cross_entropy_with_logits": bce_with_logits_cases(),
    "cross_entropy": cross_entropy_cases(),
    "mse": mse_cases(),
    "l2_penalty": l2_cases(),
    "dropout": dropout_cases(),
}
def _composed_var(power):
    """var (power 1) or std (power 0.5) over axis 1 as the composition we differentiate, through PyTorch."""
    def expect(torch, x):
        t = torch.tensor(x, requires_grad=True)
        v = ((t - t.mean(1, keepdim=True)) ** 2).sum(1) / x.shape[1]
        out = v ** power if power != 1 else v
        out.backward(torch.tensor(upstream(out.shape)))
        return out.detach().numpy(), [t.grad.numpy()]
    return expect


# compositions the Tensor offers (defined next to the primitives, no derivative of their own)
TENSOR_CASES = {
    "mean": {f"empty{shape},axis={axis}": Case(lambda x, a=axis: x.mean(a),
                                               lambda torch, x, a=axis: x.mean() if a is None else x.mean(a),
                                               np.zeros(shape))
             for shape, axis in [((3, 0), None), ((3, 0), 0), ((3, 0), 1), ((0,), None), ((0, 3), 1)]}
    | {"special": Case(lambda x: x.mean(1), lambda torch, x: x.mean(1), REDUCE)},
    # -max(-a, -b): an empty sum of a broadcast gradient, negated, is -0.0 (torch: +0.0)
    "minimum": binary(lambda: dl.minimum, lambda torch, a, b: torch.minimum(a, b), empty_grad_zero_sign=False),
    "sqrt": unary(lambda: dl.Tensor.sqrt, lambda torch, x: x.sqrt()),
    "min": {"axis=None": Case(lambda x: x.min(), lambda torch, x: x.min(), REDUCE[:2], value_zero_sign=False),
            "axis=0": Case(lambda x: x.min(0), lambda torch, x: x.amin(0), REDUCE[1:], value_zero_sign=False),
            "empty": Case(lambda x: x.min(0), lambda torch, x: x.amin(0), np.zeros((3, 0)))},
    "var": {"axis=1": Case(lambda x: x.var(1), lambda torch, x: x.var(1, correction=0), REDUCE[[0, 2, 3, 4, 5]]),
            "infinite": Case(lambda x: x.var(1), None, REDUCE, expect=_composed_var(1)),
            "empty": Case(lambda x: x.var(1), lambda torch, x: x.var(1, correction=0), np.zeros((3, 0))),
            "one element": Case(lambda x: x.var(1, ddof=1), lambda torch, x: x.var(1), np.ones((3, 1)))},
    "std": {"axis=1": Case(lambda x: x.std(1), lambda torch, x: x.std(1, correction=0), REDUCE[[0, 2, 3, 4, 5]]),
            "infinite": Case(lambda x: x.std(1), None, REDUCE, expect=_composed_var(0.5)),
            "empty": Case(lambda x: x.std(1), lambda torch, x: x.std(1, correction=0), np.zeros((3, 0)))},
    "clip": {"special": Case(lambda x: x.clip(-1.0, 1.0), lambda torch, x: x.clamp(-1.0, 1.0),
                             np.array(SPECIAL[1:] + [1.0, -1.0])),
             "nan": Case(lambda x: x.clip(-1.0, 1.0), lambda torch, x: x.clamp(-1.0, 1.0),
                         np.array([NAN, 0.5, 2.0])),
             "empty": Case(lambda x: x.clip(-1.0, 1.0), lambda torch, x: x.clamp(-1.0, 1.0), np.zeros((3, 0)))},
}


def test_every_composition_has_edge_cases():
    assert set(COMPOSITION_CASES) == set(F.__all__)


def test_differences_are_documented():
    """Every documented difference names cases that exist; a case compares with PyTorch directly unless it is
    one of them."""
    tables = (PRIMITIVE_CASES, COMPOSITION_CASES, TENSOR_CASES)
    ids = [(table, case_id) for table in tables for case_id in _ids(table)]
    for prefix in DIFFERENCES:
        assert any(case_id.startswith(prefix) for _, case_id in ids), prefix
    for table, case_id in ids:
        case = _case(table, case_id)
        if case.raises is None:
            assert (case.expect is not None) == case_id.startswith(tuple(DIFFERENCES)), case_id


@pytest.mark.parametrize("case_id", _ids(COMPOSITION_CASES))
def test_composition_matches_torch(torch, case_id):
    check(torch, case_id, _case(COMPOSITION_CASES, case_id))


@pytest.mark.parametrize("case_id", _ids(TENSOR_CASES))
def test_tensor_method_matches_torch(torch, case_id):
    check(torch, case_id, _case(TENSOR_CASES, case_id))


@pytest.mark.parametrize("case_id", _float32(COMPOSITION_CASES) + [f"Tensor.{i}" for i in _float32(TENSOR_CASES)])
def test_composition_matches_torch_in_float32(torch, case_id):
    table = TENSOR_CASES if case_id.startswith("Tensor.") else COMPOSITION_CASES
    case_id = case_id.removeprefix("Tensor.")
    check(torch, case_id, _case(table, case_id), np.float32)
