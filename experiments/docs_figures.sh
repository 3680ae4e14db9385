#!/usr/bin/env bash
# Redraws the figures in docs/ from the commands the README shows (run from the repository root,
# with the package installed: .venv/bin/circuits). The InceptionV3 ones need the nsfwjs package.
#
#   experiments/docs_figures.sh [SECTION ...]     (default: all sections, in this order)
#
# Sections:
#   handbuilt-tuning   hand-built network: discover banner, edit experiment
#   handbuilt-dataset  hand-built network on photographs: dataset scan figures, curve extraction, tracing,
#                      and the spline-accuracy experiment
#   inceptionv3        trained InceptionV3: its family files (docs/*.json), radial banner and contact sheet
#   compare            the three-way comparison (hand-built, InceptionV3, published); needs the family
#                      files of `inceptionv3`
#
# CIRCUITS and PYTHON override the commands, e.g. CIRCUITS="python -m circuits.cli" PYTHON=python.
set -euo pipefail
C=${CIRCUITS:-.venv/bin/circuits}
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

handbuilt_tuning() {
    $C discover mixed3b --weights handbuilt --no-progress --top 0 \
        --plot docs/discover_handbuilt_radial.png --sheet docs/discover_handbuilt_vis.png --vis-steps 192 > /dev/null
    $C edit-experiment --plot docs/edit_experiment_handbuilt.png --n-angles 180 --no-progress > /dev/null
}

handbuilt_dataset() {
    $C dataset mixed3b:379 --images skimage --json "$tmp/scan.json" --plots "$tmp/figs" --quiet > /dev/null
    for f in histogram quilt topk attribution_quilt; do cp "$tmp/figs/mixed3b_379_$f.png" "docs/dataset_$f.png"; done
    $C extract-curves mixed3b:curves --image skimage:retina --out docs/dataset_retina.png > /dev/null
    $C trace-curve mixed3b:curves --image skimage:coffee --box 5 80 60 145 --out docs/dataset_trace_coffee.png > /dev/null
    $PY experiments/spline_accuracy.py --out docs/dataset_spline.png > /dev/null
}

inceptionv3() {
    # families, banner, contact sheet
    $PY experiments/discover_inception_v3.py --out "$tmp" > /dev/null
    cp "$tmp/inceptionv3_mixed2_curves.json" "$tmp/inceptionv3_mixed1_early_curves.json" docs/
    $C discover mixed2 --weights nsfwjs-inception-v3 --no-progress --top 0 \
        --plot docs/inceptionv3_mixed2_curves_radial.png --sheet docs/inceptionv3_mixed2_curves_vis.png > /dev/null
}

compare() {
    $C compare mixed3b:curves --no-checks --early mixed3a:hb_early_curve_bank \
        --family-of nsfwjs-inception-v3=docs/inceptionv3_mixed2_curves.json \
        --early-of nsfwjs-inception-v3=docs/inceptionv3_mixed1_early_curves.json \
        --families-plot docs/compare_three_way.png
}

sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=(handbuilt-tuning handbuilt-dataset inceptionv3 compare)
for s in "${sections[@]}"; do
    case "$s" in
        handbuilt-tuning) handbuilt_tuning ;;
        handbuilt-dataset) handbuilt_dataset ;;
        inceptionv3) inceptionv3 ;;
        compare) compare ;;
        *) echo "unknown section '$s'; use handbuilt-tuning, handbuilt-dataset, inceptionv3 or compare" >&2; exit 2 ;;
    esac
done
