"""Small helpers shared by the examples: command line, progress display, data sets, models, plots, the RESULT line.

Nothing here is part of tinygrad_dl; it is the plumbing every example would otherwise repeat. The data sets ship
offline (scikit-learn's bundled ones) or are generated in NumPy. Examples are COLUMNS: X (n_x, m), Y (n_y, m).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

import tinygrad_dl as dl  # noqa: E402
import tinygrad_dl.functional as F  # noqa: E402
from tinygrad_dl import data, init, nn  # noqa: E402

EXAMPLES_DIR = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------- command line

def parse_args(name: str, doc: str, add_arguments=None) -> argparse.Namespace:
    """The flags every example has: --quick, --seed, --out (default examples/out/<name>/), --threads.
    Creates the folder and sets the number of BLAS threads."""
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=doc.strip().splitlines()[0],
                                     epilog="Course notes: see the docstring at the top of the script.")
    parser.add_argument("--quick", action="store_true", help="a few iterations only (for tests; seconds)")
    parser.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same run")
    parser.add_argument("--out", default=os.path.join(EXAMPLES_DIR, "out", name),
                        help=f"folder for plots and pictures (default: examples/out/{name}/)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads for NumPy (default 1: the course's matrices are small, and more threads "
                             "only wait for each other; 0 keeps NumPy's own default)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    if args.threads < 0:
        parser.error(f"--threads must be >= 0, got {args.threads}")
    os.makedirs(args.out, exist_ok=True)
    print(f"BLAS threads: {blas_threads(args.threads)}", flush=True)
    return args


def blas_threads(n: int):
    """Limit NumPy's BLAS to n threads for the rest of the run (n = 0: leave it as it is); returns the number
    in use, or a note when threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return "not set (pip install threadpoolctl, or set OPENBLAS_NUM_THREADS=1)"
    if n:
        threadpool_limits(limits=n, user_api="blas")   # kept for the whole process
    counts = sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
    return ", ".join(map(str, counts)) or "no BLAS library found"


def result(**metrics) -> None:
    """The one final line a script can parse: `RESULT {json}`."""
    def plain(v):
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return float(f"{v:.4g}")
        return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v
    clean = {k: plain(v) for k, v in metrics.items()}
    print("RESULT " + json.dumps(clean), flush=True)


class Progress:
    """`for i in Progress(n, "train"): ... ; bar.log(i, cost=c)`: a tqdm bar when stdout is a terminal,
    plain periodic lines (`train  200/2000  cost 0.4123`) otherwise (logs, CI, tests)."""

    def __init__(self, total: int, desc: str = "train", every: int | None = None):
        self.total, self.desc = total, desc
        self.every = every or max(1, total // 10)
        self.bar = None
        if sys.stdout.isatty():
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, desc=desc, leave=False, mininterval=0.2)
            except ImportError:
                pass

    def __iter__(self):
        for i in range(self.total):
            yield i
            if self.bar is not None:
                self.bar.update(1)
        if self.bar is not None:
            self.bar.close()

    def log(self, i: int, **values) -> None:
        last = i == self.total - 1
        if i % self.every and not last:
            return
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in values.items()}, refresh=False)
        else:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in values.items())
            print(f"{self.desc:>14} {i + 1:>6}/{self.total}  {shown}", flush=True)


class Timer:
    """`with Timer() as t: ...; t.seconds`."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


# --------------------------------------------------------------------------- data sets

def planar_flower(m: int = 400, rng=None):
    """The course's 'planar flower': two classes of m/2 points on the petals r = 4 sin(4 t), with noise.
    Returns X (2, m), Y (1, m)."""
    rng = init.as_rng(rng)
    N, a = m // 2, 4
    X, Y = np.zeros((2 * N, 2)), np.zeros((2 * N, 1))
    for j in range(2):
        ix = slice(N * j, N * (j + 1))
        t = np.linspace(j * 3.12, (j + 1) * 3.12, N) + rng.standard_normal(N) * 0.2   # angle
        r = a * np.sin(4 * t) + rng.standard_normal(N) * 0.2                           # radius
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y[ix] = j
    return X.T, Y.T


def moons(m: int, noise: float, rng=None):
    """scikit-learn's two interleaving half circles, as columns: X (2, m), Y (1, m)."""
    from sklearn.datasets import make_moons
    X, y = make_moons(n_samples=m, noise=noise, random_state=int(init.as_rng(rng).integers(2**31)))
    return X.T, y.reshape(1, -1).astype(np.float64)


def circles(m: int, noise: float, rng=None):
    """scikit-learn's two concentric circles, as columns: X (2, m), Y (1, m)."""
    from sklearn.datasets import make_circles
    X, y = make_circles(n_samples=m, noise=noise, factor=0.5, random_state=int(init.as_rng(rng).integers(2**31)))
    return X.T, y.reshape(1, -1).astype(np.float64)


def digits(rng=None, fractions=(0.6, 0.2, 0.2)):
    """scikit-learn's 8x8 digits (1797 images, bundled), pixels scaled to [0, 1], split into (train, dev, test)
    pairs of X (64, m) and integer labels Y (1, m)."""
    from sklearn.datasets import load_digits
    d = load_digits()
    X = data.columns(d.data) / 16.0
    Y = d.target.reshape(1, -1).astype(np.float64)
    return data.split(X, Y, fractions=fractions, rng=rng)


def labels(Y) -> np.ndarray:
    """Integer class labels of shape (m,) from a (1, m) label row."""
    return np.asarray(Y).reshape(-1).astype(np.int64)


# --------------------------------------------------------------------------- models and training

def mlp(layer_dims, hidden=nn.ReLU, init="he", rng=None, keep_prob=None):
    """The course's L-layer network [n_x, n1, ..., n_L]: Dense -> hidden activation (-> Dropout) for each hidden
    layer, and a last Dense whose output Z[L] is the logits (the cost applies sigmoid / softmax)."""
    rng = dl.init.as_rng(rng)
    layers = []
    for l in range(1, len(layer_dims)):
        layers.append(nn.Dense(layer_dims[l - 1], layer_dims[l], init=init, rng=rng))
        if l < len(layer_dims) - 1:
            layers.append(hidden())
            if keep_prob is not None and keep_prob < 1:
                layers.append(nn.Dropout(keep_prob=keep_prob, rng=rng))
    return nn.Sequential(*layers)


def dense_layers(model) -> list:
    """The Dense layers of a Sequential, in order (for their W's)."""
    return [layer for layer in model.layers if isinstance(layer, nn.Dense)]


def binary_cost(model, X, Y):
    """J = -(1/m) sum(Y log A + (1-Y) log(1-A)) with A = sigmoid(Z[L]), computed from the logits (§1.2)."""
    return F.binary_cross_entropy_with_logits(model(X), Y)


def train(model, cost_fn, opt, X, Y, epochs: int, batch_size=None, rng=None, desc="train", lr_schedule=None,
          step_costs=None):
    """The course's loop: for each epoch, for each (mini-)batch: forward, cost, backward, update (§2.3, §3.3.1).
    `batch_size=None` is batch gradient descent; `lr_schedule(epoch)` sets the learning rate of each epoch.
    Returns the cost per epoch (the mean over the epoch's batches); the raw cost of every step is appended to
    the list `step_costs` if one is given."""
    rng = init.as_rng(rng)
    costs, bar = [], Progress(epochs, desc)
    model.train()
    for epoch in bar:
        if lr_schedule is not None:
            opt.lr = lr_schedule(epoch)
        batches = [(X, Y)] if batch_size is None else data.minibatches(X, Y, batch_size, shuffle=True, rng=rng)
        epoch_costs = []
        for X_b, Y_b in batches:
            cost = cost_fn(model, X_b, Y_b)
            opt.zero_grad()
            cost.backward()
            opt.step()
            epoch_costs.append(cost.item())
        costs.append(float(np.mean(epoch_costs)))
        if step_costs is not None:
            step_costs.extend(epoch_costs)
        bar.log(epoch, cost=costs[-1])
    model.eval()
    return costs


def predict(model, X) -> np.ndarray:
    """Labels (m,): Z[L] > 0 (i.e. sigmoid > 0.5) for one output unit, argmax over classes otherwise."""
    return nn.predicted_labels(model.predict(X), from_logits=True)


def accuracy(model, X, Y) -> float:
    """Fraction of examples whose predicted label equals Y (the model's last layer gives logits)."""
    return nn.accuracy(model.predict(X), Y, from_logits=True)


# --------------------------------------------------------------------------- plots

def plot_curves(path, curves: dict, xlabel="epoch", ylabel="cost", title="", logy=False, ax=None):
    """Several curves on one plot (a dict label -> sequence); writes `path` unless an `ax` is given."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, ys in curves.items():
        ax.plot(np.arange(1, len(ys) + 1), ys, label=label, lw=1.2)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    if own:
        save(fig, path)


def plot_boundaries(path, panels: list, X, Y, ncols: int = 3):
    """Decision boundaries of 2-D classifiers: `panels` is a list of (title, model); X (2, m), Y (1, m)."""
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.6 * nrows), squeeze=False)
    x0, x1 = X[0].min() - 0.5, X[0].max() + 0.5
    y0, y1 = X[1].min() - 0.5, X[1].max() + 0.5
    xx, yy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    grid = np.vstack([xx.ravel(), yy.ravel()])
    for ax, (title, model) in zip(axes.flat, panels):
        ax.contourf(xx, yy, predict(model, grid).reshape(xx.shape), cmap="Spectral", alpha=0.6)
        ax.scatter(X[0], X[1], c=Y.ravel(), cmap="Spectral", s=8, edgecolors="k", linewidths=0.2)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    save(fig, path)


def save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {os.path.relpath(path)}")


def table(rows: list, header: list) -> None:
    """Print a small aligned table."""
    def fmt(c):
        if not isinstance(c, float):
            return str(c)
        return f"{c:.4f}" if c == 0 or 1e-2 <= abs(c) < 1e4 else f"{c:.4g}"
    cells = [list(map(str, header))] + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, r in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
        if k == 0:
            print("  ".join("-" * w for w in widths))
