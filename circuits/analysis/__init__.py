"""Reading a network: ablations, weights between units (direct and expanded),
attribution W ⊙ h, and circuits as networkx graphs.

Example:
    >>> from circuits.analysis import weights_between, circuit_graph, attribute, ablate
"""

from circuits.analysis.ablation import ablate
from circuits.analysis.attribution import attribute
from circuits.analysis.circuit_graph import circuit_graph, write_graph
from circuits.analysis.expanded import connection, weights_between

__all__ = ["ablate", "attribute", "circuit_graph", "write_graph", "connection", "weights_between"]
