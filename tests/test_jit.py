"""dl.jit: a replayed step gives the numbers of the eager step, bit for bit (same machine, same process).

Properties: random programs over every registered primitive (and the compositions), and random networks of the
library's layers, losses, optimizers, schedules, L2 and dropout, run k steps eagerly and k steps jitted on
changing data; values, `.grad`, parameters, optimizer state, dropout masks and Generators are compared byte for
byte. Then the guards: what must run eagerly (with a warning naming the line), what gets its own capture, and
that no capture is ever replayed stale.
"""
from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_dl as dl
import tinygrad_dl.functional as F
from tinygrad_dl import nn, ops
from tinygrad_dl.tensor import PRIMITIVES, toposort

jit_module = importlib.import_module("tinygrad_dl.jit")


def same(a, b) -> bool:
    """Byte-for-byte equality of two arrays (NaN payloads and signed zeros included), shape and dtype."""
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def assert_same(a, b, what):
    assert same(a, b), f"{what}: eager {np.asarray(a)!r} != jitted {np.asarray(b)!r}"


@pytest.fixture(autouse=True)
def _no_jit_warnings():
    """A JitWarning (a call run eagerly) fails a test unless the test expects it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", jit_module.JitWarning)
        with np.errstate(all="ignore"):
            yield


# ============================================================ random programs of the primitives

def _where(a, b, _):
    return dl.where(a > b, a, b)                   # the condition is data: recomputed at every replay


def _pick(a, b, k):
    return a[[2, 0, 0]] if k == 0 else a[::-1] if k == 1 else a[:, [3, 1, 1, 0]]


def _cat(a, b, _):
    return dl.concatenate([a[:, :2], b[:, 2:]], axis=1)


# Each op maps tensors of shape (3, 4) to a tensor of shape (3, 4); k in {0, 1, 2} picks a variant.
OPS = {
    "add": lambda a, b, k: a + b, "sub": lambda a, b, k: a - b, "mul": lambda a, b, k: a * b,
    "div": lambda a, b, k: a / b, "neg": lambda a, b, k: -a,
    "pow": lambda a, b, k: a ** [2.0, 0.5, -1.0][k] if k != 1 else a.abs() ** 0.5,
    "rsqrt": lambda a, b, k: (a * a + 0.5) ** -0.5, "exp": lambda a, b, k: (a * 0.3).exp(),
    "log": lambda a, b, k: a.log(), "tanh": lambda a, b, k: a.tanh(), "abs": lambda a, b, k: a.abs(),
    "log1p": lambda a, b, k: a.log1p(), "sin": lambda a, b, k: a.sin(), "cos": lambda a, b, k: a.cos(),
    "cast": lambda a, b, k: a.astype(np.float32).astype(a.dtype) if a.dtype == np.float64 else
    a.astype(np.float64).astype(np.float32),
    "maximum": lambda a, b, k: dl.maximum(a, b), "minimum": lambda a, b, k: dl.minimum(a, b), "where": _where,
    "matmul": lambda a, b, k: (a @ b.T) @ a * 0.1, "sum": lambda a, b, k: a.sum(axis=1, keepdims=True) + b,
    "sum_all": lambda a, b, k: a.sum() * b, "max": lambda a, b, k: a.max(axis=k % 2, keepdims=True) * b,
    "min": lambda a, b, k: a.min(axis=0, keepdims=True) - b, "mean": lambda a, b, k: a.mean(axis=1, keepdims=True) + b,
    "var": lambda a, b, k: a.var(axis=0, keepdims=True) * b, "reshape": lambda a, b, k: a.reshape(4, 3).T,
    "transpose": lambda a, b, k: a.T.T, "broadcast": lambda a, b, k: a[:, :1].broadcast_to(3, 4),
    "getitem": _pick, "concatenate": _cat, "stack": lambda a, b, k: dl.stack([a, b]).sum(axis=0),
    "clip": lambda a, b, k: a.clip(-1.0, 1.0),
    "sigmoid": lambda a, b, k: F.sigmoid(a), "relu": lambda a, b, k: F.relu(a),
    "leaky_relu": lambda a, b, k: F.leaky_relu(a, 0.1), "softplus": lambda a, b, k: F.softplus(a),
    "softmax": lambda a, b, k: F.softmax(a, axis=k % 2), "log_softmax": lambda a, b, k: F.log_softmax(a),
    "logsumexp": lambda a, b, k: F.logsumexp(a, axis=0, keepdims=True) * b,
    "mse": lambda a, b, k: F.mse(a, b.detach()) * b,
    "bce": lambda a, b, k: F.binary_cross_entropy(F.sigmoid(a), dl.where(b > 0, 1.0, 0.0)) * b,
    "bce_clamped": lambda a, b, k: F.binary_cross_entropy(F.sigmoid(a * 100.0), dl.where(b > 0, 1.0, 0.3)) * b,
    "bce_logits": lambda a, b, k: F.binary_cross_entropy_with_logits(a, F.sigmoid(b).detach()) + b,
    "cross_entropy": lambda a, b, k: F.cross_entropy(a, F.softmax(b).detach()) * b,
}


def run_program(recipe, X, labels, W1, W2, rng, backward=True):
    """One step of a random program: the ops applied to a pool of tensors, a scalar cost, backward."""
    pool = [dl.Tensor(X), W1, W2]   # (a jitted function gets X as a Tensor already: dl.Tensor shares it)
    for name, i, j, k in recipe:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        pool.append(OPS[name](a, b, k))
    pool.append(F.cross_entropy(pool[-1], labels) * W1 + F.dropout(pool[-1], 0.5, rng=rng))
    J = (W1 * W2).sum()
    for t in pool[3:]:
        J = J + (t * t).sum() * 0.01
    if backward:
        J.backward()
    return J, pool[-2]


def program_setup(dtype, seed):
    r = np.random.default_rng(seed)
    W1 = dl.Tensor(r.standard_normal((3, 4)).astype(dtype), requires_grad=True)
    W2 = dl.Tensor(r.standard_normal((3, 4)).astype(dtype), requires_grad=True)
    return W1, W2, np.random.default_rng(seed + 1)


def step_data(dtype, seed, k):
    r = np.random.default_rng(1000 * seed + k)
    X = r.standard_normal((3, 4)).astype(dtype)
    X[0, 0] = [0.0, -0.0, np.nan, np.inf][k % 4] if k else X[0, 0]   # edge values from the second step on
    return X, r.integers(0, 3, 4)


RECIPES = st.lists(st.tuples(st.sampled_from(sorted(OPS)), st.integers(0, 30), st.integers(0, 30),
                             st.integers(0, 2)), min_size=1, max_size=6)


@given(recipe=RECIPES, dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 10**6))
def test_random_programs_replay_bit_for_bit(recipe, dtype, seed):
    steps = 4
    eager, jitted = program_setup(dtype, seed), program_setup(dtype, seed)

    def plain(X, labels, W1, W2, rng):
        J, last = run_program(recipe, X, labels, W1, W2, rng)
        return J, last

    fast = dl.jit(plain)
    for k in range(steps):
        X, labels = step_data(dtype, seed, k)
        for (W1, W2, rng), f in ((eager, plain), (jitted, fast)):
            W1.grad = W2.grad = None
            out = f(X, labels, W1, W2, rng)
            W1.data = W1.data - 0.01 * W1.grad   # the parameters change between steps (rebinding .data)
            W2.data -= 0.01 * W2.grad            # ... and in place
            if f is plain:
                want = out
        J, last = out
        assert_same(want[0].data, J.data, f"step {k}: cost")
        assert_same(want[1].data, last.data, f"step {k}: last value")
        for a, b, name in zip(eager[:2], jitted[:2], ("W1", "W2")):
            assert_same(a.grad, b.grad, f"step {k}: {name}.grad")
            assert_same(a.data, b.data, f"step {k}: {name}")
        assert eager[2].bit_generator.state == jitted[2].bit_generator.state
    info = fast.cache_info()
    # (a branch taken at the first capture, such as plain binary cross-entropy, may fail on later data: once)
    assert info.captures + info.replays == steps and info.captures <= 2 and info.eager == 0, info


def test_the_programs_cover_every_primitive():
    """Every registered primitive occurs in some op of the random programs (and so is replayed)."""
    W1, W2, rng = program_setup(np.float64, 0)
    X, labels = step_data(np.float64, 0, 0)
    seen = set()
    for name in OPS:
        for k in range(3):
            J, _ = run_program([(name, 1, 2, k)], dl.Tensor(X), labels, W1, W2, rng, backward=False)
            seen |= {t.creator.name for t in toposort([J], include_constants=True) if t.creator is not None}
    assert seen >= set(PRIMITIVES) - {"Scatter"}, set(PRIMITIVES) - seen  # Scatter runs in GetItem's backward
    assert "GetItem" in seen


# ============================================================ random networks of the library

OPTIMIZERS = {   # each optimizer of dl.optim; `model` is passed so that weight decay knows the W's
    "gd": lambda model, lr: dl.optim.GradientDescent(model, lr=lr),
    "sgd_decay": lambda model, lr: dl.optim.SGD(model, lr=lr, weight_decay=0.01),
    "momentum": lambda model, lr: dl.optim.Momentum(model, lr=lr, beta=0.9),
    "momentum_bc": lambda model, lr: dl.optim.Momentum(model, lr=lr, beta=0.8, bias_correction=True),
    "rmsprop": lambda model, lr: dl.optim.RMSprop(model, lr=lr, weight_decay=0.1),
    "adam": lambda model, lr: dl.optim.Adam(model, lr=lr),
}
SCHEDULES = {
    None: lambda lr0, epoch: lr0,
    "inverse": lambda lr0, epoch: dl.optim.inverse_time_decay(lr0, 0.5, epoch),
    "exponential": lambda lr0, epoch: dl.optim.exponential_decay(lr0, epoch),
}
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky": lambda: nn.LeakyReLU(0.05)}


@st.composite
def networks(draw):
    loss = draw(st.sampled_from(["bce", "bce_logits", "ce_one_hot", "ce_labels", "mse"]))
    return dict(
        dtype=draw(st.sampled_from([np.float64, np.float32])),
        n_x=draw(st.integers(1, 4)),
        hidden=draw(st.lists(st.integers(1, 5), min_size=0, max_size=2)),
        activation=draw(st.sampled_from(sorted(ACTIVATIONS))),
        keep_prob=draw(st.sampled_from([None, 0.5, 0.8])),
        loss=loss,
        n_out=draw(st.integers(2, 3)) if loss.startswith("ce") else 1 if loss.startswith("bce") else draw(
            st.integers(1, 2)),
        optimizer=draw(st.sampled_from(sorted(OPTIMIZERS))),
        schedule=draw(st.sampled_from([None, "inverse", "exponential"])),
        lambd=draw(st.sampled_from([0.0, 0.7])),
        zero_grad=draw(st.booleans()),
        batches=draw(st.lists(st.sampled_from([1, 3, 5]), min_size=3, max_size=6)),
        evals=draw(st.sets(st.integers(0, 5), max_size=2)),
        seed=draw(st.integers(0, 10**6)),
        lr=draw(st.sampled_from([0.05, 1.5])),
    )


def build(net):
    """The model, optimizer and step of a network description (the same seeds every time it is built)."""
    rng = np.random.default_rng(net["seed"])
    dims = [net["n_x"]] + net["hidden"] + [net["n_out"]]
    layers = []
    for i in range(1, len(dims)):
        layers.append(nn.Dense(dims[i - 1], dims[i], rng=rng, dtype=net["dtype"]))
        if i < len(dims) - 1:
            layers.append(ACTIVATIONS[net["activation"]]())
            if net["keep_prob"] is not None:
                layers.append(nn.Dropout(net["keep_prob"], rng=rng))
    if net["loss"] == "bce":
        layers.append(nn.Sigmoid())
    model = nn.Sequential(*layers)
    opt = OPTIMIZERS[net["optimizer"]](model, net["lr"])

    def step(X, Y):
        if net["zero_grad"]:
            opt.zero_grad()
        A = model(X)
        cost = {"bce": F.binary_cross_entropy, "bce_logits": F.binary_cross_entropy_with_logits,
                "ce_one_hot": F.cross_entropy, "ce_labels": F.cross_entropy, "mse": F.mse}[net["loss"]](A, Y)
        if net["lambd"]:
            cost = cost + F.l2_penalty(model, net["lambd"], X.shape[1])
        cost.backward()
        opt.step()
        return cost, A
    return model, opt, step


def batch(net, k):
    r = np.random.default_rng(net["seed"] * 7 + k)
    m = net["batches"][k]
    X = (r.standard_normal((net["n_x"], m)) * 3).astype(net["dtype"])
    if net["loss"].startswith("ce"):
        labels = r.integers(0, net["n_out"], m)
        Y = labels if net["loss"] == "ce_labels" else np.eye(net["n_out"], dtype=net["dtype"])[:, labels]
    elif net["loss"] == "mse":
        Y = r.standard_normal((net["n_out"], m)).astype(net["dtype"])
    else:
        Y = (r.random((1, m)) < 0.5).astype(net["dtype"])
    return X, Y


def optimizer_state(opt):
    """Everything the optimizer keeps (its state_dict: lr, settings, averages and their step counts)."""
    return sorted(opt.state_dict().items())


@given(net=networks())
@settings(max_examples=30)
def test_random_networks_train_bit_for_bit(net):
    (m1, o1, eager), (m2, o2, step) = build(net), build(net)
    fast = dl.jit(step)
    for k in range(len(net["batches"])):
        X, Y = batch(net, k)
        for model, opt in ((m1, o1), (m2, o2)):
            opt.lr = SCHEDULES[net["schedule"]](net["lr"], k)   # the schedule sets lr outside the step
            model.train(k not in net["evals"])
        c1, A1 = eager(X, Y)
        c2, A2 = fast(X, Y)
        assert_same(c1.data, c2.data, f"step {k}: cost")
        assert_same(A1.data, A2.data, f"step {k}: output")
        for (name, p), q in zip(m1.named_parameters(), m2.parameters()):
            assert_same(p.data, q.data, f"step {k}: {name}")
            assert_same(p.grad, q.grad, f"step {k}: {name}.grad")
        for (n1, a1), (n2, a2) in zip(optimizer_state(o1), optimizer_state(o2)):
            assert n1 == n2
            assert_same(a1, a2, f"step {k}: optimizer state {n1}")
        for l1, l2 in zip(m1.layers, m2.layers):
            if isinstance(l1, nn.Dropout):
                assert_same(l1.mask, l2.mask, f"step {k}: dropout mask")
                assert l1.rng.bit_generator.state == l2.rng.bit_generator.state
    info = fast.cache_info()
    keys = {(m, k not in net["evals"] or net["keep_prob"] is None) for k, m in enumerate(net["batches"])}
    # (plain binary cross-entropy, taken at a capture, may not hold for a later batch: captured again, once)
    assert info.eager == 0 and info.captures + info.replays == len(net["batches"]) and \
        info.captures <= len(keys) * (2 if net["loss"] == "bce" else 1)


# ============================================================ what a replay cannot repeat: eager, with a warning

def small_net(seed=0, dtype=np.float64, keep_prob=None):
    rng = np.random.default_rng(seed)
    layers = [nn.Dense(3, 4, rng=rng, dtype=dtype), nn.Tanh()]
    if keep_prob is not None:
        layers.append(nn.Dropout(keep_prob, rng=rng))
    model = nn.Sequential(*layers, nn.Dense(4, 1, rng=rng, dtype=dtype))
    return model, dl.optim.GradientDescent(model.parameters(), lr=0.1)


def data(k, m=5, dtype=np.float64):
    r = np.random.default_rng(k)
    return r.standard_normal((3, m)).astype(dtype), (r.random((1, m)) < 0.5).astype(dtype)


def twins(body, seed=0, keep_prob=None):
    """The same step on two identical models: one called eagerly, one through dl.jit."""
    (m1, o1), (m2, o2) = small_net(seed, keep_prob=keep_prob), small_net(seed, keep_prob=keep_prob)
    return (m1, o1, lambda *a: body(m1, o1, *a)), (m2, o2, dl.jit(lambda *a: body(m2, o2, *a)))


def assert_twins_equal(a, b):
    for p, q in zip(a[0].parameters(), b[0].parameters()):
        assert_same(p.data, q.data, p.name)
        assert_same(p.grad, q.grad, f"{p.name}.grad")


def standard(model, opt, X, Y):
    opt.zero_grad()
    cost = F.binary_cross_entropy_with_logits(model(X), Y)
    cost.backward()
    opt.step()
    return cost


ESCAPES = {
    "item": (lambda c: c.item(), r"`\.item\(\)`"),
    "float": (lambda c: float(c), r"`float\(t\)`"),
    "bool": (lambda c: bool(c < 1e9) and c, r"`bool|mask"),
    "if": (lambda c: c if c.item() > 0 else -c, r"`\.item\(\)`"),
    "data": (lambda c: c.data * 2, r"`\.data`"),
    "numpy": (lambda c: c.numpy(), r"`\.numpy\(\)`"),
    "tolist": (lambda c: c.tolist(), r"`\.tolist\(\)`"),
    "asarray": (lambda c: np.asarray(c) + 1, r"converting a tensor to an array"),
    "mask arithmetic": (lambda c: (c > 0) * 1.0, r"np\.multiply on a mask"),
    "mask any": (lambda c: c if (c > 0).any() else c, r"mask"),
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_python_reading_values_runs_eagerly_with_a_warning(name):
    use, pattern = ESCAPES[name]
    seen = []

    def body(model, opt, X, Y):
        cost = standard(model, opt, X, Y)
        seen.append(1)
        return use(cost)

    a, b = twins(body)
    for k in range(3):
        X, Y = data(k)
        want = a[2](X, Y)
        if k == 0:
            with pytest.warns(jit_module.JitWarning, match=pattern) as record:
                got = b[2](X, Y)
            assert "test_jit.py" in str(record[0].message)  # the user's line is named
        else:
            got = b[2](X, Y)
        assert_same(np.asarray(want.data if isinstance(want, dl.Tensor) else want),
                    np.asarray(got.data if isinstance(got, dl.Tensor) else got), "result")
        assert_twins_equal(a, b)
    info = b[2].cache_info()
    assert info.replays == 0 and info.eager == 2 and info.captures == 1, info
    assert len(seen) == 6  # the function really ran at every call
    assert b[2].source.startswith("# not replayed: ")


UNSAFE = {
    "in-place update": lambda model, opt, cost: model[0].W.__isub__(dl.Tensor(np.ones((4, 3)) * 0.01)),
    "grad read": lambda model, opt, cost: model[0].W.grad * 2,
    "grad set": lambda model, opt, cost: setattr(model[0].W, "grad", None),
    "data set": lambda model, opt, cost: setattr(model[0].b, "data", np.zeros((4, 1))),
    "retain_grad": None,
    "dl.grad": None,
}


@pytest.mark.parametrize("name", sorted(UNSAFE))
def test_changes_outside_the_graph_run_eagerly(name):
    def body(model, opt, X, Y):
        opt.zero_grad()
        Z = model(X)
        if name == "retain_grad":
            Z.retain_grad()
        cost = F.binary_cross_entropy_with_logits(Z, Y)
        if name == "dl.grad":
            dl.grad(cost, model[0].W, retain_graph=True)
        cost.backward()
        if UNSAFE[name] is not None:
            with dl.no_grad():
                UNSAFE[name](model, opt, cost)
        opt.step()
        return cost

    a, b = twins(body)
    for k in range(3):
        X, Y = data(k)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            a[2](X, Y), b[2](X, Y)
        if k == 0:
            assert any(issubclass(w.category, jit_module.JitWarning) for w in record), name
        assert_twins_equal(a, b)
    assert b[2].cache_info().replays == 0


def test_a_returned_graph_must_not_be_replayed():
    model, opt = small_net()
    f = dl.jit(lambda X, Y: F.binary_cross_entropy_with_logits(model(X), Y))   # backward left to the caller
    X, Y = data(0)
    with pytest.warns(jit_module.JitWarning, match="graph is still alive"):
        f(X, Y).backward()
    f(X, Y).backward()  # eager: still has its graph
    assert f.cache_info().replays == 0


def test_detect_anomaly_runs_eagerly():
    a, b = twins(standard)
    X, Y = data(0)
    b[2](X, Y)
    with dl.detect_anomaly():
        b[2](X, Y)
    assert b[2].cache_info().eager == 1
    assert "detect_anomaly() is on" in b[2].cache_info().reasons


# ============================================================ what gets its own capture (never a stale program)

def test_new_shapes_dtypes_and_grad_mode_get_their_own_capture():
    a, b = twins(standard)
    shapes = [5, 5, 2, 5, 2, 7]   # a short last batch, and back
    for k, m in enumerate(shapes):
        X, Y = data(k, m)
        assert_same(a[2](X, Y).data, b[2](X, Y).data, f"call {k}")
        assert_twins_equal(a, b)
    info = b[2].cache_info()
    assert info.captures == 3 and info.replays == 3 and info.entries == 3, info
    X, Y = data(9, 5)
    with dl.no_grad():   # a forward pass only: its own program
        f = dl.jit(lambda X: a[0](X))
        for k in range(3):
            X, _ = data(k)
            assert_same(a[0](X).data, f(X).data, "no_grad forward")
    assert f.cache_info().replays == 2
    g = dl.jit(lambda X: a[0](X).sum().detach())
    g(X)
    with dl.no_grad():
        g(X)
    assert g.cache_info().captures == 2


def test_float32_and_float64_data_get_their_own_capture():
    model, _ = small_net()
    f = dl.jit(lambda X: model(X).detach())   # (a forward pass: its result leaves the graph)
    X, _ = data(0)
    for x in (X, X.astype(np.float32), X, X.astype(np.float32)):
        assert_same(model(x).data, f(x).data, str(x.dtype))
    assert f.cache_info().captures == 2 and f.cache_info().replays == 2


def test_train_and_eval_mode_get_their_own_capture_and_masks_are_drawn_again():
    a, b = twins(standard, keep_prob=0.5)
    for k, train in enumerate([True, True, False, False, True, False, True]):
        for model in (a[0], b[0]):
            model.train(train)
        X, Y = data(k)
        assert_same(a[2](X, Y).data, b[2](X, Y).data, f"call {k}")
        assert_twins_equal(a, b)
        assert_same(a[0][2].mask, b[0][2].mask, "mask")
    assert b[2].cache_info().eager == 0 and b[2].cache_info().replays >= 4


def test_a_user_module_branching_on_training_is_guarded():
    class Noisy(nn.Module):
        def forward(self, A):
            return A * 2.0 if self.training else A * 3.0
    layer = Noisy()
    f = dl.jit(lambda X: layer(dl.Tensor(X)).sum())
    X, _ = data(0)
    for train in (True, True, False, False, True):
        layer.train(train)
        assert f(X).item() == (X * (2.0 if train else 3.0)).sum()
    assert f.cache_info().captures == 2 and f.cache_info().replays == 3


def test_numbers_are_constants_keyed_by_value():
    model, _ = small_net()
    f = dl.jit(lambda X, s: (model(X) * s).sum().detach())
    X, _ = data(0)
    for s in (2.0, 3.0, 2.0, -0.0, 0.0, 3, float("nan"), float("nan")):
        assert_same((model(X) * s).sum().data, f(X, s).data, repr(s))
    assert f.cache_info().captures == 6 and f.cache_info().replays == 2


def test_arguments_that_change_at_every_call_stop_the_captures():
    model, _ = small_net()
    f = dl.jit(lambda X, s: (model(X) * s).sum().detach(), max_captures=3)
    X, _ = data(0)
    with pytest.warns(jit_module.JitWarning, match="in a row without a replay"):
        for s in range(6):
            assert_same((model(X) * s).sum().data, f(X, float(s)).data, str(s))
    assert f.cache_info().captures == 3 and f.cache_info().eager == 3


def test_parameters_are_read_where_they_are():
    a, b = twins(standard)
    for k in range(4):
        X, Y = data(k)
        a[2](X, Y), b[2](X, Y)
        for (p, q) in zip(a[0].parameters(), b[0].parameters()):   # rebind .data, change it in place, reload
            if k == 1:
                p.data, q.data = p.data * 0.5, q.data * 0.5
            if k == 2:
                p.data[...] = 0.25
                q.data[...] = 0.25
        if k == 2:
            state = a[0].state_dict()
            a[0].load_state_dict(state), b[0].load_state_dict(state)
        assert_twins_equal(a, b)
    assert b[2].cache_info().replays == 3


def test_a_parameter_of_a_new_shape_is_captured_again():
    model, opt = small_net()
    f = dl.jit(lambda X: model(X).sum().detach())
    X, _ = data(0)
    f(X), f(X)
    model[2].W.data = np.ones((2, 4))   # another output size
    model[2].b.data = np.ones((2, 1))
    assert_same(model(X).sum().data, f(X).data, "new shape")
    assert f.cache_info().captures == 2


def test_gradients_accumulate_without_zero_grad():
    def body(model, opt, X, Y):
        F.binary_cross_entropy_with_logits(model(X), Y).backward()
    a, b = twins(body)
    for k in range(4):
        X, Y = data(k)
        a[2](X, Y), b[2](X, Y)
        assert_twins_equal(a, b)
    a[1].zero_grad(), b[1].zero_grad()
    a[2](X, Y), b[2](X, Y)
    assert_twins_equal(a, b)
    assert b[2].cache_info().replays == 4


def wide_net(seed, dtype, optimizer):
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Dense(80, 64, rng=rng, dtype=dtype), nn.ReLU(), nn.Dense(64, 3, rng=rng, dtype=dtype))
    return model, OPTIMIZERS[optimizer](model, 0.05)


def wide_step(model, opt, X, labels):
    cost = F.cross_entropy(model(X), labels)
    cost.backward()
    opt.step()
    opt.zero_grad()
    return cost


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_step_followed_by_zero_grad_updates_in_the_gradients_bit_for_bit(optimizer, dtype):
    """A 64 x 80 weight's gradient serves as the optimizer's scratch buffer when zero_grad() follows the step
    (RMSprop still divides by dW after writing its buffer: it keeps its own). Every number stays eager's."""
    (m1, o1), (m2, o2) = wide_net(3, dtype, optimizer), wide_net(3, dtype, optimizer)
    fast = dl.jit(lambda X, labels: wide_step(m2, o2, X, labels))
    r = np.random.default_rng(0)
    for k in range(5):
        X, labels = r.standard_normal((80, 7 + k % 2)).astype(dtype), r.integers(0, 3, 7 + k % 2)
        o1.lr = o2.lr = 0.05 / (1 + k)
        c1, c2 = wide_step(m1, o1, X, labels), fast(X, labels)
        assert_same(c1.data, c2.data, f"step {k}: cost")
        for (name, p), q in zip(m1.named_parameters(), m2.parameters()):
            assert_same(p.data, q.data, f"step {k}: {name}")
            assert p.grad is None and q.grad is None
        for (n1, a1), (n2, a2) in zip(optimizer_state(o1), optimizer_state(o2)):
            assert_same(a1, a2, f"step {k}: optimizer state {n1}")
    code = fast._last.code
    assert ("_step_in_gradients((dlayers_0_W, None, None, None))" in code) == (optimizer != "rmsprop"), code
    assert "opt.step()" in fast.source and "_step_in_gradients" not in fast.source
    assert fast.cache_info().replays == 3 and fast.cache_info().captures == 2


def test_two_steps_in_one_function_each_update_in_their_own_gradients():
    """Two forward/backward/step/zero_grad rounds in one function: each step gets the gradients written since the
    last zero_grad (the second round's arrays do not exist yet at the first step)."""
    def two(model, opt, X, labels):
        for _ in range(2):
            cost = wide_step(model, opt, X, labels)
        return cost
    (m1, o1), (m2, o2) = wide_net(7, np.float64, "adam"), wide_net(7, np.float64, "adam")
    fast = dl.jit(lambda X, labels: two(m2, o2, X, labels))
    r = np.random.default_rng(2)
    for k in range(3):
        X, labels = r.standard_normal((80, 6)), r.integers(0, 3, 6)
        assert_same(two(m1, o1, X, labels).data, fast(X, labels).data, f"step {k}: cost")
        for p, q in zip(m1.parameters(), m2.parameters()):
            assert_same(p.data, q.data, f"step {k}: {p.name}")
    code = fast._last.code
    assert code.count("_step_in_gradients((dlayers_0_W, ") == 1 and code.count("_step_in_gradients((dlayers_0_W_2, ") == 1


def test_gradients_the_step_does_not_own_are_never_used_as_scratch():
    """A gradient left in .grad before the call is added onto, never written into; a subclass's own update rule
    (which may read dW after writing its buffer) keeps the optimizer's own buffers."""
    (m1, o1), (m2, o2) = wide_net(5, np.float64, "gd"), wide_net(5, np.float64, "gd")
    fast = dl.jit(lambda X, labels: wide_step(m2, o2, X, labels))
    r = np.random.default_rng(1)
    for k in range(4):
        X, labels = r.standard_normal((80, 6)), r.integers(0, 3, 6)
        held = r.standard_normal((64, 80))
        kept = held.copy()
        m1.layers[0].W.grad, m2.layers[0].W.grad = held.copy(), held
        wide_step(m1, o1, X, labels), fast(X, labels)
        assert_same(kept, held, f"step {k}: the array left in .grad")
        for p, q in zip(m1.parameters(), m2.parameters()):
            assert_same(p.data, q.data, f"step {k}: {p.name}")
    assert fast.cache_info().replays == 3

    class Halved(dl.optim.GradientDescent):
        def _update(self, i, W, dW):
            buf = self._buffer(i, W)
            np.multiply(dW, self.lr / 2, out=buf)
            np.subtract(W, buf, out=W)
            np.add(W, dW * 0.0, out=W)  # reads dW after writing its buffer
    (m1, _), (m2, _) = wide_net(5, np.float64, "gd"), wide_net(5, np.float64, "gd")
    o1, o2 = Halved(m1, 0.1), Halved(m2, 0.1)
    halved = dl.jit(lambda X, labels: wide_step(m2, o2, X, labels))
    for k in range(3):
        wide_step(m1, o1, X, labels), halved(X, labels)
        for p, q in zip(m1.parameters(), m2.parameters()):
            assert_same(p.data, q.data, f"subclass, step {k}: {p.name}")
    assert "_step_in_gradients" not in halved._last.code


def bce_step(model, opt, X, Y, scale):
    cost = F.binary_cross_entropy(F.sigmoid(model(X) * scale), Y)  # a scale of 100 saturates the sigmoid
    cost.backward()
    opt.step()
    return cost


def test_a_branch_taken_at_the_capture_is_checked_and_captured_again():
    """Plain binary cross-entropy is captured behind a check; data whose sigmoid saturates (a clamped log) stops
    the replay before it changes anything, and the call is captured again in the general form, which then serves
    every kind of data. Every step equals eager's, the gradients accumulating across calls (no zero_grad)."""
    a, b = twins(bce_step)
    kinds = ["plain", "plain", "clamped", "clamped", "plain", "clamped", "plain"]
    for k, kind in enumerate(kinds):
        X, Y = data(k)
        scale = np.asarray(100.0 if kind == "clamped" else 1.0)
        ca, cb = a[2](X, Y, scale), b[2](X, Y, scale)
        assert_same(ca.data, cb.data, f"step {k} ({kind}): cost")
        assert_twins_equal(a, b)
        if k == 1:
            assert "_plain_bce(lo, hi)" in b[2].source
    assert "_plain_bce" not in b[2].source and "C0, C1, Y_safe, one_minus_Y = _bce_safe" in b[2].source
    info = b[2].cache_info()
    assert (info.captures, info.replays, info.eager) == (2, 5, 0), info


def test_after_a_failed_check_the_general_form_serves_every_later_call():
    """Two binary cross-entropies, each saturating on its own turn: the first failed check makes the next capture
    take the general form for both, so two captures serve every pattern of data."""
    def both(model, opt, X, Y, s1, s2):
        A = model(X)
        cost = F.binary_cross_entropy(F.sigmoid(A * s1), Y) + F.binary_cross_entropy(F.sigmoid(A * s2), Y)
        cost.backward()
        opt.step()
        return cost
    a, b = twins(both)
    for k, (s1, s2) in enumerate([(1, 1), (100, 1), (1, 100), (1, 1), (100, 100), (1, 100)]):
        X, Y = data(k)
        s1, s2 = np.asarray(float(s1)), np.asarray(float(s2))  # (two arrays: one passed twice is another key)
        assert_same(a[2](X, Y, s1, s2).data, b[2](X, Y, s1, s2).data, f"step {k}: cost")
        assert_twins_equal(a, b)
    info = b[2].cache_info()
    assert (info.captures, info.replays, info.eager) == (2, 4, 0), info
    assert "_plain_bce" not in b[2].source


def test_no_branch_is_kept_after_a_step_or_a_dropout_draw():
    """A replay stopped halfway must leave everything as it was: after an optimizer step (or a dropout mask drawn)
    the capture takes the general form, with no check."""
    def twice(model, opt, X, Y, scale):
        bce_step(model, opt, X, Y, scale)
        return bce_step(model, opt, X, Y, scale)
    a, b = twins(twice)
    for k in range(4):
        X, Y = data(k)
        scale = np.asarray(100.0 if k == 2 else 1.0)
        assert_same(a[2](X, Y, scale).data, b[2](X, Y, scale).data, f"step {k}: cost")
        assert_twins_equal(a, b)
        if k == 1:  # the first bce_step's branch is checked (before any effect), the second's is not kept
            assert b[2].source.count("_plain_bce(lo, hi)") == 1 and b[2].source.count("= _bce_safe(") == 1
    assert b[2].source.count("_plain_bce(lo, hi)") == 0 and b[2].source.count("= _bce_safe(") == 2
    assert b[2].cache_info().captures == 2
    (m1, o1), (m2, o2) = small_net(0, keep_prob=0.7), small_net(0, keep_prob=0.7)
    fast = dl.jit(lambda X, Y, scale: bce_step(m2, o2, X, Y, scale))
    for k in range(3):
        X, Y = data(k)
        scale = np.asarray(100.0 if k == 1 else 1.0)
        assert_same(bce_step(m1, o1, X, Y, scale).data, fast(X, Y, scale).data, f"dropout, step {k}: cost")
        assert_twins_equal((m1,), (m2,))
    assert "_plain_bce" not in fast.source and fast.cache_info().captures == 1


def test_returned_values_are_fresh():
    a, b = twins(lambda model, opt, X, Y: (standard(model, opt, X, Y), model(X).detach()))
    X, Y = data(0)
    b[2](X, Y)
    first = b[2](X, Y)
    kept = [first[0].data.copy(), first[1].data.copy()]
    b[2](*data(1))
    assert same(first[0].data, kept[0]) and same(first[1].data, kept[1])
    assert first[0].requires_grad is False and first[0].creator is None


def test_errors_are_raised_by_the_replay_as_by_eager_mode():
    model, opt = small_net()
    f = dl.jit(lambda X, Y: F.binary_cross_entropy(F.sigmoid(model(X)), Y).detach())
    X, Y = data(0)
    f(X, Y), f(X, Y)
    with pytest.raises(ValueError, match=r"binary_cross_entropy: A must hold probabilities"):
        F.binary_cross_entropy(F.sigmoid(model(X)) * 2.0, Y)
    g = dl.jit(lambda A, Y: F.binary_cross_entropy(A * 1.0, Y))
    A = np.full((1, 5), 0.25)
    g(A, Y), g(A, Y)
    A[0, 3] = 1.5
    with pytest.raises(ValueError, match=r"binary_cross_entropy: A must hold probabilities .*max 1\.5"):
        g(A, Y)         # the replay checks the range, as eager mode does
    A[0, 3] = np.nan
    assert np.isnan(g(A, Y).item())
    labels = np.array([0, 1, 0, 1, 0])
    h = dl.jit(lambda X, labels: F.cross_entropy(dl.concatenate([model(X), -model(X)]), labels).detach())
    h(X, labels), h(X, labels)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        h(X, labels + 1)


def test_integer_labels_change_with_the_data():
    model, opt = small_net()
    f = dl.jit(lambda X, labels: F.cross_entropy(dl.concatenate([model(X), -model(X)]), labels).detach())
    for k in range(4):
        X, _ = data(k)
        labels = np.random.default_rng(k).integers(0, 2, 5)
        want = F.cross_entropy(dl.concatenate([model(X), -model(X)]), labels)
        assert_same(want.data, f(X, labels).data, f"call {k}")
    assert f.cache_info().replays == 3


def test_user_functions_replay_through_their_own_methods():
    class Cube(dl.Function):
        """y = x**3; dy/dx = 3 x**2 (a rule written with Tensors)"""
        def forward(self, x):
            return x * x * x

        def backward(self, grad, out, x):
            return (grad * 3.0 * x * x,)

    class Scale(dl.Function):
        """y = s x (an ndarray rule)"""
        ndarray_backward = True

        def __init__(self, s):
            self.s = s

        def forward(self, x):
            return x * self.s

        def backward(self, grad, out, x):
            return (grad * self.s,)

    def body(model, opt, X, Y):
        opt.zero_grad()
        Z = Scale(0.5)(Cube()(model(X)))
        cost = F.binary_cross_entropy_with_logits(Z, Y)
        cost.backward()
        opt.step()
        return cost

    a, b = twins(body)
    for k in range(4):
        X, Y = data(k)
        assert_same(a[2](X, Y).data, b[2](X, Y).data, f"call {k}")
        assert_twins_equal(a, b)
    assert b[2].cache_info().replays == 3
    assert "_rule(" in b[2].source and "_forward(" in b[2].source


def test_nested_jit_keyword_arguments_and_methods():
    model, opt = small_net()
    inner = dl.jit(lambda X: model(X))

    class Trainer:
        @dl.jit
        def step(self, X, *, Y):
            opt.zero_grad()
            cost = F.binary_cross_entropy_with_logits(inner(X), Y)
            cost.backward()
            opt.step()
            return cost

    ref_model, ref_opt = small_net()
    trainer = Trainer()
    for k in range(3):
        X, Y = data(k)
        ref = standard(ref_model, ref_opt, X, Y)
        assert_same(ref.data, trainer.step(X, Y=Y).data, f"call {k}")
    assert Trainer.step.cache_info().replays == 2
    assert inner.cache_info().captures == 0   # it ran inside the outer capture


def test_nothing_computed_from_data_is_frozen():
    """The programs of the library's networks hold no array constants: masks, shifts, one-hot labels and 1 - Y are
    computed at every replay (only numbers like 0.5 and 1/m are constants)."""
    for loss in ("bce", "bce_logits", "ce_one_hot", "ce_labels", "mse"):
        net = dict(dtype=np.float64, n_x=3, hidden=[4], activation="relu", keep_prob=0.5, loss=loss,
                   n_out=3 if loss.startswith("ce") else 1, optimizer="adam", schedule=None, lambd=0.7,
                   zero_grad=True, batches=[5, 5, 5], evals=set(), seed=3, lr=0.1)
        _, _, step = build(net)
        f = dl.jit(step)
        for k in range(3):
            f(*batch(net, k))
        constants = [v for v in f._last.fn.__globals__.values() if isinstance(v, np.ndarray)]
        # numbers, and arrays computed from numbers alone (the gradient of the cost broadcast to a row): uniform
        assert all(c.ndim == 0 or np.all(c == c.flat[0]) for c in constants), (loss, constants)
        words = {"bce": "_bce_safe", "bce_logits": "_float_minus", "ce_one_hot": "_max_shift",
                 "ce_labels": "_check_one_hot", "mse": "_scale"}
        for word in (words[loss], "= _kept(", "._scale("):   # the loss, relu's mask, dropout's mask
            assert word in f.source, (loss, word)


def test_source_reads_like_the_course_backprop():
    W1 = dl.Tensor(np.full((4, 2), 0.1), requires_grad=True, name="W1")
    b1 = dl.Tensor(np.zeros((4, 1)), requires_grad=True, name="b1")
    W2 = dl.Tensor(np.full((1, 4), 0.1), requires_grad=True, name="W2")
    b2 = dl.Tensor(np.zeros((1, 1)), requires_grad=True, name="b2")

    @dl.jit
    def step(X, Y):
        Z1 = W1 @ X + b1
        Z1.name = "Z1"
        A1 = Z1.tanh()
        A1.name = "A1"
        Z2 = W2 @ A1 + b2
        Z2.name = "Z2"
        F.binary_cross_entropy_with_logits(Z2, Y).backward()
    assert step.source.startswith("# nothing captured yet")
    step(np.ones((2, 3)), np.ones((1, 3)))
    src = step.source
    for line in ("A1 = np.tanh(Z1)", "dW2 = dZ2 @ ", "db2 = dZ2.sum(axis=(1,), keepdims=True)",
                 "dZ1 = dA1 * ", "dW1 = dZ1 @ ", "p_W1.grad = dW1 if p_W1.grad is None else p_W1.grad + dW1"):
        assert line in src, line
    assert src.index("A1 = np.tanh") < src.index("dZ2") < src.index("dZ1") < src.index("p_W1.grad")


def test_cache_clear_and_arguments_of_the_decorator():
    model, _ = small_net()
    f = dl.jit(max_captures=2)(lambda X: model(X).detach())
    X, _ = data(0)
    f(X), f(X)
    f.cache_clear()
    f(X)
    assert f.cache_info().captures == 2 and f.cache_info().maxsize == 2
    with pytest.raises(TypeError, match="expected a function"):
        dl.jit(3)
    with pytest.raises(ValueError, match="max_captures"):
        dl.jit(lambda: 0, max_captures=0)


def test_a_program_too_long_runs_eagerly():
    x = dl.Tensor(np.ones(3), requires_grad=True)

    def chain(c):
        y = x
        for _ in range(50):
            y = y * c
        y.sum().backward()

    f = dl.jit(chain, max_statements=60)
    with pytest.warns(jit_module.JitWarning, match="grew past 60 statements"):
        f(np.asarray(0.5))
    x.grad = None
    f(np.asarray(0.5))
    assert same(x.grad, np.full(3, 0.5 ** 50)) and f.cache_info().eager == 1
    with pytest.raises(ValueError, match="max_statements"):
        dl.jit(chain, max_statements=0)


def test_the_main_job_with_jit_gives_the_same_run(tmp_path):
    """examples/deep_network.py --jit: the same costs and accuracies as without, the step replayed."""
    import json
    import os
    import subprocess
    import sys
    from conftest import need_module
    need_module("sklearn")
    need_module("matplotlib")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg", PATH="")   # (no dot: a quicker run)
    results = []
    for flags in ([], ["--jit"]):
        proc = subprocess.run([sys.executable, os.path.join(root, "examples", "deep_network.py"), "--quick",
                               "--out", str(tmp_path / ("jit" if flags else "eager")), *flags],
                              capture_output=True, text=True, env=env, timeout=300, cwd=root)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results.append(json.loads(proc.stdout.strip().splitlines()[-1][len("RESULT "):]))
        if flags:
            assert "replays=59" in proc.stdout
    results[0].pop("train_seconds"), results[1].pop("train_seconds")
    assert results[0] == results[1]


def test_two_backward_passes_through_one_graph_and_a_gradient_given():
    def body(model, opt, X, Y):
        opt.zero_grad()
        Z = model(X)
        J = F.binary_cross_entropy_with_logits(Z, Y)
        J.backward(retain_graph=True)
        (Z * Z).sum().backward()                   # a second pass through the same graph
        model(X).backward(np.full((1, 5), 0.5))    # a non-scalar output with its gradient given
        opt.step()
        return J.detach()                          # (J's own graph is still alive: retain_graph above)
    a, b = twins(body)
    for k in range(4):
        X, Y = data(k)
        assert_same(a[2](X, Y).data, b[2](X, Y).data, f"call {k}")
        assert_twins_equal(a, b)
    assert b[2].cache_info().replays == 3


def test_threads_capture_and_replay_their_own_steps():
    import threading
    results = {}

    def train(name):
        a, b = twins(standard, seed=len(name))
        for k in range(6):
            X, Y = data(k)
            a[2](X, Y), b[2](X, Y)
        ok = all(same(p.data, q.data) for p, q in zip(a[0].parameters(), b[0].parameters()))
        results[name] = ok, b[2].cache_info().replays
    threads = [threading.Thread(target=train, args=(f"t{i}" * (i + 1),)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(ok and replays == 5 for ok, replays in results.values()) and len(results) == 3, results
