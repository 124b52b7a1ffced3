"""The main job: an L-layer network learns handwritten digits (scikit-learn's 8x8 digits, bundled: no download).

Course notes §2.5 (Notation for deep neural networks), §2.3 (Backpropagation), §3.2.2 (He initialization):
layers [n_x, n1, n2, n_L] = [64, 64, 32, 10]; for l = 1 .. L:  Z[l] = W[l] A[l-1] + b[l], with W[l] of shape
(n[l], n[l-1]) drawn as randn * sqrt(2 / n[l-1]) and b[l] = 0; A[l] = ReLU(Z[l]) on hidden layers; a softmax on
the 10 output units with the cross-entropy cost J = -(1/m) sum Y log A[L]. The training loop is the course's:
forward, cost, backward, update, repeated (batch gradient descent on the whole training set).

Writes cost.png (the cost curve) and graph.svg (the computation graph of the cost, drawn by dl.viz; needs the
graphviz `dot` program, otherwise only graph.dot is written and a notice printed).

    python examples/deep_network.py [--quick] [--seed N] [--out DIR] [--threads N] [--iterations N] [--lr ALPHA]
                                    [--jit]

With --jit the training step is wrapped in dl.jit: captured at the first iteration, replayed as straight-line
NumPy afterwards (the same numbers, bit for bit).
"""
import os

import numpy as np

import common
import tinygrad_dl as dl
import tinygrad_dl.functional as F

LAYER_DIMS = [64, 64, 32, 10]


def main():
    args = common.parse_args("deep_network", __doc__, lambda p: (
        p.add_argument("--iterations", type=int, default=1000, help="gradient descent steps (default 1000)"),
        p.add_argument("--lr", type=float, default=0.5, help="learning rate alpha (default 0.5)"),
        p.add_argument("--jit", action="store_true", help="replay the training step with dl.jit (same numbers)")))
    iterations = 60 if args.quick else args.iterations

    (X_train, y_train), (X_dev, y_dev), (X_test, y_test) = common.digits(rng=args.seed)
    X = dl.Tensor(X_train, name="X")                                   # (64, m): one image per column
    Y = dl.data.one_hot(common.labels(y_train), 10)                    # (10, m)
    print(f"digits: layers {LAYER_DIMS}, m_train = {X.shape[1]}, m_dev = {X_dev.shape[1]}, "
          f"m_test = {X_test.shape[1]}")

    rng = np.random.default_rng(args.seed)
    model = dl.nn.Sequential(dl.nn.Dense(64, 64, init="he", rng=rng), dl.nn.ReLU(),
                             dl.nn.Dense(64, 32, init="he", rng=rng), dl.nn.ReLU(),
                             dl.nn.Dense(32, 10, init="he", rng=rng))
    opt = dl.optim.GradientDescent(model.parameters(), lr=args.lr)

    def train_step(X, Y):
        Z = model(X)                            # forward: Z[L], the logits (10, m)
        cost = F.cross_entropy(Z, Y)            # J = -(1/m) sum(Y log softmax(Z))
        opt.zero_grad()
        cost.backward()                         # backward: every dW[l], db[l]
        opt.step()                              # update: W[l] := W[l] - alpha dW[l]
        return cost
    step = dl.jit(train_step) if args.jit else train_step

    costs = []
    with common.Timer() as timer:
        bar = common.Progress(iterations, "gradient descent")
        for i in bar:
            cost = step(X, Y)
            costs.append(cost.item())
            bar.log(i, cost=costs[-1])
    train_acc = common.accuracy(model, X_train, y_train)
    dev_acc = common.accuracy(model, X_dev, y_dev)
    test_acc = common.accuracy(model, X_test, y_test)
    print(f"trained {iterations} iterations in {timer.seconds:.1f} s" + (f" ({step.cache_info()})" if args.jit else ""))
    print(f"train accuracy {train_acc:.4f}   dev accuracy {dev_acc:.4f}   test accuracy {test_acc:.4f}")

    common.plot_curves(os.path.join(args.out, "cost.png"), {"J": costs}, xlabel="iteration", logy=True,
                       title=f"L-layer network {LAYER_DIMS} on digits, He init, alpha = {args.lr}")
    draw_graph(model, X_test[:, :4], y_test[:, :4], os.path.join(args.out, "graph"))
    common.result(train_acc=train_acc, dev_acc=dev_acc, test_acc=test_acc, final_cost=costs[-1],
                  train_seconds=timer.seconds)


def draw_graph(model, X_small, y_small, path):
    """The computation graph of the cost on a few examples, with values and gradients, as path.svg."""
    Y_small = dl.Tensor(dl.data.one_hot(common.labels(y_small), 10), name="Y")
    cost = F.cross_entropy(model(dl.Tensor(X_small, name="X")), Y_small)
    cost.name = "J"
    try:   # dl.viz runs its own backward pass to show every dJ/dt
        picture = dl.viz.render(cost, path, format="svg", rankdir="TB", group_modules=True,
                                title=f"J on {X_small.shape[1]} test images: values and gradients dJ/dt")
        print(f"wrote {os.path.relpath(picture)}")
    except dl.viz.GraphvizNotFoundError:
        print(f"graphviz `dot` not found: skipped the graph picture (wrote {os.path.relpath(path)}.dot only; "
              f"install graphviz, e.g. apt-get install graphviz, to get {os.path.basename(path)}.svg)")


if __name__ == "__main__":
    main()
