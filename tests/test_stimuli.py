"""The stimulus renderer against geometry written out independently of it.

References: a least-squares circle fit of the drawn pixels (bulge direction and
radius), areas from formulas (L*w + pi*w^2/4 for a stroke with round caps, pi*r^2/2
for a half disc), the exact 90-degree rotation of the pixel grid (torch.rot90), and
identities between kinds (a straight arc is a line, a 180-degree angle is a straight
arc, a fully rounded angle is an arc).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from circuits.tuning import stimuli as S
from circuits.core.inputs import MEAN
from circuits.core.graph import INCEPTION_V1
from circuits.core.units import parse_unit

# Coverage of the foreground: 0 on the white background, 1 on a black stroke.
def coverage(x: torch.Tensor) -> torch.Tensor:
    return (255.0 - (x[:, 0] + MEAN)) / 255.0


def fit_circle(cov: np.ndarray) -> tuple[float, float, float]:
    """Kasa least-squares circle through the pixels weighted by coverage: (cy, cx, r)."""
    ys, xs = np.nonzero(cov > 0.5)
    w = cov[ys, xs]
    a = np.stack([xs, ys, np.ones_like(xs)], 1).astype(float) * w[:, None]
    b = -(xs.astype(float) ** 2 + ys.astype(float) ** 2) * w
    d, e, f = np.linalg.lstsq(a, b, rcond=None)[0]
    cx, cy = -d / 2, -e / 2
    return cy, cx, math.sqrt(cx * cx + cy * cy - f)


@pytest.mark.parametrize("theta", [0.0, 37.0, 90.0, 180.0, 251.5, 270.0])
def test_arc_bulges_towards_theta_with_the_requested_radius(theta):
    # An arc of curvature 0.8 and length 60 px has radius 60 / (0.8 pi) = 23.87 px.
    size, length, curv = 129, 60.0, 0.8
    x = S.curve(theta, curv, arc_length=length, width=2.0, size=size)
    cy, cx, r = fit_circle(coverage(x)[0].numpy())
    centre = (size - 1) / 2  # the arc's midpoint
    bulge = math.degrees(math.atan2(centre - cy, centre - cx)) % 360  # image coords, y down: clockwise
    assert abs((bulge - theta + 180) % 360 - 180) < 1.0
    assert abs(r - length / (curv * math.pi)) < 1.0


def test_article_glyphs():
    # 0 = ')', 90 = '∪', 180 = '(', 270 = '∩': where the ink is relative to the midpoint.
    cov = coverage(S.curve([0, 90, 180, 270], 1.0, arc_length=40, size=65))
    ys, xs = torch.meshgrid(torch.arange(65.0), torch.arange(65.0), indexing="ij")
    mx = [(c * xs).sum() / c.sum() - 32 for c in cov]
    my = [(c * ys).sum() / c.sum() - 32 for c in cov]
    assert mx[0] < -5 and mx[2] > 5  # ')' lies left of its rightmost point, '(' right of its leftmost
    assert my[1] < -5 and my[3] > 5  # '∪' lies above its lowest point, '∩' below its highest


def test_radius_parameter_equals_curvature_parameter():
    r = 30.0
    a = S.curve(20, radius=r, arc_length=50, size=97)
    b = S.curve(20, 50 / (math.pi * r), arc_length=50, size=97)
    assert torch.allclose(a, b, atol=1e-3)


def test_stroke_width_and_area():
    # A straight stroke: every column across it holds exactly `width` pixels of ink.
    for w in (0.5, 1.0, 2.5, 3.0):
        cov = coverage(S.line(0, width=w, size=33))[0]
        assert torch.allclose(cov.sum(0), torch.full((33,), w), atol=1e-4)
    # An arc with round caps covers L*w + pi*w^2/4, whatever its orientation.
    L, w = 50.0, 3.0
    cov = coverage(S.curve([0, 23, 100], 0.6, arc_length=L, width=w, size=97))
    area = L * w + math.pi * w * w / 4
    assert torch.allclose(cov.sum((1, 2)), torch.full((3,), area, dtype=cov.dtype), rtol=0.01)


def test_arc_width_at_its_midpoint():
    # Along the row through the midpoint of ')' the stroke is crossed at right angles.
    w = 3.0
    cov = coverage(S.curve(0, 0.5, arc_length=40, width=w, size=65))[0]
    assert abs(float(cov[32].sum()) - w) < 0.05


def test_filled_half_disc_area_and_edges():
    # curvature 1 = half circle; filled, the region between arc and chord is a half disc.
    L = 60.0
    r = L / math.pi
    cov = coverage(S.curve(45, 1.0, arc_length=L, width=0.01, filled=True, size=97))[0]
    assert abs(float(cov.sum()) - math.pi * r * r / 2) / (math.pi * r * r / 2) < 0.01
    # An edge through the centre of an odd image covers exactly half of it.
    for theta in (0, 30, 90, 200):
        cov = coverage(S.edge(theta, size=31))[0]
        assert abs(float(cov.sum()) - 31 * 31 / 2) < 1e-2


@pytest.mark.parametrize(
    "kind,params",
    [
        ("curve", {"curvature": 0.7}),
        ("curve", {"curvature": 0.4, "filled": True}),
        ("line", {}),
        ("edge", {}),
        ("angle", {"opening": 70}),
        ("rounded-angle", {"opening": 80, "corner_radius": 6}),
        ("combing", {"curvature": 0.6}),
    ],
)
def test_rotating_by_90_degrees_equals_rendering_at_theta_plus_90(kind, params):
    # Clockwise on screen (y down) is torch.rot90 with k=-1 over (H, W).
    a = S.render(kind, orientation=33.0, size=65, **params)
    b = S.render(kind, orientation=123.0, size=65, **params)
    assert torch.allclose(torch.rot90(a, -1, (-2, -1)), b, atol=1e-3)


def test_identities_between_kinds():
    straight = S.curve(30, 0.0, arc_length=40, size=65)
    assert torch.allclose(straight, S.line(120, length=40, size=65), atol=1e-4)
    assert torch.allclose(S.angle(30, 180, arm_length=20, size=65), straight, atol=1e-2)
    # A rounded angle with the largest corner radius is one arc of 180 - opening degrees.
    op, arm = 60.0, 20.0
    rho = arm * math.tan(math.radians(op / 2))
    rounded = S.rounded_angle(30, op, rho, arm_length=arm, size=65)
    arc = S.curve(30, (180 - op) / 180, arc_length=rho * math.radians(180 - op), size=65)
    assert torch.allclose(rounded, arc, atol=1e-2)


def test_same_picture_at_any_image_size():
    # Geometry is fixed in pixels around `centre`: a small image is a crop of a large one.
    kw = dict(curvature=0.8, arc_length=45)
    big = S.curve(77, size=224, centre=parse_unit("mixed3b:379", INCEPTION_V1), **kw)  # RF centre at 224 px: (119, 119)
    small = S.curve(77, size=97, centre=(48, 48), **kw)
    assert torch.equal(big, S.curve(77, size=224, centre=(119, 119), **kw))
    assert torch.equal(big[..., 71:168, 71:168], small)
    # scale draws the same geometry at more pixels per stimulus pixel: the radius doubles.
    r1 = fit_circle(coverage(S.curve(0, 0.8, arc_length=40, size=65))[0].numpy())[2]
    r2 = fit_circle(coverage(S.curve(0, 0.8, arc_length=40, size=129, scale=2.0))[0].numpy())[2]
    assert abs(r2 - 2 * r1) < 1.0


def test_colours_range_and_determinism():
    x = S.curve([0, 90], 0.5, size=48)
    assert x.dtype == torch.float32 and x.shape == (2, 3, 48, 48)
    assert float(x.max()) == 138.0 and float(x.min()) == -117.0
    assert torch.equal(x, S.curve([0, 90], 0.5, size=48))
    y = S.curve(0, 1.0, fg="white", bg="black", size=48)
    assert float(y.min()) == -117.0 and float(y.max()) == 138.0
    z = S.curve(0, 1.0, fg="red", bg=(0, 0, 255), width=4, size=48)[0] + MEAN
    assert z[:, 0, 0].tolist() == [0.0, 0.0, 255.0]  # background
    red = (z == torch.tensor([255.0, 0.0, 0.0])[:, None, None]).all(0)
    assert red.sum() > 40  # fully covered stroke pixels are pure fg
    # in between, an anti-aliased blend of the two colours
    assert torch.allclose(z[0] + z[2], torch.full((48, 48), 255.0))


def test_lazy_stimuli_render_slices_of_the_whole():
    s = S.curve_sweep([0, 90, 180, 270], [0.25, 1.0], arc_length=30)
    full = s.render(size=40)
    assert len(s) == 8 and torch.equal(s.render(size=40, start=3, stop=6), full[3:6])
    # curvature-major: stimulus 5 is curvature 1.0 at 90 degrees.
    assert torch.equal(full[5:6], S.curve(90, 1.0, arc_length=30, size=40))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: S.curve(0, 0.5, width=-1), "width must lie in"),
        (lambda: S.curve(0, 1.5), "curvature must lie in"),
        (lambda: S.curve(0, radius=5, arc_length=40), "more than a half circle"),
        (lambda: S.curve(0, 0.5, arc_length=0), "arc_length"),
        (lambda: S.curve([0, 1, 2], [0.1, 0.2]), "same length"),
        (lambda: S.curve(float("nan")), "finite"),
        (lambda: S.angle(0, 0), "opening must lie in"),
        (lambda: S.angle(0, 60, arm_length=10, corner_radius=20), "corner_radius 20 px is too large"),
        (lambda: S.curve(0, fg="purpel"), "did you mean purple|unknown colour"),
        (lambda: S.curve(0, bg=(0, 0, 300)), r"\[0, 255\]"),
        (lambda: S.curve(0, size=0), "at least 1x1"),
        (lambda: S.render("cruve"), "did you mean curve"),
        (lambda: S.Stimuli("curve", {"orientation": [0, 90], "curvature": [0.5, 2.0]}), "curvature must lie in"),
        (lambda: S.combing(0, side="left"), "side must be"),
    ],
)
def test_bad_parameters_are_refused_clearly(call, match):
    with pytest.raises(ValueError, match=match):
        call()
