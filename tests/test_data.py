"""dl.data against independent oracles: the course formulas in NumPy (seed §3, §3.1, §3.2.1, §3.3.1, §3.3.2),
hand-made images, and hand-computed early-stopping histories."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_dl as dl
from tinygrad_dl import data


def tagged(n_x, m, seed=0):
    """X whose first row is the column index, and labels Y = column index: alignment is checkable."""
    X = np.random.default_rng(seed).normal(size=(n_x, m))
    X[0] = np.arange(m)
    return X, np.arange(m)


# ============================================================ columns, one_hot

def test_columns_is_the_explicit_transpose():
    rows = np.arange(12.0).reshape(4, 3)            # m = 4 examples of n = 3 features
    X = data.columns(rows)
    assert X.shape == (3, 4) and np.array_equal(X, rows.T)
    assert data.columns(np.arange(5)).shape == (1, 5)
    t = data.columns(dl.Tensor(rows))
    assert isinstance(t, dl.Tensor) and t.shape == (3, 4)
    with pytest.raises(ValueError, match=r"columns: expected a 2-D \(m, n\) array"):
        data.columns(np.zeros((2, 3, 4)))


def test_one_hot():
    Y = data.one_hot([2, 0, 1, 2])
    assert Y.shape == (3, 4) and np.array_equal(Y.argmax(axis=0), [2, 0, 1, 2]) and Y.sum() == 4
    assert data.one_hot([0, 1], n_classes=5).shape == (5, 2)
    with pytest.raises(ValueError, match="does not fit"):
        data.one_hot([0, 7], n_classes=3)


# ============================================================ split

@given(m=st.integers(1, 400), w=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3).filter(lambda w: sum(w) > 0),
       seed=st.integers(0, 1000))
@settings(max_examples=60, deadline=None)
def test_split_sizes_and_alignment(m, w, seed):
    fractions = tuple(np.array(w) / sum(w))
    X, Y = tagged(2, m)
    parts = data.split(X, Y, fractions, rng=seed)
    sizes = [p[0].shape[1] for p in parts]
    assert sum(sizes) == m
    for size, f in zip(sizes, fractions):
        assert abs(size - f * m) < 1 + 1e-9          # floor or ceil of f * m
    for Xp, Yp in parts:
        assert Xp.shape[0] == 2 and np.array_equal(Xp[0], Yp)           # labels travel with their columns
    order = np.concatenate([p[1] for p in parts])
    assert np.array_equal(order, np.random.default_rng(seed).permutation(m))  # shuffled, every column once


def test_split_default_fractions_and_determinism():
    X, Y = tagged(3, 1797)
    (Xtr, Ytr), (Xd, Yd), (Xte, Yte) = data.split(X, Y, rng=0)
    assert (Xtr.shape, Xd.shape, Xte.shape) == ((3, 1761), (3, 18), (3, 18))
    again = data.split(X, Y, rng=np.random.default_rng(0))
    assert np.array_equal(again[0][1], Ytr) and np.array_equal(again[2][1], Yte)
    assert not np.array_equal(data.split(X, Y, rng=1)[0][1], Ytr)
    ordered = data.split(X, Y, (0.5, 0.25, 0.25), shuffle=False)
    assert ordered[0][1].tolist() == list(range(899)) and ordered[2][1][-1] == 1796
    Yoh = np.eye(2)[:, np.arange(1797) % 2]            # one-hot (n_y, m) labels split the same way
    (_, Y2), _, _ = data.split(X, Yoh, rng=0)
    assert np.array_equal(Y2, Yoh[:, Ytr])


def test_split_tensors_and_errors():
    X, Y = tagged(2, 10)
    (Xtr, Ytr), _, _ = data.split(dl.Tensor(X), dl.Tensor(Y.reshape(1, -1)), (0.6, 0.2, 0.2), rng=0)
    assert isinstance(Xtr, dl.Tensor) and isinstance(Ytr, dl.Tensor) and Xtr.shape == (2, 6)
    with pytest.raises(ValueError, match=r"split: X has m = 10 examples \(shape \(2, 10\)\) but Y has 9"):
        data.split(X, Y[:9])
    with pytest.raises(ValueError, match="adding up to 1"):
        data.split(X, Y, (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="adding up to 1"):
        data.split(X, Y, (0.8, 0.1))
    with pytest.raises(ValueError, match=r"two \(train, test\) or three"):
        data.split(X, Y, (0.5, 0.2, 0.2, 0.1))
    with pytest.raises(ValueError, match="adding up to 1"):
        data.split(X, Y, (1.2, -0.1, -0.1))
    with pytest.raises(ValueError, match=r"X must be 2-D \(n_x, m\)"):
        data.split(np.arange(10.0), Y)


# ============================================================ Normalizer (§3.2.1)

def test_normalizer_uses_training_statistics():
    rng = np.random.default_rng(0)
    X_train = rng.normal(loc=[[5.0], [-2.0], [0.0]], scale=[[3.0], [0.1], [1.0]], size=(3, 500))
    X_dev = rng.normal(size=(3, 40)) * 10
    norm = data.Normalizer().fit(X_train)
    mu = X_train.sum(axis=1, keepdims=True) / 500                    # course: mu = (1/m) sum x(i)
    sigma = np.sqrt(((X_train - mu) ** 2).sum(axis=1, keepdims=True) / 500)
    np.testing.assert_allclose(norm.mu, mu, rtol=1e-13)
    np.testing.assert_allclose(norm.sigma, sigma, rtol=1e-13)
    Z = norm(X_train)
    np.testing.assert_allclose(Z.mean(axis=1), 0, atol=1e-13)
    np.testing.assert_allclose(Z.std(axis=1), 1, rtol=1e-13)
    np.testing.assert_allclose(norm.transform(X_dev), (X_dev - mu) / sigma, rtol=1e-13)  # not dev's own stats
    np.testing.assert_allclose(norm.inverse_transform(norm(X_dev)), X_dev, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(data.Normalizer().fit_transform(X_train), Z)


def test_normalizer_zero_variance_feature():
    X = np.vstack([np.full(7, 0.1), np.arange(7.0), np.zeros(7)])   # mean of 0.1s is not exactly 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            norm = data.Normalizer().fit(X)
            Z = norm(X)
            Z_dev = norm(np.array([[0.3], [3.0], [2.0]]))
    assert np.array_equal(Z[0], np.zeros(7)) and np.array_equal(Z[2], np.zeros(7))
    np.testing.assert_allclose(Z[1], (np.arange(7) - 3) / 2)
    np.testing.assert_allclose(Z_dev.ravel(), [0.2, 0.0, 2.0])       # constant features: x - value, sigma = 1


def test_normalizer_tensors_float32_and_errors():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2, 50)) * [[2.0], [5.0]]
    norm = data.Normalizer().fit(dl.Tensor(X))
    Xt = dl.Tensor(X, requires_grad=True)
    Z = norm(Xt)
    assert isinstance(Z, dl.Tensor)
    Z.sum().backward()                                             # gradient flows: dZ/dX = 1/sigma
    np.testing.assert_allclose(Xt.grad, np.broadcast_to(1 / X.std(axis=1, keepdims=True), X.shape), rtol=1e-12)
    Z32 = norm(X.astype(np.float32))
    assert Z32.dtype == np.float32 and norm(dl.Tensor(X.astype(np.float32))).dtype == np.float32
    with pytest.raises(ValueError, match=r"fitted on 2 features, so X must be \(2, m\); got shape \(3, 50\)"):
        norm(np.zeros((3, 50)))
    with pytest.raises(ValueError, match="call fit"):
        data.Normalizer().transform(X)
    with pytest.raises(ValueError, match="Normalizer.fit"):
        data.Normalizer().fit(np.zeros(5))


# ============================================================ minibatches (§3.3.1)

@given(m=st.integers(1, 300), batch_size=st.integers(1, 100), seed=st.integers(0, 100))
@settings(max_examples=60, deadline=None)
def test_minibatches_partition_a_shuffle(m, batch_size, seed):
    X, Y = tagged(3, m)
    batches = list(data.minibatches(X, Y, batch_size, rng=np.random.default_rng(seed)))
    sizes = [xb.shape[1] for xb, _ in batches]
    expected = [batch_size] * (m // batch_size) + ([m % batch_size] if m % batch_size else [])
    assert sizes == expected
    for xb, yb in batches:
        assert np.array_equal(xb[0], yb)
    order = np.concatenate([yb for _, yb in batches])
    assert np.array_equal(order, np.random.default_rng(seed).permutation(m))   # the course: permute, then cut


def test_minibatches_no_shuffle_one_hot_tensors_and_errors():
    X, Y = tagged(2, 10)
    assert [yb.tolist() for _, yb in data.minibatches(X, Y, 4, shuffle=False)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    Yoh = np.eye(3)[:, np.arange(10) % 3]
    for xb, yb in data.minibatches(X, Yoh, 3, rng=np.random.default_rng(0)):
        assert yb.shape == (3, xb.shape[1]) and np.array_equal(yb.argmax(0), xb[0].astype(int) % 3)
    tb = next(iter(data.minibatches(dl.Tensor(X), dl.Tensor(Yoh), 4)))
    assert isinstance(tb[0], dl.Tensor) and isinstance(tb[1], dl.Tensor)
    with pytest.raises(ValueError, match=r"minibatches: X has m = 10 examples .* but Y has 8"):
        data.minibatches(X, Y[:8])               # raised at the call, not at the first next()
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        data.minibatches(X, Y, 0)


# ============================================================ EarlyStopping (§3.1)

def test_early_stopping_history():
    stop = data.EarlyStopping(patience=3)
    costs = [5.0, 4.0, 3.0, 3.5, 3.2, 2.9, 3.0, 3.1, 3.2, 1.0]
    decisions = [stop.step(c) for c in costs[:9]]
    assert decisions == [False] * 8 + [True]
    assert stop.best_cost == 2.9 and stop.best_step == 6 and stop.should_stop

    stop = data.EarlyStopping(patience=2, min_delta=0.1)
    assert [stop.step(c) for c in [1.0, 0.95, 0.85, 0.8, 0.79]] == [False, False, False, False, True]
    assert stop.best_cost == 0.85 and stop.best_step == 3        # 0.95 and 0.8 were not better by 0.1

    stop = data.EarlyStopping(patience=2)
    assert [stop.step(c) for c in [1.0, float("nan"), dl.Tensor(0.5), float("nan"), float("nan")]] == \
        [False, False, False, False, True]
    assert stop.best_cost == 0.5


def test_early_stopping_restores_the_best_parameters_in_place():
    W = dl.Tensor(np.zeros((2, 2)), requires_grad=True)
    b = dl.Tensor(np.zeros((2, 1)), requires_grad=True)

    class Net:
        def parameters(self):
            return [W, b]

    stop, net, data_W = data.EarlyStopping(patience=2), Net(), W.data
    for epoch, cost in enumerate([3.0, 2.0, 2.5, 2.6]):
        W.data += 1.0
        b.data -= 1.0
        if stop.step(cost, net):
            break
    assert epoch == 3 and stop.best_step == 2
    stop.restore()
    assert W.data is data_W and np.all(W.data == 2.0) and np.all(b.data == -2.0)
    W.data[:] = 9.0
    stop.restore([W, b])
    assert np.all(W.data == 2.0)
    with pytest.raises(ValueError, match="saved 2 parameters, got 1"):
        stop.restore([W])
    with pytest.raises(ValueError, match="no parameters were saved"):
        data.EarlyStopping().restore()
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        data.EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="min_delta"):
        data.EarlyStopping(min_delta=-1)


# ============================================================ smooth (§3.3.2)

@given(costs=st.lists(st.floats(0, 100), min_size=1, max_size=50), beta=st.floats(0, 0.99))
@settings(max_examples=50, deadline=None)
def test_smooth_closed_form(costs, beta):
    c = np.array(costs)
    expected = [sum((1 - beta) * beta ** (t - i) * c[i - 1] for i in range(1, t + 1)) / (1 - beta ** t)
                for t in range(1, len(c) + 1)]
    np.testing.assert_allclose(data.smooth(costs, beta), expected, rtol=1e-9, atol=1e-9)


def test_smooth_constant_identity_and_input_kinds():
    np.testing.assert_allclose(data.smooth([2.0] * 10), 2.0, rtol=1e-14)   # bias-corrected: exact from step 1
    noisy = np.random.default_rng(0).normal(size=30)
    assert np.array_equal(data.smooth(noisy, beta=0.0), noisy)
    assert data.smooth([dl.Tensor(1.0), dl.Tensor(3.0)], beta=0.5).tolist() == [1.0, pytest.approx(7 / 3)]
    assert data.smooth([], 0.9).shape == (0,)
    raw = data.smooth([1.0, 1.0], beta=0.5, bias_correction=False)
    assert raw.tolist() == [0.5, 0.75]
    with pytest.raises(ValueError, match="1-D"):
        data.smooth(np.zeros((2, 2)))


# ============================================================ augment (§3.1)

IMG = np.arange(1.0, 10.0).reshape(3, 3)      # [[1 2 3] [4 5 6] [7 8 9]]


@pytest.mark.parametrize("dy,dx,flip,expected", [
    (0, 0, False, [[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
    (1, 0, False, [[0, 0, 0], [1, 2, 3], [4, 5, 6]]),     # down
    (0, 1, False, [[0, 1, 2], [0, 4, 5], [0, 7, 8]]),     # right
    (-1, -1, False, [[5, 6, 0], [8, 9, 0], [0, 0, 0]]),   # up and left
    (0, 0, True, [[3, 2, 1], [6, 5, 4], [9, 8, 7]]),      # mirrored
    (0, 1, True, [[0, 3, 2], [0, 6, 5], [0, 9, 8]]),      # mirrored, then right
    (2, -2, False, [[0, 0, 0], [0, 0, 0], [3, 0, 0]]),
])
def test_shift_images_on_a_hand_made_3x3_image(dy, dx, flip, expected):
    out = data.shift_images(IMG.reshape(9, 1), (3, 3), dy, dx, flip)
    assert out.shape == (9, 1)
    assert out.reshape(3, 3).tolist() == expected


def loop_oracle(img, dy, dx, flip):
    """One image at a time, with np.roll and a zero mask: independent of the gather in shift_images."""
    if flip:
        img = img[:, ::-1]
    out = np.roll(img, (dy, dx), axis=(0, 1))
    h, w = img.shape
    rows, cols = np.arange(h)[:, None] - dy, np.arange(w)[None, :] - dx
    return np.where((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w), out, 0.0)


def test_shift_images_matches_the_loop_oracle_per_image():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 30))              # 4 x 5 images
    dy, dx, flip = rng.integers(-3, 4, 30), rng.integers(-3, 4, 30), rng.random(30) < 0.5
    out = data.shift_images(X, (4, 5), dy, dx, flip)
    for j in range(30):
        np.testing.assert_array_equal(out[:, j].reshape(4, 5), loop_oracle(X[:, j].reshape(4, 5), dy[j], dx[j], flip[j]))


@pytest.mark.parametrize("flips", [False, True])
def test_augment_shapes_alignment_and_transforms(flips):
    rng = np.random.default_rng(1)
    m, copies, s = 25, 3, 1
    X = rng.uniform(1, 2, size=(16, m))        # 4 x 4 images, no zero pixels: every transform is distinct
    Y = np.vstack([np.arange(m), np.arange(m) * 10])
    Xa, Ya = data.augment(X, Y, (4, 4), flips=flips, shifts=s, copies=copies, rng=5)
    assert Xa.shape == (16, m * (1 + copies)) and Ya.shape == (2, m * (1 + copies))
    assert np.array_equal(Xa[:, :m], X) and np.array_equal(Ya[:, :m], Y)
    flipped = 0
    for k in range(m, m * (1 + copies)):
        src = Ya[0, k]
        assert Ya[1, k] == 10 * src
        assert src == k % m                    # copies follow the originals' order
        img = X[:, src].reshape(4, 4)
        matches = [(dy, dx, f) for dy in range(-s, s + 1) for dx in range(-s, s + 1) for f in (False, True)
                   if np.array_equal(Xa[:, k].reshape(4, 4), loop_oracle(img, dy, dx, f))]
        assert matches, f"column {k} is no shift/flip of image {src}"
        assert flips or not any(f for _, _, f in matches)
        flipped += all(f for _, _, f in matches)
    if flips:
        assert 0.25 * 75 < flipped < 0.75 * 75


def test_augment_determinism_noise_and_labels_1d():
    rng = np.random.default_rng(2)
    X, y = rng.uniform(size=(64, 40)), np.arange(40) % 10
    a = data.augment(X, y, noise=0.1, copies=2, rng=7)
    b = data.augment(X, y, noise=0.1, copies=2, rng=np.random.default_rng(7))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], data.augment(X, y, noise=0.1, copies=2, rng=8)[0])
    assert np.array_equal(a[1], np.tile(y, 3))
    # with no shift and no flip the copies differ from the originals by the noise alone
    Xn, _ = data.augment(X, y, shifts=0, noise=0.5, copies=5, rng=0)
    diff = Xn[:, 40:] - np.tile(X, 5)
    assert abs(diff.std() / 0.5 - 1) < 0.05 and abs(diff.mean()) < 0.02
    Xc, _ = data.augment(X, y, shifts=0, copies=2, rng=0)
    assert np.array_equal(Xc, np.tile(X, 3))
    X0, y0 = data.augment(X, y, copies=0, rng=0)
    assert np.array_equal(X0, X) and np.array_equal(y0, y)
    Xonly, yonly = data.augment(X, y, copies=1, rng=0, include_original=False)
    assert Xonly.shape == (64, 40) and np.array_equal(yonly, y)
    Xt, Yt = data.augment(dl.Tensor(X), dl.Tensor(np.eye(10)[:, y]), rng=0)
    assert isinstance(Xt, dl.Tensor) and Xt.shape == (64, 80) and Yt.shape == (10, 80)
    X32 = data.augment(X.astype(np.float32), y, noise=0.1, rng=0)[0]
    assert X32.dtype == np.float32


def test_augment_errors():
    X, y = np.zeros((64, 5)), np.arange(5)
    with pytest.raises(ValueError, match=r"augment: image_shape \(8, 7\) has 56 pixels but X has 64 rows"):
        data.augment(X, y, image_shape=(8, 7))
    with pytest.raises(ValueError, match="shifts must be an int >= 0"):
        data.augment(X, y, shifts=-1)
    with pytest.raises(ValueError, match="copies must be an int >= 0"):
        data.augment(X, y, copies=-2)
    with pytest.raises(ValueError, match="noise"):
        data.augment(X, y, noise=-0.1)
    with pytest.raises(ValueError, match=r"X has m = 5 examples .* but Y has 4"):
        data.augment(X, y[:4])
    with pytest.raises(ValueError, match=r"image_shape must be \(h, w\)"):
        data.augment(X, y, image_shape=64)


# ============================================================ two-way split, empty labels, big shifts

def test_split_train_test_two_way():
    X, Y = tagged(2, 10)
    (X_tr, Y_tr), (X_te, Y_te) = data.split(X, Y, (0.8, 0.2), rng=3)
    order = np.random.default_rng(3).permutation(10)                 # the oracle: permute, then cut 8 | 2
    assert Y_tr.tolist() == order[:8].tolist() and Y_te.tolist() == order[8:].tolist()
    assert np.array_equal(X_tr[0], Y_tr) and np.array_equal(X_te[0], Y_te)
    (a, _), (b, _) = data.split(X, Y, (0.75, 0.25), shuffle=False)
    assert a.shape == (2, 8) and b.shape == (2, 2)                   # 7.5 | 2.5: the larger remainder wins first


def test_one_hot_edges():
    assert data.one_hot([], n_classes=3).shape == (3, 0)
    with pytest.raises(ValueError, match=r"no labels .* n_classes=10"):
        data.one_hot([])
    assert data.one_hot(np.array([1.0, 0.0])).tolist() == [[0, 1], [1, 0]]
    for bad in ([0.5, 1], [np.inf, 1], [np.nan]):
        with pytest.raises(ValueError, match="whole numbers"):
            data.one_hot(bad)
    with pytest.raises(TypeError, match="labels must be integers"):
        data.one_hot(["a", "b"])
    with pytest.raises(ValueError, match=">= 0"):
        data.one_hot([-1, 2])
    with pytest.raises(ValueError, match=r"shape \(m,\)"):
        data.one_hot([[1, 2]])


def test_shifts_larger_than_the_image_give_zeros_without_allocating():
    import tracemalloc
    X = np.arange(1.0, 17.0).reshape(16, 1)                          # one 4 x 4 image
    for dy, dx in [(4, 0), (0, -4), (10 ** 9, 0), (0, -(10 ** 30)), (2 ** 62, 2 ** 62)]:
        tracemalloc.start()
        try:
            out = data.shift_images(X, (4, 4), dy, dx)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert out.shape == (16, 1) and not out.any() and peak < 100_000, (dy, dx, peak)
    np.testing.assert_array_equal(data.shift_images(X, (4, 4), 3, 0).reshape(4, 4),
                                  loop_oracle(X.reshape(4, 4), 3, 0, False))    # one row left: the edge case
    np.testing.assert_array_equal(data.shift_images(X, (4, 4), np.array([3]), -3).reshape(4, 4),
                                  loop_oracle(X.reshape(4, 4), 3, -3, False))
    with pytest.raises(TypeError, match="whole numbers of pixels"):
        data.shift_images(X, (4, 4), 0.5, 0)
    with pytest.raises(ValueError, match=r"dy must be one int or 1 ints"):
        data.shift_images(X, (4, 4), [1, 2], 0)
    X8, y = np.ones((64, 5)), np.arange(5)
    Xa, _ = data.augment(X8, y, shifts=10 ** 6, copies=3, rng=0)
    assert Xa.shape == (64, 20) and not Xa[:, 5:].any() and np.all(Xa[:, :5] == 1)
    with pytest.raises(ValueError, match="below 2\\*\\*62"):
        data.augment(X8, y, shifts=2 ** 70, rng=0)


# ============================================================ the rng rule, per function

def test_minibatches_refuses_an_int_seed_and_says_how():
    X, Y = tagged(2, 10)
    with pytest.raises(TypeError, match=r"minibatches: rng=0 would draw the same order at every call.*"
                                        r"rng = np\.random\.default_rng\(0\)"):
        data.minibatches(X, Y, 4, rng=0)


def test_minibatches_with_a_generator_reshuffle_every_epoch_and_reproduce():
    X, Y = tagged(2, 30)

    def run(seed):
        rng = np.random.default_rng(seed)
        return [np.concatenate([yb for _, yb in data.minibatches(X, Y, 8, rng=rng)]) for _ in range(4)]
    epochs = run(7)
    oracle = np.random.default_rng(7)                                 # one permutation per epoch, in sequence
    for order in epochs:
        assert order.tolist() == oracle.permutation(30).tolist()
    assert len({tuple(o) for o in epochs}) == 4                       # fresh every epoch
    assert all(np.array_equal(a, b) for a, b in zip(epochs, run(7)))  # the same seed again, same process
    assert not all(np.array_equal(a, b) for a, b in zip(epochs, run(8)))


def test_one_shot_functions_repeat_for_an_int_and_continue_for_a_generator():
    X, Y = tagged(64, 12)
    for call in (lambda r: data.split(X, Y, (0.5, 0.5), rng=r)[0][1],
                 lambda r: data.augment(X, Y, (8, 8), noise=0.1, rng=r)[0]):
        assert np.array_equal(call(4), call(4))                        # an int: the same result every time
        g = np.random.default_rng(4)
        first, second = call(g), call(g)
        assert np.array_equal(first, call(4)) and not np.array_equal(first, second)   # a Generator continues
        g2 = np.random.default_rng(4)
        assert np.array_equal(call(g2), first) and np.array_equal(call(g2), second)   # and reproduces
    with pytest.raises(TypeError, match="Generator"):
        data.split(X, Y, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="non-negative"):
        data.augment(X, Y, (8, 8), rng=-1)


def test_early_stopping_restore_counts_as_a_change():
    W = dl.Tensor(np.ones((2, 2)), requires_grad=True)
    stop = data.EarlyStopping(patience=1)
    stop.step(1.0, [W])
    cost = (W * W).sum()
    stop.restore()
    with pytest.raises(RuntimeError, match="changed in place"):
        cost.backward()


def test_one_hot_refuses_a_label_that_would_make_a_huge_matrix():
    with pytest.raises(ValueError, match="pass n_classes= if that is really meant"):
        dl.data.one_hot(np.array([3, 1e9]))
    assert dl.data.one_hot(np.array([2, 0])).shape == (3, 2)


def test_early_stopping_takes_one_number():
    stop = dl.data.EarlyStopping(patience=2)
    with pytest.raises(ValueError, match=r"expected one dev cost \(a number\), got shape \(2,\)"):
        stop.step(dl.Tensor([1.0, 2.0]))
    assert stop.step(dl.Tensor(0.5)) is False and stop.best_cost == 0.5
