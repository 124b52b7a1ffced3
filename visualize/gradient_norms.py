"""Vanishing and exploding gradients (course notes §3.2.2): ||dW[l]|| layer by layer in a deep ReLU network under
zeros, small random (randn * 0.01, vanishing), large random (randn * 1.5, exploding) and He (randn * sqrt(2 / n[l-1])) initialization.

Writes gradient_norms.svg (one line per initialization, log scale) and gradient_norms_<init>.svg/.dot: the network's
graph with each Dense layer collapsed to one box coloured by its gradient norm (blue: vanishing, red: exploding).
"""
import numpy as np

from _common import log_chart_svg, outdir, parser, write

import tinygrad_dl as dl
import tinygrad_dl.functional as F
from tinygrad_dl import viz

INITS = {
    "zeros": lambda shape, rng=None, dtype=np.float64: np.zeros(shape, dtype=dtype),
    "small": lambda shape, rng=None, dtype=np.float64: dl.init.normal(shape, scale=0.01, rng=rng, dtype=dtype),
    "large": lambda shape, rng=None, dtype=np.float64: dl.init.normal(shape, scale=1.5, rng=rng, dtype=dtype),
    "he": dl.init.he,
}
COLOURS = {"zeros": "#6b7280", "small": "#7c3aed", "large": "#dc2626", "he": "#2563eb"}


def build(init, seed=0, n_layers=10, width=16, n_x=8, m=32):
    rng = np.random.default_rng(seed)
    X = dl.Tensor(rng.standard_normal((n_x, m)), name="X")
    Y = dl.Tensor((rng.random((1, m)) > 0.5).astype(float), name="Y")
    layers, n_prev = [], n_x
    for l in range(n_layers):
        n = 1 if l == n_layers - 1 else width
        layers.append(dl.nn.Dense(n_prev, n, init=INITS[init], rng=rng))
        if l < n_layers - 1:
            layers.append(dl.nn.ReLU())
        n_prev = n
    model = dl.nn.Sequential(*layers)
    J = F.binary_cross_entropy_with_logits(model(X), Y)
    J.name = "J"
    return J, model


def main(argv=None):
    args = parser(__doc__.split("\n\n")[0]).parse_args(argv)
    out = outdir(args)
    series, labels = [], None
    for init in INITS:
        J, model = build(init, args.seed)
        viz.render(J, f"{out}/gradient_norms_{init}", collapse_modules=True, color_by="grad_norm",
                   norm_range=(1e-6, 1e6), rankdir="TB", show_values=False,
                   title=f"10-layer ReLU network, {init} initialization: ||dW|| per layer")
        print("wrote", f"{out}/gradient_norms_{init}.svg")
        weights = [(n, p) for n, p in model.named_parameters() if n.endswith(".W")]
        grads = dl.grad(J, [p for _, p in weights])
        norms = [float(np.linalg.norm(g.data)) for g in grads]
        labels = [f"dW[{l + 1}]" for l in range(len(weights))]
        series.append((f"{init}" + (" (all 0)" if not any(norms) else ""), COLOURS[init], norms))
        print(f"  {init:5s} ||dW[l]||:", " ".join(f"{v:.3g}" for v in norms))
    svg = log_chart_svg("Gradient norms by layer (course notes §3.2.2)", labels, series, "||dW[l]||_F (log scale)",
                        lines=[(1.0, "1", "#9ca3af")])
    write(f"{out}/gradient_norms.svg", svg)


if __name__ == "__main__":
    main()
