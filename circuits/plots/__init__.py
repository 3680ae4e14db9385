"""Figures (matplotlib, written through the atomic writer): tuning curves, comparisons,
circuit graphs and weight tiles."""
