"""Weight files (.pth, .safetensors, Lucid's .pb) and the checked download cache.

The independent references here are: the tensors the test itself wrote (round
trips must be bit-exact); a GraphDef written by the test with its own name mapping
(a regex over the state-dict keys, not `lucid_pb.const_names`) and TensorFlow's
layouts (HWIO kernels, x @ W dense) applied by hand; TensorFlow's conv and matmul
formulas written out in numpy; and hashlib's SHA-256 of the bytes served.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import socket
import threading
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.compat.proto import graph_pb2, node_def_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.util import tensor_util

import weights
from circuits import graph
from circuits.core.model import StateDictError
from weights import checkpoint, download, lucid_pb
from weights.checkpoint import CheckpointError


# --- files written by the test ---------------------------------------------


@pytest.fixture(scope="module")
def sd() -> dict[str, torch.Tensor]:
    """Random weights with non-zero biases (so a bias mix-up would show)."""
    g = torch.Generator().manual_seed(7)
    return {k: torch.randn(s, generator=g) * 0.05 for k, s in graph.parameter_shapes().items()}


def lucid_name(key: str) -> str:
    m = re.fullmatch(r"(.+)_(?:pre_relu_conv|pre_activation_matmul)\.(weight|bias)", key)
    return f"{m[1]}_{'w' if m[2] == 'weight' else 'b'}"


def tf_layout(t: torch.Tensor) -> np.ndarray:
    a = t.numpy()
    if a.ndim == 4:  # OIHW -> HWIO
        return a.transpose(2, 3, 1, 0)
    if a.ndim == 2:  # nn.Linear (out, in) -> TensorFlow's x @ W, (in, out)
        return a.T
    return a


def const_node(name: str, a: np.ndarray, as_float_val: bool = False):
    node = node_def_pb2.NodeDef(name=name, op="Const")
    node.attr["dtype"].type = types_pb2.DT_FLOAT
    if as_float_val:  # the other encoding a GraphDef may use: a repeated float field
        shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in a.shape])
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape, float_val=a.ravel().tolist())
    else:
        proto = tensor_util.make_tensor_proto(np.ascontiguousarray(a, dtype=np.float32))
    node.attr["value"].tensor.CopyFrom(proto)
    return node


def write_graphdef(path: Path, consts: dict[str, np.ndarray], float_val: tuple[str, ...] = ()) -> Path:
    gd = graph_pb2.GraphDef()
    inp = gd.node.add(name="input", op="Placeholder")
    inp.attr["dtype"].type = types_pb2.DT_FLOAT
    for name, a in consts.items():
        gd.node.append(const_node(name, a, name in float_val))
    # Non-weight nodes as in Lucid's graph: an int Const and an op reading a weight.
    gd.node.append(node_def_pb2.NodeDef(name="mixed3a/concat_dim", op="Const"))
    gd.node[-1].attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(np.int32(3)))
    gd.node.append(node_def_pb2.NodeDef(name="conv2d0_pre_relu/conv", op="Conv2D", input=["input", "conv2d0_w"]))
    path.write_bytes(gd.SerializeToString())
    return path


@pytest.fixture(scope="module")
def aux_consts() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "head0_bottleneck_w": rng.standard_normal((1, 1, 508, 128), dtype=np.float32),
        "head0_bottleneck_b": rng.standard_normal(128, dtype=np.float32),
        "softmax0_w": rng.standard_normal((1024, 1008), dtype=np.float32),
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory, sd, aux_consts) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("weights")
    torch.save(sd, d / "w.pth")
    checkpoint.save_safetensors(sd, d / "w.safetensors", {"source": "test"})
    consts = {lucid_name(k): tf_layout(v) for k, v in sd.items()} | aux_consts
    write_graphdef(d / "w.pb", consts, float_val=("conv2d0_b", "softmax2_b"))
    return {"pth": d / "w.pth", "safetensors": d / "w.safetensors", "pb": d / "w.pb"}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == torch.float32 and a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


# --- loading ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "pb"])
def test_each_format_loads_back_bit_exactly(files, sd, fmt):
    """Reference: the tensors the test wrote (for .pb, in TF layouts written by hand)."""
    assert_same(checkpoint.load_file(files[fmt]), sd)
    assert_same(weights.load(files[fmt]), sd)  # the registry reads paths the same way


def test_wrapped_state_dict_is_unwrapped(tmp_path, sd):
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "wrapped.pt")
    assert_same(checkpoint.load_file(tmp_path / "wrapped.pt"), sd)


def test_safetensors_metadata(files):
    assert checkpoint.read_metadata(files["safetensors"]) == {"source": "test"}


def test_pb_names_follow_lucid_convention():
    """The Const names Lucid's graph uses (conv2d0_w, ..., softmax2_b), from the hook names."""
    names = lucid_pb.const_names()
    assert len(names) == len(graph.parameter_shapes()) == 116
    assert all(lucid_name(k) == v for k, v in names.items())
    assert names["mixed3a_3x3_bottleneck_pre_relu_conv.weight"] == "mixed3a_3x3_bottleneck_w"


def test_pb_aux_heads_only_on_request(files, aux_consts):
    sd = lucid_pb.load_pb(files["pb"])
    assert not any(k.startswith(("head", "softmax0")) for k in sd)
    sd2, heads = lucid_pb.load_pb(files["pb"], aux=True)
    assert sorted(heads) == ["head0_bottleneck.bias", "head0_bottleneck.weight", "softmax0.weight"]
    # HWIO -> OIHW and (in, out) -> (out, in), checked element by element.
    w = aux_consts["head0_bottleneck_w"]
    assert heads["head0_bottleneck.weight"].shape == (128, 508, 1, 1)
    assert heads["head0_bottleneck.weight"][5, 17, 0, 0] == w[0, 0, 17, 5]
    assert heads["softmax0.weight"][9, 3] == aux_consts["softmax0_w"][3, 9]


@pytest.fixture(scope="module")
def consts(files) -> dict[str, np.ndarray]:
    return lucid_pb.read_consts(files["pb"])


def test_pb_missing_const_is_named(consts):
    broken = {k: v for k, v in consts.items() if k != "mixed3b_5x5_w"}
    with pytest.raises(CheckpointError, match=r"missing Const \(mixed3b_5x5_w\)"):
        lucid_pb.convert(broken)


def test_pb_misshapen_const_is_named(consts):
    broken = dict(consts, softmax2_w=consts["softmax2_w"].T)  # (1008, 1024): forgot TF's (in, out)
    with pytest.raises(CheckpointError, match=r"softmax2_w: \(1008, 1024\) \(expected \(1024, 1008\)\)"):
        lucid_pb.convert(broken)


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda d: d.pop("mixed4c_pool_reduce_pre_relu_conv.bias"), "missing.*mixed4c_pool_reduce_pre_relu_conv.bias"),
        (lambda d: d.update({"conv2d0_pre_relu_conv.weigth": d.pop("conv2d0_pre_relu_conv.weight")}),
         "unexpected.*conv2d0_pre_relu_conv.weigth"),
        (lambda d: d.update({"conv2d2_pre_relu_conv.weight": torch.zeros(192, 64, 5, 5)}),
         r"misshapen.*conv2d2_pre_relu_conv.weight: \(192, 64, 5, 5\) \(expected \(192, 64, 3, 3\)\)"),
    ],
    ids=["missing", "wrong-key", "wrong-shape"],
)
def test_bad_keys_and_shapes_are_named(tmp_path, sd, change, named):
    bad = dict(sd)
    change(bad)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(StateDictError, match=named) as e:
        checkpoint.load_file(tmp_path / "bad.pth")
    assert "bad.pth" in str(e.value)
    with pytest.raises(StateDictError, match=named):
        checkpoint.save_safetensors(bad, tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
def test_pickled_code_is_refused_and_never_runs(tmp_path, sd, zipfile):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save(dict(sd, extra=_RunsCode(marker)), path, _use_new_zipfile_serialization=zipfile)
    with pytest.raises(CheckpointError, match=r"refused to load .*evil.pth.*GLOBAL posix.system"):
        checkpoint.load_file(path)
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "pb"])
def test_truncated_files_give_clear_errors(tmp_path, files, fmt):
    data = files[fmt].read_bytes()
    path = tmp_path / f"cut.{fmt}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.\w+ is truncated or corrupt"):
        checkpoint.load_file(path)


def test_unknown_suffix_lists_accepted(tmp_path):
    (tmp_path / "w.h5").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"'\.h5'; accepted: \.pth, \.pt, \.safetensors, \.pb"):
        checkpoint.load_file(tmp_path / "w.h5")


def test_unknown_source_suggests_close_names():
    with pytest.raises(FileNotFoundError, match="Did you mean lucid-pb"):
        weights.load("lucid-pd")


def test_safetensors_save_is_atomic(tmp_path, sd, monkeypatch):
    """A save that dies half-way leaves the previous file byte-identical and no temp file."""
    import safetensors.torch

    path = tmp_path / "w.safetensors"
    checkpoint.save_safetensors(sd, path, {"version": "1"})
    before = path.read_bytes()

    def dies_half_way(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_safetensors(sd, path, {"version": "2"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


def test_pb_and_pth_give_the_same_network(files, sd):
    """End to end, against TensorFlow's formulas written out in numpy.

    conv2d0 in TF: out[y, x, o] = b[o] + sum_ijc x[2y+i-2, 2x+j-2, c] * W_hwio[i, j, c, o]
    (SAME padding puts 2 pixels before for a 7x7/2 conv on an even input), and the
    classifier is logits = avgpool0 @ W(in, out) + b.
    """
    m_pb, m_pth = weights.model(files["pb"]), weights.model(files["pth"])
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 50
    names = ["conv2d0_pre_relu", "avgpool0", "softmax2_pre_activation", "softmax2"]
    a, b = m_pb.run_with_cache(x, names), m_pth.run_with_cache(x, names)
    for n in names:
        assert torch.equal(a[n], b[n]), n

    w = tf_layout(sd["conv2d0_pre_relu_conv.weight"]).astype(np.float64)  # HWIO
    img = x[0].numpy().astype(np.float64)  # CHW
    y0, x0 = 40, 57
    patch = img[:, 2 * y0 - 2 : 2 * y0 + 5, 2 * x0 - 2 : 2 * x0 + 5]  # c, i, j
    ref = np.einsum("cij,ijco->o", patch, w) + sd["conv2d0_pre_relu_conv.bias"].numpy()
    np.testing.assert_allclose(a["conv2d0_pre_relu"][0, :, y0, x0].numpy(), ref, rtol=1e-4, atol=1e-3)

    feats = a["avgpool0"].flatten(1).numpy().astype(np.float64)
    w_fc, b_fc = tf_layout(sd["softmax2_pre_activation_matmul.weight"]), sd["softmax2_pre_activation_matmul.bias"]
    logits = feats @ w_fc + b_fc.numpy()
    np.testing.assert_allclose(a["softmax2_pre_activation"].numpy(), logits, rtol=1e-4, atol=1e-4)


# --- downloads ------------------------------------------------------------------
# A download is verified by what it computes (weights.verify) before it is cached, so the
# files served here that must be accepted are the hand-built network's weights: an
# InceptionV1 whose curve units sit at the published orientations. The random `sd` is a
# real, well-formed file of the wrong network: it must be refused.


class _Files(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[bytes, int]] = {}  # path -> (body, Content-Length sent)

    def do_GET(self):
        if self.path not in self.routes:
            self.send_error(404)
            return
        body, length = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 in a thread; add routes to `.routes`."""
    handler = type("Handler", (_Files,), {"routes": {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.routes = handler.routes
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CIRCUITS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # the local server must be reached directly
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def hb_sd() -> dict[str, torch.Tensor]:
    import handbuilt

    return handbuilt.state_dict()


@pytest.fixture(scope="module")
def hb_files(tmp_path_factory, hb_sd, aux_consts) -> dict[str, Path]:
    """The hand-built weights as an inception5h.pth and as a GraphDef in TensorFlow's layouts."""
    d = tmp_path_factory.mktemp("hb")
    torch.save(hb_sd, d / "hb.pth")
    consts = {lucid_name(k): tf_layout(v) for k, v in hb_sd.items()} | aux_consts
    write_graphdef(d / "hb.pb", consts)
    return {"pth": d / "hb.pth", "pb": d / "hb.pb"}


def cached(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def no_network(url, dst=None):
    raise AssertionError(f"a cached file must not be downloaded again ({url})")


def test_download_caches_and_records_checksum(server, cache, hb_files, hb_sd, monkeypatch):
    """Reference: the bytes served and hashlib's SHA-256 of them."""
    body = hb_files["pth"].read_bytes()
    server.routes["/inception5h.pth"] = (body, len(body))
    remote = download.Remote(server.url + "/inception5h.pth", "inception5h.pth")
    monkeypatch.setitem(download.REMOTES, "lucid", remote)

    assert_same(weights.load("lucid"), hb_sd)  # through the registry: fetch + verify + load
    path = cache / "inception5h.pth"
    assert cached(cache) == ["inception5h.pth", "inception5h.pth.sha256"]
    assert path.read_bytes() == body
    assert (cache / "inception5h.pth.sha256").read_text().split()[0] == hashlib.sha256(body).hexdigest()
    assert download.fetch("lucid", downloader=no_network) == path


def test_downloads_go_through_torch_hub_and_are_verified_before_caching(server, cache, hb_files, monkeypatch):
    """The download is torch.hub.download_url_to_file's; the check runs while nothing is cached yet."""
    import torch.hub

    body = hb_files["pth"].read_bytes()
    server.routes["/w.pth"] = (body, len(body))
    hub_calls, verified_with_cache = [], []
    real_hub, real_verify = torch.hub.download_url_to_file, download.verify_state_dict

    def hub(url, dst, *a, **k):
        hub_calls.append((url, Path(dst).parent))
        return real_hub(url, dst, *a, **k)

    def verify(*a, **k):
        verified_with_cache.append(cached(cache))
        return real_verify(*a, **k)

    monkeypatch.setattr(torch.hub, "download_url_to_file", hub)
    monkeypatch.setattr(download, "verify_state_dict", verify)
    path = download.fetch("lucid", url=server.url + "/w.pth")
    assert hub_calls == [(server.url + "/w.pth", cache)]
    assert len(verified_with_cache) == 1
    assert not [n for n in verified_with_cache[0] if not n.startswith(".")]  # only the temporary file existed
    assert path.read_bytes() == body


def test_file_url_and_pb_download(cache, hb_files, hb_sd):
    """Reference: a GraphDef the test wrote in TensorFlow's layouts; verified, so read the right way round."""
    path = download.fetch("lucid-pb", url=hb_files["pb"].as_uri())
    assert path == cache / "InceptionV1.pb"
    assert_same(checkpoint.load_file(path), hb_sd)


def test_download_of_another_network_is_refused_and_not_cached(cache, files):
    """A well-formed file of the wrong network (random weights) fails the check, naming units and the opt-out."""
    with pytest.raises(download.VerificationError) as e:
        download.fetch("lucid", url=files["pth"].as_uri())
    msg = str(e.value)
    assert re.search(r"mixed3b:\d+: (measured -?[\d.]+ deg, published [\d.]+ deg|no response)", msg), msg
    assert "not cached" in msg and "fetch('lucid', verify=False)" in msg
    assert cached(cache) == []
    # The explicit opt-out caches it; afterwards the pinned file is trusted by its SHA-256.
    path = download.fetch("lucid", url=files["pth"].as_uri(), verify=False)
    assert cached(cache) == ["inception5h.pth", "inception5h.pth.sha256"]
    assert download.fetch("lucid", downloader=no_network) == path


def test_a_loader_that_reads_a_real_file_wrongly_is_caught(cache, hb_sd, tmp_path):
    """Kernels with height and width swapped (the mistake of a loader that misreads HWIO): refused."""
    torch.save({k: v.transpose(-1, -2).contiguous() if v.ndim == 4 else v for k, v in hb_sd.items()}, tmp_path / "t.pth")
    with pytest.raises(download.VerificationError, match=r"mixed3b:379: measured"):
        download.fetch("lucid", url=(tmp_path / "t.pth").as_uri())
    assert cached(cache) == []


def test_a_file_placed_in_the_cache_by_hand_is_verified_before_it_is_pinned(cache, files, hb_files):
    cache.mkdir()
    (cache / "inception5h.pth").write_bytes(files["pth"].read_bytes())  # the wrong network
    with pytest.raises(download.VerificationError, match="placed in the cache by hand"):
        download.fetch("lucid", downloader=no_network)
    assert cached(cache) == ["inception5h.pth"]  # left alone, not pinned
    (cache / "inception5h.pth").write_bytes(hb_files["pth"].read_bytes())
    download.fetch("lucid", downloader=no_network)
    assert cached(cache) == ["inception5h.pth", "inception5h.pth.sha256"]


def test_corrupted_cache_is_detected_and_left_alone(server, cache, hb_files):
    body = hb_files["pth"].read_bytes()
    server.routes["/w.pth"] = (body, len(body))
    path = download.fetch("lucid", url=server.url + "/w.pth")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    good, bad = hashlib.sha256(body).hexdigest(), hashlib.sha256(data).hexdigest()
    with pytest.raises(download.ChecksumError) as e:
        download.fetch("lucid", downloader=no_network)
    assert good in str(e.value) and bad in str(e.value) and str(path) in str(e.value)
    assert path.read_bytes() == bytes(data)


def test_truncated_download_leaves_nothing(server, cache, hb_files):
    body = hb_files["pth"].read_bytes()
    server.routes["/w.pth"] = (body[:100_000], len(body))  # the connection closes early
    with pytest.raises((CheckpointError, StateDictError), match="not cached"):
        download.fetch("lucid", url=server.url + "/w.pth")
    assert cached(cache) == []


def test_download_with_wrong_shapes_is_rejected(server, cache, sd, tmp_path):
    bad = dict(sd, **{"mixed3a_1x1_pre_relu_conv.weight": torch.zeros(64, 192, 3, 3)})
    torch.save(bad, tmp_path / "bad.pth")
    body = (tmp_path / "bad.pth").read_bytes()
    server.routes["/bad.pth"] = (body, len(body))
    with pytest.raises(StateDictError, match=r"not cached.*mixed3a_1x1_pre_relu_conv.weight"):
        download.fetch("lucid", url=server.url + "/bad.pth")
    assert cached(cache) == []


def test_offline_fails_at_once_with_help(cache):
    calls = []

    def offline(url, dst):
        calls.append(url)
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    with pytest.raises(download.DownloadError) as e:
        download.fetch("lucid", downloader=offline)
    msg = str(e.value)
    assert "weights.load('/path/to/inception5h.pth')" in msg and "--weights FILE" in msg
    assert calls == [download.REMOTES["lucid"].url]  # one try
    assert cached(cache) == []


def test_refused_connection_is_a_download_error(cache):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(download.DownloadError, match="could not download"):
        download.fetch("lucid", url=f"http://127.0.0.1:{port}/inception5h.pth")
