from pathlib import Path

import pytest
import torch

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference (published measurements); skip when absent (a user's machine)."""
    if not (REFERENCE / "radial_tuning_curves.npz").exists():
        pytest.skip(f"published reference data not found at {REFERENCE} (only present on the project's machines)")
    return REFERENCE


@pytest.fixture(scope="session")
def random_model():
    """A fixed random InceptionV1 (He-scaled weights, seed 0, small random biases)."""
    from weights.registry import random_state_dict
    from circuits import InceptionV1

    sd = random_state_dict(seed=0)
    g = torch.Generator().manual_seed(1)
    for k in sd:
        if k.endswith(".bias"):
            sd[k] = torch.randn(sd[k].shape, generator=g) * 0.1
    return InceptionV1(sd).eval()


@pytest.fixture()
def image():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 67, 61, generator=g) * 255 - 117
