"""The computations behind a report, each returning plain numbers and arrays (cacheable).

Every function takes the model, the units (resolved `Unit`s of one layer) and the
`ReportSettings`, calls the library piece that measures it, and returns a dict of
JSON-able values and numpy arrays, which `circuits.report.cache.Cache` stores.

- `feature_vis`: `circuits.tuning.discover.feature_visualizations` (one batched
  render of centre-neuron objectives), as uint8 images.
- `tuning`: `circuits.tuning.radial_tuning` and its metrics.
- `heatmap`: the article's synthetic heat maps (`circuits.tuning.heatmaps`: curves by
  orientation x curvature, angles by orientation x arm length, ...), pre-ReLU (the pages divide
  by the dataset's standard deviation when a scan is there).
- `dataset`: `circuits.dataset.scan.scan` summaries and the pixels of the crops shown.
- `unit_weights`: each unit's strongest inputs (from the trunk layer before) and
  outputs (to the trunk layer after), `circuits.analysis.expanded.weights_between`.
- `early_weights`: the early family's preferred orientations and the weights into the
  family, binned by orientation difference (`weight_by_orientation_difference`).
- `editing`: `circuits.editing.experiment.edit_experiment`.
- `joint`: `circuits.dataset.joint_tuning.joint_tuning`, the family's responses to its units'
  rotated dataset examples (the record its `to_json` writes).

Example:
    >>> import weights
    >>> from circuits.families import resolve_units
    >>> m = weights.model("handbuilt")
    >>> r = tuning(m, resolve_units(["mixed3b:379", "mixed3b:406"], m), ReportSettings(n_angles=8, curvatures=(0.5,)),
    ...            progress=False)
    >>> r["curves"].shape
    (2, 8)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from circuits.core.units import Unit
from circuits.report.settings import ReportSettings

__all__ = ["feature_vis", "tuning", "heatmap", "dataset", "unit_weights", "early_weights", "editing", "joint",
           "neighbour_layers", "image_source", "images_key"]


def feature_vis(model, units: Sequence[Unit], s: ReportSettings, progress: bool = True) -> dict:
    """Feature visualizations of the units: {"images": uint8 [U, H, W, 3], "activation": each unit's
    centre activation on its own image, "flat": the ids whose image does not make them fire}."""
    from circuits.tuning.discover import feature_visualizations

    x = feature_visualizations(model, [u.id for u in units], size=s.vis_size, steps=s.vis_steps, seed=s.seed,
                               progress=progress)
    from circuits.optvis import objectives
    from circuits.optvis.render import evaluate

    img = (x.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
    # Each unit read (centre, post-ReLU) on its own visualization: 0 means the render never made it fire.
    act = [evaluate(model, objectives.neuron(u.layer, u.channel, model=model), x[i : i + 1].detach())
           for i, u in enumerate(units)]
    flat = [u.id for u, a in zip(units, act) if not a > 0]
    return {"units": [u.id for u in units], "images": img, "activation": act, "flat": flat}


def tuning(model, units: Sequence[Unit], s: ReportSettings, progress: bool = True) -> dict:
    """Radial tuning curves [U, A] (post-ReLU, mean over curvature) and each unit's metrics."""
    from circuits.tuning.measure import radial_tuning

    rt = radial_tuning(model, list(units), n_angles=s.n_angles, curvatures=list(s.curvatures), progress=progress)
    return {"units": list(rt.units), "angles": np.asarray(rt.angles_deg, dtype=np.float64),
            "curves": np.asarray(rt.curves, dtype=np.float64),
            "metrics": {u: m.as_dict() for u, m in rt.metrics().items()}, "n_stimuli": int(rt.n_stimuli)}


def heatmap(model, units: Sequence[Unit], s: ReportSettings, progress: bool = True) -> dict:
    """The article's synthetic heat maps, pre-ReLU (`circuits.tuning.heatmaps`, kinds `s.heat_kinds`):
    {"units", "maps": {name: {"row_name", "rows", "cols", "values" [U, R, C]}}}; the pages divide by the
    dataset's standard deviation when a scan is there."""
    from circuits.tuning.heatmaps import heatmaps

    orientations = np.arange(s.heat_orientations) * 360.0 / s.heat_orientations
    hm = heatmaps(model, list(units), kinds=list(s.heat_kinds), orientations=orientations,
                  curvatures=np.linspace(0.0, 1.0, s.heat_curvatures), progress=progress)
    return {"units": list(hm.units), "maps": {name: {"row_name": m.row_name, "rows": np.asarray(m.rows, dtype=float),
                                                      "cols": np.asarray(m.cols, dtype=float),
                                                      "values": np.asarray(m.values, dtype=float)}
                                               for name, m in hm.maps.items()}}


def image_source(s: ReportSettings):
    """The `circuits.dataset.sources.ImageSource` of `s.images` (None: no dataset)."""
    if s.images is None:
        return None
    from circuits.dataset.sources import open_source

    return open_source(s.images, image_size=s.image_size)


def images_key(s: ReportSettings) -> str | None:
    """A hash of the images a scan reads: their names and, for a folder, each file's size and
    modification time, so that a changed folder is scanned again (None: no images)."""
    import hashlib
    import os

    source = image_source(s)
    if source is None:
        return None
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{source.kind}|{source.root}|{source.image_size}".encode())
    for name in source.names:
        h.update(name.encode())
        if source.root is not None:
            st = os.stat(os.path.join(source.root, name))
            h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def dataset(model, units: Sequence[Unit], s: ReportSettings, progress: bool = True, device=None) -> dict:
    """The scan's summary per unit and the pixels (uint8 [H, W, 3]) of every crop a page shows."""
    from circuits.dataset.scan import load_crops, scan

    source = image_source(s)
    home = next(model.parameters()).device
    if device is not None:
        model.to(device)  # the scan runs where the model is; moved back below
    try:
        res = scan(model, [u.id for u in units], source, stride=s.stride, top_k=s.top_k, reservoir=s.per_bin,
                   limit=s.max_images, progress=progress, device=device)
    finally:
        model.to(home)
    data = res.to_json(source.names)
    ids: list[str] = []
    for summ in data["units"].values():
        ids += [c["crop_id"] for c in summ["top_k"] + summ["bottom_k"]]
        ids += [c["crop_id"] for b in summ["samples"]["bins"] for c in b["crops"]]
    ids = list(dict.fromkeys(ids))
    pixels = load_crops(source, ids) if ids else {}
    crops = {cid: pixels[cid].permute(1, 2, 0).numpy().astype(np.uint8) for cid in ids}
    return {"scan": data, "crop_ids": ids, "crops": [crops[c] for c in ids], "source": source.description}


def neighbour_layers(model, layer: str) -> tuple[str | None, str | None, str]:
    """The trunk layers before and after `layer` where weights between units are defined, and why
    there is none after (None where there is none: not a trunk layer, outside the network's span of
    expanded weights, or, after, where the network is all zero from there on)."""
    from circuits.core.extent import last_live_layer

    g = model.graph
    trunk = list(g.trunk_layers)
    if layer not in trunk:
        return None, None, f"{layer} is not a trunk layer of {g.name} (a branch tensor): no layer before or after"
    i = trunk.index(layer)
    before = trunk[i - 1] if i > 0 and g.in_expanded_span(trunk[i - 1]) else None
    nxt = trunk[i + 1] if i + 1 < len(trunk) else None
    why = ""
    after = nxt if nxt is not None and g.in_expanded_span(nxt) else None
    if nxt is None:
        why = f"{layer} is the last layer of {g.name}"
    elif after is None:
        why = f"{nxt} lies outside the span of weights between units of {g.name} ({' to '.join(g.expanded_span)})"
    live = last_live_layer(model)
    if after is not None and live is not None and g.index(after) > g.index(live):
        why = (f"these weights have nothing past {live}: every convolution after it is all zero, so "
               f"{after} is 0 for every input")
        after = None
    return before, after, why


def _how(src: str, dst: str, g) -> str:
    """"direct" (a convolution's kernel) or the ops linearized on the way ("expanded: relu, maxpool")."""
    from circuits.analysis.expanded import connection

    c = connection(src, dst, g)
    return "direct" if c.direct else "expanded" + (f": {', '.join(c.linearized)}" if c.linearized else "")


def _top(totals: np.ndarray, ids: list[str], n: int, pair) -> dict:
    """The n largest positive and n most negative totals: (unit id, total, how they connect)."""
    order = np.argsort(-totals, kind="stable")
    pos = [(ids[i], float(totals[i]), pair(ids[i])) for i in order[:n] if totals[i] > 0]
    neg = [(ids[i], float(totals[i]), pair(ids[i])) for i in order[::-1][:n] if totals[i] < 0]
    return {"excite": pos, "inhibit": neg}


def unit_weights(model, units: Sequence[Unit], s: ReportSettings, progress: bool = True) -> dict:
    """Each unit's strongest inputs and outputs: the kernel sums of the weights (direct where the
    units connect directly, else expanded) from every channel of the trunk layer before, and into
    every channel of the trunk layer after; each listed with how it connects (`_how`)."""
    from tqdm.auto import tqdm

    from circuits.analysis.expanded import weights_between

    g = model.graph
    layer = units[0].layer
    before, after, why = neighbour_layers(model, layer)
    out = {"before": before, "after": after, "why_no_after": why, "inputs": {}, "outputs": {}}
    bar = tqdm(total=int(before is not None) + int(after is not None), desc="weights", disable=not progress,
               leave=False)
    if before is not None:
        src = [f"{before}:{c}" for c in range(g.node(before).channels)]
        w = weights_between(model, src, list(units)).flatten(2).sum(-1).double().numpy()  # [U, C]
        for k, u in enumerate(units):
            out["inputs"][u.id] = _top(w[k], src, s.n_top_weights, lambda x, u=u: _how(x, u.id, g))
        bar.update(1)
    if after is not None:
        dst = [f"{after}:{c}" for c in range(g.node(after).channels)]
        w = weights_between(model, list(units), dst).flatten(2).sum(-1).double().numpy()  # [C, U]
        for k, u in enumerate(units):
            out["outputs"][u.id] = _top(w[:, k], dst, s.n_top_weights, lambda x, u=u: _how(u.id, x, g))
        bar.update(1)
    bar.close()
    return out


def early_weights(model, early: Sequence[Unit], units: Sequence[Unit], pref_deg: Sequence[float],
                  s: ReportSettings, progress: bool = True) -> dict:
    """The early family's preferred orientations (its radial tuning), every (curve, early) pair's
    weight (kernel sum), and their means binned by orientation difference (curve - early)."""
    from circuits.analysis.expanded import weight_by_orientation_difference, weights_between
    from circuits.tuning.measure import radial_tuning
    from circuits.tuning.metrics import curve_metrics

    rt = radial_tuning(model, list(early), n_angles=s.n_angles_early, curvatures=list(s.curvatures),
                       progress=progress)
    e_pref = np.array([curve_metrics(c).pref_deg for c in rt.curves], dtype=np.float64)
    c_pref = np.asarray(pref_deg, dtype=np.float64)
    ok_e, ok_c = np.isfinite(e_pref), np.isfinite(c_pref)
    if not ok_e.any() or not ok_c.any():
        raise ValueError("the early -> family weights by orientation need units with a preferred orientation in "
                         f"both families (early: {int(ok_e.sum())} of {len(early)}, family: {int(ok_c.sum())})")
    e_units = [u for u, k in zip(early, ok_e) if k]
    c_units = [u for u, k in zip(units, ok_c) if k]
    w = weights_between(model, e_units, c_units).flatten(2).sum(-1).double()
    prof = weight_by_orientation_difference(w, e_pref[ok_e], c_pref[ok_c], period=360.0, bin_width=s.bin_width)
    mean = prof.mean.numpy()
    scale = float(np.nanmax(np.abs(mean))) if np.isfinite(mean).any() else math.nan
    return {"early": [u.id for u in e_units], "early_pref": e_pref[ok_e], "family": [u.id for u in c_units],
            "pairs": w.numpy(), "diffs": prof.diffs.numpy(), "centres": prof.centres.numpy(), "mean": mean,
            "counts": prof.counts.numpy(), "normalised": mean / scale if scale and math.isfinite(scale) else mean,
            "silent_early": [u.id for u, k in zip(early, ok_e) if not k]}


def editing(model, units: Sequence[Unit], early: Sequence[Unit], s: ReportSettings, progress: bool = True) -> dict:
    """The "Curve Circuits" editing experiment: radial tuning unedited, with only the early family's
    inputs, and with only their positive weights."""
    from circuits.editing.experiment import edit_experiment

    exp = edit_experiment(model, [u.id for u in units], [u.id for u in early], n_angles=s.n_angles_edit,
                          curvatures=list(s.curvatures), progress=progress)
    return {"units": list(exp.units), "angles": np.asarray(exp.angles_deg, dtype=np.float64),
            "curves": {c: np.asarray(v, dtype=np.float64) for c, v in exp.curves.items()}, "route": exp.route,
            "gap": exp.linearization_gap, "rows": exp.rows(), "summary": exp.summary(), "edits": exp.edits}


def joint(model, units: Sequence[Unit], s: ReportSettings, pref_deg: Sequence[float], progress: bool = True) -> dict:
    """The joint tuning curves on rotated dataset examples (`JointTuning.to_json`), the preferred
    orientations being the report's radial tuning's."""
    from circuits.dataset.joint_tuning import joint_tuning
    from circuits.dataset.sources import ImageSource

    source = image_source(s)
    if s.max_images is not None:
        source = ImageSource(source.kind, source.names[: s.max_images], source.image_size, source.root)
    jt = joint_tuning(model, [u.id for u in units], source, top_k=s.joint_top_k, step=s.joint_step,
                      preferred={u.id: float(p) for u, p in zip(units, pref_deg)}, progress=progress)
    return jt.to_json()
