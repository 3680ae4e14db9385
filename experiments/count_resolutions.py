"""How often a command resolves units: top-level `resolve_units` and `parse_unit` calls per command.

A unit should be resolved once, where it enters (the CLI), and carried from there as a
`Unit`; a function that re-resolves what it was given wastes work and hides which network
a unit belongs to. cProfile counts the calls: "top-level" is the primitive call count
(calls that are not recursion of the same function, which is how `resolve_units` walks a
list).

    python experiments/count_resolutions.py            # tune mixed3b:curves, discover mixed3b

Measured on the hand-built network (tests do not time or count this; it is a measurement).
Before the network was made explicit (main at d5ca006): tune 4 top-level resolve_units
calls (35 with recursion), 1,844 parse_unit; discover 13 (6,253), 8,358 parse_unit.
After: tune 1 (2), 1,814 parse_unit, of which 1,784 build InceptionV1's published families
once per process (`published_families`); discover 0 (its units are the layer's channels,
each parsed once: 480 of its 656 parse_unit calls). `units_of` (3 and 13 calls) only checks
that resolved Units belong to the model.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import sys

COMMANDS = {
    "tune mixed3b:curves": ["tune", "mixed3b:curves", "--angles", "36", "--curvatures", "0.5,1", "--no-progress"],
    "discover mixed3b": ["discover", "mixed3b", "--orientations", "8", "--curvatures", "0.5,1", "--no-progress"],
}
COUNTED = ("resolve_units", "units_of", "parse_unit", "published_families")


def count(argv: list[str]) -> dict[str, tuple[int, int]]:
    """{function: (top-level calls, all calls)} while `circuits argv` runs."""
    from circuits.cli import main

    prof = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()):
        prof.enable()
        try:
            code = main(argv)
        finally:
            prof.disable()
    if code:
        raise SystemExit(f"circuits {' '.join(argv)} failed ({code})")
    out = {name: (0, 0) for name in COUNTED}
    for (path, _, name), (primitive, total, *_rest) in pstats.Stats(prof).stats.items():
        if name in COUNTED and "circuits" in path:
            a, b = out[name]
            out[name] = (a + primitive, b + total)
    return out


def main() -> None:
    for label, argv in COMMANDS.items():
        counts = count(argv)
        shown = ", ".join(f"{name} {top} top-level ({total} in all)" for name, (top, total) in counts.items())
        print(f"circuits {label}: {shown}")


if __name__ == "__main__":
    sys.exit(main())
