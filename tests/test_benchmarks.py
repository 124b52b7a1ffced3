"""Smoke test of the benchmark suite's correctness machinery (benchmarks/), at tiny sizes. Nothing is timed.

The oracle for the NumPy baseline is a two-sided finite difference of its own cost (notes 3.2.3); every other
implementation (ours and the installed peers) is then checked against the baseline exactly as run.py does before
timing, and the check itself is shown to reject wrong gradients.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import baseline, harness as H, workloads as W  # noqa: E402
from conftest import need_tool  # noqa: E402
from tinygrad_dl.testing import finite_differences  # noqa: E402

MLPS = list(W.MLP_WORKLOADS)
OTHERS = ["ours", "ours-jit", "ours-ops", "torch", "autograd", "mygrad"]


def _impl(name):
    mod, desc = H.load_impl(name)
    if mod is None:
        need_tool(False, f"{name} ({desc})")  # a skip locally; a failure in CI, which installs the bench extra
    return mod


def _finite_difference(problem, eps=1e-6):
    """Two-sided differences of the baseline's cost with respect to every parameter entry (the library's one
    finite-difference routine, on the baseline's own cost)."""
    grads = []
    for i in range(len(problem.params)):
        params = [q.copy() for q in problem.params]        # params[i] is moved in place by finite_differences

        def cost():
            return baseline.MLP(W.MLPProblem(**{**problem.__dict__, "params": params})).gradients()[0]

        grads.append(finite_differences(cost, params[i], eps))
    return grads


@pytest.mark.parametrize("workload", MLPS)
def test_baseline_gradients_match_finite_differences(workload):
    problem = W.make_mlp(workload, "float64", size="tiny", seed=1)
    _, grads = baseline.MLP(problem).gradients()
    for name, g, fd in zip(problem.param_names(), grads, _finite_difference(problem)):
        assert g.shape == fd.shape, name
        diff = np.linalg.norm(g - fd) / (np.linalg.norm(g) + np.linalg.norm(fd))
        assert diff < 1e-6, f"{workload} d{name}: relative difference {diff:.2e}"


@pytest.mark.parametrize("workload", MLPS)
def test_baseline_step_is_gradient_descent(workload):
    problem = W.make_mlp(workload, "float64", size="tiny")
    impl = baseline.MLP(problem)
    _, grads = baseline.MLP(problem).gradients()
    impl.step()
    for p0, p1, g in zip(problem.params, impl.param_arrays(), grads):
        np.testing.assert_allclose(p1, p0 - problem.lr * g, rtol=1e-12, atol=1e-15)
    assert not np.shares_memory(impl.param_arrays()[0], problem.params[0])


def test_baseline_chain_matches_closed_form():
    problem = W.make_chain(300, "float64")
    np.testing.assert_allclose(baseline.Chain(problem).grad(), problem.expected_grad(), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("workload", MLPS)
@pytest.mark.parametrize("impl", OTHERS)
def test_implementation_verifies_against_baseline(impl, workload, dtype):
    mod = _impl(impl)
    problem = W.make_mlp(workload, dtype, size="tiny", seed=2)
    result = H.verify_mlp(mod, problem)
    assert result["ok"], f"{impl} on {workload} {dtype}: {result['message']}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("impl", OTHERS)
def test_chain_verifies_against_baseline(impl, dtype):
    mod = _impl(impl)
    result = H.verify_chain(mod, W.make_chain(200, dtype))
    assert result["ok"], f"{impl} chain {dtype}: {result['message']}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_jax_peer_verifies_when_installed(dtype):
    """JAX is an optional peer (not a dependency): checked like the others where it is installed."""
    pytest.importorskip("jax")
    mod = _impl("jax")
    for workload in MLPS:
        result = H.verify_mlp(mod, W.make_mlp(workload, dtype, size="tiny", seed=2))
        assert result["ok"], f"jax on {workload} {dtype}: {result['message']}"
    assert H.verify_chain(mod, W.make_chain(200, dtype))["ok"]


class _Wrong:
    """The baseline with one deliberate mistake, to show that verify_mlp can fail."""

    def __init__(self, mistake):
        self.mistake = mistake

    def MLP(self, problem):  # noqa: N802 - mimics an implementation module
        impl, mistake = baseline.MLP(problem), self.mistake
        original = impl.cost_and_gradients

        def wrong():
            cost, grads = original()
            grads = list(grads)
            if mistake == "no 1/m":
                grads[0] = grads[0] * problem.m
            elif mistake == "permuted":
                grads[0] = grads[0][::-1].copy()
            elif mistake == "float64":
                grads[0] = grads[0].astype(np.float64)
            return cost, grads

        impl.cost_and_gradients = wrong
        return impl


@pytest.mark.parametrize("mistake", ["no 1/m", "permuted"])
def test_verification_rejects_wrong_gradients(mistake):
    problem = W.make_mlp("tiny-batch", "float64", size="tiny")
    result = H.verify_mlp(_Wrong(mistake), problem)
    assert not result["ok"] and "dW1" in result["message"]


def test_verification_rejects_an_upcast_gradient():
    problem = W.make_mlp("planar", "float32", size="tiny")
    result = H.verify_mlp(_Wrong("float64"), problem)
    assert not result["ok"] and "dtype" in result["message"]


def test_run_help_and_argument_errors():
    run_py = str(ROOT / "benchmarks" / "run.py")
    env = {**os.environ, "PYTHONPATH": ""}
    out = subprocess.run([sys.executable, run_py, "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0
    for option in ("--workloads", "--dtypes", "--impls", "--repeats", "--quick", "--json", "--markdown",
                   "--threads"):
        assert option in out.stdout
    bad = subprocess.run([sys.executable, run_py, "--workloads", "planr"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert bad.returncode == 2 and "planr" in bad.stderr
