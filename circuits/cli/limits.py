"""Size-like options bounded by the memory they imply, checked while the command line is parsed.

Example:
    >>> bounded_int(10, "stimuli on one sheet")("3")
    3
"""

from __future__ import annotations

import argparse
import math
import os

from circuits.cli.options import positive_int

__all__ = ["MEMORY_BYTES", "FORWARD_BYTES_PER_PIXEL", "BACKWARD_BYTES_PER_PIXEL", "bounded_int", "bounded_side"]

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


# The bounded sizes several commands share, defined once.
#: the side of an image read by a forward pass (scans, factorization, joint tuning, heat maps)
SCAN_SIDE = bounded_side(FORWARD_BYTES_PER_PIXEL, "an image scanned (a forward pass)")
#: the side of an image optimized or attributed: forward and backward (vis, attribute, extraction)
GRAD_SIDE = bounded_side(BACKWARD_BYTES_PER_PIXEL, "an image optimized or attributed (forward and backward)")
#: crops kept per unit (top-k, per bin, per image): their ids and values go into the JSON result
KEPT = bounded_int(100_000, "crops kept per unit: their ids and values are in the JSON result")


def nonnegative(parse):
    """`parse` (a bounded positive type) that also accepts 0.

    >>> nonnegative(KEPT)("0"), nonnegative(KEPT).maximum
    (0, 100000)
    """

    def parse0(text: str):
        return 0 if text.strip() == "0" else parse(text)

    parse0.maximum = parse.maximum
    return parse0
