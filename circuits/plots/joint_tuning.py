"""The joint tuning figure of "Curve Detectors": a family's responses to rotated dataset examples.

Three panels, from a `circuits.dataset.joint_tuning.JointTuning`:

1. one source unit's examples rotated 0..359 degrees: one curve per unit of the family,
   each a bump at the rotation that turns the examples into its preferred orientation;
2. all sources together, each rotation placed at the orientation it gives the examples
   (source's preferred orientation + rotation) and averaged: one bump per unit, jointly
   spanning the orientations;
3. the aligned average: every curve shifted so that its peak is at 0, then averaged.

Units keep one qualitative colour (tab10, or tab20 beyond ten units) in every panel.

Example:
    >>> plot_joint_tuning(jt, "joint.png")     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from circuits.plots.tuning import save_figure

__all__ = ["plot_joint_tuning", "by_orientation"]


def by_orientation(jt) -> np.ndarray:
    """[U, R] each unit's response averaged over sources, indexed by the orientation the rotation
    gives the examples: orientation = source's preferred orientation + rotation (mod 360), rounded
    to the rotation grid."""
    r = len(jt.rotations_deg)
    step = 360.0 / r
    out = np.zeros((len(jt.units), r))
    for s in range(len(jt.units)):
        shift = int(round(jt.preferred_deg[s] / step)) % r
        out += np.roll(jt.curves[s], shift, axis=-1)
    return out / len(jt.units)


def plot_joint_tuning(jt, path, *, source: str | None = None, title: str | None = None) -> Path:
    """Write the joint tuning figure of `jt` to `path` (.png/.svg/.pdf).

    source: the unit whose examples the first panel shows (default the first unit).
    """
    from circuits.plots.setup import pyplot

    plt = pyplot()
    source = source or jt.units[0]
    if source not in jt.units:
        raise ValueError(f"source {source} was not measured; measured: {', '.join(jt.units)}")
    cmap = plt.get_cmap("tab10" if len(jt.units) <= 10 else "tab20")
    colours = [cmap(i % cmap.N) for i in range(len(jt.units))]
    what = "pre-ReLU" if jt.pre_relu else "post-ReLU"
    rot = jt.rotations_deg
    fig, axes = plt.subplots(3, 1, figsize=(8.0, 9.6))
    ax = axes[0]
    s = jt.units.index(source)
    for j, u in enumerate(jt.units):
        lw = 2.4 if j == s else 1.4
        ax.plot(rot, jt.curves[s, j], color=colours[j], lw=lw, label=f"{u} ({jt.preferred_deg[j]:.0f}°)")
    ax.set_xlim(0, 360)
    ax.set_xticks(np.arange(0, 361, 45))
    ax.set_xlabel("rotation of the examples (degrees, clockwise on screen)")
    ax.set_ylabel(f"mean {what} response")
    k = len(jt.examples.get(source, []))
    ax.set_title(f"{source}'s top {k} dataset examples, rotated", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
              title="unit (preferred orientation)", title_fontsize=8)

    ax = axes[1]
    orient = by_orientation(jt)
    for j, u in enumerate(jt.units):
        ax.plot(rot, orient[j], color=colours[j], lw=1.6)
        ax.axvline(jt.preferred_deg[j] % 360, color=colours[j], lw=0.8, ls=":")
    ax.set_xlim(0, 360)
    ax.set_xticks(np.arange(0, 361, 45))
    ax.set_xlabel("orientation of the rotated examples (source's preferred orientation + rotation, degrees)")
    ax.set_ylabel(f"mean {what} response")
    ax.set_title("all sources: one bump per unit (dotted: preferred orientation on synthetic curves)", fontsize=10)

    ax = axes[2]
    offsets, mean, n = jt.aligned()
    ax.plot(offsets, mean, color="0.15", lw=2.0)
    ax.fill_between(offsets, 0, mean, color="0.6", alpha=0.3)
    ax.set_xlim(offsets[0], offsets[-1])
    ax.set_xticks(np.arange(-180, 181, 45))
    ax.set_xlabel("rotation from each curve's peak (degrees)")
    ax.set_ylabel(f"mean {what} response")
    a = jt.agreement()
    ax.set_title(f"aligned average of {n} curves; peaks at the predicted rotation (±{a['tolerance_deg']:.0f}°) "
                 f"for {a['within_tolerance']}/{a['pairs']} neighbour pairs", fontsize=10)
    for ax in axes:
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"joint tuning curves ({jt.network})", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)
