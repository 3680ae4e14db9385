"""Figures (matplotlib, written through the atomic writer): tuning curves, comparisons,
circuit graphs and weight tiles. `circuits.plots.setup.pyplot()` is the one matplotlib setup
(Agg backend) they all use."""
