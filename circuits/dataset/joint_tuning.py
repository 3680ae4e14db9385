"""Joint tuning curves: a family's responses to its dataset examples, rotated ("Curve Detectors").

For each unit of a family (the *source*), its strongest receptive-field crops from a
scan of real images (`circuits.dataset.scan`'s top-k) are rotated about the centre of
the receptive field in steps of `step` degrees (1 by default: 0, 1, ..., 359), and
every unit of the family is read on each rotated crop. The mean response of unit n
over the source's examples at rotation r is ``joint[source][n][r]``.

Rotation is clockwise on screen, the convention of the stimuli's orientations
(`circuits.tuning.stimuli`: 0 = ``)``, 90 = ``∪``): a curve bulging towards θ,
rotated by r, bulges towards θ + r. So if the family's units are rotated copies of one
feature, the examples of a source preferring θ_s excite a unit preferring θ_n at the
rotation θ_n - θ_s (`JointTuning.agreement` measures how often that holds, against
the preferred orientations from synthetic curves, `circuits.tuning.radial_tuning`).

The crop is masked to the disc inscribed in it (a smooth edge of `taper` px blending
into the crop's mean colour outside), so rotating never brings a corner of the crop,
or pixels from outside it, into the receptive field: at every rotation the unit sees
the same disc of the photograph, turned. The masked, rotated crop is placed at the
receptive-field centre of the smallest input that holds every family unit's field
(`circuits.tuning.measure.input_size_for`) and read through the receptive-field cone
(`circuits.tuning.cone`), all rotations of a crop in batches.

The aligned average (the article's "typical response curve") shifts every curve so
that its peak sits at 0 and averages them.

Example:
    >>> import weights
    >>> from circuits.dataset.sources import skimage_source
    >>> jt = joint_tuning(weights.model("handbuilt"), "mixed3b:379,mixed3b:406", skimage_source(),
    ...                   top_k=2, step=30, progress=False)      # doctest: +SKIP
    >>> jt.curves.shape                                          # doctest: +SKIP
    (2, 2, 12)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from circuits.dataset.crops import parse_crop_id
from circuits.dataset.network import conv_table
from circuits.dataset.sources import ImageSource

__all__ = ["JointTuning", "joint_tuning", "rotate_masked", "disc_mask", "distinct_crops", "FORMAT",
           "SUBSTANTIAL", "TOLERANCE_DEG"]

FORMAT = "circuits-joint-tuning/1"
# A (source, neighbour) pair counts when the neighbour's peak mean response on the source's
# examples is at least this fraction of the source's own peak on them.
SUBSTANTIAL = 0.1
# The neighbour's peak rotation must equal the difference of preferred orientations within this.
TOLERANCE_DEG = 20.0
# Scan this many candidates per example wanted, so that overlapping crops can be dropped.
CANDIDATES_PER_EXAMPLE = 8


def disc_mask(size: int, taper: float = 3.0, device=None) -> torch.Tensor:
    """[size, size] weights: 1 inside the inscribed disc, falling smoothly to 0 over its outer `taper` px.

    The disc's radius is (size - 1) / 2, so every pixel with a non-zero weight samples,
    at any rotation, a point inside the crop.

    >>> m = disc_mask(9, taper=1.0)
    >>> float(m[4, 4]), float(m[0, 0]), float(m[4, 0])
    (1.0, 0.0, 0.0)
    """
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32, device=device),
                            torch.arange(size, dtype=torch.float32, device=device), indexing="ij")
    rho = torch.sqrt((yy - c) ** 2 + (xx - c) ** 2)
    t = ((c - rho) / max(float(taper), 1e-6)).clamp(0, 1)
    return t * t * (3 - 2 * t)  # smoothstep: no kink where the taper starts


def rotate_masked(crop: torch.Tensor, angles_deg: Sequence[float] | torch.Tensor, *, taper: float = 3.0,
                  fill: torch.Tensor | None = None) -> torch.Tensor:
    """Rotations of a square crop about its centre, clockwise on screen, masked to its inscribed disc.

    crop: float [3, S, S] (any range). angles_deg: [R] degrees, clockwise on screen (the
    stimuli's convention: a curve of orientation θ rotated by r has orientation θ + r).
    fill: [3] colour outside the disc (default the crop's mean colour inside the disc).
    Returns [R, 3, S, S], bilinear; 90-degree steps are exact pixel permutations.

    >>> x = torch.zeros(3, 7, 7); x[:, 1, 3] = 1.0            # a dot straight above the centre
    >>> y = rotate_masked(x, [90.0], taper=0.01, fill=torch.zeros(3))
    >>> (y[0, 0] > 0.5).nonzero().tolist()                     # clockwise on screen: now right of it
    [[3, 5]]
    """
    if crop.dim() != 3 or crop.shape[0] != 3 or crop.shape[1] != crop.shape[2]:
        raise ValueError(f"crop must be a square [3, S, S], got {list(crop.shape)}")
    s = int(crop.shape[-1])
    a = torch.as_tensor(angles_deg, dtype=torch.float64).reshape(-1)
    crop = crop.float()
    mask = disc_mask(s, taper, crop.device)
    if fill is None:
        fill = (crop * mask).sum((1, 2)) / mask.sum()
    fill = torch.as_tensor(fill, dtype=torch.float32, device=crop.device).reshape(3, 1, 1)
    c = (s - 1) / 2
    r = torch.deg2rad(a)
    cos, sin = torch.cos(r), torch.sin(r)
    # Exact at multiples of 90 degrees (cos/sin of deg2rad(90) are off by 1e-17, enough to blur).
    quarter = torch.remainder(a, 90.0) == 0
    cos = torch.where(quarter, torch.round(cos), cos)
    sin = torch.where(quarter, torch.round(sin), sin)
    idx = torch.arange(s, dtype=torch.float64) - c
    dy, dx = torch.meshgrid(idx, idx, indexing="ij")
    # Output pixel at offset (dx, dy) from the centre shows the input at the offset rotated back by r:
    # image coordinates have y down, so the standard rotation matrix turns clockwise on screen.
    sx = dx[None] * cos[:, None, None] + dy[None] * sin[:, None, None]
    sy = -dx[None] * sin[:, None, None] + dy[None] * cos[:, None, None]
    grid = torch.stack([sx / c, sy / c], dim=-1).float().to(crop.device)  # align_corners=True: +-1 at pixel centres
    src = crop.unsqueeze(0).expand(len(a), -1, -1, -1)
    rot = torch.nn.functional.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return fill + mask * (rot - fill)


def distinct_crops(items: Sequence[tuple[float, str]], k: int) -> list[tuple[float, str]]:
    """The first `k` of (value, crop id) pairs (strongest first) whose crops do not overlap a kept
    one of the same image by more than half its side in both directions (neighbouring map
    positions show the same curve shifted by a few pixels: one example, not several).

    >>> distinct_crops([(9, "a@0,0,10"), (8, "a@2,2,10"), (7, "a@0,6,10"), (6, "b@0,0,10")], 3)
    [(9, 'a@0,0,10'), (7, 'a@0,6,10'), (6, 'b@0,0,10')]
    """
    kept: list[tuple[float, str]] = []
    boxes: list[tuple[str, int, int, int]] = []
    for v, cid in items:
        name, y, x, s = parse_crop_id(cid)
        if any(n == name and abs(y - y2) * 2 < max(s, s2) and abs(x - x2) * 2 < max(s, s2)
               for n, y2, x2, s2 in boxes):
            continue
        kept.append((v, cid))
        boxes.append((name, y, x, s))
        if len(kept) == k:
            break
    return kept


def _circ(d: np.ndarray | float) -> np.ndarray | float:
    """Signed circular difference in (-180, 180]."""
    return -((-np.asarray(d, dtype=float) + 180.0) % 360.0 - 180.0)


@dataclass
class JointTuning:
    """Responses of a family to its units' rotated dataset examples.

    units: the family's unit ids (sources and read units alike, in this order).
    rotations_deg [R]: rotations (clockwise on screen). curves [S, U, R]: mean response
    of unit u over source s's examples at each rotation (post-ReLU unless `pre_relu`).
    preferred_deg [U]: each unit's preferred orientation on synthetic curves.
    examples: source id -> [(value, crop id)] used (their scan pre-activations).
    """

    network: str
    units: list[str]
    rotations_deg: np.ndarray
    curves: np.ndarray
    preferred_deg: np.ndarray
    examples: dict[str, list[tuple[float, str]]]
    pre_relu: bool = False
    settings: dict = field(default_factory=dict)

    def curve(self, source: str, unit: str) -> np.ndarray:
        """The mean response of `unit` to `source`'s examples over the rotations."""
        for name, u in (("source", source), ("unit", unit)):
            if u not in self.units:
                raise KeyError(f"{name} {u} was not measured; measured: {', '.join(self.units)}")
        return self.curves[self.units.index(source), self.units.index(unit)]

    def peak_rotation(self) -> np.ndarray:
        """[S, U] the rotation (degrees) at which each unit responds most to each source's examples."""
        return self.rotations_deg[np.argmax(self.curves, axis=-1)]

    def predicted_rotation(self) -> np.ndarray:
        """[S, U] the rotation at which a rotated copy would respond: preferred(u) - preferred(s), in [0, 360)."""
        p = self.preferred_deg
        return (p[None, :] - p[:, None]) % 360.0

    def substantial(self, fraction: float = SUBSTANTIAL) -> np.ndarray:
        """[S, U] bool: u's peak response on s's examples is >= `fraction` of s's own peak on them (u != s)."""
        peaks = self.curves.max(-1)
        own = np.diagonal(peaks)
        out = (peaks >= fraction * own[:, None]) & (own[:, None] > 0)
        np.fill_diagonal(out, False)
        return out

    def agreement(self, fraction: float = SUBSTANTIAL, tolerance: float = TOLERANCE_DEG) -> dict:
        """How often a neighbour's peak rotation equals the difference of preferred orientations.

        Over the (source, neighbour) pairs whose response is substantial (`substantial`):
        the fraction whose |peak - (pref_n - pref_s)| (circular) <= `tolerance` degrees, in
        the stimuli's convention (clockwise rotations and orientations), and, as a check
        of the sign, the same with the opposite convention (pref_s - pref_n).
        """
        sub = self.substantial(fraction)
        peak = self.peak_rotation()
        err = _circ(peak - self.predicted_rotation())
        err_flip = _circ(peak + self.predicted_rotation())
        pairs = [{"source": self.units[s], "unit": self.units[u], "peak_rotation_deg": float(peak[s, u]),
                  "predicted_deg": float(self.predicted_rotation()[s, u]), "error_deg": float(err[s, u]),
                  "peak": float(self.curves[s, u].max())}
                 for s, u in zip(*np.nonzero(sub))]
        n = len(pairs)
        ok = int((np.abs(err[sub]) <= tolerance).sum())
        ok_flip = int((np.abs(err_flip[sub]) <= tolerance).sum())
        self_err = _circ(np.diagonal(peak))
        return {"pairs": n, "within_tolerance": ok, "fraction": ok / n if n else math.nan,
                "fraction_opposite_sign": ok_flip / n if n else math.nan,
                "median_abs_error_deg": float(np.median(np.abs(err[sub]))) if n else math.nan,
                "tolerance_deg": float(tolerance), "substantial_fraction": float(fraction),
                "self_peak_rotation_deg": {u: float(e) + 0.0 for u, e in zip(self.units, self_err)},
                "pair_list": pairs}

    def aligned(self, fraction: float = SUBSTANTIAL) -> tuple[np.ndarray, np.ndarray, int]:
        """(offsets_deg, mean curve, number of curves): every substantial curve (the sources' own
        included) shifted so that its peak is at offset 0, then averaged (the article's
        "typical response curve"). Offsets run from -180 up to 180 - step."""
        sub = self.substantial(fraction)
        np.fill_diagonal(sub, np.diagonal(self.curves.max(-1)) > 0)
        r = len(self.rotations_deg)
        half = r // 2
        rows = []
        for s, u in zip(*np.nonzero(sub)):
            c = self.curves[s, u]
            rows.append(np.roll(c, half - int(np.argmax(c))))
        step = float(self.rotations_deg[1] - self.rotations_deg[0]) if r > 1 else 360.0
        offsets = (np.arange(r) - half) * step
        mean = np.mean(rows, axis=0) if rows else np.full(r, np.nan)
        return offsets, mean, len(rows)

    def to_json(self) -> dict:
        """The JSON record: under "joint", for each source, each unit's mean response per rotation."""
        offsets, mean, n = self.aligned()
        agree = self.agreement()
        return {
            "format": FORMAT, "network": self.network, "units": list(self.units), "pre_relu": self.pre_relu,
            "rotation": "degrees, clockwise on screen (a curve of orientation t rotated by r has orientation t + r)",
            "rotations_deg": [float(a) for a in self.rotations_deg],
            "preferred_deg": {u: float(p) for u, p in zip(self.units, self.preferred_deg)},
            "examples": {s: [{"crop_id": c, "value": float(v)} for v, c in ex] for s, ex in self.examples.items()},
            "joint": {s: {u: [float(v) for v in self.curves[i, j]] for j, u in enumerate(self.units)}
                      for i, s in enumerate(self.units)},
            "aligned": {"offset_deg": [float(o) for o in offsets], "mean": [_num(v) for v in mean], "n_curves": n},
            "agreement": {k: _num(v) if isinstance(v, float) else v for k, v in agree.items()},
            "settings": dict(self.settings),
        }


    @classmethod
    def from_json(cls, data: Mapping) -> "JointTuning":
        """The result back from `to_json` (e.g. a file `circuits joint-tuning --json` wrote)."""
        if data.get("format") != FORMAT:
            raise ValueError(f"not a joint tuning record (format {data.get('format')!r}, expected {FORMAT!r})")
        units = list(data["units"])
        curves = np.array([[data["joint"][s][u] for u in units] for s in units], dtype=float)
        examples = {s: [(float(e["value"]), str(e["crop_id"])) for e in ex] for s, ex in data["examples"].items()}
        return cls(str(data["network"]), units, np.asarray(data["rotations_deg"], dtype=float), curves,
                   np.array([data["preferred_deg"][u] for u in units], dtype=float), examples,
                   bool(data["pre_relu"]), dict(data.get("settings", {})))


def _num(v: float):
    return None if not math.isfinite(v) else float(v)


def _placement(graph, tensor: str, size: int) -> tuple[int, int]:
    """Top-left pixel of a crop of `tensor`'s receptive field at its centre position in a `size` px input."""
    rf = graph.receptive_field(tensor, size)
    cy, cx = rf.centre_of(*graph.centre_position(tensor, size))
    half = (rf.size - 1) / 2
    y0, x0 = cy - half, cx - half
    if y0 != int(y0) or x0 != int(x0) or y0 < 0 or x0 < 0 or y0 + rf.size > size or x0 + rf.size > size:
        raise ValueError(f"{tensor}'s receptive field ({rf.size} px) does not sit on the pixel grid inside a "
                         f"{size} px input")
    return int(y0), int(x0)


def joint_tuning(
    model,
    units,
    source: ImageSource,
    *,
    top_k: int = 8,
    step: int = 1,
    pre_relu: bool = False,
    scan_state=None,
    taper: float = 3.0,
    preferred: Mapping[str, float] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> JointTuning:
    """Joint tuning curves of a family (unit or family ids) on its rotated dataset examples.

    source: the images to take examples from (`circuits.dataset.sources`).
    top_k: examples per source unit (the strongest crops of a scan, no two overlapping by
        more than half). step: degrees between rotations (a divisor of 360; 1 = the
        article's 360 rotations). scan_state: a finished `ScanState` of these units on
        `source` to take the examples from (default: scan now, `top_k` * 8 candidates).
    preferred: {unit id: preferred orientation} (default: measured on synthetic curves,
        `circuits.tuning.radial_tuning` at 5 degree steps).
    device: where the model runs (default: where its parameters are).

    The result's `.to_json()` is what `circuits joint-tuning --json` writes.
    """
    from tqdm.auto import tqdm

    from circuits.dataset.scan import load_crops, scan
    from circuits.families import units_of
    from circuits.tuning.measure import input_size_for, radial_tuning, responses

    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    if not isinstance(step, int) or step < 1 or 360 % step:
        raise ValueError(f"step must be a whole number of degrees dividing 360 (1, 2, 3, 5, ...), got {step!r}")
    us = units_of(units, model)
    if len({u.layer for u in us}) != 1:
        raise ValueError(f"a joint tuning curve reads units of one layer, got {sorted({u.layer for u in us})}")
    if len(us) < 2:
        raise ValueError(f"a joint tuning curve needs at least two units (a family), got {[u.id for u in us]}")
    ids = [u.id for u in us]
    table = conv_table(us, model)  # (id, pre-ReLU tensor, channel): the tensor whose crops the scan names
    if preferred is not None:
        missing = [u for u in ids if u not in preferred]
        if missing:
            raise ValueError(f"preferred orientations missing for {', '.join(missing)}")
    if device is not None:
        model = model.to(device)
    dev = next(model.parameters()).device
    graph = model.graph
    size = input_size_for(us, model)
    if scan_state is None:
        scan_state = scan(model, ids, source, top_k=top_k * CANDIDATES_PER_EXAMPLE, bin_width=1.0,
                          reservoir=0, device=dev, progress=progress)
    missing = [u for u in ids if u not in scan_state.units]
    if missing:
        raise ValueError(f"the scan has no examples of {', '.join(missing)}")
    if preferred is None:
        rt = radial_tuning(model, us, n_angles=72, progress=False)
        pref = np.array([m.pref_deg for m in rt.metrics().values()], dtype=float)
    else:
        pref = np.array([float(preferred[u]) for u in ids])
    rotations = np.arange(0, 360, step, dtype=float)
    curves = np.zeros((len(ids), len(ids), len(rotations)))
    examples: dict[str, list[tuple[float, str]]] = {}
    bar = tqdm(total=len(ids), desc="joint tuning", unit="unit", disable=not progress)
    try:
        for i, (uid, tensor, _) in enumerate(table):
            chosen = distinct_crops(scan_state.units[uid].top.items, top_k)
            if not chosen:
                raise ValueError(f"the scan found no crops of {uid} in {source.description}")
            examples[uid] = chosen
            pixels = load_crops(source, [c for _, c in chosen])
            y0, x0 = _placement(graph, tensor, size)
            total = torch.zeros(len(rotations), len(ids), dtype=torch.float64)
            for _, cid in chosen:
                crop = model.to_input(pixels[cid])[0].to(dev)
                s = crop.shape[-1]
                mask = disc_mask(s, taper, dev)
                fill = (crop * mask).sum((1, 2)) / mask.sum()  # the crop's mean colour inside the disc
                canvas = fill.reshape(1, 3, 1, 1).repeat(len(rotations), 1, size, size)
                canvas[:, :, y0 : y0 + s, x0 : x0 + s] = rotate_masked(crop, rotations, taper=taper, fill=fill)
                r = responses(model, us, canvas, pre_relu=pre_relu, batch_size=batch_size)
                total += r.double().cpu() if pre_relu else torch.relu(r).double().cpu()
            curves[i] = (total / len(chosen)).T.numpy()
            bar.update(1)
    finally:
        bar.close()
    settings = {"top_k": top_k, "step_deg": step, "taper_px": taper, "input_size": size,
                "images": source.description, "image_size": source.image_size,
                "preferred_from": "given" if preferred is not None else "radial_tuning (72 angles, 8 curvatures)"}
    return JointTuning(graph.name, ids, rotations, curves, pref, examples, pre_relu, settings)
