"""tinygrad_dl.testing: the checkers fail on every wrong gradient, NaN and inf included; the one finite-difference
routine divides by the step actually taken; the strategies draw only what the library accepts and, without
Hypothesis, say how to install it."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import find, given, settings, strategies as st

import tinygrad_dl as dl
from tinygrad_dl.testing import (assert_grad_close, assert_second_order_close, broadcastable_shapes,
                                 finite_differences, numerical_grad)

ROOT = Path(__file__).resolve().parents[1]
X = np.array([[0.5, -1.5, 2.0], [1.0, 0.25, -0.75]])


def square_with(backward_factor):
    """y = x**2 whose backward returns grad * 2x * backward_factor (1 is correct; NaN or inf are planted)."""
    class Square(dl.Function):
        def forward(self, x):
            return x * x

        def backward(self, grad, out, x):
            return (grad * x * (2 * backward_factor),)
    return Square


# --- NaN and inf fail every check ---------------------------------------------------------------------------

def test_a_correct_backward_passes_both_checks():
    f = lambda t: square_with(1.0)()(t)  # noqa: E731
    assert_grad_close(f, [X])
    assert_second_order_close(f, [X])


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # inf - inf inside grad-of-grad
@pytest.mark.parametrize("factor, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_a_backward_returning_nan_or_inf_fails_and_says_where(factor, shown):
    f = lambda t: square_with(factor)()(t)  # noqa: E731
    with pytest.raises(AssertionError) as first:
        assert_grad_close(f, [X])
    msg = str(first.value)
    assert msg.startswith("input 0: 6 of 6 elements are NaN or inf; first at index (0, 0) (input value 0.5)"), msg
    assert f"backprop gives {shown} (backprop {shown}, numerical " in msg
    assert float(msg.split("numerical ")[-1].rstrip(")")) == pytest.approx(1.0, rel=1e-6)   # d(x^2)/dx at 0.5
    with pytest.raises(AssertionError, match=r"input 0 \(second order\): .* NaN or inf; first at index \(0, 0\)"):
        assert_second_order_close(f, [X])


def test_only_one_nan_element_is_enough():
    class OneNaN(dl.Function):
        def forward(self, x):
            return x * x

        def backward(self, grad, out, x):
            hole = np.zeros(x.shape)
            hole[1, 2] = np.nan
            return (grad * x * 2 + hole,)

    with pytest.raises(AssertionError, match=r"1 of 6 elements are NaN or inf; first at index \(1, 2\) "
                                             r"\(input value -0.75\): backprop gives nan"):
        assert_grad_close(lambda t: OneNaN()(t), [X])


def test_a_nan_only_in_the_second_derivative_fails_the_second_order_check():
    class NaNDerivative(dl.Function):
        """y = 2x, but its backward says NaN: used inside Square's backward, only grad-of-grad sees it."""
        def forward(self, x):
            return 2 * x

        def backward(self, grad, out, x):
            return (grad * np.nan,)

    class Square(dl.Function):
        def forward(self, x):
            return x * x

        def backward(self, grad, out, x):
            return (grad * NaNDerivative()(x),)

    f = lambda t: Square()(t)  # noqa: E731
    assert_grad_close(f, [X])                                     # first order is right
    with pytest.raises(AssertionError, match=r"second order.*grad-of-grad gives nan"):
        assert_second_order_close(f, [X])


def test_a_function_whose_value_is_nan_or_inf_fails_before_comparing():
    for bad in (np.nan, np.inf):
        x = X.copy()
        x[0, 1] = bad
        for check in (assert_grad_close, assert_second_order_close):
            with pytest.raises(AssertionError, match=r"f's value is not finite at the inputs: 1 of 6 output "
                                                     r"elements are NaN or inf, first at index \(0, 1\)"):
                check(lambda t: t * 3, [x])


def test_numerical_inf_against_a_finite_backprop_fails():
    class Jump(dl.Function):
        """y = x for x <= 0 and +inf beyond, with backward 1 everywhere: the differences at 0 are inf."""
        def forward(self, x):
            return np.where(x > 0, np.inf, x)

        def backward(self, grad, out, x):
            return (grad,)

    with pytest.raises(AssertionError, match=r"first at index \(1,\) \(input value 0.0\): the numerical gradient "
                                             r"is inf .*\(backprop 1.0, numerical inf\)"):
        assert_grad_close(lambda t: Jump()(t), [np.array([-1.0, 0.0])])


def test_inf_on_both_sides_still_fails():
    class InfSlope(dl.Function):
        """y = x for x <= 0 and +inf beyond, and a backward that agrees it is inf at 0: nothing is checked."""
        def forward(self, x):
            return np.where(x > 0, np.inf, x)

        def backward(self, grad, out, x):
            return (grad * np.where(x.data == 0, np.inf, 1.0),)

    with pytest.raises(AssertionError, match=r"backprop gives inf and the numerical gradient is inf"):
        assert_grad_close(lambda t: InfSlope()(t), [np.array([-1.0, 0.0])])


def test_a_finite_wrong_derivative_fails_and_nan_tolerances_are_refused():
    with pytest.raises(AssertionError, match=r"input 0: 6 of 6 elements differ"):
        assert_grad_close(lambda t: square_with(1.5)()(t), [X])

    class WrongDouble(dl.Function):
        """y = 2x, but its backward says 3: inside Square's backward, the second derivative comes out 3, not 2."""
        def forward(self, x):
            return 2 * x

        def backward(self, grad, out, x):
            return (grad * 3,)

    class Square(dl.Function):
        def forward(self, x):
            return x * x

        def backward(self, grad, out, x):
            return (grad * WrongDouble()(x),)

    assert_grad_close(lambda t: Square()(t), [X])
    with pytest.raises(AssertionError, match=r"input 0 \(second order\): 6 of 6 elements differ"):
        assert_second_order_close(lambda t: Square()(t), [X])
    for kw in ({"rtol": np.nan}, {"atol": np.nan}, {"rtol": -1.0}, {"atol": np.inf}):
        with pytest.raises(ValueError, match="must be a finite number >= 0"):
            assert_grad_close(lambda t: t * 2, [X], **kw)


def test_a_gradient_of_the_wrong_shape_fails():
    with pytest.raises(AssertionError, match=r"gradient has shape \(3,\), the input has shape \(2, 3\)"):
        from tinygrad_dl.testing import _compare
        _compare("input 0", np.zeros(3), np.zeros((2, 3)), 1e-5, 1e-7)


# --- the one finite-difference routine ----------------------------------------------------------------------

def test_the_denominator_is_the_step_actually_taken():
    # at 1e8 a step of 1e-6 moves x by 1.49e-6 (the spacing of doubles there), not 2e-6: dividing by the step
    # actually taken gives the derivative of the identity exactly, dividing by 2 eps would give 0.745
    x = np.array([1e8])
    assert finite_differences(lambda: float(x[0]), x, 1e-6).tolist() == [1.0] and x.tolist() == [1e8]
    x = np.array([-3.0, 0.0, 0.5])
    np.testing.assert_allclose(finite_differences(lambda: float((x ** 3).sum()), x, 1e-6), 3 * x ** 2,
                               rtol=1e-8, atol=1e-9)
    assert (numerical_grad(lambda t: t * 1.0, [np.array([1e8])], eps=1e-6)[0] == 1.0).all()
    P = dl.Tensor(np.array([1e8]), requires_grad=True)
    res = dl.gradcheck(lambda: P.sum(), [P], eps=1e-6)
    assert res.numeric.tolist() == [1.0] and res.ok                 # gradcheck divides by the same step


def test_finite_differences_restores_x_bit_for_bit_even_if_J_raises():
    x = np.array([-0.0, 1 / 3, 5e-324, 2.0])
    before = x.tobytes()
    calls = []

    def J():
        calls.append(1)
        if len(calls) == 6:
            raise RuntimeError("boom")
        return float((x ** 2).sum())

    with pytest.raises(RuntimeError, match="boom"):
        finite_differences(J, x)
    assert x.tobytes() == before
    assert x.tobytes() == np.array([-0.0, 1 / 3, 5e-324, 2.0]).tobytes()


def test_finite_differences_on_a_strided_view_and_its_errors():
    base = np.arange(12.0).reshape(3, 4)
    view = base.T                                                   # not C-contiguous: moved through .flat
    g = finite_differences(lambda: float((base ** 2).sum()), view, 1e-4)
    np.testing.assert_allclose(g, 2 * view, rtol=1e-8)
    assert (base == np.arange(12.0).reshape(3, 4)).all()
    with pytest.raises(ValueError, match=r"too small to move element \(1,\) \(value 1e\+20\)"):
        finite_differences(lambda: 0.0, np.array([1.0, 1e20]), 1e-6)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        finite_differences(lambda: 0.0, np.ones(2), float("nan"))
    with pytest.raises(TypeError, match="float ndarray"):
        finite_differences(lambda: 0.0, [1.0, 2.0])
    with pytest.raises(ValueError, match="single number"):
        finite_differences(lambda: np.ones(2), np.ones(2))
    assert finite_differences(lambda: 1.0, np.ones((0, 3))).shape == (0, 3)


def test_numerical_grad_matches_a_closed_form():
    x = np.linspace(-2, 2, 5)
    (g,) = numerical_grad(lambda t: (t * t * t).sum(), [x])
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-8, atol=1e-8)


# --- strategies ---------------------------------------------------------------------------------------------

def _combine(shapes_):
    ts = [dl.Tensor(np.ones(s)) for s in shapes_]
    total = ts[0]
    for t in ts[1:]:
        total = total + t
    return total


@settings(max_examples=400)   # cheap draws, and many: the rank-1 trap is a minority of raw pairs
@given(broadcastable_shapes(2), st.booleans())
def test_every_drawn_pair_is_accepted_by_the_library(drawn, swap):
    (a, b), result = drawn
    if swap:
        a, b = b, a
    A, B = dl.Tensor(np.ones(a)), dl.Tensor(np.ones(b))
    for out in (A + B, A - B, A * B, A / B, dl.maximum(A, B)):
        assert out.shape == result == np.broadcast_shapes(a, b)


@settings(max_examples=200)
@given(broadcastable_shapes(3, max_dims=4), st.permutations(range(3)))
def test_every_drawn_triple_is_accepted_in_any_order_and_by_where(drawn, order):
    shapes_, result = drawn
    assert _combine([shapes_[i] for i in order]).shape == result
    cond, a, b = shapes_
    assert dl.where(np.ones(cond, dtype=bool), dl.Tensor(np.ones(a)), dl.Tensor(np.ones(b))).shape == result


def test_the_strategy_still_draws_interesting_broadcasts():
    quiet = settings(database=None, derandomize=True, max_examples=500)
    strategy = broadcastable_shapes(2)
    lower_rank = find(strategy, lambda d: len(d.input_shapes[0]) != len(d.input_shapes[1])
                      and all(d.input_shapes) and 1 < max(d.input_shapes[0] + d.input_shapes[1]), settings=quiet)
    assert lower_rank.result_shape in lower_rank.input_shapes          # e.g. (2, 2) with (2,)
    both_ways = find(strategy, lambda d: all(s != d.result_shape and len(s) == len(d.result_shape)
                                             for s in d.input_shapes), settings=quiet)
    assert both_ways.result_shape not in both_ways.input_shapes        # e.g. (2, 1) with (1, 2)
    scalar = find(strategy, lambda d: () in d.input_shapes and d.result_shape != (), settings=quiet)
    assert scalar.result_shape in scalar.input_shapes


def test_the_rank_one_trap_is_repaired_not_drawn():
    from tinygrad_dl.testing import _accepted
    assert _accepted([(1, 1), (2,)]) == [(1, 1), (1,)]
    assert _accepted([(3, 1), (3,)]) == [(3, 1), (1,)]
    assert _accepted([(3, 4), (4,)]) == [(3, 4), (4,)]                 # what the library accepts stays
    assert _accepted([(2, 1, 4), (1, 3, 4), (4,), ()]) == [(2, 1, 4), (1, 3, 4), (4,), ()]
    assert _accepted([(2, 1, 4), (1, 3, 4), (3, 4)]) == [(2, 1, 4), (1, 3, 4), (1, 4)]
    with pytest.raises(dl.ShapeError):                                 # and the library does refuse the trap
        dl.Tensor(np.ones((1, 1))) + dl.Tensor(np.ones(2))


def _run_without_hypothesis(code):
    blocker = textwrap.dedent("""
        import importlib.abc, sys
        class NoHypothesis(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "hypothesis" or name.startswith("hypothesis."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None
        sys.meta_path.insert(0, NoHypothesis())
        for mod in [m for m in sys.modules if m == "hypothesis" or m.startswith("hypothesis.")]:
            del sys.modules[mod]
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", blocker + textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_without_hypothesis_the_package_imports_and_strategies_say_how_to_install():
    proc = _run_without_hypothesis("""
        import numpy as np
        import tinygrad_dl as dl
        from tinygrad_dl import testing
        from tinygrad_dl.testing import arrays, shapes, broadcastable_shapes, upstream_gradient
        try:
            import hypothesis
        except ImportError:
            print("blocked")
        testing.assert_grad_close(lambda t: t * t, [np.array([1.0, 2.0])])   # the checkers need only NumPy
        print("checked", dl.gradcheck(lambda: (P * P).sum(), [P := dl.Tensor([1.0], requires_grad=True)]).ok)
        for call in (lambda: arrays((2, 3)), lambda: shapes(), lambda: broadcastable_shapes(2),
                     lambda: upstream_gradient((2,))):
            try:
                call()
            except ImportError as e:
                print("ImportError:", e)
    """)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["blocked", "checked True"], proc.stdout
    errors = lines[2:]
    assert [e.split(" is a Hypothesis")[0] for e in errors] == [
        "ImportError: tinygrad_dl.testing." + n for n in ("arrays", "shapes", "broadcastable_shapes",
                                                          "upstream_gradient")]
    assert all(e.endswith('install the test extra, pip install "tinygrad_dl[test]"') for e in errors), errors


def test_bad_tolerances_and_directions_are_clear_errors():
    with pytest.raises(TypeError, match="rtol must be a number"):
        assert_grad_close(lambda t: t * 2, [np.ones(2)], rtol="a")
    with pytest.raises(ValueError, match=r"direction 0 has shape \(1,\), input 0 has shape \(2,\)"):
        assert_second_order_close(lambda t: t * t, [np.ones(2)], direction=[np.ones(1)])
