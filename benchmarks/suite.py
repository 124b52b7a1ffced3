"""The orchestration behind run.py: verify, time, measure memory, print and write the report."""
from __future__ import annotations

import datetime
import gc
import json
import shlex
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from benchmarks import harness as H
from benchmarks import workloads as W

MLP_SAMPLE_S = {"quick": 0.02, "full": 0.03}
JIT_MAX_STATEMENTS = 250_000  # dl.jit's default: a chain of N ops is a program of about 2N statements
MLP_WARMUP_S = {"quick": 0.1, "full": 0.3}


def _say(*a):
    print(*a, flush=True)


def child_memory(args):
    mlp = [w for w in args.workloads if w != "chain"]
    sizes = args.chain_sizes if "chain" in args.workloads else []
    out = H.measure_memory(args.child_memory, mlp, args.dtypes, sizes, args.flat_steps)
    print(json.dumps(out))
    return 0


def _chain_rounds(n, repeats):
    if n >= 1_000_000:
        return min(repeats, 2)
    if n >= 100_000:
        return min(repeats, 3)
    return repeats


def run(args, removed, argv):
    t_start = time.perf_counter()
    mode = "quick" if args.quick else "full"
    impl_names = ["numpy"] + [i for i in args.impls if i != "numpy"]
    mods, descs = {}, {}
    for name in impl_names:
        mod, desc = H.load_impl(name)
        descs[name] = desc
        if mod is not None:
            mods[name] = mod
        else:
            _say(f"[skip] {name}: {desc}")
    H.enforce_threads(args.threads)
    blas = H.blas_info()
    machine = H.machine_info()
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in argv)
    _say(f"# {command}")
    _say(f"machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, NumPy {machine['numpy']}")
    if removed:
        _say(f"unset for this process: {removed}")
    for b in blas:
        _say("BLAS/OpenMP: " + ", ".join(f"{k}={v}" for k, v in b.items()))
    bad = [b for b in blas if b.get("num_threads") not in (None, args.threads)]
    if bad:
        _say(f"WARNING: some thread pools are not at {args.threads} thread(s): {bad}")
    for name in mods:
        _say(f"{name}: {descs[name]}")
    if "ours" in mods and hasattr(mods["ours"], "API"):
        _say("ours uses: " + ", ".join(f"{k}={v}" for k, v in mods["ours"].API.items()))

    report = {"meta": {"threads": args.threads, "command": command, "machine": machine, "blas": blas,
                       "openblas_env_removed": removed, "impls": descs, "impls_run": list(mods),
                       "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "mode": mode,
                       "repeats": args.repeats},
              "mlp": [], "chain": [], "verification": [], "memory": None}

    if not args.no_gc_freeze:
        # Move every object alive now (the harness, NumPy, torch's ~10^5 Python objects, ...) out of the cycle
        # collector's reach, so a full collection triggered by one implementation's graph does not rescan the
        # other libraries: each implementation is timed as if alone. Its own garbage is collected as usual.
        gc.collect()
        gc.freeze()
        _say(f"gc.freeze(): {gc.get_freeze_count()} objects moved to the permanent generation (--no-gc-freeze)")
    report["meta"]["gc_freeze"] = not args.no_gc_freeze

    for wl in [w for w in args.workloads if w != "chain"]:
        for dt in args.dtypes:
            _run_mlp(wl, dt, mods, args, mode, report)
    if "chain" in args.workloads:
        for dt in args.dtypes:
            _run_chain(dt, mods, args, report)
        report["chain_linearity"] = _linearity(report["chain"])

    if not args.no_memory:
        report["memory"] = _run_memory(mods, args)

    report["meta"]["seconds"] = time.perf_counter() - t_start
    md = H.to_markdown(report)
    _say("")
    _say(md)
    _say(f"total time: {report['meta']['seconds']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=_jsonable)
        _say(f"wrote {args.json}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md + "\n")
        _say(f"wrote {args.markdown}")
    failed = [v for v in report["verification"] if not v["ok"]]
    return 1 if failed else 0


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)


def _run_mlp(wl, dt, mods, args, mode, report):
    problem = W.make_mlp(wl, dt)
    _say(f"\n== {wl} {dt}: {problem.describe()} {problem.note}")
    ref = mods["numpy"].MLP(problem).gradients()
    steps = {}
    for name, mod in mods.items():
        try:
            v = H.verify_mlp(mod, problem, ref)
        except Exception as e:  # noqa: BLE001 - report and go on
            v = {"ok": False, "max_err": float("nan"), "message": f"raised {e!r}"[:300]}
        report["verification"].append({"workload": wl, "dtype": dt, "impl": name, **v})
        if not v["ok"]:
            _say(f"  [verification FAILED] {name}: {v['message']}")
            report["mlp"].append({"workload": wl, "dtype": dt, "impl": name,
                                  "status": "verification failed: " + v["message"]})
            continue
        steps[name] = mod.MLP(problem).step
    samples, k = H.time_steps_interleaved(steps, args.repeats, MLP_SAMPLE_S[mode], MLP_WARMUP_S[mode])
    base = samples["numpy"]
    for name, s in samples.items():
        st = H.summarize(s)
        ratio, q1, q3 = H.ratio_stats(s, base)
        row = {"workload": wl, "dtype": dt, "impl": name, "status": "ok", "k": k[name], **st,
               "ratio": ratio, "ratio_q1": q1, "ratio_q3": q3}
        report["mlp"].append(row)
        _say(f"  {name:9s} {H.fmt_time(st['median']):>11s} ±{st['spread'] * 100:4.1f}%  "
             f"ratio {ratio:6.3f}x [{q1:.3f}, {q3:.3f}]")


def _run_chain(dt, mods, args, report):
    per_op = {}   # impl -> seconds per op at the largest size so far
    for n in sorted(args.chain_sizes):
        problem = W.make_chain(n, dt)
        _say(f"\n== chain {n} {dt}: {problem.describe()}")
        ref = mods["numpy"].Chain(problem).grad()
        chains = {}
        for name, mod in mods.items():
            est = per_op.get(name, 0.0) * n
            if name == "ours-jit" and 2 * n > JIT_MAX_STATEMENTS:
                msg = f"skipped: a program of {2 * n} statements is not captured (dl.jit's max_statements)"
                _say(f"  [{msg}] {name}")
                report["chain"].append({"n_ops": n, "dtype": dt, "impl": name, "workload": "chain",
                                        "status": msg})
                continue
            if est > args.max_step_seconds and name not in ("numpy", "ours"):
                msg = f"skipped: predicted {est:.0f} s per step > --max-step-seconds {args.max_step_seconds:g}"
                _say(f"  [{msg}] {name}")
                report["chain"].append({"n_ops": n, "dtype": dt, "impl": name, "workload": "chain",
                                        "status": msg})
                continue
            t0 = time.perf_counter()
            try:
                v = H.verify_chain(mod, problem, ref)
            except (Exception, RecursionError) as e:  # noqa: BLE001
                v = {"ok": False, "max_err": float("nan"), "message": f"raised {e!r}"[:300]}
            per_op[name] = (time.perf_counter() - t0) / n
            report["verification"].append({"workload": f"chain-{n}", "dtype": dt, "impl": name, **v})
            if not v["ok"]:
                _say(f"  [verification FAILED] {name}: {v['message']}")
                report["chain"].append({"n_ops": n, "dtype": dt, "impl": name, "workload": "chain",
                                        "status": "verification failed: " + v["message"]})
                per_op[name] = float("inf") if "Recursion" in v["message"] else per_op[name]
                continue
            chains[name] = mod.Chain(problem)
        rounds = _chain_rounds(n, args.repeats)
        times = H.time_chain_interleaved(chains, rounds, warmup=n < 1_000_000)  # verification warmed them
        base_tot = [f + b for f, b in zip(times["numpy"]["forward"], times["numpy"]["backward"])]
        for name, t in times.items():
            tot = [f + b for f, b in zip(t["forward"], t["backward"])]
            st = H.summarize(tot)
            ratio, q1, q3 = H.ratio_stats(tot, base_tot)
            fwd, bwd = statistics.median(t["forward"]), statistics.median(t["backward"])
            per_op[name] = st["median"] / n
            row = {"n_ops": n, "dtype": dt, "impl": name, "workload": "chain", "status": "ok", **st,
                   "forward": fwd, "backward": bwd, "bwd_over_fwd": bwd / fwd, "ratio": ratio,
                   "ratio_q1": q1, "ratio_q3": q3, "us_per_op": st["median"] / n * 1e6,
                   "forward_samples": t["forward"], "backward_samples": t["backward"]}
            report["chain"].append(row)
            _say(f"  {name:9s} fwd {H.fmt_time(fwd):>10s} bwd {H.fmt_time(bwd):>10s} "
                 f"total {H.fmt_time(st['median']):>10s} ratio {ratio:6.2f}x  bwd/fwd {bwd / fwd:.2f}  "
                 f"{st['median'] / n * 1e6:.2f} µs/op")


def _linearity(rows):
    out = {}
    by = {}
    for r in rows:
        if r.get("status") == "ok":
            by.setdefault(f"{r['impl']} {r['dtype']}", {})[r["n_ops"]] = r["us_per_op"]
    for key, d in by.items():
        if len(d) > 1:
            vals = list(d.values())
            out[key] = {"us_per_op": dict(sorted(d.items())), "max_over_min": max(vals) / min(vals)}
    return out


def name_untraced(impl):
    """PyTorch allocates tensor storage outside Python's allocator: tracemalloc sees only its Python objects."""
    return impl == "torch"


def _run_memory(mods, args):
    mlp = [w for w in args.workloads if w != "chain"]
    # the chain's graph memory at the smallest size only (bytes per op); peers drift over a tenth of the steps
    sizes = [min(args.chain_sizes)] if "chain" in args.workloads and args.chain_sizes else []
    peaks, flat, notes = [], [], {}

    def child(name):
        steps = args.flat_steps if name in ("numpy", "ours") else args.flat_steps // 10
        return H.memory_in_subprocess(name, mlp, args.dtypes, sizes, steps, args.threads)

    _say(f"\n== memory: one subprocess per implementation, two at a time ({', '.join(mods)})")
    with ThreadPoolExecutor(max_workers=2) as pool:   # tracemalloc counts bytes, not time: parallel is fine
        results = list(pool.map(child, list(mods)))
    for name, res in zip(mods, results):
        _say(f"  {name}:")
        notes[name] = res.get("note")
        for p in res.get("peaks", []):
            peaks.append({"impl": name, **p})
        if res.get("flat"):
            flat.append({"impl": name, **res["flat"]})
            f = res["flat"]
            _say(f"  drift over {f['steps']} planar steps: traced {H.fmt_bytes(f['traced_drift'])}, "
                 f"RSS {H.fmt_bytes(f['rss_drift'])}; gc off ({f['gc_off_steps']} steps): "
                 f"{H.fmt_bytes(f['gc_off_drift'])}")
        if not res.get("peaks") and res.get("note"):
            _say(f"  {res['note']}")
    base = {(p["workload"], p["dtype"]): p["peak"] for p in peaks if p["impl"] == "numpy"}
    for p in peaks:
        b = base.get((p["workload"], p["dtype"]))
        chain = p["workload"].startswith("chain")
        untraced = name_untraced(p["impl"])
        if untraced and p.get("peak") is not None:
            p["note"] = "untraced"
        p["ratio"] = (p["peak"] / b if (p.get("peak") is not None and b and not chain and not untraced)
                      else None)
        if chain and p.get("peak") is not None:
            p["bytes_per_op"] = p["peak"] / int(p["workload"].split("-")[1])
        _say(f"  {p['workload']:>12s} {p['dtype']} {p['impl']:9s} peak {H.fmt_bytes(p.get('peak'))}"
             + (f"  ratio {p['ratio']:.2f}x" if p.get("ratio") else ""))
    return {"peaks": peaks, "flat": flat, "notes": notes}
