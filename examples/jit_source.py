"""dl.jit on the course's 2-layer network: the replayed program, read next to the backprop you write by hand.

Course notes §2.1 (Representation), §2.3 (Backpropagation), §1.2 (the cost): on the planar 'flower' data,
Z1 = W1 X + b1, A1 = tanh(Z1), Z2 = W2 A1 + b2, A2 = sigmoid(Z2), J = -(1/m) sum(Y log A2 + (1 - Y) log(1 - A2)),
and by hand

    dZ2 = A2 - Y                    dW2 = (1/m) dZ2 A1^T      db2 = (1/m) sum(dZ2, axis=1)
    dZ1 = W2^T dZ2 * (1 - A1^2)     dW1 = (1/m) dZ1 X^T       db1 = (1/m) sum(dZ1, axis=1)

The training step is written once with tinygrad_dl (the cost from the logits Z2) and wrapped in dl.jit; its
`source` is the NumPy the replay runs, one statement per operation, with the tensors' names: the (1/m) and the
sigmoid-plus-cost derivative appear where the engine applies them. The script checks the program's gradients
against the hand formulas (to rounding), trains the same network eagerly and jitted (bit for bit the same
parameters), and reports the speed-up. Writes source.py (the program) and formulas.txt.

    python examples/jit_source.py [--quick] [--seed N] [--out DIR] [--threads N] [--iterations N] [--n-h N]
"""
import os

import numpy as np

import common
import tinygrad_dl as dl
import tinygrad_dl.functional as F

FORMULAS = """dZ2 = A2 - Y
dW2 = (1/m) dZ2 A1.T
db2 = (1/m) sum(dZ2, axis=1, keepdims=True)
dZ1 = W2.T dZ2 * (1 - A1**2)
dW1 = (1/m) dZ1 X.T
db1 = (1/m) sum(dZ1, axis=1, keepdims=True)
"""


def make_network(n_h, seed, lr=1.2):
    """W1 (n_h, 2), b1, W2 (1, n_h), b2 (§2.4: W = randn * 0.01, b = 0), named as in the course, and a train step."""
    rng = np.random.default_rng(seed)
    W1 = dl.Tensor(rng.standard_normal((n_h, 2)) * 0.01, requires_grad=True, name="W1")
    b1 = dl.Tensor(np.zeros((n_h, 1)), requires_grad=True, name="b1")
    W2 = dl.Tensor(rng.standard_normal((1, n_h)) * 0.01, requires_grad=True, name="W2")
    b2 = dl.Tensor(np.zeros((1, 1)), requires_grad=True, name="b2")
    params = [W1, b1, W2, b2]
    opt = dl.optim.GradientDescent(params, lr=lr)

    def train_step(X, Y):
        opt.zero_grad()
        Z1 = W1 @ X + b1
        Z1.name = "Z1"
        A1 = Z1.tanh()
        A1.name = "A1"
        Z2 = W2 @ A1 + b2
        Z2.name = "Z2"
        J = F.binary_cross_entropy_with_logits(Z2, Y)   # the cost of A2 = sigmoid(Z2), computed from Z2
        J.name = "J"
        J.backward()
        opt.step()
        return J

    return params, train_step


def by_hand(params, X, Y):
    """The course's formulas in NumPy, at the current parameters."""
    W1, b1, W2, b2 = (p.data for p in params)
    m = X.shape[1]
    A1 = np.tanh(W1 @ X + b1)
    A2 = 1 / (1 + np.exp(-(W2 @ A1 + b2)))
    dZ2 = A2 - Y
    dW2, db2 = dZ2 @ A1.T / m, dZ2.sum(axis=1, keepdims=True) / m
    dZ1 = W2.T @ dZ2 * (1 - A1 ** 2)
    dW1, db1 = dZ1 @ X.T / m, dZ1.sum(axis=1, keepdims=True) / m
    return [dW1, db1, dW2, db2]


def main():
    args = common.parse_args("jit_source", __doc__, lambda p: (
        p.add_argument("--iterations", type=int, default=2000, help="gradient descent steps (default 2000)"),
        p.add_argument("--n-h", type=int, default=4, help="hidden units (default 4)")))
    iterations = 100 if args.quick else args.iterations
    X, Y = common.planar_flower(400, rng=args.seed)                 # X (2, 400), Y (1, 400)

    params, train_step = make_network(args.n_h, args.seed)
    step = dl.jit(train_step)
    step(X, Y)                                                      # the capture (an eager step, recorded)
    before = [p.data.copy() for p in params]
    step(X, Y)                                                      # a replay
    hand = by_hand([dl.Tensor(b) for b in before], X, Y)
    worst = max(float(np.max(np.abs(p.grad - h)) / np.max(np.abs(h))) for p, h in zip(params, hand))

    print("The course's backprop, by hand:\n")
    print("    " + FORMULAS.replace("\n", "\n    "))
    print("The program dl.jit replays (train_step.source):\n")
    print(step.source)
    print(f"its gradients against the hand formulas: max relative difference {worst:.1e}")
    with open(os.path.join(args.out, "source.py"), "w") as f:
        f.write(step.source)
    with open(os.path.join(args.out, "formulas.txt"), "w") as f:
        f.write(FORMULAS)
    print(f"wrote {os.path.relpath(os.path.join(args.out, 'source.py'))}, "
          f"{os.path.relpath(os.path.join(args.out, 'formulas.txt'))}")

    # the same training eagerly and jitted: the same numbers, bit for bit, and the time each takes
    eager_params, eager_step = make_network(args.n_h, args.seed)
    jit_params, jit_step = make_network(args.n_h, args.seed)
    jit_step = dl.jit(jit_step)
    times = {}
    for name, fn in (("eager", eager_step), ("jit", jit_step)):
        with common.Timer() as timer:
            for _ in range(iterations):
                J = fn(X, Y)
        times[name] = timer.seconds
        print(f"{name:>5}: {iterations} steps in {timer.seconds:.3f} s, final cost {J.item():.6f}")
    identical = all(p.data.tobytes() == q.data.tobytes() and p.grad.tobytes() == q.grad.tobytes()
                    for p, q in zip(eager_params, jit_params))
    info = jit_step.cache_info()
    print(f"parameters and gradients after {iterations} steps identical bit for bit: {identical}; "
          f"speed-up {times['eager'] / times['jit']:.2f}x ({info.captures} capture, {info.replays} replays)")
    common.result(max_rel_diff_hand=worst, identical=identical, speedup=times["eager"] / times["jit"],
                  captures=info.captures, replays=info.replays, statements=step.source.count("\n"))


if __name__ == "__main__":
    main()
