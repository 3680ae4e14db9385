"""Synthetic stimuli: arcs, lines, edges, angles, rounded angles and combed curves.

Every picture is drawn analytically from the signed distance to its shapes, so it is
anti-aliased, deterministic and batched: each geometric parameter may be a number or
a 1-D sequence (all sequences broadcast to one batch size N). The output is model
input, float32 [N, 3, H, W] in the network's range: ``input_range`` (low, high),
e.g. ``model.input_range`` ((-1, 1) for InceptionV3); by default InceptionV1's
[-117, 138] (RGB in 0..255 minus 117). Black is the low end, white the high end.

Units and conventions
---------------------
* Lengths (arc length, radius, width, ...) are in *stimulus pixels*: pixels of the
  model input when ``scale=1``. ``scale`` draws the same picture at ``scale`` image
  pixels per stimulus pixel (for figures); the model sees ``scale=1``.
* Positions are image pixel coordinates (y, x) with pixel centres at integers, the
  convention of `circuits.core.graph.ReceptiveField`. ``centre`` is where the shape is
  anchored: (y, x), or a `Unit` (``model.unit("mixed3b:379")``) for the centre of that
  unit's receptive field at its centre position (`Unit.centre_in_input`), or None for
  the middle of the image, ((H-1)/2, (W-1)/2). The geometry is
  fixed in stimulus pixels around ``centre``, so an image of another size shows the
  same picture, cropped or extended: pixel values agree exactly where both images
  exist. This is what lets a tuning sweep run on the smallest input that holds a
  unit's receptive field.
* Angles are in degrees, measured clockwise on screen from +x (image coordinates,
  x right, y down), as in "Curve Detectors" (see ../shared/reference/README.md):
  an arc with orientation 0 is ``)``, 90 is ``∪``, 180 is ``(``, 270 is ``∩``.
  The orientation of a curve, angle or edge is the direction in which it bulges
  (faces); the orientation of a line is the direction along it, so
  ``curve(θ, curvature=0)`` draws the same picture as ``line(θ + 90)`` of the same length.
* Colours are names (``"black"``, ``"white"``, ``"red"``, ...) or RGB triples in 0..255.

Example:
    >>> x = curve([0, 90], curvature=0.5, size=64)
    >>> x.shape, float(x.max()), float(x.min()) < 0
    (torch.Size([2, 3, 64, 64]), 138.0, True)
    >>> y = curve(0, size=64, input_range=(-1.0, 1.0))   # InceptionV3's range: white 1, black -1
    >>> float(y.max()), float(y.min())
    (1.0, -1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, Union

import torch

from circuits.core.inputs import INPUT_RANGE

__all__ = [
    "COLORS",
    "KINDS",
    "curve",
    "line",
    "edge",
    "angle",
    "rounded_angle",
    "combing",
    "render",
    "Stimuli",
    "curve_sweep",
]

Number = Union[float, int]
Param = Union[Number, Sequence[Number], torch.Tensor]
Color = Union[str, Sequence[Number], torch.Tensor]

COLORS: dict[str, tuple[float, float, float]] = {
    "black": (0.0, 0.0, 0.0),
    "white": (255.0, 255.0, 255.0),
    "gray": (128.0, 128.0, 128.0),
    "grey": (128.0, 128.0, 128.0),
    "red": (255.0, 0.0, 0.0),
    "green": (0.0, 255.0, 0.0),
    "blue": (0.0, 0.0, 255.0),
    "yellow": (255.0, 255.0, 0.0),
    "cyan": (0.0, 255.0, 255.0),
    "magenta": (255.0, 0.0, 255.0),
    "orange": (255.0, 128.0, 0.0),
}

# Geometry is computed in float32: positions are at most a few thousand pixels, where
# float32 resolves 1/1000 of a pixel, and it halves the cost of rendering a sweep.
_GEOM = torch.float32


# --- parameters ------------------------------------------------------------


def _as_batch(name: str, value: Param) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64)
    if t.dim() > 1:
        raise ValueError(f"{name} must be a number or a 1-D sequence, got shape {list(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {t.tolist()}")
    return t.reshape(-1)


def _broadcast(**params: Param) -> tuple[int, dict[str, torch.Tensor]]:
    """Broadcast scalar/1-D parameters to one batch size N (float64, shape [N])."""
    ts = {k: _as_batch(k, v) for k, v in params.items()}
    sizes = {k: t.numel() for k, t in ts.items() if t.numel() != 1}
    n = max(sizes.values(), default=1)
    bad = {k: s for k, s in sizes.items() if s != n}
    if bad or any(t.numel() == 0 for t in ts.values()):
        raise ValueError(
            "batched stimulus parameters must all have the same length (or be single numbers); "
            f"got lengths {({k: t.numel() for k, t in ts.items()})}"
        )
    return n, {k: t.expand(n) if t.numel() == 1 else t for k, t in ts.items()}


def _check_range(name: str, t: torch.Tensor, lo=None, hi=None, lo_open=False, hi_open=False, unit=""):
    bad = torch.zeros_like(t, dtype=torch.bool)
    if lo is not None:
        bad |= (t <= lo) if lo_open else (t < lo)
    if hi is not None:
        bad |= (t >= hi) if hi_open else (t > hi)
    if bad.any():
        lb = "(" if lo_open or lo is None else "["
        rb = ")" if hi_open or hi is None else "]"
        rng = f"{lb}{'-inf' if lo is None else format(lo, 'g')}, {'inf' if hi is None else format(hi, 'g')}{rb}"
        vals = sorted({round(float(v), 6) for v in t[bad][:5]})
        raise ValueError(f"{name} must lie in {rng}{' ' + unit if unit else ''}; got {vals}")


def _color(name: str, c: Color, n: int) -> torch.Tensor:
    """A colour as float64 [n, 3] in 0..255."""
    if isinstance(c, str):
        key = c.strip().lower()
        if key not in COLORS:
            import difflib

            close = difflib.get_close_matches(key, list(COLORS), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"unknown colour {c!r} for {name}{hint} (names: {', '.join(COLORS)}; or an RGB triple in 0..255)"
            )
        t = torch.tensor(COLORS[key], dtype=torch.float64)
    else:
        t = torch.as_tensor(c, dtype=torch.float64)
    if t.shape[-1:] != (3,) or t.dim() > 2:
        raise ValueError(f"{name} must be a colour name or RGB triple(s) in 0..255, got shape {list(t.shape)}")
    if not torch.isfinite(t).all() or t.min() < 0 or t.max() > 255:
        raise ValueError(f"{name} RGB values must lie in [0, 255], got {t.tolist()}")
    if t.dim() == 2 and t.shape[0] not in (1, n):
        raise ValueError(f"{name} has {t.shape[0]} colours for {n} stimuli")
    return t.reshape(-1, 3).expand(n, 3)


# --- the canvas ------------------------------------------------------------


@dataclass(frozen=True)
class _Canvas:
    height: int
    width: int
    cy: float
    cx: float
    scale: float


def _canvas(size, centre, scale) -> _Canvas:
    if isinstance(size, (int,)) and not isinstance(size, bool):
        h = w = size
    else:
        try:
            h, w = (int(s) for s in size)
        except (TypeError, ValueError):
            raise ValueError(f"size must be an int or (height, width) in pixels, got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"image size must be at least 1x1 pixels, got {h}x{w}")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number of image pixels per stimulus pixel, got {scale!r}")
    if centre is None:
        cy, cx = (h - 1) / 2, (w - 1) / 2
    elif isinstance(centre, str):
        raise ValueError(f"centre {centre!r}: give a Unit (model.unit({centre!r}): it knows its network) or (y, x) pixels")
    elif type(centre).__name__ == "Unit":
        # A unit: the centre of its receptive field at its centre position for this image size.
        cy, cx = centre.centre_in_input((h, w))
    else:
        try:
            cy, cx = (float(c) for c in centre)
        except (TypeError, ValueError):
            raise ValueError(f"centre must be (y, x) in image pixels, got {centre!r}") from None
        if not (math.isfinite(cy) and math.isfinite(cx)):
            raise ValueError(f"centre must be finite, got {centre!r}")
    return _Canvas(h, w, cy, cx, float(scale))


def _local(cv: _Canvas, theta_deg: torch.Tensor, device, window: tuple[slice, slice] | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates (u, v) of every pixel in each stimulus' frame, in stimulus pixels, [N, H, W].

    v runs along the orientation n = (cos θ, sin θ) (x, y; y down), u along the
    tangent t = (-sin θ, cos θ); the origin is the canvas centre. window: (rows,
    cols) slices of the canvas to compute, the same numbers as the full canvas there.
    """
    rows, cols = window if window is not None else (slice(None), slice(None))
    ys = ((torch.arange(cv.height, dtype=torch.float64, device=device)[rows] - cv.cy) / cv.scale).to(_GEOM)
    xs = ((torch.arange(cv.width, dtype=torch.float64, device=device)[cols] - cv.cx) / cv.scale).to(_GEOM)
    th = torch.deg2rad(theta_deg.to(device))[:, None, None].to(_GEOM)
    c, s = torch.cos(th), torch.sin(th)
    X, Y = xs[None, None, :], ys[None, :, None]
    u = -X * s + Y * c
    v = X * c + Y * s
    return u, v


def _window(cv: _Canvas, reach: float) -> tuple[slice, slice]:
    """Rows and columns of the canvas within `reach` stimulus pixels of its centre (a square)."""
    r = reach * cv.scale
    y0, y1 = max(0, math.floor(cv.cy - r)), min(cv.height, math.ceil(cv.cy + r) + 1)
    x0, x1 = max(0, math.floor(cv.cx - r)), min(cv.width, math.ceil(cv.cx + r) + 1)
    # An empty window (the shape is off the canvas) still needs one pixel to compute on.
    return slice(y0, max(y1, y0 + 1)) if y0 < cv.height else slice(cv.height - 1, cv.height), (
        slice(x0, max(x1, x0 + 1)) if x0 < cv.width else slice(cv.width - 1, cv.width))


def _paste(cov: torch.Tensor, cv: _Canvas, window: tuple[slice, slice]) -> torch.Tensor:
    """Coverage computed on `window` placed in a zero canvas [N, H, W]."""
    rows, cols = window
    if cov.shape[-2:] == (cv.height, cv.width):
        return cov
    full = cov.new_zeros((cov.shape[0], cv.height, cv.width))
    full[:, rows, cols] = cov
    return full


# --- distance functions (in a stimulus' local frame, [N, H, W]) ------------


def _col(t: torch.Tensor) -> torch.Tensor:
    return t.to(_GEOM)[:, None, None]


def _segment_distance(u, v, au, av, bu, bv) -> torch.Tensor:
    """Distance from (u, v) to the segment a-b (all broadcastable)."""
    pu, pv = u - au, v - av
    du, dv = bu - au, bv - av
    len2 = (du * du + dv * dv).clamp_min(1e-30)
    t = ((pu * du + pv * dv) / len2).clamp(0.0, 1.0)
    return torch.hypot(pu - t * du, pv - t * dv)


def _arc_point(k, s):
    """Point at arc length s along an arc of curvature k through the origin, tangent to u, bulging to +v.

    Written with sinc so that k = 0 (a straight line along u) is exact.
    """
    a = k * s
    pu = s * torch.sinc(a / math.pi)
    pv = -s * torch.sin(a / 2) * torch.sinc(a / (2 * math.pi))
    return pu, pv


def _arc_distance(u, v, k, half):
    """Unsigned distance to an arc (curvature k >= 0, arc length 2*half) whose midpoint is the origin.

    The arc bulges towards +v: its centre of curvature is (0, -1/k). Also returns the
    signed distance to the full circle (positive outside), for fills.
    """
    q = 1.0 + k * v
    rho = torch.hypot(k * u, q)
    # (rho - 1) / k, rearranged so that it stays exact as k -> 0 (then it is v).
    dcirc = (k * (u * u + v * v) + 2.0 * v) / (rho + 1.0)
    ksafe = torch.where(k > 0, k, torch.ones_like(k))
    s = torch.where(k > 0, torch.atan2(k * u, q) / ksafe, u)
    eu, ev = _arc_point(k, half)
    d_end = torch.minimum(torch.hypot(u - eu, v - ev), torch.hypot(u + eu, v - ev))
    d = torch.where(s.abs() <= half, dcirc.abs(), d_end)
    return d, dcirc, ev


def _stroke_coverage(d: torch.Tensor, width: torch.Tensor, scale: float) -> torch.Tensor:
    """Fraction of a pixel covered by a stroke of `width` at distance d from its centreline.

    The exact 1-D overlap of the pixel's footprint [d - p/2, d + p/2] (p = one pixel)
    with the band [-w/2, w/2]: summed over pixels it gives the stroke's area, also for
    strokes thinner than a pixel.
    """
    p = 1.0 / scale
    lo = torch.maximum(d - p / 2, -width / 2)
    hi = torch.minimum(d + p / 2, width / 2)
    return ((hi - lo) / p).clamp(0.0, 1.0)


def _fill_coverage(sd: torch.Tensor, scale: float) -> torch.Tensor:
    """Coverage of a region with signed distance sd (negative inside)."""
    return (0.5 - sd * scale).clamp(0.0, 1.0)


# --- composing the picture ---------------------------------------------------


def _input_range(input_range) -> tuple[float, float]:
    if input_range is None:
        return INPUT_RANGE
    try:
        lo, hi = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise ValueError(f"input_range must be (low, high), e.g. model.input_range, got {input_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"input_range must be finite (low, high) with low < high, got {input_range!r}")
    return lo, hi


def _paint(coverage: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, dtype, input_range=None) -> torch.Tensor:
    """[N, H, W] coverage -> model input [N, 3, H, W] in `input_range` (default InceptionV1's [-117, 138]).

    A colour c in 0..255 becomes lo + c * (hi - lo) / 255, as `circuits.to_model_input`
    maps uint8 pixels; for InceptionV1 the factor is exactly 1 (c - 117).
    """
    lo, hi = _input_range(input_range)
    k = (hi - lo) / 255.0
    cov = coverage[:, None].to(dtype)
    base = (bg * k + lo).to(dtype=dtype, device=cov.device)[:, :, None, None]
    return base + cov * ((fg - bg) * k).to(dtype=dtype, device=cov.device)[:, :, None, None]


def _finish(cov, fg, bg, n, dtype, input_range=None):
    return _paint(cov, _color("fg", fg, n), _color("bg", bg, n), dtype, input_range)


def _check_width(width):
    _check_range("width", width, lo=0, lo_open=True, unit="pixels")


def curve(
    orientation: Param,
    curvature: Param = 0.5,
    *,
    radius: Param | None = None,
    arc_length: Param = 40.0,
    width: Param = 3.0,
    fg: Color = "black",
    bg: Color = "white",
    filled: bool = False,
    size=64,
    centre=None,
    scale: float = 1.0,
    device=None,
    dtype=torch.float32,
    input_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Arcs of circles, batched; the midpoint of each arc at `centre`.

    orientation: degrees, the direction from the centre of curvature to the arc's
        midpoint (clockwise from +x on screen; 0 = ``)``, 90 = ``∪``, 180 = ``(``, 270 = ``∩``).
    curvature: how much of a half circle the arc is, in [0, 1]: the arc subtends
        ``curvature * 180`` degrees, so 0 is a straight segment and 1 a half circle;
        the radius is ``arc_length / (curvature * pi)`` pixels.
    radius: pixels, instead of curvature (then ``arc_length <= pi * radius``).
    arc_length: pixels along the arc. width: stroke width in pixels (round caps).
    fg, bg: stroke and background colours. filled: also fill the region between
        the arc and its chord with fg (the article's "filled" curves).
    size: image side or (H, W) in pixels; centre: (y, x) of the arc's midpoint in
        image pixels, or a Unit (its receptive-field centre; default the image
        centre); scale: image pixels per stimulus pixel.
    input_range: (low, high) of the model input to draw in, e.g. ``model.input_range``
        (default InceptionV1's (-117, 138)); black is low, white high.

    >>> curve(0, 1.0, arc_length=30, size=(48, 40)).shape
    torch.Size([1, 3, 48, 40])
    """
    if radius is not None:
        n, p = _broadcast(orientation=orientation, radius=radius, arc_length=arc_length, width=width)
        _check_range("radius", p["radius"], lo=0, lo_open=True, unit="pixels")
        _check_range("arc_length", p["arc_length"], lo=0, lo_open=True, unit="pixels")
        over = p["arc_length"] > math.pi * p["radius"] * (1 + 1e-9)
        if over.any():
            i = int(over.nonzero()[0])
            raise ValueError(
                f"an arc of length {float(p['arc_length'][i]):g} px on a radius of {float(p['radius'][i]):g} px "
                f"is more than a half circle: use radius >= arc_length / pi = {float(p['arc_length'][i]) / math.pi:.3g} px"
            )
        k = 1.0 / p["radius"]
    else:
        n, p = _broadcast(orientation=orientation, curvature=curvature, arc_length=arc_length, width=width)
        _check_range("curvature", p["curvature"], lo=0, hi=1, unit="(fraction of a half circle: 0 = straight, 1 = half circle)")
        _check_range("arc_length", p["arc_length"], lo=0, lo_open=True, unit="pixels")
        k = p["curvature"] * math.pi / p["arc_length"]
    _check_width(p["width"])
    cv = _canvas(size, centre, scale)
    # Every point of an arc (and of the region between it and its chord) lies within half
    # its length of its midpoint, so pixels farther than that plus the stroke have zero
    # coverage: compute only the window around the centre (a sweep's arcs fill a quarter
    # of the canvas, and rendering was a fifth of a sweep's time).
    reach = float((p["arc_length"] / 2 + p["width"] / 2).max()) + 2.0 / cv.scale
    window = _window(cv, reach)
    u, v = _local(cv, p["orientation"], device, window)
    k, half, w = _col(k.to(u.device)), _col(p["arc_length"].to(u.device) / 2), _col(p["width"].to(u.device))
    d, dcirc, v_end = _arc_distance(u, v, k, half)
    cov = _stroke_coverage(d, w, cv.scale)
    if filled:
        # Inside the circle and on the bulge's side of the chord.
        sd = torch.maximum(dcirc, v_end - v)
        cov = torch.maximum(cov, _fill_coverage(sd, cv.scale))
    return _finish(_paste(cov, cv, window), fg, bg, n, dtype, input_range)


def line(
    orientation: Param,
    *,
    length: Param | None = None,
    width: Param = 3.0,
    fg: Color = "black",
    bg: Color = "white",
    size=64,
    centre=None,
    scale: float = 1.0,
    device=None,
    dtype=torch.float32,
    input_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Straight lines through `centre`, batched.

    orientation: degrees, the direction along the line (0 = horizontal ``—``,
        90 = vertical ``|``; a line at θ is the same as at θ + 180).
    length: pixels (round caps), or None for a line across the whole image.
    width: pixels. Other arguments as in `curve`.

    >>> line([0, 45, 90], width=2, size=32).shape
    torch.Size([3, 3, 32, 32])
    """
    n, p = _broadcast(orientation=orientation, width=width, length=1.0 if length is None else length)
    _check_width(p["width"])
    _check_range("length", p["length"], lo=0, lo_open=True, unit="pixels")
    cv = _canvas(size, centre, scale)
    # A segment lies within half its length of its midpoint: compute only that window.
    window = None if length is None else _window(cv, float((p["length"] / 2 + p["width"] / 2).max()) + 2.0 / cv.scale)
    # In the frame of orientation θ - 90, the line runs along u.
    u, v = _local(cv, p["orientation"] - 90.0, device, window)
    if length is None:
        d = v.abs()
    else:
        half = _col(p["length"].to(u.device) / 2)
        d = torch.where(u.abs() <= half, v.abs(), torch.hypot(u.abs() - half, v))
    cov = _stroke_coverage(d, _col(p["width"].to(u.device)), cv.scale)
    return _finish(cov if window is None else _paste(cov, cv, window), fg, bg, n, dtype, input_range)


def edge(
    orientation: Param,
    *,
    fg: Color = "black",
    bg: Color = "white",
    size=64,
    centre=None,
    scale: float = 1.0,
    device=None,
    dtype=torch.float32,
    input_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Straight edges through `centre`: fg on one side, bg on the other, batched.

    orientation: degrees, the direction the fg region faces (its outward normal),
        like the bulge of a filled curve: at 0 fg fills the left half and its
        boundary faces right; at 90 fg fills the top half.

    >>> x = edge(0, size=8)
    >>> float(x[0, 0, 4, 0]), float(x[0, 0, 4, 7])   # left is fg (black), right bg
    (-117.0, 138.0)
    """
    n, p = _broadcast(orientation=orientation)
    cv = _canvas(size, centre, scale)
    _, v = _local(cv, p["orientation"], device)
    cov = _fill_coverage(v, cv.scale)
    return _finish(cov, fg, bg, n, dtype, input_range)


def _angle_distance(u, v, opening_rad, arm, corner):
    """Distance to two arms meeting at a corner of radius `corner`, pointing to +v.

    The midpoint of the (rounded) corner is the origin; arms are measured from the
    virtual vertex where their lines meet.
    """
    half = opening_rad / 2
    sin_h, cos_h = torch.sin(half), torch.cos(half)
    # Vertex ahead of the corner's midpoint by corner * (1/sin - 1).
    vertex_v = corner * (1.0 / sin_h - 1.0)
    # Tangent points of the rounding arc along each arm, from the vertex.
    tan_d = corner * cos_h / sin_h
    # Arm directions (u, v) from the vertex: back and out by half the opening.
    au, av = sin_h, -cos_h
    d = None
    for sign in (1.0, -1.0):
        su, sv = sign * au * tan_d, vertex_v + av * tan_d
        eu, ev = sign * au * arm, vertex_v + av * arm
        ds = _segment_distance(u, v, su, sv, eu, ev)
        d = ds if d is None else torch.minimum(d, ds)
    # The rounding arc: curvature 1/corner, subtending pi - opening.
    has_arc = corner > 0
    k = torch.where(has_arc, 1.0 / torch.where(has_arc, corner, torch.ones_like(corner)), torch.zeros_like(corner))
    arc_half = corner * (math.pi - opening_rad) / 2
    da, _, _ = _arc_distance(u, v, k, arc_half)
    return torch.where(has_arc, torch.minimum(d, da), d)


def angle(
    orientation: Param,
    opening: Param = 90.0,
    *,
    arm_length: Param = 20.0,
    corner_radius: Param = 0.0,
    width: Param = 3.0,
    fg: Color = "black",
    bg: Color = "white",
    size=64,
    centre=None,
    scale: float = 1.0,
    device=None,
    dtype=torch.float32,
    input_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Angles: two straight arms meeting at a vertex, batched.

    orientation: degrees, the direction the vertex points to (the bulge, as for
        curves): the arms leave the vertex towards orientation + 180 ± opening / 2.
    opening: degrees between the arms, in (0, 180]; 180 is a straight line, the same
        picture as ``curve(orientation, 0, arc_length=2 * arm_length)``.
    arm_length: pixels from the vertex to each arm's end.
    corner_radius: pixels; > 0 rounds the corner with an arc of this radius tangent
        to both arms (see `rounded_angle`); it needs
        ``corner_radius / tan(opening / 2) <= arm_length``.
    The corner (the vertex, or the rounded corner's midpoint) is at `centre`.

    >>> angle(45, 60, arm_length=15, size=40).shape
    torch.Size([1, 3, 40, 40])
    """
    n, p = _broadcast(
        orientation=orientation, opening=opening, arm_length=arm_length, corner_radius=corner_radius, width=width
    )
    _check_range("opening", p["opening"], lo=0, hi=180, lo_open=True, unit="degrees")
    _check_range("arm_length", p["arm_length"], lo=0, lo_open=True, unit="pixels")
    _check_range("corner_radius", p["corner_radius"], lo=0, unit="pixels")
    _check_width(p["width"])
    op = torch.deg2rad(p["opening"])
    need = p["corner_radius"] / torch.tan(op / 2)
    over = need > p["arm_length"] * (1 + 1e-9)
    if over.any():
        i = int(over.nonzero()[0])
        raise ValueError(
            f"corner_radius {float(p['corner_radius'][i]):g} px is too large for arms of "
            f"{float(p['arm_length'][i]):g} px at an opening of {float(p['opening'][i]):g} degrees: "
            f"the rounding would need arms of {float(need[i]):.3g} px; use corner_radius <= "
            f"{float(p['arm_length'][i] * torch.tan(op[i] / 2)):.3g}"
        )
    cv = _canvas(size, centre, scale)
    # The arms end within arm_length of the vertex, which is corner * (1/sin(opening/2) - 1)
    # ahead of the corner's midpoint (the centre): compute only that window.
    vertex = p["corner_radius"] * (1.0 / torch.sin(op / 2) - 1.0)
    window = _window(cv, float((vertex + p["arm_length"] + p["width"] / 2).max()) + 2.0 / cv.scale)
    u, v = _local(cv, p["orientation"], device, window)
    dev = u.device
    d = _angle_distance(
        u, v, _col(op.to(dev)), _col(p["arm_length"].to(dev)), _col(p["corner_radius"].to(dev))
    )
    cov = _stroke_coverage(d, _col(p["width"].to(dev)), cv.scale)
    return _finish(_paste(cov, cv, window), fg, bg, n, dtype, input_range)


def rounded_angle(
    orientation: Param,
    opening: Param = 90.0,
    corner_radius: Param = 5.0,
    **kwargs: Any,
) -> torch.Tensor:
    """Angle -> curve transitions: an angle whose corner is an arc of `corner_radius` pixels.

    0 is the sharp angle; the largest radius, ``arm_length * tan(opening / 2)``,
    turns the whole shape into one arc subtending 180 - opening degrees. Other
    arguments as in `angle`.

    >>> rounded_angle(90, 90, corner_radius=[0, 10, 20], arm_length=20, size=48).shape
    torch.Size([3, 3, 48, 48])
    """
    return angle(orientation, opening, corner_radius=corner_radius, **kwargs)


def combing(
    orientation: Param,
    curvature: Param = 0.5,
    *,
    arc_length: Param = 40.0,
    width: Param = 3.0,
    tooth_length: Param = 8.0,
    tooth_spacing: Param = 6.0,
    tooth_width: Param | None = None,
    side: str = "both",
    fg: Color = "black",
    bg: Color = "white",
    size=64,
    centre=None,
    scale: float = 1.0,
    device=None,
    dtype=torch.float32,
    input_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """The combing stimulus: an arc (as in `curve`) with short lines perpendicular to it.

    tooth_length: pixels of each perpendicular line; tooth_spacing: pixels of arc
        between neighbouring teeth (one tooth at the arc's midpoint, the others every
        tooth_spacing along the arc while they fit); tooth_width: pixels (default:
        the arc's width); side: "both" (teeth cross the arc, centred on it),
        "outer" (on the bulge side only) or "inner".

    >>> combing(90, 0.6, tooth_length=6, size=64).shape
    torch.Size([1, 3, 64, 64])
    """
    if side not in ("both", "outer", "inner"):
        raise ValueError(f"side must be 'both', 'outer' or 'inner', got {side!r}")
    n, p = _broadcast(
        orientation=orientation,
        curvature=curvature,
        arc_length=arc_length,
        width=width,
        tooth_length=tooth_length,
        tooth_spacing=tooth_spacing,
        tooth_width=width if tooth_width is None else tooth_width,
    )
    _check_range("curvature", p["curvature"], lo=0, hi=1, unit="(fraction of a half circle)")
    _check_range("arc_length", p["arc_length"], lo=0, lo_open=True, unit="pixels")
    _check_range("tooth_length", p["tooth_length"], lo=0, lo_open=True, unit="pixels")
    _check_range("tooth_spacing", p["tooth_spacing"], lo=0, lo_open=True, unit="pixels")
    _check_width(p["width"])
    _check_range("tooth_width", p["tooth_width"], lo=0, lo_open=True, unit="pixels")
    cv = _canvas(size, centre, scale)
    u, v = _local(cv, p["orientation"], device)
    dev = u.device
    k = _col((p["curvature"] * math.pi / p["arc_length"]).to(dev))
    half = _col(p["arc_length"].to(dev) / 2)
    d_arc, _, _ = _arc_distance(u, v, k, half)
    cov = _stroke_coverage(d_arc, _col(p["width"].to(dev)), cv.scale)
    per_side = int(torch.floor(p["arc_length"] / 2 / p["tooth_spacing"]).max())
    spacing, tl = _col(p["tooth_spacing"].to(dev)), _col(p["tooth_length"].to(dev))
    lo, hi = {"both": (-0.5, 0.5), "outer": (0.0, 1.0), "inner": (-1.0, 0.0)}[side]
    d_teeth = torch.full_like(d_arc, float("inf"))
    for j in range(-per_side, per_side + 1):
        s = spacing * j
        fits = s.abs() <= half + 1e-9
        pu, pv = _arc_point(k, s)
        nu, nv = torch.sin(k * s), torch.cos(k * s)  # the arc's outward normal at s
        dt = _segment_distance(u, v, pu + nu * tl * lo, pv + nv * tl * lo, pu + nu * tl * hi, pv + nv * tl * hi)
        d_teeth = torch.where(fits, torch.minimum(d_teeth, dt), d_teeth)
    cov = torch.maximum(cov, _stroke_coverage(d_teeth, _col(p["tooth_width"].to(dev)), cv.scale))
    return _finish(cov, fg, bg, n, dtype, input_range)


KINDS: dict[str, Callable[..., torch.Tensor]] = {
    "curve": curve,
    "line": line,
    "edge": edge,
    "angle": angle,
    "rounded-angle": rounded_angle,
    "combing": combing,
}


def render(kind: str, **params: Any) -> torch.Tensor:
    """Render stimuli of `kind` (one of KINDS) with the keyword parameters of its function.

    >>> render("line", orientation=30, size=16).shape
    torch.Size([1, 3, 16, 16])
    """
    try:
        fn = KINDS[kind]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(str(kind), list(KINDS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown stimulus kind {kind!r}{hint} (kinds: {', '.join(KINDS)})") from None
    try:
        return fn(**params)
    except TypeError as e:
        raise ValueError(f"bad parameters for a {kind} stimulus: {e}") from None


# --- lazily rendered batches ---------------------------------------------------

_PLACEMENT = ("size", "centre", "scale", "device", "dtype", "input_range")


@dataclass(frozen=True)
class Stimuli:
    """A batch of stimuli described by parameters, rendered on demand at any size and centre.

    `batched` holds per-stimulus parameters (1-D, all of length N); `fixed` the
    parameters shared by all of them (colours, filled, ...). Sweeps render slices of
    it where the unit under test needs them, so a large sweep never sits in memory.

    >>> s = Stimuli("curve", {"orientation": [0, 90, 180]}, {"curvature": 0.5})
    >>> len(s), s.render(size=32, start=1).shape
    (3, torch.Size([2, 3, 32, 32]))
    """

    kind: str
    batched: Mapping[str, Any] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            render(self.kind)  # raises with the list of kinds
        clash = set(self.batched) & set(self.fixed)
        if clash:
            raise ValueError(f"parameters given both per stimulus and fixed: {sorted(clash)}")
        placed = (set(self.batched) | set(self.fixed)) & set(_PLACEMENT)
        if placed:
            raise ValueError(f"{sorted(placed)} are chosen at render time, not in the stimulus description")
        n, _ = _broadcast(**self.batched) if self.batched else (1, {})
        object.__setattr__(self, "_n", n)
        # Check every stimulus' parameters now (on a 1x1 canvas: cheap), so that a bad
        # one fails here and not in the middle of a sweep.
        render(self.kind, **self._params(0, n), size=1)

    def __len__(self) -> int:
        return self._n

    def _params(self, start: int, stop: int) -> dict[str, Any]:
        out = dict(self.fixed)
        for k, v in self.batched.items():
            t = _as_batch(k, v)
            out[k] = t.expand(self._n)[start:stop] if t.numel() == 1 else t[start:stop]
        return out

    def render(self, size=64, centre=None, scale: float = 1.0, start: int = 0, stop: int | None = None,
               device=None, dtype=torch.float32, input_range: tuple[float, float] | None = None) -> torch.Tensor:
        """Stimuli start..stop as model input [stop - start, 3, H, W] in `input_range`
        (e.g. ``model.input_range``; default InceptionV1's)."""
        stop = self._n if stop is None else stop
        if not 0 <= start < stop <= self._n:
            raise IndexError(f"stimulus range {start}:{stop} is outside 0:{self._n}")
        return render(self.kind, **self._params(start, stop), size=size, centre=centre, scale=scale,
                      device=device, dtype=dtype, input_range=input_range)

    def params(self) -> dict[str, list]:
        """Every stimulus' batched parameters as lists (for JSON)."""
        return {k: [float(x) for x in _as_batch(k, v).expand(self._n)] for k, v in self.batched.items()}


def curve_sweep(orientations: Param, curvatures: Param, **fixed: Any) -> Stimuli:
    """Curves at every (curvature, orientation) pair, curvature-major: index = i_curv * n_orient + i_orient.

    >>> s = curve_sweep([0, 90, 180, 270], [0.25, 1.0], arc_length=30)
    >>> len(s)
    8
    """
    o = _as_batch("orientations", orientations)
    c = _as_batch("curvatures", curvatures)
    cc, oo = torch.meshgrid(c, o, indexing="ij")
    return Stimuli("curve", {"orientation": oo.reshape(-1), "curvature": cc.reshape(-1)}, dict(fixed))
