"""Read the Keras InceptionV3 that npm's `nsfwjs@4.4.0` ships in TensorFlow.js layers format.

The package holds, under `dist/models/inception_v3/`, a `model.min.js` (the Keras
model JSON and the weights manifest, as a JavaScript object literal inside a
browserify/UMD wrapper) and six `group1-shardNof6.min.js` (each the same wrapper
around one base64 string of that shard's bytes). Nothing here runs JavaScript: the
literal is parsed by a small parser for the JSON-like subset minifiers emit
(unquoted keys, `!0`/`!1`, `.5`).

This module imports only numpy and the standard library, so that the Keras
reference harness (`tests/keras_reference.py`, run under a TensorFlow env without
torch) can load it by file path.

Example:
    >>> from weights import tfjs
    >>> m = tfjs.load()                                   # doctest: +SKIP
    >>> len(m.weights), m.weights["conv2d_1/kernel"].shape  # doctest: +SKIP
    (382, (3, 3, 3, 32))
    >>> w, b = tfjs.folded_convs(m)["conv2d_1"]           # doctest: +SKIP
    >>> w.shape, b.shape                                  # doctest: +SKIP
    ((32, 3, 3, 3), (32,))
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

__all__ = [
    "TfjsFormatError",
    "TfjsModel",
    "Layer",
    "PACKAGE",
    "VERSION",
    "TARBALL",
    "TARBALL_SHA256",
    "TARBALL_INTEGRITY",
    "MODEL_DIR",
    "cache_dir",
    "locate_package",
    "read_package",
    "load",
    "parse_js_literal",
    "model_json_from_js",
    "shard_bytes_from_js",
    "decode_weights",
    "layers",
    "conv_bn_pairs",
    "fold_batchnorm",
    "folded_convs",
]

PACKAGE = "nsfwjs"
VERSION = "4.4.0"
TARBALL = f"{PACKAGE}-{VERSION}.tgz"
# Pinned from the registry download of 2026-12-02; npm's own integrity string for
# the same tarball is TARBALL_INTEGRITY (both are checked after `npm pack`).
TARBALL_SHA256 = "585cd178f3b994337c4d10a87b080d342fc52f8b9bf0085c4d1f345a3a1c5382"
TARBALL_INTEGRITY = "sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2RvkwPtp0R8Aa7dc+MA=="
MODEL_DIR = "dist/models/inception_v3"
MODEL_FILE = "model.min.js"
# `npm pack` of a 25 MB tarball takes about a second online; offline it fails in
# well under this, but a wedged proxy must not hang the caller.
NPM_TIMEOUT_S = 120.0

_HELP = (
    f"get it with `npm pack {PACKAGE}@{VERSION}` on a machine with internet access, then pass the "
    f"{TARBALL} path (or an unpacked package / node_modules folder) or copy it to {{cache}}"
)


class TfjsFormatError(ValueError):
    """A TF.js model file, shard or package that is missing, damaged or not the one expected."""


# --------------------------------------------------------------------------- package


def cache_dir() -> Path:
    """Where the tarball is kept: $CIRCUITS_CACHE or ~/.cache/circuits (as weights.download)."""
    return Path(os.environ.get("CIRCUITS_CACHE") or "~/.cache/circuits").expanduser()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _integrity(path: Path) -> str:
    h = hashlib.sha512()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha512-" + base64.b64encode(h.digest()).decode()


def _check_manifest(pkg: dict, where: str) -> None:
    name, version = pkg.get("name"), pkg.get("version")
    if name != PACKAGE or version != VERSION:
        raise TfjsFormatError(f"{where} is {name}@{version}, expected {PACKAGE}@{VERSION}")


def _check_tarball_digest(path: Path) -> None:
    digest = _sha256(path)
    if digest != TARBALL_SHA256:
        raise TfjsFormatError(
            f"{path} has SHA-256 {digest}, expected {TARBALL_SHA256} (the published {TARBALL}); "
            f"delete it to fetch it again"
        )


def _package_dir(path: Path) -> Path | None:
    """The folder holding nsfwjs's package.json, for the folder layouts accepted."""
    for cand in (path, path / "package", path / PACKAGE, path / "node_modules" / PACKAGE):
        if (cand / "package.json").is_file():
            return cand
    return None


def locate_package(path: str | os.PathLike | None = None) -> Path:
    """The nsfwjs@4.4.0 package: a `.tgz` or the folder holding its package.json.

    `path` may be a tarball from `npm pack`, an unpacked package folder (or the folder
    `tar xzf` made, holding `package/`), or a `node_modules` folder. Its package.json
    must say nsfwjs 4.4.0. With `path=None` the tarball in `cache_dir()` is used
    (its SHA-256 checked against TARBALL_SHA256), fetched with `npm pack` if absent.

    >>> locate_package()                                  # doctest: +SKIP
    PosixPath('/home/me/.cache/circuits/nsfwjs-4.4.0.tgz')
    >>> locate_package("node_modules")                    # doctest: +SKIP
    PosixPath('node_modules/nsfwjs')
    """
    if path is None:
        return _cached_tarball()
    path = Path(path).expanduser()
    if path.is_dir():
        pkg_dir = _package_dir(path)
        if pkg_dir is None:
            raise TfjsFormatError(
                f"{path} holds no package.json (looked in it, package/, {PACKAGE}/ and node_modules/{PACKAGE}/); "
                f"expected an unpacked {PACKAGE}@{VERSION} package or a node_modules folder"
            )
        try:
            pkg = json.loads((pkg_dir / "package.json").read_text())
        except (OSError, ValueError) as e:
            raise TfjsFormatError(f"{pkg_dir / 'package.json'} is not readable JSON: {e}") from None
        _check_manifest(pkg, str(pkg_dir / "package.json"))
        return pkg_dir
    if path.is_file():
        with _open_tar(path) as tar:
            member = _tar_package_json(tar, path)
            _check_manifest(_tar_json(tar, member, path), f"{path}:{member.name}")
        return path
    raise TfjsFormatError(f"{path} does not exist; expected a {TARBALL}, a package folder or a node_modules folder")


@contextlib.contextmanager
def _open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    try:
        tar = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise TfjsFormatError(f"{path} is not a readable .tgz ({e}); expected the tarball `npm pack` writes") from None
    with tar:
        yield tar


def _tar_package_json(tar: tarfile.TarFile, path: Path) -> tarfile.TarInfo:
    # npm tarballs put everything under one top folder, normally package/.
    for m in tar:
        parts = m.name.split("/")
        if len(parts) == 2 and parts[1] == "package.json" and m.isfile():
            return m
    raise TfjsFormatError(f"{path} holds no <top>/package.json; expected an npm package tarball")


def _tar_json(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> dict:
    f = tar.extractfile(member)
    try:
        return json.loads(f.read()) if f else {}
    except ValueError as e:
        raise TfjsFormatError(f"{path}:{member.name} is not valid JSON: {e}") from None


def _cached_tarball() -> Path:
    cache = cache_dir()
    target = cache / TARBALL
    if target.exists():
        _check_tarball_digest(target)
        return target
    npm = shutil.which("npm")
    help_ = _HELP.format(cache=target)
    if npm is None:
        raise TfjsFormatError(f"{target} is not cached and npm is not on PATH; {help_}")
    cache.mkdir(parents=True, exist_ok=True)
    # A private folder in the cache, so the final os.replace never crosses filesystems.
    with tempfile.TemporaryDirectory(dir=cache, prefix=".npm-pack-") as tmp:
        try:
            done = subprocess.run(
                [npm, "pack", f"{PACKAGE}@{VERSION}", "--json", "--fetch-retries=0", "--fetch-timeout=30000"],
                cwd=tmp, capture_output=True, text=True, timeout=NPM_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise TfjsFormatError(f"`npm pack {PACKAGE}@{VERSION}` did not finish in {NPM_TIMEOUT_S:.0f} s; {help_}") from None
        except OSError as e:
            raise TfjsFormatError(f"could not run npm ({e}); {help_}") from None
        got = Path(tmp) / TARBALL
        if done.returncode != 0 or not got.is_file():
            # npm's last line only points at its debug log; the first error lines say what went wrong.
            lines = [l for l in done.stderr.splitlines() if l.strip() and "complete log" not in l]
            last = " / ".join(lines[:2]) or "no output"
            raise TfjsFormatError(f"`npm pack {PACKAGE}@{VERSION}` failed (exit {done.returncode}: {last}); {help_}")
        if _integrity(got) != TARBALL_INTEGRITY:
            raise TfjsFormatError(f"downloaded {TARBALL} does not match npm's integrity {TARBALL_INTEGRITY}; not cached")
        _check_tarball_digest(got)
        os.replace(got, target)
    return target


# --------------------------------------------------------------------------- JS literal


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\\\n]*(?:\\.[^'\\\n]*)*')
    | (?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w$.]))
    | (?P<word>!0|!1|void\s+0|[A-Za-z_$][\w$]*)
    | (?P<punct>[{}\[\],:])
    )""",
    re.VERBOSE,
)
_WORDS: dict[str, Any] = {
    "!0": True, "!1": False, "true": True, "false": False, "null": None,
    "Infinity": float("inf"), "NaN": float("nan"),
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.DOTALL)


def _unescape(body: str) -> str:
    def one(m: re.Match) -> str:
        e = m.group(1)
        if e[0] in "ux" and len(e) > 1:
            return chr(int(e.strip("ux{}"), 16))
        return _ESCAPES.get(e, e)

    return _ESCAPE.sub(one, body) if "\\" in body else body


class _Parser:
    def __init__(self, text: str, what: str):
        self.text, self.what = text, what

    def fail(self, pos: int, expected: str) -> TfjsFormatError:
        line = self.text.count("\n", 0, pos) + 1
        near = self.text[pos:pos + 40].strip() or "end of file"
        return TfjsFormatError(f"{self.what}: expected {expected} at offset {pos} (line {line}), found {near!r}")

    def token(self, pos: int) -> tuple[str, str, int]:
        m = _TOKEN.match(self.text, pos)
        if m is None or m.lastgroup is None:
            raise self.fail(pos, "a JSON-like value")
        return m.lastgroup, m.group(m.lastgroup), m.end()

    def value(self, pos: int) -> tuple[Any, int]:
        kind, tok, end = self.token(pos)
        if kind == "str":
            return _unescape(tok[1:-1]), end
        if kind == "num":
            return (float(tok) if any(c in tok for c in ".eE") else int(tok)), end
        if kind == "word":
            if tok.startswith("void"):  # `void 0`, the minified undefined
                return None, end
            if tok in _WORDS:
                return _WORDS[tok], end
            raise self.fail(pos, "a literal value (not an expression)")
        if tok == "{":
            return self.obj(end)
        if tok == "[":
            return self.arr(end)
        raise self.fail(pos, "a value")

    def obj(self, pos: int) -> tuple[dict, int]:
        out: dict[str, Any] = {}
        kind, tok, end = self.token(pos)
        if tok == "}":
            return out, end
        while True:
            kind, tok, end = self.token(pos)
            if kind not in ("str", "num", "word") or tok.startswith("!"):
                raise self.fail(pos, "an object key")
            key = _unescape(tok[1:-1]) if kind == "str" else tok
            kind, tok, pos = self.token(end)
            if tok != ":":
                raise self.fail(end, "':'")
            out[key], pos = self.value(pos)
            kind, tok, end = self.token(pos)
            if tok == "}":
                return out, end
            if tok != ",":
                raise self.fail(pos, "',' or '}'")
            pos = end
            if self.token(pos)[1] == "}":  # trailing comma
                return out, self.token(pos)[2]

    def arr(self, pos: int) -> tuple[list, int]:
        out: list[Any] = []
        if self.token(pos)[1] == "]":
            return out, self.token(pos)[2]
        while True:
            v, pos = self.value(pos)
            out.append(v)
            kind, tok, end = self.token(pos)
            if tok == "]":
                return out, end
            if tok != ",":
                raise self.fail(pos, "',' or ']'")
            pos = end
            if self.token(pos)[1] == "]":
                return out, self.token(pos)[2]


def parse_js_literal(text: str, pos: int = 0, what: str = "literal") -> tuple[Any, int]:
    """Parse one JavaScript literal (JSON plus what minifiers write) at `pos`; (value, end offset).

    >>> parse_js_literal('{a:[1,.5,-2e-3],"b":!0,c:!1,d:null}')[0]
    {'a': [1, 0.5, -0.002], 'b': True, 'c': False, 'd': None}
    """
    return _Parser(text, what).value(pos)


# `X.exports=` followed by a literal: the browserify module body. The UMD prologue's
# `module.exports=f()` is followed by a call, so it never matches.
_EXPORTS = re.compile(r"\.exports\s*=\s*(?=[{\[\"'])")


def _exported_literal(text: str, what: str) -> Any:
    starts = [m.end() for m in _EXPORTS.finditer(text)]
    if not starts:
        if text.lstrip().startswith("{"):  # a plain model.json
            return parse_js_literal(text, 0, what)[0]
        raise TfjsFormatError(
            f"{what}: found no `.exports=<literal>` (the browserify/UMD wrapper nsfwjs uses) and it is not plain JSON"
        )
    if len(starts) > 1:
        raise TfjsFormatError(f"{what}: {len(starts)} `.exports=<literal>` assignments, expected one module")
    return parse_js_literal(text, starts[0], what)[0]


def model_json_from_js(text: str, what: str = MODEL_FILE) -> dict:
    """The `{modelTopology, weightsManifest}` object inside a model.min.js (or a plain model.json).

    >>> wrapped = '!function(a){}(function(){return{1:[function(a,n,i){n.exports={modelTopology:{},weightsManifest:[]}},{}]}});'
    >>> model_json_from_js(wrapped)
    {'modelTopology': {}, 'weightsManifest': []}
    """
    obj = _exported_literal(text, what)
    if not isinstance(obj, dict) or "modelTopology" not in obj or "weightsManifest" not in obj:
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise TfjsFormatError(f"{what}: exported value has {keys}, expected an object with modelTopology and weightsManifest")
    return obj


def shard_bytes_from_js(text: str, what: str = "shard") -> bytes:
    """The bytes of one weight shard: the base64 string a `group1-shardNofM.min.js` exports.

    >>> shard_bytes_from_js('!function(d){}(function(){return{1:[function(d,h,Z){h.exports="AAEC"},{}]}});')
    b'\\x00\\x01\\x02'
    """
    s = _exported_literal(text, what)
    if not isinstance(s, str):
        raise TfjsFormatError(f"{what}: exports a {type(s).__name__}, expected one base64 string")
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        bad = re.search(r"[^A-Za-z0-9+/=]", s)
        where = f" (character {s[bad.start()]!r} at {bad.start()})" if bad else f" (length {len(s)})"
        raise TfjsFormatError(f"{what}: the exported string is not valid base64{where}: {e}") from None


# --------------------------------------------------------------------------- weights

_DTYPES = {"float32": np.float32, "int32": np.int32}
_QUANT = {"uint8": np.uint8, "uint16": np.uint16}


def _nbytes(entry: dict) -> int:
    n = int(np.prod(entry["shape"], dtype=np.int64))
    q = entry.get("quantization")
    return n * (np.dtype(_QUANT[q["dtype"]]).itemsize if q else np.dtype(_DTYPES[entry["dtype"]]).itemsize)


def _check_entry(entry: dict, i: int) -> None:
    name = entry.get("name", f"#{i}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise TfjsFormatError(f"manifest weight {name}: shape {shape!r} is not a list of non-negative integers")
    q = entry.get("quantization")
    if q is not None:
        if q.get("dtype") not in _QUANT or "scale" not in q or "min" not in q:
            raise TfjsFormatError(
                f"manifest weight {name}: quantization {q!r} unsupported, expected {{min, scale, dtype: uint8|uint16}}"
            )
    elif entry.get("dtype") not in _DTYPES:
        raise TfjsFormatError(f"manifest weight {name}: dtype {entry.get('dtype')!r}, expected float32 (or quantized)")


def decode_weights(manifest: list[dict], shards: Callable[[str], bytes]) -> dict[str, np.ndarray]:
    """Weights by name, as float32 arrays, from a weightsManifest and a shard reader.

    `shards(path)` returns the bytes of one manifest path. Quantized entries are
    dequantized as TF.js does: `byte * scale + min` (in double precision, then float32).

    >>> m = [{"paths": ["s1"], "weights": [{"name": "w", "shape": [2], "dtype": "float32",
    ...       "quantization": {"min": -1.0, "scale": 0.5, "dtype": "uint8"}}]}]
    >>> decode_weights(m, lambda p: bytes([0, 4]))["w"]
    array([-1.,  1.], dtype=float32)
    """
    out: dict[str, np.ndarray] = {}
    for g, group in enumerate(manifest):
        entries = group.get("weights", [])
        for i, e in enumerate(entries):
            _check_entry(e, i)
        parts = [shards(p) for p in group.get("paths", [])]
        data = b"".join(parts)
        need = sum(_nbytes(e) for e in entries)
        if len(data) != need:
            raise TfjsFormatError(_size_message(g, group.get("paths", []), parts, need))
        offset = 0
        for e in entries:
            n = _nbytes(e)
            raw = data[offset:offset + n]
            offset += n
            q = e.get("quantization")
            if q:
                v = np.frombuffer(raw, dtype=_QUANT[q["dtype"]]).astype(np.float64) * q["scale"] + q["min"]
                arr = v.astype(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=_DTYPES[e["dtype"]]).astype(np.float32)
            if e["name"] in out:
                raise TfjsFormatError(f"manifest weight {e['name']} appears twice")
            out[e["name"]] = arr.reshape(e["shape"])
    return out


def _size_message(g: int, paths: list[str], parts: list[bytes], need: int) -> str:
    sizes = [len(p) for p in parts]
    msg = (
        f"weight group {g + 1}: the manifest's weights take {need:,} bytes, but its shards hold "
        f"{sum(sizes):,} ({', '.join(f'{p}: {s:,}' for p, s in zip(paths, sizes))})"
    )
    # The converter cuts shards of one size and a shorter last one; name the odd one out.
    if len(sizes) > 1:
        full = max(sizes[:-1])
        odd = [p for p, s in zip(paths[:-1], sizes[:-1]) if s != full]
        if sizes[-1] > full:
            odd.append(paths[-1])
        if odd:
            msg += f"; shard(s) {', '.join(odd)} differ from the usual {full:,}-byte shard size (truncated or replaced?)"
    return msg


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Layer:
    """One Keras layer of the topology, in file order.

    `inbound` are the names of the layers feeding it (first node only: InceptionV3
    calls every layer once); `weights` the manifest names of its tensors.
    """

    name: str
    class_name: str
    config: dict
    inbound: tuple[str, ...]
    trainable: bool
    weights: tuple[str, ...] = ()

    def summary(self) -> str:
        """A compact one-line description of the configuration that matters for a port."""
        c, bits = self.config, []
        if self.class_name == "Conv2D":
            bits = [f"filters={c['filters']}", "k={}x{}".format(*c["kernel_size"]),
                    "s={}x{}".format(*c["strides"]), c["padding"], f"bias={c['use_bias']}"]
        elif self.class_name == "BatchNormalization":
            bits = [f"eps={c['epsilon']}", f"scale={c['scale']}", f"center={c['center']}", f"axis={c['axis']}"]
        elif "Pooling2D" in self.class_name and "pool_size" in c:
            bits = ["p={}x{}".format(*c["pool_size"]), "s={}x{}".format(*c["strides"]), c["padding"]]
        elif self.class_name == "Activation":
            bits = [c["activation"]]
        elif self.class_name == "Dense":
            bits = [f"units={c['units']}", c["activation"]]
        return f"{self.name} {self.class_name} {' '.join(map(str, bits))} <- {','.join(self.inbound) or '-'}"


@dataclass(frozen=True)
class TfjsModel:
    """A TF.js layers model: Keras topology, dequantized float32 weights, per-layer trainable flags."""

    topology: dict
    weights: dict[str, np.ndarray]
    trainable: dict[str, bool]
    manifest: list[dict] = field(default_factory=list, repr=False)
    source: str = ""

    def __repr__(self) -> str:
        n = sum(v.size for v in self.weights.values())
        return f"TfjsModel({self.source!r}, {len(self.trainable)} layers, {len(self.weights)} tensors, {n:,} values)"


def _model_layers(topology: dict) -> list[dict]:
    cfg = topology.get("model_config", topology)
    try:
        return cfg["config"]["layers"]
    except (KeyError, TypeError):
        raise TfjsFormatError("modelTopology has no model_config.config.layers; expected a Keras functional model") from None


def _inbound(layer: dict) -> tuple[str, ...]:
    nodes = layer.get("inbound_nodes") or []
    if not nodes:
        return ()
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3 style {"args": ..., "kwargs": ...}
        return tuple(h["config"]["keras_history"][0] for h in _walk_tensors(node.get("args", [])))
    return tuple(entry[0] for entry in node)  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]


def _walk_tensors(obj: Any) -> Iterator[dict]:
    if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
        yield obj
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _walk_tensors(x)


def layers(model: TfjsModel) -> list[Layer]:
    """The layers of `model` in file order, with config, inbound layer names and weight names.

    >>> [l.summary() for l in layers(load())][1]           # doctest: +SKIP
    'conv2d_1 Conv2D filters=32 k=3x3 s=2x2 valid bias=False <- input_1'
    """
    by_layer: dict[str, list[str]] = {}
    for name in model.weights:
        by_layer.setdefault(name.split("/")[0], []).append(name)
    return [
        Layer(
            name=_name(l),
            class_name=l["class_name"],
            config=l.get("config", {}),
            inbound=_inbound(l),
            trainable=model.trainable[_name(l)],
            weights=tuple(by_layer.get(_name(l), ())),
        )
        for l in _model_layers(model.topology)
    ]


def _name(layer: dict) -> str:
    # Keras 2 writes the name beside the config, Keras 3 only inside it.
    return layer.get("name") or layer.get("config", {}).get("name", "")


class _Files:
    """Relative-path access to the model folder inside a tarball or a package folder."""

    def __init__(self, root: Path):
        self.root, self.files = root, {}
        if root.is_file():
            # One sequential pass: random access into a .tgz would decompress from the start each time.
            top, found = None, {}
            with _open_tar(root) as tar:
                for m in tar:
                    parts = m.name.split("/", 1)
                    if len(parts) < 2 or not m.isfile():
                        continue
                    if parts[1] == "package.json":
                        top = parts[0]
                    if parts[1].startswith(MODEL_DIR + "/"):
                        f = tar.extractfile(m)
                        found[(parts[0], parts[1][len(MODEL_DIR) + 1:])] = f.read() if f else b""
            if top is None:
                raise TfjsFormatError(f"{root} holds no <top>/package.json; expected an npm package tarball")
            self.files = {name: data for (t, name), data in found.items() if t == top}
            self.where = f"{root}:{top}/{MODEL_DIR}"
        else:
            self.where = str(root / MODEL_DIR)

    def read(self, name: str) -> bytes | None:
        if self.root.is_file():
            return self.files.get(name)
        p = self.root / MODEL_DIR / name
        return p.read_bytes() if p.is_file() else None


def read_package(path: str | os.PathLike) -> TfjsModel:
    """Read the InceptionV3 in a located package (see `locate_package`); checks everything it reads.

    >>> read_package("/tmp/nsfwjs-4.4.0.tgz")             # doctest: +SKIP
    TfjsModel('/tmp/nsfwjs-4.4.0.tgz', 318 layers, 382 tensors, 22,360,869 values)
    """
    files = _Files(Path(path))
    text = files.read(MODEL_FILE)
    if text is None:
        raise TfjsFormatError(f"{files.where}/{MODEL_FILE} is missing; expected the InceptionV3 model of {PACKAGE}@{VERSION}")
    obj = model_json_from_js(text.decode("utf-8"), f"{files.where}/{MODEL_FILE}")

    def shard(p: str) -> bytes:
        js = files.read(p + ".min.js")
        if js is not None:
            return shard_bytes_from_js(js.decode("ascii", errors="replace"), f"{files.where}/{p}.min.js")
        raw = files.read(p)  # a plain binary shard, as tfjs-converter writes it
        if raw is None:
            raise TfjsFormatError(f"weight shard {p} listed in the manifest is missing: no {files.where}/{p}.min.js (or {p})")
        return raw

    manifest = obj["weightsManifest"]
    weights = decode_weights(manifest, shard)
    topology = obj["modelTopology"]
    # Keras omits the flag where it is the default (the InputLayer).
    trainable = {_name(l): bool(l.get("config", {}).get("trainable", True)) for l in _model_layers(topology)}
    model = TfjsModel(topology, weights, trainable, manifest, str(path))
    _check_shapes(model)
    return model


def _check_shapes(model: TfjsModel) -> None:
    """Every manifest tensor belongs to a layer and has the shape that layer's config implies.

    The byte total alone cannot catch two entries whose shapes were swapped.
    """
    orphans = [w for w in model.weights if w.split("/")[0] not in model.trainable]
    if orphans:
        raise TfjsFormatError(f"manifest weights {orphans[:3]} belong to no layer of the topology")
    for l in layers(model):
        c, shapes = l.config, {w.split("/", 1)[1]: list(model.weights[w].shape) for w in l.weights}
        want: dict[str, str] = {}
        if l.class_name == "Conv2D":
            k = shapes.get("kernel")
            if k is None or len(k) != 4 or k[:2] != list(c["kernel_size"]) or k[3] != c["filters"]:
                want["kernel"] = "[{}, {}, in, {}]".format(*c["kernel_size"], c["filters"])
            if c.get("use_bias") and shapes.get("bias") != [c["filters"]]:
                want["bias"] = f"[{c['filters']}]"
        elif l.class_name == "Dense":
            k = shapes.get("kernel")
            if k is None or len(k) != 2 or k[1] != c["units"]:
                want["kernel"] = f"[in, {c['units']}]"
            if c.get("use_bias") and shapes.get("bias") != [c["units"]]:
                want["bias"] = f"[{c['units']}]"
        elif l.class_name == "BatchNormalization":
            names = ["moving_mean", "moving_variance"] + ["gamma"] * bool(c.get("scale", True)) + ["beta"] * bool(c.get("center", True))
            sizes = {tuple(shapes.get(n, ())) for n in names}
            if len(sizes) != 1 or len(next(iter(sizes))) != 1:
                want = {n: "one [channels] vector shared by " + ", ".join(names) for n in names}
        for n, w in want.items():
            got = shapes.get(n, "missing")
            raise TfjsFormatError(
                f"manifest weight {l.name}/{n} has shape {got} ({int(np.prod(got)) if got != 'missing' else 0} "
                f"elements), but layer {l.name} ({l.summary()}) needs {w}"
            )


def load(path: str | os.PathLike | None = None) -> TfjsModel:
    """`read_package(locate_package(path))`: the nsfwjs@4.4.0 InceptionV3, fetched and cached if needed.

    >>> m = load()                                        # doctest: +SKIP
    >>> m.trainable["conv2d_1"], m.trainable["dense_3"]   # doctest: +SKIP
    (False, True)
    """
    return read_package(locate_package(path))


# --------------------------------------------------------------------------- Keras -> torch


def conv_bn_pairs(model: TfjsModel) -> list[tuple[str, str]]:
    """(Conv2D, the BatchNormalization it feeds) for every Keras conv_bn block, in file order.

    >>> conv_bn_pairs(load())[0]                          # doctest: +SKIP
    ('conv2d_1', 'batch_normalization_1')
    """
    ls = layers(model)
    convs = {l.name for l in ls if l.class_name == "Conv2D"}
    pairs = [(l.inbound[0], l.name) for l in ls if l.class_name == "BatchNormalization" and l.inbound and l.inbound[0] in convs]
    if len(pairs) != len(convs):
        lone = sorted(convs - {c for c, _ in pairs})
        raise TfjsFormatError(f"Conv2D layers {lone[:5]} feed no BatchNormalization; expected conv -> BN for every conv")
    return pairs


def fold_batchnorm(
    kernel_hwio: np.ndarray,
    moving_mean: np.ndarray,
    moving_variance: np.ndarray,
    beta: np.ndarray | None = None,
    gamma: np.ndarray | None = None,
    eps: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """A bias-free Keras conv (HWIO) followed by inference-mode BN, as one torch conv (OIHW, bias).

    BN(y) = gamma * (y - mean) / sqrt(var + eps) + beta; gamma is 1 when the layer has
    `scale=False` (as every BN in keras.applications' InceptionV3), beta 0 when `center=False`.

    >>> k = np.ones((1, 1, 2, 1), np.float32)            # 1x1 conv, 2 inputs -> 1 output
    >>> w, b = fold_batchnorm(k, np.array([1.0]), np.array([3.0]), np.array([0.5]), eps=1.0)
    >>> w.shape, w.ravel().tolist(), b.tolist()
    ((1, 2, 1, 1), [0.5, 0.5], [0.0])
    """
    std = np.sqrt(np.asarray(moving_variance, np.float64) + eps)
    g = np.ones_like(std) if gamma is None else np.asarray(gamma, np.float64)
    b0 = np.zeros_like(std) if beta is None else np.asarray(beta, np.float64)
    k = np.asarray(kernel_hwio, np.float64)
    if k.ndim != 4 or k.shape[3] != std.shape[0]:
        raise TfjsFormatError(f"kernel shape {k.shape} (HWIO) does not match BN size {std.shape[0]}")
    s = g / std
    weight = k.transpose(3, 2, 0, 1) * s[:, None, None, None]
    bias = b0 - np.asarray(moving_mean, np.float64) * s
    return weight.astype(np.float32), bias.astype(np.float32)


def folded_convs(model: TfjsModel) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every conv_bn block folded: Keras conv name -> (weight OIHW float32, bias float32).

    Uses each BN's own epsilon, scale and center flags from the topology.

    >>> w, b = folded_convs(load())["conv2d_94"]          # doctest: +SKIP
    >>> w.shape                                           # doctest: +SKIP
    (192, 2048, 1, 1)
    """
    ls = {l.name: l for l in layers(model)}
    out = {}
    for conv, bn in conv_bn_pairs(model):
        c, cfg, w = ls[conv].config, ls[bn].config, model.weights
        if c.get("use_bias"):
            raise TfjsFormatError(f"{conv} has use_bias=True; fold_batchnorm expects Keras InceptionV3's bias-free convs")
        out[conv] = fold_batchnorm(
            w[f"{conv}/kernel"],
            w[f"{bn}/moving_mean"],
            w[f"{bn}/moving_variance"],
            w[f"{bn}/beta"] if cfg.get("center", True) else None,
            w[f"{bn}/gamma"] if cfg.get("scale", True) else None,
            eps=float(cfg.get("epsilon", 1e-3)),
        )
    return out
