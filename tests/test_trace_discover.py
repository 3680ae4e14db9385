"""Curve discovery on random networks finds nothing.

The "Curve Detectors" criteria (a narrow, single-peaked radial tuning curve to curves; lines,
angles and edges weaker; no echo; both contrast polarities) describe what training makes.
Seeded random weights have no reason to make it, so `discover` must accept no unit of them: a
criterion loose enough to accept a random unit would call noise a curve detector. Checked on
five seeds of two traced architectures (a residual network and a depthwise-separable one), at a
layer deep enough that its units see a whole curve stimulus.
"""

from __future__ import annotations

import pytest

import weights
from circuits.tuning.discover import discover

SEEDS = range(5)


@pytest.mark.parametrize("arch, layer", [("resnet18", "layer2"), ("mobilenet_v2", "features.6")])
def test_discover_accepts_no_unit_of_random_networks(arch, layer):
    for seed in SEEDS:
        model = weights.model(f"torchvision:{arch}:random:{seed}")
        # The default four curvatures: with two, the curvature-tolerance criterion (mean / best over
        # curvatures >= 0.5) cannot reject a unit that responds to one radius only.
        d = discover(model, layer, n_orientations=24, register=False, progress=False)
        assert len(d.scores) == model.graph.node(layer).channels
        assert d.family == [], f"{arch} seed {seed}: accepted {d.family}\n{d.table(limit=len(d.family) + 2)}"
        # Not vacuous: the sweep reached the layer (some unit responds to the curves).
        assert max(s.peak for s in d.scores) > 0, f"{arch} seed {seed}: no unit of {layer} responds"
