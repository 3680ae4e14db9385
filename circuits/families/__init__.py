"""Neuron families: named groups of units of one layer, published or your own.

Families belong to the network they describe. InceptionV1's graph holds the families of
"An Overview of Early Vision in InceptionV1" (complete partitions of conv2d0 .. mixed3b, partial lists for mixed4a ..
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
`families_of(unit, model)` gives every family of the model holding it.

A model holds families of its own in ``model.families`` (a list): the weight source
gives them when the network is loaded (the hand-built network's banks,
``mixed3a:hb_early_curve_bank`` ..., source ``"handbuilt"``), and `register_family(model,
...)` adds yours (a discovered family, a family file). Nothing is process-wide: two
models never see each other's families. `labels(layer, model)` labels a layer's
channels by the families *that* model holds first and by the published partition for
the rest, so a hand-built bank channel is not called by the published name of its
channel id.

Example:
    >>> v1 = graph.INCEPTION_V1
    >>> f = family("mixed3b:curves", v1)
    >>> f.name, len(f), f.units[0].id
    ('Curves', 10, 'mixed3b:379')
    >>> family_of("conv2d0:9", v1).name
    'Gabor Filters'
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from circuits.families import published as family_data
from circuits.core import graph
from circuits.core.networks import DECLARED, network_of
from circuits.core.units import Unit, parse_unit, wrong_network

__all__ = [
    "resolve_units",
    "units_of",
    "Family",
    "UnknownFamilyError",
    "family",
    "families",
    "family_of",
    "families_of",
    "register_family",
    "unregister_family",
    "make_family",
    "published_families",
    "FamilyTable",
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


_ALIAS_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


class FamilyTable:
    """The families of one network by layer and alias: its published families, or a model's own.

    A table is built once per declared network for the published families
    (`published_families`) and never changed; a model's own families (the hand-built
    banks, discovered and user families) are a list the model holds (``model.families``),
    so two models never see each other's.
    """

    def __init__(self, network: graph.Graph, families: Iterable[Family] = ()):
        self.network = network
        self.by_layer: dict[str, list[Family]] = {}
        self.by_alias: dict[str, dict[str, Family]] = {}
        for f in families:
            self.by_layer.setdefault(f.layer, []).append(f)
            for a in f.aliases:
                self.by_alias.setdefault(f.layer, {})[a] = f


def _keys(name: str, aliases: Iterable[str]) -> list[str]:
    keys: list[str] = []
    for a in list(aliases) + [snake(name)]:
        a = snake(a) if not _ALIAS_RE.match(a) else a
        if not a or not _ALIAS_RE.match(a):
            raise ValueError(f"bad family alias {a!r}: use letters, digits and _ (not only digits)")
        if a not in keys:
            keys.append(a)
    return keys


def _units(layer: str, members: Iterable, g: graph.Graph) -> list[Unit]:
    g.node(layer)  # unknown layer: raises with close matches
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


@functools.lru_cache(maxsize=None)
def published_families(network: graph.Graph) -> FamilyTable:
    """The published families of `network`: the Early Vision partition and the articles' sets
    for InceptionV1 (its graph holds them), none for any other network. Built on first use.

    >>> len(published_families(graph.INCEPTION_V1).by_layer["conv2d0"])
    3
    """
    fams: list[Family] = []
    if network is graph.INCEPTION_V1:
        for layer, entries in family_data.EARLY_VISION.items():
            for name, chans in entries:
                order_key = _ARTICLE_ORDER.get((layer, name))
                if order_key is not None:
                    ordered = family_data.ARTICLE_SETS[order_key][1]
                    if sorted(ordered) != sorted(set(chans)):  # pragma: no cover - fixed data
                        raise AssertionError(f"{order_key} is not a reordering of {layer} {name}")
                    chans = ordered
                aliases = list(_EXTRA_ALIASES.get((layer, name), ()))
                if name.startswith(layer + "_"):  # mixed4a lists are named "mixed4a_fur" etc.
                    aliases.append(snake(name[len(layer) + 1 :]))
                fams.append(Family(layer, name, tuple(_keys(name, aliases)), _units(layer, chans, network), EARLY_VISION))
        for key, (name, aliases) in _ARTICLE_FAMILIES.items():
            layer, chans = family_data.ARTICLE_SETS[key]
            fams.append(Family(layer, name, tuple(_keys(name, aliases)), _units(layer, chans, network), ARTICLE))
    return FamilyTable(network, fams)


def _graph(network) -> graph.Graph:
    g = network_of(network)
    if g is None:
        raise TypeError("the network the families belong to is needed: pass the model (or its Graph)")
    return g


def _own(network) -> list[Family]:
    """The families a model holds (``model.families``); a Graph holds only its published ones."""
    if network is None or isinstance(network, graph.Graph):
        return []
    return list(getattr(network, "families", None) or ())


def _tables(network) -> tuple[FamilyTable, FamilyTable]:
    g = _graph(network)
    return published_families(g), FamilyTable(g, _own(network))


# --- lookups ---------------------------------------------------------------


def layers_with_families(network) -> list[str]:
    """Layers of `network` (a model or Graph) that have at least one family, in network order."""
    g = _graph(network)
    layers = {l for t in _tables(network) for l, fs in t.by_layer.items() if fs}
    return sorted(layers, key=g.index)


def sources(network=None) -> list[str]:
    """Every family source: early_vision, article, user, and each network that defines its own.

    >>> sources()[:3]
    ['early_vision', 'article', 'user']
    """
    extra = sorted({f.source for f in _own(network)} - {EARLY_VISION, ARTICLE, USER})
    return [EARLY_VISION, ARTICLE, USER, *extra]


def families(network, layer: str | None = None, source: str | None = None) -> list[Family]:
    """The families of `network` (a model or Graph) in `layer` (all layers if None), optionally of one source.

    A model's families are its graph's published ones and those it holds
    (``model.families``: the hand-built banks when loaded from ``handbuilt``,
    families you register on it). source: "early_vision", "article", "user", or a
    network's name for the families it defines (e.g. "handbuilt").

    >>> [f.name for f in families(graph.INCEPTION_V1, "conv2d0", source="early_vision")]
    ['Gabor Filters', 'Color Contrast', 'Other Units']
    """
    known = sources(network)
    if source is not None and source not in known:
        raise ValueError(f"unknown family source {source!r}; use one of {', '.join(known)}")
    g = _graph(network)
    if layer is None:
        layers = layers_with_families(network)
    else:
        g.node(layer)  # unknown layer: raises with close matches
        layers = [layer]
    tables = _tables(network)
    return [f for l in layers for t in tables for f in t.by_layer.get(l, []) if source is None or f.source == source]


def _split(spec) -> tuple[str, str]:
    if isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(p, str) for p in spec):
        return spec[0].strip(), spec[1].strip()
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"bad family id {spec!r}: expected 'layer:family', e.g. 'mixed3b:curves'")
    layer, name = spec.split(":", 1)
    return layer.strip(), name.strip()


def family(spec, network) -> Family:
    """A family of `network` (a model or Graph) by id ``"layer:alias"`` or ``(layer, name)``.

    The name may be the published name (any case) or an alias.

    >>> v1 = graph.INCEPTION_V1
    >>> family(("mixed3b", "Curves"), v1) is family("mixed3b:curves", v1)
    True
    >>> family("conv2d0:gabors", v1).name
    'Gabor Filters'
    """
    if isinstance(spec, Family):
        g = _graph(network)
        if spec.graph is not g:
            raise wrong_network(spec.id, spec.graph, g, "family")
        return spec
    layer, name = _split(spec)
    g = _graph(network)
    if layer not in g._by_name:
        owner = next((o for o in DECLARED.values() if layer in o._by_name), None)
        if owner is not None:
            raise wrong_network(f"{layer}:{name}", owner, g, "family")
    g.node(layer)  # unknown layer: raises with close matches
    key = snake(name)
    tables = _tables(network)
    for t in reversed(tables):  # the model's own first (they cannot shadow a published alias: _check_aliases)
        hit = t.by_alias.get(layer, {}).get(key)
        if hit is not None:
            return hit
    aliases = sorted({a for t in tables for a in t.by_alias.get(layer, {})})
    if not aliases:
        have = layers_with_families(network)
        raise UnknownFamilyError(
            f"layer {layer} of {g.name} has no families (layers with families: "
            f"{', '.join(have) or 'none'}); register one with register_family(model, ...) or pass a family file"
        )
    close = [f"{layer}:{a}" for a in difflib.get_close_matches(key, aliases, n=5, cutoff=0.5)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    if key.startswith("hb_"):
        hint += "; the hand-built network's hb_* banks exist once its weights are loaded (--weights handbuilt)"
    raise UnknownFamilyError(
        f"unknown family {name!r} in {layer}{hint} (run `circuits families {layer}` for the list)"
    )


def family_of(unit, network=None) -> Family | None:
    """The published (Early Vision) family of `unit`, or None if no published family lists it.

    network: needed when `unit` is an id (a Unit knows its network). For conv2d0 ..
    mixed3b every unit has exactly one; mixed4a .. mixed4d lists are partial (and may
    overlap: the first published family is returned).

    >>> family_of("mixed3b:379", graph.INCEPTION_V1).id
    'mixed3b:curves'
    """
    u = unit if isinstance(unit, Unit) and network is None else parse_unit(unit, network)
    for f in published_families(u.graph).by_layer.get(u.layer, []):
        if f.source == EARLY_VISION and u in f.units:
            return f
    return None


def families_of(unit, network) -> list[Family]:
    """Every family of `network` (published, article, the model's own) that holds `unit`."""
    u = parse_unit(unit, network)
    return [f for t in _tables(network) for f in t.by_layer.get(u.layer, []) if u in f.units]


def register_family(
    model,
    layer: str,
    name: str,
    units: Iterable,
    aliases: Iterable[str] = (),
    *,
    replace: bool = False,
    source: str = USER,
) -> Family:
    """Register your own family of units of `layer` on `model`, usable wherever its families are.

    units: channel indices or unit ids of `layer` (repeats dropped). The family is
    reachable as ``layer:<snake(name)>`` and ``layer:<alias>`` on this model only.
    source: "user" (default), or the name of the network that defines the family
    (a weight source giving its own banks uses its name, e.g. "handbuilt").

    >>> from circuits.core.model import InceptionV1
    >>> m = InceptionV1()
    >>> f = register_family(m, "mixed3a", "My Curves", [81, "mixed3a:104"], aliases=["mine"])
    >>> family("mixed3a:mine", m).channels
    [81, 104]
    >>> unregister_family(m, "mixed3a:mine")
    """
    held = getattr(model, "families", None)
    if not isinstance(held, list):
        raise TypeError(
            f"families are registered on a model (a circuits Network, which holds them in .families), "
            f"got {type(model).__name__}"
        )
    fam = make_family(model.graph, layer, name, units, aliases, source=source)
    _check_aliases(model, fam, replace)
    held.append(fam)
    return fam


def make_family(network, layer: str, name: str, units: Iterable, aliases: Iterable[str] = (), *,
                source: str = USER) -> Family:
    """A family of `network`'s units (not registered anywhere): what a weight source gives a model.

    >>> make_family(graph.INCEPTION_V1, "mixed3a", "Mine", [81]).id
    'mixed3a:mine'
    """
    g = _graph(network)
    g.node(layer)  # unknown layer: raises with close matches
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
    return Family(layer, name.strip(), tuple(_keys(name.strip(), aliases)), _units(layer, units, g), source)


def _check_aliases(model, fam: Family, replace: bool) -> None:
    """Refuse an alias a published family has; replace (or refuse) a model family that has one."""
    pub = published_families(model.graph).by_alias.get(fam.layer, {})
    clash = [a for a in fam.aliases if a in pub]
    if clash:
        old = pub[clash[0]]
        raise ValueError(f"cannot replace published family {old.id} ({old.name!r}); choose another alias")
    held = model.families
    taken = [f for f in held if f.layer == fam.layer and set(f.aliases) & set(fam.aliases)]
    if taken and not replace:
        owners = ", ".join(f"{a} ({f.name!r})" for f in taken for a in f.aliases if a in fam.aliases)
        raise ValueError(
            f"family alias already registered in {fam.layer}: {owners}; choose another name or pass replace=True"
        )
    held[:] = [f for f in held if not any(f is t for t in taken)]


def unregister_family(model, spec) -> None:
    """Remove a family registered on `model` (published families cannot be removed)."""
    fam = family(spec, model)
    if fam.source in (EARLY_VISION, ARTICLE):
        raise ValueError(f"{fam.id} ({fam.name!r}) is a published family and cannot be unregistered")
    model.families[:] = [f for f in model.families if f is not fam]


# --- labels by the loaded network ----------------------------------------------------


def network_families(model) -> list[Family]:
    """The families `model` holds (its own: the hand-built banks, registered ones); [] for a Graph."""
    return _own(model)


def labels(layer: str, network) -> list[Family]:
    """Families that label the channels of `layer`: the model's own first, then the published partition.

    Each channel belongs to the first listed family that holds it (a channel the
    network's families hold is not also labelled by its published family; the
    published families are listed only with their remaining channels counted, so
    use `label_of` per channel). For a Graph (or a model without families of its
    own) this is the Early Vision partition.

    >>> [f.name for f in labels("conv2d0", graph.INCEPTION_V1)]
    ['Gabor Filters', 'Color Contrast', 'Other Units']
    """
    g = _graph(network)
    g.node(layer)
    own = [f for f in _own(network) if f.layer == layer]
    return own + [f for f in published_families(g).by_layer.get(layer, []) if f.source == EARLY_VISION]


def label_of(unit, network) -> Family | None:
    """The family that labels `unit` in `network`: the model's own family first, else the published one.

    >>> label_of("mixed3a:81", graph.INCEPTION_V1).name
    'Curves'
    """
    u = parse_unit(unit, network)
    for f in labels(u.layer, network):
        if u in f.units:
            return f
    return None


def resolve_units(spec, network) -> list[Unit]:
    """Units from a unit id, a family id (``"mixed3b:curves"``) or a list of either, of
    `network` (a model, whose own families count, or a Graph): the one resolution of
    unit and family specs, done where they enter (the CLI, a public function).

    A unit or family of another network is refused, naming both. Units already
    resolved (`Unit` objects of this network) pass through unchanged.

    >>> [u.id for u in resolve_units(["conv2d0:1", ("conv2d0", 2)], graph.INCEPTION_V1)]
    ['conv2d0:1', 'conv2d0:2']
    """
    g = _graph(network)
    if isinstance(spec, Family):
        return list(family(spec, network).units)
    if isinstance(spec, (str, Unit)) or (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str)):
        if isinstance(spec, str) and ":" in spec:
            rest = spec.split(":", 1)[1]
            if not rest.strip().lstrip("-").isdigit():
                return list(family(spec, network).units)
        return [parse_unit(spec, g)]
    if isinstance(spec, Iterable):
        out: list[Unit] = []
        for s in spec:
            if isinstance(s, Unit) and s.graph is g:  # resolved already: no work
                out.append(s)
            else:
                out.extend(resolve_units(s, network))
        if not out:
            raise ValueError("empty list of units")
        return out
    raise ValueError(f"bad unit or family {spec!r}: expected 'layer:channel', 'layer:family' or a list")


def units_of(spec, network=None) -> list[Unit]:
    """`spec` as units of `network`: units resolved already are carried as they are (each
    checked to belong to `network`), anything else is resolved (`resolve_units`). This is
    how a public function takes units, so that a command resolves them once, where they
    enter, and every function below reuses them.

    network: a model or Graph; may be None when `spec` is resolved units (they know
    their network).

    >>> us = resolve_units("mixed3b:curves", graph.INCEPTION_V1)
    >>> units_of(us, graph.INCEPTION_V1) == us
    True
    """
    if isinstance(spec, Unit):
        spec = [spec]
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(u, Unit) for u in spec):
        g = network_of(network) or spec[0].graph
        for u in spec:
            if u.graph is not g:
                raise wrong_network(u.id, u.graph, g)
        return list(spec)
    if network is None:
        raise TypeError(f"units {spec!r} need the network they belong to: pass the model (or its Graph)")
    return resolve_units(spec, network)
