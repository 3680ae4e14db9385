"""Every command's input and output paths, declared once and checked once before any work.

A command declares, with `declare_io`, which options name files it writes (`Out`) and
which name files or folders it reads (`In`); `circuits.cli.main` calls `check_io` on the
parsed arguments before the command runs. So an output can never replace an input or
another output, whatever the command, and a new command gets the check by declaring.

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("--image"); _ = p.add_argument("--out")
    >>> declare_io(p, outputs=[Out("--out", (".png",))], inputs=[In("--image")])
    >>> check_io(p.parse_args(["--image", "/etc/hostname", "--out", "/tmp/x.png"]))
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from circuits.cli.options import check_outputs

__all__ = ["Out", "In", "declare_io", "check_io"]


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
