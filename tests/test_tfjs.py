"""weights.tfjs on small packages written here in nsfwjs's format, and on the real one when available."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from weights import tfjs
from weights.tfjs import TfjsFormatError

# The wrappers below copy the *structure* of nsfwjs 4.4.0's files: a UMD prologue, a
# browserify module table whose module 1 assigns one literal to `n.exports`, and the
# closing `},{}]},{},[1])(1)});`. The prologue mentions `module.exports=a()` and
# `c.exports` on purpose: the reader must skip those.
_PRELUDE = (
    '!function(a){{if("object"==typeof exports&&"undefined"!=typeof module)module.exports=a();'
    'else if("function"==typeof define&&define.amd)define([],a);else{{("undefined"!=typeof window?window:'
    'this).{glob}=a()}}}}(function(){{return function a(n,i,e){{function t(o,s){{if(!i[o]){{'
    'var c=i[o]={{exports:{{}}}};n[o][0].call(c.exports,function(a){{return t(n[o][1][a]||a)}},c,c.exports,a,n,i,e)}}'
    "return i[o].exports}}for(var o=0;o<e.length;o++)t(e[o]);return t}}({{1:[function(a,n,i){{n.exports="
)
_POSTLUDE = "},{}]},{},[1])(1)});"


def js_literal(obj) -> str:
    """A minifier-style JS literal: bare keys, !0/!1, numbers without a leading 0."""
    if obj is True:
        return "!0"
    if obj is False:
        return "!1"
    if obj is None:
        return "null"
    if isinstance(obj, float):
        r = repr(obj)
        return r.replace("0.", ".", 1) if r.startswith(("0.", "-0.")) else r
    if isinstance(obj, (int, str)):
        return json.dumps(obj)
    if isinstance(obj, list):
        return "[" + ",".join(map(js_literal, obj)) + "]"
    return "{" + ",".join(f"{k}:{js_literal(v)}" for k, v in obj.items()) + "}"


def wrap(literal: str, glob: str) -> str:
    return _PRELUDE.format(glob=glob) + literal + _POSTLUDE


def _layer(name, cls, inbound, **config):
    return {
        "name": name,
        "class_name": cls,
        "config": {"name": name, **config},
        "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else [],
    }


TOPOLOGY = {
    "keras_version": "2.2.4",
    "backend": "tensorflow",
    "model_config": {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": [
                _layer("input_1", "InputLayer", [], batch_input_shape=[None, 5, 5, 3], dtype="float32", sparse=False),
                _layer("conv2d_1", "Conv2D", ["input_1"], trainable=False, filters=4, kernel_size=[3, 3],
                       strides=[1, 1], padding="valid", data_format="channels_last", dilation_rate=[1, 1],
                       activation="linear", use_bias=False),
                _layer("batch_normalization_1", "BatchNormalization", ["conv2d_1"], trainable=False, axis=3,
                       momentum=0.99, epsilon=0.001, center=True, scale=False),
                _layer("activation_1", "Activation", ["batch_normalization_1"], trainable=False, activation="relu"),
                _layer("flatten_1", "Flatten", ["activation_1"], trainable=True),
                _layer("dense_1", "Dense", ["flatten_1"], trainable=True, units=2, activation="softmax", use_bias=True),
            ],
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["dense_1", 0, 0]],
        },
    },
}

QUANT = {  # name: (shape, min, scale) -- uint8-quantized like every nsfwjs tensor
    "conv2d_1/kernel": ([3, 3, 3, 4], -0.75, 0.00588),
    "batch_normalization_1/beta": ([4], -0.5, 0.004),
    "batch_normalization_1/moving_mean": ([4], -1.25, 0.01),
    "batch_normalization_1/moving_variance": ([4], 0.01, 0.02),
}
FLOAT = {"dense_1/kernel": [36, 2], "dense_1/bias": [2]}  # unquantized float32 entries
SHARD = 64  # bytes per shard, as the converter's fixed shard size (4 MiB in nsfwjs)


def make_tensors(seed: int = 0) -> tuple[list[dict], bytes, dict[str, np.ndarray]]:
    """Manifest entries, their concatenated bytes and the values they must decode to."""
    rng = np.random.default_rng(seed)
    entries, blob, expect = [], b"", {}
    for name, (shape, lo, scale) in QUANT.items():
        q = rng.integers(0, 256, int(np.prod(shape)), dtype=np.uint8)
        entries.append({"name": name, "shape": shape, "dtype": "float32",
                        "quantization": {"min": lo, "scale": scale, "dtype": "uint8"}})
        blob += q.tobytes()
        expect[name] = (q.astype(np.float64) * scale + lo).astype(np.float32).reshape(shape)  # TF.js's formula
    for name, shape in FLOAT.items():
        v = rng.standard_normal(shape).astype(np.float32)
        entries.append({"name": name, "shape": shape, "dtype": "float32"})
        blob += v.tobytes()
        expect[name] = v
    return entries, blob, expect


def write_package(root: Path, version: str = "4.4.0", entries=None, blob=None,
                  shard_text=None) -> tuple[Path, dict[str, np.ndarray]]:
    """A fake nsfwjs package folder at root/package; returns it and the expected weights."""
    e0, b0, expect = make_tensors()
    entries = e0 if entries is None else entries
    blob = b0 if blob is None else blob
    pkg = root / "package"
    model_dir = pkg / tfjs.MODEL_DIR
    model_dir.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "nsfwjs", "version": version}))
    shards = [blob[i:i + SHARD] for i in range(0, len(blob), SHARD)]
    paths = [f"group1-shard{i + 1}of{len(shards)}" for i in range(len(shards))]
    model = {"modelTopology": TOPOLOGY, "weightsManifest": [{"paths": paths, "weights": entries}]}
    (model_dir / "model.min.js").write_text(wrap(js_literal(model), "model"))
    for p, data in zip(paths, shards):
        text = base64.b64encode(data).decode() if shard_text is None else shard_text(p, data)
        (model_dir / f"{p}.min.js").write_text(wrap(json.dumps(text), p.replace("-", "_")))
    return pkg, expect


def make_tgz(pkg: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(pkg, arcname="package")
    return dest


TOTAL = len(make_tensors()[1])  # 416 bytes
N = -(-TOTAL // SHARD)  # shards


@pytest.fixture()
def fake(tmp_path):
    return write_package(tmp_path)


# --------------------------------------------------------------------------- values


def test_round_trip_values(fake):
    pkg, expect = fake
    m = tfjs.load(pkg)
    assert set(m.weights) == set(expect)
    for name, want in expect.items():
        assert m.weights[name].dtype == np.float32 and m.weights[name].shape == want.shape
        np.testing.assert_array_equal(m.weights[name], want, err_msg=name)


def test_dequantization_formula_by_hand(tmp_path):
    entries = [{"name": "conv2d_1/kernel", "shape": [3, 3, 3, 4], "dtype": "float32",
                "quantization": {"min": -1.0, "scale": 0.5, "dtype": "uint8"}}]
    rest_entries, rest_blob, _ = make_tensors()
    pkg, _ = write_package(tmp_path, entries=entries + rest_entries[1:],
                           blob=bytes([0, 1, 2, 255] * 27) + rest_blob[108:])
    k = tfjs.load(pkg).weights["conv2d_1/kernel"].ravel()
    assert k[:4].tolist() == [-1.0, -0.5, 0.0, 126.5]


def test_tgz_folder_and_node_modules_agree(fake, tmp_path):
    pkg, expect = fake
    tgz = make_tgz(pkg, tmp_path / "nsfwjs-4.4.0.tgz")
    nm = tmp_path / "proj" / "node_modules"
    shutil.copytree(pkg, nm / "nsfwjs")
    assert tfjs.locate_package(nm) == nm / "nsfwjs"
    assert tfjs.locate_package(tmp_path) == pkg  # the folder `tar xzf` made
    assert tfjs.locate_package(tgz) == tgz
    models = [tfjs.load(p) for p in (pkg, tgz, nm, nm / "nsfwjs", tmp_path)]
    for m in models:
        assert m.topology == models[0].topology and m.trainable == models[0].trainable
        assert all(np.array_equal(m.weights[k], expect[k]) for k in expect)


def test_layers_and_trainable(fake):
    m = tfjs.load(fake[0])
    ls = tfjs.layers(m)
    assert [l.name for l in ls] == [l["name"] for l in TOPOLOGY["model_config"]["config"]["layers"]]
    assert m.trainable == {"input_1": True, "conv2d_1": False, "batch_normalization_1": False,
                           "activation_1": False, "flatten_1": True, "dense_1": True}
    conv, bn = ls[1], ls[2]
    assert conv.inbound == ("input_1",) and bn.inbound == ("conv2d_1",)
    assert conv.config["kernel_size"] == [3, 3] and conv.config["padding"] == "valid"
    assert bn.config["epsilon"] == 0.001 and bn.config["scale"] is False and bn.config["center"] is True
    assert conv.weights == ("conv2d_1/kernel",)
    assert conv.summary() == "conv2d_1 Conv2D filters=4 k=3x3 s=1x1 valid bias=False <- input_1"
    assert tfjs.conv_bn_pairs(m) == [("conv2d_1", "batch_normalization_1")]


def _conv_valid(x_hwc: np.ndarray, k_hwio: np.ndarray) -> np.ndarray:
    kh, kw = k_hwio.shape[:2]
    h, w = x_hwc.shape[0] - kh + 1, x_hwc.shape[1] - kw + 1
    return np.stack([[np.einsum("ijc,ijco->o", x_hwc[a:a + kh, b:b + kw], k_hwio) for b in range(w)]
                     for a in range(h)])


def test_folded_conv_equals_conv_then_batchnorm(fake):
    m = tfjs.load(fake[0])
    x = np.random.default_rng(1).standard_normal((5, 5, 3))
    w = m.weights
    y = _conv_valid(x, w["conv2d_1/kernel"].astype(np.float64))
    bn = "batch_normalization_1"
    want = (y - w[f"{bn}/moving_mean"]) / np.sqrt(w[f"{bn}/moving_variance"] + 0.001) + w[f"{bn}/beta"]
    weight, bias = tfjs.folded_convs(m)["conv2d_1"]
    assert weight.shape == (4, 3, 3, 3) and bias.shape == (4,)
    got = _conv_valid(x, weight.transpose(2, 3, 1, 0).astype(np.float64)) + bias
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_with_gamma():
    k = np.arange(8, dtype=np.float32).reshape(1, 1, 4, 2)
    w, b = tfjs.fold_batchnorm(k, np.array([1.0, 2.0]), np.array([3.0, 0.0]), np.array([0.0, 1.0]),
                               gamma=np.array([2.0, 3.0]), eps=1.0)
    np.testing.assert_allclose(w[:, :, 0, 0], [[0, 2, 4, 6], [3, 9, 15, 21]])
    np.testing.assert_allclose(b, [-1.0, -5.0])


def test_js_literal_subset():
    v, end = tfjs.parse_js_literal('{a:-.5,"b c":[1e-3,2,!0,!1,null,void 0],\'q\':"x\\"y\\u0041",}', 0)
    assert v == {"a": -0.5, "b c": [0.001, 2, True, False, None, None], "q": 'x"yA'}
    with pytest.raises(TfjsFormatError, match="offset"):
        tfjs.parse_js_literal("{a:foo()}")


def test_plain_json_and_binary_shards(tmp_path):
    """tfjs-converter's own output (model.json + binary shards) reads the same way."""
    pkg, expect = write_package(tmp_path)
    d = pkg / tfjs.MODEL_DIR
    for js in d.glob("group1-*.min.js"):
        js.with_name(js.name[: -len(".min.js")]).write_bytes(tfjs.shard_bytes_from_js(js.read_text()))
        js.unlink()
    obj = tfjs.model_json_from_js((d / "model.min.js").read_text())
    (d / "model.min.js").write_text(json.dumps(obj))
    m = tfjs.load(pkg)
    assert all(np.array_equal(m.weights[k], expect[k]) for k in expect)


# --------------------------------------------------------------------------- errors


def test_bad_base64_names_the_shard(tmp_path):
    def text(p: str, data: bytes) -> str:
        good = base64.b64encode(data).decode()
        return good[:10] + "*" + good[11:] if p.startswith("group1-shard2of") else good

    pkg, _ = write_package(tmp_path, shard_text=text)
    with pytest.raises(TfjsFormatError, match=rf"group1-shard2of{N}\.min\.js: the exported string is not valid base64 \(character '\*' at 10\)"):
        tfjs.load(pkg)


def test_missing_shard(fake):
    pkg, _ = fake
    (pkg / tfjs.MODEL_DIR / f"group1-shard3of{N}.min.js").unlink()
    with pytest.raises(TfjsFormatError, match=rf"shard group1-shard3of{N} listed in the manifest is missing"):
        tfjs.load(pkg)


def test_missing_shard_in_tgz(fake, tmp_path):
    pkg, _ = fake
    (pkg / tfjs.MODEL_DIR / f"group1-shard1of{N}.min.js").unlink()
    with pytest.raises(TfjsFormatError, match=rf"nsfwjs-4.4.0.tgz:package/dist/models/inception_v3/group1-shard1of{N}"):
        tfjs.load(make_tgz(pkg, tmp_path / "nsfwjs-4.4.0.tgz"))


def test_truncated_shard_is_a_byte_count_error_naming_it(tmp_path):
    trunc = lambda p, d: base64.b64encode(d[:-3] if "shard2" in p else d).decode()  # noqa: E731
    pkg, _ = write_package(tmp_path, shard_text=trunc)
    with pytest.raises(TfjsFormatError, match=rf"take {TOTAL} bytes, but its shards hold {TOTAL - 3}.*shard\(s\) group1-shard2of{N} differ"):
        tfjs.load(pkg)


def test_extra_bytes_are_a_byte_count_error(tmp_path):
    entries, blob, _ = make_tensors()
    pkg, _ = write_package(tmp_path, blob=blob + b"\0" * 4)
    with pytest.raises(TfjsFormatError, match=rf"weight group 1: the manifest's weights take {TOTAL} bytes, but its shards hold {TOTAL + 4}"):
        tfjs.load(pkg)


def test_wrong_element_count_in_manifest(tmp_path):
    entries, blob, _ = make_tensors()
    entries[1] = {**entries[1], "shape": [5]}  # beta: 5 elements listed, 4 stored
    pkg, _ = write_package(tmp_path, entries=entries, blob=blob)
    with pytest.raises(TfjsFormatError, match=rf"take {TOTAL + 1} bytes, but its shards hold {TOTAL}"):
        tfjs.load(pkg)


def test_shape_inconsistent_with_layer_config(tmp_path):
    entries, blob, _ = make_tensors()
    entries[0] = {**entries[0], "shape": [3, 3, 4, 3]}  # same 108 elements, wrong for filters=4
    pkg, _ = write_package(tmp_path, entries=entries, blob=blob)
    with pytest.raises(TfjsFormatError, match=r"conv2d_1/kernel has shape \[3, 3, 4, 3\] \(108 elements\).*needs \[3, 3, in, 4\]"):
        tfjs.load(pkg)


def test_bad_shape_value(tmp_path):
    entries, blob, _ = make_tensors()
    entries[2] = {**entries[2], "shape": [-4]}
    pkg, _ = write_package(tmp_path, entries=entries, blob=blob)
    with pytest.raises(TfjsFormatError, match=r"moving_mean: shape \[-4\] is not a list of non-negative integers"):
        tfjs.load(pkg)


def test_unsupported_quantization(tmp_path):
    entries, blob, _ = make_tensors()
    entries[0] = {**entries[0], "quantization": {"dtype": "float16"}}
    pkg, _ = write_package(tmp_path, entries=entries, blob=blob)
    with pytest.raises(TfjsFormatError, match=r"conv2d_1/kernel: quantization .*float16.* unsupported"):
        tfjs.load(pkg)


def test_model_file_without_wrapper_or_json(fake):
    pkg, _ = fake
    (pkg / tfjs.MODEL_DIR / "model.min.js").write_text("console.log(1)")
    with pytest.raises(TfjsFormatError, match=r"model.min.js: found no `\.exports=<literal>`"):
        tfjs.load(pkg)


def test_wrong_package_version(tmp_path):
    pkg, _ = write_package(tmp_path, version="4.3.0")
    with pytest.raises(TfjsFormatError, match=r"is nsfwjs@4.3.0, expected nsfwjs@4.4.0"):
        tfjs.locate_package(pkg)
    with pytest.raises(TfjsFormatError, match=r"nsfwjs-4.3.0.tgz:package/package.json is nsfwjs@4.3.0, expected nsfwjs@4.4.0"):
        tfjs.load(make_tgz(pkg, tmp_path / "nsfwjs-4.3.0.tgz"))


def test_not_a_package(tmp_path):
    with pytest.raises(TfjsFormatError, match="holds no package.json"):
        tfjs.locate_package(tmp_path)
    with pytest.raises(TfjsFormatError, match="does not exist"):
        tfjs.locate_package(tmp_path / "nope.tgz")
    (tmp_path / "x.tgz").write_bytes(b"not gzip")
    with pytest.raises(TfjsFormatError, match="x.tgz is not a readable .tgz"):
        tfjs.locate_package(tmp_path / "x.tgz")


# --------------------------------------------------------------------------- fetching


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CIRCUITS_CACHE", str(cache))
    return cache


def _fake_npm(bindir: Path, script: str) -> None:
    bindir.mkdir(exist_ok=True)
    npm = bindir / "npm"
    npm.write_text("#!/bin/sh\n" + script)
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_npm_missing_fails_fast_with_advice(empty_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    t = time.perf_counter()
    with pytest.raises(TfjsFormatError, match=r"npm is not on PATH.*`npm pack nsfwjs@4.4.0` on a machine with internet"):
        tfjs.locate_package()
    assert time.perf_counter() - t < 2
    assert _leftovers(empty_cache) == []


def test_npm_failure_reports_npm_error_and_caches_nothing(empty_cache, tmp_path, monkeypatch):
    _fake_npm(tmp_path / "bin", 'echo "npm error code ENOTFOUND" >&2\necho "npm error A complete log of this run" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + "/usr/bin:/bin")
    with pytest.raises(TfjsFormatError, match=r"failed \(exit 1: npm error code ENOTFOUND\).*pass the nsfwjs-4.4.0.tgz path"):
        tfjs.locate_package()
    assert _leftovers(empty_cache) == []


def test_npm_hanging_times_out(empty_cache, tmp_path, monkeypatch):
    _fake_npm(tmp_path / "bin", "exec sleep 30\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + "/usr/bin:/bin")
    monkeypatch.setattr(tfjs, "NPM_TIMEOUT_S", 0.5)
    t = time.perf_counter()
    with pytest.raises(TfjsFormatError, match=r"did not finish in 0 s.*npm pack nsfwjs@4.4.0"):
        tfjs.locate_package()
    assert time.perf_counter() - t < 10
    assert _leftovers(empty_cache) == []


def test_npm_wrong_tarball_is_not_cached(empty_cache, fake, tmp_path, monkeypatch):
    make_tgz(fake[0], tmp_path / "impostor.tgz")
    _fake_npm(tmp_path / "bin", f'cp "{tmp_path / "impostor.tgz"}" nsfwjs-4.4.0.tgz\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + "/usr/bin:/bin")
    with pytest.raises(TfjsFormatError, match=r"does not match npm's integrity sha512-krC1"):
        tfjs.locate_package()
    assert _leftovers(empty_cache) == []


def test_npm_success_is_checked_and_moved_into_place(empty_cache, fake, tmp_path, monkeypatch):
    tgz = make_tgz(fake[0], tmp_path / "good.tgz")
    monkeypatch.setattr(tfjs, "TARBALL_SHA256", tfjs._sha256(tgz))
    monkeypatch.setattr(tfjs, "TARBALL_INTEGRITY", tfjs._integrity(tgz))
    _fake_npm(tmp_path / "bin", f'cp "{tgz}" nsfwjs-4.4.0.tgz\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + "/usr/bin:/bin")
    assert tfjs.locate_package() == empty_cache / tfjs.TARBALL
    assert _leftovers(empty_cache) == [tfjs.TARBALL]  # no temporary folder left behind
    assert np.array_equal(tfjs.load().weights["dense_1/bias"], fake[1]["dense_1/bias"])
    (tmp_path / "bin" / "npm").unlink()  # the cached copy is used without npm
    assert tfjs.locate_package() == empty_cache / tfjs.TARBALL


def test_cached_tarball_checked_against_pin(empty_cache, fake):
    make_tgz(fake[0], empty_cache.parent / "x.tgz")
    empty_cache.mkdir()
    shutil.copy(empty_cache.parent / "x.tgz", empty_cache / tfjs.TARBALL)
    with pytest.raises(TfjsFormatError, match=rf"has SHA-256 [0-9a-f]{{64}}, expected {tfjs.TARBALL_SHA256}.*delete it"):
        tfjs.locate_package()


# --------------------------------------------------------------------------- the real package


_REAL_LOAD_S: list[float] = []


@pytest.fixture(scope="module")
def real() -> tfjs.TfjsModel:
    try:
        path = tfjs.locate_package()
    except TfjsFormatError as e:
        pytest.skip(f"nsfwjs@4.4.0 not cached in {tfjs.cache_dir()} and npm could not fetch it: {e}")
    t = time.perf_counter()
    m = tfjs.read_package(path)
    _REAL_LOAD_S.append(time.perf_counter() - t)
    return m


def test_real_package_tensors(real):
    assert len(real.weights) == 382
    assert sum(tfjs._nbytes(e) for g in real.manifest for e in g["weights"]) == 22_360_869
    assert all(e["quantization"]["dtype"] == "uint8" for g in real.manifest for e in g["weights"])
    assert [p for g in real.manifest for p in g["paths"]] == [f"group1-shard{i}of6" for i in range(1, 7)]
    assert real.weights["conv2d_1/kernel"].shape == (3, 3, 3, 32)


def test_real_package_loads_fast(real):
    assert _REAL_LOAD_S[0] < 5.0


def test_real_package_trainable(real):
    ls = tfjs.layers(real)
    assert len(ls) == 318 and ls[0].class_name == "InputLayer"
    assert [l.trainable for l in ls[1:168]] == [False] * 167
    assert (ls[167].name, ls[168].name) == ("activation_55", "conv2d_56")
    assert all(l.trainable for l in ls[168:])


def test_real_package_conv_bn_facts(real):
    ls = tfjs.layers(real)
    convs = [l for l in ls if l.class_name == "Conv2D"]
    bns = [l for l in ls if l.class_name == "BatchNormalization"]
    assert len(convs) == len(bns) == 94
    assert all(c.config["use_bias"] is False and c.config["dilation_rate"] == [1, 1] for c in convs)
    assert all((b.config["epsilon"], b.config["scale"], b.config["center"]) == (0.001, False, True) for b in bns)
    assert not any(w.endswith("/gamma") for w in real.weights)
    assert len(tfjs.conv_bn_pairs(real)) == 94
    assert sorted({(c.config["padding"], tuple(c.config["strides"])) for c in convs}) == [
        ("same", (1, 1)), ("valid", (1, 1)), ("valid", (2, 2))]
    w, b = tfjs.folded_convs(real)["conv2d_1"]
    assert w.shape == (32, 3, 3, 3) and b.shape == (32,) and np.isfinite(w).all()
