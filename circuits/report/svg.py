"""Figures as inline SVG (no script, no external resource): radial tuning curves, heat maps,
histograms and bar charts.

Everything is drawn from numbers with plain SVG elements; colours are presentation
attributes (no ``style`` attributes, which the pages' content security policy forbids).
Angles follow the article: 0 = ``)``, 90 = ``∪``, clockwise on screen.

Example:
    >>> s = radial({"mixed3b:379": [0, 1, 0, 0]}, [0, 90, 180, 270], {"mixed3b:379": 90.0})
    >>> s.startswith("<svg") and 'data-unit="mixed3b:379"' in s
    True
"""

from __future__ import annotations

import html
import math
from typing import Mapping, Sequence

import numpy as np

__all__ = ["radial", "heatmap", "histogram", "bars", "lines", "unit_colour", "diverging"]


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def unit_colour(pref_deg: float | None) -> str:
    """The colour of a unit: its preferred orientation around the hue circle (grey if none), as
    the article colours its radial plots; light hues (yellows, greens) darkened to a contrast of at
    least 3:1 against white (`circuits.plots.style`'s rule).

    >>> unit_colour(0.0), unit_colour(None)
    ('#ff0000', '#777777')
    """
    import colorsys

    from circuits.plots.style import MAX_LUMINANCE, luminance

    if pref_deg is None or not math.isfinite(pref_deg):
        return "#777777"
    h, light = (pref_deg / 360.0) % 1.0, 0.5
    rgb = colorsys.hls_to_rgb(h, light, 1.0)
    while luminance(rgb) > MAX_LUMINANCE and light > 0.05:
        light -= 0.01
        rgb = colorsys.hls_to_rgb(h, light, 1.0)
    r, g, b = rgb
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def diverging(v: float, lim: float) -> str:
    """Blue (negative) - white (0) - red (positive), saturating at +-lim."""
    t = 0.0 if lim <= 0 or not math.isfinite(v) else max(-1.0, min(1.0, v / lim))
    hi = (178, 24, 43) if t > 0 else (33, 102, 172)
    a = abs(t)
    r, g, b = (round(255 + (c - 255) * a) for c in hi)
    return f"#{r:02x}{g:02x}{b:02x}"


def radial(curves: Mapping[str, Sequence[float]], angles: Sequence[float], prefs: Mapping[str, float], *,
           size: int = 420, normalise: str = "unit",
           title: str = "radial tuning") -> str:
    """A polar plot of tuning curves; every curve, its peak dot and its key carry ``data-unit``
    (the pages' script isolates a unit when any of them is hovered or focused).

    normalise: "unit" (each curve to its own peak), "all" (all to the largest value) or "none"
    (the values are radii already, 1 = the outer circle).
    """
    c = size / 2
    R = size / 2 - 34
    a = np.radians(np.asarray(angles, dtype=float))
    top = max((float(np.max(v)) for v in curves.values()), default=0.0)
    parts = [f'<svg class="radial-plot" viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img" '
             f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">']
    for f in (0.25, 0.5, 0.75, 1.0):
        parts.append(f'<circle cx="{c}" cy="{c}" r="{R * f:.1f}" fill="none" stroke="#ddd" stroke-width="1"/>')
    for d in range(0, 360, 45):
        x, y = c + R * math.cos(math.radians(d)), c + R * math.sin(math.radians(d))
        parts.append(f'<line x1="{c}" y1="{c}" x2="{x:.1f}" y2="{y:.1f}" stroke="#ddd" stroke-width="1"/>')
        lx, ly = c + (R + 18) * math.cos(math.radians(d)), c + (R + 18) * math.sin(math.radians(d)) + 4
        parts.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" font-size="12" fill="#555">{d}°</text>')
    for uid, v in curves.items():
        v = np.asarray(v, dtype=float)
        scale = {"unit": float(v.max()) if v.size else 0.0, "all": top, "none": 1.0}[normalise]
        r = v / scale if scale > 0 else np.zeros_like(v)
        xs, ys = c + R * r * np.cos(a), c + R * r * np.sin(a)
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys)) + " Z"
        col = unit_colour(prefs.get(uid))
        label = _e(uid)
        parts.append(f'<path class="curve" data-unit="{label}" d="{d}" fill="none" stroke="{col}" stroke-width="2.2">'
                     f'<title>{label}</title></path>')
        k = int(np.argmax(v)) if v.size else 0
        if v.size and v[k] > 0:
            parts.append(f'<circle class="curve peak" data-unit="{label}" tabindex="0" cx="{xs[k]:.1f}" cy="{ys[k]:.1f}" '
                         f'r="6" fill="{col}" stroke="#fff" stroke-width="1.5"><title>{label} peak</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def heatmap(values: np.ndarray, rows: Sequence[float], cols: Sequence[float], *, lim: float | None = None,
            unit_label: str = "", width: float = 252.0, row_height: float = 9.0) -> str:
    """A [rows, cols] grid (e.g. curvature x orientation) in a diverging scale, `width` px of cells
    whatever the number of columns, axis labels in px >= 11."""
    v = np.asarray(values, dtype=float)
    lim = float(np.nanmax(np.abs(v))) if lim is None else lim
    cw, ch = width / max(v.shape[1], 1), row_height
    left, top_, bottom = 34, 18, 30
    w = left + cw * v.shape[1] + 8
    h = top_ + ch * v.shape[0] + bottom
    parts = [f'<svg class="heatmap" viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" height="{h:.0f}" role="img" '
             f'aria-label="{_e(unit_label)} orientation x curvature" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{left}" y="12" font-size="12" fill="#222">{_e(unit_label)}</text>']
    for i in range(v.shape[0]):
        y = top_ + ch * (v.shape[0] - 1 - i)  # curvature 0 at the bottom
        for j in range(v.shape[1]):
            parts.append(f'<rect x="{left + cw * j:.1f}" y="{y:.1f}" width="{cw + 0.05:.2f}" height="{ch + 0.05:.2f}" '
                         f'fill="{diverging(v[i, j], lim)}"/>')
    for j in range(0, v.shape[1], max(1, v.shape[1] // 4)):
        parts.append(f'<text x="{left + cw * j:.1f}" y="{top_ + ch * v.shape[0] + 13:.1f}" font-size="11" '
                     f'text-anchor="middle" fill="#555">{cols[j]:g}°</text>')
    parts.append(f'<text x="{left + cw * v.shape[1] / 2:.1f}" y="{h - 3:.1f}" font-size="11" text-anchor="middle" '
                 f'fill="#555">orientation</text>')
    for i in (0, v.shape[0] - 1):
        y = top_ + ch * (v.shape[0] - 1 - i) + ch * 0.8
        parts.append(f'<text x="{left - 3}" y="{y:.1f}" font-size="11" text-anchor="end" fill="#555">{rows[i]:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(edges: Sequence[float], counts: Sequence[float], *, width: int = 300, height: int = 120,
              log: bool = False, label: str = "") -> str:
    """Bars of a histogram (positive values orange, negative grey), zero marked."""
    e = np.asarray(edges, dtype=float)
    n = np.asarray(counts, dtype=float)
    if n.size == 0 or e.size != n.size + 1:
        return '<p class="note">no histogram</p>'
    y = np.log10(n + 1) if log else n
    ymax = float(y.max()) or 1.0
    x0, x1 = float(e[0]), float(e[-1])
    span = (x1 - x0) or 1.0
    pad_b = 28
    plot_h = height - pad_b - 4
    X = lambda v: 4 + (width - 8) * (v - x0) / span  # noqa: E731
    parts = [f'<svg class="hist" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{_e(label)} histogram" xmlns="http://www.w3.org/2000/svg">']
    for lo, hi, v in zip(e[:-1], e[1:], y):
        if v <= 0:
            continue
        bh = plot_h * v / ymax
        col = "#dd6622" if lo >= 0 else "#888888"
        parts.append(f'<rect x="{X(lo):.2f}" y="{4 + plot_h - bh:.2f}" width="{max(X(hi) - X(lo), 0.6):.2f}" '
                     f'height="{bh:.2f}" fill="{col}"/>')
    if x0 < 0 < x1:
        parts.append(f'<line x1="{X(0):.1f}" y1="4" x2="{X(0):.1f}" y2="{4 + plot_h}" stroke="#000" stroke-width="1"/>')
    parts.append(f'<text x="4" y="{height - 14}" font-size="11" fill="#555">{x0:.3g}</text>')
    parts.append(f'<text x="{width - 4}" y="{height - 14}" font-size="11" text-anchor="end" fill="#555">{x1:.3g}</text>')
    parts.append(f'<text x="{width / 2:.0f}" y="{height - 2}" font-size="11" text-anchor="middle" fill="#555">'
                 f'pre-ReLU activation{" (log count)" if log else ""}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(centres: Sequence[float], values: Sequence[float], *, width: int = 420, height: int = 200,
         xlabel: str = "", ylabel: str = "") -> str:
    """A bar chart of signed values (red positive, blue negative) at labelled centres; NaN bars left out."""
    v = np.asarray(values, dtype=float)
    lim = float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 1.0
    lim = lim or 1.0
    left, bottom, top_ = 40, 34, 8
    ph = height - bottom - top_
    bw = (width - left - 8) / max(len(v), 1)
    zero = top_ + ph / 2
    parts = [f'<svg class="bars" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{_e(ylabel)} by {_e(xlabel)}" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{left}" y1="{zero}" x2="{width - 8}" y2="{zero}" stroke="#000" stroke-width="1"/>',
             f'<text x="{left - 4}" y="{top_ + 10}" font-size="11" text-anchor="end" fill="#555">{lim:.3g}</text>',
             f'<text x="{left - 4}" y="{top_ + ph}" font-size="11" text-anchor="end" fill="#555">{-lim:.3g}</text>']
    for i, (cx, val) in enumerate(zip(centres, v)):
        x = left + bw * i
        if math.isfinite(val):
            bh = abs(val) / lim * ph / 2
            y = zero - bh if val > 0 else zero
            parts.append(f'<rect x="{x + bw * 0.15:.1f}" y="{y:.1f}" width="{bw * 0.7:.1f}" height="{bh:.1f}" '
                         f'fill="{"#b2182b" if val > 0 else "#2166ac"}"><title>{cx:g}°: {val:.3g}</title></rect>')
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{height - bottom + 14}" font-size="11" text-anchor="middle" '
                     f'fill="#555">{cx:g}</text>')
    parts.append(f'<text x="{left + (width - left) / 2:.0f}" y="{height - 4}" font-size="11" text-anchor="middle" '
                 f'fill="#555">{_e(xlabel)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def lines(x: Sequence[float], series: Mapping[str, Sequence[float]], colours: Mapping[str, str], *,
          width: int = 240, height: int = 130, title: str = "", xticks: Sequence[float] = (0, 90, 180, 270),
          xlabel: str = "rotation (°)") -> str:
    """Line charts of several series over a shared x (scaled to the largest value of all); each line
    is a ``curve`` with ``data-unit`` (the pages' script isolates a unit on hover or focus)."""
    xs = np.asarray(x, dtype=float)
    top = max((float(np.nanmax(v)) for v in series.values() if np.isfinite(v).any()), default=0.0) or 1.0
    left, right, top_pad, bottom = 8, 8, 18, 28
    pw, ph = width - left - right, height - top_pad - bottom
    x0, x1 = float(xs.min()), float(xs.max()) if xs.size > 1 else float(xs.min()) + 1
    X = lambda v: left + pw * (v - x0) / ((x1 - x0) or 1.0)  # noqa: E731
    Y = lambda v: top_pad + ph * (1 - v / top)  # noqa: E731
    parts = [f'<svg class="lines" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{left}" y="12" font-size="12" fill="#222">{_e(title)}</text>',
             f'<line x1="{left}" y1="{top_pad + ph}" x2="{left + pw}" y2="{top_pad + ph}" stroke="#999" stroke-width="1"/>']
    for t in xticks:
        if x0 <= t <= x1:
            parts.append(f'<text x="{X(t):.1f}" y="{top_pad + ph + 12}" font-size="11" text-anchor="middle" '
                         f'fill="#555">{t:g}</text>')
    parts.append(f'<text x="{left + pw / 2:.0f}" y="{height - 2}" font-size="11" text-anchor="middle" fill="#555">'
                 f'{_e(xlabel)}</text>')
    for uid, v in series.items():
        v = np.asarray(v, dtype=float)
        ok = np.isfinite(v)
        if not ok.any():
            continue
        d = "M" + " L".join(f"{X(a):.1f},{Y(b):.1f}" for a, b in zip(xs[ok], v[ok]))
        parts.append(f'<path class="curve" data-unit="{_e(uid)}" d="{d}" fill="none" stroke="{colours.get(uid, "#333")}" '
                     f'stroke-width="1.8"><title>{_e(uid)}</title></path>')
    parts.append("</svg>")
    return "".join(parts)
