"""A 2-layer network's backward pass as one self-contained HTML page (course notes §2.3).

    Z1 = W1 X + b1, A1 = tanh(Z1), Z2 = W2 A1 + b2, A2 = σ(Z2), J = BCE(A2, Y)

Step through it with Next/Previous or the arrow keys; each step shows the op being differentiated, the gradient
flowing into each input and the local rule in the course's notation. Writes backprop_2layer.html (needs Graphviz's
`dot`); with --screenshot also backprop_2layer.png of one step, taken with headless Chromium (needs playwright and
/usr/bin/chromium).
"""
import os
import tempfile

import numpy as np

from _common import outdir, parser

import tinygrad_dl as dl
import tinygrad_dl.functional as F
from tinygrad_dl import viz


def build(seed=0, n_x=2, n_h=3, m=4):
    rng = np.random.default_rng(seed)
    X = dl.Tensor(rng.standard_normal((n_x, m)).round(2), name="X")
    Y = dl.Tensor((np.arange(m) % 2 == 0).astype(float).reshape(1, m), name="Y")
    model = dl.nn.Sequential(dl.nn.Dense(n_x, n_h, init="xavier", rng=rng), dl.nn.Tanh(),
                             dl.nn.Dense(n_h, 1, init="xavier", rng=rng))
    A2 = F.sigmoid(model(X))
    A2.name = "A2"
    J = F.binary_cross_entropy(A2, Y)
    J.name = "J"
    return J, model


def screenshot(html_path, png_path, step=5, chromium="/usr/bin/chromium"):
    from playwright.sync_api import sync_playwright
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"]
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True, args=args,
                                                    viewport={"width": 1400, "height": 760}, offline=True)
        page = ctx.new_page()
        page.goto(f"file://{os.path.abspath(html_path)}#step={step}")
        page.screenshot(path=png_path)
        ctx.close()


def main(argv=None):
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--screenshot", action="store_true", help="also write a PNG screenshot (headless Chromium)")
    p.add_argument("--step", type=int, default=None,
                   help="the step shown in the screenshot (default: the output layer's MatMul, dW = dZ A_prevᵀ)")
    args = p.parse_args(argv)
    out = outdir(args)
    J, _ = build(args.seed)
    path = viz.backprop_html(J, f"{out}/backprop_2layer.html", title="2-layer network: backprop step by step")
    print("wrote", path)
    if args.screenshot:
        step = args.step
        if step is None:
            steps = viz.trace(J).steps
            step = 1 + next(i for i, s in enumerate(steps) if s["fn"].name == "MatMul")
        screenshot(path, f"{out}/backprop_2layer.png", step)
        print("wrote", f"{out}/backprop_2layer.png")


if __name__ == "__main__":
    main()
