"""Download the public InceptionV1 weight files once, into a checked local cache.

A download (`torch.hub.download_url_to_file`) goes to a temporary file in the cache
directory; it is moved into place only after it loads as a valid InceptionV1
checkpoint *and* computes InceptionV1's curve detectors (`weights.verify`: its ten
mixed3b curve units prefer the published orientations), so a wrong or corrupted
file, or one this package reads wrongly, is refused instead of trusted. Only then is
its SHA-256 recorded next to it (`<file>.sha256`); every later `fetch` checks the
cached file against it. ``verify=False`` is the explicit opt-out.

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
import sys
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from circuits.core.model import StateDictError

from .checkpoint import CheckpointError, atomic_path, load_file
from .verify import VerificationError, verify_state_dict  # noqa: F401  (VerificationError re-exported)

__all__ = ["Remote", "REMOTES", "DownloadError", "ChecksumError", "cache_dir", "sha256", "fetch", "VerificationError"]


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

_CHUNK = 1 << 20

#: Downloads `url` to the file `dst` (torch.hub.download_url_to_file's signature).
Downloader = Callable[[str, str], None]


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


def fetch(name: str, url: str | None = None, *, verify: bool = True, downloader: Downloader | None = None) -> Path:
    """The cached, checked weight file for `name` ("lucid" or "lucid-pb"), downloaded if needed.

    `url` replaces the known URL (e.g. a local mirror, or a ``file://`` URL).
    verify: check a new file by what it computes before caching it (`weights.verify`);
        ``verify=False`` caches it unchecked, for a file you trust anyway.
    downloader: replaces `torch.hub.download_url_to_file` (called as ``downloader(url, dst)``).

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
            # Placed by hand (or the sidecar was lost): check it once, as a download is, then pin it.
            sd = load_file(path)
            if verify:
                verify_state_dict(sd, f"{path} (placed in the cache by hand)", opt_out=_opt_out(name))
            _write_sidecar(path, sha256(path))
        else:
            _check_digest(path, sha256(path), f"cached file {path}")
        return path
    _download(name, url or remote.url, path, downloader or _torch_download, verify)
    return path


def _torch_download(url: str, dst: str) -> None:
    import torch.hub

    torch.hub.download_url_to_file(url, dst, progress=sys.stderr.isatty())


def _opt_out(name: str) -> str:
    return (f"To use it anyway: weights.download.fetch({name!r}, verify=False) caches it unchecked (then "
            f"weights.model({name!r}) and --weights {name} load it), or load a local copy with --weights FILE")


def _download(name: str, url: str, path: Path, downloader: Downloader, verify: bool) -> None:
    with atomic_path(path) as tmp:
        try:
            downloader(url, str(tmp))
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            raise DownloadError(_offline_help(url, path, e)) from e
        try:
            sd = load_file(tmp)
        except (StateDictError, CheckpointError) as e:
            raise type(e)(
                f"downloaded {url} is not a usable InceptionV1 checkpoint (a truncated download or another "
                f"file), not cached: {e}"
            ) from None
        if verify:
            verify_state_dict(sd, f"the download of {url} (not cached)", opt_out=_opt_out(name))
        digest = sha256(tmp)
        _check_digest(path, digest, f"the new download of {url}")
        _write_sidecar(path, digest)
