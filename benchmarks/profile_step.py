#!/usr/bin/env python
"""Where does our training step's time go? Phases (forward+cost, backward, update) against the NumPy baseline's,
the ops in one step, the overhead per op, and a cProfile table. One BLAS thread.

  python benchmarks/profile_step.py --workload planar
  python benchmarks/profile_step.py --workload tiny-batch --dtype float32 --top 30
  python benchmarks/profile_step.py --workload chain --chain-size 100000
"""
from __future__ import annotations

import argparse
import os
import sys

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"
for _v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_v, None)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks import baseline, harness as H, workloads as W  # noqa: E402


def best_of(f, n, rounds=7):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def count_ops(J):
    import tinygrad_dl as dl
    ops = {}
    for t in dl.tensor.toposort([J], include_constants=True):
        if t.creator is not None:
            ops[t.creator.name] = ops.get(t.creator.name, 0) + 1
    return ops


def mlp(args):
    import tinygrad_dl as dl
    mod, desc = H.load_impl(args.impl)
    problem = W.make_mlp(args.workload, args.dtype)
    impl, base = mod.MLP(problem), baseline.MLP(problem)
    print(f"{args.impl}: {desc}\n{args.workload} {args.dtype}: {problem.describe()}")
    for _ in range(50):
        impl.step()
        base.step()
    n = args.steps
    if hasattr(impl, "cost"):
        cost = (lambda: impl.cost(impl.X, impl.Y)) if args.impl == "ours" else None
    else:
        cost = None
    if args.impl == "ours-ops":
        from benchmarks import ours_ops
        cost = lambda: ours_ops._cost(impl.params, impl.X, impl.Y, impl.hidden, impl.output)  # noqa: E731
    t_step = best_of(impl.step, n)
    t_base = best_of(base.step, n)
    print(f"\nfull step: {t_step * 1e6:.1f} µs; baseline {t_base * 1e6:.1f} µs; ratio {t_step / t_base:.2f}x")
    if cost is not None:
        import statistics
        ops = count_ops(cost())
        n_ops = sum(ops.values())
        phases = {"forward+cost": [], "backward": [], "update+zero_grad": [], "forward under no_grad": [],
                  "baseline forward+backward": [], "baseline update": []}
        lr = problem.lr
        for _ in range(n):   # phases timed inside the same steps, medians over n steps
            t0 = time.perf_counter()
            J = cost()
            t1 = time.perf_counter()
            J.backward()
            t2 = time.perf_counter()
            impl.opt.step()
            impl.opt.zero_grad()
            t3 = time.perf_counter()
            with dl.no_grad():
                cost()
            t4 = time.perf_counter()
            _, grads = base.cost_and_gradients()
            t5 = time.perf_counter()
            for q, g in zip(base.params, grads):
                q -= lr * g
            t6 = time.perf_counter()
            for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
                phases[k].append(v)
        med = {k: statistics.median(v) for k, v in phases.items()}
        ours_total = med["forward+cost"] + med["backward"] + med["update+zero_grad"]
        base_total = med["baseline forward+backward"] + med["baseline update"]
        print(f"ops per step: {n_ops} {ops}")
        print("medians over the same steps: " + "; ".join(f"{k} {v * 1e6:.1f} µs" for k, v in med.items()))
        print(f"overhead over the baseline: {(ours_total - base_total) * 1e6:.1f} µs per step = "
              f"{(ours_total - base_total) / n_ops * 1e6:.2f} µs per op (forward + backward + its share of "
              f"the update); recording costs {(med['forward+cost'] - med['forward under no_grad']) * 1e6:.1f} µs")
    profile(impl.step, n, args.top)


def chain(args):
    mod, _ = H.load_impl(args.impl)
    problem = W.make_chain(args.chain_size, args.dtype)
    c, b = mod.Chain(problem), baseline.Chain(problem)
    c.backward(c.forward())
    for name, impl in (("baseline", b), (args.impl, c)):
        t0 = time.perf_counter()
        J = impl.forward()
        t1 = time.perf_counter()
        impl.backward(J)
        t2 = time.perf_counter()
        print(f"{name}: forward {(t1 - t0) / problem.n_ops * 1e6:.2f} µs/op, "
              f"backward {(t2 - t1) / problem.n_ops * 1e6:.2f} µs/op")
    profile(lambda: c.backward(c.forward()), 1, args.top)


def profile(f, n, top):
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(n):
        f()
    pr.disable()
    s = io.StringIO()
    st = pstats.Stats(pr, stream=s)
    st.sort_stats("tottime").print_stats(top)
    print(f"\ncProfile of {n} step(s), by own time (profiling inflates per-call costs):")
    print("\n".join(line for line in s.getvalue().splitlines() if line.strip()))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="planar", choices=list(W.MLP_WORKLOADS) + ["chain"])
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--impl", default="ours", choices=["ours", "ours-ops", "torch", "autograd", "mygrad"])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--chain-size", type=int, default=100_000)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    np.seterr(all="ignore")
    (chain if args.workload == "chain" else mlp)(args)


if __name__ == "__main__":
    main()
