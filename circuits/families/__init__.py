"""Neuron families: named groups of units of one layer, published or your own.

The registry starts with the families of "An Overview of Early Vision in
InceptionV1" (complete partitions of conv2d0 .. mixed3b, partial lists for mixed4a ..
mixed4d; data in `circuits.families.published`) and a few sets the Curve Detectors /
Curve Circuits / High-Low Frequency articles use. A family id is
``"layer:alias"``; every published name is kept as is (``"Gabor Filters"``) and
also reachable by its snake_case alias (``gabor_filters``), plus short aliases:

=========  =============================  ======================================
layer      published name                 extra aliases
=========  =============================  ======================================
conv2d0    Gabor Filters                  gabors
conv2d1    Complex Gabor                  complex_gabors
conv2d2    Line                           lines
conv2d2    Tiny Curves                    tiny_curves (its snake alias)
mixed3a    Curves                         curves, early_curves
mixed3a    Lines                          lines (its snake alias)
mixed3b    Curves                         curves
=========  =============================  ======================================

Orders: members keep the published order, except mixed3b Curves, which is kept in
the order of the Curve Detectors / Curve Circuits figures (379, 406, 385, 343, 342,
388, 324, 340, 330, 349; the Early Vision list has the same ten units, 324 last).
mixed3a Curves is published in the Curve Detectors tuning order already. A few
published mixed4a/4b lists repeat a channel; repeats are dropped (first kept).

`family_of(unit)` gives a unit's Early Vision family (unique for conv2d0 .. mixed3b);
`families_of(unit)` gives every registered family holding it.

A network can define families of its own: the weight source registers them when
the network is loaded (the hand-built network's banks, ``mixed3a:hb_early_curve_bank``
..., source ``"handbuilt"``) and the model lists them in ``model.families``.
`labels(layer, model)` labels a layer's channels by the families *that* network
defines first and by the published partition for the rest, so a hand-built bank
channel is not called by the published name of its channel id.

Example:
    >>> f = family("mixed3b:curves")
    >>> f.name, len(f), f.units[0].id
    ('Curves', 10, 'mixed3b:379')
    >>> family_of("conv2d0:9").name
    'Gabor Filters'
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from circuits.families import published as family_data
from circuits.core import graph
from circuits.core.networks import DECLARED, graph_of_layer, network_of
from circuits.core.units import Unit, parse_unit, wrong_network

__all__ = [
    "resolve_units",
    "Family",
    "UnknownFamilyError",
    "family",
    "families",
    "family_of",
    "families_of",
    "register_family",
    "unregister_family",
    "layers_with_families",
    "labels",
    "label_of",
    "network_families",
    "sources",
    "snake",
    "COMPLETE_LAYERS",
]

COMPLETE_LAYERS: tuple[str, ...] = family_data.COMPLETE_LAYERS

# Sources a family can come from.
EARLY_VISION = "early_vision"
ARTICLE = "article"
USER = "user"


class UnknownFamilyError(KeyError):
    """A family id or name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


def snake(name: str) -> str:
    """The snake_case alias of a published name.

    >>> snake("Eyes / Small Circles"), snake("Line Misc.")
    ('eyes_small_circles', 'line_misc')
    """
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass(frozen=True, eq=False)
class Family:
    """A named group of units of one layer.

    `units` is a list of `circuits.core.units.Unit` in the family's order (published
    order for published families); `aliases` are the lookup keys, the first being
    the one used in `id`.
    """

    layer: str
    name: str
    aliases: tuple[str, ...]
    units: list[Unit] = field(repr=False)
    source: str = USER

    @property
    def id(self) -> str:
        """``"layer:alias"`` with the family's main alias, e.g. ``"mixed3b:curves"``."""
        return f"{self.layer}:{self.aliases[0]}"

    @property
    def channels(self) -> list[int]:
        return [u.channel for u in self.units]

    @property
    def graph(self) -> graph.Graph:
        """The network whose units these are."""
        return self.units[0].network

    def __len__(self) -> int:
        return len(self.units)

    def __iter__(self) -> Iterator[Unit]:
        return iter(self.units)

    def __contains__(self, unit) -> bool:
        try:
            return parse_unit(unit, self.graph) in self.units
        except (ValueError, KeyError, IndexError):
            return False

    def __repr__(self) -> str:
        return f"Family({self.id!r}, {self.name!r}, {len(self.units)} units, {self.source})"


# layer -> families in registration order; layer -> alias -> family.
_FAMILIES: dict[str, list[Family]] = {}
_BY_ALIAS: dict[str, dict[str, Family]] = {}

_ALIAS_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


def _units(layer: str, members: Iterable) -> list[Unit]:
    g = graph_of_layer(layer)
    out: list[Unit] = []
    seen: set[Unit] = set()
    for m in members:
        if isinstance(m, bool):
            raise ValueError(f"bad family member {m!r}: expected a channel index or a unit id")
        u = parse_unit((layer, m), g) if isinstance(m, int) else parse_unit(m, g)
        if u.layer != layer:
            raise ValueError(f"unit {u.id} is not in layer {layer}: a family holds units of one layer")
        if u not in seen:
            seen.add(u)
            out.append(u)
    if not out:
        raise ValueError(f"a family needs at least one unit (layer {layer})")
    return out


def _add(layer: str, name: str, units: list[Unit], aliases: Iterable[str], source: str, replace: bool = False) -> Family:
    keys: list[str] = []
    for a in list(aliases) + [snake(name)]:
        a = snake(a) if not _ALIAS_RE.match(a) else a
        if not a or not _ALIAS_RE.match(a):
            raise ValueError(f"bad family alias {a!r}: use letters, digits and _ (not only digits)")
        if a not in keys:
            keys.append(a)
    table = _BY_ALIAS.setdefault(layer, {})
    taken = [a for a in keys if a in table]
    if taken and not replace:
        owners = ", ".join(f"{a} ({table[a].name!r})" for a in taken)
        raise ValueError(
            f"family alias already registered in {layer}: {owners}; choose another name or pass replace=True"
        )
    published = [table[a] for a in taken if table[a].source in (EARLY_VISION, ARTICLE)]
    if published:
        raise ValueError(f"cannot replace published family {published[0].id} ({published[0].name!r}); choose another alias")
    fam = Family(layer, name, tuple(keys), units, source)
    # One family can own several of the taken aliases: remove each family once.
    for old in {id(table[a]): table[a] for a in taken}.values():
        _remove(old)
    _FAMILIES.setdefault(layer, []).append(fam)
    for a in keys:
        table[a] = fam
    return fam


def _remove(fam: Family) -> None:
    _FAMILIES[fam.layer] = [f for f in _FAMILIES[fam.layer] if f is not fam]
    table = _BY_ALIAS[fam.layer]
    for a in [a for a, f in table.items() if f is fam]:
        del table[a]


# Short aliases the articles use: (layer, published name) -> aliases, first = main.
_EXTRA_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("conv2d0", "Gabor Filters"): ("gabors",),
    ("conv2d1", "Complex Gabor"): ("complex_gabors",),
    ("conv2d2", "Line"): ("lines",),
    ("conv2d2", "Tiny Curves"): ("tiny_curves",),
    ("mixed3a", "Curves"): ("curves", "early_curves"),
    ("mixed3a", "Lines"): ("lines",),
    ("mixed3b", "Curves"): ("curves",),
}

# Published families whose members are reordered to an article's figure order.
_ARTICLE_ORDER = {("mixed3b", "Curves"): "curve_detectors_mixed3b_curves"}

# Article sets registered as extra (non-partition) families: key -> (name, aliases).
_ARTICLE_FAMILIES = {
    "curve_detectors_conv2d2_curves": ("Curves (Curve Detectors)", ("curves",)),
    "curve_detectors_mixed4a_curves": ("Curves (Curve Detectors)", ("cd_curves",)),
    "curve_circuits_mixed3a_lines": ("Lines (Curve Circuits)", ("cc_lines",)),
    "curve_circuits_mixed3a_texture_lines": ("Texture Lines (Curve Circuits)", ("texture_lines",)),
    "curve_circuits_mixed3a_cliffs": ("Cliffs (Curve Circuits)", ("cliffs",)),
    "frequency_edges_mixed3a_high_low": ("High-Low Frequency (article's 14)", ("high_low_14",)),
}


def _load_published() -> None:
    for layer, fams in family_data.EARLY_VISION.items():
        for name, chans in fams:
            order_key = _ARTICLE_ORDER.get((layer, name))
            if order_key is not None:
                ordered = family_data.ARTICLE_SETS[order_key][1]
                if sorted(ordered) != sorted(set(chans)):  # pragma: no cover - fixed data
                    raise AssertionError(f"{order_key} is not a reordering of {layer} {name}")
                chans = ordered
            aliases = list(_EXTRA_ALIASES.get((layer, name), ()))
            if name.startswith(layer + "_"):  # mixed4a lists are named "mixed4a_fur" etc.
                aliases.append(snake(name[len(layer) + 1 :]))
            _add(layer, name, _units(layer, chans), aliases, EARLY_VISION)
    for key, (name, aliases) in _ARTICLE_FAMILIES.items():
        layer, chans = family_data.ARTICLE_SETS[key]
        _add(layer, name, _units(layer, chans), aliases, ARTICLE)


_load_published()


# --- lookups ---------------------------------------------------------------


def layers_with_families() -> list[str]:
    """Layers that have at least one registered family, in network order."""
    order = list(DECLARED)

    def key(layer: str):
        g = graph_of_layer(layer)
        return order.index(g.name), g.index(layer)

    return sorted((l for l, fs in _FAMILIES.items() if fs), key=key)


def sources() -> list[str]:
    """Every family source: early_vision, article, user, and each network that registered its own.

    >>> sources()[:3]
    ['early_vision', 'article', 'user']
    """
    extra = sorted({f.source for fs in _FAMILIES.values() for f in fs} - {EARLY_VISION, ARTICLE, USER})
    return [EARLY_VISION, ARTICLE, USER, *extra]


def families(layer: str | None = None, source: str | None = None) -> list[Family]:
    """The registered families of `layer` (all layers if None), optionally of one source.

    source: "early_vision", "article", "user" (registered by you at run time), or a
    network's name for the families it defines (e.g. "handbuilt", registered when
    the hand-built weights are loaded).

    >>> [f.name for f in families("conv2d0", source="early_vision")]
    ['Gabor Filters', 'Color Contrast', 'Other Units']
    """
    if source is not None and source not in sources():
        raise ValueError(f"unknown family source {source!r}; use one of {', '.join(sources())}")
    if layer is None:
        layers = layers_with_families()
    else:
        graph_of_layer(layer)  # unknown layer: raises with close matches
        layers = [layer]
    return [f for l in layers for f in _FAMILIES.get(l, []) if source is None or f.source == source]


def _split(spec: str) -> tuple[str, str]:
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"bad family id {spec!r}: expected 'layer:family', e.g. 'mixed3b:curves'")
    layer, name = spec.split(":", 1)
    return layer.strip(), name.strip()


def family(spec, name: str | None = None) -> Family:
    """A registered family by id ``"layer:alias"``, or by ``(layer, name)``.

    The name may be the published name (any case) or an alias.

    >>> family("mixed3b", "Curves") is family("mixed3b:curves")
    True
    >>> family("conv2d0:gabors").name
    'Gabor Filters'
    """
    if isinstance(spec, Family):
        return spec
    if name is None:
        layer, name = _split(spec)
    else:
        layer = spec
    graph_of_layer(layer)  # unknown layer: raises with close matches
    table = _BY_ALIAS.get(layer, {})
    key = snake(name)
    if key in table:
        return table[key]
    if not table:
        raise UnknownFamilyError(
            f"layer {layer} has no registered families (layers with families: "
            f"{', '.join(layers_with_families())}); register one with register_family()"
        )
    close = [f"{layer}:{a}" for a in difflib.get_close_matches(key, sorted(table), n=5, cutoff=0.5)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    if key.startswith("hb_"):
        hint += "; the hand-built network's hb_* banks exist once its weights are loaded (--weights handbuilt)"
    raise UnknownFamilyError(
        f"unknown family {name!r} in {layer}{hint} (run `circuits families {layer}` for the list)"
    )


def family_of(unit) -> Family | None:
    """The Early Vision family of `unit`, or None if no published family lists it.

    For conv2d0 .. mixed3b every unit has exactly one; mixed4a .. mixed4d lists are
    partial (and may overlap: the first published family is returned).

    >>> family_of("mixed3b:379").id
    'mixed3b:curves'
    """
    u = parse_unit(unit)
    for f in _FAMILIES.get(u.layer, []):
        if f.source == EARLY_VISION and u in f.units:
            return f
    return None


def families_of(unit) -> list[Family]:
    """Every registered family (published, article or user) that holds `unit`."""
    u = parse_unit(unit)
    return [f for f in _FAMILIES.get(u.layer, []) if u in f.units]


def register_family(
    layer: str,
    name: str,
    units: Iterable,
    aliases: Iterable[str] = (),
    *,
    replace: bool = False,
    source: str = USER,
) -> Family:
    """Register your own family of units of `layer`, usable wherever a family is.

    units: channel indices or unit ids of `layer` (repeats dropped). The family is
    reachable as ``layer:<snake(name)>`` and ``layer:<alias>``.
    source: "user" (default), or the name of the network that defines the family
    (a weight source registering its own banks uses its name, e.g. "handbuilt").

    >>> f = register_family("mixed3a", "My Curves", [81, "mixed3a:104"], aliases=["mine"])
    >>> family("mixed3a:mine").channels
    [81, 104]
    >>> unregister_family("mixed3a:mine")
    """
    graph_of_layer(layer)  # unknown layer: raises with close matches
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"bad family name {name!r}: expected a non-empty string")
    if isinstance(aliases, str):
        aliases = [aliases]
    if isinstance(units, (str, Unit)):
        units = [units]
    if not isinstance(source, str) or not _ALIAS_RE.match(source.replace("-", "_")) or source in (EARLY_VISION, ARTICLE):
        raise ValueError(
            f"bad family source {source!r}: use 'user' or the name of the network that defines the family "
            "(early_vision and article are the published sets)"
        )
    return _add(layer, name.strip(), _units(layer, units), aliases, source, replace=replace)


def unregister_family(spec) -> None:
    """Remove a user or network family (published families cannot be removed)."""
    fam = family(spec)
    if fam.source in (EARLY_VISION, ARTICLE):
        raise ValueError(f"{fam.id} ({fam.name!r}) is a published family and cannot be unregistered")
    _remove(fam)


# --- labels by the loaded network ----------------------------------------------------


def network_families(model) -> list[Family]:
    """The families the network of `model` defines (``model.families``; [] for a model without any).

    Entries may be `Family` objects or family ids.
    """
    return [family(f) for f in (getattr(model, "families", None) or ())]


def labels(layer: str, model=None) -> list[Family]:
    """Families that label the channels of `layer`: the network's own first, then the published partition.

    Each channel belongs to the first listed family that holds it (a channel the
    network's families hold is not also labelled by its published family; the
    published families are listed only with their remaining channels counted, so
    use `label_of` per channel). Without a model (or for a network without
    families of its own) this is the Early Vision partition.

    >>> [f.name for f in labels("conv2d0")]
    ['Gabor Filters', 'Color Contrast', 'Other Units']
    """
    (model.graph if model is not None else graph_of_layer(layer)).node(layer)
    own = [f for f in network_families(model) if f.layer == layer] if model is not None else []
    return own + [f for f in _FAMILIES.get(layer, []) if f.source == EARLY_VISION]


def label_of(unit, model=None) -> Family | None:
    """The family that labels `unit` in `model`'s network: its own family first, else the published one.

    >>> label_of("mixed3a:81").name
    'Curves'
    """
    u = parse_unit(unit, getattr(model, "graph", None))
    for f in labels(u.layer, model):
        if u in f.units:
            return f
    return None


def resolve_units(spec, model=None) -> list[Unit]:
    """Units from a unit id, a family id (``"mixed3b:curves"``) or a list of either: the one
    resolution of unit and family specs that every entry point (API and CLI) uses.

    model: the model (or a `Graph`) the units must belong to; a unit or family of
    another network is refused, naming both. Without it, each id names its network
    by its layer (the declared networks' names do not collide).

    >>> [u.id for u in resolve_units(["conv2d0:1", ("conv2d0", 2)])]
    ['conv2d0:1', 'conv2d0:2']
    """
    g = network_of(model)
    if isinstance(spec, (str, Unit)) or (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str)):
        if isinstance(spec, str) and ":" in spec:
            layer, rest = spec.split(":", 1)
            if not rest.strip().lstrip("-").isdigit():
                if g is not None and layer.strip() not in g._by_name:
                    owner = next((o for o in DECLARED.values() if layer.strip() in o._by_name), None)
                    if owner is None:
                        g.node(layer.strip())  # unknown everywhere: raises with close matches
                    raise wrong_network(spec.strip(), owner, g, "family")
                fam = family(spec)
                if g is not None and fam.graph is not g:
                    raise wrong_network(fam.id, fam.graph, g, "family")
                return list(fam.units)
        return [parse_unit(spec, g)]
    if isinstance(spec, Iterable):
        out: list[Unit] = []
        for s in spec:
            out.extend(resolve_units(s, g))
        if not out:
            raise ValueError("empty list of units")
        return out
    raise ValueError(f"bad unit or family {spec!r}: expected 'layer:channel', 'layer:family' or a list")
