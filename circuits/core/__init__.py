"""The network itself: its declaration (graph), what each op computes (ops), hook points,
the model that runs the graph, unit ids, model inputs and atomic file writes.

Example:
    >>> from circuits.core import graph
    >>> graph.node("mixed3b").channels
    480
"""
