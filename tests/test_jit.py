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
    assert info.replays == steps - 1 and info.eager == 0, info


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

OPTIMIZERS = {
    "gd": lambda p, lr: dl.optim.GradientDescent(p, lr=lr),
    "momentum": lambda p, lr: dl.optim.Momentum(p, lr=lr, beta=0.9),
    "momentum_bc": lambda p, lr: dl.optim.Momentum(p, lr=lr, beta=0.8, bias_correction=True),
    "rmsprop": lambda p, lr: dl.optim.RMSprop(p, lr=lr),
    "adam": lambda p, lr: dl.optim.Adam(p, lr=lr),
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
    opt = OPTIMIZERS[net["optimizer"]](model.parameters(), net["lr"])

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
    out = []
    for name in ("v", "s", "m"):
        for avg in getattr(opt, name, []):
            out.append((avg.t, avg.raw))
    return out


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
        for (t1, a1), (t2, a2) in zip(optimizer_state(o1), optimizer_state(o2)):
            assert t1 == t2
            assert_same(a1, a2, f"step {k}: optimizer state")
        for l1, l2 in zip(m1.layers, m2.layers):
            if isinstance(l1, nn.Dropout):
                assert_same(l1.mask, l2.mask, f"step {k}: dropout mask")
                assert l1.rng.bit_generator.state == l2.rng.bit_generator.state
    info = fast.cache_info()
    assert info.eager == 0 and info.replays >= 1, info
