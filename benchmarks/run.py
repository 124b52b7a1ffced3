#!/usr/bin/env python
"""Benchmark a full training step (forward, cost, backward, in-place gradient-descent update) of our library
against the course's hand-written NumPy backprop (the baseline) and, when installed, PyTorch CPU eager, HIPS
autograd and MyGrad. Every implementation's gradients are verified against the baseline before it is timed.

Timing is interleaved in one process after warm-up; each result is the median per step over rounds, its spread,
and the ratio to the NumPy baseline's median measured in the same run. Peak memory is measured with tracemalloc,
each implementation in its own subprocess. BLAS runs on --threads threads (default 1) for everyone; the BLAS
library and its thread count are printed (threadpoolctl).

Examples:
  python benchmarks/run.py                                  # everything (about 5-10 minutes on 2 cores)
  python benchmarks/run.py --quick                          # a fast sanity run (about a minute)
  python benchmarks/run.py --workloads planar,tiny-batch --impls ours,torch --dtypes float64
  python benchmarks/run.py --json out.json --markdown out.md
  python benchmarks/run.py --threads 2 --markdown out-2threads.md
"""
from __future__ import annotations

import argparse
import os
import sys

WORKLOADS = ("planar", "deep", "digits", "tiny-batch", "chain")
IMPLS = ("numpy", "ours", "ours-jit", "torch", "jax", "autograd", "mygrad", "ours-ops")
DEFAULT_IMPLS = ("numpy", "ours", "ours-jit", "torch", "jax", "autograd", "mygrad")
DTYPES = ("float64", "float32")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _csv(choices):
    def parse(text):
        items = [t.strip() for t in text.split(",") if t.strip()]
        if items == ["none"]:
            return []
        bad = [t for t in items if t not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(choices)}")
        return items
    return parse


def _sizes(text):
    try:
        return [int(float(t)) for t in text.split(",") if t.strip() and int(float(t)) > 0]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", type=_csv(WORKLOADS), default=list(WORKLOADS),
                   help="comma-separated, from: " + ", ".join(WORKLOADS) + " (default: all)")
    p.add_argument("--dtypes", type=_csv(DTYPES), default=list(DTYPES), help="float64,float32 (default: both)")
    p.add_argument("--impls", type=_csv(IMPLS), default=list(DEFAULT_IMPLS),
                   help="comma-separated, from: " + ", ".join(IMPLS) + " (default: all but ours-ops, those "
                        "installed; numpy, the baseline, always runs; ours-ops is ours with bare Tensor ops)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timing rounds per workload (default 21; --quick 5); the chain uses fewer at large N")
    p.add_argument("--quick", action="store_true",
                   help="a fast sanity run: 5 rounds, short samples, chain at 10^4 only, 1,000 steps of drift")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads for everyone (default 1)")
    p.add_argument("--chain-sizes", type=_sizes, default=None,
                   help="chain lengths (default 10000,100000,1000000; --quick 10000)")
    p.add_argument("--max-step-seconds", type=float, default=12.0,
                   help="skip a chain size for a peer whose step is predicted (from the previous size) to take "
                        "longer than this (default 12; ours and numpy always run)")
    p.add_argument("--flat-steps", type=int, default=None,
                   help="planar steps of the memory-drift check (default 10000; --quick 1000; 0 skips)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    p.add_argument("--no-gc-freeze", action="store_true",
                   help="do not gc.freeze() the objects alive before timing (by default they are frozen, so the "
                        "cycle collector does not rescan the other libraries' objects while timing one of them)")
    p.add_argument("--json", metavar="OUT.json", help="write every number (and raw samples) as JSON")
    p.add_argument("--markdown", metavar="OUT.md", help="write the tables as Markdown")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE if set (by default this process unsets them)")
    p.add_argument("--child-memory", metavar="IMPL", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.repeats is None:
        args.repeats = 5 if args.quick else 21
    if args.chain_sizes is None:
        args.chain_sizes = [10_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.flat_steps is None:
        args.flat_steps = 1000 if args.quick else 10_000
    return args


def pin_environment(args):
    """Set the BLAS thread variables before NumPy is imported; unset OpenBLAS's core-type overrides."""
    for v in THREAD_VARS:
        os.environ[v] = str(args.threads)
    os.environ["BENCH_THREADS"] = str(args.threads)
    removed = {}
    if not args.keep_openblas_env:
        for v in OPENBLAS_OVERRIDES:
            if v in os.environ:
                removed[v] = os.environ.pop(v)
    return removed


def main(argv=None):
    args = parse_args(argv)
    removed = pin_environment(args)
    if "numpy" in sys.modules:
        print("warning: numpy was imported before the thread variables were set", file=sys.stderr)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks import suite
    if args.child_memory:
        return suite.child_memory(args)
    return suite.run(args, removed, argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
