"""dl.init against the course formulas written out in NumPy (seed §2.4, §3.2.2)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_dl as dl
from tinygrad_dl import init

SCALES = {  # the course's factor for shape (n, n_prev), written out independently
    "xavier": lambda n, n_prev: np.sqrt(1 / n_prev),
    "he": lambda n, n_prev: np.sqrt(2 / n_prev),
    "glorot": lambda n, n_prev: np.sqrt(2 / (n_prev + n)),
}


@pytest.mark.parametrize("name", sorted(SCALES))
@given(n=st.integers(1, 30), n_prev=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_fan_scaled_init_equals_course_formula(name, n, n_prev, seed):
    W = getattr(init, name)((n, n_prev), rng=seed)
    expected = np.random.default_rng(seed).standard_normal((n, n_prev)) * SCALES[name](n, n_prev)
    assert W.shape == (n, n_prev) and W.dtype == np.float64
    np.testing.assert_allclose(W, expected, rtol=1e-15, atol=0)


def test_normal_and_zeros():
    W = init.normal((4, 3), scale=0.01, rng=7)
    np.testing.assert_allclose(W, np.random.default_rng(7).standard_normal((4, 3)) * 0.01, rtol=1e-15)
    b = init.zeros((4, 1))
    assert b.shape == (4, 1) and b.dtype == np.float64 and not b.any()
    assert init.zeros(3).shape == (3,)
    assert init.normal((2, 2), scale=0.0, rng=0).tolist() == [[0.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize("name", ["normal", "xavier", "he", "glorot"])
def test_same_seed_same_numbers_and_generator_continues(name):
    fn = getattr(init, name)
    a, b = fn((5, 6), rng=3), fn((5, 6), rng=np.random.default_rng(3))
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, fn((5, 6), rng=4))
    g = np.random.default_rng(3)
    first, second = fn((5, 6), rng=g), fn((5, 6), rng=g)   # a Generator's stream moves on
    assert first.tobytes() == a.tobytes() and not np.array_equal(first, second)
    assert not np.array_equal(fn((5, 6)), fn((5, 6)))       # rng=None: fresh entropy


@pytest.mark.parametrize("name", ["normal", "xavier", "he", "glorot", "zeros"])
def test_dtype_keyword(name):
    W32 = getattr(init, name)((6, 5), rng=1, dtype=np.float32)
    W64 = getattr(init, name)((6, 5), rng=1)
    assert W32.dtype == np.float32
    assert np.array_equal(W32, W64.astype(np.float32))   # float32 starts from the float64 weights, rounded
    with pytest.raises(TypeError, match="floating"):
        getattr(init, name)((2, 2), rng=1, dtype=np.int64)


def test_he_variance_is_two_over_n_prev():
    W = init.he((400, 250), rng=0)
    assert abs(W.var() / (2 / 250) - 1) < 0.02  # 100000 draws: relative std of the sample variance ~0.45%
    assert abs(W.mean()) < 4 * np.sqrt(2 / 250 / W.size)


def test_bad_input():
    with pytest.raises(ValueError, match=r"init.he: expected a weight shape \(n, n_prev\)"):
        init.he((3,), rng=0)
    with pytest.raises(ValueError, match="n_prev = 0"):
        init.xavier((3, 0), rng=0)
    with pytest.raises(ValueError, match="non-negative ints"):
        init.normal((3, -1), rng=0)
    with pytest.raises(TypeError, match="Generator"):
        init.he((3, 2), rng=np.random.RandomState(0))
    with pytest.raises(TypeError, match="Generator"):
        init.he((3, 2), rng=1.5)
    with pytest.raises(ValueError, match="scale"):
        init.normal((3, 2), scale=-1.0)
    with pytest.raises(ValueError, match="unknown initializer 'kaiming'"):
        init.get("kaiming")


def test_get_and_uniform_call_form():
    for name, fn in init.INITIALIZERS.items():
        assert init.get(name) is fn
        W = fn((3, 2), rng=0, dtype=np.float64)   # every initializer takes (shape, rng=, dtype=)
        assert W.shape == (3, 2)
    assert init.get(init.he) is init.he


def test_dense_wraps_the_arrays():
    W = dl.Tensor(init.he((3, 4), rng=0), requires_grad=True)
    assert W.dtype == np.float64 and W.shape == (3, 4)


def test_bools_are_not_numbers_here():
    with pytest.raises(ValueError, match="init.normal: scale must be a finite number >= 0, got True"):
        init.normal((2, 2), scale=True, rng=0)
    with pytest.raises(ValueError, match="non-negative ints"):
        init.he((True, 2), rng=0)
    with pytest.raises(TypeError, match="Generator"):
        init.he((3, 2), rng=True)                                    # True is not the seed 1
    g = np.random.default_rng(0)
    assert init.as_rng(g) is g and isinstance(init.as_rng(3), np.random.Generator)
