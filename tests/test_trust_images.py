"""Images are read by their real bit depth and mode; too-small images are skipped and counted (issue 21, item 2).

Reference: the 8-bit RGB twin of each picture, written by an independent PNG encoder
(below: zlib and struct, per the PNG specification, not Pillow's writer). A mode is
read right when `read_image` gives exactly the twin's pixels (16-bit values v*257 are
the 8-bit v; grey is repeated into R, G and B; a palette index is its colour).
"""

from __future__ import annotations

import importlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from circuits import cli
from circuits.core.inputs import load_image, read_image

RNG = np.random.default_rng(21)
RGB = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)
GREY = RGB[..., 0]


def png(path: Path, arr: np.ndarray, color_type: int, depth: int, palette=None, trns: bytes | None = None) -> Path:
    """A PNG written by hand (PNG spec, filter 0 on every row): colour types 0 grey, 2 RGB,
    3 palette, 4 grey+alpha, 6 RGBA; depths 1, 8, 16."""
    arr = np.asarray(arr)
    h, w = arr.shape[:2]
    if depth == 16:
        rows = [arr[i].astype(">u2").tobytes() for i in range(h)]
    elif depth == 1:
        rows = [np.packbits(arr[i].astype(np.uint8)).tobytes() for i in range(h)]
    else:
        rows = [arr[i].astype(np.uint8).tobytes() for i in range(h)]
    data = b"".join(b"\x00" + r for r in rows)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")
    path.write_bytes(out)
    return path


def _grey3(g: np.ndarray) -> np.ndarray:
    return np.repeat(g[:, :, None], 3, axis=2)


def _read(path: Path) -> np.ndarray:
    return read_image(path).permute(1, 2, 0).numpy()


def _opaque(a: np.ndarray, value: int) -> np.ndarray:
    return np.concatenate([a if a.ndim == 3 else a[:, :, None], np.full(a.shape[:2] + (1,), value)], axis=2)


PALETTE = RNG.integers(0, 256, (16, 3), dtype=np.uint8)
INDEX = RNG.integers(0, 16, (12, 10))
BITS = RNG.integers(0, 2, (12, 10))

CASES = {
    # name: (writer, the 8-bit RGB twin)
    "rgb8": (lambda p: png(p, RGB, 2, 8), RGB),
    "rgb16": (lambda p: png(p, RGB.astype(np.uint16) * 257, 2, 16), RGB),
    "rgba8": (lambda p: png(p, _opaque(RGB, 255), 6, 8), RGB),
    "rgba16": (lambda p: png(p, _opaque(RGB.astype(np.uint16) * 257, 65535), 6, 16), RGB),
    "grey8": (lambda p: png(p, GREY, 0, 8), _grey3(GREY)),
    "grey16": (lambda p: png(p, GREY.astype(np.uint16) * 257, 0, 16), _grey3(GREY)),
    "grey_alpha8": (lambda p: png(p, _opaque(GREY, 255), 4, 8), _grey3(GREY)),
    "grey_alpha16": (lambda p: png(p, _opaque(GREY.astype(np.uint16) * 257, 65535), 4, 16), _grey3(GREY)),
    "bilevel1": (lambda p: png(p, BITS, 0, 1), _grey3((BITS * 255).astype(np.uint8))),
    "palette8": (lambda p: png(p, INDEX, 3, 8, palette=PALETTE), PALETTE[INDEX]),
    "palette_transparent8": (lambda p: png(p, INDEX, 3, 8, palette=PALETTE, trns=bytes([0] + [255] * 15)),
                             PALETTE[INDEX]),
}


@pytest.mark.parametrize("mode", sorted(CASES))
def test_each_mode_reads_as_its_8bit_rgb_twin(tmp_path, mode):
    """On main a 16-bit greyscale PNG read as white (Pillow's convert("RGB") clips 65535 to 255)."""
    write, twin = CASES[mode]
    got = _read(write(tmp_path / f"{mode}.png"))
    np.testing.assert_array_equal(got, twin.astype(np.uint8))


def test_32bit_integer_and_float_tiffs_read_by_their_range(tmp_path):
    """Mode I (16-bit values in 32-bit ints) and mode F (floats in [0, 1]) against the 8-bit twin; a float
    image outside [0, 1] has no known white and is refused, naming the file."""
    Image.fromarray(GREY.astype(np.int32) * 257, mode="I").save(tmp_path / "i.tif")
    Image.fromarray(GREY.astype(np.float32) / 255, mode="F").save(tmp_path / "f.tif")
    for name in ("i.tif", "f.tif"):
        np.testing.assert_array_equal(_read(tmp_path / name), _grey3(GREY))
    Image.fromarray(np.full((4, 4), 3.0, np.float32), mode="F").save(tmp_path / "bad.tif")
    with pytest.raises(ValueError, match="bad.tif"):
        read_image(tmp_path / "bad.tif")


def test_model_input_of_a_16bit_png_equals_the_8bit_twins(tmp_path):
    """What `ablate`, `attribute` and `dataset` feed the network: load_image of grey16 equals grey8's."""
    a = load_image(png(tmp_path / "g16.png", GREY.astype(np.uint16) * 257, 0, 16), 8)
    b = load_image(png(tmp_path / "g8.png", GREY, 0, 8), 8)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_uint16_arrays_from_a_source_are_scaled_not_refused():
    """sources.to_rgb_uint8 on a uint16 array (skimage-style data) against the uint8 twin."""
    from circuits.dataset.sources import to_rgb_uint8

    got = to_rgb_uint8(GREY.astype(np.uint16) * 257, "g16")
    np.testing.assert_array_equal(got.permute(1, 2, 0).numpy(), _grey3(GREY))


# --- too-small images in a scan ---------------------------------------------------------------


def test_a_1x1_image_is_counted_too_small_not_enlarged_and_scanned(tmp_path):
    """A folder of one 1x1 image and one 120 px photograph: the 1x1 gives no crop (main enlarged it to
    224 px and scanned the blur); counted as too_small, the crops all from the photograph."""
    import weights

    scan_mod = importlib.import_module("circuits.dataset.scan")
    from circuits.dataset.sources import folder_source

    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(tmp_path / "dot.png")
    Image.fromarray(RNG.integers(0, 256, (120, 120, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    src = folder_source(tmp_path, image_size=96)
    s = scan_mod.scan(weights.model("handbuilt"), "mixed3a:81", src, bin_width=1.0, progress=False)
    res = s.to_json(src.names)
    assert res["too_small"] == 1 and res["skipped_files"] == 0
    ids = [c["crop_id"] for c in res["units"]["mixed3a:81"]["top_k"]]
    assert ids and all(i.startswith("photo.png@") for i in ids)


def test_a_scan_of_only_too_small_images_writes_strict_json(tmp_path, monkeypatch):
    """A unit with no crop has undefined mean and rates: the JSON holds null, not NaN (strict parse)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgs").mkdir()
    Image.fromarray(RNG.integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(tmp_path / "imgs" / "small.png")
    assert cli.main(["dataset", "mixed3b:379", "--images", "imgs", "--json", "r.json", "--no-plots", "--quiet",
                     "--bin-width", "1", "--image-size", "96"]) == 0
    text = (tmp_path / "r.json").read_text()
    res = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert res["too_small"] == 1 and res["units"]["mixed3b:379"]["n_crops"] == 0
    assert res["units"]["mixed3b:379"]["mean_pre_relu"] is None


@pytest.mark.parametrize("command", ["extract-curves", "trace-curve"])
def test_single_image_commands_refuse_an_image_smaller_than_the_receptive_field(tmp_path, capsys, command):
    """A 20 px photograph under mixed3b:379 (91 px receptive field): main enlarged it to the working size
    and reported the attribution of the resize's blur; now exit 2 naming the image, its size and the field."""
    img = tmp_path / "tiny.png"
    Image.fromarray(RNG.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(img)
    assert cli.main([command, "mixed3b:379", "--image", str(img), "--out", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "tiny.png" in err and "20x20" in err and "91 px" in err and not (tmp_path / "o.png").exists()
