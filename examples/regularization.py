"""No regularization vs L2 vs dropout on a small noisy 2-D data set that a big network overfits; early stopping.

Course notes §3.1 (Regularization):
  L2:        J_reg = J + (lambd / (2 m)) sum_l ||W[l]||_F^2          (F.l2_penalty)
  dropout:   inverted dropout, A[l] := A[l] * D[l] / keep_prob while training, nothing at prediction (nn.Dropout)
  early stopping: stop when the dev cost stops improving, keep the best parameters (dl.data.EarlyStopping)
and §3 (train / dev / test sets). Regularization trades a little training accuracy for a smaller train - dev gap.
Data augmentation, the fourth regularizer of §3.1, is in augmentation.py.

    python examples/regularization.py [--quick] [--seed N] [--out DIR] [--threads N]
        [--iterations N] [--lambd L] [--keep-prob P]
"""
import os

import numpy as np

import common
import tinygrad_dl as dl
import tinygrad_dl.functional as F

LAYER_DIMS = [2, 64, 64, 1]
CHECK_EVERY = 5     # early stopping: steps between two looks at the dev cost


def l2_cost(lambd):
    """The cross-entropy cost plus the L2 penalty on every W[l]."""
    def cost(model, X, Y):
        weights = [layer.W for layer in common.dense_layers(model)]
        return common.binary_cost(model, X, Y) + F.l2_penalty(weights, lambd, X.shape[1])
    return cost


def dev_cost(model, X, Y) -> float:
    """The cost on the dev set, in eval mode (no dropout) and without a graph."""
    return F.binary_cross_entropy_with_logits(model.predict(X), Y).item()


def early_stopping(args, X, Y, X_dev, Y_dev, iterations):
    """The unregularized network again, checking the dev cost every CHECK_EVERY steps; stop after 20 checks
    without improvement and go back to the best parameters."""
    model = common.mlp(LAYER_DIMS, rng=args.seed)
    opt = dl.optim.Adam(model.parameters(), lr=args.lr)
    stopper = dl.data.EarlyStopping(patience=20)
    train_costs, dev_costs = [], []
    for i in range(iterations):
        model.train()
        cost = common.binary_cost(model, X, Y)
        opt.zero_grad()
        cost.backward()
        opt.step()
        if (i + 1) % CHECK_EVERY == 0:
            train_costs.append(cost.item())
            dev_costs.append(dev_cost(model, X_dev, Y_dev))
            if stopper.step(dev_costs[-1], model):
                break
    stopper.restore()
    best_iteration = CHECK_EVERY * stopper.best_step
    print(f"early stopping: stopped at iteration {i + 1}, best dev cost {stopper.best_cost:.4f} at iteration "
          f"{best_iteration}")
    fig_path = os.path.join(args.out, "early_stopping.png")
    common.plot_curves(fig_path, {"train cost": train_costs, "dev cost": dev_costs}, xlabel=f"check (every {CHECK_EVERY} steps)",
                       title=f"early stopping: best dev cost at step {best_iteration}")
    return model, best_iteration


def main():
    args = common.parse_args("regularization", __doc__, lambda p: (
        p.add_argument("--iterations", type=int, default=3000, help="Adam steps per model (default 3000)"),
        p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)"),
        p.add_argument("--lambd", type=float, default=1.0, help="L2 regularization factor lambda (default 1.0)"),
        p.add_argument("--keep-prob", type=float, default=0.7, help="dropout keep_prob (default 0.7)")))
    iterations = 150 if args.quick else args.iterations
    rng = np.random.default_rng(args.seed)
    X, Y = common.moons(150, noise=0.35, rng=rng)             # a small noisy training set: easy to overfit
    X_dev, Y_dev = common.moons(1000, noise=0.35, rng=rng)
    print(f"moons: network {LAYER_DIMS}, m_train = {X.shape[1]}, m_dev = {X_dev.shape[1]}")

    setups = {"no regularization": (common.binary_cost, None),
              f"L2, lambd = {args.lambd}": (l2_cost(args.lambd), None),
              f"dropout, keep_prob = {args.keep_prob}": (common.binary_cost, args.keep_prob)}
    rows, panels, gaps = [], [], {}
    for name, (cost_fn, keep_prob) in setups.items():
        model = common.mlp(LAYER_DIMS, rng=args.seed, keep_prob=keep_prob)
        opt = dl.optim.Adam(model.parameters(), lr=args.lr)
        common.train(model, cost_fn, opt, X, Y, epochs=iterations, desc=name.split(",")[0], rng=rng)
        train_acc, dev_acc = common.accuracy(model, X, Y), common.accuracy(model, X_dev, Y_dev)
        gaps[name.split(",")[0]] = train_acc - dev_acc
        rows.append([name, train_acc, dev_acc, train_acc - dev_acc])
        panels.append((f"{name}: train {train_acc:.0%}, dev {dev_acc:.0%}", model))

    model, best_iteration = early_stopping(args, X, Y, X_dev, Y_dev, iterations)
    train_acc, dev_acc = common.accuracy(model, X, Y), common.accuracy(model, X_dev, Y_dev)
    rows.append([f"early stopping (step {best_iteration})", train_acc, dev_acc, train_acc - dev_acc])
    panels.append((f"early stopping: train {train_acc:.0%}, dev {dev_acc:.0%}", model))
    gaps["early stopping"] = train_acc - dev_acc

    common.table(rows, ["model", "train acc", "dev acc", "train - dev gap"])
    common.plot_boundaries(os.path.join(args.out, "decision_boundaries.png"), panels, X, Y, ncols=2)
    none = gaps["no regularization"]
    print(f"L2 and dropout reduce the train - dev gap: {gaps['L2'] < none and gaps['dropout'] < none} "
          f"({none:.3f} -> L2 {gaps['L2']:.3f}, dropout {gaps['dropout']:.3f})")
    common.result(**{f"{k.split()[0].lower()}_train_acc": r[1] for k, r in zip(gaps, rows)},
                  **{f"{k.split()[0].lower()}_dev_acc": r[2] for k, r in zip(gaps, rows)},
                  **{f"{k.split()[0].lower()}_gap": g for k, g in gaps.items()}, early_stop_step=best_iteration)


if __name__ == "__main__":
    main()
