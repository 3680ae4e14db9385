"""Reversible weight edits: the edit objects, the paths they act through, implants, the edit log.

Files of edited models are the weights side's (`weights.edited`).

Example:
    >>> from circuits.core.graph import INCEPTION_V1
    >>> from circuits.editing import drop_negative
    >>> edit = drop_negative("mixed3a:early_curves", "mixed3b:curves", network=INCEPTION_V1)
"""

from circuits.editing.edits import *  # noqa: F401,F403 - the public edit API
from circuits.editing.edits import __all__ as _edits_all
from circuits.editing.implant import Implant
from circuits.editing.log import EditLogMismatch, edit_tensors, replay

__all__ = [*_edits_all, "Implant", "EditLogMismatch", "edit_tensors", "replay"]
