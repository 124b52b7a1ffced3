"""Gradient checking (course notes §3.2.3), per parameter: the relative difference
||dθ≈ - dθ|| / (||dθ≈|| + ||dθ||) of every W[l] and b[l], for a correct 3-layer network and for the same network
with a bug planted in the backward rule of the second layer's activation (a user-written tanh primitive whose
derivative forgets the square: 1 - A instead of 1 - A²).

Only the parameters BELOW the buggy activation differ: the picture shows which layer is wrong.
Writes gradient_check.svg (bars on a log scale, with the course's 1e-7 and 1e-3 lines).
"""
import numpy as np

from _common import log_chart_svg, outdir, parser, write

import tinygrad_dl as dl
import tinygrad_dl.functional as F


class BuggyTanh(dl.Function):
    """y = tanh(x);  dy/dx = 1 - y  (WRONG on purpose: the course's rule is 1 - y**2)"""

    def forward(self, x):
        return np.tanh(x)

    def backward(self, grad, out, x):
        return (grad * (1.0 - out),)


def build(seed=0, buggy=False, m=5):
    rng = np.random.default_rng(seed)
    X = dl.Tensor(rng.standard_normal((4, m)))
    Y = dl.Tensor((rng.random((1, m)) > 0.5).astype(float))
    model = dl.nn.Sequential(dl.nn.Dense(4, 5, init="xavier", rng=rng), dl.nn.Tanh(),
                             dl.nn.Dense(5, 3, init="xavier", rng=rng), dl.nn.Tanh(),
                             dl.nn.Dense(3, 1, init="xavier", rng=rng))
    d0, act1, d2, act3, d4 = model.layers

    def cost():
        A1 = act1(d0(X))
        Z2 = d2(A1)
        A2 = BuggyTanh()(Z2) if buggy else F.tanh(Z2)
        return F.binary_cross_entropy_with_logits(d4(A2), Y)

    return cost, model


def main(argv=None):
    args = parser(__doc__.split("\n\n")[0]).parse_args(argv)
    out = outdir(args)
    series, names = [], None
    for buggy, label, colour in ((False, "correct backprop", "#2563eb"),
                                 (True, "bug planted in layers.3 (tanh')", "#dc2626")):
        cost, model = build(args.seed, buggy)
        res = dl.gradcheck(cost, model)
        names = [c.name for c in res.breakdown]
        series.append((label, colour, [c.difference for c in res.breakdown]))
        print(f"{label}: difference {res.difference:.3g}")
        for c in res.breakdown:
            print(f"  {c.name:12s} {c.difference:.3g}  {c.verdict}")
    svg = log_chart_svg("Gradient checking per parameter (course notes §3.2.3)", names, series,
                        "relative difference (log scale)", kind="bar",
                        lines=[(1e-7, "1e-7 great", "#16a34a"), (1e-3, "1e-3 bug", "#dc2626")])
    write(f"{out}/gradient_check.svg", svg)


if __name__ == "__main__":
    main()
