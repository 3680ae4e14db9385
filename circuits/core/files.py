"""Writing files so that nothing on disk is ever half-written, and reading text files by name.

* `atomic_path(path)`: a temporary file next to the real target, renamed onto it only
  when the block succeeds. A symlinked output is written through to its target (the
  link stays a link); a special file (a device such as /dev/full, a fifo, a socket) is
  refused, never replaced by a plain file.
* `write_json(path, obj)`: strict JSON (RFC 8259 has no NaN or Infinity): non-finite
  floats are written as null, atomically.
* `read_text(path, what)`: a text file as str; a binary or non-UTF-8 file is a
  ValueError that names the file (not a bare codec error).

Example:
    >>> with atomic_path("/tmp/circuits-example.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> _ = write_json("/tmp/circuits-example.json", {"fwhm": float("nan")})
    >>> read_text("/tmp/circuits-example.json", "--json")
    '{\\n "fwhm": null\\n}\\n'
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

__all__ = ["atomic_path", "write_json", "json_safe", "read_text", "target_of", "special_file"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def target_of(path: str | os.PathLike) -> Path:
    """The file a write to `path` lands in: symlinks followed (also a dangling one), made absolute.

    >>> target_of("a/../b.txt") == Path("b.txt").absolute()
    True
    """
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def special_file(path: str | os.PathLike) -> str | None:
    """What `path` is if it exists and is neither a regular file nor a folder (after symlinks), else None.

    >>> special_file("/dev/null")
    'a character device'
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:  # e.g. a symlink loop: not something to write through
        return "not a readable path"
    for test, what in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a fifo (named pipe)"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to `path`'s target; renamed onto the target only if the block succeeds.

    The temporary name keeps the suffix of `path` (so writers and loaders that
    dispatch on it work on the temporary file). On any exception it is removed and
    the target is left as it was. The file gets the permissions a plain `open()` would
    give it (mkstemp's are owner-only), or the permissions of the file it replaces.
    A symlink at `path` is followed: its target is replaced and the link is kept.
    A special file at `path` (a device, a fifo) raises ValueError: renaming onto it
    would replace the device node with a plain file.
    """
    special = special_file(path)
    if special:
        raise ValueError(f"cannot write {os.fspath(path)}: it is {special}, not a file (give a file path)")
    target = target_of(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {os.fspath(path)}: it is a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    suffix = Path(path).suffix  # the name the caller gave decides the format, not the link target's
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float (NaN, +-inf) replaced by None (JSON null); tuples become lists,
    numpy arrays and scalars Python values.

    >>> json_safe({"a": [1.0, float("inf")], "b": (float("nan"),)})
    {'a': [1.0, None], 'b': [None]}
    """
    if isinstance(value, Mapping):
        return {(k if isinstance(k, str) else str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write `obj` to `path` as strict JSON (non-finite numbers as null), atomically; returns the path."""
    body = json.dumps(json_safe(obj), indent=indent, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(body + "\n")
    return Path(path)


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The UTF-8 text of `path`; a missing, binary or undecodable file raises an error naming it.

    what: how the file was given, for the message (e.g. ``"--scan"``).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {p}: no such file")
    data = p.read_bytes()
    if b"\x00" in data[:8192]:
        raise ValueError(f"{what} {p} is a binary file, not text (JSON or CSV expected)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {p} is not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r}); "
                         "JSON or CSV in UTF-8 expected") from None
