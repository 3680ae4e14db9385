"""`build_report`: compute (or reuse) every piece of a family's report and write the site.

The site under `out`:

- ``index.html``: the network's trunk layers and their families, linking to the family pages;
- ``<family>/index.html``: the family page; ``<family>/units/<layer>_<channel>.html``: a page per
  unit; ``<family>/img/``: feature visualizations and dataset crops (PNG);
- ``assets/``: the stylesheet and the script; ``site.json``: what has been built (the index is
  rebuilt from it, so several families, of several networks, can share one folder);
- ``_cache/``: the computations, keyed by the weights' fingerprint and their settings
  (`circuits.report.cache`), so a second run with nothing changed only redraws.

Every file is written atomically; pages are written after everything they show, so an
interrupted run leaves the previous pages (or none), never half of one.

Example:
    >>> import tempfile, weights
    >>> from circuits.report.settings import ReportSettings
    >>> s = ReportSettings(vis_steps=2, n_angles=8, curvatures=(0.5,), heat_orientations=8, heat_curvatures=2,
    ...                    images=None)
    >>> r = build_report(weights.model("handbuilt"), "mixed3b:379,mixed3b:406", tempfile.mkdtemp(), settings=s,
    ...                  progress=False)   # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from circuits.core.files import atomic_path
from circuits.report import compute, pages
from circuits.report.assets import SCRIPT, STYLE
from circuits.report.cache import Cache, fingerprint
from circuits.report.settings import ReportSettings

__all__ = ["build_report", "ReportResult", "check_out_folder", "SITE_FILE"]

SITE_FILE = "site.json"
CACHE_DIR = "_cache"
SITE_FORMAT = "circuits-report-site/1"


@dataclass
class ReportResult:
    """What `build_report` wrote: the family page, the unit pages, and which computations ran."""

    index: Path
    family_page: Path
    unit_pages: list[Path]
    computed: list[str]
    reused: list[str]
    seconds: dict[str, float] = field(default_factory=dict)


def check_out_folder(out: str | os.PathLike) -> Path:
    """The output folder, refused (before any work) if it is a file, not writable, or a non-empty
    folder that is not a report site (a report never writes over other files)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a folder (created if missing)")
    if out.is_dir():
        # A run interrupted before its first pages leaves only the cache: still a report's folder.
        if any(out.iterdir()) and not (out / SITE_FILE).is_file() and not (out / CACHE_DIR).is_dir():
            raise FileExistsError(f"--out {out} is a non-empty folder that is not a report site (no {SITE_FILE}); "
                                  "give an empty or new folder, or one a previous `circuits report` wrote")
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(f"--out {out} is not writable")
    else:
        parent = out.resolve().parent
        if not parent.is_dir():
            raise FileNotFoundError(f"--out {out}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(f"--out {out}: folder {parent} is not writable")
    return out


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _write_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    data = buf.getvalue()
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return  # unchanged: a rerun rewrites nothing
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _family_record(spec, model):
    """(id, name, units) of a family id / Family / unit list, resolved against the model."""
    from circuits import families as fam

    units = fam.units_of(spec.split(",") if isinstance(spec, str) and "," in spec else spec, model)
    if not units:
        raise ValueError(f"{spec!r} names no units")
    layers = sorted({u.layer for u in units})
    if len(layers) != 1:
        raise ValueError(f"a report's family holds units of one layer; {spec!r} spans {', '.join(layers)}")
    f = None
    if isinstance(spec, fam.Family):
        f = spec
    elif isinstance(spec, str) and "," not in spec:
        try:
            f = fam.family(spec, model)
        except (KeyError, ValueError):
            f = None
    if f is not None:
        return f.id, f.name, units
    ids = [u.id for u in units]
    return ids[0] if len(ids) == 1 else f"{layers[0]}:{len(ids)}_units", ", ".join(ids), units


def _network_info(model) -> dict:
    from circuits import families as fam

    g = model.graph
    layers = []
    for name in g.trunk_layers:
        fs = [f for f in fam.families(model, name) if f.units]
        layers.append({"name": name, "channels": g.node(name).channels, "rf": g.receptive_field(name).size,
                       "families": [(f.id, f.name, len(f.units)) for f in fs]})
    return {"layers": layers}


def _read_site(out: Path) -> dict:
    p = out / SITE_FILE
    if p.is_file():
        try:
            rec = json.loads(p.read_text())
            if rec.get("format") == SITE_FORMAT:
                return rec
        except ValueError:
            pass
    return {"format": SITE_FORMAT, "networks": {}, "families": {}}


def _slug(family_id: str, network: str) -> str:
    return f"{network}-{family_id}".replace(":", "-").replace("/", "-").replace(" ", "_")


def build_report(
    model,
    family,
    out: str | os.PathLike,
    *,
    settings: ReportSettings = ReportSettings(),
    early=None,
    weights_label: str | None = None,
    device=None,
    extra_sections: Sequence[Callable] = (),
    progress: bool = True,
) -> ReportResult:
    """Compute (or reuse from the cache) and write the report of `family` on `model` under `out`.

    family: a family id (``"mixed3b:curves"``), a `Family`, or unit ids of one layer.
    early: the family below (e.g. ``"mixed3a:hb_early_curve_bank"``) for the weights by
        orientation difference and the editing experiment; None leaves both out.
    weights_label: how the pages name the weights (default ``model.source``).
    device: where the dataset scan runs (default: the model's device).
    extra_sections: callables ``(model, units, settings, cache, progress) -> (anchor, title,
        html) | None`` adding family-page sections after the rotated dataset examples.
    """
    from tqdm.auto import tqdm

    settings.check()
    out = check_out_folder(out)
    fid, fname, units = _family_record(family, model)
    early_units = None
    early_id = None
    if early is not None:
        early_id, _, early_units = _family_record(early, model)
        if early_units[0].layer == units[0].layer:
            raise ValueError(f"the early family {early_id} lies in the family's own layer {units[0].layer}; "
                             "give the family below")
    ids = [u.id for u in units]
    t0 = time.perf_counter()
    fp = fingerprint(model)
    cache = Cache(out / CACHE_DIR, fp)
    seconds: dict[str, float] = {"fingerprint": time.perf_counter() - t0}

    steps = ["vis", "tuning", "heatmap", "weights"] + (["scan", "joint"] if settings.images else []) + (
        ["early", "edit"] if early_units else []) + [f"extra{i}" for i in range(len(extra_sections))]
    bar = tqdm(total=len(steps), desc="report", unit="part", disable=not progress)
    results: dict[str, dict] = {}

    def run(name: str, key: dict, fn: Callable[[], dict]) -> dict:
        bar.set_postfix_str(name)
        t = time.perf_counter()
        r = cache.get(name, {"units": ids, **key}, fn)
        seconds[name] = time.perf_counter() - t
        bar.update(1)
        return r

    try:
        results["vis"] = run("vis", settings.part("vis"), lambda: compute.feature_vis(model, units, settings, progress))
        results["tuning"] = run("tuning", settings.part("tuning"), lambda: compute.tuning(model, units, settings, progress))
        results["heatmap"] = run("heatmap", settings.part("heatmap"), lambda: compute.heatmap(model, units, settings, progress))
        results["weights"] = run("weights", settings.part("weights"),
                                 lambda: compute.unit_weights(model, units, settings, progress))
        images = compute.images_key(settings)  # the folder's contents are part of the scan's key
        if settings.images:
            results["scan"] = run("scan", {**settings.part("scan"), "images_key": images},
                                  lambda: compute.dataset(model, units, settings, progress, device))
        prefs = [results["tuning"]["metrics"][u]["pref_deg"] for u in ids]
        prefs = [np.nan if p is None else p for p in prefs]
        joint_note = ""
        if settings.images:
            if len(ids) < 2 or not np.isfinite(prefs).all():
                joint_note = ("No joint tuning: it needs at least two units, each with a preferred orientation "
                              f"(here {int(np.isfinite(prefs).sum())} of {len(ids)} have one).")
                bar.update(1)
            else:
                results["joint"] = run("joint", {**settings.part("joint"), "images_key": images},
                                       lambda: compute.joint(model, units, settings, prefs, progress))
        else:
            joint_note = "No images were given (--images): no rotated dataset examples."
        if early_units:
            ekey = {"early": [u.id for u in early_units], **settings.part("early"), **settings.part("tuning")}
            results["early"] = run("early", ekey, lambda: compute.early_weights(model, early_units, units, prefs,
                                                                                 settings, progress))
            results["edit"] = run("edit", {"early": [u.id for u in early_units], **settings.part("edit")},
                                  lambda: compute.editing(model, units, early_units, settings, progress))
        extras = []
        for i, fn in enumerate(extra_sections):
            t = time.perf_counter()
            sec = fn(model, units, settings, cache, progress)
            seconds[f"extra{i}"] = time.perf_counter() - t
            bar.update(1)
            if sec is not None:
                extras.append(sec)
    finally:
        bar.close()

    t = time.perf_counter()
    result = _draw(model, out, fid, fname, units, early_id, results, extras, joint_note, settings, fp,
                   weights_label or str(getattr(model, "source", None) or "given weights"), seconds)
    seconds["draw"] = time.perf_counter() - t
    result.computed, result.reused, result.seconds = list(cache.computed), list(cache.reused), seconds
    return result


def _draw(model, out: Path, fid, fname, units, early_id, results, extras, joint_note, settings, fp, weights_label,
          seconds) -> ReportResult:
    g = model.graph
    ids = [u.id for u in units]
    slug = _slug(fid, g.name)
    fdir = out / slug
    vis_files = {}
    for uid, img in zip(results["vis"]["units"], results["vis"]["images"]):
        vis_files[uid] = uid.replace(":", "_") + ".png"
        _write_png(fdir / "img" / "vis" / vis_files[uid], img)
    scan = None
    if "scan" in results:
        sc = results["scan"]
        for cid, px in zip(sc["crop_ids"], sc["crops"]):
            _write_png(fdir / "img" / "crops" / pages.crop_file(cid), px)
        scan = dict(sc["scan"])
        scan["source_description"] = sc["source"]
    facts = {u.id: {"branch": u.branch, "branch_channel": u.branch_channel, "rf": g.receptive_field(u.layer).size}
             for u in units}
    notes = []
    flat = results["vis"].get("flat") or []
    if flat:
        notes.append(f"The feature visualizations of {', '.join(flat)} do not make their unit fire (the objective "
                     f"stayed at 0 in {settings.vis_steps} steps): give more --steps.")
    if not results["weights"].get("after"):
        notes.append(f"No outputs on the unit pages: {results['weights'].get('why_no_after')}.")
    shown = settings.as_dict()
    d = pages.SiteData(
        family_id=fid, family_name=fname, network=g.name, weights=weights_label, fingerprint=fp, units=ids,
        layer=units[0].layer, unit_facts=facts, vis_files=vis_files, tuning=results["tuning"],
        heat=results["heatmap"], scan=scan, weights_io=results["weights"], early_id=early_id,
        early=results.get("early"), edit=results.get("edit"), joint=results.get("joint"), joint_note=joint_note,
        extra_sections=extras,
        settings={k: (list(v) if isinstance(v, tuple) else v) for k, v in shown.items()}, notes=notes)
    _write_text(out / "assets" / "report.css", STYLE)
    _write_text(out / "assets" / "report.js", SCRIPT)
    unit_pages = []
    for uid in ids:
        p = fdir / "units" / pages.unit_file(uid)
        _write_text(p, pages.unit_page(d, uid))
        unit_pages.append(p)
    fpage = fdir / "index.html"
    _write_text(fpage, pages.family_page(d))
    site = _read_site(out)
    site["networks"][g.name] = _network_info(model)
    site["families"][slug] = {"family_id": fid, "family_name": fname, "network": g.name, "weights": weights_label,
                              "units": ids, "fingerprint": fp}
    _write_text(out / "index.html", pages.index_page(site["networks"], site["families"]))
    _write_text(out / SITE_FILE, json.dumps(site, indent=1))
    return ReportResult(out / "index.html", fpage, unit_pages, [], [])
