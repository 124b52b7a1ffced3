"""dl.gradcheck (course notes §3.2.3): a correct network passes (float32 too: the check runs in float64), a planted
wrong derivative is caught and located, NaN and inf never pass, parameters and users' .grad come back bit for bit,
and a notebook shows the report with the verdict coloured."""
import html
import re
import warnings
from html.parser import HTMLParser

import numpy as np
import pytest

import tinygrad_dl as dl
from tinygrad_dl.gradcheck import gradcheck, verdict

M = 7


def network(seed=0, dtype=np.float64):
    """A 2-layer tanh/sigmoid network with its data, cost written with Tensor operations only."""
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(4, M)), (rng.random((1, M)) < 0.5).astype(float)
    shapes = {"W1": (5, 4), "b1": (5, 1), "W2": (1, 5), "b2": (1, 1)}
    P = {k: dl.Tensor(rng.normal(size=s) * 0.8, requires_grad=True, dtype=dtype, name=k) for k, s in shapes.items()}

    def cost(keep_prob=1.0, rng=None):
        A1 = (P["W1"] @ X.astype(dtype) + P["b1"]).tanh()
        if keep_prob < 1:
            A1 = A1 * ((rng.random(A1.shape) < keep_prob) / keep_prob).astype(dtype)
        A2 = 1 / (1 + (-(P["W2"] @ A1 + P["b2"])).exp())
        return -(Y * A2.log() + (1 - Y) * (1 - A2).log()).sum() / M

    return P, X, Y, cost


def course_backprop(P, X, Y):
    """The course's hand-written backprop for the same network (§2.3): dZ2 = A2 - Y, dW = dZ A_prev^T / m, ..."""
    W1, b1, W2, b2 = (P[k].data for k in ("W1", "b1", "W2", "b2"))
    A1 = np.tanh(W1 @ X + b1)
    A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
    dZ2 = A2 - Y
    dZ1 = W2.T @ dZ2 * (1 - A1 ** 2)
    return {"W1": dZ1 @ X.T / M, "b1": dZ1.sum(1, keepdims=True) / M, "W2": dZ2 @ A1.T / M,
            "b2": dZ2.sum(1, keepdims=True) / M}


def test_a_correct_network_passes():
    P, X, Y, cost = network()
    res = gradcheck(cost, list(P.values()))
    assert res.ok and res.difference < 1e-7 and res.verdict.startswith("great")
    assert [c.name for c in res.breakdown] == ["W1", "b1", "W2", "b2"]
    expected = course_backprop(P, X, Y)
    for c in res.breakdown:
        assert c.shape == P[c.name].shape and c.difference < 1e-7
        np.testing.assert_allclose(c.backprop, expected[c.name], rtol=1e-12, atol=1e-15)   # dθ: the course's
        np.testing.assert_allclose(c.numeric, expected[c.name], rtol=1e-5, atol=1e-8)      # dθ≈: close to it
    theta = np.concatenate([expected[k].ravel() for k in ("W1", "b1", "W2", "b2")])
    np.testing.assert_allclose(res.backprop, theta, rtol=1e-12, atol=1e-15)
    diff = np.linalg.norm(res.numeric - theta) / (np.linalg.norm(res.numeric) + np.linalg.norm(theta))
    assert res.difference == pytest.approx(diff, rel=1e-6)
    assert bool(res) and "great" in str(res) and "W1 (5, 4)" in str(res)


class BadSquare(dl.Function):
    """y = x**2;  dy/dx = 2x  -- but the backward below says 3x: a planted bug."""

    def forward(self, x):
        return x * x

    def backward(self, grad, out, x):
        return (grad * x * 3,)


def test_a_planted_wrong_derivative_is_caught_and_located():
    P, X, Y, cost = network()
    c = dl.Tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True, name="c")
    res = gradcheck(lambda: cost() + BadSquare.apply(c).sum() / 10, list(P.values()) + [c])
    assert not res.ok and res.difference > 1e-3 and res.verdict.startswith("likely a bug")
    worst = res.worst
    assert worst.name == "c" and worst.position == 4 and worst.difference == pytest.approx(0.2, rel=1e-5)
    for check in res.breakdown[:4]:
        assert check.difference < 1e-7, check.name                  # the innocent parameters are cleared
    (idx, num, bp), *_ = worst.worst
    assert idx == (0, 2) and num == pytest.approx(2 * 2.0 / 10, rel=1e-6) and bp == pytest.approx(3 * 2.0 / 10)
    report = str(res)
    assert "c (1, 3): difference 2.000e-01  <-- largest" in report and "[0, 2]" in report


def test_parameters_and_user_grads_come_back_bit_for_bit():
    P, X, Y, cost = network()
    P["W1"].data[0, :3] = [-0.0, 1 / 3, 5e-324]                      # signed zero, a repeating binary, a subnormal
    before = {k: p.data.tobytes() for k, p in P.items()}
    data_ids = {k: id(p.data) for k, p in P.items()}
    user_grad = np.full((5, 4), 42.0)
    P["W1"].grad = user_grad
    gradcheck(cost, list(P.values()))
    assert all(P[k].data.tobytes() == before[k] and id(P[k].data) == data_ids[k] for k in P)
    assert P["W1"].grad is user_grad and np.all(user_grad == 42.0)   # not accumulated into
    assert P["b1"].grad is None and P["W2"].grad is None


def test_a_graph_built_before_the_check_still_backpropagates():
    P, X, Y, cost = network(dtype=np.float32)
    J = cost()                                         # built before the check, backpropagated after it
    gradcheck(cost, list(P.values()))
    J.backward()
    expected = course_backprop({k: dl.Tensor(p.data.astype(np.float64)) for k, p in P.items()},
                               X.astype(np.float32).astype(np.float64), Y)
    for k, p in P.items():
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad, expected[k], rtol=1e-4, atol=1e-6)


def test_restored_even_when_f_raises_midway():
    P, X, Y, cost = network()
    before = {k: p.data.tobytes() for k, p in P.items()}
    calls = []

    def f():
        calls.append(1)
        if len(calls) == 9:
            raise RuntimeError("boom")
        return cost()

    with pytest.raises(RuntimeError, match="boom"):
        gradcheck(f, list(P.values()))
    assert all(P[k].data.tobytes() == before[k] for k in P) and all(p.grad is None for p in P.values())


def test_float32_parameters_are_checked_in_float64_and_come_back_bit_for_bit():
    P, X, Y, cost = network(dtype=np.float32)
    P["W1"].data[0, :3] = np.array([-0.0, 1 / 3, 1e-45], dtype=np.float32)   # signed zero, rounding, a subnormal
    before = {k: (p.data.tobytes(), id(p.data)) for k, p in P.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                      # no warning: nothing to warn about
        res = gradcheck(cost, list(P.values()))                             # the default eps = 1e-7
    assert res.ok and res.verdict.startswith("great"), str(res)
    assert "checked in float64 (parameters in float32 were cast for the check)" in str(res)
    for k, p in P.items():
        assert p.dtype == np.float32 and (p.data.tobytes(), id(p.data)) == before[k] and p.grad is None
    # the check is of the float64 derivative at the float32 parameters' values: the course's formulas agree
    expected = course_backprop({k: dl.Tensor(p.data.astype(np.float64)) for k, p in P.items()},
                               X.astype(np.float32).astype(np.float64), Y)
    for c in res.breakdown:
        assert c.dtype == "float32"
        np.testing.assert_allclose(c.backprop, expected[c.name], rtol=1e-12, atol=1e-15)


def test_a_bug_in_float32_is_still_caught():
    P, X, Y, cost = network(dtype=np.float32)
    c = dl.Tensor(np.array([[0.5, -1.0, 2.0]], dtype=np.float32), requires_grad=True, name="c")
    res = gradcheck(lambda: cost() + BadSquare.apply(c).sum() / 10, list(P.values()) + [c])
    assert not res.ok and res.verdict.startswith("likely a bug") and res.worst.name == "c"
    assert all(check.difference < 1e-7 for check in res.breakdown[:4])
    assert c.dtype == np.float32 and all(p.dtype == np.float32 for p in P.values())


def test_a_float32_module_is_checked_in_float64():
    rng = np.random.default_rng(3)
    model = dl.nn.Sequential(dl.nn.Dense(4, 5, rng=rng, dtype=np.float32), dl.nn.Tanh(),
                             dl.nn.Dense(5, 1, rng=rng, dtype=np.float32))
    X = rng.normal(size=(4, 6)).astype(np.float32)
    Y = (rng.random((1, 6)) < 0.5).astype(np.float32)
    before = {name: p.data.tobytes() for name, p in model.named_parameters()}
    res = gradcheck(lambda: dl.functional.binary_cross_entropy_with_logits(model(X), Y), model)
    assert res.ok and res.difference < 1e-7, str(res)
    assert all(p.dtype == np.float32 and p.data.tobytes() == before[n] for n, p in model.named_parameters())


class ToFloat32(dl.Function):
    """y = x rounded to float32;  dy/dx = 1 (a cast, which a float64 check cannot see through)"""

    def forward(self, x):
        return x.astype(np.float32)

    def backward(self, grad, out, x):
        return (grad,)


@pytest.mark.parametrize("cast, op", [(lambda t: t.astype(np.float32), "Cast"), (ToFloat32.apply, "ToFloat32")])
def test_when_f_computes_in_float32_anyway_the_warning_says_why(cast, op):
    P, X, Y, cost = network(dtype=np.float32)
    with pytest.warns(RuntimeWarning, match=rf"f computes in lower precision even with float64 parameters "
                                            rf"\({op} gives float32\), so this check cannot run in float64"):
        res = gradcheck(lambda: cast(cost()), list(P.values()), eps=1e-3)
    assert f"{op} gives float32" in res.note and "note: f computes in lower precision" in str(res)
    assert all(p.dtype == np.float32 for p in P.values())


def test_restored_with_their_dtype_even_when_f_raises():
    P, X, Y, cost = network(dtype=np.float32)
    before = {k: (p.data.tobytes(), id(p.data)) for k, p in P.items()}
    calls = []

    def f():
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt                      # not even an Exception: restored all the same
        return cost()

    with pytest.raises(KeyboardInterrupt):
        gradcheck(f, list(P.values()))
    assert all(p.dtype == np.float32 and (p.data.tobytes(), id(p.data)) == before[k] for k, p in P.items())


# --- NaN and inf never pass ---------------------------------------------------------------------------------

class SquareWith(dl.Function):
    """y = x**2 with a backward of 2x times `factor` (NaN or inf planted)."""
    factor = np.nan

    def forward(self, x):
        return x * x

    def backward(self, grad, out, x):
        return (grad * x * (2 * self.factor),)


@pytest.mark.parametrize("factor", [np.nan, np.inf, -np.inf])
def test_a_nan_or_inf_backward_fails_with_a_nan_verdict(factor):
    P, X, Y, cost = network()
    c = dl.Tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True, name="c")
    planted = type("Planted", (SquareWith,), {"factor": factor})
    res = gradcheck(lambda: cost() + planted.apply(c).sum(), list(P.values()) + [c])
    assert not res.ok and not bool(res) and np.isnan(res.difference)
    assert res.verdict.startswith("NaN") and "great" not in res.verdict
    assert res.worst.name == "c" and np.isnan(res.worst.difference)
    assert all(check.difference < 1e-7 for check in res.breakdown[:4])          # the others are still cleared
    kind = "NaN" if np.isnan(factor) else "inf"
    assert res.worst.nonfinite() == f"backprop has 3 {kind}"
    assert f"c (1, 3): difference nan  <-- largest  (backprop has 3 {kind})" in str(res)
    assert repr(res) == "GradcheckResult(difference=nan, verdict='NaN', ok=False)"


def test_a_nan_cost_fails_with_a_nan_verdict():
    P, X, Y, cost = network()
    X[0, 2] = np.nan                                     # the data behind the cost holds a NaN
    res = gradcheck(cost, list(P.values()))
    assert not res.ok and res.verdict.startswith("NaN") and np.isnan(res.cost)
    assert "the cost J itself is nan at the parameters' values" in str(res)
    assert "numeric has" in res.breakdown[0].nonfinite() and "backprop has" in res.breakdown[0].nonfinite()


def test_an_inf_difference_against_a_finite_backprop_fails():
    class Jump(dl.Function):
        """y = x below 0 and +inf above, with a backward of 1: the differences at 0 are inf."""

        def forward(self, x):
            return np.where(x > 0, np.inf, x)

        def backward(self, grad, out, x):
            return (grad,)

    c = dl.Tensor(np.array([-1.0, 0.0]), requires_grad=True, name="c")
    res = gradcheck(lambda: Jump.apply(c).sum(), [c])
    assert not res.ok and res.verdict.startswith("NaN")
    assert res.breakdown[0].nonfinite() == "numeric has 1 inf"
    assert res.breakdown[0].worst[0][:2] == ((1,), np.inf)          # the inf element is listed first


def test_the_difference_of_huge_or_tiny_finite_gradients_is_finite():
    from tinygrad_dl.gradcheck import _relative
    a = np.array([3e300, -2e300])
    assert _relative(a, a) == 0.0 and _relative(a, a * (1 + 1e-9)) == pytest.approx(5e-10, rel=1e-3)
    b = np.array([3e-320, 1e-310])
    assert _relative(b, 2 * b) == pytest.approx(1 / 3, rel=1e-3)
    assert _relative(np.zeros(2), np.zeros(2)) == 0.0
    assert np.isnan(_relative(np.array([1.0, np.inf]), np.array([1.0, np.inf])))


# --- display ------------------------------------------------------------------------------------------------

def test_repr_is_one_short_line_and_the_report_is_the_pretty_form():
    P, X, Y, cost = network()
    res = gradcheck(cost, list(P.values()))
    text = repr(res)
    assert re.fullmatch(r"GradcheckResult\(difference=\d(\.\d)?e-\d\d, verdict='great', ok=True\)", text), text
    assert float(text.split("=")[1].split(",")[0]) == pytest.approx(res.difference, rel=0.06)
    assert re.fullmatch(r"ParameterCheck\(name='W1', shape=\(5, 4\), difference=\S+\)", repr(res.breakdown[0]))

    class Printer:                                        # IPython's pretty printer, as far as it is used
        def __init__(self):
            self.out = []

        def text(self, s):
            self.out.append(s)

    printer = Printer()
    res._repr_pretty_(printer, cycle=False)
    assert printer.out == [res.report()] and str(res) == res.report()


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.styles = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.styles += [v for k, v in attrs if k == "style"]

    def handle_data(self, data):
        self.text.append(data)


HOSTILE = ["</script><script>alert(1)</script>", "<b>bold</b>", "a \"quoted\" 'name' & <!-- x -->", "C:\\Net\\Go"]


def test_html_shows_the_report_escaped_with_the_verdict_coloured():
    P, X, Y, cost = network()
    c = dl.Tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True)
    params = list(P.values()) + [c]
    for p, name in zip(params, HOSTILE + ["c"]):
        p.name = name
    res = gradcheck(lambda: cost() + BadSquare.apply(c).sum() / 10, params)
    page = _Page()
    page.feed(res._repr_html_())
    page.close()
    assert set(page.tags) <= {"div", "p", "b", "span", "table", "thead", "tbody", "tr", "th", "td", "code", "br"}
    assert page.tags.count("b") == 1 and "script" not in page.tags             # only our own bold title
    text = "".join(page.text)
    for name in HOSTILE:
        assert name in text                                                     # shown as text, intact
    assert "likely a bug (> 1e-3)" in text and "(5, 4)" in text
    assert "color:#b91c1c;font-weight:bold" in page.styles                     # red verdict
    for name in HOSTILE[:3]:
        assert name not in res._repr_html_()                                    # raw markup never appears


@pytest.mark.parametrize("difference, colour", [(3e-9, "#1a7f37"), (2e-4, "#c2410c"), (0.2, "#b91c1c"),
                                                (float("nan"), "#b91c1c")])
def test_verdict_colours(difference, colour):
    from tinygrad_dl.gradcheck import GradcheckResult
    res = GradcheckResult(difference=difference, threshold=1e-7, eps=1e-7, breakdown=[], numeric=np.zeros(1),
                          backprop=np.zeros(1))
    want = f'<span style="color:{colour};font-weight:bold">{html.escape(verdict(difference))}</span>'
    assert want in res._repr_html_()


def test_dropout_needs_a_fixed_mask():
    P, X, Y, cost = network()
    shared = np.random.default_rng(0)
    with pytest.warns(RuntimeWarning, match="not deterministic"):
        bad = gradcheck(lambda: cost(keep_prob=0.7, rng=shared), list(P.values()))
    assert not bad.ok
    # the documented fix: re-create the generator inside f, so every call draws the same mask
    good = gradcheck(lambda: cost(keep_prob=0.7, rng=np.random.default_rng(0)), list(P.values()))
    assert good.ok


def test_unused_parameter_module_names_and_errors():
    P, X, Y, cost = network()
    unused = dl.Tensor(np.ones((2, 2)), requires_grad=True)

    class Net:
        def named_parameters(self):
            return [("layer1.W", P["W1"]), ("spare", unused)]

    res = gradcheck(cost, Net())
    assert [c.name for c in res.breakdown] == ["layer1.W", "spare"]
    assert res.breakdown[1].difference == 0.0 and not res.breakdown[1].backprop.any()
    assert gradcheck(cost, [P["b2"], dl.Tensor(np.zeros(1), requires_grad=True)]).breakdown[1].name == "params[1]"
    with pytest.raises(ValueError, match="scalar cost"):
        gradcheck(lambda: P["W1"] * 2, [P["W1"]])
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda: 1.0, [P["W1"]])
    with pytest.raises(ValueError, match=r"params\[0\] \(shape \(2,\)\) does not require grad"):
        gradcheck(cost, [dl.Tensor(np.ones(2))])
    with pytest.raises(ValueError, match="eps"):
        gradcheck(cost, [P["W1"]], eps=0)
    for bad in (0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="threshold must be a finite number > 0"):
            gradcheck(cost, [P["W1"]], threshold=bad)
    with pytest.raises(ValueError, match="every parameter is empty"):
        gradcheck(cost, [dl.Tensor(np.zeros((0, 3)), requires_grad=True)])
    with pytest.raises(ValueError, match=r"parameter big: finite_differences: eps = 1e-07 is too small"):
        big = dl.Tensor(np.array([1e12]), requires_grad=True, name="big")
        gradcheck(lambda: (big * 2).sum(), [big])


def test_verdict_thresholds():
    assert verdict(3e-8).startswith("great")
    assert verdict(2e-6).startswith("fine")
    assert verdict(2e-4).startswith("suspicious")
    assert verdict(2e-2).startswith("likely a bug")
    assert verdict(1e-3).startswith("suspicious")
    for broken in (float("nan"), float("inf")):
        assert verdict(broken).startswith("NaN: the cost or a gradient is NaN or inf")


def test_a_non_number_eps_is_a_clear_error():
    W = dl.Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises((TypeError, ValueError), match="gradcheck: eps must be"):
        dl.gradcheck(lambda: (W * W).sum(), [W], eps="x")
