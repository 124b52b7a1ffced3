#!/usr/bin/env python
"""Data parallelism with Dask: the time of one training step and the peak memory of the driver and of each worker,
NumPy against Dask (the threaded scheduler, and a dask.distributed LocalCluster of worker processes), as the number
of examples m grows past one worker's memory limit.

The step: the main job's network [64, 64, 32, 10] (ReLU, softmax cross-entropy), forward, cost, backward and an
Adam update, on the whole set. The data: 10 Gaussian classes in 64 dimensions, generated chunk by chunk (by the
workers for Dask, never whole on the driver); the parameters are NumPy arrays on the driver. Every run is checked
against NumPy's cost (to 1e-10) before its time counts. One BLAS thread everywhere; peak memory is Linux's VmHWM
(reset before each measurement), so it includes Python and the libraries.

  python benchmarks/dask_scaling.py                    # m = 1e4 ... 6e5: about 5 minutes on 2 cores
  python benchmarks/dask_scaling.py --m 10000 100000 --steps 2 --json out.json --markdown out.md
"""
from __future__ import annotations

import os
import sys

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"  # before NumPy loads, and inherited by the worker processes
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

LAYER_DIMS = [64, 64, 32, 10]
CHUNK = 20_000


def blobs(size, seed):
    """`size` examples of 10 Gaussian classes in 64 dimensions (X (64, size), labels (size,)): plain NumPy."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(0).standard_normal((64, 10))
    y = rng.integers(0, 10, size)
    return centers[:, y] + rng.standard_normal((64, size)), y


def chunk_sizes(m):
    return [min(CHUNK, m - start) for start in range(0, m, CHUNK)]


def numpy_data(m):
    parts = [blobs(size, k) for k, size in enumerate(chunk_sizes(m))]
    return np.concatenate([p[0] for p in parts], axis=1), np.concatenate([p[1] for p in parts])


def lazy_data(m):
    import dask
    import dask.array as da
    Xs, ys = [], []
    for k, size in enumerate(chunk_sizes(m)):
        pair = dask.delayed(blobs, nout=2, pure=True)(size, k)
        Xs.append(da.from_delayed(pair[0], shape=(64, size), dtype=np.float64))
        ys.append(da.from_delayed(pair[1], shape=(size,), dtype=np.int64))
    return da.concatenate(Xs, axis=1), da.concatenate(ys)


def step_times(X, y, steps):
    """Seconds of each step (the first one warms up, and is dropped) and the cost of each step."""
    import tinygrad_dl as dl
    import tinygrad_dl.functional as F
    rng = np.random.default_rng(1)
    layers = []
    for n_in, n_out in zip(LAYER_DIMS[:-1], LAYER_DIMS[1:]):
        layers += [dl.nn.Dense(n_in, n_out, init="he", rng=rng), dl.nn.ReLU()]
    model = dl.nn.Sequential(*layers[:-1])
    opt = dl.optim.Adam(model.parameters(), lr=0.01)
    times, costs = [], []
    for _ in range(steps + 1):
        start = time.perf_counter()
        J = F.cross_entropy(model(X), y)
        opt.zero_grad()
        J.backward()
        costs.append(opt.step(J))   # for Dask: every gradient and J in one pass over the data
        times.append(time.perf_counter() - start)
    return times[1:], costs


def peak_mb(reset=False):
    """This process's peak resident memory in MB since the last reset (Linux VmHWM)."""
    if reset:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM"))


def run(mode, ms, steps, limit_mib, workers):
    """One row per m: {"m", "seconds", "driver_mb", "worker_mb", "costs"}."""
    rows = []
    client = cluster = None
    if mode == "cluster":
        from dask.distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               memory_limit=f"{limit_mib}MiB", dashboard_address=None)
        client = Client(cluster)
    try:
        for m in ms:
            if client is not None:
                client.run(peak_mb, True)
            peak_mb(reset=True)
            if mode == "numpy":
                X, y = numpy_data(m)
                times, costs = step_times(X, y, steps)
            else:
                import dask
                X, y = lazy_data(m)
                settings = {"scheduler": "threads", "num_workers": workers} if mode == "threads" else {}
                with dask.config.set(settings):
                    times, costs = step_times(X, y, steps)
            row = {"m": m, "seconds": min(times), "driver_mb": peak_mb(), "costs": costs}
            if client is not None:
                row["worker_mb"] = sorted(client.run(peak_mb).values())
            rows.append(row)
            print(f"  {mode:8} m = {m:>9,}: {min(times):7.3f} s per step, driver {row['driver_mb']:6.0f} MB"
                  + (f", workers {', '.join(f'{w:.0f}' for w in row['worker_mb'])} MB" if client else ""),
                  flush=True)
            del X, y
    finally:
        if client is not None:
            client.close()
            cluster.close()
    return rows


def markdown(result) -> str:
    limit = result["worker_limit_mb"]
    lines = [f"| m | data | NumPy s/step | NumPy driver peak | Dask threads s/step | threads driver peak | "
             f"LocalCluster s/step | cluster driver peak | each worker's peak (limit {limit:.0f} MB) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    by_mode = {mode: {r["m"]: r for r in rows} for mode, rows in result["runs"].items()}
    for m in result["m"]:
        n, t, c = (by_mode.get(mode, {}).get(m) for mode in ("numpy", "threads", "cluster"))

        def cell(r, key, fmt):
            return "—" if r is None else fmt.format(r[key])

        workers = "—" if c is None else ", ".join(f"{w:.0f} MB" for w in c["worker_mb"])
        lines.append(f"| {m:,} | {m * (64 * 8 + 8) / 1e6:.0f} MB | {cell(n, 'seconds', '{:.3f}')} | "
                     f"{cell(n, 'driver_mb', '{:.0f} MB')} | {cell(t, 'seconds', '{:.3f}')} | "
                     f"{cell(t, 'driver_mb', '{:.0f} MB')} | {cell(c, 'seconds', '{:.3f}')} | "
                     f"{cell(c, 'driver_mb', '{:.0f} MB')} | {workers} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--m", type=int, nargs="+", default=[10_000, 30_000, 100_000, 300_000, 600_000],
                        help="numbers of examples (default 1e4 3e4 1e5 3e5 6e5; 6e5 is 312 MB of data)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per m after one warm-up (default 3)")
    parser.add_argument("--modes", nargs="+", default=["numpy", "threads", "cluster"],
                        choices=["numpy", "threads", "cluster"])
    parser.add_argument("--workers", type=int, default=2, help="Dask threads / worker processes (default 2)")
    parser.add_argument("--memory-limit", type=int, default=256, help="memory limit per worker, MiB (default 256)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)  # one mode, in this process
    args = parser.parse_args()
    if not args.inside:  # each mode in a fresh process: no memory left over from another mode's run
        return driver(args)
    import dask
    import distributed
    result = {"m": args.m, "steps": args.steps, "workers": args.workers,
              "worker_limit_mb": args.memory_limit * 2**20 / 1e6, "chunk": CHUNK,
              "machine": {"python": platform.python_version(), "numpy": np.__version__, "dask": dask.__version__,
                          "distributed": distributed.__version__, "cpus": os.cpu_count(),
                          "load": os.getloadavg()[0]},
              "runs": {}}
    for mode in args.modes:
        print(f"{mode}:", flush=True)
        result["runs"][mode] = run(mode, args.m, args.steps, args.memory_limit, args.workers)
    if args.inside:
        with open(args.json, "w") as f:
            json.dump(result, f)
        return
    report(result, args)


def driver(args):
    import subprocess
    import tempfile
    result = None
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes:
            path = os.path.join(tmp, f"{mode}.json")
            subprocess.run([sys.executable, os.path.abspath(__file__), "--inside", "--modes", mode, "--json", path,
                            "--m", *map(str, args.m), "--steps", str(args.steps), "--workers", str(args.workers),
                            "--memory-limit", str(args.memory_limit)], check=True)
            with open(path) as f:
                part = json.load(f)
            result = part if result is None else {**result, "runs": {**result["runs"], **part["runs"]}}
    report(result, args)


def report(result, args):
    reference = {r["m"]: r["costs"] for r in result["runs"].get("numpy", [])}
    for mode, rows in result["runs"].items():
        for r in rows:
            if r["m"] in reference:
                diff = max(abs(a - b) for a, b in zip(r["costs"], reference[r["m"]]))
                assert diff <= 1e-10, f"{mode} at m = {r['m']}: costs differ from NumPy's by {diff:.2e}"
    table = markdown(result)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
