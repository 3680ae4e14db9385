"""The built-in weight sources."""

from __future__ import annotations

from .registry import random_state_dict, register

register("random", random_state_dict, "deterministic random weights (seed 0, He-scaled), for baselines")
