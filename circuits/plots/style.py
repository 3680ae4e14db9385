"""What every figure shares so that it reads at its saved size: text sizes, resolution, unit colours.

Text is at least `MIN_TEXT_PX` pixels tall in the saved file (8 pt at 100 dpi; the
font size in points times dpi / 72), so figures are readable at 100% zoom without
enlarging. Units of a family get colours from a qualitative map (tab10), darkened
where needed to a contrast of at least 3:1 against white, so that ten units are
ten distinguishable colours; beyond ten the colours repeat with another line style.

Example:
    >>> styles = unit_styles(12)
    >>> len({c for c, _ in styles[:10]}), styles[10][1]
    (10, '--')
    >>> FONT_PT * DPI / 72 >= MIN_TEXT_PX     # the small text of figures, in pixels
    True
"""

from __future__ import annotations

import colorsys

__all__ = ["DPI", "MIN_TEXT_PX", "FONT_PT", "unit_styles", "luminance", "min_font_pt", "colour_bar"]

#: resolution of every saved raster figure (dots per inch)
DPI = 120
#: smallest text height in the saved file, in pixels (8 pt at 100% zoom on a 100 dpi screen)
MIN_TEXT_PX = 11
#: the small text of figures (tick labels, legends, captions), in points: 11 px at `DPI`
FONT_PT = 7
# Darkest relative luminance allowed for a line colour: at most 0.25 gives a contrast of
# at least 3:1 against white (WCAG's minimum for graphics).
MAX_LUMINANCE = 0.25
# matplotlib's tab10, in its order: blue, orange, green, red, purple, brown, pink, grey, olive, cyan.
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_LINESTYLES = ("-", "--", ":", "-.")


def min_font_pt(dpi: float) -> float:
    """The smallest font size (points) that is `MIN_TEXT_PX` pixels tall at `dpi`."""
    return MIN_TEXT_PX * 72.0 / dpi


def luminance(rgb) -> float:
    """WCAG relative luminance of an sRGB colour in [0, 1].

    >>> luminance((1.0, 1.0, 1.0)), luminance((0.0, 0.0, 0.0))
    (1.0, 0.0)
    """
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _darkened(hex_colour: str) -> tuple[float, float, float]:
    rgb = tuple(int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    h, light, s = colorsys.rgb_to_hls(*rgb)
    while luminance(rgb) > MAX_LUMINANCE and light > 0.05:
        light -= 0.01
        rgb = colorsys.hls_to_rgb(h, light, s)
    return tuple(round(c, 4) for c in rgb)


_COLOURS = tuple(_darkened(c) for c in _TAB10)


def unit_styles(n: int) -> list[tuple[tuple[float, float, float], str]]:
    """(colour, line style) for `n` units: ten qualitative colours, then the same with the next style."""
    if n < 0:
        raise ValueError(f"number of units must be >= 0, got {n}")
    k = len(_COLOURS)
    return [(_COLOURS[i % k], _LINESTYLES[(i // k) % len(_LINESTYLES)]) for i in range(n)]



def colour_bar(fig, ax, mappable, label: str):
    """A labelled colour bar as tall as the image in `ax` (not the taller axes box around it)."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.06)
    cb = fig.colorbar(mappable, cax=cax)
    cb.set_label(label, fontsize=FONT_PT + 1)
    cb.ax.tick_params(labelsize=FONT_PT)
    return cb
