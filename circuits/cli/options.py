"""Options and checks every `circuits` command shares, defined once.

* `add_weights(parser)`: the one ``--weights NAME|FILE`` option (dest ``weights``,
  default `DEFAULT_WEIGHTS`, which is `weights.DEFAULT`; a test keeps them equal so
  that ``--help`` need not import torch to print it).
* Numeric argument types (`positive_int`, `nonnegative_int`, `positive_float`,
  `nonnegative_float`) that reject a bad value while the command line is parsed,
  before anything is computed.
* `unit_list`: unit and family ids given comma-separated, repeated, or both; wherever
  units are read, a family file (.json from `circuits discover`) stands for its family.
* `check_outputs`: every output path has an accepted suffix and a folder that exists
  and is writable, and is no special file, checked before any computation; the error
  names the user's path.
* `load_network` / `resolve`: the weight source's own families are registered, then
  unit specs are resolved once (a unit named twice is one unit), at the entry point,
  into `Unit`s; the model is placed on ``--device``.

Beside it: `circuits.cli.paths` (each command's declared inputs and outputs, checked
once before any work), `circuits.cli.limits` (size options bounded by memory) and
`circuits.cli.device` (``--device``).

Example:
    >>> positive_int("3")
    3
    >>> unit_list(["mixed3b:379,mixed3b:406", "mixed3b:385"])
    ['mixed3b:379', 'mixed3b:406', 'mixed3b:385']
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

__all__ = [
    "DEFAULT_WEIGHTS",
    "add_weights",
    "weights_name",
    "positive_int",
    "nonnegative_int",
    "positive_float",
    "nonnegative_float",
    "unit_list",
    "check_outputs",
    "NetworkSpec",
    "network_for",
    "load_network",
    "resolve",
    "family_ids",
    "network_graph",
    "require_live",
]

# Equal to weights.DEFAULT (tests/test_newcomer.py checks it); a literal here so that
# building the parser does not import the weight sources (and torch).
DEFAULT_WEIGHTS = "handbuilt"


class _WeightsAction(argparse.Action):
    """--weights FILE --arch torchvision:NAME, in either order, make the one source
    ``torchvision:NAME:FILE`` in ``args.weights`` (what every command reads)."""

    def __call__(self, parser, namespace, value, option_string=None):
        setattr(namespace, f"_{self.dest}_given", value)
        arch = getattr(namespace, "_arch_given", None)
        given = getattr(namespace, "_weights_given", None) or DEFAULT_WEIGHTS
        if arch is not None and not str(arch).startswith("torchvision:"):
            parser.error(f"--arch {arch}: expected torchvision:NAME (e.g. torchvision:resnet50)")
        namespace.weights = f"{arch}:{given}" if arch is not None else given


def add_weights(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """The ``--weights NAME|FILE`` option of every command that reads a network, and
    ``--arch torchvision:NAME`` for a checkpoint file of a torchvision architecture."""
    parser.add_argument(
        "--weights",
        dest="weights",
        default=DEFAULT_WEIGHTS,
        metavar="NAME|FILE",
        action=_WeightsAction,
        help=help
        or "weight source: handbuilt, lucid, lucid-pb, random (InceptionV1), nsfwjs-inception-v3, random-v3 "
        "(InceptionV3), torchvision:NAME (pretrained), torchvision:NAME:random, "
        f"or a .pth/.safetensors/.pb file (default {DEFAULT_WEIGHTS})",
    )
    parser.add_argument(
        "--arch",
        dest="arch",
        default=None,
        metavar="torchvision:NAME",
        action=_WeightsAction,
        help="the torchvision architecture a --weights FILE.pth checkpoint is for (e.g. torchvision:resnet50)",
    )


def weights_name(args) -> str:
    """The weight source a parsed command line asks for."""
    return str(getattr(args, "weights", None) or DEFAULT_WEIGHTS)


# --- numbers, checked while parsing ----------------------------------------------


def _number(kind, text: str, ok, what: str):
    try:
        v = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    if not ok(v):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return v


def positive_int(text: str) -> int:
    """An int >= 1 (argparse type).

    >>> positive_int("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be >= 1 (a whole number), got 0
    """
    return _number(int, text, lambda v: v >= 1, ">= 1 (a whole number)")


def nonnegative_int(text: str) -> int:
    """An int >= 0 (argparse type)."""
    return _number(int, text, lambda v: v >= 0, ">= 0 (a whole number)")


def positive_float(text: str) -> float:
    """A finite float > 0 (argparse type)."""
    return _number(float, text, lambda v: v > 0, "> 0 (a finite number)")


def nonnegative_float(text: str) -> float:
    """A finite float >= 0 (argparse type)."""
    return _number(float, text, lambda v: v >= 0, ">= 0 (a finite number)")


# --- units ---------------------------------------------------------------------


def unit_list(values: str | Iterable[str] | None) -> list[str]:
    """Unit/family ids from one or several arguments, each possibly comma-separated.

    >>> unit_list("mixed3b:379, mixed3b:406")
    ['mixed3b:379', 'mixed3b:406']
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out = [p.strip() for v in values for p in str(v).split(",") if p.strip()]
    if not out:
        raise ValueError(f"no unit or family given (got {list(values)!r}); e.g. mixed3b:379 or mixed3b:curves")
    return out


@dataclass
class NetworkSpec:
    """The network a command works on, before its weights are built: the weight source, its
    graph and the families it holds (the source's own, e.g. the hand-built ``hb_*`` banks,
    and family files named on the command line). Units are resolved against it where they
    enter, cheaply (no torch); `load_network` gives the model these families."""

    source: str
    graph: object
    families: list = field(default_factory=list)


def network_graph(source: str):
    """The graph of the network `source`'s weights are for (no weights are read, torch is not imported)."""
    from weights.registry import graph_of

    return graph_of(source)


def network_for(source: "str | NetworkSpec") -> NetworkSpec:
    """The `NetworkSpec` of a weight source (no weights are read, torch is not imported)."""
    if isinstance(source, NetworkSpec):
        return source
    from weights.registry import graph_of, source_families

    return NetworkSpec(source, graph_of(source), list(source_families(source)))


def resolve(specs: str | Sequence[str], source: "str | NetworkSpec") -> list:
    """Units of `specs` (ids, family ids, family files, comma lists) of `source`'s network,
    its families known (an InceptionV1 id for InceptionV3 weights is an error).

    A unit named twice (``mixed3b:379,mixed3b:379``, or a unit and a family holding it)
    is one unit, at its first place: every command measures each unit once.
    """
    from circuits.families import resolve_units

    net = network_for(source)
    return list(dict.fromkeys(resolve_units(family_ids(specs, net), net)))


def family_ids(specs: str | Sequence[str], net) -> list[str]:
    """`unit_list(specs)` with every family file (.json) registered on `net` (a `NetworkSpec` or a
    model) and replaced by its family id.

    >>> from circuits.core.graph import INCEPTION_V1
    >>> family_ids("mixed3b:379,mixed3b:curves", NetworkSpec("random", INCEPTION_V1))
    ['mixed3b:379', 'mixed3b:curves']
    """
    return [_family_file(s, net) for s in unit_list(specs)]


def _family_file(spec: str, net: NetworkSpec) -> str:
    """A family file (.json, e.g. from `circuits discover --json`) is registered on `net` and stands
    for its family id; anything else is returned as is. A family lives with the model of one
    command, so a file is how a discovered family reaches the next one."""
    if not spec.lower().endswith(".json"):
        return spec
    from circuits.families.files import load_family

    if not Path(spec).is_file():
        raise FileNotFoundError(f"no family file {spec} (a unit or family id, or a family .json, is expected)")
    return load_family(spec, net).id


def load_network(source: "str | NetworkSpec", device: str | None = None):
    """The model of `source` (a registered name, a file, or a `NetworkSpec`, whose families it
    then holds; an edited file comes back edited), on `device` (``--device``; None or "cpu": the CPU)."""
    import weights

    from circuits.cli.device import place

    if isinstance(source, NetworkSpec):
        model = weights.model(source.source)  # holds the source's own families already
        model.families.extend(f for f in source.families if f.source == "user")  # from family files
        return place(model, device)
    return place(weights.model(source), device)


def require_live(model, layers: Iterable[str], what: str) -> None:
    """Stop with a clear error if `what` reads a layer past the network's last live layer."""
    from circuits.core.extent import check_reaches

    check_reaches(model, list(layers), what)


# --- output paths ------------------------------------------------------------------


def check_outputs(outputs: Iterable[tuple[str, str | os.PathLike | None, Sequence[str]]]) -> list[Path]:
    """Check ``(option, path, suffixes)`` triples before any work; None paths are skipped.

    Each path must end in one of `suffixes` (empty: any), name a folder that exists
    and is writable, and not be an existing folder or a special file (a device, a
    fifo). A symlink is judged by its target. Two options may not name the same file.

    >>> check_outputs([("--out", "/no/such/folder/x.png", (".png",))])
    Traceback (most recent call last):
    ...
    FileNotFoundError: cannot write --out /no/such/folder/x.png: folder /no/such/folder does not exist
    """
    from circuits.core.files import special_file, target_of

    seen: dict[Path, str] = {}
    out = []
    for option, path, suffixes in outputs:
        if path is None:
            continue
        p = Path(path)
        if suffixes and p.suffix.lower() not in suffixes:
            accepted = " or ".join([", ".join(suffixes[:-1]), suffixes[-1]] if len(suffixes) > 1 else suffixes)
            raise ValueError(f"{option} must end in {accepted}, got {path}")
        special = special_file(p)
        if special:
            raise ValueError(f"cannot write {option} {path}: it is {special}, not a file (give a file path)")
        target = target_of(p)  # a symlinked output is written through to its target
        folder = target.parent if p.is_symlink() else p.parent
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise FileNotFoundError(f"cannot write {option} {path}: folder {folder} {what}")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot write {option} {path}: folder {folder} is not writable")
        if target.is_dir():
            raise IsADirectoryError(f"cannot write {option} {path}: it is a folder")
        if target.exists() and not os.access(target, os.W_OK):
            raise PermissionError(f"cannot write {option} {path}: the file exists and is read-only")
        key = target
        seen[key] = option
        out.append(p)
    return out
