#!/usr/bin/env bash
# Regenerate every picture in visualize/gallery/ (deterministic: fixed seeds, no timestamps).
set -euo pipefail
cd "$(dirname "$0")/.."
python visualize/logistic_regression_graph.py
python visualize/backprop_page.py --screenshot
python visualize/gradient_norms.py
python visualize/gradient_check.py
