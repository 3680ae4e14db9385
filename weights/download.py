"""Download the public InceptionV1 weight files once, into a checked local cache.

A download goes to a temporary file in the cache directory; it is moved into place
only after its size matches Content-Length and it loads as a valid InceptionV1
checkpoint. The SHA-256 of the first download is recorded next to the file
(`<file>.sha256`) and every later `fetch` checks the cached file against it.

The cache directory is `$CIRCUITS_CACHE`, or `~/.cache/circuits`.

Example:
    >>> from weights.download import fetch
    >>> path = fetch("lucid")            # doctest: +SKIP
    >>> path.name                        # doctest: +SKIP
    'inception5h.pth'
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from circuits.core.model import StateDictError

from .checkpoint import CheckpointError, atomic_path, load_file

__all__ = ["Remote", "REMOTES", "DownloadError", "ChecksumError", "cache_dir", "sha256", "fetch"]


@dataclass(frozen=True)
class Remote:
    url: str
    filename: str


REMOTES: dict[str, Remote] = {
    # ProGamerGov's PyTorch port of Lucid's InceptionV1: a plain state dict with
    # this package's keys (conv2d0_pre_relu_conv.weight, ...).
    "lucid": Remote(
        "https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth",
        "inception5h.pth",
    ),
    # The TensorFlow GraphDef Lucid itself loads (modelzoo InceptionV1).
    "lucid-pb": Remote(
        "https://storage.googleapis.com/modelzoo/vision/other_models/InceptionV1.pb",
        "InceptionV1.pb",
    ),
}

# Seconds to wait for a connection or for the next bytes: being offline should
# fail fast, not hang.
TIMEOUT_S = 10.0
_CHUNK = 1 << 20

Opener = Callable[..., object]


class DownloadError(ConnectionError):
    """A download that could not complete (offline, HTTP error, truncated)."""


class ChecksumError(ValueError):
    """A cached file whose SHA-256 differs from the one recorded at its first download."""


def cache_dir() -> Path:
    """Where downloads are kept: $CIRCUITS_CACHE or ~/.cache/circuits."""
    return Path(os.environ.get("CIRCUITS_CACHE") or "~/.cache/circuits").expanduser()


def sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_sidecar(path: Path, digest: str) -> None:
    with atomic_path(_sidecar(path)) as tmp:
        tmp.write_text(f"{digest}  {path.name}\n")  # the format `sha256sum -c` reads


def _recorded(path: Path) -> str | None:
    side = _sidecar(path)
    return side.read_text().split()[0] if side.exists() else None


def _check_digest(path: Path, actual: str, what: str) -> None:
    recorded = _recorded(path)
    if recorded is not None and recorded != actual:
        raise ChecksumError(
            f"{what} has SHA-256 {actual}, but the first download of {path.name} recorded {recorded} "
            f"(in {_sidecar(path)}): the file was changed or corrupted. Delete {path} and "
            f"{_sidecar(path)} to download it again"
        )


def _offline_help(url: str, path: Path, err: BaseException) -> str:
    return (
        f"could not download {url} ({err}). Without network access, point at a local copy of the "
        f"weights instead: weights.load('/path/to/inception5h.pth') in Python, `--weights FILE` on the "
        f"command line, or place the file at {path}"
    )


def fetch(name: str, url: str | None = None, opener: Opener | None = None) -> Path:
    """The cached, checked weight file for `name` ("lucid" or "lucid-pb"), downloaded if needed.

    `url` replaces the known URL and `opener` replaces `urllib.request.urlopen`
    (it is called as `opener(url, timeout=...)`), e.g. for a local mirror.

    >>> fetch("lucid-pb")                # doctest: +SKIP
    PosixPath('/home/me/.cache/circuits/InceptionV1.pb')
    """
    if name not in REMOTES:
        close = difflib.get_close_matches(name, list(REMOTES), n=2)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"no download known for {name!r} (known: {', '.join(REMOTES)}){hint}")
    remote = REMOTES[name]
    path = cache_dir() / remote.filename
    if path.exists():
        if _recorded(path) is None:
            # Placed by hand (or the sidecar was lost): check it once, then pin it.
            load_file(path)
            _write_sidecar(path, sha256(path))
        else:
            _check_digest(path, sha256(path), f"cached file {path}")
        return path
    _download(url or remote.url, path, opener or urllib.request.urlopen)
    return path


def _download(url: str, path: Path, opener: Opener) -> None:
    try:
        response = opener(url, timeout=TIMEOUT_S)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise DownloadError(_offline_help(url, path, e)) from e
    with response, atomic_path(path) as tmp:
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
        h, got = hashlib.sha256(), 0
        try:
            with open(tmp, "wb") as f, tqdm(
                total=total, unit="B", unit_scale=True, desc=f"downloading {path.name}", disable=None
            ) as bar:
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    h.update(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        except (http.client.HTTPException, OSError) as e:
            raise DownloadError(f"download of {url} broke off after {got} bytes, nothing cached: {e}") from e
        if total is not None and got != total:
            raise DownloadError(
                f"download of {url} is truncated: got {got} of {total} bytes (Content-Length); nothing cached"
            )
        try:
            load_file(tmp)
        except (StateDictError, CheckpointError) as e:
            raise type(e)(f"downloaded {url} is not a usable InceptionV1 checkpoint, not cached: {e}") from None
        digest = h.hexdigest()
        _check_digest(path, digest, f"the new download of {url}")
        _write_sidecar(path, digest)
