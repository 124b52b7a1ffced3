"""The engine: graph recording, backward semantics, grad-of-grad, modes, memory, errors."""
import gc
import threading
import weakref

import numpy as np
import pytest

import tinygrad_dl as dl
from tinygrad_dl import Tensor
from tinygrad_dl.testing import assert_grad_close, numerical_grad


# --- construction and dtypes ------------------------------------------------------------------------------

def test_defaults_are_float64_and_float32_is_kept():
    assert Tensor(3).dtype == np.float64
    assert Tensor([1, 2]).dtype == np.float64
    assert Tensor(np.arange(3)).dtype == np.float64
    assert Tensor(np.ones(2, np.float32)).dtype == np.float32
    x = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    y = (x * 2.5 + 1.0) / 3 - x ** 2
    assert y.dtype == np.float32  # a Python float never upcasts float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_non_float_dtypes_are_refused():
    with pytest.raises(TypeError, match="floating point"):
        Tensor([1, 2], dtype=np.int32)
    with pytest.raises(TypeError, match="floating point"):
        Tensor(np.array(["a"]))


def test_parameters_are_copied_constants_are_shared():
    a = np.ones(3)
    assert Tensor(a).data is a or np.shares_memory(Tensor(a).data, a)
    p = Tensor(a, requires_grad=True)
    p.data += 1
    assert a[0] == 1.0


def test_comparisons_return_plain_boolean_arrays():
    x = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    for r in (x < 0, x <= 0, x > 0, x >= 0):
        assert type(r) is np.ndarray and r.dtype == np.bool_
    assert (x > 0).tolist() == [False, False, True]


def test_ndarray_on_the_left_defers_to_the_tensor():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    y = np.full((2, 2), 3.0) * x + np.ones((2, 2))
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 2), 3.0))


def test_truth_and_float_of_one_element():
    t = Tensor([[2.5]], requires_grad=True)
    assert float(t) == 2.5 and bool(t) and not bool(Tensor(0.0))
    with pytest.raises(ValueError):
        bool(Tensor([1.0, 2.0]))


def test_item_numpy_detach_repr():
    x = Tensor([[2.0]], requires_grad=True, name="x")
    assert x.item() == 2.0 and x.numpy() is x.data
    d = (x * 2).detach()
    assert not d.requires_grad and d.creator is None
    assert "name='x'" in repr(x) and "Mul" in repr(x * 2)


# --- backward semantics ------------------------------------------------------------------------------------

def test_backward_on_non_scalar_needs_grad_and_says_the_shape():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="grad has shape"):
        (x * 2).backward(np.ones(3))


def test_gradients_accumulate_across_backward_calls():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [2 + 3, 4 + 3])


def test_second_backward_without_retain_graph_is_a_clear_error():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x.tanh() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_gives_exactly_twice_not_three_times():
    x = Tensor([0.3, -1.2], requires_grad=True)
    h = x.tanh()
    y = (h * h + h).sum()  # a diamond through an intermediate
    y.backward(retain_graph=True)
    once = x.grad.copy()
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * once)
    t = np.tanh(x.data)
    np.testing.assert_allclose(once, (2 * t + 1) * (1 - t ** 2), rtol=1e-15)


def test_intermediates_keep_grad_only_when_asked():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    k = (x * 4).retain_grad()
    (h * k).sum().backward()
    assert h.grad is None
    np.testing.assert_array_equal(k.grad, 3 * x.data)


def test_diamonds_sum_their_contributions():
    x = Tensor(1.5, requires_grad=True)
    a = x * x
    y = a * a + a * x + a  # x**4 + x**3 + x**2
    y.backward()
    assert x.grad == pytest.approx(4 * 1.5 ** 3 + 3 * 1.5 ** 2 + 2 * 1.5, rel=1e-15)


def test_leaf_grads_never_alias_each_other_or_the_callers_array():
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    g = np.arange(3.0)
    (a + b).backward(g)
    a.grad += 1
    np.testing.assert_array_equal(b.grad, [0, 1, 2])
    np.testing.assert_array_equal(g, [0, 1, 2])


def test_a_passed_through_sum_is_never_added_into_in_place():
    # x's gradient is a sum of two contributions; Add hands that same array on to y and k, and y gets more later
    y, k = Tensor(np.ones((2, 2)), requires_grad=True), Tensor(np.ones((2, 2)), requires_grad=True)
    x = (y + k).retain_grad()
    (x.sum() + x.sum() + (y * 3).sum()).backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 2), 2.0))
    np.testing.assert_array_equal(y.grad, np.full((2, 2), 5.0))
    np.testing.assert_array_equal(k.grad, np.full((2, 2), 2.0))


def test_broadcast_gradients_are_summed_to_each_input_shape():
    W = Tensor(np.ones((3, 2)), requires_grad=True)
    b = Tensor(np.zeros((3, 1)), requires_grad=True)
    A = Tensor(np.arange(8.0).reshape(2, 4))
    (W @ A + b).sum().backward()
    assert b.grad.shape == (3, 1)
    np.testing.assert_array_equal(b.grad, np.full((3, 1), 4.0))


def test_getitem_repeated_indices_accumulate():
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[np.array([0, 0, 3, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3, 0, 0, 1])
    y = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y[:, 1:].sum().backward()
    np.testing.assert_array_equal(y.grad, [[0, 1, 1], [0, 1, 1]])


def test_tie_breaking_is_defined():
    x = Tensor([2.0, 2.0, 1.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.5, 0.5, 0.0])  # max: split evenly among ties
    a, b = Tensor(1.0, requires_grad=True), Tensor(1.0, requires_grad=True)
    dl.maximum(a, b).backward()
    assert (a.grad, b.grad) == (0.5, 0.5)
    z = Tensor(0.0, requires_grad=True)
    z.abs().backward()
    assert z.grad == 0.0  # the derivative of a kink at 0 is 0


# --- long chains: iterative, linear, freed by reference counting -------------------------------------------

def test_a_million_op_chain_backpropagates_without_recursion():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(1_000_000):
        y = y * 1.000001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(2, 1.000001 ** 1_000_000), rtol=1e-9)
    del y  # freeing the chain must not recurse either


def test_graph_is_freed_by_reference_counting_without_the_cycle_collector():
    gc.disable()
    try:
        x = Tensor(np.ones((100, 100)), requires_grad=True)
        h = x.tanh() * 2
        ref = weakref.ref(h)
        y = (h * h).sum()
        del h
        assert ref() is not None  # alive while the graph is
        del y
        assert ref() is None  # gone at once: no Tensor <-> Function cycle
    finally:
        gc.enable()


def test_backward_releases_intermediate_values():
    x = Tensor(np.ones((10, 10)), requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h)
    y = (h * 2).sum()
    del h
    y.backward()
    assert ref() is None  # the saved input was released by backward, y alone no longer holds it


# --- modes --------------------------------------------------------------------------------------------------

def test_no_grad_records_nothing_as_context_and_decorator():
    x = Tensor([1.0], requires_grad=True)
    with dl.no_grad():
        y = x * 2
    assert not y.requires_grad and y.creator is None

    @dl.no_grad()
    def f(t):
        return t * 3
    assert f(x).creator is None
    assert (x * 2).creator is not None


def test_no_grad_is_per_thread():
    x = Tensor([1.0], requires_grad=True)
    entered, done = threading.Event(), threading.Event()
    seen = {}

    def other():
        with dl.no_grad():
            entered.set()
            done.wait(5)
            seen["other"] = (x * 2).requires_grad

    th = threading.Thread(target=other)
    th.start()
    entered.wait(5)
    seen["main"] = (x * 2).requires_grad  # while the other thread sits inside no_grad
    done.set()
    th.join()
    assert seen == {"main": True, "other": False}


def test_detect_anomaly_names_the_op_and_the_user_line():
    x = Tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(FloatingPointError, match=r"Log.*test_engine.py"):
        with dl.detect_anomaly(), np.errstate(invalid="ignore"):
            x.log()
    y = Tensor([0.0], requires_grad=True)
    with pytest.raises(FloatingPointError, match=r"Pow produced inf in its gradient"):
        with dl.detect_anomaly(), np.errstate(divide="ignore"):
            (y ** 0.5).sum().backward()
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().data[1])  # off by default


# --- grad and grad-of-grad ----------------------------------------------------------------------------------

def test_grad_returns_tensors_and_leaves_dot_grad_alone():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (g,) = dl.grad((x ** 2).sum(), [x])
    np.testing.assert_array_equal(g.data, [2.0, 4.0])
    assert x.grad is None
    with pytest.raises(ValueError, match="not used"):
        dl.grad((x * 2).sum(), [x, Tensor(1.0, requires_grad=True)])


@pytest.mark.parametrize("f, d2", [
    (lambda x: x ** 3, lambda x: 6 * x),
    (lambda x: x.tanh(), lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    (lambda x: x.log().exp() * x, lambda x: 2 + 0 * x),
    (lambda x: (x * 2).exp().log() ** 2, lambda x: 8 + 0 * x),
])
def test_second_derivatives_in_closed_form(f, d2):
    xs = np.array([0.3, 1.1, 2.0])
    x = Tensor(xs, requires_grad=True)
    (g,) = dl.grad(f(x).sum(), [x], create_graph=True)
    (h,) = dl.grad(g.sum(), [x])
    np.testing.assert_allclose(h.data, d2(xs), rtol=1e-12, atol=1e-12)


def test_hessian_vector_product_of_a_small_mlp_matches_differences_of_the_gradient():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 5)), (rng.random((1, 5)) > 0.5).astype(float)
    W1, b1, W2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 1)), rng.standard_normal((1, 4))
    v = rng.standard_normal(W1.shape)

    def cost(W1_):
        A1 = (W1_ @ X + b1).tanh()
        Z2 = Tensor(W2) @ A1
        return ((Z2 - Y) ** 2).mean()

    def gradient(w):
        t = Tensor(w, requires_grad=True)
        return dl.grad(cost(t), [t])[0].data

    t = Tensor(W1, requires_grad=True)
    (g,) = dl.grad(cost(t), [t], create_graph=True)
    (hv,) = dl.grad((g * v).sum(), [t])
    eps = 1e-5
    numeric = (gradient(W1 + eps * v) - gradient(W1 - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.data, numeric, rtol=1e-6, atol=1e-8)


# --- errors ------------------------------------------------------------------------------------------------

def test_shape_errors_name_the_op_and_the_shapes():
    with pytest.raises(ValueError, match=r"matmul: cannot multiply \(3, 4\) by \(5, 2\): inner sizes 4 and 5 differ"):
        Tensor(np.ones((3, 4))) @ Tensor(np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"add: shapes \(5, 1\) and \(5,\)"):
        Tensor(np.ones((5, 1))) + np.ones(5)
    with pytest.raises(ValueError, match=r"mul: cannot broadcast shapes \(3, 4\) and \(3,\).*reshape the 1-D array"):
        Tensor(np.ones((3, 4))) * np.ones(3)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape \(2, 3\)"):
        Tensor(np.ones((2, 3))).reshape(4)
    with pytest.raises(TypeError, match="exponent must be a constant"):
        Tensor(2.0) ** Tensor(3.0)


def test_row_vector_broadcasting_is_still_allowed():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    (x + np.arange(4.0)).sum().backward()  # (3, 4) + (4,) -> (3, 4): what the user wrote
    assert x.grad.shape == (3, 4)


# --- users' own primitives -----------------------------------------------------------------------------------

class Softplus(dl.Function):
    """y = log(1 + e^x);  dy/dx = sigmoid(x) = 1 - e^-y"""

    def forward(self, x):
        return np.logaddexp(0.0, x)

    def backward(self, grad, out, x):
        return (grad * (1 - (-out).exp()),)


def test_a_user_primitive_is_checked_by_the_testing_helpers():
    assert_grad_close(lambda t: Softplus()(t), [np.linspace(-4, 4, 9)])
    x = Tensor([0.0], requires_grad=True)
    (g,) = dl.grad(Softplus()(x).sum(), [x], create_graph=True)
    (h,) = dl.grad(g.sum(), [x])
    assert g.item() == pytest.approx(0.5) and h.item() == pytest.approx(0.25)


def test_numerical_grad_is_two_sided():
    (g,) = numerical_grad(lambda t: t ** 3, [np.array([2.0])], eps=1e-3)
    assert g[0] == pytest.approx(12.0 + 1e-6, rel=1e-12)  # (2+e)^3-(2-e)^3 / 2e = 12 + e^2


# --- a Function instance called twice, values changed under a graph, gradients that do not fit ------------------

class Square(dl.Function):
    """y = x**2; dy/dx = 2x (written with Tensors, as users write theirs)"""

    def forward(self, x):
        self.seen = x.copy()  # state kept on the instance: each call must keep its own
        return x * x

    def backward(self, grad, out, x):
        return (grad * 2.0 * x,)


def test_one_function_instance_called_twice_records_two_nodes():
    a = Tensor([1.0, -2.0], requires_grad=True)
    b = Tensor([3.0, 0.5], requires_grad=True)
    sq = Square()
    (sq(a) + sq(b)).sum().backward()
    np.testing.assert_array_equal(a.grad, 2 * a.data)  # d(a^2)/da = 2a, closed form
    np.testing.assert_array_equal(b.grad, 2 * b.data)
    c = Tensor([2.0], requires_grad=True)
    y1 = sq(c)
    y2 = sq(c * 3.0)
    assert y1.creator is not y2.creator
    (y1 + y2).sum().backward()
    np.testing.assert_allclose(c.grad, 2 * 2.0 + 2 * 9 * 2.0)


def test_an_optimizer_step_between_forward_and_backward_is_refused():
    W1 = Tensor(np.full((2, 2), 0.5), requires_grad=True, name="W1")
    W2 = Tensor(np.ones((1, 2)), requires_grad=True, name="W2")
    X = Tensor(np.arange(4.0).reshape(2, 2))
    J = (W2 @ (W1 @ X).tanh()).sum()  # dA1 = W2.T @ dZ2 reads W2
    J.backward(retain_graph=True)
    dl.optim.GradientDescent([W1, W2], lr=0.1).step()
    with pytest.raises(RuntimeError, match=r"input 0 'W2' of shape \(1, 2\) of MatMul was changed in place"):
        J.backward()


def test_a_change_no_gradient_depends_on_is_allowed_as_in_pytorch():
    W = Tensor(np.ones((2, 2)), requires_grad=True)
    X = Tensor(np.arange(4.0).reshape(2, 2))
    J = (W @ X).sum()  # dW = dY @ X.T: W's own values are never read
    with dl.no_grad():
        W -= 1.0
    J.backward()
    np.testing.assert_array_equal(W.grad, np.ones((2, 2)) @ X.data.T)


@pytest.mark.parametrize("change", ["isub", "data_isub", "data_rebind", "output"])
def test_values_changed_in_place_after_the_forward_pass_are_detected(change):
    W = Tensor(np.full((2, 2), 0.5), requires_grad=True, name="W")
    Z = (W * W).tanh()  # Mul reads W (each factor's gradient is the other), Tanh reads Z
    J = (Z * Z).sum()
    if change == "isub":
        with dl.no_grad():
            W -= 0.1
    elif change == "data_isub":
        W.data -= 0.1
    elif change == "data_rebind":
        W.data = W.data * 2
    else:
        with dl.no_grad():
            Z *= 2.0  # Tanh's rule uses its output
    with pytest.raises(RuntimeError, match="changed in place"):
        J.backward()


def test_a_change_to_a_value_no_rule_reads_is_allowed():
    b = Tensor(np.zeros((2, 1)), requires_grad=True)
    W = Tensor(np.ones((2, 2)), requires_grad=True)
    J = (W @ np.ones((2, 3)) + b).sum()  # Add never reads b's values
    with dl.no_grad():
        b -= 1.0
    J.backward()
    np.testing.assert_array_equal(b.grad, np.full((2, 1), 3.0))


def _custom(backward, n_inputs=1):
    class Custom(dl.Function):
        def forward(self, *xs):
            return sum(xs)

    Custom.backward = backward
    return Custom()


def test_a_gradient_that_fits_neither_the_input_nor_a_broadcast_is_refused():
    x = Tensor(np.ones((3, 2)), requires_grad=True)
    f = _custom(lambda self, grad, out, x: (Tensor(np.ones((2, 3))),))
    with pytest.raises(dl.ShapeError, match=r"Custom.backward.*\(2, 3\).*\(3, 2\).*input 0"):
        f(x).sum().backward()
    g = _custom(lambda self, grad, out, x: (np.ones((2, 3)),))
    g.ndarray_backward = True
    with pytest.raises(dl.ShapeError, match=r"Custom.backward.*\(2, 3\).*\(3, 2\).*input 0"):
        g(x).sum().backward()


def test_backward_return_values_are_checked_with_the_function_and_input_named():
    x, y = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    bare = _custom(lambda self, grad, out, x: grad * 2.0)  # a bare Tensor for one input is fine
    bare(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
    two = _custom(lambda self, grad, out, a, b: grad)
    with pytest.raises(TypeError, match=r"Custom.backward returned a single Tensor; it must return a tuple of 2"):
        two(x, y).sum().backward()
    many = _custom(lambda self, grad, out, a: (grad, grad))
    with pytest.raises(TypeError, match=r"returned 2 gradients for its 1 inputs"):
        many(x).sum().backward()
    text = _custom(lambda self, grad, out, a: ("oops",))
    with pytest.raises(TypeError, match=r"gradient for input 0 is a str"):
        text(x).sum().backward()


def test_a_rule_written_on_ndarrays_is_refused_under_create_graph():
    x = Tensor(np.array([0.5, 2.0]), requires_grad=True)
    cube = _custom(lambda self, grad, out, a: (grad.data * 3 * a.data ** 2,))
    cube.forward = lambda a: a ** 3
    (g,) = dl.grad(cube(x).sum(), [x])  # first order is fine
    np.testing.assert_allclose(g.data, 3 * x.data ** 2)
    with pytest.raises(TypeError, match=r"create_graph=True.*second derivative"):
        dl.grad(cube(x).sum(), [x], create_graph=True)


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_the_constant_cache_keeps_the_sign_of_zero_and_nan():
    x = Tensor(np.array([1.0, -1.0]))
    np.testing.assert_array_equal(np.signbit((x * -0.0).data), [True, False])
    np.testing.assert_array_equal((x / 0.0).data, [np.inf, -np.inf])  # +0.0 again, not the cached -0.0
    np.testing.assert_array_equal(np.signbit((x * 0.0).data), [False, True])
    np.testing.assert_array_equal(np.signbit((x * -0.0).data), [True, False])
    assert np.isnan((x + float("nan")).data).all()
    assert np.isnan((x * float("nan")).data).all()


# --- crashes that must be clear errors (or NumPy's answer) ---------------------------------------------------

def test_index_reshape_transpose_stack_edge_cases():
    t = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    empty = t[[]]
    assert empty.shape == np.arange(6.0).reshape(3, 2)[[]].shape == (0, 2)
    (empty.sum() + t[[2, 0]].sum()).backward()
    np.testing.assert_array_equal(t.grad, [[1, 1], [0, 0], [1, 1]])
    with pytest.raises(TypeError, match=r"reshape: sizes must be integers, got \(2.9, 12\)"):
        Tensor(np.ones(24)).reshape(2.9, 12)
    with pytest.raises(dl.ShapeError, match="transpose: axes"):
        Tensor(1.0).transpose(0)
    assert Tensor(1.0).transpose().shape == ()
    with pytest.raises(dl.ShapeError, match=r"stack: axis 5 is out of range.*\[-3, 2\]"):
        dl.stack([Tensor(np.ones((2, 2)))] * 2, axis=5)
    assert dl.stack([Tensor(np.ones((2, 3)))] * 4, axis=-1).shape == np.stack([np.ones((2, 3))] * 4, -1).shape


def test_no_grad_decorates_generators_for_their_whole_body():
    w = Tensor([1.0, 2.0], requires_grad=True)

    @dl.no_grad()
    def scaled():
        for k in range(3):
            yield w * k

    outs = list(scaled())
    assert [o.requires_grad for o in outs] == [False, False, False]
    assert dl.is_grad_enabled()

    @dl.no_grad()
    def echo():
        got = yield 1
        return got

    gen = echo()
    assert next(gen) == 1
    with pytest.raises(StopIteration) as stop:
        gen.send("back")
    assert stop.value.value == "back"


def test_one_no_grad_object_entered_from_two_threads():
    ctx = dl.no_grad()
    barrier = threading.Barrier(2)
    errors, states = [], []

    def work():
        try:
            with ctx:
                barrier.wait(timeout=5)
                states.append(dl.is_grad_enabled())
                barrier.wait(timeout=5)
            states.append(dl.is_grad_enabled())
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert sorted(states) == [False, False, True, True]


# --- error messages that point at the fix --------------------------------------------------------------------

def test_errors_for_none_lists_of_tensors_and_rank_one_broadcasts():
    W1 = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(TypeError, match="add: an operand is None"):
        W1 + None
    with pytest.raises(TypeError, match=r"dl.stack"):
        Tensor([W1, W1])
    with pytest.raises(dl.ShapeError, match=r"add: cannot broadcast shapes \(4, 400\) and \(4,\).*column \(n, 1\)"):
        Tensor(np.ones((4, 400))) + np.ones(4)


@pytest.mark.parametrize("through", ["reshape", "detach", "slice", "transpose"])
def test_a_change_through_a_view_or_a_detached_copy_is_detected(through):
    x = Tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = (x * x).sum()  # Mul reads x
    view = {"reshape": lambda: x.reshape(2, 2), "detach": lambda: x.detach(), "slice": lambda: x[1:],
            "transpose": lambda: x.reshape(2, 2).T}[through]()
    with dl.no_grad():
        view -= 1.0
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


def test_one_no_grad_object_in_two_asyncio_tasks():
    import asyncio
    ctx = dl.no_grad()
    seen = {}

    async def task(name, hold):
        with ctx:
            await asyncio.sleep(hold)
            seen[name + " inside"] = dl.is_grad_enabled()
        seen[name + " after"] = dl.is_grad_enabled()

    async def main():
        await asyncio.gather(task("a", 0.02), task("b", 0.01))

    asyncio.run(main())
    assert seen == {"a inside": False, "b inside": False, "a after": True, "b after": True}
    assert dl.is_grad_enabled()
