"""Beyond one machine: the main job's kind of network trained on a Dask cluster, on data larger than a worker's memory.

Course notes §2.5 (an L-layer network: Z[l] = W[l] A[l-1] + b[l], ReLU, a softmax on the 10 classes) and §3.3.2
(Adam). The data are augmented digits (§3.1): random training images of scikit-learn's 8x8 digits, each shifted by
up to one pixel; by default m = 300,000 examples, 163 MB, more than the memory limit of each worker (128 MiB), so
no worker can hold them: every step streams them, chunk by chunk.

The cluster is a dask.distributed LocalCluster started here: a scheduler and 2 worker processes of one thread each.
X (64, m) and the labels (m,) are Dask arrays chunked along the example columns and generated on the workers
(nothing of that size ever exists on the driver); the parameters are NumPy arrays on the driver. Forward, cost and
backward build one lazy graph; `opt.step(J)` computes every gradient and the cost in one pass over the data
(`dask.compute`) and updates the parameters on the driver. The same network then trains in NumPy on the same data
(built on the driver by the same function), and the two runs are compared step for step.

Writes cost.png (both cost curves). Needs the `dask` extra: pip install "tinygrad_dl[dask]".

    python examples/dask_cluster.py [--quick] [--seed N] [--out DIR] [--m M] [--steps N] [--workers N]
                                    [--memory-limit MiB] [--chunk C]
"""
import os
import time

import numpy as np

if __name__ == "__main__":  # the driver only: the cluster's worker processes import this file too, and need NumPy
    import common           # alone (matplotlib and the rest would take a third of a worker's memory limit)
    import tinygrad_dl as dl
    import tinygrad_dl.functional as F

LAYER_DIMS = [64, 64, 32, 10]


def augmented_digits(images, labels, size, seed):
    """`size` examples: random columns of `images` (64, n), each shifted by dy, dx in {-1, 0, 1} pixels with zero
    fill, and their labels. Plain NumPy, so that the workers need nothing else; the same seed, the same chunk."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, images.shape[1], size)
    dy, dx = rng.integers(-1, 2, size), rng.integers(-1, 2, size)
    padded = np.pad(images[:, pick].T.reshape(size, 8, 8), ((0, 0), (1, 1), (1, 1)))
    rows = np.arange(8)[None, :, None] - dy[:, None, None] + 1
    cols = np.arange(8)[None, None, :] - dx[:, None, None] + 1
    X = padded[np.arange(size)[:, None, None], rows, cols].reshape(size, 64).T
    return np.ascontiguousarray(X), labels[pick]


def chunk_sizes(m, chunk):
    return [min(chunk, m - start) for start in range(0, m, chunk)]


def lazy_data(client, images, labels, m, chunk, seed):
    """X (64, m) and y (m,) as Dask arrays, one task per chunk of columns; the images go to the workers once."""
    import dask
    import dask.array as da
    images_f, labels_f = client.scatter([images, labels], broadcast=True)
    Xs, ys = [], []
    for k, size in enumerate(chunk_sizes(m, chunk)):
        pair = dask.delayed(augmented_digits, nout=2, pure=True)(images_f, labels_f, size, (seed, k))
        Xs.append(da.from_delayed(pair[0], shape=(64, size), dtype=np.float64))
        ys.append(da.from_delayed(pair[1], shape=(size,), dtype=labels.dtype))
    return da.concatenate(Xs, axis=1), da.concatenate(ys)


def numpy_data(images, labels, m, chunk, seed):
    """The same data, built on the driver from the same chunks."""
    parts = [augmented_digits(images, labels, size, (seed, k)) for k, size in enumerate(chunk_sizes(m, chunk))]
    return np.concatenate([p[0] for p in parts], axis=1), np.concatenate([p[1] for p in parts])


def network(seed):
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(LAYER_DIMS[:-1], LAYER_DIMS[1:]):
        layers += [dl.nn.Dense(n_in, n_out, init="he", rng=rng), dl.nn.ReLU()]
    return dl.nn.Sequential(*layers[:-1])                     # the last Dense gives the logits Z[L]


def train(model, X, y, steps, lr, desc):
    """Adam on the whole set at every step; returns the cost of each step and the seconds per step."""
    opt = dl.optim.Adam(model.parameters(), lr=lr)
    costs, bar = [], common.Progress(steps, desc)
    start = time.perf_counter()
    for i in bar:
        J = F.cross_entropy(model(X), y)        # on Dask: a lazy graph over every chunk
        opt.zero_grad()
        J.backward()                            # still lazy: the gradients are Dask arrays
        costs.append(opt.step(J))               # one pass: every gradient and J, then the update on the driver
        bar.log(i, cost=costs[-1])
    return costs, (time.perf_counter() - start) / steps


def accuracy(model, X, y) -> float:
    """The fraction of examples whose largest logit is their label (computed where the data are)."""
    with dl.no_grad():
        Z = model(X).data
    xp = dl.array_namespace(Z)
    return float(xp.mean(xp.astype(xp.argmax(Z, axis=0) == y, xp.float64)))


def peak_rss_mb(reset=False):
    """This process's peak resident memory in MB (Linux: VmHWM); reset=True starts a new peak."""
    if reset:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM"))


def main():
    args = common.parse_args("dask_cluster", __doc__, lambda p: (
        p.add_argument("--m", type=int, default=540_000, help="examples (default 540,000: 281 MB)"),
        p.add_argument("--steps", type=int, default=15, help="Adam steps on the whole set (default 15)"),
        p.add_argument("--lr", type=float, default=0.03, help="Adam's learning rate (default 0.03)"),
        p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)"),
        p.add_argument("--memory-limit", type=int, default=256, help="memory limit per worker in MiB (default 256)"),
        p.add_argument("--chunk", type=int, default=20_000, help="examples per chunk (default 20,000)")))
    m, steps, chunk = (20_000, 3, 5_000) if args.quick else (args.m, args.steps, args.chunk)
    from dask.distributed import Client, LocalCluster

    from sklearn.datasets import load_digits
    digits = load_digits()
    order = np.random.default_rng(args.seed).permutation(len(digits.target))
    train_idx, test_idx = order[:1400], order[1400:]
    images, labels = digits.data[train_idx].T / 16.0, digits.target[train_idx]
    X_test, y_test = digits.data[test_idx].T / 16.0, digits.target[test_idx]
    data_mb = m * (64 * 8 + 8) / 1e6
    limit_mb = args.memory_limit * 2**20 / 1e6
    print(f"augmented digits: m = {m:,} examples, {data_mb:.0f} MB; {args.workers} workers of "
          f"{args.memory_limit} MiB ({limit_mb:.0f} MB) each; layers {LAYER_DIMS}")

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      memory_limit=f"{args.memory_limit}MiB", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        X, y = lazy_data(client, images, labels, m, chunk, args.seed)
        print(f"X: {X.shape} in {X.numblocks[1]} chunks of {chunk} columns, generated on the workers")
        start_mb = sorted(client.run(peak_rss_mb, True).values())
        print(f"workers start at {', '.join(f'{w:.0f}' for w in start_mb)} MB")
        driver_before = peak_rss_mb(reset=True)
        model = network(args.seed)
        lazy_costs, lazy_seconds = train(model, X, y, steps, args.lr, "dask")
        worker_peaks = sorted(client.run(peak_rss_mb).values())
        driver_peak = peak_rss_mb()
        lazy_train_acc = accuracy(model, X, y)

    X_np, y_np = numpy_data(images, labels, m, chunk, args.seed)
    twin = network(args.seed)
    numpy_costs, numpy_seconds = train(twin, X_np, y_np, steps, args.lr, "numpy")
    cost_diff = max(abs(a - b) for a, b in zip(lazy_costs, numpy_costs))
    param_diff = max(float(np.max(np.abs(p.numpy() - q.numpy())))
                     for p, q in zip(model.parameters(), twin.parameters()))
    acc = {"dask": accuracy(model, X_test, y_test), "numpy": accuracy(twin, X_test, y_test)}

    print(f"Dask  : {lazy_seconds:.2f} s per step; workers' peak memory {', '.join(f'{p:.0f}' for p in worker_peaks)}"
          f" MB (limit {limit_mb:.0f} MB); driver {driver_peak:.0f} MB (was {driver_before:.0f} MB)")
    print(f"NumPy : {numpy_seconds:.2f} s per step, all in the driver")
    print(f"costs differ by at most {cost_diff:.2e} over {steps} steps; parameters by {param_diff:.2e}")
    print(f"test accuracy: Dask {acc['dask']:.4f}, NumPy {acc['numpy']:.4f}; train accuracy {lazy_train_acc:.4f}")
    common.plot_curves(os.path.join(args.out, "cost.png"), {"Dask (2 workers)": lazy_costs, "NumPy": numpy_costs},
                       xlabel="step", title=f"{m:,} augmented digits, {data_mb:.0f} MB")
    common.result(m=m, data_mb=data_mb, worker_limit_mb=limit_mb, steps=steps, final_cost=lazy_costs[-1],
                  max_cost_diff=cost_diff, max_param_diff=param_diff, test_acc_dask=acc["dask"],
                  test_acc_numpy=acc["numpy"], train_acc_dask=lazy_train_acc, seconds_per_step_dask=lazy_seconds,
                  seconds_per_step_numpy=numpy_seconds, worker_peak_mb=worker_peaks[-1], driver_peak_mb=driver_peak)


if __name__ == "__main__":
    main()
