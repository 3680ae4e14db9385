"""Tuning measurements: how units respond to synthetic stimuli, at the speed of a sweep.

A unit is read at its centre position (Lucid's neuron: the middle of the map), with
each stimulus centred on that position's receptive field. Sweeps are fast because they
use what the layer graph knows:

* the input is the smallest square that contains the unit's whole receptive field
  (97 px instead of 224 for InceptionV1's mixed3b, 133 instead of 299 for InceptionV3's
  mixed2), so the unit sees exactly what it sees in the larger image;
* everything is read from the model's graph (`model.graph`) and drawn in its input
  range (`model.input_range`), so the same calls work on InceptionV1 and InceptionV3;
* only the receptive-field cone of the centre position is computed (`circuits.tuning.cone`:
  each tensor on the window the read depends on, exact); a model with active hooks
  runs its own truncated forward instead (`model.run(x, until=...)`), so ablations and
  other hooks apply;
* stimuli are rendered lazily, batch by batch, under `torch.inference_mode`, in
  channels-last layout (faster convolutions and pools on CPU);
* batches are sized to a memory budget, and a batch that still does not fit is split
  in halves instead of crashing.

The model's own hooks (ablations, edits) stay active during a measurement.

Example:
    >>> import weights
    >>> model = weights.model("random")
    >>> rt = radial_tuning(model, ["mixed3b:379", "mixed3b:406"], n_angles=8,
    ...                    curvatures=[0.5, 1.0], progress=False)
    >>> rt.curves.shape, rt.n_stimuli
    ((2, 8), 16)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from circuits.tuning import cone
from circuits.core import graph
from circuits.core.model import InceptionV1, InceptionV3
from circuits.core.networks import network_of
from circuits.tuning.stimuli import Stimuli, curve_sweep
from circuits.tuning.metrics import TuningMetrics, angles_for, curve_metrics
from circuits.core.units import Unit
from circuits.families import units_of

__all__ = [
    "DEFAULT_CURVATURES",
    "responses",
    "radial_tuning",
    "response_map",
    "orientation_curvature_map",
    "RadialTuning",
    "ResponseMap",
    "input_size_for",
    "check_receptive_field",
    "default_curve_params",
    "read_name",
]

# Eight curvatures from nearly straight to a half circle (fractions of a half circle:
# the arc subtends curvature * 180 degrees), as in the article's figures.
DEFAULT_CURVATURES: tuple[float, ...] = tuple(float(c) for c in np.linspace(0.125, 1.0, 8))

# Default curve stimulus relative to the layer's receptive field: the arc is about half
# the receptive field long (the curve detectors' feature visualizations span about
# that), and thin (the article's "thin dark arcs on a light background").
ARC_LENGTH_PER_RF = 0.5
WIDTH_PER_RF = 1.0 / 30.0

DEFAULT_MEMORY_BUDGET = 512 * 2**20  # bytes of activations per batch
MAX_BATCH = 256
TENSOR_LIMIT = 24 * 2**20  # bytes of the largest activation of a batch


# --- which tensor, where ------------------------------------------------------


def read_name(unit: Unit, pre_relu: bool = False) -> str:
    """The hook name whose channel `unit.branch_channel` is the unit's value.

    >>> read_name(Unit("mixed3b", 379, graph.INCEPTION_V1), pre_relu=True)
    'mixed3b_5x5_pre_relu'
    """
    b = unit.branch
    if not pre_relu:
        return b
    network = unit.network
    found = network.conv_of(unit.layer, unit.channel)
    if found is None:
        raise ValueError(
            f"{unit.id} has no pre-ReLU value: {b} is a {network.node(b).op} output of {network.name}, "
            "not a ReLU (use pre_relu=False)"
        )
    return found[0]


def _hw(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def _rf_span(unit: Unit, size) -> tuple[tuple[float, float], tuple[float, float], int]:
    """Input-pixel extent ((y0, y1), (x0, x1)) of the unit's receptive field at its centre position, and its side."""
    hw = _hw(size)
    rf = unit.network.receptive_field(unit.branch, hw)
    cy, cx = rf.centre_of(*unit.centre(hw))
    half = (rf.size - 1) / 2
    return (cy - half, cy + half), (cx - half, cx + half), rf.size


def _fits(units: Sequence[Unit], size) -> bool:
    h, w = _hw(size)
    if units[0].network.min_input_size(units[0].layer) > min(h, w):
        return False
    for u in units:
        (y0, y1), (x0, x1), _ = _rf_span(u, (h, w))
        if y0 < 0 or x0 < 0 or y1 > h - 1 or x1 > w - 1:
            return False
    return True


def input_size_for(units, model=None) -> int:
    """Smallest square input (pixels) that holds the whole receptive field of every unit at its centre.

    Units must share a layer (their centres depend on the layer's map). model: the
    model (or graph) the units belong to (not needed for resolved Units).

    >>> from circuits.core.networks import DECLARED
    >>> input_size_for("mixed3b:379", DECLARED["InceptionV1"]), input_size_for("mixed2:67", DECLARED["InceptionV3"])
    (97, 133)
    """
    us = _one_layer(units_of(units, model))
    network = us[0].network
    start = max(max(_rf_span(u, 224)[2] for u in us), network.min_input_size(us[0].layer))
    for size in range(start, start + 2048):
        if _fits(us, size):
            return size
    raise ValueError(f"no input size up to {start + 2048} px holds the receptive fields of {us[0].layer}")  # pragma: no cover


def check_receptive_field(units, size, model=None) -> None:
    """Raise if an image of `size` (int or (H, W)) does not contain every unit's receptive field at its centre.

    A unit whose receptive field reaches past the image would see padding, and its
    response would not be the one it gives to the same stimulus in a larger image.
    model: as in `input_size_for`.
    """
    us = units_of(units, model)
    h, w = _hw(size)
    for layer, group in _by_layer(us).items():
        if not _fits(group, (h, w)):
            need = max(_rf_span(u, 224)[2] for u in group)
            what = "is smaller than" if min(h, w) < need else "does not contain"
            raise ValueError(
                f"a {h}x{w} image {what} the receptive field of {group[0].network.name} {group[0].layer} units "
                f"({need} px) at their centre position; use an input of at least {input_size_for(group)} px"
            )


def _one_layer(us: list[Unit]) -> list[Unit]:
    layers = sorted({u.layer for u in us})
    if len(layers) != 1:
        raise ValueError(f"units must share one layer here, got layers {layers}")
    return us


def _by_layer(us: Sequence[Unit]) -> dict[str, list[Unit]]:
    out: dict[str, list[Unit]] = {}
    for u in us:
        out.setdefault(u.layer, []).append(u)
    return out


def default_curve_params(layer: str, model) -> dict[str, Any]:
    """Curve stimulus parameters sized to `layer`'s receptive field (pixels).

    model: the model (or graph) that has `layer`.

    >>> from circuits.core.graph import INCEPTION_V1
    >>> default_curve_params("mixed3b", INCEPTION_V1)
    {'arc_length': 45.5, 'width': 3.0, 'fg': 'black', 'bg': 'white'}
    """
    rf = network_of(model).receptive_field(layer).size
    return {
        "arc_length": round(ARC_LENGTH_PER_RF * rf, 1),
        "width": max(1.0, round(WIDTH_PER_RF * rf, 1)),
        "fg": "black",
        "bg": "white",
    }


# --- memory ---------------------------------------------------------------------

_malloc_tuned = False


def _retain_freed_memory() -> None:
    """Ask glibc to keep freed blocks of up to 32 MiB instead of returning them to the OS.

    A sweep allocates and frees the same activation sizes batch after batch; by default
    glibc unmaps large blocks and every batch page-faults them back in, which on
    virtual machines costs more than the convolutions themselves (measured 1.5-3x on
    a whole sweep; see experiments/bench_sweep.py). Process-wide, done once; a no-op
    off glibc. Set CIRCUITS_KEEP_MALLOC=1 to leave malloc alone.
    """
    global _malloc_tuned
    if _malloc_tuned or os.environ.get("CIRCUITS_KEEP_MALLOC"):
        return
    _malloc_tuned = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 * 2**20)
        libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):  # not glibc
        pass


def _bytes_per_image(names: Sequence[str], size: int, network: graph.Graph) -> tuple[int, int]:
    """(total, largest) bytes of float32 activations one image needs on the way to `names` (upper bounds)."""
    nodes = set()
    for n in names:
        nodes |= network.ancestors(n)
    sizes = []
    for n in nodes:
        h, w = network.output_hw(n, size)
        sizes.append(4 * network.node(n).channels * h * w)
    return sum(sizes), max(sizes)


def _is_oom(e: BaseException) -> bool:
    msg = str(e).lower()
    return isinstance(e, MemoryError) or "out of memory" in msg or "can't allocate memory" in msg or (
        "not enough memory" in msg
    )


# --- the measurement loop --------------------------------------------------------------


def _run_readout(
    model,
    make_batch: Callable[[int, int], torch.Tensor],
    n: int,
    reads: list[tuple[str, int]],
    batch_size: int,
    progress: bool,
    desc: str,
) -> torch.Tensor:
    """Responses [n, len(reads)]: (hook name, channel) read at the centre position of each batch.

    Batches that run out of memory are split in halves; the split size is kept for
    the rest of the run.
    """
    from tqdm.auto import tqdm

    names = sorted({r[0] for r in reads}, key=model.graph.index)
    last = names[-1]
    out = torch.empty(n, len(reads), dtype=torch.float32)
    bs = max(1, int(batch_size))
    with tqdm(total=n, desc=desc, unit="stim", disable=not progress, leave=False) as bar:
        start = 0
        while start < n:
            stop = min(n, start + bs)
            try:
                out[start:stop] = _read_batch(model, make_batch(start, stop), names, last, reads)
            except (RuntimeError, MemoryError) as e:
                if not _is_oom(e):
                    raise
                if bs == 1:
                    raise MemoryError(
                        f"one stimulus does not fit in memory on the way to {last} "
                        f"({type(e).__name__}: {e})"
                    ) from e
                bs = max(1, bs // 2)
                continue
            bar.update(stop - start)
            start = stop
    return out


def _read_batch(model, x, names, last, reads) -> torch.Tensor:
    hw = (int(x.shape[-2]), int(x.shape[-1]))
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        if _cone_ok(model, tuple(names), hw):
            # Only the receptive-field cone of the centre position: same numbers, ~2x less work.
            chans: dict[str, list[int]] = {}
            for name, ch in reads:
                chans.setdefault(name, []).append(ch)
            vals = cone.centre_values(model, x, names, chans)
            col = {n: {c: i for i, c in enumerate(cs)} for n, cs in chans.items()}
            return torch.stack([vals[name][:, col[name][ch]].float() for name, ch in reads], dim=1)
        # The model's own run (its hooks apply): one truncated run to every tensor read.
        cy, cx = model.graph.centre_position(names[0], hw)
        acts = model.run_with_cache(x, names) if len(names) > 1 else {last: model.run(x, until=last)}
    return torch.stack([acts[name][:, ch, cy, cx].float() for name, ch in reads], dim=1)


_PLAIN_MODELS = (InceptionV1, InceptionV3)


def _cone_ok(model, names: tuple[str, ...], hw: tuple[int, int]) -> bool:
    """Whether the cone shortcut gives what `model.run` would: a plain declared network, no hooks, RF inside."""
    # Exact classes only: a subclass may change what a run computes, which the cone would bypass.
    if type(model) not in _PLAIN_MODELS or model.active_hooks:
        return False
    try:
        cone.cone_windows(names, *hw, model.graph)
    except cone.ConeError:
        return False
    return True


def _check_stimulus_range(x: torch.Tensor, model) -> None:
    """Refuse images that are plainly in another network's input range (InceptionV1's
    [-117, 138] given to InceptionV3's [-1, 1], say): their responses would be garbage.

    Only values more than one whole range beyond it count: perturbed or noisy inputs a
    little outside the range are legitimate experiments, a 100x scale mismatch is not.
    """
    if not x.numel():
        return
    lo, hi = model.input_range
    slack = hi - lo
    vmin, vmax = (float(v) for v in torch.aminmax(x.detach()))
    if vmin < lo - slack or vmax > hi + slack:
        raise ValueError(
            f"stimuli have values in [{vmin:.4g}, {vmax:.4g}], outside {model.graph.name}'s input range "
            f"[{lo:g}, {hi:g}]; render them with input_range=model.input_range (or convert images with "
            "model.to_input)"
        )


def _default_batch(names: Sequence[str], size: int, memory_budget: int | None,
                   network: graph.Graph) -> int:
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else int(memory_budget)
    if budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    total, largest = _bytes_per_image(names, size, network)
    # Keep each activation tensor under glibc's 32 MiB mmap threshold so that its memory
    # is reused between batches (see _retain_freed_memory); larger batches measured slower.
    return int(max(1, min(MAX_BATCH, budget // max(1, total), TENSOR_LIMIT // max(1, largest))))


def responses(
    model,
    units,
    stimuli: Stimuli | torch.Tensor,
    *,
    pre_relu: bool = False,
    size: int | None = None,
    batch_size: int | None = None,
    memory_budget: int | None = None,
    progress: bool = False,
    check_rf: bool = True,
) -> torch.Tensor:
    """Responses [N, U] of units (ids, family ids or Units) at their centre positions.

    stimuli: a `Stimuli` description (rendered batch by batch, centred on each layer's
        receptive-field centre, on the smallest input that holds the receptive field,
        or on `size` px), or a tensor of model input [N, 3, H, W] used as it is (then
        the units are read at the centre of the map of that size).
    pre_relu: read the convolution's output before its ReLU.
    batch_size: stimuli per forward pass (default: as many as `memory_budget` bytes
        of activations allow, at most 256).
    check_rf: for a tensor of images, refuse a size whose border the units' receptive
        fields reach (they would see padding); False reads them anyway (e.g. 224 px
        photos for layers whose receptive field is larger).

    >>> import weights
    >>> from circuits.tuning.stimuli import Stimuli
    >>> r = responses(weights.model("random"), "conv2d0:3", Stimuli("line", {"orientation": [0, 90]}))
    >>> r.shape
    torch.Size([2, 1])
    """
    us = units_of(units, model)
    network = model.graph
    if isinstance(stimuli, torch.Tensor):
        if stimuli.dim() != 4 or stimuli.shape[1] != 3:
            raise ValueError(f"stimuli must be model input [N, 3, H, W], got shape {list(stimuli.shape)}")
        _check_stimulus_range(stimuli, model)
        if check_rf:
            check_receptive_field(us, tuple(stimuli.shape[-2:]))
        n = stimuli.shape[0]
        reads = [(read_name(u, pre_relu), u.branch_channel) for u in us]
        bs = batch_size or _default_batch([r[0] for r in reads], int(max(stimuli.shape[-2:])), memory_budget,
                                          network)
        _retain_freed_memory()
        return _run_readout(model, lambda a, b: stimuli[a:b], n, reads, bs, progress, "stimuli")
    if not isinstance(stimuli, Stimuli):
        raise TypeError(f"stimuli must be a circuits.tuning.stimuli.Stimuli or a tensor [N, 3, H, W], got {type(stimuli).__name__}")
    _retain_freed_memory()
    out = torch.empty(len(stimuli), len(us))
    index = {u: i for i, u in enumerate(us)}
    for layer, group in _by_layer(us).items():
        s = input_size_for(group) if size is None else int(size)
        if size is not None:
            check_receptive_field(group, s)
        centre = group[0].centre_in_input(s)
        reads = [(read_name(u, pre_relu), u.branch_channel) for u in group]
        bs = batch_size or _default_batch([r[0] for r in reads], s, memory_budget, network)
        r = _run_readout(
            model,
            # rendered in the model's input range: white is 138 for InceptionV1, 1 for InceptionV3
            lambda a, b: stimuli.render(size=s, centre=centre, start=a, stop=b, input_range=model.input_range),
            len(stimuli),
            reads,
            bs,
            progress,
            f"{layer} ({len(stimuli)} stimuli, {s}px)",
        )
        for j, u in enumerate(group):
            out[:, index[u]] = r[:, j]
    return out


# --- radial tuning ---------------------------------------------------------------------


@dataclass
class RadialTuning:
    """Radial tuning curves: post-ReLU responses to curves, averaged over curvature.

    angles_deg [A]: orientations (the article's convention); curves [U, A]; units:
    ids in row order; n_stimuli: stimuli run (all layers); stimulus: the curve
    parameters used per layer.
    """

    units: list[str]
    angles_deg: np.ndarray
    curves: np.ndarray
    curvatures: np.ndarray
    n_stimuli: int
    stimulus: dict[str, dict] = field(default_factory=dict)
    #: the graph of the network measured (its unit ids are that network's)
    network: graph.Graph | None = field(default=None, compare=False, repr=False)

    def curve(self, unit) -> np.ndarray:
        """The curve of one unit (id or Unit)."""
        uid = units_of(unit, self.network)[0].id
        if uid not in self.units:
            raise KeyError(f"{uid} was not measured; measured: {', '.join(self.units)}")
        return self.curves[self.units.index(uid)]

    def metrics(self) -> dict[str, TuningMetrics]:
        """Preferred orientation, peak, FWHM and echo of each curve, by unit id."""
        return {u: curve_metrics(c) for u, c in zip(self.units, self.curves)}

    def to_json(self) -> dict:
        return {
            "units": list(self.units),
            "angles_deg": [float(a) for a in self.angles_deg],
            "curvatures": [float(c) for c in self.curvatures],
            "curves": {u: [float(v) for v in c] for u, c in zip(self.units, self.curves)},
            "metrics": {u: m.as_dict() for u, m in self.metrics().items()},
            "n_stimuli": int(self.n_stimuli),
            "stimulus": self.stimulus,
        }


def _validate_curvatures(curvatures) -> np.ndarray:
    c = np.asarray(curvatures, dtype=np.float64).reshape(-1)
    if c.size == 0:
        raise ValueError("curvatures must not be empty")
    if not np.isfinite(c).all() or c.min() < 0 or c.max() > 1:
        raise ValueError(
            f"curvatures are fractions of a half circle in [0, 1] (0 straight, 1 half circle), got {c.tolist()}"
        )
    return c


def radial_tuning(
    model,
    units,
    n_angles: int = 720,
    curvatures: Sequence[float] = DEFAULT_CURVATURES,
    *,
    stimulus: Mapping[str, Any] | None = None,
    size: int | None = None,
    batch_size: int | None = None,
    memory_budget: int | None = None,
    progress: bool = True,
) -> RadialTuning:
    """Radial tuning curves of units: the published quantity ("Curve Detectors").

    For each of `n_angles` orientations (0, 360/n_angles, ... degrees) and each
    curvature, one curve stimulus centred on the unit's receptive field; the post-ReLU
    response at the centre position, averaged over curvature.

    stimulus: curve parameters overriding the layer's defaults
        (`default_curve_params`: arc length half the receptive field, thin, black
        on white), e.g. {"width": 2, "fg": "white", "bg": "black"}.
    size: input side in pixels (default: the smallest that holds the receptive field).
    """
    us = units_of(units, model)
    if not isinstance(n_angles, (int, np.integer)) or n_angles < 1:
        raise ValueError(f"n_angles must be a positive integer, got {n_angles!r}")
    curv = _validate_curvatures(curvatures)
    angles = angles_for(int(n_angles))
    curves = np.zeros((len(us), len(angles)))
    rows: dict = {}  # a unit named twice is measured once and fills both of its rows
    for i, u in enumerate(us):
        rows.setdefault(u, []).append(i)
    n_stimuli = 0
    used: dict[str, dict] = {}
    for layer, group in _by_layer(list(rows)).items():
        params = {**default_curve_params(layer, model), **dict(stimulus or {})}
        for bad in ("orientation", "curvature", "radius"):
            if bad in params:
                raise ValueError(f"{bad!r} is swept by radial_tuning; do not pass it in `stimulus`")
        sweep = curve_sweep(angles, curv, **params)
        r = responses(
            model, group, sweep, size=size, batch_size=batch_size, memory_budget=memory_budget, progress=progress
        )
        r = torch.relu(r).reshape(len(curv), len(angles), len(group)).mean(0)
        for j, u in enumerate(group):
            curves[rows[u]] = r[:, j].double().numpy()
        n_stimuli += len(sweep)
        used[layer] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}
    return RadialTuning([u.id for u in us], angles, curves, curv, n_stimuli, used, network=model.graph)


# --- response maps (the article's heat maps) ------------------------------------------------


@dataclass
class ResponseMap:
    """Responses over a grid of two stimulus parameters: values [U, len(rows), len(cols)].

    `scale` says what a value is: "activation" (raw, pre- or post-ReLU) or "std"
    (standard deviations from the mean of the supplied baseline).
    """

    units: list[str]
    kind: str
    row_name: str
    rows: np.ndarray
    col_name: str
    cols: np.ndarray
    values: np.ndarray
    pre_relu: bool
    scale: str = "activation"

    def of(self, unit) -> np.ndarray:
        """The [rows, cols] map of one unit."""
        uid = unit.id if isinstance(unit, Unit) else str(unit).strip()
        if uid not in self.units:
            raise KeyError(f"{uid} was not measured; measured: {', '.join(self.units)}")
        return self.values[self.units.index(uid)]


def _baseline_stats(baseline, us: list[Unit]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per unit from {unit id: samples} or an array [samples, U]."""
    if isinstance(baseline, Mapping):
        means, stds = [], []
        for u in us:
            key = u.id if u.id in baseline else u if u in baseline else None
            if key is None:
                raise KeyError(f"the baseline has no samples for {u.id} (it has {', '.join(map(str, baseline))})")
            x = np.asarray(baseline[key], dtype=np.float64).reshape(-1)
            means.append(x.mean())
            stds.append(x.std())
        mean, std = np.array(means), np.array(stds)
    else:
        x = np.asarray(baseline, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(us):
            raise ValueError(f"a baseline array must be [samples, {len(us)} units], got shape {list(x.shape)}")
        mean, std = x.mean(0), x.std(0)
    if not (np.isfinite(std).all() and (std > 0).all()):
        bad = [u.id for u, s in zip(us, std) if not (np.isfinite(s) and s > 0)]
        raise ValueError(f"the baseline has zero or undefined spread for {', '.join(bad)}: cannot express values in std units")
    return mean, std


def response_map(
    model,
    units,
    kind: str,
    rows: tuple[str, Sequence[float]],
    cols: tuple[str, Sequence[float]],
    *,
    fixed: Mapping[str, Any] | None = None,
    pre_relu: bool = False,
    baseline=None,
    size: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
) -> ResponseMap:
    """Responses to stimuli of `kind` over a grid: rows = (param, values), cols = (param, values).

    baseline: samples of each unit's activation ({unit id: samples} or [samples, U]),
        e.g. over a dataset; values are then (response - mean) / std of it.

    >>> import weights
    >>> m = response_map(weights.model("random"), "conv2d2:3", "angle", ("opening", [60, 120]),
    ...                  ("orientation", [0, 90, 180, 270]), fixed={"arm_length": 8, "width": 1},
    ...                  progress=False)
    >>> m.values.shape
    (1, 2, 4)
    """
    us = units_of(units, model)
    (rname, rvals), (cname, cvals) = rows, cols
    rv = np.asarray(rvals, dtype=np.float64).reshape(-1)
    cvv = np.asarray(cvals, dtype=np.float64).reshape(-1)
    rr, cc = np.meshgrid(rv, cvv, indexing="ij")
    stim = Stimuli(kind, {rname: rr.reshape(-1), cname: cc.reshape(-1)}, dict(fixed or {}))
    r = responses(model, us, stim, pre_relu=pre_relu, size=size, batch_size=batch_size, progress=progress)
    values = r.double().numpy().T.reshape(len(us), len(rv), len(cvv))
    what = "activation"
    if baseline is not None:
        mean, std = _baseline_stats(baseline, us)
        values = (values - mean[:, None, None]) / std[:, None, None]
        what = "std"
    return ResponseMap([u.id for u in us], kind, rname, rv, cname, cvv, values, pre_relu, what)


def orientation_curvature_map(
    model,
    units,
    orientations: Sequence[float] = tuple(range(0, 360, 5)),
    curvatures: Sequence[float] = tuple(np.linspace(0.0, 1.0, 11)),
    *,
    stimulus: Mapping[str, Any] | None = None,
    pre_relu: bool = False,
    baseline=None,
    size: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
) -> ResponseMap:
    """The article's heat map: responses to curves, rows = curvature, columns = orientation.

    Stimuli default to `default_curve_params` of the units' layer; `stimulus` overrides
    (e.g. {"filled": True} or colours).
    """
    us = units_of(units, model)
    layer = _one_layer(us)[0].layer
    _validate_curvatures(curvatures)
    params = {**default_curve_params(layer, model), **dict(stimulus or {})}
    return response_map(
        model, us, "curve", ("curvature", curvatures), ("orientation", orientations), fixed=params,
        pre_relu=pre_relu, baseline=baseline, size=size, batch_size=batch_size, progress=progress,
    )
