"""The ``--device`` option of every command that runs a model: checked while parsing (its form)
and before any work (that it is here).

Example:
    >>> device_name("CUDA:1")
    'cuda:1'
"""

from __future__ import annotations

import argparse
import re

__all__ = ["add_device", "device_name", "check_device", "place"]

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


def place(model, name: str | None):
    """`model` on the device `name` (None or "cpu": unchanged).

    A model takes inputs on any device to its parameters' device and gives results
    back on the input's device (`Network.run`), so every function that runs it works
    unchanged. (Checked on the CPU here; no GPU was available to run the commands on one.)
    """
    if name in (None, "cpu"):
        return model
    return model.to(check_device(name))
