"""The `circuits` command line: one subcommand module per job.

Each module in `COMMAND_MODULES` has `register(subparsers)`, which adds its
subcommands and sets `func(args) -> int` on them.

Shared options (``--weights``, numeric types, output checks, unit lists) are in
`circuits.cli.options`; each command declares its input and output options
(`paths.declare_io`) and `main` checks them before any work. Exit status: 0 done, 1 a check failed (``compare --strict``,
a feature visualization that stayed at 0), 2 bad input, 130 interrupted (Ctrl-C).

Example:
    $ circuits layers
    $ circuits unit mixed3b:379
    $ python -m circuits.cli families mixed3b
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

COMMAND_MODULES = (
    "circuits.cli.layers",  # layers, unit
    "circuits.cli.weights",  # families, weights
    "circuits.cli.graph",  # graph, ablate
    "circuits.cli.tune",  # stimuli, tune
    "circuits.cli.compare",  # compare
    "circuits.cli.vis",  # vis, attribute
    "circuits.cli.edit_experiment",  # edit-experiment
    "circuits.cli.discover",  # discover
    "circuits.cli.dataset",  # dataset, dataset-sheet, dataset-labels, extract-curves, trace-curve
    "circuits.cli.joint_tuning",  # joint-tuning
    "circuits.cli.heatmaps",  # heatmaps
    "circuits.cli.factorize",  # factorize
    "circuits.cli.report",  # report
)


class _Parser(argparse.ArgumentParser):
    """Parse errors of the shared numeric types read as one line: ``--steps must be >= 1, got 0``."""

    def error(self, message: str):
        m = re.match(r"^argument (-[-\w]+)(?:/[-\w]+)*: (must be .*)$", message)
        if m:
            message = f"{m.group(1)} {m.group(2)}"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="circuits", description="Circuit-level interpretability of Lucid's InceptionV1 and Keras's InceptionV3 (--weights nsfwjs-inception-v3)."
    )
    from circuits import __version__  # circuits/__init__.py imports no torch

    parser.add_argument("--version", action="version", version=f"circuits {__version__} (distribution circuits-vision)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return parser


class _PipeSafeStdout:
    """stdout that, once its reader has gone (``| head``), drops further output instead of
    raising, so the command still finishes and writes its files, as Unix tools do."""

    def __init__(self, stream):
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._break()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._break()

    def _break(self) -> None:
        self.broken = True
        # Python flushes stdout again at exit; point the descriptor at /dev/null so
        # that flush cannot fail either (the recipe of Python's signal docs).
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # pragma: no cover - not a real file
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _before_work(args) -> None:
    """The checks every command gets before it starts: its declared outputs against its
    inputs and each other (`paths.check_io`), and that ``--device`` is here."""
    from circuits.cli.device import check_device
    from circuits.cli.paths import check_io

    check_io(args)
    if getattr(args, "device", None) not in (None, "cpu"):
        check_device(args.device)


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status: 0 done, 1 a check failed, 2 bad input, 130 interrupted."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a parse error (2), already printed by argparse
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    real_stdout = sys.stdout
    sys.stdout = _PipeSafeStdout(real_stdout)
    try:
        _before_work(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        # One line, no traceback; files are written atomically, so nothing is half-written.
        print(f"circuits {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, IndexError, TypeError, FileNotFoundError, OSError) as e:
        # Bad input is reported as one clear line, not a traceback.
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"circuits {args.command}: error: {msg}", file=sys.stderr)
        return 2
    finally:
        try:
            sys.stdout.flush()
        finally:
            sys.stdout = real_stdout


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
