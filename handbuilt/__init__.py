"""The hand-built ("artificial artificial") curve-detector network, inside InceptionV1's graph.

`handbuilt.spec.SPEC` declares the families and connection rules; `state_dict()` compiles
them into weights for `circuits.core.model.InceptionV1` (registered as the weight source
``"handbuilt"``).

Example:
    >>> import handbuilt, torch
    >>> model = handbuilt.build()
    >>> model.run(torch.zeros(1, 3, 97, 97), until="mixed3b").abs().max().item()   # a blank image
    0.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .rules import Spec

if TYPE_CHECKING:
    import torch

    from circuits.core.model import InceptionV1

__all__ = ["state_dict", "build", "implant", "families", "SpecError", "check_spec", "compile_spec"]

# The compiler needs torch; listing the banks' families does not (`circuits families`).
_LAZY = {"SpecError", "check_spec", "compile_spec"}


def __getattr__(name: str):
    if name in _LAZY:
        from . import compile as _compile

        return getattr(_compile, name)
    raise AttributeError(f"module 'handbuilt' has no attribute {name!r}")


def families(spec: Spec | None = None) -> list:
    """Each bank of the spec as a family ``layer:hb_<bank>`` of InceptionV1: the families the
    hand-built network holds (``model.families``).

    The hand-built 3b curves read a uniform 24-orientation early-curve bank
    (``mixed3a:hb_early_curve_bank``) and 8 3a lines (``mixed3a:hb_lines_3a``) through
    copies in the 3b 5x5 bottleneck (``mixed3b_5x5_bottleneck:hb_curve_relay`` and
    ``:hb_line_relay_3b``); the 11 published early-curve units are built by the same rule
    at their published angles and widths but do not feed the curves.
    They belong to the models built from the spec, not to a process-wide table: the
    weight source ``handbuilt`` gives them to the model it builds (`weights.model("handbuilt")`,
    a command given ``--weights handbuilt``), and so does `build()`; their source is
    ``"handbuilt"``.

    >>> [f.id for f in families()][:3]
    ['conv2d0:hb_gabors', 'conv2d1:hb_complex_gabors', 'conv2d2:hb_lines']
    """
    from circuits.core.graph import INCEPTION_V1
    from circuits.families import make_family

    if spec is None:
        from .spec import SPEC as spec
    return [
        make_family(INCEPTION_V1, b.layer, f"handbuilt {b.name}", b.channels, aliases=[f"hb_{b.name}"], source="handbuilt")
        for b in spec.banks
    ]


def state_dict(spec: Spec | None = None) -> dict[str, torch.Tensor]:
    """The compiled weights of `spec` (default: `handbuilt.spec.SPEC`), a fresh dict each call.

    >>> sd = state_dict()
    >>> len(sd)
    116
    """
    from .compile import compile_spec

    if spec is None:
        from .spec import SPEC as spec
    return compile_spec(spec)


def build(spec: Spec | None = None) -> InceptionV1:
    """A ready InceptionV1 (eval mode) with the hand-built weights; its banks are its `families`."""
    from circuits.core.model import InceptionV1

    return InceptionV1(state_dict(spec), families=families(spec), source="handbuilt").eval()


def implant(model: InceptionV1, units="mixed3b:curves"):
    """Put the hand-built `units` into `model` at the same channels; returns the applied edit.

    Every run of `model` then also runs the hand-built network (up to those units) on
    the same input and replaces the units' pre-activations by the hand-built ones
    ("Curve Circuits" did this with the 3b curves). It is an ordinary edit: listed in
    `model.edits`, undone with `edit.undo(model)`, saved by `weights.edited.save_edited`.

    >>> import weights
    >>> trained = weights.model("random")            # a user would load "lucid"
    >>> edit = implant(trained)
    >>> trained.edits[0].split(" (")[0]
    'implant mixed3b:curves from handbuilt'
    >>> edit.undo(trained); trained.is_edited
    False
    """
    from circuits.editing.implant import Implant

    edit = Implant(units, donor=build(), donor_source="handbuilt")
    edit.apply(model)
    return edit

