"""Running a scan on several processes with `torchrun` over `torch.distributed`.

`torchrun --nproc_per_node N -m circuits.cli.dataset UNITS ...` starts N processes
with RANK / WORLD_SIZE / MASTER_ADDR in their environment; `init_from_env` joins
the process group (gloo on CPU, NCCL when the model runs on a GPU). Each rank scans
the images i with i % world == rank, `gather_states` brings every rank's
accumulator state to all ranks, and rank 0 writes the merged result.

Example:
    >>> world()          # not under torchrun
    (0, 1)
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["init_from_env", "world", "gather_states", "shutdown", "device_for_rank"]


def world() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless a process group is running."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def device_for_rank(device: str | None) -> torch.device:
    """The device of this process: `device` if given, else its local GPU if any, else the CPU."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def init_from_env(device: torch.device) -> bool:
    """Join the process group torchrun described in the environment; False when not under torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return dist.is_available() and dist.is_initialized()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return True


def gather_states(state: dict) -> list[dict]:
    """Every rank's `state`, in rank order (just [state] without a process group)."""
    rank, n = world()
    if n == 1:
        return [state]
    out: list = [None] * n
    dist.all_gather_object(out, state)
    return out


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
