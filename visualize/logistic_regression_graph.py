"""The logistic-regression graph of course notes §1.2, with every value and every gradient.

    Z = wᵀX + b,  A = σ(Z) = 1 / (1 + e^(-Z)),  J = -(1/m) Σ (Y log A + (1 - Y) log(1 - A))

The picture shows that backprop finds the course's dZ = (A - Y)/m, dw = X dZᵀ, db = Σ dZ.
Writes logistic_regression.dot and logistic_regression.svg into the output folder (needs Graphviz's `dot`).
"""
import numpy as np

from _common import outdir, parser

import tinygrad_dl as dl
from tinygrad_dl import viz


def build(seed=0, n_x=2, m=3):
    rng = np.random.default_rng(seed)
    X = dl.Tensor(rng.standard_normal((n_x, m)).round(2), name="X")
    Y = dl.Tensor(np.array([[1.0, 0.0, 1.0]])[:, :m], name="Y")
    w = dl.Tensor(rng.standard_normal((n_x, 1)).round(2) * 0.5, requires_grad=True, name="w")
    b = dl.Tensor(np.zeros((1, 1)), requires_grad=True, name="b")
    Z = w.T @ X + b
    Z.name = "Z"
    A = 1 / (1 + (-Z).exp())
    A.name = "A = σ(Z)"
    J = -(Y * A.log() + (1 - Y) * (1 - A).log()).mean()
    J.name = "J"
    return J


def main(argv=None):
    args = parser(__doc__.split("\n\n")[0]).parse_args(argv)
    out = outdir(args)
    J = build(args.seed)
    path = viz.render(J, f"{out}/logistic_regression", title="Logistic regression (course notes §1.2): values and gradients ∇ = dJ/d·")
    print("wrote", path)


if __name__ == "__main__":
    main()
