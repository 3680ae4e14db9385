"""A streaming scan of receptive-field crops of many images: histogram, tails, top-k, samples.

`scan(model, units, source)` reads the images one at a time through a
`torch.utils.data.DataLoader` (workers decode), runs each image only as deep as the
units need (`run_with_cache` stops after the deepest unit's tensor), reads every
sampled valid position of each unit's pre-ReLU map (each is one receptive-field
crop, see `circuits.dataset.crops`) and adds the values to mergeable accumulators.
Memory does not grow with the number of images (beyond the list of images done).

- Checkpoint/resume: with `checkpoint=PATH`, the accumulator state and the images
  done are written atomically every `checkpoint_every` images; a new scan with the
  same settings continues from it, and the result equals an uninterrupted scan's.
- Distributed: under `torchrun`, rank r scans the images i with i % world == r and
  the ranks merge their states exactly (see `circuits.dataset.distributed`).
- Unreadable files are skipped and counted (`skipped`); an image whose own shorter
  side is below a unit's receptive field gives that unit no crops (it is not enlarged:
  a 1x1 image resized to 224 px only shows the resize's blur), and one that gives no
  unit a crop is counted as `too_small`. A scan in which no image could be read is an
  error, not an empty result.
- Any network: units, their pre-ReLU tensors, crop sizes (receptive fields) and the
  input range are the model's (`model.graph`); the result records the network's name.

Example:
    >>> import weights
    >>> from circuits.dataset.sources import skimage_source
    >>> src = skimage_source(image_size=96)
    >>> res = scan(weights.model("handbuilt"), "mixed3a:81", src, limit=2, progress=False, bin_width=1.0)
    >>> s = res.units["mixed3a:81"]
    >>> s.tensor, s.crop_size, s.hist.n   # 2 images at 96 px: 7 x 7 valid 43 px crops each
    ('mixed3a_3x3_pre_relu', 43, 98)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from circuits.core.files import atomic_path
from circuits.dataset import distributed
from circuits.dataset.accumulators import BinReservoir, Histogram, TopK
from circuits.dataset.crops import crop_grid, crop_id, parse_crop_id, sample_positions, cut
from circuits.dataset.network import conv_table
from circuits.dataset.sources import ImageSource, resize_short
from circuits.dataset.tails import fit_tails

__all__ = ["ScanSettings", "UnitStats", "ScanState", "scan", "ScanInterrupted", "load_crops", "calibrate_width",
           "FORMAT"]

FORMAT = "circuits-dataset-scan/1"


class ScanInterrupted(RuntimeError):
    """Raised by `scan(..., stop_after=N)` after N images, once the checkpoint is written."""


@dataclass(frozen=True)
class ScanSettings:
    """What is sampled and kept. sampling: "grid" (every `stride`-th valid map position)
    or "random" (`per_image` positions per image, seeded). bin_width: the histogram's
    bin width per unit (None: calibrated on the first readable images). Samples are
    kept per coarse bin of `quilt_factor` histogram bins, `reservoir` per bin."""

    sampling: str = "grid"
    stride: int = 1
    per_image: int = 64
    seed: int = 0
    bin_width: float | None = None
    quilt_factor: int = 10
    reservoir: int = 16
    top_k: int = 36

    def check(self) -> None:
        if self.sampling not in ("grid", "random"):
            raise ValueError(f"unknown sampling {self.sampling!r}: use 'grid' or 'random'")
        for name in ("stride", "per_image", "quilt_factor"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("reservoir", "top_k"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")
        if self.bin_width is not None and not (math.isfinite(self.bin_width) and self.bin_width > 0):
            raise ValueError(f"bin width must be a positive number, got {self.bin_width!r}")


@dataclass
class UnitStats:
    """Everything a scan accumulates for one unit."""

    unit: str
    tensor: str  # the pre-ReLU tensor that holds the unit (its convolution's output)
    channel: int  # channel in `tensor`
    crop_size: int
    hist: Histogram
    top: TopK
    bottom: TopK
    samples: BinReservoir

    @classmethod
    def new(cls, unit: str, tensor: str, channel: int, crop_size: int, width: float, s: ScanSettings) -> "UnitStats":
        return cls(unit, tensor, channel, crop_size, Histogram(width), TopK(s.top_k, True), TopK(s.top_k, False),
                   BinReservoir(width * s.quilt_factor, s.reservoir, s.seed, unit))

    def add(self, values: np.ndarray, ids: list[str]) -> None:
        self.hist.add(values)
        self.top.add(values, ids)
        self.bottom.add(values, ids)
        self.samples.add(values, ids)

    def merge(self, o: "UnitStats") -> "UnitStats":
        return UnitStats(self.unit, self.tensor, self.channel, self.crop_size, self.hist.merge(o.hist),
                         self.top.merge(o.top), self.bottom.merge(o.bottom), self.samples.merge(o.samples))

    def state(self) -> dict:
        return {"unit": self.unit, "tensor": self.tensor, "channel": self.channel, "crop_size": self.crop_size,
                "hist": self.hist.state(), "top": self.top.state(), "bottom": self.bottom.state(),
                "samples": self.samples.state()}

    @classmethod
    def from_state(cls, s: dict) -> "UnitStats":
        return cls(s["unit"], s["tensor"], int(s["channel"]), int(s["crop_size"]), Histogram.from_state(s["hist"]),
                   TopK.from_state(s["top"]), TopK.from_state(s["bottom"]), BinReservoir.from_state(s["samples"]))

    def summary(self) -> dict:
        """The JSON record of the unit (what `circuits dataset --json` writes)."""
        edges, counts = self.hist.dense()
        return {
            "unit": self.unit, "tensor": self.tensor, "channel": self.channel, "crop_size": self.crop_size,
            "n_crops": self.hist.n, "firing_rate": self.hist.firing_rate, "mean_pre_relu": self.hist.mean,
            "std_pre_relu": self.hist.std,
            "histogram": {"width": self.hist.width, "edges": edges.tolist(), "counts": counts.tolist()},
            "tail_fits": fit_tails(self.hist),
            "top_k": [{"crop_id": c, "value": v} for v, c in self.top.items],
            "bottom_k": [{"crop_id": c, "value": v} for v, c in self.bottom.items],
            "samples": {"bin_width": self.samples.width, "per_bin": self.samples.size, "bins": [
                {"lo": b * self.samples.width, "hi": (b + 1) * self.samples.width,
                 "crops": [{"crop_id": c, "value": v} for c, v in items]}
                for b, items in self.samples.samples().items()]},
        }


# States written before the network was recorded were all scans of InceptionV1.
_OLD_NETWORK = "InceptionV1"


@dataclass
class ScanState:
    """The accumulated state of a scan (or of one rank's shard, or a checkpoint).

    network: the name of the scanned model's network (`model.graph.name`).
    """

    settings: ScanSettings
    source: dict
    units: dict[str, UnitStats]
    done: set[int] = field(default_factory=set)
    skipped: dict[int, str] = field(default_factory=dict)  # image index -> why
    too_small: set[int] = field(default_factory=set)
    network: str = _OLD_NETWORK

    def merge(self, o: "ScanState") -> "ScanState":
        if o.network != self.network:
            raise ValueError(f"cannot merge a scan of {self.network} with one of {o.network}")
        if (o.settings, o.source, list(o.units)) != (self.settings, self.source, list(self.units)):
            raise ValueError("cannot merge scans with different settings, sources or units")
        return ScanState(self.settings, self.source, {k: v.merge(o.units[k]) for k, v in self.units.items()},
                         self.done | o.done, {**self.skipped, **o.skipped}, self.too_small | o.too_small,
                         self.network)

    def state(self) -> dict:
        return {"format": FORMAT, "network": self.network, "settings": asdict(self.settings), "source": self.source,
                "units": {k: v.state() for k, v in self.units.items()}, "done": sorted(self.done),
                "skipped": {str(k): v for k, v in sorted(self.skipped.items())}, "too_small": sorted(self.too_small)}

    @classmethod
    def from_state(cls, s: dict) -> "ScanState":
        if s.get("format") != FORMAT:
            raise ValueError(f"not a scan state (format {s.get('format')!r}, expected {FORMAT!r})")
        return cls(ScanSettings(**s["settings"]), s["source"],
                   {k: UnitStats.from_state(v) for k, v in s["units"].items()}, set(s["done"]),
                   {int(k): v for k, v in s["skipped"].items()}, set(s["too_small"]),
                   str(s.get("network", _OLD_NETWORK)))

    def to_json(self, names: Sequence[str] | None = None) -> dict:
        """The result record: per unit id the summaries, at top level the network and the counts of images."""
        skipped = [{"image": names[i] if names else i, "reason": r} for i, r in sorted(self.skipped.items())]
        return {"format": FORMAT, "network": self.network, "source": self.source, "settings": asdict(self.settings),
                "n_images": self.source["n_images"], "n_scanned": len(self.done) - len(self.skipped),
                "skipped_files": len(self.skipped), "skipped": skipped, "too_small": len(self.too_small),
                "units": {k: v.summary() for k, v in self.units.items()}}


def _nice(x: float) -> float:
    """The 1-2-5 number nearest above x."""
    if not (x > 0 and math.isfinite(x)):
        return 1.0
    e = math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * 10**e >= x:
            return float(m * 10**e)
    return float(10 ** (e + 1))  # pragma: no cover


class _Images(torch.utils.data.Dataset):
    """Images `indices` of `source`, decoded (in DataLoader workers): (index, image or None, error)."""

    def __init__(self, source: ImageSource, indices: Sequence[int]):
        self.source, self.indices = source, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        i = self.indices[k]
        try:
            img = self.source.read_native(i)
        except (ValueError, OSError, FileNotFoundError) as e:
            return i, None, f"{type(e).__name__}: {e}", 0
        return i, resize_short(img, self.source.image_size), "", min(img.shape[-2:])


def _loader(source: ImageSource, indices: Sequence[int], num_workers: int):
    return torch.utils.data.DataLoader(_Images(source, indices), batch_size=None, shuffle=False,
                                       num_workers=num_workers, collate_fn=lambda item: item)


def _unit_table(units, model) -> list[tuple[str, str, int]]:
    """(unit id, pre-ReLU tensor, channel) per unit, resolved against the model's network."""
    return conv_table(units, model)


def _values(model, img: torch.Tensor, table, device) -> dict[str, torch.Tensor]:
    tensors = sorted({t for _, t, _ in table}, key=model.graph.index)
    with torch.no_grad():  # the model's own input range: [-117, 138] for InceptionV1, [-1, 1] for V3
        cache = model.run_with_cache(model.to_input(img).to(device), tensors)
    return {uid: cache[t][0, c].cpu() for uid, t, c in table}


def calibrate_width(model, table, source: ImageSource, device, images: int = 3, bins: int = 60) -> dict[str, float]:
    """Histogram bin width per unit: a 1-2-5 number near (99.5th - 0.5th percentile) / `bins` over the
    valid positions of the first `images` readable images (the same on every rank)."""
    vals: dict[str, list] = {uid: [] for uid, _, _ in table}
    seen = 0
    for i in range(len(source)):
        try:
            native = source.read_native(i)
        except (ValueError, OSError):
            continue
        img = resize_short(native, source.image_size)
        grids = _grids(model, table, img, min(native.shape[-2:]))
        maps = _values(model, img, [row for row in table if row[0] in grids], device) if grids else {}
        for uid, g in grids.items():
            m = maps[uid][g.first[0] : g.first[0] + g.shape[0], g.first[1] : g.first[1] + g.shape[1]]
            vals[uid].append(m.double().numpy().ravel())
        seen += 1
        if seen == images:
            break
    out = {}
    for uid, v in vals.items():
        v = np.concatenate(v) if v else np.zeros(0)
        spread = float(np.percentile(v, 99.5) - np.percentile(v, 0.5)) if v.size else 0.0
        out[uid] = _nice(spread / bins) if spread > 0 else _nice(abs(float(v.mean())) / 10 if v.size else 1.0)
    return out


def _checkpoint_path(path: str | os.PathLike, rank: int, n: int) -> Path:
    p = Path(path)
    return p if n == 1 else p.with_name(f"{p.stem}.rank{rank}of{n}{p.suffix}")


def _read_checkpoint(path: Path, fresh: ScanState) -> ScanState | None:
    if not path.exists():
        return None
    from circuits.core.files import read_text

    try:
        s = ScanState.from_state(json.loads(read_text(path, "checkpoint")))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"checkpoint {path} is unreadable ({e}); delete it to start over") from None
    if s.network != fresh.network:
        raise ValueError(f"checkpoint {path} was written by a scan of {s.network}, not {fresh.network}; "
                         "delete it or rerun with the same model")
    widths = {k: (v.hist.width, v.tensor, v.channel) for k, v in s.units.items()}
    want = {k: (v.hist.width, v.tensor, v.channel) for k, v in fresh.units.items()}
    if (s.settings, s.source, widths) != (fresh.settings, fresh.source, want):
        raise ValueError(f"checkpoint {path} was written by a scan with other settings, images or units; "
                         "delete it or rerun with the same arguments")
    return s


def _write_checkpoint(path: Path, state: ScanState) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(state.state(), allow_nan=False))


def scan(
    model,
    units,
    source: ImageSource,
    *,
    sampling: str = "grid",
    stride: int = 1,
    per_image: int = 64,
    seed: int = 0,
    bin_width: float | None = None,
    quilt_factor: int = 10,
    reservoir: int = 16,
    top_k: int = 36,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    num_workers: int = 0,
    limit: int | None = None,
    stop_after: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> ScanState:
    """Scan `source` for `units` (unit or family ids); the merged state of all ranks.

    limit: scan only the first `limit` images. stop_after: stop (raising
    ScanInterrupted) after this many new images, checkpoint written: a controlled
    interruption for tests. See the module docstring for the rest.
    """
    settings = ScanSettings(sampling, stride, per_image, seed, bin_width, quilt_factor, reservoir, top_k)
    settings.check()
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        source = ImageSource(source.kind, source.names[:limit], source.image_size, source.root)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    table = _unit_table(units, model)
    net = model.graph
    for uid, t, _ in table:
        need = net.receptive_field(t).size
        if source.image_size is not None and source.image_size < need:
            raise ValueError(f"{uid} sees {need} px crops of {net.name} but images are resized to "
                             f"{source.image_size} px (shorter side): use an image size of at least {need}")
    widths = ({uid: float(bin_width) for uid, _, _ in table} if bin_width is not None
              else calibrate_width(model, table, source, device))
    fresh = ScanState(settings, source.state(), {
        uid: UnitStats.new(uid, t, c, net.receptive_field(t).size, widths[uid], settings) for uid, t, c in table},
        network=net.name)
    rank, n_ranks = distributed.world()
    ckpt = _checkpoint_path(checkpoint, rank, n_ranks) if checkpoint is not None else None
    state = (_read_checkpoint(ckpt, fresh) if ckpt else None) or fresh
    shard = [i for i in range(len(source)) if i % n_ranks == rank]
    todo = [i for i in shard if i not in state.done]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(shard), initial=len(shard) - len(todo), unit="img", desc="scan",
               disable=not progress or rank != 0)
    since = 0
    try:
        for new, (i, img, err, native) in enumerate(_loader(source, todo, num_workers), start=1):
            name = source.names[i]
            if img is None:
                state.skipped[i] = err
            else:
                _add_image(model, img, name, state, settings, table, device, i, native)
                _check_bins(state)
            state.done.add(i)
            bar.update(1)
            since += 1
            if ckpt and since >= checkpoint_every:
                _write_checkpoint(ckpt, state)
                since = 0
            if stop_after is not None and new >= stop_after and len(state.done) < len(shard):
                if ckpt and since:
                    _write_checkpoint(ckpt, state)
                raise ScanInterrupted(f"stopped after {new} images ({len(state.done)} of {len(shard)} done)")
        if ckpt and since:
            _write_checkpoint(ckpt, state)
    finally:
        bar.close()
    merged = [ScanState.from_state(s) for s in distributed.gather_states(state.state())]
    out = merged[0]
    for s in merged[1:]:
        out = out.merge(s)
    if out.done and len(out.skipped) == len(out.done):
        first = next(iter(sorted(out.skipped.items())))
        raise ValueError(f"no image in {source.description} could be read ({len(out.skipped)} tried; "
                         f"e.g. {source.names[first[0]]}: {first[1]})")
    return out


# A histogram written densely over the activations' span holds at most this many bins.
MAX_BINS = 10**7


def _check_bins(state: ScanState) -> None:
    """Stop a scan whose bin width would make a histogram too large to write (e.g. --bin-width 1e-9)."""
    for uid, u in state.units.items():
        c = u.hist.counts
        if c and max(c) - min(c) + 1 > MAX_BINS:
            raise ValueError(f"{uid}: bin width {u.hist.width:g} over activations in "
                             f"[{min(c) * u.hist.width:.4g}, {(max(c) + 1) * u.hist.width:.4g}] makes "
                             f"{max(c) - min(c) + 1} bins, more than {MAX_BINS:.0e}: give a larger --bin-width")


def _grids(model, table, img: torch.Tensor, native: int | None = None) -> dict:
    """unit id -> its crop grid on `img`, for the units with at least one valid crop there
    (and, given the image's own shorter side `native`, a receptive field no larger than it).

    Only those units' tensors are run: an image smaller than a unit's receptive field may
    also be too small to reach its tensor at all (InceptionV3's unpadded stem), and then
    the model refuses the input.
    """
    hw = tuple(img.shape[-2:])
    grids = {uid: crop_grid(t, hw, model.graph) for uid, t, _ in table}
    return {uid: g for uid, g in grids.items() if g.shape[0] * g.shape[1] and (native is None or g.size <= native)}


def _add_image(model, img, name, state: ScanState, settings: ScanSettings, table, device, index: int,
               native: int | None = None) -> None:
    grids = _grids(model, table, img, native)
    maps = _values(model, img, [row for row in table if row[0] in grids], device) if grids else {}
    any_crop = False
    for uid, g in grids.items():
        ii, jj = sample_positions(g, name, settings.sampling, settings.stride, settings.per_image, settings.seed)
        if not len(ii):
            continue
        any_crop = True
        vals = maps[uid][g.first[0] + ii, g.first[1] + jj].double().numpy()
        ids = [crop_id(name, g.first_box[0] + a * g.stride, g.first_box[1] + b * g.stride, g.size)
               for a, b in zip(ii.tolist(), jj.tolist())]
        state.units[uid].add(vals, ids)
    if not any_crop:
        state.too_small.add(index)


def load_crops(source: ImageSource, ids: Sequence[str]) -> dict[str, torch.Tensor]:
    """The pixels (uint8 [3, s, s]) of the crops named by `ids`, reading each image once."""
    index = {n: i for i, n in enumerate(source.names)}
    by_image: dict[str, list] = {}
    for cid in ids:
        name, y, x, s = parse_crop_id(cid)
        if name not in index:
            raise ValueError(f"crop {cid!r}: no image {name!r} in {source.description}")
        by_image.setdefault(name, []).append((cid, y, x, s))
    out = {}
    for name, crops in by_image.items():
        img = source.read(index[name])
        for cid, y, x, s in crops:
            out[cid] = cut(img, y, x, s).clone()
    return {cid: out[cid] for cid in ids}
