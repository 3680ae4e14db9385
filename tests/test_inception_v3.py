"""InceptionV3: the declaration, the nsfwjs-inception-v3 weights, and the numerics against Keras.

Independent references:
- Keras's own InceptionV3 activations (tests/keras_reference.py, run under TensorFlow with
  the same dequantized weights; CI exports CIRCUITS_KERAS_REFERENCE): mixed0, mixed2 and
  mixed5 at 299, 300 and 224 px must agree to 1e-4 relative, measured as
  max |torch - keras| / max |keras| over the whole tensor;
- keras.applications' published facts: the model summary's block widths and 35/17/8 grids at
  299 px, the documented 75 px minimum input, and the parameter count of
  InceptionV3(include_top=False): 21,802,784 total, of which 34,432 non-trainable (the BN
  moving means and variances); folded into convs that leaves 21,768,352;
- the package's own topology (layer counts by Keras class) where it is cached;
- receptive fields added up by hand below, and the model's own full run for truncated runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import weights
from circuits import InceptionV3
from circuits.core.inception_v3 import INCEPTION_V3 as G
from circuits.core.inception_v3 import MIXED_CHANNELS
from weights import tfjs

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("mixed0", "mixed2", "mixed5")
SIZES = (299, 300, 224)
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def model_random(random_v3_model):
    return random_v3_model


# --- the declaration (no package needed) -------------------------------------------------


def test_node_counts_match_keras_layers():
    # Keras InceptionV3 trunk: 94 Conv2D (+BN, folded) and 94 ReLU Activations, 4 max-pools,
    # 9 average pools before the head, 15 Concatenates; plus the input and 13 synthesized
    # pre-ReLU twins (mixed0-2, mixed4-7, mixed9_0/_1, concatenate_1/_2, mixed9, mixed10).
    ops = [n.op for n in G.nodes if not n.synthesized]
    assert ops.count("conv") == 94 and ops.count("relu") == 94
    assert ops.count("maxpool") == 4 and ops.count("avgpool") == 9 and ops.count("concat") == 15
    synthesized = sorted(n.name for n in G.nodes if n.synthesized)
    assert len(synthesized) == 13 and "mixed3_pre_relu" not in synthesized and "mixed8_pre_relu" not in synthesized
    assert len(G.nodes) == 1 + 94 + 94 + 4 + 9 + 15 + 13
    assert [f"conv2d_{i}" for i in range(1, 95)] == [n.name for n in G.nodes if n.op == "conv"]


def test_mixed_block_channels_and_grid():
    # keras.applications.InceptionV3 model summary at 299 px.
    expected = {"mixed0": 256, "mixed1": 288, "mixed2": 288, "mixed3": 768, "mixed4": 768, "mixed5": 768,
                "mixed6": 768, "mixed7": 768, "mixed8": 1280, "mixed9": 2048, "mixed10": 2048}
    assert {k: G.node(k).channels for k in expected} == expected == MIXED_CHANNELS
    grid = {**{f"mixed{i}": 35 for i in range(3)}, **{f"mixed{i}": 17 for i in range(3, 8)},
            **{f"mixed{i}": 8 for i in range(8, 11)}}
    assert {k: G.output_hw(k, 299) for k in grid} == {k: (v, v) for k, v in grid.items()}
    assert G.output_hw("conv2d_1", 299) == (149, 149) and G.output_hw("max_pooling2d_2", 299) == (35, 35)


def test_parameter_shapes_match_keras_parameter_count():
    shapes = G.parameter_shapes()
    assert len(shapes) == 2 * 94
    assert shapes["conv2d_1.weight"] == (32, 3, 3, 3)
    assert shapes["conv2d_33.weight"] == (128, 128, 1, 7) and shapes["conv2d_34.weight"] == (192, 128, 7, 1)
    assert shapes["conv2d_94.weight"] == (192, 2048, 1, 1)
    # Keras: 21,802,784 params without the top, 34,432 of them BN moving statistics (2 per
    # channel); kernels + BN betas = folded weights + biases.
    assert sum(int(np.prod(s)) for s in shapes.values()) == 21_802_784 - 34_432
    assert sum(s[0] for k, s in shapes.items() if k.endswith(".bias")) == 34_432 // 2


def test_branches_and_unit_facts():
    # mixed2 = [1x1: 64, 5x5: 64, 3x3dbl: 96, pool: 64]
    assert G.branches("mixed2") == (("activation_20", 0, 64), ("activation_22", 64, 64),
                                    ("activation_25", 128, 96), ("activation_26", 224, 64))
    assert G.branch_of("mixed2", 67) == ("activation_22", 3)
    assert G.conv_of("mixed2", 67) == ("conv2d_22", 3)
    assert G.pre_relu_of("mixed2") == "mixed2_pre_relu" and G.pre_relu_of("activation_22") == "conv2d_22"
    assert G.pre_relu_of("mixed3") is None and G.pre_relu_of("mixed8") is None
    # mixed3's third branch is the max-pool of mixed2 (no conv computes it).
    assert G.branches("mixed3")[2] == ("max_pooling2d_3", 384 + 96, 288)
    assert G.conv_of("mixed3", 384 + 96 + 5) is None
    # mixed9 nests two concatenations: [320, mixed9_0 (384 + 384), concatenate_1 (384 + 384), 192]
    assert [b[1] for b in G.branches("mixed9")] == [0, 320, 1088, 1856]
    assert G.conv_of("mixed9", 320 + 384 + 2) == ("conv2d_80", 2)
    assert G.conv_of("mixed10", 1088 + 5) == ("conv2d_92", 5)


def test_receptive_fields_by_hand():
    # size grows by (k - 1) * jump; jump multiplies by the stride.
    stem = 1 + 2 * 1          # conv2d_1 3x3/2: 3, jump 2
    stem += 2 * 2 + 2 * 2     # conv2d_2, conv2d_3 3x3: 11
    stem += 2 * 2             # max_pooling2d_1 3x3/2: 15, jump 4
    stem += 2 * 4 + 2 * 4     # conv2d_5 3x3, max_pooling2d_2 3x3/2: 31, jump 8
    assert (G.receptive_field("max_pooling2d_2").size, G.receptive_field("max_pooling2d_2").stride) == (stem, 8)
    mixed0 = stem + 2 * 8 + 2 * 8                        # 3x3 dbl (the 5x5 branch ties: 4 * 8)
    assert G.receptive_field("mixed0").size == mixed0 == 63
    mixed2 = mixed0 + 2 * 32
    mixed3 = mixed2 + 2 * 8 + 2 * 8                      # 3x3, then 3x3/2 valid
    assert (G.receptive_field("mixed3").size, G.receptive_field("mixed3").stride) == (mixed3, 16)
    # mixed4: the 7x7dbl branch has two 7x1 and two 1x7: +2 * 6 * 16 on each axis.
    assert G.receptive_field("mixed4").size == mixed3 + 2 * 6 * 16 == 351
    assert G.receptive_field("conv2d_33").size_hw == (mixed3, mixed3 + 6 * 16)  # a 1x7 widens only
    mixed7 = 351 + 3 * 2 * 6 * 16
    mixed8 = mixed7 + 6 * 16 + 2 * 16                    # 1x7/7x1 then 3x3/2 valid
    assert (G.receptive_field("mixed8").size, G.receptive_field("mixed8").stride) == (mixed8, 32)
    # VALID 3x3/2 on the input: unit (0, 0) sees pixels 0..2, centred on pixel 1.
    assert G.receptive_field("conv2d_1", 299).first_centre == (1.0, 1.0)


def test_minimum_input_is_75(model_random):
    # keras.applications documents 75 px as InceptionV3's smallest input.
    assert G.min_input_size("mixed10") == 75
    with pytest.raises(ValueError, match=r"74x74 is too small to reach mixed10: it needs at least 75x75"):
        model_random.run(torch.zeros(1, 3, 74, 74))


@pytest.mark.parametrize("size", [75, 299])
def test_random_weights_run_end_to_end(model_random, size):
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.inference_mode():
        out = model_random.run_with_cache(x, ["mixed2", "mixed10"])
    assert out["mixed10"].shape == (1, 2048, *G.output_hw("mixed10", size))
    assert out["mixed2"].shape == (1, 288, *G.output_hw("mixed2", size))
    assert torch.isfinite(out["mixed10"]).all() and out["mixed10"].abs().max() > 0


def test_truncated_run_equals_full_run_and_stops(model_random):
    x = torch.rand(2, 3, 99, 101) * 2 - 1
    seen = []
    with torch.inference_mode():
        full = model_random.run_with_cache(x, ["mixed2", "mixed9", "mixed10"])
        with model_random.hooks([("mixed3", lambda t, h: seen.append(1))]):
            trunc = model_random.run_with_cache(x, ["mixed2"])
    assert torch.equal(trunc["mixed2"], full["mixed2"])
    assert seen == []  # the truncated run never reached mixed3


def test_permanent_hook_on_a_keras_name(model_random):
    x = torch.rand(1, 3, 75, 75) * 2 - 1
    h = model_random.add_hook("mixed2", lambda t, hp: t * 0)
    try:
        out = model_random.run(x, until="mixed2")
    finally:
        model_random.remove_hook(h)
    assert out.abs().max() == 0 and model_random.permanent_hooks == []


def test_layer_table_rows():
    rows = {r["name"]: r for r in G.layer_table(299)}
    assert len(rows) == len(G.nodes)
    assert rows["activation_22"]["concat"] == "mixed2" and rows["activation_22"]["offset"] == 64
    assert rows["conv2d_33"]["kernel"] == [1, 7] and rows["mixed10"]["output_hw"] == [8, 8]


def test_pre_relu_twins_are_the_blocks_before_relu(model_random):
    x = torch.rand(1, 3, 80, 80) * 2 - 1
    names = ["mixed2", "mixed2_pre_relu", "mixed9", "mixed9_pre_relu"]
    with torch.inference_mode():
        c = model_random.run_with_cache(x, names)
    for block in ("mixed2", "mixed9"):
        assert torch.equal(torch.relu(c[f"{block}_pre_relu"]), c[block])
        assert (c[f"{block}_pre_relu"] < 0).any()


def test_registry_knows_the_network_class():
    assert weights.registry.network_of("nsfwjs-inception-v3") is InceptionV3
    assert "nsfwjs-inception-v3" in weights.sources()


def test_offline_without_package_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CIRCUITS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm
    with pytest.raises(tfjs.TfjsFormatError, match=r"npm pack nsfwjs@4\.4\.0"):
        weights.load("nsfwjs-inception-v3")


# --- with the package ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def package_model() -> tfjs.TfjsModel:
    try:
        path = tfjs.locate_package()
    except tfjs.TfjsFormatError as e:
        pytest.skip(f"nsfwjs@4.4.0 not available: {e}")
    return tfjs.read_package(path)


def test_package_layer_counts(package_model):
    from collections import Counter

    counts = Counter(l.class_name for l in tfjs.layers(package_model))
    assert counts["Conv2D"] == 94 and counts["Concatenate"] == 15 and counts["MaxPooling2D"] == 4
    assert counts["AveragePooling2D"] == 10  # 9 in the trunk, average_pooling2d_10 in the head


def test_frozen_imagenet_trunk_ends_in_mixed6(package_model):
    from weights.nsfwjs import frozen_convs

    # mixed0-mixed5 are conv2d_6..conv2d_50; mixed6 begins at conv2d_51, and only its
    # 7x7dbl branch's first conv (conv2d_55) stayed frozen.
    assert frozen_convs(package_model) == [f"conv2d_{i}" for i in range(1, 51)] + ["conv2d_55"]


def test_state_dict_from_an_explicit_tarball(package_model):
    from weights.nsfwjs import state_dict

    sd = state_dict(package_model.source)  # the .tgz path, as a user would pass it
    assert {k: tuple(v.shape) for k, v in sd.items()} == G.parameter_shapes()
    # conv2d_1 folded by hand from the raw Keras tensors: W * 1/sqrt(var + eps), -mean/sqrt(var + eps) + beta
    w = package_model.weights
    s = 1.0 / np.sqrt(w["batch_normalization_1/moving_variance"].astype(np.float64) + 1e-3)
    expected_w = w["conv2d_1/kernel"].transpose(3, 2, 0, 1) * s[:, None, None, None]
    expected_b = w["batch_normalization_1/beta"] - w["batch_normalization_1/moving_mean"] * s
    np.testing.assert_allclose(sd["conv2d_1.weight"].numpy(), expected_w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sd["conv2d_1.bias"].numpy(), expected_b, rtol=1e-6, atol=1e-6)


def _with_layer(m: tfjs.TfjsModel, name: str, edit) -> tfjs.TfjsModel:
    import copy
    import dataclasses

    topo = copy.deepcopy(m.topology)
    layers = topo.get("model_config", topo)["config"]["layers"]
    edit(next(l for l in layers if (l.get("name") or l["config"]["name"]) == name))
    return dataclasses.replace(m, topology=topo)


def test_topology_check_names_the_mismatching_layer(package_model):
    from weights.nsfwjs import TopologyMismatch, check_topology

    check_topology(package_model)  # the real package matches

    def kernel(l):
        l["config"]["kernel_size"] = [7, 1]

    with pytest.raises(TopologyMismatch, match=r"conv2d_33: kernel_size is \(7, 1\).*\(1, 7\)"):
        check_topology(_with_layer(package_model, "conv2d_33", kernel))

    def padding(l):
        l["config"]["padding"] = "same"

    with pytest.raises(TopologyMismatch, match=r"conv2d_72: padding is 'same'.*'valid'"):
        check_topology(_with_layer(package_model, "conv2d_72", padding))

    def swap(l):
        node = l["inbound_nodes"][0]
        node[0], node[1] = node[1], node[0]

    with pytest.raises(TopologyMismatch, match=r"mixed4: the input is 'activation_34,activation_31"):
        check_topology(_with_layer(package_model, "mixed4", swap))

    def filters(l):
        l["config"]["filters"] = 100

    with pytest.raises(TopologyMismatch, match=r"conv2d_5: filters is 100"):
        check_topology(_with_layer(package_model, "conv2d_5", filters))


def _reference_path() -> Path | None:
    env = os.environ.get("CIRCUITS_KERAS_REFERENCE")
    if env:
        return Path(env)
    local = REPO / "build" / "keras_reference" / "nsfwjs_inception_v3.npz"
    return local if local.exists() else None


@pytest.fixture(scope="module")
def keras_reference():
    path = _reference_path()
    if path is None:
        pytest.skip("no Keras reference: set CIRCUITS_KERAS_REFERENCE or build build/keras_reference/"
                    "nsfwjs_inception_v3.npz with tests/keras_reference.py (.ci/run does both)")
    if not path.exists():
        pytest.fail(f"CIRCUITS_KERAS_REFERENCE={path} does not exist")
    return np.load(path)


@pytest.fixture(scope="module")
def trained(keras_reference):
    try:
        return weights.model("nsfwjs-inception-v3")
    except tfjs.TfjsFormatError as e:
        pytest.skip(f"nsfwjs@4.4.0 not available: {e}")


@pytest.mark.parametrize("size", SIZES)
def test_matches_keras(trained, keras_reference, size):
    x = torch.from_numpy(keras_reference[f"input_{size}"])
    assert x.shape[-1] == size and x.abs().max() <= 1
    with torch.inference_mode():
        got = trained.run_with_cache(x, list(LAYERS))
    for layer in LAYERS:
        ref = keras_reference[f"{layer}_{size}"]
        assert got[layer].shape == ref.shape, layer
        rel = float(np.abs(got[layer].numpy() - ref).max() / np.abs(ref).max())
        assert rel <= TOLERANCE, f"{layer} at {size} px: max relative error {rel:.2e} > {TOLERANCE}"


def test_model_is_ready(trained):
    assert type(trained) is InceptionV3 and not trained.training
    assert trained.input_range == (-1.0, 1.0) and trained.source == "nsfwjs-inception-v3"


def test_hooks_are_checked_against_the_models_own_hook_points():
    """A name of InceptionV1 ('mixed3b') is no hook of InceptionV3: refused before anything is
    added, with InceptionV3's close names (its own hook points, not InceptionV1's table)."""
    from circuits.core.graph import UnknownNameError
    from circuits.core.model import InceptionV3

    m = InceptionV3()
    with pytest.raises(UnknownNameError, match=r"'mixed3b'.*did you mean mixed3"):
        with m.hooks([("mixed2", lambda x, h: x), ("mixed3b", lambda x, h: x)]):
            pass  # pragma: no cover
    assert m.active_hooks == []
