"""Random expression graphs (any mix of ops, broadcasting, diamonds) against a trusted reference autograd.

The reference is HIPS autograd (the `test` extra). Each drawn program is run twice, once on our Tensors and
once on autograd.numpy; values and gradients of every leaf must agree to ~1e-9 in float64.
"""
import numpy as np
from hypothesis import given, settings, strategies as st

import tinygrad_dl as dl
from conftest import need_module

SHAPES = {"a": (3, 4), "b": (1, 4), "c": (3, 1), "d": (4, 4)}


def _program_ops(anp, where, maximum, concatenate):
    """name -> (arity, function of pool values); the same code serves both backends."""
    return {
        "add": (2, lambda x, y: x + y),
        "sub": (2, lambda x, y: x - y),
        "mul": (2, lambda x, y: x * y),
        "div": (2, lambda x, y: x / (1.0 + y * y)),
        "tanh": (1, lambda x: x.tanh() if ours(x) else anp.tanh(x)),
        "exp": (1, lambda x: x.tanh().exp() if ours(x) else anp.exp(anp.tanh(x))),
        "log": (1, lambda x: (1.0 + x * x).log() if ours(x) else anp.log(1.0 + x * x)),
        "sqrt": (1, lambda x: (1.0 + x * x).sqrt() if ours(x) else anp.sqrt(1.0 + x * x)),
        "abs": (1, lambda x: x.abs() if ours(x) else anp.abs(x)),
        "pow": (1, lambda x: x ** 2),
        "maximum": (2, lambda x, y: maximum(x, y)),
        # operands pre-broadcast: autograd's own where does not sum a broadcast operand's gradient back
        "where": (2, lambda x, y: where(_val(x) + _val(y) > 0, x + 0.0 * y, y + 0.0 * x)),
        "sum0": (1, lambda x: x.sum(axis=0, keepdims=True)),
        "sum1": (1, lambda x: x.sum(axis=1, keepdims=True)),
        "max1": (1, lambda x: x.max(axis=1, keepdims=True)),
        "mean": (1, lambda x: x.mean(axis=(0, 1), keepdims=True) if ours(x) else anp.mean(x, axis=(0, 1), keepdims=True)),
        "flip": (1, lambda x: x[..., ::-1]),
        "matmul": (1, None),  # x (3, 4) @ d, special-cased below
        "concat": (1, lambda x: concatenate([x[:1], x[1:]], axis=0)),
        "transpose2": (1, lambda x: x.T.T if ours(x) else anp.transpose(anp.transpose(x))),
    }


def ours(x):
    return isinstance(x, dl.Tensor)


def _val(x):
    return x.data if isinstance(x, dl.Tensor) else getattr(x, "_value", x)


def run(program, leaves, backend):
    if backend == "ours":
        ops = _program_ops(None, dl.where, dl.maximum, dl.concatenate)
    else:
        import autograd.numpy as anp
        ops = _program_ops(anp, anp.where, anp.maximum, anp.concatenate)
    pool = list(leaves[:3])
    d = leaves[3]
    for name, i, j in program:
        arity, fn = ops[name]
        x, y = pool[i % len(pool)], pool[j % len(pool)]
        if name == "matmul":
            pool.append((x @ d) if x.shape[1] == 4 and x.shape[0] == 3 else x * 1.5)
        elif arity == 1:
            pool.append(fn(x))
        else:
            pool.append(fn(x, y))
    total = 0.0
    for k, v in enumerate(pool[3:] or pool):
        total = total + (v * (0.5 + 0.1 * k)).sum()
    return total


instructions = st.lists(st.tuples(st.sampled_from(sorted(_program_ops(None, None, None, None))),
                                  st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=14)


@settings(max_examples=60)
@given(program=instructions, seed=st.integers(0, 2**32 - 1))
def test_random_graphs_match_autograd(program, seed):
    need_module("autograd")
    from autograd import grad as agrad
    rng = np.random.default_rng(seed)
    values = [rng.uniform(-2, 2, SHAPES[k]) for k in "abcd"]
    ts = [dl.Tensor(v, requires_grad=True) for v in values]
    ours = run(program, ts, "ours")
    ours.backward()

    reference = run(program, values, "autograd")
    np.testing.assert_allclose(ours.item(), reference, rtol=1e-9, atol=1e-12)
    for k in range(4):
        def f(v, k=k):
            args = list(values)
            args[k] = v
            return run(program, args, "autograd")
        want = agrad(f)(values[k])
        got = np.zeros(SHAPES["abcd"[k]]) if ts[k].grad is None else ts[k].grad
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"leaf {'abcd'[k]}, program {program}")
