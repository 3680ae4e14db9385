"""Reversible weight edits: the edit objects, the paths they act through, and implants.

Example:
    >>> from circuits.editing import drop_negative
    >>> edit = drop_negative("mixed3a:early_curves", "mixed3b:curves")
"""

from circuits.editing.edits import *  # noqa: F401,F403 - the public edit API
from circuits.editing.edits import __all__ as _edits_all
from circuits.editing.implant import Implant

__all__ = [*_edits_all, "Implant"]
