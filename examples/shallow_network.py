"""A network with one hidden tanh layer on the planar 'flower' data, for several hidden-layer sizes.

Course notes §2 (Basical Concepts): §2.1 Representation, Z[1] = W[1] X + b[1], A[1] = tanh(Z[1]),
Z[2] = W[2] A[1] + b[2], A[2] = sigmoid(Z[2]); §2.2 Activation functions; §2.3 Backpropagation (here: backward());
§2.4 Random initialization, W = randn * 0.01, b = 0. A logistic regression (no hidden layer) cannot separate the
petals; a few tanh units can, and too many start to fit the noise.

    python examples/shallow_network.py [--quick] [--seed N] [--out DIR] [--threads N]
        [--iterations N] [--sizes 1 2 4 ...]
"""
import os

import numpy as np

import common
import tinygrad_dl as dl


def small_random(shape, rng=None, dtype=np.float64):
    """The course's W = np.random.randn(n, n_prev) * 0.01 (§2.4)."""
    return dl.init.normal(shape, scale=0.01, rng=rng, dtype=dtype)


def main():
    args = common.parse_args("shallow_network", __doc__, lambda p: (
        p.add_argument("--iterations", type=int, default=5000, help="gradient descent steps (default 5000)"),
        p.add_argument("--lr", type=float, default=1.2, help="learning rate alpha (default 1.2)"),
        p.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3, 4, 5, 20, 50],
                       help="hidden layer sizes n_h to compare (default 1 2 3 4 5 20 50)")))
    iterations = 200 if args.quick else args.iterations
    sizes = args.sizes[:3] if args.quick else args.sizes

    X, Y = common.planar_flower(400, rng=args.seed)                 # X (2, 400), Y (1, 400)
    rng = np.random.default_rng(args.seed)
    rows, panels, curves = [], [], {}

    # logistic regression first: a straight line is all it can draw
    logistic = dl.nn.Sequential(dl.nn.Dense(2, 1, init="zeros"))
    opt = dl.optim.GradientDescent(logistic.parameters(), lr=args.lr)
    common.train(logistic, common.binary_cost, opt, X, Y, epochs=iterations, desc="logistic")
    rows.append(["logistic regression", common.accuracy(logistic, X, Y)])
    panels.append((f"logistic regression: {rows[-1][1]:.1%}", logistic))

    for n_h in sizes:
        model = dl.nn.Sequential(dl.nn.Dense(2, n_h, init=small_random, rng=rng), dl.nn.Tanh(),
                                 dl.nn.Dense(n_h, 1, init=small_random, rng=rng))
        opt = dl.optim.GradientDescent(model.parameters(), lr=args.lr)
        curves[f"n_h = {n_h}"] = common.train(model, common.binary_cost, opt, X, Y, epochs=iterations,
                                              desc=f"n_h = {n_h}")
        rows.append([f"n_h = {n_h}", common.accuracy(model, X, Y)])
        panels.append((f"hidden size {n_h}: {rows[-1][1]:.1%}", model))

    common.table(rows, ["model", "train accuracy"])
    common.plot_boundaries(os.path.join(args.out, "decision_boundaries.png"), panels, X, Y, ncols=4)
    common.plot_curves(os.path.join(args.out, "cost.png"), curves, xlabel="iteration",
                       title="one hidden tanh layer on the flower data")
    acc = {name: a for name, a in rows}
    best = max(sizes, key=lambda n: acc[f"n_h = {n}"])
    common.result(logistic_acc=acc["logistic regression"], best_n_h=best, best_acc=acc[f"n_h = {best}"],
                  **{f"acc_n_h_{n}": acc[f"n_h = {n}"] for n in sizes})


if __name__ == "__main__":
    main()
