"""Options and checks every `circuits` command shares, defined once.

* `add_weights(parser)`: the one ``--weights NAME|FILE`` option (dest ``weights``,
  default `DEFAULT_WEIGHTS`, which is `weights.DEFAULT`; a test keeps them equal so
  that ``--help`` need not import torch to print it).
* Numeric argument types (`positive_int`, `nonnegative_int`, `positive_float`,
  `nonnegative_float`) that reject a bad value while the command line is parsed,
  before anything is computed.
* `unit_list`: unit and family ids given comma-separated, repeated, or both; wherever
  units are read, a family file (.json from `circuits discover`) stands for its family.
* `declare_io` / `check_io`: each command declares which options are outputs (files or
  folders) and which are inputs; `circuits.cli.main` runs one check before any work: every
  output has an accepted suffix and a writable folder, is no special file, and no output
  names (after symlinks and relative paths) an input or another output.
* `bounded_int` / `bounded_side`: size-like options with an upper bound derived from the
  memory they imply, checked while parsing.
* `add_device` / `check_device`: the ``--device`` option of every command that runs a model.
* `load_network` / `resolve`: the weight source's own families are registered, then
  unit specs are resolved once, at the entry point, into `Unit`s.

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
import re
from dataclasses import dataclass
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
    "network_families",
    "load_network",
    "resolve",
    "family_ids",
    "network_graph",
    "require_live",
    "Out",
    "In",
    "declare_io",
    "check_io",
    "bounded_int",
    "bounded_side",
    "MEMORY_BYTES",
    "add_device",
    "device_name",
    "check_device",
]

# Equal to weights.DEFAULT (tests/test_newcomer.py checks it); a literal here so that
# building the parser does not import the weight sources (and torch).
DEFAULT_WEIGHTS = "handbuilt"


def add_weights(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """The ``--weights NAME|FILE`` option of every command that reads a network."""
    parser.add_argument(
        "--weights",
        dest="weights",
        default=DEFAULT_WEIGHTS,
        metavar="NAME|FILE",
        help=help
        or "weight source: handbuilt, lucid, lucid-pb, random (InceptionV1), nsfwjs-inception-v3, random-v3 "
        f"(InceptionV3), or a .pth/.safetensors/.pb file (default {DEFAULT_WEIGHTS})",
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


def network_families(source: str) -> list:
    """Register the families the weight source defines (e.g. ``hb_*`` for handbuilt); return them.

    Cheap: the source's family function runs, its weights are not built.
    """
    from weights.registry import source_families

    return source_families(source)


def network_graph(source: str):
    """The graph of the network `source`'s weights are for (no weights are read, torch is not imported)."""
    from weights.registry import graph_of

    return graph_of(source)


def resolve(specs: str | Sequence[str], source: str | None = None) -> list:
    """Units of `specs` (ids, family ids, comma lists), with `source`'s families known,
    validated against `source`'s network (an InceptionV1 id for InceptionV3 weights is an error).

    A unit named twice (``mixed3b:379,mixed3b:379``, or a unit and a family holding it)
    is one unit, at its first place: every command measures each unit once.
    """
    from circuits.families import resolve_units

    specs = family_ids(specs)
    if source is None:
        return list(dict.fromkeys(resolve_units(specs)))
    network_families(source)
    return list(dict.fromkeys(resolve_units(specs, network_graph(source))))


def family_ids(specs: str | Sequence[str]) -> list[str]:
    """`unit_list(specs)` with every family file (.json) registered and replaced by its family id.

    >>> family_ids("mixed3b:379,mixed3b:curves")
    ['mixed3b:379', 'mixed3b:curves']
    """
    return [_family_file(s) for s in unit_list(specs)]


def _family_file(spec: str) -> str:
    """A family file (.json, e.g. from `circuits discover --json`) is registered and stands for its
    family id; anything else is returned as is. Registered families do not outlive a command, so
    a file is how a discovered family reaches the next one."""
    if not spec.lower().endswith(".json"):
        return spec
    from circuits.families.files import load_family

    if not Path(spec).is_file():
        raise FileNotFoundError(f"no family file {spec} (a unit or family id, or a family .json, is expected)")
    return load_family(spec).id


def load_network(source: str, device: str | None = None):
    """The model of `source` (a registered name or a file; an edited file comes back edited),
    on `device` (``--device``; None or "cpu": the CPU)."""
    import weights

    model = weights.model(source)
    if device not in (None, "cpu"):
        model = model.to(check_device(device))
    return model


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


# --- every command's inputs and outputs, checked once before any work -----------------
#
# A command declares, with `declare_io`, which options name files it writes (`Out`) and
# which name files or folders it reads (`In`); `circuits.cli.main` calls `check_io` on the
# parsed arguments before the command runs. So an output can never replace an input or
# another output, whatever the command, and a new command gets the check by declaring.


@dataclass(frozen=True)
class Out:
    """An output option. suffixes: accepted file suffixes (empty: any). folder: the option
    names a folder the command writes files into; writes: glob patterns of those files."""

    option: str
    suffixes: tuple[str, ...] = ()
    folder: bool = False
    writes: tuple[str, ...] = ()


@dataclass(frozen=True)
class In:
    """An input option. kind: "file" (a path), "folder" (a folder read recursively, files
    with `reads` suffixes), "units" (unit/family ids: the .json ones are family files),
    "weights" (a weight source name or file), "pairs" (WEIGHTS=FAMILY values)."""

    option: str
    kind: str = "file"
    reads: tuple[str, ...] = ()


def declare_io(parser: argparse.ArgumentParser, outputs: Sequence[Out] = (), inputs: Sequence[In] = (),
               extra_inputs=None) -> None:
    """Record a command's output and input options (checked by `check_io` before it runs).

    extra_inputs: a function ``args -> [(label, path, kind)]`` for inputs named inside
    another input (e.g. the image folder a scan file records).
    """
    dests = {}
    for spec in (*outputs, *inputs):
        for a in parser._actions:
            if spec.option in a.option_strings or a.dest == spec.option:
                dests[spec.option] = a.dest
                break
        else:  # pragma: no cover - a programming error, caught by the tests
            raise ValueError(f"{parser.prog}: no option {spec.option} to declare")
    parser.set_defaults(_io=(tuple(outputs), tuple(inputs), dests, extra_inputs))


def _values(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _input_paths(args, inputs: Sequence[In], dests: dict, extra) -> list[tuple[str, Path, str, tuple]]:
    """(label, path, kind, reads) of every input that exists on disk."""
    found: list[tuple[str, str, str, tuple]] = []
    for spec in inputs:
        for v in _values(getattr(args, dests[spec.option], None)):
            label = f"{spec.option} {v}" if spec.option.startswith("-") else v
            if spec.kind == "pairs":
                w, _, f = v.partition("=")
                found += [(label, w.strip(), "file", ()), *[(label, s, "file", ()) for s in f.split(",")]]
            elif spec.kind == "units":
                found += [(label if "," not in v else s.strip(), s.strip(), "file", ()) for s in v.split(",")]
            else:
                found.append((label, v, spec.kind, spec.reads))
    if extra is not None:
        try:
            found += [(label, str(p), kind, reads) for label, p, kind, reads in extra(args)]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # an unreadable input is reported by the command itself, naming it
    out = []
    for label, v, kind, reads in found:
        p = Path(v)
        if v and p.exists() and (p.is_dir() if kind == "folder" else p.is_file()):
            out.append((label, p, kind, reads))
    return out


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name one file: equal after symlinks and `..`, or one inode (a hard link)."""
    from circuits.core.files import target_of

    if target_of(a) == target_of(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    from circuits.core.files import target_of

    t, f = target_of(path), target_of(folder)
    return t == f or f in t.parents


def _check_folder_output(option: str, path: str) -> Path:
    from circuits.core.files import special_file, target_of

    p = Path(path)
    special = special_file(p)
    if special:
        raise ValueError(f"cannot write into {option} {path}: it is {special}, not a folder")
    t = target_of(p)
    if t.exists() and not t.is_dir():
        raise NotADirectoryError(f"{option} {path} is a file, not a folder: give a folder to write the files into")
    probe = t
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(f"cannot create {option} {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {option} {path}: folder {probe} is not writable")
    return p


def check_io(args) -> None:
    """Check a parsed command line's declared outputs against each other and its inputs (see `declare_io`).

    Raises (one clear line, naming both paths) when an output would replace an input or
    another output, when an output is a special file (a device, a fifo), or when a
    folder output is a file; file outputs get `check_outputs`'s checks.
    """
    decl = getattr(args, "_io", None)
    if decl is None:
        return
    outputs, inputs, dests, extra = decl
    files = [(o.option, getattr(args, dests[o.option], None), o.suffixes) for o in outputs if not o.folder]
    check_outputs(files)
    written: list[tuple[str, Path, Out]] = []
    for o in outputs:
        for v in _values(getattr(args, dests[o.option], None)):
            p = _check_folder_output(o.option, v) if o.folder else Path(v)
            for other_label, q, other in written:
                if _same(p, q) or (o.folder and _inside(q, p)) or (other.folder and _inside(p, q)):
                    raise ValueError(f"{other_label} and {o.option} {v} name the same place; give each output its own path")
            written.append((f"{o.option} {v}", p, o))
    for label, p, o in written:
        for in_label, q, kind, reads in _input_paths(args, inputs, dests, extra):
            if kind == "folder":
                hit = (_inside(p, q) and (o.folder or p.suffix.lower() in reads)) or (o.folder and _same(p, q))
                why = "would be read as one of its inputs next time" if not o.folder else "is inside the input folder"
            else:
                hit = _same(p, q) or (o.folder and _inside(q, p) and any(q.match(w) for w in o.writes))
                why = "would replace that input"
            if hit:
                raise ValueError(f"{label} {why} ({in_label}); give the output another path")


# --- sizes, bounded by the memory they imply --------------------------------------------


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return 16 * 2**30


# The memory a size-like option may imply: this machine's RAM (what a run may use at most).
MEMORY_BYTES = _physical_memory()


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def bounded_int(maximum: int, why: str):
    """An argparse type: an int in 1..`maximum`; the message gives the bound and `why`.

    >>> bounded_int(10, "stimuli on one sheet")("11")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be at most 10 (stimuli on one sheet), got 11
    """

    def parse(text: str) -> int:
        v = positive_int(text)
        if v > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum} ({why}), got {v}")
        return v

    parse.maximum = maximum  # type: ignore[attr-defined]
    parse.__name__ = "bounded_int"
    return parse


def bounded_side(bytes_per_pixel: float, what: str, memory: int | None = None):
    """An argparse type for an image side S: S*S*`bytes_per_pixel` bytes must fit in `memory`
    (default `MEMORY_BYTES`, this machine's RAM); the bound and its reason are in the message.

    >>> bounded_side(4096, "an optimized image", memory=2**30)("100000")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be at most 512 px: an optimized image of S x S px needs about S² x 4 KiB, and 1 GiB of memory allows S = 512; got 100000
    """
    memory = MEMORY_BYTES if memory is None else memory
    maximum = int(math.isqrt(int(memory // bytes_per_pixel)))
    per = f"{bytes_per_pixel / 1024:g} KiB" if bytes_per_pixel >= 1024 else f"{bytes_per_pixel:g} bytes"

    def parse(text: str) -> int:
        v = positive_int(text)
        if v > maximum:
            raise argparse.ArgumentTypeError(
                f"must be at most {maximum} px: {what} of S x S px needs about S² x {per}, "
                f"and {_gib(memory)} of memory allows S = {maximum}; got {v}")
        return v

    parse.maximum = maximum  # type: ignore[attr-defined]
    parse.__name__ = "bounded_side"
    return parse


# Bytes of memory per input pixel. Measured (peak RSS growth / pixels, InceptionV1 at
# 448 px, to mixed4e): a forward pass 0.4 KB, forward and backward 1.3 KB; the bounds
# allow 5-6x that for InceptionV3's wider layers, optimizer state and transforms.
FORWARD_BYTES_PER_PIXEL = 2 * 1024
BACKWARD_BYTES_PER_PIXEL = 8 * 1024


# --- --device -----------------------------------------------------------------------------

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


def device_name(text: str) -> str:
    """An argparse type: cpu, cuda, cuda:N or mps (whether it is here is checked before work).

    >>> device_name("foo")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be cpu, cuda, cuda:N or mps, got 'foo'
    """
    t = text.strip().lower()
    if not _DEVICE.match(t):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda, cuda:N or mps, got {text!r}")
    return t


def add_device(parser: argparse.ArgumentParser, default: str = "cpu") -> None:
    """The ``--device`` option of every command that runs a model."""
    parser.add_argument("--device", type=device_name, default=default, metavar="DEVICE",
                        help=f"where the model runs: cpu, cuda, cuda:N or mps (default {default})")


def check_device(name: str):
    """The torch.device `name` if it is here; else ValueError (one line: what is there instead)."""
    import torch

    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA GPU here (torch.cuda.is_available() is False); use --device cpu")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"--device {name}: this machine has {n} CUDA device(s), cuda:0..cuda:{n - 1}")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"--device {name}: no Apple MPS device here; use --device cpu")
    return dev
