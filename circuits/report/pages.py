"""The HTML of the site: the index, a family page ("Curve Detectors" for one family) and a
page per unit (Microscope-like). Pure functions from a `SiteData` to strings.

Every page links only local files (the stylesheet, the script and images, by relative
paths) and carries a content security policy that allows nothing else
(`circuits.report.assets.CSP`).

Example:
    >>> page("t", "<p>x</p>", depth=0).count("assets/report.css")
    1
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from circuits.report import svg
from circuits.report.assets import CSP

__all__ = ["SiteData", "page", "family_page", "unit_page", "index_page", "unit_file", "crop_file", "SECTIONS"]


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _f(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def unit_file(uid: str) -> str:
    """A unit page's file name inside the family's units/ folder."""
    return uid.replace(":", "_") + ".html"


def crop_file(cid: str) -> str:
    """A crop's image file name (crop ids hold characters file names should not)."""
    import hashlib

    return hashlib.blake2b(cid.encode(), digest_size=10).hexdigest() + ".png"


@dataclass
class SiteData:
    """What a family's pages show (computed results, see `circuits.report.compute`)."""

    family_id: str
    family_name: str
    network: str
    weights: str
    fingerprint: str
    units: list[str]  # in the family's order
    layer: str
    unit_facts: dict[str, dict]  # uid -> branch, branch_channel, rf
    vis_files: dict[str, str]  # uid -> file name under img/vis
    tuning: dict
    heat: dict
    scan: dict | None
    weights_io: dict
    early_id: str | None = None
    early: dict | None = None
    edit: dict | None = None
    joint: dict | None = None  # `JointTuning.to_json()`, or None with `joint_note` saying why
    joint_note: str = ""
    extra_sections: list[tuple[str, str, str]] = field(default_factory=list)  # (anchor, title, html)
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def pref(self, uid: str) -> float | None:
        m = self.tuning["metrics"].get(uid, {})
        v = m.get("pref_deg")
        return v if v is not None and math.isfinite(v) else None

    def ordered(self) -> list[str]:
        """Units by preferred orientation (units without one last), as the article orders them."""
        return sorted(self.units, key=lambda u: (self.pref(u) is None, self.pref(u) or 0.0))

    def std_of(self, uid: str) -> tuple[float, float] | None:
        """(mean, std) of the unit's pre-ReLU activation over the dataset, if a scan with spread exists."""
        if not self.scan:
            return None
        s = self.scan["units"].get(uid)
        if not s or not s.get("std_pre_relu") or not math.isfinite(s["std_pre_relu"]) or s["std_pre_relu"] <= 0:
            return None
        return float(s["mean_pre_relu"]), float(s["std_pre_relu"])


def page(title: str, body: str, depth: int, nav: Sequence[tuple[str, str]] = ()) -> str:
    """A whole HTML page; `depth`: folders below the site root (for the relative asset paths)."""
    up = "../" * depth
    links = "".join(f'<a href="{_e(h)}">{_e(t)}</a>' for h, t in [(f"{up}index.html", "all layers and families"),
                                                                    *nav])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{_e(title)}</title><link rel="stylesheet" href="{up}assets/report.css"></head>'
            f'<body><header class="site">{links}</header><main>{body}</main>'
            f'<script src="{up}assets/report.js"></script></body></html>\n')


def _radial_figure(d: SiteData, curves: dict, angles, *, link_prefix: str, normalise: str = "unit",
                   title: str = "radial tuning", size: int = 420, keys: bool = True) -> str:
    """The radial plot and (if `keys`) its keys (swatch, link, preferred angle), one `.radial` figure."""
    prefs = {u: d.pref(u) for u in curves}
    plot = svg.radial(curves, angles, prefs, normalise=normalise, title=title, size=size)
    if not keys:
        return f'<figure class="radial">{plot}</figure>'
    keys = "".join(
        f'<li data-unit="{_e(u)}"><svg class="swatch" width="12" height="12" xmlns="http://www.w3.org/2000/svg">'
        f'<rect width="12" height="12" fill="{svg.unit_colour(prefs[u])}"/></svg>'
        f'<a data-unit="{_e(u)}" href="{_e(link_prefix + unit_file(u))}">{_e(u)}</a> '
        f'{_f(prefs[u], 4) + "°" if prefs[u] is not None else "–"}</li>' for u in curves)
    return f'<figure class="radial">{plot}<ul class="keys">{keys}</ul></figure>'


def _vis_grid(d: SiteData, prefix: str, link_prefix: str) -> str:
    cards = []
    for u in d.ordered():
        p = d.pref(u)
        cards.append(f'<a class="card" href="{_e(link_prefix + unit_file(u))}">'
                     f'<img class="vis" src="{_e(prefix + "img/vis/" + d.vis_files[u])}" alt="feature visualization of {_e(u)}">'
                     f'{_e(u)}<br>{_f(p, 4) + "°" if p is not None else "no preferred angle"}</a>')
    return '<div class="grid">' + "".join(cards) + "</div>"


def _metrics_table(d: SiteData, units: Sequence[str], link_prefix: str) -> str:
    rows = []
    for u in units:
        m = d.tuning["metrics"][u]
        rows.append(f'<tr><td><a href="{_e(link_prefix + unit_file(u))}">{_e(u)}</a></td><td>{_f(m.get("pref_deg"), 4)}</td>'
                    f'<td>{_f(m.get("fwhm_deg"), 3)}</td><td>{_f(m.get("echo"), 2)}</td><td>{_f(m.get("peak"), 4)}</td></tr>')
    return ('<table><tr><th>unit</th><th>preferred (°)</th><th>FWHM (°)</th><th>echo</th><th>peak</th></tr>'
            + "".join(rows) + "</table>")


_MAP_WORDS = {"curves": "curves: orientation × curvature (0 straight, bottom, to 1 half circle, top)",
              "angles": "90° angles: orientation × arm length (px)", "fill": "filled curves: orientation × curvature"}


def _map_words(name: str) -> str:
    if name.startswith("series_"):
        return f"angles rounded by {name.split('_')[1]}: orientation × arm length (px)"
    if name.startswith("colour_"):
        return f"curves, {name[7:].replace('_', ' ')}: orientation × curvature"
    return _MAP_WORDS.get(name, name)


def _heat(d: SiteData, u: str, name: str = "curves") -> tuple[str, str]:
    """(svg, scale words) of one unit's heat map `name`, in dataset std when the scan allows."""
    m = d.heat["maps"][name]
    k = d.heat["units"].index(u)
    v = np.asarray(m["values"][k], dtype=float)
    st = d.std_of(u)
    if st is not None:
        v = (v - st[0]) / st[1]
        words = "standard deviations from the unit's mean pre-ReLU activation over the dataset"
    else:
        words = "pre-ReLU activation (no dataset spread to express it in standard deviations)"
    lim = float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 0.0
    label = f"{u} (±{lim:.3g}{' std' if st is not None else ''})"
    return svg.heatmap(v, m["rows"], m["cols"], lim=lim, unit_label=label), words


def _up_to(d: SiteData, u: str) -> str:
    """The article's "up to N standard deviations": the largest value over the unit's maps."""
    st = d.std_of(u)
    best = max(((float(np.nanmax(np.asarray(m["values"][d.heat["units"].index(u)], dtype=float))), n)
                for n, m in d.heat["maps"].items()), default=None)
    if best is None:
        return ""
    v, name = best
    return (f"up to {(v - st[0]) / st[1]:.3g} standard deviations above its dataset mean ({_map_words(name).split(':')[0]})"
            if st is not None else f"up to {v:.4g} pre-ReLU ({_map_words(name).split(':')[0]})")


def _scale_legend() -> str:
    return ('<p class="legend-scale"><span class="sw-neg"></span> negative &nbsp;<span class="sw-zero"></span> 0 '
            '&nbsp;<span class="sw-pos"></span> positive (each map saturates at its own largest |value|, given '
            'beside its unit)</p>')


def _crop(prefix: str, c: dict, caption: bool = True) -> str:
    cap = f"{c['value']:.3g}" if caption else ""
    return (f'<div class="crop"><img src="{_e(prefix + "img/crops/" + crop_file(c["crop_id"]))}" '
            f'alt="{_e(c["crop_id"])}" title="{_e(c["crop_id"])}: {c["value"]:.4g}">{cap}</div>')


def _quilt(prefix: str, s: dict, per_bin: int | None = None) -> str:
    rows = []
    for b in reversed(s["samples"]["bins"]):
        crops = b["crops"][:per_bin] if per_bin else b["crops"]
        if not crops:
            continue
        imgs = "".join(f'<img src="{_e(prefix + "img/crops/" + crop_file(c["crop_id"]))}" alt="{_e(c["crop_id"])}" '
                       f'title="{_e(c["crop_id"])}: {c["value"]:.4g}">' for c in crops)
        rows.append(f'<tr><th>[{b["lo"]:.3g}, {b["hi"]:.3g})</th><td>{imgs}</td></tr>')
    return '<table class="quilt">' + "".join(rows) + "</table>"


def _tails(s: dict) -> str:
    rows = []
    for side in ("positive", "negative"):
        f = s["tail_fits"].get(side, {})
        rng = f.get("range")
        rows.append(f"<tr><td>{side}</td><td>{_f(f.get('rate'))}</td><td>{_f(f.get('scale'))}</td>"
                    f"<td>{_f(f.get('r2'), 2)}</td><td>{'–' if not rng else f'[{rng[0]:.3g}, {rng[1]:.3g}]'}</td></tr>")
    return ('<table><tr><th>tail</th><th>rate</th><th>scale</th><th>R²</th><th>range</th></tr>' + "".join(rows)
            + "</table>")


def _scan_stats(s: dict) -> str:
    return (f"{s['n_crops']} crops of {s['crop_size']} px; fires on {100 * s['firing_rate']:.1f}%; "
            f"mean pre-ReLU {s['mean_pre_relu']:.3g}, std {s['std_pre_relu']:.3g}")


# --- the family page -------------------------------------------------------------------


def _sec_vis(d: SiteData) -> str:
    warn = "".join(f'<p class="note"><b>{_e(n)}</b></p>' for n in d.notes if "do not make their unit fire" in n)
    return warn + ('<p class="note">Each image maximizes the unit at the centre of its layer (Lucid\'s Fourier '
            f'parameterization, {d.settings.get("vis_steps")} steps), ordered by preferred orientation.</p>'
            + _vis_grid(d, "", "units/"))


def _sec_radial(d: SiteData) -> str:
    curves = {u: d.tuning["curves"][d.tuning["units"].index(u)] for u in d.ordered()}
    return ('<p class="note">Post-ReLU response to curves at each orientation, averaged over '
            f'{len(d.settings.get("curvatures", []))} curvatures, each unit scaled to its own peak. Hover or focus '
            'a curve, its dot or its key to isolate it.</p>'
            + _radial_figure(d, curves, d.tuning["angles"], link_prefix="units/")
            + _metrics_table(d, d.ordered(), "units/"))


def _sec_heat(d: SiteData) -> str:
    blocks, words = [], set()
    for name in d.heat["maps"]:
        figs = []
        for u in d.ordered():
            h, w = _heat(d, u, name)
            figs.append(f'<a href="units/{_e(unit_file(u))}">{h}</a>')
            words.add(w)
        blocks.append(f"<h3>{_e(_map_words(name))}</h3>" + '<div class="figure-row">' + "".join(figs) + "</div>")
    ups = "; ".join(f"{_e(u)} {_e(_up_to(d, u))}" for u in d.ordered())
    return (f'<p class="note">Pre-ReLU responses to synthetic stimuli (<code>circuits.tuning.heatmaps</code>), '
            f'orientation across, in {"; ".join(sorted(words))}. {ups}.</p>' + _scale_legend() + "".join(blocks))


def _sec_dataset(d: SiteData) -> str:
    if not d.scan:
        return '<p class="note">No images were given (--images): no dataset statistics.</p>'
    head = (f'<p class="note">{_e(d.scan["source_description"])}: {d.scan["n_scanned"]} images scanned, every valid '
            'receptive-field crop (see the unit pages for the full quilts and tail fits).</p>')
    blocks = []
    for u in d.ordered():
        s = d.scan["units"][u]
        blocks.append(
            f'<h3><a href="units/{_e(unit_file(u))}">{_e(u)}</a></h3><p class="note">{_e(_scan_stats(s))}</p>'
            f'<div class="figure-row">{svg.histogram(s["histogram"]["edges"], s["histogram"]["counts"], label=u)}'
            f'{svg.histogram(s["histogram"]["edges"], s["histogram"]["counts"], log=True, label=u)}{_tails(s)}</div>'
            f'<p class="note">strongest crops</p><div class="crops">'
            + "".join(_crop("", c) for c in s["top_k"][:10]) + "</div>"
            f'<details><summary>random crops by activation bin (quilt)</summary>{_quilt("", s, 6)}</details>')
    return head + "".join(blocks)


def _sec_joint(d: SiteData) -> str:
    if d.joint is None:
        return f'<p class="note">{_e(d.joint_note)}</p>'
    j = d.joint
    rot = j["rotations_deg"]
    colours = {u: svg.unit_colour(d.pref(u)) for u in j["units"]}
    charts = []
    for src in d.ordered():
        if src not in j["joint"]:
            continue
        series = {u: j["joint"][src][u] for u in d.ordered() if u in j["joint"][src]}
        charts.append(f'<a href="units/{_e(unit_file(src))}">'
                      + svg.lines(rot, series, colours, title=f"examples of {src} ({_f(d.pref(src), 4)}°)") + "</a>")
    al = j["aligned"]
    mean = [np.nan if v is None else v for v in al["mean"]]
    charts.append(svg.lines(al["offset_deg"], {"aligned": mean}, {"aligned": "#222"},
                            title=f"aligned average ({al['n_curves']} curves)", xticks=(-180, -90, 0, 90),
                            xlabel="rotation from the peak (°)"))
    a = j["agreement"]
    agree = ("no neighbour responds substantially to another unit's examples" if not a["pairs"] else
             f'{a["within_tolerance"]} of {a["pairs"]} substantial (source, neighbour) pairs '
             f'({100 * a["fraction"]:.0f}%) peak within {a["tolerance_deg"]:g}° of the difference of preferred '
             f'orientations (opposite sign: {100 * a["fraction_opposite_sign"]:.0f}%); median error '
             f'{_f(a["median_abs_error_deg"], 3)}°')
    st = j.get("settings", {})
    return (f'<p class="note">Each chart: every unit\'s mean response (post-ReLU) to the {st.get("top_k")} strongest '
            f'crops of one unit, rotated clockwise in steps of {st.get("step_deg")}° about the receptive-field centre '
            '(disc-masked), scaled to the chart\'s largest value (<code>circuits.dataset.joint_tuning</code>). If the units are '
            'rotated copies of one feature, unit n peaks at pref(n) − pref(source): here ' + _e(agree)
            + '. Hover or focus a line to isolate its unit.</p><figure class="radial joint"><div class="figure-row">'
            + "".join(charts) + "</div></figure>")


def _sec_early(d: SiteData) -> str:
    if d.early is None:
        return ('<p class="note">No early family given (--early): the weights from the family below by orientation '
                'difference need one.</p>')
    e = d.early
    rows = "".join(f"<tr><td>{c:g}°</td><td>{_f(float(m))}</td><td>{_f(float(n_))}</td><td>{int(k)}</td></tr>"
                   for c, m, n_, k in zip(e["centres"], e["mean"], e["normalised"], e["counts"]))
    silent = (f' Left out (no preferred orientation): {_e(", ".join(e["silent_early"]))}.' if e["silent_early"] else "")
    return (f'<p class="note">Weights (kernel sums, expanded where the layers do not connect directly) from the '
            f'{len(e["early"])} units of <b>{_e(d.early_id)}</b> into the {len(e["family"])} units of this family, '
            f'averaged by the difference of preferred orientations (family − early), normalised to the largest '
            f'|mean|.{silent}</p>'
            + svg.bars(e["centres"], e["normalised"], xlabel="orientation difference (°)", ylabel="normalised weight")
            + '<table><tr><th>difference</th><th>mean weight</th><th>normalised</th><th>pairs</th></tr>'
            + rows + "</table>")


def _sec_edit(d: SiteData) -> str:
    if d.edit is None:
        return '<p class="note">No early family given (--early): no editing experiment.</p>'
    ed = d.edit
    figs = []
    top = {u: max(float(np.max(c[i])) for c in ed["curves"].values()) for i, u in enumerate(ed["units"])}
    for cond, cs in ed["curves"].items():
        curves = {u: np.asarray(cs[i]) / top[u] if top[u] > 0 else np.asarray(cs[i]) for i, u in enumerate(ed["units"])}
        figs.append(f'<div><h3>{_e(cond)}</h3>'
                    + _radial_figure(d, curves, ed["angles"], link_prefix="units/", normalise="none",
                                     title=cond, size=300, keys=False) + "</div>")
    summ = "".join(f"<tr><td>{_e(c)}</td><td>{_f(v['median_peak'], 4)}</td><td>{_f(v['median_echo'], 2)} "
                   f"[{_f(v['min_echo'], 2)}, {_f(v['max_echo'], 2)}]</td><td>{_f(v['median_fwhm'], 3)}</td></tr>"
                   for c, v in ed["summary"].items())
    gap = ""
    if ed.get("gap") is not None:
        gap = (f' The re-expressed (linearized) network differs from the real one by up to {ed["gap"]:.3g} of the '
               'peak on these stimuli: where that is large, the panels say little about the real circuit.')
    return (f'<p class="note">Radial tuning of the family unedited, keeping only the inputs from <b>{_e(d.early_id)}</b>, '
            f'and keeping only their positive weights ("Curve Circuits"); route <b>{_e(ed["route"])}</b>.{gap} Each '
            'unit is scaled to its largest response over the three conditions; colours as in the radial tuning '
            'curves above; hover a dot to isolate a unit.</p><div class="figure-row">'
            + "".join(figs) + '</div><table><tr><th>condition</th><th>median peak</th><th>echo: median [min, max]'
            '</th><th>median FWHM (°)</th></tr>' + summ + "</table>")


def _sec_about(d: SiteData) -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in d.settings.items())
    notes = "".join(f"<li>{_e(n)}</li>" for n in d.notes)
    return (f'<p class="note">Weights <b>{_e(d.weights)}</b> ({_e(d.network)}), fingerprint <code>{_e(d.fingerprint)}'
            f'</code>. Built by <code>circuits report</code>; computations are cached under the output folder by '
            f'fingerprint and settings.</p>' + (f"<ul>{notes}</ul>" if notes else "")
            + '<table><tr><th>setting</th><th>value</th></tr>' + rows + "</table>")


# The family page's sections in order: (anchor, title, builder). Further sections are passed in
# SiteData.extra_sections and placed after the rotated dataset examples.
SECTIONS: list[tuple[str, str, Callable[[SiteData], str]]] = [
    ("vis", "Feature visualizations", _sec_vis),
    ("radial", "Radial tuning curves", _sec_radial),
    ("heatmaps", "Heat maps", _sec_heat),
    ("dataset", "Dataset examples", _sec_dataset),
    ("joint", "Rotated dataset examples", _sec_joint),
    ("early", "Weights from the family below", _sec_early),
    ("editing", "Editing experiment", _sec_edit),
    ("about", "Weights and settings", _sec_about),
]


def family_page(d: SiteData) -> str:
    """The family's "Curve Detectors" page."""
    secs = []
    for anchor, title, build in SECTIONS:
        secs.append((anchor, title, build(d)))
        if anchor == "joint":
            secs += d.extra_sections
    toc = " · ".join(f'<a href="#{a}">{_e(t)}</a>' for a, t, _ in secs)
    body = (f'<h1>{_e(d.family_name)} <small>({_e(d.family_id)})</small></h1>'
            f'<p class="note">{len(d.units)} units of {_e(d.layer)}, {_e(d.network)}, weights {_e(d.weights)}. {toc}</p>'
            + "".join(f'<section id="{_e(a)}"><h2>{_e(t)}</h2>{h}</section>' for a, t, h in secs))
    return page(f"{d.family_id}: {d.family_name}", body, depth=1)


# --- unit pages -------------------------------------------------------------------------


def _weights_table(d: SiteData, top: dict, layer: str, what: str) -> str:
    def link(uid: str) -> str:
        return (f'<a href="{_e(unit_file(uid))}">{_e(uid)}</a>' if uid in d.units else _e(uid))

    cols = []
    for side, words in (("excite", "excites" if what == "inputs" else "excited"),
                        ("inhibit", "inhibits" if what == "inputs" else "inhibited")):
        rows = "".join(f"<tr><td>{link(u)}</td><td>{v:.4g}</td><td>{_e(how)}</td></tr>" for u, v, how in top[side])
        cols.append(f'<div><h3>{words}</h3><table><tr><th>unit</th><th>kernel sum</th><th>weights</th></tr>'
                    f'{rows or "<tr><td>none</td><td></td><td></td></tr>"}</table></div>')
    return (f'<p class="note">{"From" if what == "inputs" else "Into"} every channel of {_e(layer)}, summed over the '
            'kernel: direct (the convolution\'s kernel) where the units connect directly, otherwise expanded weights '
            '(the path linearized: ReLU as identity, max-pool as average pool; the ops listed).</p>'
            '<div class="figure-row">' + "".join(cols) + "</div>")


def unit_page(d: SiteData, uid: str) -> str:
    """A unit's page: its visualization, tuning, dataset examples, strongest weights, family and neighbours."""
    order = d.ordered()
    i = order.index(uid)
    prev_u, next_u = order[i - 1], order[(i + 1) % len(order)]
    facts = d.unit_facts[uid]
    m = d.tuning["metrics"][uid]
    parts = [f'<h1>{_e(uid)}</h1><p class="note">{_e(d.network)}, weights {_e(d.weights)}; '
             f'{_e(facts.get("branch"))} channel {facts.get("branch_channel")}; receptive field {facts.get("rf")} px. '
             f'Member of <a href="../index.html">{_e(d.family_name)} ({_e(d.family_id)})</a>. '
             f'Neighbours by orientation: <a href="{_e(unit_file(prev_u))}">← {_e(prev_u)}</a> · '
             f'<a href="{_e(unit_file(next_u))}">{_e(next_u)} →</a></p>']
    current = ' class="current"'
    strip = "".join(f'<a href="{_e(unit_file(u))}" title="{_e(u)}"{current if u == uid else ""}>'
                    f'<img src="../img/vis/{_e(d.vis_files[u])}" alt="{_e(u)}"></a>' for u in order)
    parts.append(f'<p class="units-strip">{strip}</p>')
    heats = []
    for name in d.heat["maps"]:
        h, words = _heat(d, uid, name)
        heats.append(f"<div><h3>{_e(_map_words(name))}</h3>{h}</div>")
    heat = '<div class="figure-row">' + "".join(heats) + "</div>"
    curves = {uid: d.tuning["curves"][d.tuning["units"].index(uid)]}
    parts.append(
        '<section id="vis-tuning"><h2>Feature visualization and tuning</h2><div class="figure-row">'
        f'<div class="card big"><img class="vis" src="../img/vis/{_e(d.vis_files[uid])}" alt="feature visualization of {_e(uid)}"></div>'
        + _radial_figure(d, curves, d.tuning["angles"], link_prefix="", size=300)
        + f'</div><p class="note">preferred {_f(m.get("pref_deg"), 4)}°, FWHM {_f(m.get("fwhm_deg"), 3)}°, echo '
        f'{_f(m.get("echo"), 2)}, peak {_f(m.get("peak"), 4)} (post-ReLU); {_e(_up_to(d, uid))}. Heat maps in '
        f'{_e(words)}:</p>' + heat
        + _scale_legend() + "</section>")
    if d.scan:
        s = d.scan["units"][uid]
        parts.append(
            '<section id="dataset"><h2>Dataset examples</h2>'
            f'<p class="note">{_e(_scan_stats(s))}.</p><div class="figure-row">'
            f'{svg.histogram(s["histogram"]["edges"], s["histogram"]["counts"], width=420, height=150, label=uid)}'
            f'{svg.histogram(s["histogram"]["edges"], s["histogram"]["counts"], width=420, height=150, log=True, label=uid)}'
            f'{_tails(s)}</div><h3>strongest</h3><div class="crops">'
            + "".join(_crop("../", c) for c in s["top_k"]) + '</div><h3>most negative</h3><div class="crops">'
            + "".join(_crop("../", c) for c in s["bottom_k"]) + "</div><h3>random crops by activation bin</h3>"
            + _quilt("../", s) + "</section>")
    w = d.weights_io
    wparts = []
    if w.get("before"):
        wparts.append("<h3>Strongest inputs</h3>" + _weights_table(d, w["inputs"][uid], w["before"], "inputs"))
    if w.get("after"):
        wparts.append("<h3>Strongest outputs</h3>" + _weights_table(d, w["outputs"][uid], w["after"], "outputs"))
    if not w.get("after"):
        wparts.append(f'<p class="note">No outputs listed: {_e(w.get("why_no_after"))}.</p>')
    parts.append('<section id="weights"><h2>Weights</h2>' + "".join(wparts) + "</section>")
    return page(uid, "".join(parts), depth=2, nav=[("../index.html", d.family_id)])


# --- index ---------------------------------------------------------------------------------


def index_page(networks: dict[str, dict], built: dict[str, dict]) -> str:
    """networks: name -> {"layers": [{"name", "channels", "rf", "families": [(id, name, n)]}]};
    built: family folder -> {"family_id", "family_name", "network", "weights", "units"}."""
    parts = ['<h1>Circuits report</h1><p class="note">A family links to its page where one has been built here; '
             '<code>circuits report FAMILY --out</code> this folder adds one (the trunk layers of each network '
             'built, with every registered family of each).</p>']
    if built:
        rows = "".join(f'<tr><td><a href="{_e(k)}/index.html">{_e(v["family_id"])}</a></td><td>{_e(v["family_name"])}</td>'
                       f'<td>{_e(v["network"])}</td><td>{_e(v["weights"])}</td><td>{len(v["units"])}</td></tr>'
                       for k, v in sorted(built.items()))
        parts.append("<h2>Family pages</h2><table><tr><th>family</th><th>name</th><th>network</th><th>weights</th>"
                     f"<th>units</th></tr>{rows}</table>")
    pages = {(v["network"], v["family_id"]): k for k, v in built.items()}
    for net, info in sorted(networks.items()):
        rows = []
        for L in info["layers"]:
            fams = ", ".join(
                (f'<a href="{_e(pages[(net, fid)])}/index.html">{_e(fid)}</a>' if (net, fid) in pages else _e(fid))
                + f" ({n})" for fid, _, n in L["families"])
            rows.append(f"<tr><td>{_e(L['name'])}</td><td>{L['channels']}</td><td>{L['rf']}</td><td>{fams or '–'}</td></tr>")
        parts.append(f"<h2>{_e(net)}: layers and families</h2><table class=\"layers\"><tr><th>layer</th><th>channels</th>"
                     "<th>receptive field (px)</th><th>families (units)</th></tr>" + "".join(rows) + "</table>")
    return page("circuits report", "".join(parts), depth=0)
