"""The `circuits` command line: one subcommand module per job.

Each module in `COMMAND_MODULES` has `register(subparsers)`, which adds its
subcommands and sets `func(args) -> int` on them.

Example:
    $ circuits layers
    $ circuits unit mixed3b:379
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "circuits.cli.layers",  # layers, unit
    "circuits.cli.weights",  # families, weights
    "circuits.cli.graph",  # graph, ablate
    "circuits.cli.tune",  # stimuli, tune
    "circuits.cli.compare",  # compare
    "circuits.cli.vis",  # vis, attribute
    "circuits.cli.dataset",  # dataset, dataset-sheet, dataset-labels, extract-curves, trace-curve
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="circuits", description="Circuit-level interpretability of Lucid's InceptionV1."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, IndexError, TypeError, FileNotFoundError, OSError) as e:
        # Bad input is reported as one clear line, not a traceback.
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"circuits {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
