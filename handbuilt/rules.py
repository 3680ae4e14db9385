"""The vocabulary the hand-built network is declared in: banks of units and connection rules.

A `Bank` says which channels of which tensor carry a family and the orientation (and
Gabor phase) of each. A rule says how one bank is computed from the one before it;
`handbuilt.compile` turns the rules into convolution weights. Every rule describes ONE
template in a canonical frame (orientation 0); each unit's kernel is that template
rotated to the unit's orientation and sampled on the grid of its source, so the
network is rotation-equivariant by construction.

Angles are degrees in image coordinates (x right, y down), clockwise on screen from +x,
as in the Curve Detectors article. A "line" unit's orientation is the direction of the
line (period 180); a "curve" unit's orientation is the direction its curve bulges,
from the centre of curvature to the middle of the arc (period 360): 0 is ``)``, 90 is
``U``.

Example:
    >>> uniform(4, 180)
    (0.0, 45.0, 90.0, 135.0)
    >>> Tuning(width=20.0, opposite=0.5)(np.array([0.0, 90.0]), period=180).round(3).tolist()
    [0.994, -0.5]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Union

import numpy as np

__all__ = [
    "Bank",
    "Tuning",
    "Tolerance",
    "Gabor",
    "PoolPhases",
    "Relay",
    "PoolEnergy",
    "Normalize",
    "Segment",
    "Arc",
    "Tile",
    "Rule",
    "Spec",
    "uniform",
    "KINDS",
]

# The period of a unit's orientation, by kind ("contrast" units have no orientation).
KINDS = {"line": 180.0, "curve": 360.0, "contrast": 0.0}


def uniform(n: int, period: float, start: float = 0.0) -> tuple[float, ...]:
    """`n` orientations evenly spaced over `period` degrees, from `start`."""
    return tuple(float((start + i * period / n) % period) for i in range(n))


@dataclass(frozen=True)
class Bank:
    """Units of one family: channel `channels[i]` of `layer` has `orientations[i]`.

    `branch` is the tensor computing the channels (the layer itself outside a
    concatenation); a channel of `layer` that another branch computes is a spec error.
    `phases` (Gabor banks only) gives each channel's carrier phase in degrees.
    A "contrast" bank has no orientations (None). `fwhm` gives each unit's published
    tuning width (a fact about the unit, like its orientation); a `Tile` rule with a
    `reference_fwhm` stretches its orientation tuning for each unit by fwhm / reference_fwhm.
    """

    name: str
    layer: str
    branch: str
    channels: tuple[int, ...]
    orientations: tuple[float, ...] | None
    kind: str = "curve"
    phases: tuple[float, ...] | None = None
    note: str = ""
    fwhm: tuple[float, ...] | None = None  # published tuning width (FWHM, degrees) of each unit, where known

    @property
    def period(self) -> float:
        return KINDS[self.kind]


@dataclass(frozen=True)
class Tuning:
    """Weight as a function of orientation difference Delta (source minus what the template expects).

    h(Delta) = exp(-Delta^2 / 2 width^2) - opposite * exp(-(|Delta| - P/2)^2 / 2 opposite_width^2)
               - opponent * exp(-(|Delta| - P/2)^2 / 2 width^2)
               - surround * (1 - exp(-D^2 / 2 surround_width^2)) - floor,
    with Delta wrapped into [-P/2, P/2] for the source's period P (180 for lines, 360 for
    curves): excitation from aligned sources, inhibition from the opposite orientation
    (perpendicular lines, curves bulging the other way), inhibition that grows with the
    orientation difference (`surround`: the band of positive weights is surrounded by
    negative ones; D = Delta, or with `surround_axis` the distance of Delta from the
    nearer of 0 and P/2), and `floor` inhibition from all.

    `surround=None` sets its strength so that the band and the surround sum to zero over
    the period (the negative weights around the band weigh as much as the band: early
    curves of every orientation at once give nothing), at every stretch.

    `opponent` is the excitatory band itself turned by half a period and subtracted (it
    keeps the band's width when the band is stretched). At 1 it cancels any source
    pattern that is the same at Delta and Delta + P/2 -- what a straight line gives
    curve sources: a line has no bulge, so the curves bulging either way see it alike --
    so straight lines add nothing through such a template, and curves only what they
    give one bulge more than the other. `surround_axis` measures the surround from the
    axis of the band and its opposite (the tangent, period P/2, rather than the bulge):
    it then inhibits curves whose tangent differs, at either bulge, and spares the
    sources at 0 and P/2 that a straight line along the tangent excites.
    """

    width: float
    opposite: float = 0.0
    opposite_width: float = 30.0
    floor: float = 0.0
    surround: float | None = 0.0
    surround_width: float = 60.0
    opponent: float = 0.0
    surround_axis: bool = False

    def __call__(self, delta: np.ndarray, period: float) -> np.ndarray:
        d = np.abs((np.asarray(delta, dtype=np.float64) + period / 2) % period - period / 2)
        exc = np.exp(-0.5 * (d / self.width) ** 2)
        opp = self.opposite * np.exp(-0.5 * ((d - period / 2) / self.opposite_width) ** 2)
        opp = opp + self.opponent * np.exp(-0.5 * ((d - period / 2) / self.width) ** 2)
        sur = self.surround_strength(period) * self._surround_shape(d, period)
        return exc - opp - sur - self.floor

    def _surround_shape(self, d: np.ndarray, period: float) -> np.ndarray:
        ds = np.minimum(d, period / 2 - d) if self.surround_axis else d
        return 1.0 - np.exp(-0.5 * (ds / self.surround_width) ** 2)

    def surround_strength(self, period: float) -> float:
        """The surround's strength; for `surround=None` the one that makes band - surround sum to zero.

        >>> round(Tuning(width=15.0, surround=None, surround_width=45.0, surround_axis=True).surround_strength(360), 3)
        0.26
        """
        if self.surround is not None:
            return self.surround
        d = np.linspace(0.0, period / 2, 3601)
        band = np.trapezoid(np.exp(-0.5 * (d / self.width) ** 2), d)
        return float(band / np.trapezoid(self._surround_shape(d, period), d))

    def stretched(self, factor: float, balanced: bool = False) -> "Tuning":
        """The tuning of a unit `factor` times as broad as the template.

        The excitatory band is `factor`**2 times as wide (the unit's response width is
        about the band combined with its sources' own width, so the band has to grow
        faster than the response), and the surround that inhibits around it reaches
        `factor` times as far, with `factor` times its strength. `balanced` also scales
        the opposite and floor inhibition with the band's mass (`factor`**2), so that a
        broad unit's excitation does not outweigh the inhibition that removes echoes.
        `opponent` is the band's own mirror image, so it follows the band and is not scaled.

        >>> t = Tuning(width=10.0, surround=0.5, surround_width=30.0).stretched(2.0)
        >>> t.width, t.surround, t.surround_width
        (40.0, 1.0, 60.0)
        """
        mass = factor**2
        inh = mass if balanced else 1.0
        surround = None if self.surround is None else self.surround * factor  # zero-sum stays zero-sum
        return Tuning(self.width * mass, self.opposite * inh, self.opposite_width, self.floor * inh,
                      surround, self.surround_width * factor, self.opponent, self.surround_axis)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclass(frozen=True)
class Tolerance:
    """Weight of a line source as a function of its orientation difference from the local tangent.

    "Curve Circuits": each 3b curve "is excited by edges along its tangent line with a
    tolerance of between about 10 to 45 degrees", and "a line that's rotated a little may
    inhibit it". So: a band of excitation `tolerance` degrees wide (a soft box, edges
    `edge` degrees soft), and inhibition of strength `inhibition` for lines rotated up to
    `flank` degrees beyond it on either side; lines rotated further give nothing.
    `inhibition=None` makes the weights sum to zero over orientation (the flanks weigh as
    much as the band: inhibition = tolerance / (2 flank)), so that lines of every
    orientation at once give nothing, as a Gabor without DC gives nothing on a blank.

    The difference Delta is signed by the side of the path the template point lies on
    (`side`: +1 past the middle, -1 before it, 0 at the middle, where both are averaged):
    positive means turned further the way the curve turns (a tighter curve), negative
    turned back towards the middle's tangent (a straighter one). `curve_share` is the
    part of the band on the tighter side: 0.5 is symmetric; 1 is the article's 3b:406
    ("on its left side it is most excited by lines about 10 degrees upwards. If the line is
    oriented above 10 it is still excited, but if it is less than 10 it switches to
    being inhibited"): tolerant of error towards a tighter curve, inhibited by any turn
    towards a straight line. `lean_side` limits `curve_share` to one side of the path
    (-1 or +1; the other side is symmetric); 0 applies it to both.

    `cliff` mixes in the article's cliff lines, which "tolerate error in that direction, but
    definitely don't want it going the other way": the weight is (1 - cliff) times the
    tolerance above plus `cliff` times a one-sided one (curve_share=1), as when a curve reads
    a line family of which that fraction are cliff lines.

    Per unit (`for_unit`): `by_width` maps a unit's published width linearly onto its
    tolerance, ``((fwhm_lo, tol_lo), (fwhm_hi, tol_hi))``; `leans` gives the units whose
    tolerance is asymmetric, ``((channel, side, curve_share), ...)``.

    >>> t = Tolerance(tolerance=20.0, inhibition=0.5, flank=15.0)
    >>> t(np.array([0.0, 20.0, 60.0]), period=180).round(2).tolist()
    [0.98, -0.45, -0.0]
    >>> c = Tolerance(tolerance=20.0, inhibition=0.5, flank=15.0, curve_share=1.0)
    >>> c(np.array([10.0, -10.0]), period=180, side=np.array([1.0, 1.0])).round(2).tolist()
    [0.98, -0.45]
    >>> one = Tolerance(tolerance=20.0, inhibition=0.5, flank=15.0, curve_share=1.0, lean_side=-1)
    >>> one(np.array([5.0, 5.0]), period=180, side=np.array([-1.0, 1.0])).round(2).tolist()  # 5 straighter on side -1
    [-0.38, 0.89]
    >>> m = Tolerance(tolerance=20.0, inhibition=0.5, flank=15.0, cliff=0.5)
    >>> m(np.array([5.0, -5.0]), period=180, side=np.array([1.0, 1.0])).round(2).tolist()  # tighter, straighter
    [0.89, 0.25]
    >>> w = Tolerance(tolerance=0.0, flank=22.5, by_width=((30.0, 10.0), (70.0, 45.0)), inhibition=None)
    >>> u = w.for_unit(7, 50.0)
    >>> u.tolerance, round(u.inhibition, 3)
    (27.5, 0.611)
    """

    tolerance: float
    inhibition: float | None = 0.0
    flank: float = 15.0
    curve_share: float = 0.5
    edge: float = 2.0
    lean_side: int = 0
    by_width: tuple[tuple[float, float], tuple[float, float]] | None = None
    leans: tuple[tuple[int, int, float], ...] = ()
    cliff: float = 0.0

    def for_unit(self, channel: int, fwhm: float | None) -> "Tolerance":
        """The tolerance of one unit: its width mapped by `by_width`, its lean from `leans`."""
        tol = self.tolerance
        if self.by_width is not None and fwhm is not None:
            (w0, t0), (w1, t1) = self.by_width
            tol = t0 + (t1 - t0) * (fwhm - w0) / (w1 - w0)
        share, side = self.curve_share, self.lean_side
        for ch, sd, sh in self.leans:
            if ch == channel:
                share, side = sh, sd
        inh = tol / (2.0 * self.flank) if self.inhibition is None else self.inhibition
        return Tolerance(tol, inh, self.flank, share, self.edge, side, cliff=self.cliff)

    @property
    def _inhibition(self) -> float:
        if self.inhibition is None:  # zero-sum: the two flanks weigh as much as the band
            return self.tolerance / (2.0 * self.flank)
        return self.inhibition

    def _box(self, d: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return _sigmoid((d + lo) / self.edge) * _sigmoid((hi - d) / self.edge)

    def _band(self, d: np.ndarray, share: float) -> np.ndarray:
        lo, hi = self.tolerance * (1.0 - share), self.tolerance * share
        exc = self._box(d, lo, hi)
        wide = self._box(d, lo + self.flank, hi + self.flank)
        return exc - self._inhibition * (wide - exc)

    def _one_side(self, d: np.ndarray, share: float) -> np.ndarray:
        if not self.cliff:
            return self._band(d, share)
        return (1.0 - self.cliff) * self._band(d, share) + self.cliff * self._band(d, 1.0)

    def __call__(self, delta: np.ndarray, period: float, side: np.ndarray | None = None) -> np.ndarray:
        d = (np.asarray(delta, dtype=np.float64) + period / 2) % period - period / 2
        if side is None:
            side = np.zeros(d.shape[-1:])
        side = np.broadcast_to(np.sign(side), d.shape)
        share = {s: (self.curve_share if self.lean_side in (0, s) else 0.5) for s in (-1, 1)}
        before, after = self._one_side(-d, share[-1]), self._one_side(d, share[1])
        return np.where(side == 0, 0.5 * (before + after), np.where(side > 0, after, before))

    def stretched(self, factor: float, balanced: bool = False) -> "Tolerance":
        """A unit `factor` times as broad tolerates `factor` times the orientation error.

        >>> Tolerance(tolerance=20.0).stretched(1.5).tolerance
        30.0
        """
        return dataclasses.replace(self, tolerance=self.tolerance * factor)


@dataclass(frozen=True)
class Gabor:
    """Oriented Gabor filters on the image's luminance, one per (orientation, phase) unit of `dst`.

    kernel(t, n) = exp(-t^2/2 sigma_along^2 - n^2/2 sigma_across^2) * cos(2 pi n / wavelength + phase),
    t along the unit's line orientation, n across it; the DC part is removed (a uniform
    image gives exactly 0), the kernel is scaled to unit L1 norm, then by `gain`.
    """

    dst: str
    wavelength: float
    sigma_across: float
    sigma_along: float
    luma: tuple[float, float, float]
    gain: float
    bias: float = 0.0


@dataclass(frozen=True)
class PoolPhases:
    """1x1: each `dst` unit sums the `src` units of every phase, weighted by `tuning` of orientation difference."""

    src: str
    dst: str
    tuning: Tuning
    gain: float
    bias: float = 0.0


@dataclass(frozen=True)
class Relay:
    """1x1: each `dst` unit copies the `src` unit with the same orientation (times `gain`, plus `bias`).

    With a `tuning`, each `dst` unit reads every source unit at the same place with
    weight `gain * tuning(source orientation - its own)` instead: e.g. minus the unit of
    the opposite orientation, so that after the ReLU only the evidence for one of the
    two survives (an opponent relay), or minus all other orientations (sharpening).
    """

    src: str
    dst: str
    gain: float
    bias: float = 0.0
    tuning: Tuning | None = None


@dataclass(frozen=True)
class PoolEnergy:
    """Each `dst` unit sums every `src` unit, all orientations alike, over a Gaussian neighbourhood.

    The result does not depend on orientation: a measure of local contrast energy
    (used as the divisor of a `Normalize`). Weights exp(-|p|^2 / 2 spread^2), scaled to sum to `gain`.
    """

    src: str
    dst: str
    spread: float
    gain: float
    bias: float = 0.0


@dataclass(frozen=True)
class Normalize:
    """Divisive normalization of `bank` by `by`, done by the LRN that follows their layer.

    TensorFlow's LRN divides channel c by sqrt(2 + 1e-4 * sum of squares of channels
    c-5..c+5). When each unit of `bank` has exactly one unit of `by` in its window (and
    no other unit of `bank`), and `by` is much larger than `bank`, the LRN output is
    about 100 * bank / by: contrast (and colour, and line-vs-edge) invariance. This rule
    writes no weight; the compiler checks that the channels are laid out so.
    """

    bank: str
    by: str

    @property
    def dst(self) -> tuple[str, ...]:
        return ()


def _midpoints(length: float, n: int) -> np.ndarray:
    """Arc-length positions of n equal pieces of a path centred on 0 (midpoint rule)."""
    return (np.arange(n) + 0.5) * (length / n) - length / 2


@dataclass(frozen=True)
class Segment:
    """A straight template path of `length` pixels through the unit's centre, along its orientation."""

    length: float

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = _midpoints(self.length, n)
        return s, np.zeros_like(s), np.zeros_like(s)


@dataclass(frozen=True)
class Arc:
    """A circular template path of `radius`, `length` pixels long, its midpoint at the unit's centre.

    Canonical frame: bulging towards +x (a ``)``), centre of curvature at (-radius, 0).
    """

    radius: float
    length: float

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = _midpoints(self.length, n)
        phi = s / self.radius
        x = self.radius * (np.cos(phi) - 1.0)
        y = self.radius * np.sin(phi)
        return x, y, np.degrees(phi) + 90.0  # tangent direction; the local bulge is tangent - 90


@dataclass(frozen=True)
class Tile:
    """Tile `src` units along the path of each `dst` unit, aligned with the path's tangent.

    weight(src unit k, grid offset p) = sum over path samples q of
        exp(-|p - q|^2 / 2 spread^2) * tuning(orientation_k - expected orientation at q),
    where the expected orientation is the path's tangent (line sources) or local bulge
    (curve sources). The kernel is scaled so its positive weights sum to `gain`.
    With `reference_fwhm`, a dst unit whose bank gives its published `fwhm` uses
    ``tuning.stretched(fwhm / reference_fwhm, balanced)``: a unit published as broader
    tolerates more orientation mismatch of its sources. Several `Tile` rules may
    compute one bank from different sources (their weights add up).
    """

    src: str
    dst: tuple[str, ...]
    path: Union[Segment, Arc]
    tuning: Union[Tuning, "Tolerance"]
    spread: float
    gain: float
    bias: float = 0.0
    samples: int = 97  # points along the path: the sum is then a smooth integral (changes < 1e-3 with more)
    reference_fwhm: float | None = None
    balanced: bool = False
    radius_stretch: float = 0.0  # an Arc's radius times (fwhm / reference_fwhm) ** radius_stretch
    spread_stretch: float = 0.0  # the spread times (fwhm / reference_fwhm) ** spread_stretch


Rule = Union[Gabor, PoolPhases, Relay, Tile, PoolEnergy, Normalize]


@dataclass(frozen=True)
class Spec:
    """A whole hand-built network: its banks and one rule per computed bank."""

    banks: tuple[Bank, ...]
    rules: tuple[Rule, ...] = field(default=())

    def bank(self, name: str) -> Bank:
        for b in self.banks:
            if b.name == name:
                return b
        import difflib

        close = difflib.get_close_matches(name, [b.name for b in self.banks], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no bank named {name!r} in the spec (banks: {', '.join(b.name for b in self.banks)}){hint}")

    def rule_index(self, src: str, dst: str) -> int:
        """The index in `rules` of the `Tile` rule that tiles bank `src` into bank `dst`.

        >>> from handbuilt.spec import SPEC
        >>> type(SPEC.rules[SPEC.rule_index("line_relay_3b", "curves")]).__name__
        'Tile'
        """
        for i, r in enumerate(self.rules):
            if isinstance(r, Tile) and r.src == src and dst in r.dst:
                return i
        tiles = [f"{r.src} -> {'+'.join(r.dst)}" for r in self.rules if isinstance(r, Tile)]
        raise KeyError(f"no Tile rule from {src!r} into {dst!r} in the spec (Tile rules: {', '.join(tiles)})")
