"""Writing files so that nothing on disk is ever half-written.

Example:
    >>> with atomic_path("/tmp/circuits-example.txt") as tmp:
    ...     _ = tmp.write_text("done")
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to `path`; renamed onto `path` only if the block succeeds.

    The temporary name keeps the suffix of `path` (so writers and loaders that
    dispatch on it work on the temporary file). On any exception it is removed and
    `path` is left as it was. The file gets the permissions a plain `open()` would
    give it (mkstemp's are owner-only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
