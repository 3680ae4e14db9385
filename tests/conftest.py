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


def random_v3(seed: int = 0):
    """A random InceptionV3: He-scaled weights, small random biases (so ReLUs cut somewhere)."""
    import numpy as np

    from circuits import InceptionV3
    from circuits.core.inception_v3 import INCEPTION_V3

    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in INCEPTION_V3.parameter_shapes().items():
        if k.endswith(".bias"):
            sd[k] = torch.randn(shape, generator=g) * 0.1
        else:
            sd[k] = torch.randn(shape, generator=g) * (2.0 / np.prod(shape[1:])) ** 0.5
    return InceptionV3(sd).eval()


@pytest.fixture(scope="session")
def random_v3_model():
    """A fixed random InceptionV3 (seed 0); see `random_v3`."""
    return random_v3()


@pytest.fixture(scope="session")
def trained_v3():
    """The trained InceptionV3 of nsfwjs@4.4.0 (its frozen ImageNet trunk); skips where the package
    cannot be found or fetched (no cached copy and no npm)."""
    import weights
    from weights import tfjs

    try:
        return weights.model("nsfwjs-inception-v3")
    except tfjs.TfjsFormatError as e:
        pytest.skip(f"nsfwjs@4.4.0 not available: {e}")
