#!/usr/bin/env bash
# Redraws every figure in docs/ from the commands the README shows (run from the repository root,
# with the package installed: .venv/bin/circuits). The InceptionV3 ones need the nsfwjs package.
set -euo pipefail
C=${CIRCUITS:-.venv/bin/circuits}
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# hand-built network
$C discover mixed3b --weights handbuilt --no-progress --top 0 \
    --plot docs/discover_handbuilt_radial.png --sheet docs/discover_handbuilt_vis.png --vis-steps 192 > /dev/null
$C edit-experiment --plot docs/edit_experiment_handbuilt.png --n-angles 180 --no-progress > /dev/null
$C dataset mixed3b:379 --images skimage --json "$tmp/scan.json" --plots "$tmp/figs" --quiet > /dev/null
for f in histogram quilt topk attribution_quilt; do cp "$tmp/figs/mixed3b_379_$f.png" "docs/dataset_$f.png"; done
$C extract-curves mixed3b:curves --image skimage:retina --out docs/dataset_retina.png > /dev/null
$C trace-curve mixed3b:curves --image skimage:coffee --box 5 80 60 145 --out docs/dataset_trace_coffee.png > /dev/null
$PY experiments/spline_accuracy.py --out docs/dataset_spline.png > /dev/null

# InceptionV3 (trained, nsfwjs): families, banner, contact sheet, and the three-way comparison
$PY experiments/discover_inception_v3.py --out "$tmp" > /dev/null
cp "$tmp/inceptionv3_mixed2_curves.json" "$tmp/inceptionv3_mixed1_early_curves.json" docs/
$C discover mixed2 --weights nsfwjs-inception-v3 --no-progress --top 0 \
    --plot docs/inceptionv3_mixed2_curves_radial.png --sheet docs/inceptionv3_mixed2_curves_vis.png > /dev/null
$C compare mixed3b:curves --no-checks --early mixed3a:hb_early_curve_bank \
    --family-of nsfwjs-inception-v3=docs/inceptionv3_mixed2_curves.json \
    --early-of nsfwjs-inception-v3=docs/inceptionv3_mixed1_early_curves.json \
    --families-plot docs/compare_three_way.png
