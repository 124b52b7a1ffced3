"""Define-by-run: Python control flow that depends on the data, and the gradient through it.

The graph is recorded while the Python code runs, so it is whatever the code did this time: a `while` loop whose
number of turns depends on the input, an `if` on a tensor's value, a recurrence as long as each sequence. Backprop
(course notes §2.3) then differentiates exactly the path taken, and the gradient check of §3.2.3 confirms it.

Part 1: sqrt(a) by Newton's method, y := (y + a / y) / 2 until |y^2 - a| is tiny: the loop runs more turns for
larger a; the gradient through the unrolled loop must equal d sqrt(a) / da = 1 / (2 sqrt(a)).
Part 2: a small recurrent network h_t = tanh(W h_{t-1} + U x_t + b) over sequences of different lengths, which
skips an update (an `if` on the tensor's value) when the input is a 'blank' (|x_t| < 0.1); the cost of the whole
batch is gradient-checked against two-sided differences.

    python examples/define_by_run.py [--quick] [--seed N] [--out DIR] [--threads N]
"""
import os

import matplotlib.pyplot as plt
import numpy as np

import common
import tinygrad_dl as dl
import tinygrad_dl.functional as F


def newton_sqrt(a, tol=1e-12):
    """sqrt(a) by Newton's iteration; returns (y, number of turns). The loop length depends on a's value."""
    y, turns = a * 1.0, 0
    while abs((y * y - a).item()) > tol * max(1.0, a.item()):
        y = (y + a / y) / 2
        turns += 1
    return y, turns


def rnn_cost(params, sequences, labels):
    """Run the recurrence over each sequence (its own length, its own skips) and average the BCE of the last
    state's prediction. Returns (J, number of ops recorded per sequence)."""
    W, U, b, w_out, b_out = params
    costs, sizes = [], []
    for x, y in zip(sequences, labels):
        h = dl.Tensor(np.zeros((W.shape[0], 1)))
        for t in range(x.shape[1]):
            x_t = x[:, t:t + 1]
            if abs(x_t.item()) < 0.1:          # an `if` on the data: blanks leave the state as it is
                continue
            h = F.tanh(W @ h + U @ x_t + b)
        cost = F.binary_cross_entropy_with_logits(w_out @ h + b_out, y)
        sizes.append(len(dl.toposort([cost])))
        costs.append(cost)
    return sum(costs[1:], costs[0]) / len(costs), sizes


def main():
    args = common.parse_args("define_by_run", __doc__)
    rng = np.random.default_rng(args.seed)

    # --- Part 1: a loop whose length depends on the input
    values = [0.5, 2.0, 10.0, 1e3, 1e6] if not args.quick else [0.5, 2.0, 1e3]
    rows, errors = [], []
    for value in values:
        a = dl.Tensor(value, requires_grad=True)
        y, turns = newton_sqrt(a)
        y.backward()
        exact = 1 / (2 * np.sqrt(value))
        eps = 1e-6 * value
        with dl.no_grad():
            numeric = (newton_sqrt(dl.Tensor(value + eps))[0].item() - newton_sqrt(dl.Tensor(value - eps))[0].item()) \
                / (2 * eps)
        errors.append(abs(a.grad.item() - exact) / exact)
        rows.append([value, turns, y.item(), a.grad.item(), exact, numeric])
    common.table(rows, ["a", "loop turns", "y = sqrt(a)", "dy/da (backprop)", "1/(2 sqrt a)", "finite diff."])

    # --- Part 2: recurrences of data-dependent length, with data-dependent skips
    n_h, n_seq = 4, 6 if args.quick else 12
    sequences = [rng.uniform(-1, 1, size=(1, rng.integers(2, 9))) for _ in range(n_seq)]
    labels = [np.array([[float(x.sum() > 0)]]) for x in sequences]
    params = [dl.Tensor(dl.init.xavier((n_h, n_h), rng=rng), requires_grad=True, name="W"),
              dl.Tensor(dl.init.xavier((n_h, 1), rng=rng), requires_grad=True, name="U"),
              dl.Tensor(dl.init.normal((n_h, 1), 0.1, rng=rng), requires_grad=True, name="b"),
              dl.Tensor(dl.init.xavier((1, n_h), rng=rng), requires_grad=True, name="w_out"),
              dl.Tensor(np.zeros((1, 1)), requires_grad=True, name="b_out")]
    J, sizes = rnn_cost(params, sequences, labels)
    print(f"\nrecurrent net over {n_seq} sequences of lengths {[x.shape[1] for x in sequences]}")
    print(f"skipped blanks: {[int(np.sum(np.abs(x) < 0.1)) for x in sequences]};  graph sizes (tensors): {sizes}")
    check = dl.gradcheck(lambda: rnn_cost(params, sequences, labels)[0], params)
    print(check.report())

    fig, ax = plt.subplots(figsize=(6, 3.8))
    grid = np.logspace(-1, 6, 50)
    ax.plot(grid, [newton_sqrt(dl.Tensor(v))[1] for v in grid], ".-")
    ax.set(xscale="log", xlabel="a", ylabel="loop turns", title="Newton's sqrt: the graph's depth depends on a")
    common.save(fig, os.path.join(args.out, "loop_turns.png"))
    common.result(newton_max_rel_err=max(errors), rnn_gradcheck_difference=check.difference, rnn_ok=check.ok,
                  graph_sizes=sizes)


if __name__ == "__main__":
    main()
