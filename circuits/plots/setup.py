"""The one matplotlib setup of every figure: a file backend (Agg), chosen once, lazily.

Figures are written to files, never shown, so the backend is Agg whatever the
environment says (no display needed, and no GUI toolkit imported). `pyplot()` is
the only place that selects it; plotting modules call it instead of importing
`matplotlib.pyplot` themselves.

Example:
    >>> plt = pyplot()
    >>> import matplotlib
    >>> matplotlib.get_backend().lower()
    'agg'
"""

from __future__ import annotations

__all__ = ["pyplot", "BACKEND"]

BACKEND = "Agg"


def pyplot():
    """`matplotlib.pyplot`, with the Agg backend selected (idempotent)."""
    import matplotlib

    if matplotlib.get_backend().lower() != BACKEND.lower():
        matplotlib.use(BACKEND, force=True)
    import matplotlib.pyplot as plt

    return plt
