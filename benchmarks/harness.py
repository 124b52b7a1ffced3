"""Verification, interleaved timing, memory measurement and reporting for the benchmark suite.

Import this only after the BLAS thread variables are set (run.py does it first): NumPy reads them once, at import.
"""
from __future__ import annotations

import gc
import importlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from benchmarks import workloads as W

IMPL_MODULES = {
    "numpy": "benchmarks.baseline",
    "ours": "benchmarks.ours",
    "ours-ops": "benchmarks.ours_ops",
    "ours-jit": "benchmarks.ours_jit",
    "jax": "benchmarks.peer_jax",
    "torch": "benchmarks.peer_torch",
    "autograd": "benchmarks.peer_autograd",
    "mygrad": "benchmarks.peer_mygrad",
}
IMPLS = tuple(IMPL_MODULES)
BASELINE = "numpy"

# Targets of issue 6 for `ours` (ratio of medians to the NumPy baseline, same run).
TARGETS = {"planar": 2.5, "tiny-batch": 1.15, "digits": 1.05, "deep": 1.05, "chain-10000": 4.0,
           "chain-100000": 4.0}
MEMORY_TARGET = 1.3
# Relative tolerances of the gradient verification (norm of the difference over the norm of the reference).
GRAD_TOL = {"float64": 1e-9, "float32": 2e-4}
UPDATE_TOL = {"float64": 1e-6, "float32": 5e-2}


def load_impl(name):
    """Import an implementation module; returns (module or None, description or reason it is unavailable)."""
    if name not in IMPL_MODULES:
        raise ValueError(f"load_impl: unknown implementation {name!r}; expected one of {IMPLS}")
    try:
        mod = importlib.import_module(IMPL_MODULES[name])
    except ImportError as e:
        return None, f"cannot import: {e}"
    ok, desc = mod.available()
    return (mod if ok else None), desc


# ---------------------------------------------------------------- verification

def rel_err(a, ref) -> float:
    """||a - ref|| / ||ref|| in float64 (the course's relative difference, one-sided)."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if a.shape != ref.shape:
        return math.inf
    den = np.linalg.norm(ref)
    return float(np.linalg.norm(a - ref) / (den if den > 0 else 1.0))


def verify_mlp(mod, problem, ref=None):
    """Check that `mod.MLP` computes the baseline's cost and gradients at the initial parameters, keeps the dtype,
    and that one step moves every parameter by -lr * gradient. Returns a dict with ok, max_err, message."""
    dtype = str(problem.dtype)
    if ref is None:
        ref = _baseline_mod().MLP(problem).gradients()
    ref_cost, ref_grads = ref
    cost, grads = mod.MLP(problem).gradients()
    msgs, worst = [], 0.0
    e = abs(cost - ref_cost) / max(abs(ref_cost), 1e-30)
    worst = max(worst, e)
    if not e <= GRAD_TOL[dtype]:
        msgs.append(f"cost {cost!r} != baseline {ref_cost!r} (rel {e:.2e})")
    for name, g, r in zip(problem.param_names(), grads, ref_grads):
        g = np.asarray(g)
        if g.dtype != problem.dtype:
            msgs.append(f"d{name} has dtype {g.dtype}, expected {problem.dtype}")
        e = rel_err(g, r)
        worst = max(worst, e)
        if not e <= GRAD_TOL[dtype]:
            msgs.append(f"d{name} differs from the baseline: rel {e:.2e} (shape {g.shape} vs {np.shape(r)})")
    impl = mod.MLP(problem)
    before = [np.array(p, dtype=np.float64) for p in impl.param_arrays()]
    impl.step()
    for name, p0, p1, r in zip(problem.param_names(), before, impl.param_arrays(), ref_grads):
        e = rel_err((p0 - np.asarray(p1, dtype=np.float64)) / problem.lr, r)
        if not e <= UPDATE_TOL[dtype]:
            msgs.append(f"one step moved {name} by other than -lr*d{name} (rel {e:.2e})")
    return {"ok": not msgs, "max_err": worst, "message": "; ".join(msgs) or "same cost and gradients"}


def verify_chain(mod, problem, ref=None):
    """Check dJ/dx of the chain against the baseline (same rounding) and the baseline against factor**N."""
    dtype = str(problem.dtype)
    if ref is None:
        ref = _baseline_mod().Chain(problem).grad()
    msgs = []
    exact = float(np.asarray(problem.factor, dtype=problem.dtype)) ** problem.n_ops
    e_ref = rel_err(ref, np.full(problem.x.shape, exact))
    if not e_ref <= (1e-9 if dtype == "float64" else 5e-2):
        msgs.append(f"baseline's dJ/dx is off factor**N by {e_ref:.2e}")
    g = np.asarray(mod.Chain(problem).grad())
    if g.dtype != problem.dtype:
        msgs.append(f"dJ/dx has dtype {g.dtype}, expected {problem.dtype}")
    e = rel_err(g, ref)
    # float32 rounding of N products differs between orders of evaluation by up to about N * 2**-24
    tol = GRAD_TOL[dtype] if dtype == "float64" else 1e-2
    if not e <= tol:
        msgs.append(f"dJ/dx differs from the baseline: rel {e:.2e}")
    return {"ok": not msgs, "max_err": e, "message": "; ".join(msgs) or "same gradient"}


def _baseline_mod():
    return importlib.import_module(IMPL_MODULES[BASELINE])


# ---------------------------------------------------------------- timing

def _quantiles(xs):
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[1], q[2]


def summarize(samples):
    q1, med, q3 = _quantiles(samples)
    return {"median": med, "q1": q1, "q3": q3, "min": min(samples), "n": len(samples),
            "spread": (q3 - q1) / med if med > 0 else 0.0, "samples": samples}


def time_steps_interleaved(steps: dict, repeats: int, sample_s: float, warmup_s: float):
    """steps: {name: callable doing one training step}. After warm-up (at least 2 steps and warmup_s seconds
    each), run `repeats` rounds; in each round every implementation (in a rotated order) runs k steps, k chosen
    so a sample lasts about sample_s. Returns {name: per-step seconds of each round}, {name: k}."""
    names = list(steps)
    k = {}
    for n in names:
        f, t_start, count = steps[n], time.perf_counter(), 0
        best = math.inf
        while count < 2 or time.perf_counter() - t_start < warmup_s:
            t0 = time.perf_counter()
            f()
            best = min(best, time.perf_counter() - t0)
            count += 1
        k[n] = max(1, round(sample_s / best))
    samples = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            f, kn = steps[n], k[n]
            t0 = time.perf_counter()
            for _ in range(kn):
                f()
            samples[n].append((time.perf_counter() - t0) / kn)
    return samples, k


def time_chain_interleaved(chains: dict, repeats: int, warmup: bool = True):
    """chains: {name: impl with forward() and backward(J)}. One warm-up run each (unless warmup=False), then
    `repeats` rounds, each implementation once per round in a rotated order.
    Returns {name: {"forward": [...], "backward": [...]}}."""
    names = list(chains)
    for n in names if warmup else ():
        c = chains[n]
        c.backward(c.forward())
    out = {n: {"forward": [], "backward": []} for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            c = chains[n]
            t0 = time.perf_counter()
            J = c.forward()
            t1 = time.perf_counter()
            c.backward(J)
            t2 = time.perf_counter()
            del J
            out[n]["forward"].append(t1 - t0)
            out[n]["backward"].append(t2 - t1)
    return out


def ratio_stats(samples, base):
    """Ratio of medians, and the quartiles of the per-round paired ratios (same round, same machine state)."""
    paired = [a / b for a, b in zip(samples, base)]
    q1, _, q3 = _quantiles(paired)
    return statistics.median(samples) / statistics.median(base), q1, q3


# ---------------------------------------------------------------- memory (run in a child process per implementation)

def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def measure_memory(impl_name, mlp_names, dtypes, chain_sizes, flat_steps):
    """Peak traced memory (tracemalloc) of one training step per workload and dtype, the chain's graph memory, and
    the drift of memory over `flat_steps` planar steps (gc on) and flat_steps // 10 steps with gc off."""
    mod, desc = load_impl(impl_name)
    out = {"impl": impl_name, "peaks": [], "flat": None, "note": desc}
    if mod is None:
        return out
    for wl in mlp_names:
        for dt in dtypes:
            problem = W.make_mlp(wl, dt)
            try:
                impl = mod.MLP(problem)
                impl.step()
                impl.step()
                gc.collect()
                tracemalloc.start()
                impl.step()
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                out["peaks"].append({"workload": wl, "dtype": dt, "peak": peak})
            except Exception as e:  # noqa: BLE001 - a peer that fails is reported, not fatal
                tracemalloc.stop()
                out["peaks"].append({"workload": wl, "dtype": dt, "peak": None, "error": repr(e)[:200]})
            del problem
    for n in chain_sizes:
        for dt in dtypes:
            problem = W.make_chain(n, dt)
            try:
                c = mod.Chain(problem)
                c.backward(c.forward())
                gc.collect()
                tracemalloc.start()
                J = c.forward()
                peak = tracemalloc.get_traced_memory()[0]
                c.backward(J)
                del J
                peak = max(peak, tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
                out["peaks"].append({"workload": f"chain-{n}", "dtype": dt, "peak": peak})
            except Exception as e:  # noqa: BLE001
                tracemalloc.stop()
                out["peaks"].append({"workload": f"chain-{n}", "dtype": dt, "peak": None, "error": repr(e)[:200]})
    if flat_steps:
        out["flat"] = flat_memory(mod, flat_steps)
    return out


def flat_memory(mod, steps, workload="planar"):
    """Traced memory and RSS after a warm-up and after `steps` more training steps (gc on), then traced memory
    over steps // 10 steps with the cycle collector off (a graph that needs gc to die would show up there)."""
    impl = mod.MLP(W.make_mlp(workload, "float64"))
    for _ in range(50):
        impl.step()
    gc.collect()
    tracemalloc.start()
    rss0, cur0 = _rss_bytes(), tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    half = steps // 2
    for _ in range(half):
        impl.step()
    cur_half = tracemalloc.get_traced_memory()[0]
    for _ in range(steps - half):
        impl.step()
    elapsed = time.perf_counter() - t0
    cur1, rss1 = tracemalloc.get_traced_memory()[0], _rss_bytes()
    gc.collect()
    gc.disable()
    n_off = max(1, steps // 10)
    cur2 = tracemalloc.get_traced_memory()[0]
    try:
        for _ in range(n_off):
            impl.step()
        cur3 = tracemalloc.get_traced_memory()[0]
    finally:
        gc.enable()
    tracemalloc.stop()
    return {"workload": workload, "steps": steps, "traced_drift": cur1 - cur0, "rss_drift": rss1 - rss0,
            "second_half_drift": cur1 - cur_half,
            "gc_off_steps": n_off, "gc_off_drift": cur3 - cur2, "seconds": elapsed}


def memory_in_subprocess(impl_name, mlp_names, dtypes, chain_sizes, flat_steps, threads, timeout=600):
    """Run measure_memory in a fresh interpreter (run.py --child-memory) and return its JSON."""
    run_py = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py")
    cmd = [sys.executable, run_py, "--child-memory", impl_name, "--threads", str(threads),
           "--workloads", ",".join(list(mlp_names) + (["chain"] if chain_sizes else [])) or "none",
           "--dtypes", ",".join(dtypes), "--chain-sizes", ",".join(map(str, chain_sizes)) or "0",
           "--flat-steps", str(flat_steps)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return {"impl": impl_name, "peaks": [], "flat": None, "note": f"memory child timed out after {timeout}s"}
    for line in reversed(res.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"impl": impl_name, "peaks": [], "flat": None,
            "note": f"memory child failed (exit {res.returncode}): {res.stderr.strip()[-300:]}"}


# ---------------------------------------------------------------- machine and BLAS

def blas_info():
    """threadpoolctl's view of every BLAS/OpenMP library loaded in this process (call after importing impls)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed: BLAS threads set through the environment only"}]
    keys = ("user_api", "internal_api", "version", "num_threads", "architecture", "threading_layer", "prefix")
    return [{k: d.get(k) for k in keys if d.get(k) is not None} for d in threadpool_info()]


def enforce_threads(threads):
    """Pin every loaded BLAS/OpenMP pool to `threads` (the environment already asked; torch's own OpenMP may
    need it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads)


def machine_info():
    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "numpy": np.__version__, "commit": _git_commit()}


def _git_commit():
    """The repository's commit, with '+changes' when tinygrad_dl/ differs from it (the timed code)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "tinygrad_dl"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (head or "?") + (" + uncommitted changes in tinygrad_dl/" if dirty else "")


# ---------------------------------------------------------------- formatting

def fmt_time(s):
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.1f} µs"


def fmt_bytes(b):
    if b is None:
        return "-"
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(b) >= size:
            return f"{b / size:.2f} {unit}"
    return f"{b} B"


def to_markdown(report) -> str:
    """The report as Markdown tables: the ratio summary, per-step times, the chain, memory and drift."""
    L = []
    meta = report["meta"]
    L.append(f"## Run: {meta['threads']} BLAS thread(s), {meta['date']}")
    L.append("")
    L.append(f"- Command: `{meta['command']}`")
    m = meta["machine"]
    L.append(f"- Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}; NumPy {m['numpy']}; {m['platform']}")
    L.append(f"- Code: commit {m.get('commit', '?')}; cycle collector: "
             + ("objects alive before timing frozen (gc.freeze)" if meta.get("gc_freeze") else "not frozen"))
    for b in meta["blas"]:
        L.append("- BLAS/OpenMP: " + ", ".join(f"{k}={v}" for k, v in b.items()))
    if meta.get("openblas_env_removed"):
        L.append(f"- Removed for this run: {meta['openblas_env_removed']}")
    for name, desc in meta["impls"].items():
        L.append(f"- {name}: {desc}")
    L.append("- Timing: interleaved rounds in one process after warm-up; median per step, spread = IQR / median; "
             "ratio = median / NumPy baseline's median in the same run (paired per-round ratio quartiles in "
             "brackets).")
    L.append("")
    impls = [i for i in meta["impls_run"]]
    rows = report["mlp"]
    chain = report["chain"]
    if rows or chain:
        L.append("### Ratio to the NumPy baseline (median per step; lower is better)")
        L.append("")
        L.append("| workload | dtype | " + " | ".join(impls) + " | target (ours) |")
        L.append("|---|---|" + "---|" * len(impls) + "---|")
        for key, group in _group(rows + chain):
            wl, dt = key
            cells = []
            for i in impls:
                r = group.get(i)
                cells.append(_ratio_cell(r))
            tgt = TARGETS.get(wl)
            L.append(f"| {wl} | {dt} | " + " | ".join(cells) + f" | {f'≤ {tgt:.2f}x' if tgt else '-'} |")
        L.append("")
    if rows:
        L.append("### Training step times")
        L.append("")
        L.append("| workload | dtype | impl | median | spread | min | ratio [IQR] | steps/sample x rounds |")
        L.append("|---|---|---|---|---|---|---|---|")
        for r in rows:
            if r.get("status") != "ok":
                L.append(f"| {r['workload']} | {r['dtype']} | {r['impl']} | {r.get('status')} | | | | |")
                continue
            L.append(f"| {r['workload']} | {r['dtype']} | {r['impl']} | {fmt_time(r['median'])} | "
                     f"{r['spread'] * 100:.1f}% | {fmt_time(r['min'])} | {r['ratio']:.3f}x "
                     f"[{r['ratio_q1']:.3f}, {r['ratio_q3']:.3f}] | {r['k']} x {r['n']} |")
        L.append("")
    if chain:
        L.append("### Chain: y = y * 1.0000001 repeated N times, then sum().backward()")
        L.append("")
        L.append("| N | dtype | impl | forward | backward | total | ratio | backward/forward | µs per op |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for r in chain:
            if r.get("status") != "ok":
                L.append(f"| {r['n_ops']} | {r['dtype']} | {r['impl']} | {r.get('status')} | | | | | |")
                continue
            L.append(f"| {r['n_ops']} | {r['dtype']} | {r['impl']} | {fmt_time(r['forward'])} | "
                     f"{fmt_time(r['backward'])} | {fmt_time(r['median'])} | {r['ratio']:.2f}x | "
                     f"{r['bwd_over_fwd']:.2f} | {r['us_per_op']:.2f} |")
        lin = report.get("chain_linearity", {})
        if lin:
            L.append("")
            L.append("Linearity (µs per op at each N; max/min of those):")
            L.append("")
            for (k, v) in lin.items():
                per = ", ".join(f"{n}: {u:.2f}" for n, u in v["us_per_op"].items())
                L.append(f"- {k}: {per} -> max/min {v['max_over_min']:.2f}")
        L.append("")
    mem = report.get("memory")
    if mem:
        L.append("### Peak memory of one step (tracemalloc, each implementation in its own subprocess)")
        L.append("")
        L.append("PyTorch allocates tensors outside Python's allocator, which tracemalloc cannot see: n/a.")
        L.append("")
        impls_m = list(dict.fromkeys(r["impl"] for r in mem["peaks"]))
        L.append("Each cell: peak bytes above the state before the step (ratio to NumPy's). Chain: the whole graph "
                 "and its backward.")
        L.append("")
        L.append("| workload | dtype | " + " | ".join(impls_m) + " |")
        L.append("|---|---|" + "---|" * len(impls_m))
        cells = {}
        for r in mem["peaks"]:
            if r.get("note") == "untraced":
                c = "n/a"
            elif r.get("peak") is None:
                c = "error"
            else:
                c = fmt_bytes(r["peak"])
                if r.get("ratio") is not None:
                    c += f" ({r['ratio']:.2f}x)"
                elif r.get("bytes_per_op") is not None:
                    c += f" ({r['bytes_per_op']:.0f} B/op)"
            cells.setdefault((r["workload"], r["dtype"]), {})[r["impl"]] = c
        for (wl, dt), row in cells.items():
            L.append(f"| {wl} | {dt} | " + " | ".join(row.get(i, "-") for i in impls_m) + " |")
        L.append("")
        if mem["flat"]:
            L.append("### Memory over many steps (planar, float64)")
            L.append("")
            L.append("Traced drift: traced memory after the steps minus before (after 50 warm-up steps); second "
                     "half: the same over the last half of the steps only (a leak grows there too; free lists and "
                     "caches that fill once do not).")
            L.append("")
            L.append("| impl | steps | traced drift | second half | RSS drift | gc off: steps | gc off: traced drift |")
            L.append("|---|---|---|---|---|---|---|")
            for r in mem["flat"]:
                L.append(f"| {r['impl']} | {r['steps']} | {fmt_bytes(r['traced_drift'])} | "
                         f"{fmt_bytes(r.get('second_half_drift'))} | "
                         f"{fmt_bytes(r['rss_drift'])} | {r['gc_off_steps']} | {fmt_bytes(r['gc_off_drift'])} |")
            L.append("")
    if report.get("verification"):
        L.append("### Gradient verification against the baseline (before timing)")
        L.append("")
        L.append("| workload | dtype | impl | ok | max rel. difference | message |")
        L.append("|---|---|---|---|---|---|")
        for v in report["verification"]:
            L.append(f"| {v['workload']} | {v['dtype']} | {v['impl']} | {'yes' if v['ok'] else 'NO'} | "
                     f"{v['max_err']:.1e} | {v['message']} |")
        L.append("")
    return "\n".join(L)


def _ratio_cell(r):
    if r is None:
        return "-"
    if r.get("status") != "ok":
        return r.get("status", "?").split(":")[0]
    return f"{r['ratio']:.2f}x"


def _group(rows):
    groups, order = {}, []
    for r in rows:
        wl = r["workload"] if "n_ops" not in r else f"chain-{r['n_ops']}"
        key = (wl, r["dtype"])
        if key not in groups:
            groups[key] = {}
            order.append(key)
        groups[key][r["impl"]] = r
    return [(k, groups[k]) for k in order]
