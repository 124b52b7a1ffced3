"""Batch vs mini-batch vs stochastic gradient descent; Momentum, RMSprop and Adam; learning-rate decay.

Course notes §3.3 (Optimization Algorithms): §3.3.1 mini-batch gradient descent (an epoch is one pass over the
training set; batch size m is batch GD, 1 is stochastic GD, 64 .. 512 in between; mini-batch costs are noisy);
§3.3.2 exponentially weighted averages v_t = beta v_{t-1} + (1 - beta) x_t, the building block of Momentum (an
average of dW), RMSprop (an average of dW**2) and Adam (both, bias-corrected), and of dl.data.smooth, which
draws the trend through a noisy cost curve. Learning-rate decay: alpha = alpha0 / (1 + decay_rate * epoch).

All runs train the same network [2, 5, 2, 1] (ReLU, He init) from the same initial weights on the same moons.

    python examples/optimizers.py [--quick] [--seed N] [--out DIR] [--threads N] [--epochs N]
"""
import os

import matplotlib.pyplot as plt
import numpy as np

import common
import tinygrad_dl as dl

LAYER_DIMS = [2, 5, 2, 1]
TARGET_COST = 0.30   # "converged": the epoch's mean cost first falls below this


def run(args, X, Y, make_opt, epochs, batch_size, desc, lr_schedule=None, step_costs=None):
    model = common.mlp(LAYER_DIMS, rng=args.seed)           # same seed: same starting weights for every run
    with common.Timer() as timer:
        costs = common.train(model, common.binary_cost, make_opt(model.parameters()), X, Y, epochs, batch_size,
                             rng=args.seed, desc=desc, lr_schedule=lr_schedule, step_costs=step_costs)
    return costs, common.accuracy(model, X, Y), timer.seconds


def epochs_to(costs, target=TARGET_COST):
    """The first epoch (1-based) whose cost is below `target`, or None."""
    below = np.flatnonzero(np.asarray(costs) < target)
    return int(below[0]) + 1 if below.size else None


def main():
    args = common.parse_args("optimizers", __doc__, lambda p: (
        p.add_argument("--epochs", type=int, default=300, help="epochs per mini-batch run (default 300)"),))
    epochs = 15 if args.quick else args.epochs
    X, Y = common.moons(300, noise=0.2, rng=args.seed)
    print(f"moons: network {LAYER_DIMS}, m = {X.shape[1]}")

    # --- 1. batch vs mini-batch vs stochastic, plain gradient descent, same epochs and learning rate
    sizes = {"batch (m = 300)": None, "mini-batch (64)": 64, "stochastic (1)": 1}
    sgd_epochs = max(2, epochs // 10)
    rows, by_size = [], {}
    for name, size in sizes.items():
        n = sgd_epochs if size == 1 else epochs
        costs, acc, secs = run(args, X, Y, lambda p: dl.optim.GradientDescent(p, lr=0.05), n, size, name.split()[0])
        by_size[name] = costs
        rows.append([name, n, costs[-1], acc, f"{secs:.2f} s"])
    common.table(rows, ["gradient descent", "epochs", "final cost", "train acc", "time"])

    # --- 2. optimizers on mini-batches of 64
    makers = {"mini-batch GD": lambda p: dl.optim.GradientDescent(p, lr=0.05),
              "Momentum": lambda p: dl.optim.Momentum(p, lr=0.05, beta=0.9),
              "RMSprop": lambda p: dl.optim.RMSprop(p, lr=0.005, beta=0.999),
              "Adam": lambda p: dl.optim.Adam(p, lr=0.005)}
    rows, by_opt, steps, converged = [], {}, {}, {}
    for name, make_opt in makers.items():
        steps[name] = []
        by_opt[name], acc, secs = run(args, X, Y, make_opt, epochs, 64, name, step_costs=steps[name])
        converged[name] = epochs_to(by_opt[name])
        rows.append([name, by_opt[name][-1], acc, converged[name] or f"> {epochs}"])
    common.table(rows, ["optimizer (batch 64)", "final cost", "train acc", f"epochs to cost < {TARGET_COST}"])

    # --- 3. learning-rate decay, alpha = alpha0 / (1 + decay_rate * epoch), on small noisy mini-batches: a large
    #        step learns fast and then bounces around the minimum; decaying it keeps the fast start and settles
    decay = {"constant alpha = 0.5": None,
             "alpha = 0.5 / (1 + 0.02 epoch)": lambda e: dl.optim.inverse_time_decay(0.5, 0.02, e)}
    rows, by_decay, tails = [], {}, {}
    for key, (name, schedule) in zip(("constant", "decay"), decay.items()):
        by_decay[name], acc, _ = run(args, X, Y, lambda p: dl.optim.GradientDescent(p, lr=0.5), epochs, 16,
                                     name.split()[0], lr_schedule=schedule)
        tail = by_decay[name][-max(1, epochs // 10):]
        tails[f"{key}_tail_cost"], tails[f"{key}_tail_std"] = float(np.mean(tail)), float(np.std(tail))
        rows.append([name, float(np.mean(tail)), float(np.std(tail)), acc])
    common.table(rows, ["learning rate (batch 16)", "mean cost, last 10%", "std, last 10%", "train acc"])

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    common.plot_curves(None, by_size, logy=True, title="batch vs mini-batch vs stochastic GD", ax=axes[0, 0])
    common.plot_curves(None, by_opt, logy=True, title="optimizers, mini-batches of 64", ax=axes[0, 1])
    raw = steps["mini-batch GD"]
    common.plot_curves(None, {"raw mini-batch cost": raw, "dl.data.smooth(costs, beta=0.9)": dl.data.smooth(raw)},
                       xlabel="step", title="mini-batch GD: raw vs smoothed", ax=axes[1, 0])
    common.plot_curves(None, by_decay, logy=True, title="learning-rate decay, mini-batches of 16", ax=axes[1, 1])
    common.save(fig, os.path.join(args.out, "optimizers.png"))
    common.plot_curves(os.path.join(args.out, "cost.png"), by_opt, logy=True, title="optimizers, mini-batches of 64")

    gd, adam = converged["mini-batch GD"], converged["Adam"]
    print(f"Adam converges in fewer epochs than mini-batch GD: {adam is not None and (gd is None or adam < gd)} "
          f"(Adam {adam}, mini-batch GD {gd if gd else f'> {epochs}'} epochs to cost < {TARGET_COST})")
    common.result(**{f"epochs_{k.split()[0].lower().replace('-', '_')}": v for k, v in converged.items()},
                  **{f"final_cost_{k.split()[0].lower().replace('-', '_')}": c[-1] for k, c in by_opt.items()},
                  **tails)


if __name__ == "__main__":
    main()
