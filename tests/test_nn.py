"""tinygrad_dl.nn: modules, parameter names, modes, state files, and whole networks against independent oracles
(the course's hand-written backprop in NumPy; PyTorch training the same network from the same weights)."""
import os
import pickle

import numpy as np
import pytest

import tinygrad_dl as dl
import tinygrad_dl.functional as F
import tinygrad_dl.init as init
import tinygrad_dl.nn as nn
from tinygrad_dl.tensor import toposort

from conftest import need_module


def mlp(dims, hidden=nn.ReLU, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    layers = []
    for l in range(1, len(dims)):
        layers.append(nn.Dense(dims[l - 1], dims[l], rng=rng, dtype=dtype))
        if l < len(dims) - 1:
            layers.append(hidden())
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- Dense

@pytest.mark.parametrize("name", ["he", "xavier", "glorot", "normal", "zeros"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_initialization(name, dtype):
    layer = nn.Dense(5, 3, init=name, rng=7, dtype=dtype)
    want = init.get(name)((3, 5), rng=7, dtype=dtype)
    assert layer.W.shape == (3, 5) and layer.b.shape == (3, 1)
    assert layer.W.dtype == layer.b.dtype == dtype
    assert layer.W.requires_grad and layer.b.requires_grad
    np.testing.assert_array_equal(layer.W.data, want)
    np.testing.assert_array_equal(layer.b.data, np.zeros((3, 1)))


def test_dense_init_scales():
    W = nn.Dense(400, 300, init="he", rng=0).W.data
    assert W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    W = nn.Dense(400, 300, init="xavier", rng=0).W.data
    assert W.std() == pytest.approx(np.sqrt(1 / 400), rel=0.02)


def test_dense_computes_the_course_formula():
    rng = np.random.default_rng(1)
    layer = nn.Dense(4, 3, rng=rng)
    layer.b.data[:] = rng.standard_normal((3, 1))
    X = rng.standard_normal((4, 6))
    Z = layer(X)
    np.testing.assert_allclose(Z.data, layer.W.data @ X + layer.b.data, rtol=1e-14, atol=1e-15)


def test_dense_wrong_input_message():
    layer = nn.Dense(4, 3)
    with pytest.raises(ValueError) as e:
        layer(np.ones((5, 2)))
    msg = str(e.value)
    assert "Dense(4 -> 3)" in msg and "(4, m)" in msg and "(5, 2)" in msg and "examples as columns" in msg
    with pytest.raises(ValueError, match=r"A\.T"):
        layer(np.ones((2, 4)))                      # rows given: the hint says transpose
    with pytest.raises(ValueError, match=r"got \(4,\)"):
        layer(np.ones(4))
    model = nn.Sequential(nn.Dense(2, 3), nn.ReLU(), nn.Dense(4, 1))
    with pytest.raises(ValueError, match="'layers.2'"):
        model(np.ones((2, 5)))                      # names the layer inside the model


@pytest.mark.parametrize("bad", [dict(n_in=0, n_out=3), dict(n_in=2.0, n_out=3), dict(n_in=2, n_out=-1),
                                 dict(n_in=True, n_out=2)])
def test_dense_refuses_bad_sizes(bad):
    with pytest.raises(ValueError, match="Dense"):
        nn.Dense(**bad)


def test_dense_refuses_unknown_init():
    with pytest.raises(ValueError, match="unknown initializer"):
        nn.Dense(2, 3, init="kaiming")


def test_dense_accepts_a_callable_init():
    def small(shape, rng=None, dtype=np.float64):
        return init.normal(shape, scale=0.01, rng=rng, dtype=dtype)
    layer = nn.Dense(3, 2, init=small, rng=0)
    np.testing.assert_array_equal(layer.W.data, init.normal((2, 3), 0.01, rng=0))
    assert repr(layer) == "Dense(3 -> 2, init=small)"


def test_reprs():
    assert repr(nn.Dense(12288, 20)) == "Dense(12288 -> 20, init=he)"
    model = nn.Sequential(nn.Dense(4, 3, init="xavier"), nn.Tanh(), nn.Dropout(0.8), nn.Dense(3, 2),
                          nn.LeakyReLU(0.2), nn.Softmax(axis=0), nn.Sigmoid(), nn.ReLU())
    assert repr(model) == ("Sequential(\n  (0): Dense(4 -> 3, init=xavier)\n  (1): Tanh()\n"
                           "  (2): Dropout(keep_prob=0.8)\n  (3): Dense(3 -> 2, init=he)\n"
                           "  (4): LeakyReLU(alpha=0.2)\n  (5): Softmax(axis=0)\n  (6): Sigmoid()\n  (7): ReLU()\n)")
    assert "dtype=float32" in repr(nn.Dense(2, 2, dtype=np.float32))


# ---------------------------------------------------------------- registration and names

class TwoHeads(nn.Module):
    """Registration by attribute assignment, like PyTorch."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Dense(4, 3, rng=0), nn.ReLU())
        self.head = nn.Dense(3, 2, rng=1)
        self.scale = dl.Tensor(np.ones((2, 1)), requires_grad=True)
        self.note = "not a parameter"
        self.constant = dl.Tensor(np.ones(2))     # no gradient: not a parameter

    def forward(self, X):
        return self.head(self.body(X)) * self.scale


def test_parameter_names_follow_module_paths():
    d = nn.Dense(3, 2)
    assert (d.W.name, d.b.name) == ("W", "b")
    assert d(np.ones((3, 1))).name == "Z"
    model = mlp([3, 4, 1])
    assert [n for n, _ in model.named_parameters()] == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b"]
    assert [p.name for p in model.parameters()] == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b"]
    assert d.W.name == "W"                            # a different layer: unchanged
    net = TwoHeads()
    names = ["body.layers.0.W", "body.layers.0.b", "head.W", "head.b", "scale"]
    assert sorted(n for n, _ in net.named_parameters()) == sorted(names)
    assert sorted(p.name for p in net.parameters()) == sorted(names)
    out = net(np.ones((4, 2)))
    zs = sorted(t.name for t in toposort([out]) if t.name and t.name.endswith("Z"))
    assert zs == ["body.layers.0.Z", "head.Z"]      # the visualizer groups each layer's ops by these
    assert [name for name, _ in net.named_modules()] == ["", "body", "body.layers.0", "body.layers.1", "head"]


def test_names_are_renewed_when_attached():
    model = mlp([2, 3, 1])
    wrapper = nn.Module()
    wrapper.net = model
    assert model[0].W.name == "net.layers.0.W"
    model.append(nn.Dense(1, 1))
    assert model[3].W.name == "net.layers.3.W"
    assert [n for n, _ in model.named_parameters()][-1] == "layers.3.b"    # relative to the module asked


def test_reassigning_and_deleting_attributes():
    net = TwoHeads()
    net.scale = dl.Tensor(np.full((2, 1), 2.0), requires_grad=True)
    assert net.scale.name == "scale" and sum(p is net.scale for p in net.parameters()) == 1
    net.head = None
    assert not any(n.startswith("head") for n, _ in net.named_parameters())
    del net.scale
    assert "scale" not in dict(net.named_parameters())
    with pytest.raises(TypeError, match="leaf"):
        net.bad = dl.Tensor(np.ones(2), requires_grad=True) * 2


def test_shared_layers_are_counted_once():
    shared = nn.Dense(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(model.parameters()) == 2


def test_weights_are_the_Ws():
    model = mlp([3, 4, 2, 1])
    assert model.weights() == [model[0].W, model[2].W, model[4].W]


def test_sequential_container():
    layers = [nn.Dense(2, 3), nn.Tanh(), nn.Dense(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers and model[1] is layers[1] and model[-1] is layers[2]
    assert model.layers == layers
    assert list(nn.Sequential(layers)) == layers      # a single list is accepted too
    part = model[1:]
    assert isinstance(part, nn.Sequential) and list(part) == layers[1:]
    assert layers[2].W.name == "layers.2.W"         # slicing does not rename the shared layers
    with pytest.raises(TypeError, match="layer 1 is a function"):
        nn.Sequential(nn.Dense(2, 2), F.relu)


def test_zero_grad():
    model = mlp([3, 4, 1])
    F.mse(model(np.ones((3, 2))), np.zeros((1, 2))).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------------- train / eval and dropout

def test_train_eval_propagate_and_dropout_only_in_training():
    drop = nn.Dropout(0.5, rng=0)
    net = nn.Module()
    net.inner = nn.Sequential(nn.Dense(3, 3), drop)
    assert net.training and drop.training
    X = np.ones((3, 200))
    assert net.eval() is net and not drop.training and not net.inner.training
    Z = net.inner(X)
    np.testing.assert_array_equal(drop(Z).data, Z.data)
    net.train()
    assert drop.training
    out = drop(Z).data
    assert np.any(out == 0) and np.allclose(out[out != 0], 2 * Z.data[out != 0])
    net.train(False)
    assert not drop.training


def test_dropout_module_masks():
    A = dl.Tensor(np.ones((20, 30)))
    a, b = nn.Dropout(0.7, rng=3), nn.Dropout(0.7, rng=3)
    first = a(A).data
    np.testing.assert_array_equal(first, b(A).data)           # same seed, same masks
    assert not np.array_equal(first, a(A).data)              # the stream continues
    a.fixed_mask = True
    np.testing.assert_array_equal(a(A).data, a(A).data)       # a fixed mask, e.g. for gradient checking
    np.testing.assert_array_equal(a(A).data, np.where(a.mask, 1 / 0.7, 0.0).astype(np.float64))
    with pytest.raises(ValueError, match="Dropout: keep_prob"):
        nn.Dropout(1.2)


def test_gradient_check_through_dropout_with_a_fixed_mask():
    from tinygrad_dl.testing import numerical_grad
    rng = np.random.default_rng(0)
    drop = nn.Dropout(0.6, rng=1)
    model = nn.Sequential(nn.Dense(3, 5, rng=rng), nn.Tanh(), drop, nn.Dense(5, 1, rng=rng))
    X, Y = rng.standard_normal((3, 4)), (rng.random((1, 4)) < 0.5).astype(float)
    model(X)
    drop.fixed_mask = True
    W = model[0].W

    def cost(W_):
        W.data = W_.data
        return F.binary_cross_entropy_with_logits(model(X), Y)

    W0 = W.data.copy()
    want = numerical_grad(cost, [W0])[0]
    W.data = W0
    model.zero_grad()
    F.binary_cross_entropy_with_logits(model(X), Y).backward()
    np.testing.assert_allclose(W.grad, want, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- the course's backprop by hand (§2.3)

def course_backprop(params, X, Y, g, g_prime):
    """Forward and backward written out as in the course notes (2.9)-(2.12), for a sigmoid output layer."""
    L = len(params)
    A, cache = X, []
    for l, (W, b) in enumerate(params, 1):
        Z = W @ A + b
        cache.append((A, Z))
        A = 1 / (1 + np.exp(-Z)) if l == L else g(Z)
    m = X.shape[1]
    grads = [None] * L
    dZ = A - Y                                                         # (2.9)
    for l in reversed(range(L)):
        A_prev, _ = cache[l]
        W = params[l][0]
        grads[l] = (dZ @ A_prev.T / m, np.sum(dZ, axis=1, keepdims=True) / m)   # (2.10), (2.11)
        if l:
            dZ = W.T @ dZ * g_prime(cache[l - 1][1])                    # (2.12)
    return grads


@pytest.mark.parametrize("hidden, g, g_prime", [
    (nn.ReLU, lambda Z: np.maximum(0, Z), lambda Z: (Z > 0).astype(float)),
    (nn.Tanh, np.tanh, lambda Z: 1 - np.tanh(Z) ** 2),
    (nn.Sigmoid, lambda Z: 1 / (1 + np.exp(-Z)), lambda Z: 1 / (1 + np.exp(-Z)) * (1 - 1 / (1 + np.exp(-Z)))),
])
@pytest.mark.parametrize("cost", ["bce_of_sigmoid", "bce_with_logits"])
def test_three_layer_gradients_equal_the_course_backprop(hidden, g, g_prime, cost):
    rng = np.random.default_rng(11)
    model = mlp([5, 4, 3, 1], hidden=hidden, seed=2)
    for layer in model.layers[::2]:
        layer.b.data[:] = rng.standard_normal(layer.b.shape) * 0.1
    X, Y = rng.standard_normal((5, 9)), (rng.random((1, 9)) < 0.5).astype(float)
    Z = model(X)
    J = F.binary_cross_entropy(F.sigmoid(Z), Y) if cost == "bce_of_sigmoid" else \
        F.binary_cross_entropy_with_logits(Z, Y)
    J.backward()
    dense = model.layers[::2]
    want = course_backprop([(d.W.data, d.b.data) for d in dense], X, Y, g, g_prime)
    for layer, (dW, db) in zip(dense, want):
        np.testing.assert_allclose(layer.W.grad, dW, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(layer.b.grad, db, rtol=1e-10, atol=1e-15)


def test_softmax_network_gradients_equal_the_course_backprop():
    rng = np.random.default_rng(5)
    model = mlp([6, 5, 4], seed=3)
    X, labels = rng.standard_normal((6, 10)), rng.integers(0, 4, 10)
    Y = np.eye(4)[labels].T
    F.cross_entropy(model(X), labels).backward()
    W1, b1, W2, b2 = (p.data for p in model.parameters())
    Z1 = W1 @ X + b1
    A1 = np.maximum(0, Z1)
    Z2 = W2 @ A1 + b2
    A2 = np.exp(Z2) / np.exp(Z2).sum(axis=0, keepdims=True)
    dZ2 = A2 - Y
    dZ1 = W2.T @ dZ2 * (Z1 > 0)
    want = [dZ1 @ X.T / 10, dZ1.sum(axis=1, keepdims=True) / 10, dZ2 @ A1.T / 10, dZ2.sum(axis=1, keepdims=True) / 10]
    for p, w in zip(model.parameters(), want):
        np.testing.assert_allclose(p.grad, w, rtol=1e-10, atol=1e-15)


# ---------------------------------------------------------------- float32 end to end

def test_float32_network_trains_in_float32():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 64)).astype(np.float32)
    Y = (X[:1] * X[1:2] > 0).astype(np.float32)
    costs = {}
    for dtype in (np.float32, np.float64):
        model = nn.Sequential(nn.Dense(4, 8, rng=1, dtype=dtype), nn.Tanh(), nn.Dropout(0.9, rng=2),
                              nn.Dense(8, 1, rng=3, dtype=dtype))
        history = []
        for _ in range(60):
            J = F.binary_cross_entropy_with_logits(model(X), Y) + F.l2_penalty(model, 0.01, 64)
            if dtype == np.float32:
                assert all(t.dtype == np.float32 for t in toposort([J], include_constants=True))
            model.zero_grad()
            J.backward()
            for p in model.parameters():
                assert p.grad.dtype == dtype
                p.data -= 0.5 * p.grad
            history.append(J.item())
        assert all(p.dtype == dtype for p in model.parameters())
        costs[dtype] = history
    assert costs[np.float32][-1] < 0.8 * costs[np.float32][0]
    np.testing.assert_allclose(costs[np.float32], costs[np.float64], rtol=1e-4)


# ---------------------------------------------------------------- state: dicts and files

def test_state_dict_is_a_snapshot():
    model = mlp([3, 4, 1])
    state = model.state_dict()
    assert list(state) == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b"]
    before = state["layers.0.W"].copy()
    model[0].W.data += 1
    np.testing.assert_array_equal(state["layers.0.W"], before)
    model.load_state_dict(state)
    np.testing.assert_array_equal(model[0].W.data, before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_load_round_trip_bit_for_bit(tmp_path, dtype):
    model = mlp([5, 4, 3, 2], seed=1, dtype=dtype)
    for p in model.parameters():
        p.data[...] = np.random.default_rng(9).standard_normal(p.shape).astype(dtype) * 1e-3 + np.nextafter(
            dtype(0.1), dtype(1))
    path = tmp_path / "weights.params"
    assert model.save(path) == str(path)
    assert sorted(os.listdir(tmp_path)) == ["weights.params"]       # exactly that name, no temp file left
    other = mlp([5, 4, 3, 2], seed=2, dtype=dtype)
    assert other.load(path) is other
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), other.named_parameters()):
        assert n1 == n2 and p1.dtype == p2.dtype and p1.data.tobytes() == p2.data.tobytes()
    with np.load(path, allow_pickle=False) as f:                     # a plain .npz that NumPy reads
        assert sorted(f.files) == sorted(n for n, _ in model.named_parameters())


def _assert_unchanged(model, before):
    for (name, p), (_, b) in zip(model.named_parameters(), before):
        np.testing.assert_array_equal(p.data, b, err_msg=name)


def test_load_refuses_missing_extra_and_misshaped(tmp_path):
    small, big = mlp([3, 4, 1]), mlp([3, 4, 2, 1])
    small.save(tmp_path / "small.npz")
    big.save(tmp_path / "big.npz")
    before = [(n, p.data.copy()) for n, p in big.named_parameters()]
    with pytest.raises(ValueError, match=r"missing parameter\(s\) \['layers.4.W', 'layers.4.b'\]") as e:
        big.load(tmp_path / "small.npz")
    assert "small.npz" in str(e.value)
    _assert_unchanged(big, before)
    with pytest.raises(ValueError, match=r"unexpected array\(s\) \['layers.4.W', 'layers.4.b'\]"):
        small.load(tmp_path / "big.npz")
    other = mlp([3, 5, 1])
    before = [(n, p.data.copy()) for n, p in other.named_parameters()]
    with pytest.raises(ValueError, match=r"parameter 'layers.0.W' has shape \(4, 3\) in the state but \(5, 3\)"):
        other.load(tmp_path / "small.npz")
    _assert_unchanged(other, before)                                  # nothing half-loaded
    state = small.state_dict()
    state["layers.0.b"] = state["layers.0.b"].astype(np.int64)
    with pytest.raises(ValueError, match="'layers.0.b' has dtype int64"):
        small.load_state_dict(state)
    del state["layers.0.b"]
    small.load_state_dict(state, strict=False)


class _Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_files_cannot_run_code(tmp_path):
    marker = str(tmp_path / "pwned")
    model = nn.Dense(2, 1)
    # 1. an .npz whose array is a pickled object
    evil_npz = tmp_path / "evil.npz"
    np.savez(evil_npz, W=np.array([_Payload(marker)], dtype=object), b=np.zeros((1, 1)))
    with pytest.raises(ValueError, match="'W'.*refused"):
        model.load(evil_npz)
    # 2. a bare pickle with a .npz name
    evil_pickle = tmp_path / "evil2.npz"
    with open(evil_pickle, "wb") as f:
        pickle.dump({"W": _Payload(marker)}, f)
    with pytest.raises(ValueError, match="not a parameter file"):
        model.load(evil_pickle)
    assert not os.path.exists(marker)
    # sanity: the payload does run code when unpickled, so the test above can fail
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert os.path.exists(marker)


def test_malformed_files_are_refused(tmp_path):
    model = nn.Dense(2, 1)
    good = tmp_path / "good.npz"
    model.save(good)
    np.save(tmp_path / "single.npy", np.zeros((1, 2)))
    with pytest.raises(ValueError, match="single array"):
        model.load(tmp_path / "single.npy")
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 definitely not a zip file")
    with pytest.raises(ValueError, match="garbage.npz"):
        model.load(tmp_path / "garbage.npz")
    (tmp_path / "truncated.npz").write_bytes(good.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated.npz"):
        model.load(tmp_path / "truncated.npz")
    with pytest.raises(FileNotFoundError):
        model.load(tmp_path / "absent.npz")


# ---------------------------------------------------------------- real data: the same run as PyTorch

def _torch_copy(model, torch):
    return [torch.tensor(p.data.copy(), requires_grad=True) for p in model.parameters()]


def _torch_forward(params, X, torch, hidden_layers):
    A = X
    for l in range(0, len(params), 2):
        A = params[l] @ A + params[l + 1]
        if l // 2 < hidden_layers:
            A = torch.relu(A)
    return A


@pytest.fixture
def torch():
    torch = need_module("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # small matrices: threads only contend with each other on a busy machine
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield torch
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            yield torch
    torch.set_num_threads(threads)


def _train_both(model, X, Y, cost_ours, cost_torch, lr, steps, torch):
    theirs = _torch_copy(model, torch)
    Xt = torch.tensor(X)
    n_hidden = len(theirs) // 2 - 1
    ours_costs, torch_costs = [], []
    for _ in range(steps):
        J = cost_ours(model(X), Y)
        model.zero_grad()
        J.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
        ours_costs.append(J.item())
        Jt = cost_torch(_torch_forward(theirs, Xt, torch, n_hidden))
        for p in theirs:
            p.grad = None
        Jt.backward()
        with torch.no_grad():
            for p in theirs:
                p -= lr * p.grad
        torch_costs.append(Jt.item())
    with dl.no_grad(), torch.no_grad():
        return np.array(ours_costs), np.array(torch_costs), model(X).numpy(), \
            _torch_forward(theirs, Xt, torch, n_hidden).numpy()


def test_breast_cancer_same_run_as_torch(torch):
    need_module("sklearn")
    from sklearn.datasets import load_breast_cancer
    d = load_breast_cancer()
    X = d.data.T
    X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
    Y = d.target.reshape(1, -1).astype(np.float64)
    model = mlp([30, 16, 8, 1], seed=0)
    ours, theirs, Z, Zt = _train_both(
        model, X, Y, F.binary_cross_entropy_with_logits,
        lambda Z: torch.nn.functional.binary_cross_entropy_with_logits(Z, torch.tensor(Y)), 0.1, 300, torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    acc, acc_t = np.mean((Z > 0) == Y), np.mean((Zt > 0) == Y)
    assert acc == acc_t and acc > 0.97
    assert ours[-1] < 0.1 * ours[0]


def test_digits_same_run_as_torch(torch):
    need_module("sklearn")
    from sklearn.datasets import load_digits
    d = load_digits()
    X, labels = d.data.T / 16.0, d.target
    model = mlp([64, 32, 10], seed=0)
    ours, theirs, Z, Zt = _train_both(
        model, X, labels, F.cross_entropy,
        lambda Z: torch.nn.functional.cross_entropy(Z.T, torch.tensor(labels)), 0.5, 200, torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    acc, acc_t = np.mean(Z.argmax(0) == labels), np.mean(Zt.argmax(0) == labels)
    assert acc == acc_t and acc > 0.95


# ---------------------------------------------------------------- updating a parameter by assignment

def test_course_style_assignment_updates_the_same_parameter():
    layer = nn.Dense(3, 2, rng=0)
    W, b = layer.W, layer.b
    opt = dl.optim.GradientDescent(layer.parameters(), lr=0.5)       # holds the parameter objects
    X = np.random.default_rng(1).standard_normal((3, 4))
    F.mse(layer(X), np.zeros((2, 4))).backward()
    W0, dW = W.data.copy(), W.grad.copy()
    with dl.no_grad():
        layer.W = layer.W - 0.5 * layer.W.grad                      # the course's W := W - alpha dW
    assert layer.W is W and opt.params[0] is W                      # the same leaf: the optimizer sees the update
    assert W.requires_grad and W.creator is None and W.name == "W"
    assert [n for n, _ in layer.named_parameters()] == ["W", "b"]
    np.testing.assert_array_equal(W.data, W0 - 0.5 * dW)            # the formula, in NumPy
    np.testing.assert_array_equal(W.grad, dW)                       # .grad kept
    layer.b = np.ones((2, 1), np.float32)                           # any array of the right shape: new values
    assert layer.b is b and b.dtype == np.float64 and np.all(b.data == 1)
    layer.b = dl.Tensor(np.full((2, 1), 3.0))                      # a Tensor without gradient: its values
    assert layer.b is b and np.all(b.data == 3)
    new = dl.Tensor(np.zeros((2, 3)), requires_grad=True)          # a new parameter replaces the old one
    layer.W = new
    assert layer.W is new and dict(layer.named_parameters())["W"] is new and new.name == "W"


def test_assignment_that_would_lose_a_parameter_is_refused_with_the_fix():
    model = nn.Sequential(nn.Dense(3, 2, rng=0), nn.ReLU(), nn.Dense(2, 1, rng=1))
    layer = model[2]
    F.mse(model(np.ones((3, 4))), np.zeros((1, 4))).backward()
    before = layer.W.data.copy()
    with pytest.raises(TypeError) as e:                              # recorded: a graph node, not a parameter
        layer.W = layer.W - 0.5 * layer.W.grad
    msg = str(e.value)
    assert "Dense.W" in msg and "'layers.2.W'" in msg and "Sub" in msg and "no_grad" in msg and "-=" in msg
    with pytest.raises(ValueError, match=r"'layers.2.W' has shape \(1, 2\) but the value assigned has shape \(2, 1\)"):
        layer.W = np.zeros((2, 1))
    with pytest.raises(TypeError, match="del module.W"):
        layer.W = None
    with pytest.raises(TypeError, match="complex128"):
        layer.W = np.zeros((1, 2), complex)
    with pytest.raises(TypeError, match="<U1"):
        layer.W = np.array([["a", "b"]])
    assert [n for n, _ in model.named_parameters()] == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b"]
    np.testing.assert_array_equal(layer.W.data, before)              # nothing changed by a refused assignment
    nan = np.array([[np.nan, 1.0]])
    with dl.no_grad():
        layer.W = nan                                                # NaN is a value like any other: kept
    assert np.isnan(layer.W.data[0, 0]) and layer.W.data[0, 1] == 1


# ---------------------------------------------------------------- Dense input kinds

@pytest.mark.parametrize("bad", [np.ones((3, 2), complex), np.array([["1"] * 2] * 3), [["a", "b"]] * 3,
                                 np.empty((3, 2), object)])
def test_dense_refuses_non_real_input_with_a_type_error(bad, recwarn):
    with pytest.raises(TypeError, match=r"Dense\(3 -> 2\): input must hold real numbers"):
        nn.Dense(3, 2, rng=0)(bad)
    assert not recwarn.list                                          # no ComplexWarning on the way


def test_dense_docstring_says_it_is_not_linear():
    assert "Not torch.nn.Linear" in nn.Dense.__doc__ and "COLUMNS" in nn.Dense.__doc__


# ---------------------------------------------------------------- Dropout: the probability said once

def test_dropout_keep_prob_and_p_are_unambiguous():
    assert repr(nn.Dropout(keep_prob=0.8)) == repr(nn.Dropout(p=0.2)) == repr(nn.Dropout(0.8)) == \
        "Dropout(keep_prob=0.8)"
    drop = nn.Dropout(p=0.25, rng=np.random.default_rng(0))
    assert drop.keep_prob == 0.75 and drop.p == 0.25
    assert nn.Dropout(0.5).keep_prob == 0.5                          # the same in both readings: accepted
    with pytest.raises(ValueError, match=r"Dropout: 0.2 given by position is ambiguous.*keep_prob=0.2.*p=0.2"):
        nn.Dropout(0.2)
    with pytest.raises(ValueError, match="not both"):
        nn.Dropout(keep_prob=0.8, p=0.2)
    with pytest.raises(ValueError, match="not both"):
        nn.Dropout(0.8, p=0.2)
    with pytest.raises(ValueError, match=r"Dropout: p must be a number in \[0, 1\)"):
        nn.Dropout(p=1.0)
    with pytest.raises(ValueError, match=r"Dropout: keep_prob must be a number in \(0, 1\]"):
        nn.Dropout(keep_prob=0.0)
    X = np.ones((50, 40))
    np.testing.assert_array_equal(nn.Dropout(p=0.0)(X).data, X)      # p = 0 drops nothing
    # F.dropout reads the same way
    A = dl.Tensor(np.ones((200, 300)))
    kept = F.dropout(A, p=0.2, rng=np.random.default_rng(1)).data != 0
    assert abs(kept.mean() - 0.8) < 5 * np.sqrt(0.8 * 0.2 / kept.size)
    np.testing.assert_array_equal(F.dropout(A, p=0.2, rng=np.random.default_rng(1)).data,
                                  F.dropout(A, keep_prob=0.8, rng=np.random.default_rng(1)).data)
    with pytest.raises(ValueError, match="dropout: 0.3 given by position is ambiguous"):
        F.dropout(A, 0.3)


# ---------------------------------------------------------------- randomness: fresh per step, same seed same run

def _noisy_run(seed, steps=6):
    """A training loop written the obvious way: a Dropout layer seeded with an int, mini-batches from one
    Generator made before the loop. Returns the masks seen, the batch orders and the final parameters."""
    model = nn.Sequential(nn.Dense(3, 8, rng=seed), nn.ReLU(), nn.Dropout(keep_prob=0.5, rng=seed + 1),
                          nn.Dense(8, 1, rng=seed + 2))
    opt = dl.optim.Adam(model, lr=0.01)
    rng = np.random.default_rng(seed)
    X = np.random.default_rng(99).standard_normal((3, 20))
    Y = (X[:1] > 0).astype(float)
    masks, orders = [], []
    for _ in range(steps):
        order = []
        for X_b, Y_b in dl.data.minibatches(np.vstack([X, np.arange(20.0)]), Y, 10, rng=rng):
            order.extend(X_b[3].astype(int))
            cost = F.binary_cross_entropy_with_logits(model(X_b[:3]), Y_b)
            opt.zero_grad()
            cost.backward()
            opt.step()
            masks.append(model[2].mask.copy())
        orders.append(order)
    return masks, orders, [p.data.copy() for p in model.parameters()]


def test_a_seeded_training_loop_draws_fresh_masks_and_orders_and_reproduces():
    masks, orders, params = _noisy_run(0)
    assert len({m.tobytes() for m in masks}) == len(masks)           # a fresh dropout mask at every step
    assert len({tuple(o) for o in orders}) == len(orders)            # a fresh order at every epoch
    masks2, orders2, params2 = _noisy_run(0)                         # the same seed, again in this process
    assert all(a.tobytes() == b.tobytes() for a, b in zip(masks + params, masks2 + params2))
    assert orders == orders2
    _, orders3, params3 = _noisy_run(1)
    assert orders3 != orders and not all(a.tobytes() == b.tobytes() for a, b in zip(params, params3))


def test_dropout_int_seed_makes_its_generator_once():
    a, b = nn.Dropout(keep_prob=0.7, rng=3), nn.Dropout(keep_prob=0.7, rng=3)
    A = np.ones((20, 30))
    seq_a = [a(A).data for _ in range(3)]
    seq_b = [b(A).data for _ in range(3)]
    oracle = np.random.default_rng(3)                                 # the layer's stream, drawn by hand
    for x, y in zip(seq_a, seq_b):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, np.where(oracle.random((20, 30)) < 0.7, 1 / 0.7, 0.0))
    assert not np.array_equal(seq_a[0], seq_a[1])
    with pytest.raises(TypeError, match="Generator"):
        nn.Dropout(keep_prob=0.7, rng=np.random.RandomState(0))


def test_dense_int_seed_and_generator():
    np.testing.assert_array_equal(nn.Dense(4, 3, rng=5).W.data, nn.Dense(4, 3, rng=5).W.data)
    rng = np.random.default_rng(5)
    first, second = nn.Dense(4, 3, rng=rng).W.data, nn.Dense(4, 3, rng=rng).W.data
    oracle = np.random.default_rng(5)
    np.testing.assert_array_equal(first, oracle.standard_normal((3, 4)) * np.sqrt(2 / 4))
    np.testing.assert_array_equal(second, oracle.standard_normal((3, 4)) * np.sqrt(2 / 4))   # the stream continues


# ---------------------------------------------------------------- predict and accuracy

def test_predict_runs_in_eval_mode_without_a_graph_and_restores_modes():
    model = nn.Sequential(nn.Dense(3, 6, rng=0), nn.ReLU(), nn.Dropout(keep_prob=0.5, rng=1), nn.Dense(6, 2, rng=2))
    model[2].eval()                                                   # mixed modes must come back as they were
    modes = [m.training for _, m in model.named_modules()]
    X = np.random.default_rng(3).standard_normal((3, 7))
    out = model.predict(X)
    assert out.creator is None and not out.requires_grad
    assert [m.training for _, m in model.named_modules()] == modes
    W1, b1, W2, b2 = (p.data for p in model.parameters())            # eval: dropout is the identity
    np.testing.assert_allclose(out.data, W2 @ np.maximum(0, W1 @ X + b1) + b2, rtol=1e-14)
    np.testing.assert_array_equal(nn.predict(model, X).data, out.data)
    with pytest.raises(ValueError):
        model.predict(np.ones((4, 7)))
    assert [m.training for _, m in model.named_modules()] == modes  # restored after an error too


def test_accuracy_against_sklearn():
    need_module("sklearn")
    from sklearn.metrics import accuracy_score
    rng = np.random.default_rng(0)
    m = 50
    Z = rng.standard_normal((1, m))
    y = (rng.random(m) < 0.5).astype(int)
    want = accuracy_score(y, (Z[0] > 0).astype(int))
    A = 1 / (1 + np.exp(-Z))
    assert nn.accuracy(Z, y, from_logits=True) == want
    assert nn.accuracy(dl.Tensor(Z), y.reshape(1, -1).astype(float), from_logits=True) == want
    assert nn.accuracy(A, y, from_logits=False) == want
    Zc = rng.standard_normal((4, m))
    labels = rng.integers(0, 4, m)
    want = accuracy_score(labels, Zc.argmax(axis=0))
    onehot = np.eye(4)[labels].T
    for Y in (labels, labels.reshape(1, -1), labels.astype(float).reshape(1, -1), onehot):
        assert nn.accuracy(Zc, Y) == want
    softmax = np.exp(Zc) / np.exp(Zc).sum(axis=0)
    assert nn.accuracy(softmax, onehot, from_logits=False) == want
    np.testing.assert_array_equal(nn.predicted_labels(Zc), Zc.argmax(axis=0))


def test_accuracy_refuses_what_it_cannot_read():
    Z, y = np.array([[0.3, -1.0, 2.0]]), np.array([1, 0, 0])
    with pytest.raises(ValueError, match="from_logits=True or from_logits=False"):
        nn.accuracy(Z, y)
    with pytest.raises(ValueError, match="outside \\[0, 1\\].*from_logits=True"):
        nn.accuracy(Z, y, from_logits=False)
    with pytest.raises(ValueError, match=r"labels must be whole numbers in \[0, 1\]"):
        nn.accuracy(Z, [2, 0, 1], from_logits=True)
    with pytest.raises(ValueError, match="one-hot"):
        nn.accuracy(np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"expected one-hot \(3, 2\) or labels \(2,\) or \(1, 2\)"):
        nn.accuracy(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="m >= 1"):
        nn.accuracy(np.zeros((1, 0)), np.zeros(0), from_logits=True)
    assert np.isnan(nn.accuracy(np.array([[0.5, np.nan]]), [1, 0], from_logits=True))   # NaN never scores
    assert nn.predicted_labels(np.array([[1.0, np.nan], [0.0, 1.0]])).tolist() == [0, -1]
    assert nn.accuracy(np.array([[0.0]]), [0], from_logits=True) == 1.0                 # Z = 0: A = 1/2, not > 1/2


# ---------------------------------------------------------------- crafted files (built here, small and fast)

def _deflate_zeros(n_matches: int) -> bytes:
    """A final dynamic-Huffman deflate block that inflates to 1 + 258 * n_matches zero bytes from about
    n_matches / 4 bytes: a literal 0, then n_matches copies of (length 258, distance 1), each coded in 2 bits."""
    def bits(seq):
        out = []
        for value, n, msb_first in seq:
            out.extend((value >> k) & 1 for k in (range(n - 1, -1, -1) if msb_first else range(n)))
        return out
    order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
    lengths = {18: 1, 1: 2, 2: 2}                        # code-length code: 18 -> 0, 1 -> 10, 2 -> 11
    code = {18: (0, 1), 1: (2, 2), 2: (3, 2)}

    def cl(sym, extra=None):
        return [(*code[sym], True)] + ([(extra, 7, False)] if extra is not None else [])
    head = [(1, 1, False), (2, 2, False), (286 - 257, 5, False), (0, 5, False), (18 - 4, 4, False)]
    head += [(lengths.get(s, 0), 3, False) for s in order[:18]]
    # literal/length code lengths: 0 -> 2, 256 -> 2, 285 -> 1 (codes 10, 11, 0); one distance code of length 1
    head += cl(2) + cl(18, 138 - 11) + cl(18, 117 - 11) + cl(2) + cl(18, 28 - 11) + cl(1) + cl(1)
    head += [(2, 2, True)]                               # the literal 0
    b = bits(head)
    total = len(b) + 2 * n_matches + 2                   # the matches are all-zero bits; end of block is '11'
    out = bytearray((total + 7) // 8)
    for i, bit in enumerate(b + [0] * 0):
        out[i // 8] |= bit << (i % 8)
    for i in (total - 2, total - 1):
        out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def _npy_header(dtype, shape) -> bytes:
    import io
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                            "fortran_order": False, "shape": shape})
    return f.getvalue()


def _zip(path, members):
    """Write a zip by hand: members are (name, data, method, size, crc), data already compressed for method 8;
    the declared size and CRC are taken as given (a crafted file may lie)."""
    import struct
    import zlib
    body, central = bytearray(), bytearray()
    for name, data, method, size, crc in members:
        name_b = name.encode()
        crc = zlib.crc32(data) if crc is None else crc
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size,
                            len(name_b), 0) + name_b + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data),
                               size, len(name_b), 0, 0, 0, 0, 0, offset) + name_b
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(body), 0)
    path.write_bytes(bytes(body + central + end))


def _stored(name, arr):
    import io
    f = io.BytesIO()
    np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)
    data = f.getvalue()
    return (name + ".npy", data, 0, len(data), None)


def _bomb(name, header: bytes, n_matches: int, size=None):
    """A deflated member: `header` then 1 + 258 * n_matches zero bytes (declared size: the real one)."""
    import zlib
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = c.compress(header) + c.flush(zlib.Z_SYNC_FLUSH) + _deflate_zeros(n_matches)
    return (name + ".npy", data, 8, size if size is not None else len(header) + 1 + 258 * n_matches, 0)


def test_the_crafted_deflate_stream_is_what_it_claims():
    import zlib
    for n in (1, 2, 5, 1001):
        assert zlib.decompress(_deflate_zeros(n), wbits=-15) == bytes(1 + 258 * n)


def _peak_bytes(fn):
    import tracemalloc
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_load_refuses_an_unknown_member_without_inflating_it(tmp_path):
    """A 2 MB .npz whose extra member is a valid .npy header declaring 2 GiB of bytes, then 2 GiB of zeros."""
    layer = nn.Dense(2, 1, rng=0)
    n = (2 ** 31) // 258
    header = _npy_header(np.uint8, (1 + 258 * n,))
    path = tmp_path / "bomb.npz"
    _zip(path, [_stored("W", layer.W.data), _stored("b", layer.b.data), _bomb("extra", header, n)])
    assert path.stat().st_size < 3_000_000
    before = layer.W.data.copy()

    def load():
        with pytest.raises(ValueError, match=r"unexpected array\(s\) \['extra'\]"):
            layer.load(path)
    assert _peak_bytes(load) < 5_000_000                              # the 2 GiB are never inflated
    np.testing.assert_array_equal(layer.W.data, before)


def test_load_checks_header_shape_and_dtype_before_reading(tmp_path):
    layer = nn.Dense(2, 1, rng=0)
    b = _stored("b", layer.b.data)
    huge = _npy_header(np.float64, (2 ** 40,))                       # 8 TiB declared, a few bytes present
    _zip(tmp_path / "huge.npz", [("W.npy", huge + bytes(16), 0, len(huge) + 16, None), b])
    with pytest.raises(ValueError, match=r"huge.npz.*'W' has shape \(1099511627776,\) in the state but \(1, 2\)"):
        layer.load(tmp_path / "huge.npz")
    ints = _npy_header(np.int64, (1, 2))
    _zip(tmp_path / "ints.npz", [("W.npy", ints + bytes(16), 0, len(ints) + 16, None), b])
    with pytest.raises(ValueError, match="'W' has dtype int64"):
        layer.load(tmp_path / "ints.npz")
    obj = _npy_header(object, (1, 2))
    _zip(tmp_path / "obj.npz", [("W.npy", obj + bytes(16), 0, len(obj) + 16, None), b])
    with pytest.raises(ValueError, match="'W' cannot be read without unpickling"):
        layer.load(tmp_path / "obj.npz")
    ok = _npy_header(np.float64, (1, 2))
    for name, payload in [("short", bytes(8)), ("long", bytes(24))]:
        _zip(tmp_path / f"{name}.npz", [("W.npy", ok + payload, 0, len(ok) + len(payload), None), b])
        with pytest.raises(ValueError, match=f"{name}.npz.*'W' holds {'less' if name == 'short' else 'more'} data"):
            layer.load(tmp_path / f"{name}.npz")
    _zip(tmp_path / "twice.npz", [_stored("W", layer.W.data), _stored("W", layer.W.data), b])
    with pytest.raises(ValueError, match=r"\['W'\] appear more than once"):
        layer.load(tmp_path / "twice.npz")
    _zip(tmp_path / "good.npz", [_stored("W", np.array([[1.0, 2.0]])), b])     # the hand-made zip itself is fine
    assert layer.load(tmp_path / "good.npz").W.data.tolist() == [[1.0, 2.0]]


def test_load_reads_no_more_than_the_model_holds(tmp_path):
    """A member with the right name and header whose data then inflates far past the declared shape."""
    layer = nn.Dense(2, 1, rng=0)
    n = (2 ** 28) // 258                                              # 256 MiB of zeros after the header
    path = tmp_path / "long.npz"
    _zip(path, [_bomb("W", _npy_header(np.float64, (1, 2)), n), _stored("b", layer.b.data)])

    def load():
        with pytest.raises(ValueError, match="'W' holds more data than its header's shape"):
            layer.load(path)
    assert _peak_bytes(load) < 5_000_000


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_save_respects_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = nn.Dense(2, 1, rng=0).save(tmp_path / "w.npz")
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == mode


def test_assigning_the_same_parameter_or_module_keeps_its_place():
    model = nn.Sequential(nn.Dense(2, 3, rng=0), nn.ReLU(), nn.Dense(3, 1, rng=1))
    layer = model[0]
    order = [n for n, _ in model.named_parameters()]
    layer.W = layer.W                                                # what an in-place `W -= ...` hands back
    net = nn.Module()
    net.body, net.head = nn.Dense(2, 2, rng=0), nn.Dense(2, 1, rng=1)
    net.body = net.body
    assert [n for n, _ in model.named_parameters()] == order
    assert [n for n, _ in net.named_parameters()] == ["body.W", "body.b", "head.W", "head.b"]
    assert [n for n, _ in nn.Dense(2, 1, rng=0).named_parameters()] == ["W", "b"]


def test_changing_parameters_by_assignment_or_loading_refuses_a_stale_backward(tmp_path):
    """A graph that used the old values must not backpropagate after the values changed (any way they change)."""
    net = nn.Sequential(nn.Dense(2, 2, rng=1), nn.Tanh(), nn.Dense(2, 1, rng=0))
    layer = net[2]  # the first layer's gradient reads this layer's W (dA1 = W2.T dZ2)
    path = layer.save(tmp_path / "w.npz")
    X = np.ones((2, 3))
    for change in (lambda: setattr(layer, "W", np.zeros((1, 2))), lambda: layer.load(path),
                   lambda: layer.load_state_dict(layer.state_dict())):
        cost = F.mse(net(X), np.zeros((1, 3)))
        change()
        with pytest.raises(RuntimeError, match="changed in place"):
            cost.backward()


def test_in_place_update_of_a_module_parameter_under_no_grad():
    model = nn.Sequential(nn.Dense(2, 3, rng=0), nn.Tanh(), nn.Dense(3, 1, rng=1))
    X = np.random.default_rng(0).standard_normal((2, 5))
    F.mse(model(X), np.zeros((1, 5))).backward()
    W, W0, dW = model[0].W, model[0].W.data.copy(), model[0].W.grad.copy()
    order = [n for n, _ in model.named_parameters()]
    with dl.no_grad():
        model[0].W -= 0.5 * model[0].W.grad                          # the PyTorch habit
    assert model[0].W is W and W.creator is None and W.requires_grad
    assert [n for n, _ in model.named_parameters()] == order
    np.testing.assert_array_equal(W.data, W0 - 0.5 * dW)
