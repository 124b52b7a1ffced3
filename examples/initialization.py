"""Zeros vs large random vs He initialization: the symmetry problem, and vanishing / exploding gradients.

Course notes §2.4 (Random Initialization): with W = 0 every unit of a layer computes the same thing and gets the
same update, forever; §3.2.2 (Vanishing / Exploding Gradients): through L layers, values and gradients scale like
(gain per layer)^L, and W = randn * sqrt(2 / n[l-1]) (He, for ReLU) keeps that gain near 1.

Part 1 trains the course's 3-layer ReLU network [2, 10, 5, 1] on two circles from each initialization.
Part 2 measures ||dW[l]|| per layer of a 15-layer ReLU network on digits, at initialization, for W = randn * 0.01
(vanishes), W = randn * 1 (explodes) and He (stays level).

    python examples/initialization.py [--quick] [--seed N] [--out DIR] [--threads N] [--iterations N]
"""
import os

import matplotlib.pyplot as plt
import numpy as np

import common
import tinygrad_dl as dl
import tinygrad_dl.functional as F

INITS = {  # name -> W initializer (b is always 0)
    "zeros": dl.init.zeros,
    "large random (randn * 10)": lambda shape, rng=None, dtype=np.float64: dl.init.normal(shape, 10.0, rng, dtype),
    "He (randn * sqrt(2/n_prev))": dl.init.he,
}


def distinct_units(W, decimals=6) -> int:
    """How many different rows (units) W[l] has: 1 means the layer is perfectly symmetric."""
    return len(np.unique(np.round(W, decimals), axis=0))


def part1(args, iterations):
    (X, Y), (X_test, Y_test) = dl.data.split(*common.circles(400, 0.08, rng=args.seed), (0.75, 0.25), rng=args.seed)
    rows, panels, curves, accs = [], [], {}, {}
    for k, (name, W_init) in enumerate(INITS.items()):
        model = common.mlp([2, 10, 5, 1], init=W_init, rng=args.seed)
        opt = dl.optim.GradientDescent(model.parameters(), lr=args.lr)
        curves[name] = common.train(model, common.binary_cost, opt, X, Y, epochs=iterations, desc=name.split()[0])
        train_acc, test_acc = common.accuracy(model, X, Y), common.accuracy(model, X_test, Y_test)
        units = distinct_units(common.dense_layers(model)[0].W.numpy())
        rows.append([name, curves[name][0], curves[name][-1], train_acc, test_acc, f"{units}/10"])
        panels.append((f"{name}: test {test_acc:.0%}", model))
        accs[name.split()[0].lower()] = test_acc
    common.table(rows, ["init", "first cost", "final cost", "train acc", "test acc", "distinct units in W[1]"])
    common.plot_curves(os.path.join(args.out, "cost.png"), curves, xlabel="iteration", logy=True,
                       title="[2, 10, 5, 1] ReLU network on circles")
    common.plot_boundaries(os.path.join(args.out, "decision_boundaries.png"), panels, X, Y)
    return accs


def part2(args):
    (X, y), _, _ = common.digits(rng=args.seed)
    X, Y = X[:, :256], dl.data.one_hot(common.labels(y[:, :256]), 10)
    dims = [64] + [64] * 14 + [10]
    scales = {"randn * 0.01": lambda shape, rng=None, dtype=np.float64: dl.init.normal(shape, 0.01, rng, dtype),
              "randn * 1": lambda shape, rng=None, dtype=np.float64: dl.init.normal(shape, 1.0, rng, dtype),
              "He": dl.init.he}
    norms, stds = {}, {}
    for name, W_init in scales.items():
        model = common.mlp(dims, init=W_init, rng=args.seed)
        A, stds[name] = dl.Tensor(X), []
        for layer in model.layers:                       # the forward pass, layer by layer, to watch A[l]
            A = layer(A)
            if isinstance(layer, dl.nn.Dense):
                stds[name].append(float(A.numpy().std()))
        F.cross_entropy(A, Y).backward()
        norms[name] = [float(np.linalg.norm(layer.W.grad)) for layer in common.dense_layers(model)]
    print(f"\nAt initialization, 15-layer ReLU network {dims[0]}x{dims[1]}...x{dims[-1]} on digits: std of Z[l] "
          f"(forward) and ||dW[l]|| (backward)")
    rows = [[f"layer {l}"] + [f"{stds[s][l - 1]:.3g}" for s in scales] + [f"{norms[s][l - 1]:.3g}" for s in scales]
            for l in (1, 5, 10, 15)]
    common.table(rows, ["", *(f"std Z, {s}" for s in scales), *(f"||dW||, {s}" for s in scales)])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    common.plot_curves(None, stds, xlabel="layer l", ylabel="std of Z[l]", logy=True,
                       title="forward: Z[l] shrinks or grows like (gain)^l", ax=axes[0])
    common.plot_curves(None, norms, xlabel="layer l", ylabel="||dW[l]||", logy=True,
                       title="backward: gradients vanish or explode", ax=axes[1])
    common.save(fig, os.path.join(args.out, "gradient_norms.png"))
    return {name: norms[name][0] for name in scales}


def main():
    args = common.parse_args("initialization", __doc__, lambda p: (
        p.add_argument("--iterations", type=int, default=4000, help="gradient descent steps (default 4000)"),
        p.add_argument("--lr", type=float, default=0.05, help="learning rate alpha (default 0.05)")))
    accs = part1(args, 200 if args.quick else args.iterations)
    norm1 = part2(args)
    print(f"\nHe beats zeros and large random init: test acc {accs['he']:.3f} vs {accs['zeros']:.3f} (zeros) "
          f"and {accs['large']:.3f} (large random) -> {accs['he'] > max(accs['zeros'], accs['large'])}")
    print("||dW[1]|| at initialization: " + ", ".join(f"{k}: {v:.3g}" for k, v in norm1.items()))
    common.result(zeros_test_acc=accs["zeros"], large_test_acc=accs["large"], he_test_acc=accs["he"],
                  grad_norm1_small=norm1["randn * 0.01"], grad_norm1_large=norm1["randn * 1"],
                  grad_norm1_he=norm1["He"])


if __name__ == "__main__":
    main()
