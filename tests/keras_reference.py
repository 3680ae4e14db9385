"""Keras reference activations of nsfwjs@4.4.0's InceptionV3, for the torch port to match.

Run under a TensorFlow env, not the project's (no torch needed):

    python3 -m venv .venv-tf && .venv-tf/bin/pip install tensorflow-cpu numpy
    .venv-tf/bin/python tests/keras_reference.py --package nsfwjs-4.4.0.tgz --out ref.npz

It builds Keras's own `keras.applications.InceptionV3(weights=None, include_top=False,
input_shape=(None, None, 3))`, gives every layer the dequantized nsfwjs weights (read
by weights/tfjs.py, loaded by file path so the `weights` package and torch are not
imported), and checks the two graphs are the same: layers are paired by class and
creation number (nsfwjs, saved by Keras 2.2.4, counts `conv2d_1..conv2d_94`; a fresh
Keras counts `conv2d, conv2d_1..conv2d_93`), then every pair's inputs and weight
shapes must agree. It also rebuilds the nsfwjs topology itself from its JSON (with
`keras.Model.from_config`: Keras 3's `model_from_json` no longer knows Keras 2's class
name "Model") and checks it computes the same activations at 299x299.

The .npz holds float32 arrays in torch's NCHW layout (transposed from Keras's NHWC):
`input_{S}` (2, 3, S, S), uniform in [-1, 1], seed 0, and `{layer}_{S}` for layer
in mixed0, mixed2, mixed5 and S in 299, 300, 224; plus `name_map` (nsfwjs name ->
Keras name, as 2-column strings) and `info` (a JSON string).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("mixed0", "mixed2", "mixed5")
SIZES = (299, 300, 224)
BATCH = 2
SEED = 0


def load_tfjs():
    """weights/tfjs.py as a standalone module (numpy + stdlib only; `weights/__init__` needs torch)."""
    spec = importlib.util.spec_from_file_location("tfjs", REPO / "weights" / "tfjs.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tfjs"] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


def inputs(size: int, seed: int = SEED) -> np.ndarray:
    """The fixed NHWC test batch for one image size.

    >>> x = inputs(224); x.shape, x.dtype, bool(x.min() >= -1 and x.max() <= 1)
    ((2, 224, 224, 3), dtype('float32'), True)
    """
    rng = np.random.default_rng(seed + size)
    return rng.uniform(-1.0, 1.0, (BATCH, size, size, 3)).astype(np.float32)


def _split(name: str) -> tuple[str, int]:
    """('conv2d', n) for an auto-generated Keras name; n = 0 for the bare name.

    >>> _split("conv2d"), _split("conv2d_12"), _split("mixed9_0")
    (('conv2d', 0), ('conv2d', 12), ('mixed9', 0))
    """
    m = re.fullmatch(r"(.*?)(?:_(\d+))?", name)
    return m.group(1), int(m.group(2) or 0)


_EXPLICIT = re.compile(r"mixed\d+(_\d+)?")  # names keras.applications gives by hand


def name_map(nsfw_layers: list, keras_layers: list) -> dict[str, str]:
    """nsfwjs layer name -> Keras layer name: same class, same creation rank among that class.

    Explicitly named layers (mixed0..mixed10, mixed9_0, ...) keep their names; the input
    layers pair with each other; the rest pair by the rank of their counter suffix.
    """
    def ranked(names: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for n in names:
            out.setdefault(_split(n)[0], []).append(n)
        return {k: sorted(v, key=lambda n: _split(n)[1]) for k, v in out.items()}

    mapping: dict[str, str] = {}
    ns = [l.name for l in nsfw_layers if not _EXPLICIT.fullmatch(l.name)]
    ks = [l.name for l in keras_layers if not _EXPLICIT.fullmatch(l.name)]
    n_in = [l.name for l in nsfw_layers if l.class_name == "InputLayer"]
    k_in = [l.name for l in keras_layers if type(l).__name__ == "InputLayer"]
    mapping.update(zip(n_in, k_in))
    rn, rk = ranked([n for n in ns if n not in n_in]), ranked([n for n in ks if n not in k_in])
    for prefix, names in rk.items():
        mapping.update(zip(rn.get(prefix, []), names))
    for l in keras_layers:
        if _EXPLICIT.fullmatch(l.name):
            mapping[l.name] = l.name
    return mapping


def keras_inbound(model) -> dict[str, tuple[str, ...]]:
    """Inbound layer names of every layer of a Keras 3 functional model, from its config."""
    out = {}
    for l in model.get_config()["layers"]:
        nodes = l.get("inbound_nodes") or []
        names: list[str] = []

        def walk(o):
            if isinstance(o, dict) and o.get("class_name") == "__keras_tensor__":
                names.append(o["config"]["keras_history"][0])
            elif isinstance(o, dict):
                for v in o.values():
                    walk(v)
            elif isinstance(o, (list, tuple)):
                for v in o:
                    walk(v)

        if nodes:
            walk(nodes[0].get("args", []) if isinstance(nodes[0], dict) else nodes[0])
        out[l["name"]] = tuple(names)
    return out


def assign(keras_model, tfm, tfjs, mapping: dict[str, str]) -> int:
    """Set every Keras layer's weights from the nsfwjs arrays; returns the number of tensors set."""
    by_layer = {l.name: l for l in tfjs.layers(tfm)}
    inverse = {k: n for n, k in mapping.items()}
    k_inbound = keras_inbound(keras_model)
    n = 0
    for layer in keras_model.layers:
        src = by_layer[inverse[layer.name]]
        want = tuple(mapping[i] for i in src.inbound)
        if want != k_inbound[layer.name]:
            raise SystemExit(f"topology differs at {src.name} -> {layer.name}: inputs {want} vs Keras {k_inbound[layer.name]}")
        if src.class_name != type(layer).__name__:
            raise SystemExit(f"{src.name} is {src.class_name} but {layer.name} is {type(layer).__name__}")
        current = layer.get_weights()
        if not current:
            continue
        # Keras orders BN weights gamma, beta, moving_mean, moving_variance (without gamma here: scale=False).
        order = {"Conv2D": ["kernel"], "BatchNormalization": ["gamma", "beta", "moving_mean", "moving_variance"]}
        names = [f"{src.name}/{w}" for w in order[src.class_name] if f"{src.name}/{w}" in tfm.weights]
        new = [tfm.weights[w] for w in names]
        if [a.shape for a in new] != [a.shape for a in current]:
            raise SystemExit(f"{src.name} -> {layer.name}: shapes {[a.shape for a in new]} vs Keras {[a.shape for a in current]}")
        layer.set_weights(new)
        n += len(new)
    return n


def topology_check(tfm, tfjs, keras, base_outputs: dict[str, np.ndarray], x299: np.ndarray) -> dict:
    """Rebuild the nsfwjs model from its own JSON and compare its mixed activations at 299."""
    # The Keras 2.2.4 JSON names its class "Model", which Keras 3's model_from_json no longer
    # resolves; Model.from_config on the inner config builds the same functional graph (Keras 3
    # still reads the legacy [[name, node, tensor, kwargs]] inbound_nodes).
    try:
        own = keras.Model.from_config(tfm.topology["model_config"]["config"])
    except Exception as e:  # report rather than lose the reference
        return {"nsfwjs_topology": f"failed: {type(e).__name__}: {str(e)[:300]}"}
    for layer in own.layers:
        ws = layer.get_weights()
        if ws:
            order = ["kernel", "bias"] if type(layer).__name__ in ("Conv2D", "Dense") else ["gamma", "beta", "moving_mean", "moving_variance"]
            layer.set_weights([tfm.weights[f"{layer.name}/{w}"] for w in order if f"{layer.name}/{w}" in tfm.weights])
    sub = keras.Model(own.inputs, [own.get_layer(n).output for n in LAYERS])
    outs = sub([x299], training=False)
    diffs = {n: float(np.max(np.abs(np.asarray(o) - base_outputs[n]))) for n, o in zip(LAYERS, outs)}
    probs = np.asarray(own([x299], training=False))
    return {"nsfwjs_topology": "ok (keras.Model.from_config)", "max_abs_diff_vs_applications_299": diffs, "nsfwjs_head_probs_299": probs.tolist()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--package", help="nsfwjs-4.4.0.tgz, package folder or node_modules (default: the cache)")
    ap.add_argument("--out", required=True, help="the .npz to write")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    tfjs = load_tfjs()
    tfm = tfjs.load(args.package)
    t_load = time.perf_counter() - t0

    import keras  # here, not at import: pytest collects this file's doctests without TensorFlow
    import tensorflow as tf

    base = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(None, None, 3))
    nsfw_layers = tfjs.layers(tfm)
    mapping = name_map(nsfw_layers, base.layers)
    missing = [l.name for l in base.layers if l.name not in mapping.values()]
    if missing:
        raise SystemExit(f"Keras layers with no nsfwjs partner: {missing[:5]}")
    n_set = assign(base, tfm, tfjs, mapping)
    extra = sorted({l.name for l in nsfw_layers} - set(mapping))
    print(f"set {n_set} tensors on {len(base.layers)} Keras layers; nsfwjs layers not in the base model: {extra}")

    probe = keras.Model(base.input, [base.get_layer(n).output for n in LAYERS])
    arrays: dict[str, np.ndarray] = {}
    outs299 = {}
    t1 = time.perf_counter()
    for size in SIZES:
        x = inputs(size)
        outs = [np.asarray(o) for o in probe(x, training=False)]
        arrays[f"input_{size}"] = x.transpose(0, 3, 1, 2)
        for name, o in zip(LAYERS, outs):
            arrays[f"{name}_{size}"] = o.transpose(0, 3, 1, 2).astype(np.float32)
            if size == 299:
                outs299[name] = o
        print(f"{size}x{size}: " + ", ".join(f"{n} {tuple(arrays[f'{n}_{size}'].shape)}" for n in LAYERS))
    t_run = time.perf_counter() - t1
    check = topology_check(tfm, tfjs, keras, outs299, inputs(299))
    print("nsfwjs topology rebuilt from its JSON:", json.dumps({k: v for k, v in check.items() if k != "nsfwjs_head_probs_299"}))

    info = {
        "package": str(tfjs.locate_package(args.package)),
        "tensorflow": tf.__version__, "keras": keras.__version__,
        "layout": "NCHW float32 (Keras NHWC transposed)",
        "inputs": f"numpy default_rng(seed={SEED} + size).uniform(-1, 1, (N={BATCH}, S, S, 3)), float32",
        "layers": list(LAYERS), "sizes": list(SIZES),
        "load_s": round(t_load, 2), "forward_s": round(t_run, 2), **check,
    }
    arrays["name_map"] = np.array(sorted(mapping.items()), dtype=str)
    arrays["info"] = np.array(json.dumps(info))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.npz")
    try:
        np.savez(tmp, **arrays)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
