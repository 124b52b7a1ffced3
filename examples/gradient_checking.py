"""Gradient checking: backprop against two-sided differences, and a planted bug that the check points at.

Course notes §3.2.3 (Gradient Checking): flatten W[1], b[1], ..., W[L], b[L] into one vector theta and compare
    dtheta_approx[i] = (J(theta_i + eps) - J(theta_i - eps)) / (2 eps)   with backprop's dtheta:
    difference = ||dtheta_approx - dtheta|| / (||dtheta_approx|| + ||dtheta||),
< 1e-7 great, > 1e-3 probably a bug. dl.gradcheck also gives the difference of each parameter on its own.

A user-written primitive (a dl.Function subclass) is where bugs hide: here Softplus, y = log(1 + e^x), used as the
activation of layer 2 of a 3-layer network, once with the right derivative (sigmoid(x)) and once with a planted
sign slip (sigmoid(-x)). Backprop runs from the cost backwards, so the parameters of layer 3 (after the bug)
check clean and every parameter from layer 2 down is wrong: the first failing layer names the culprit.

    python examples/gradient_checking.py [--quick] [--seed N] [--out DIR] [--threads N]
"""
import os

import matplotlib.pyplot as plt
import numpy as np

import common
import tinygrad_dl as dl
import tinygrad_dl.functional as F


class Softplus(dl.Function):
    """y = log(1 + exp(x));  dy/dx = sigmoid(x) = 1 / (1 + exp(-x))"""

    def forward(self, x):
        return np.logaddexp(0.0, x)

    def backward(self, grad, out, x):
        return (grad / (1 + (-x).exp()),)


class BuggySoftplus(Softplus):
    """y = log(1 + exp(x));  dy/dx written as 1 / (1 + exp(x))   <- the planted bug: a sign slip"""

    def backward(self, grad, out, x):
        return (grad / (1 + x.exp()),)


def make_params(layer_dims, rng):
    """W[l] (He), b[l] (small random, so no gradient is zero by symmetry), named like the course."""
    params = []
    for l in range(1, len(layer_dims)):
        params.append(dl.Tensor(dl.init.he((layer_dims[l], layer_dims[l - 1]), rng=rng), requires_grad=True,
                                name=f"W{l}"))
        params.append(dl.Tensor(dl.init.normal((layer_dims[l], 1), 0.1, rng=rng), requires_grad=True, name=f"b{l}"))
    return params


def cost_function(params, X, Y, activation2):
    """J of the network [n_x, 5, 4, 1]: tanh, then `activation2`, then a sigmoid output."""
    W1, b1, W2, b2, W3, b3 = params

    def J():
        A1 = F.tanh(W1 @ X + b1)
        A2 = activation2(W2 @ A1 + b2)
        return F.binary_cross_entropy(F.sigmoid(W3 @ A2 + b3), Y)
    return J


def main():
    args = common.parse_args("gradient_checking", __doc__)
    rng = np.random.default_rng(args.seed)
    m = 8 if args.quick else 32
    X = dl.Tensor(rng.standard_normal((4, m)), name="X")
    Y = (rng.random((1, m)) > 0.5).astype(np.float64)
    params = make_params([4, 5, 4, 1], rng)

    runs = {"built-in ReLU": F.relu, "custom Softplus (right backward)": Softplus.apply,
            "custom Softplus (planted bug)": BuggySoftplus.apply}
    results = {}
    for name, activation2 in runs.items():
        res = dl.gradcheck(cost_function(params, X, Y, activation2), params)
        results[name] = res
        print(f"\n=== layer-2 activation: {name}")
        print(res.report())

    buggy = results["custom Softplus (planted bug)"]
    failing = [c.name for c in buggy.breakdown if c.difference > 1e-5]
    clean = [c.name for c in buggy.breakdown if c.difference <= 1e-5]
    first_bad_layer = max(int(n[1:]) for n in failing) if failing else None
    print(f"\nclean: {', '.join(clean)};  wrong: {', '.join(failing)}")
    if first_bad_layer is not None:
        l = first_bad_layer
        print(f"W{l + 1}, b{l + 1} check clean, so dZ[{l + 1}] and dA[{l}] = W[{l + 1}]^T dZ[{l + 1}] are right; "
              f"W{l}, b{l} fail, so dZ[{l}] is wrong: the bug is in the step dA[{l}] -> dZ[{l}], "
              f"layer {l}'s activation ({BuggySoftplus.__name__}), whose rule says: {BuggySoftplus.__doc__.strip()}")

    fig, ax = plt.subplots(figsize=(7, 3.8))
    names = [c.name for c in buggy.breakdown]
    for k, (label, res) in enumerate(results.items()):
        ax.bar(np.arange(len(names)) + (k - 1) * 0.27, [max(c.difference, 1e-16) for c in res.breakdown], 0.27,
               label=label)
    ax.axhline(1e-7, color="g", ls="--", lw=0.8), ax.axhline(1e-3, color="r", ls="--", lw=0.8)
    ax.set(yscale="log", xticks=range(len(names)), xticklabels=names, ylabel="relative difference",
           title="gradient check per parameter (green: great < 1e-7, red: bug > 1e-3)")
    ax.legend(fontsize=8)
    common.save(fig, os.path.join(args.out, "breakdown.png"))
    common.result(relu_difference=float(results["built-in ReLU"].difference),
                  softplus_difference=float(results["custom Softplus (right backward)"].difference),
                  buggy_difference=float(buggy.difference), buggy_ok=buggy.ok, first_bad_layer=first_bad_layer,
                  wrong_params=failing)


if __name__ == "__main__":
    main()
