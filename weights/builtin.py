"""The built-in weight sources."""

from __future__ import annotations

from .registry import random_state_dict, register


def _lucid() -> dict:
    from .checkpoint import load_file
    from .download import fetch

    return load_file(fetch("lucid"))


def _lucid_pb() -> dict:
    from .checkpoint import load_file
    from .download import fetch

    return load_file(fetch("lucid-pb"))


def _nsfwjs_inception_v3() -> dict:
    from .nsfwjs import state_dict

    return state_dict()


def _handbuilt() -> dict:
    import handbuilt

    return handbuilt.state_dict()


def _handbuilt_families() -> list:
    import handbuilt

    return handbuilt.families()


def _random_v3() -> dict:
    from circuits.core.inception_v3 import INCEPTION_V3

    return random_state_dict(network=INCEPTION_V3)


register("random", random_state_dict, "deterministic random weights (seed 0, He-scaled), for baselines")
register(
    "random-v3",
    _random_v3,
    "deterministic random InceptionV3 weights (seed 0, He-scaled), for baselines; input RGB in [-1, 1]",
    network="InceptionV3",
)
register(
    "lucid",
    _lucid,
    "Lucid's trained InceptionV1 (inception5h), ProGamerGov's PyTorch port inception5h.pth; "
    "downloaded once into $CIRCUITS_CACHE (default ~/.cache/circuits) and checksummed",
)
register(
    "lucid-pb",
    _lucid_pb,
    "the same network converted from Lucid's own TensorFlow GraphDef InceptionV1.pb; "
    "downloaded once into $CIRCUITS_CACHE and checksummed",
)
register(
    "handbuilt",
    _handbuilt,
    "hand-built curve detectors (Curve Circuits' artificial network), compiled from handbuilt/spec.py on load: "
    "Gabor -> complex Gabor -> lines -> early curves (mixed3a) -> curves (mixed3b); every other unit zero",
    families=_handbuilt_families,
)
register(
    "nsfwjs-inception-v3",
    _nsfwjs_inception_v3,
    "InceptionV3 (keras.applications) trunk through mixed10 from npm's nsfwjs@4.4.0, BN folded; "
    "ImageNet weights through mixed5 (frozen), the rest fine-tuned for a 5-class head (not included); "
    "the package is cached in $CIRCUITS_CACHE (fetched with `npm pack` if absent); input RGB in [-1, 1]",
    network="InceptionV3",
)
