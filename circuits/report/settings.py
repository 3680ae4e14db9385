"""What a report computes, as one frozen record: every number that changes a result.

The cache keys each computation by the weights' fingerprint and the fields of this
record that the computation reads (`ReportSettings.part`), so changing, say, the
feature-visualization steps recomputes only the feature visualizations.

Example:
    >>> s = ReportSettings(vis_steps=8)
    >>> s.check()
    >>> s.part("vis")
    {'vis_steps': 8, 'vis_size': None, 'seed': 0}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

__all__ = ["ReportSettings", "PARTS"]

# Which settings each computation reads (the rest do not enter its cache key).
PARTS: dict[str, tuple[str, ...]] = {
    "vis": ("vis_steps", "vis_size", "seed"),
    "tuning": ("n_angles", "curvatures"),
    "heatmap": ("heat_orientations", "heat_curvatures", "heat_kinds"),
    "scan": ("images", "image_size", "max_images", "stride", "top_k", "per_bin"),
    "weights": ("n_top_weights",),
    "early": ("n_angles_early", "curvatures", "bin_width"),
    "edit": ("n_angles_edit", "curvatures"),
    "joint": ("images", "image_size", "max_images", "joint_top_k", "joint_step", "n_angles", "curvatures"),
}


@dataclass(frozen=True)
class ReportSettings:
    """Settings of `circuits.report.build_report` (defaults: 10 units in minutes on 2 CPU cores).

    vis_steps, vis_size: feature visualization Adam steps and image side (None: the
        smallest input that holds the layer's receptive field, at least 48 px).
    n_angles, curvatures: the radial tuning sweep (post-ReLU, mean over curvature).
    heat_orientations, heat_curvatures: the heat maps' grid (its number of orientations over
        360 degrees, and of curvatures from 0 to 1); heat_kinds: which of
        `circuits.tuning.heatmaps.KINDS` (curves, angles, series, fill, colour).
    images: "skimage" or a folder of images, or None for no dataset sections;
        image_size: shorter side in pixels; max_images: at most this many (None: all);
        stride: every stride-th valid crop position; top_k: crops kept at each end;
        per_bin: crops kept per activation bin.
    n_top_weights: strongest inputs and outputs listed on a unit page.
    n_angles_early, bin_width: the early family's tuning and the orientation-difference bins.
    n_angles_edit: orientations of the editing experiment.
    joint_top_k, joint_step: the joint tuning on rotated dataset examples: strongest crops per
        unit, and degrees between rotations (a divisor of 360).
    """

    vis_steps: int = 128
    vis_size: int | None = None
    seed: int = 0
    n_angles: int = 180
    curvatures: tuple[float, ...] = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)
    heat_orientations: int = 72
    heat_curvatures: int = 11
    heat_kinds: tuple[str, ...] = ("curves", "angles")
    images: str | None = "skimage"
    image_size: int = 224
    max_images: int | None = None
    stride: int = 1
    top_k: int = 24
    per_bin: int = 8
    n_top_weights: int = 12
    n_angles_early: int = 72
    bin_width: float = 45.0
    n_angles_edit: int = 72
    joint_top_k: int = 4
    joint_step: int = 10

    def check(self) -> None:
        """Raise ValueError naming the first bad value and what is accepted."""
        positive = ("vis_steps", "n_angles", "heat_orientations", "image_size", "stride", "n_top_weights",
                    "n_angles_early", "n_angles_edit", "joint_top_k", "joint_step")
        for name in positive:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
        for name in ("n_angles", "n_angles_early", "n_angles_edit", "heat_orientations"):
            if getattr(self, name) < 4:
                raise ValueError(f"{name} must be at least 4 orientations over 360 degrees, got {getattr(self, name)}")
        from circuits.tuning.heatmaps import KINDS

        if not self.heat_kinds or any(k not in KINDS for k in self.heat_kinds):
            raise ValueError(f"heat_kinds must be some of {', '.join(KINDS)}, got {list(self.heat_kinds)}")
        if self.heat_curvatures < 2:
            raise ValueError(f"heat_curvatures must be at least 2 (0 and 1), got {self.heat_curvatures!r}")
        for name in ("top_k", "per_bin"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {v!r}")
        if self.vis_size is not None and (not isinstance(self.vis_size, int) or self.vis_size < 16):
            raise ValueError(f"vis_size must be None (automatic) or at least 16 px, got {self.vis_size!r}")
        if self.max_images is not None and (not isinstance(self.max_images, int) or self.max_images < 1):
            raise ValueError(f"max_images must be None (all) or >= 1, got {self.max_images!r}")
        if not self.curvatures or any(not (math.isfinite(c) and 0 <= c <= 1) for c in self.curvatures):
            raise ValueError(f"curvatures are fractions of a half circle in 0..1, got {list(self.curvatures)}")
        if 360 % self.joint_step:
            raise ValueError(f"joint_step must divide 360 degrees (1, 2, 3, 5, 10, ...), got {self.joint_step!r}")
        n = 360.0 / self.bin_width if self.bin_width > 0 else 0.5
        if abs(n - round(n)) > 1e-9:
            raise ValueError(f"bin_width must divide 360 degrees, got {self.bin_width!r}")

    def part(self, name: str) -> dict:
        """The settings computation `name` reads (its share of the cache key)."""
        d = asdict(self)
        return {k: (list(d[k]) if isinstance(d[k], tuple) else d[k]) for k in PARTS[name]}

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
