#!/usr/bin/env bash
# Redraws the figures of docs/factorization.md with the commands it shows (run from the repository
# root, with the package installed). The InceptionV3 ones need the nsfwjs package. NMF is seeded
# (NNDSVDa initialization, seed 0), so the factor numbers used below are the same on every run.
set -euo pipefail
C=${CIRCUITS:-.venv/bin/circuits}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
V3="--weights nsfwjs-inception-v3"

# one image: the hand-built network's mixed3b (its live channels are the curve detectors)
$C factorize mixed3b --image skimage:chelsea --rank 3 --plot docs/factorization_chelsea_handbuilt.png --quiet
$C factorize mixed3b --image skimage:coffee --rank 3 --json "$tmp/coffee_hb.json" --vis-steps 0 --quiet
$C trace-curve --factor "$tmp/coffee_hb.json:2" --image skimage:coffee --box 5 80 60 145 \
    --out docs/factorization_trace_handbuilt.png

# the trained InceptionV3: one image, then jointly over four photographs
$C factorize mixed7 --image skimage:coffee --rank 3 $V3 --json "$tmp/coffee_v3.json" \
    --plot docs/factorization_coffee_v3.png --quiet
$C trace-curve --factor "$tmp/coffee_v3.json:2" --image skimage:coffee --size 299 --box 5 110 90 180 $V3 \
    --out docs/factorization_trace_v3.png
$C factorize mixed7 --image skimage:chelsea --image skimage:coffee --image skimage:astronaut --rank 4 $V3 \
    --plot docs/factorization_joint_v3.png --quiet
