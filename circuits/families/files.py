"""Families on disk: one JSON object per family, written atomically, read back and registered.

A family file is a JSON object with

* ``"format": "circuits.family"`` and ``"version": 1``;
* ``"layer"`` (e.g. ``"mixed3b"``), ``"name"`` and ``"aliases"`` (the first alias
  gives the id ``layer:alias``);
* ``"network"`` (optional; written by `save_family`): the declared network whose layer
  it is (``"InceptionV1"``, ``"InceptionV3"``); a file whose layer is not in that
  network is refused;
* ``"family"``: the member unit ids in the family's order (may be empty: a search
  that found nothing is still a result worth keeping);
* anything else the writer adds (`circuits.tuning.discover` adds every unit's
  scores under ``"units"``, the criteria, coverage and curves).

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "mine.json")
    >>> _ = save_family(path, {"layer": "mixed3a", "name": "my curves", "aliases": ["my_curves"],
    ...                        "family": ["mixed3a:81", "mixed3a:104"]})
    >>> fam = load_family(path)
    >>> fam.id, fam.channels
    ('mixed3a:my_curves', [81, 104])
    >>> from circuits.families import unregister_family; unregister_family(fam)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from circuits.core.files import atomic_path, json_safe
from circuits.core.units import parse_unit

__all__ = ["FORMAT", "VERSION", "save_family", "read_family_file", "load_family"]

FORMAT = "circuits.family"
VERSION = 1


def _validate(record: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: a family file holds a JSON object, got {type(record).__name__}")
    if record.get("format", FORMAT) != FORMAT:
        raise ValueError(f"{where}: format {record.get('format')!r} is not {FORMAT!r}")
    if int(record.get("version", VERSION)) > VERSION:
        raise ValueError(f"{where}: version {record.get('version')} is newer than this reader ({VERSION})")
    missing = [k for k in ("layer", "name", "family") if k not in record]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)} (a family file needs layer, name, family)")
    layer, name, members = record["layer"], record["name"], record["family"]
    if not isinstance(layer, str) or not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: layer and name must be non-empty strings, got {layer!r}, {name!r}")
    from circuits.core.networks import graph_named, graph_of_layer

    g = graph_named(record["network"]) if "network" in record else graph_of_layer(layer)
    g.node(layer)  # unknown layer: raises with close matches
    if not isinstance(members, list):
        raise ValueError(f"{where}: 'family' must be a list of unit ids, got {type(members).__name__}")
    for m in members:
        u = parse_unit(m, g)  # bad ids raise, naming them
        if u.layer != layer:
            raise ValueError(f"{where}: unit {u.id} is not in layer {layer}")
    aliases = record.get("aliases", [])
    if isinstance(aliases, str) or not all(isinstance(a, str) for a in aliases):
        raise ValueError(f"{where}: 'aliases' must be a list of strings, got {aliases!r}")
    return {**record, "format": FORMAT, "version": VERSION, "network": g.name, "aliases": list(aliases)}


def save_family(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write a family record (see the module doc) to `path` as JSON, atomically; returns the path.

    >>> save_family("x.json", {"layer": "mixed3b", "family": []})   # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: x.json: missing key(s) name (a family file needs layer, name, family)
    """
    p = Path(path)
    rec = _validate(record, str(p))
    body = json.dumps(json_safe({"format": FORMAT, "version": VERSION, **rec}), indent=1, allow_nan=False)
    with atomic_path(p) as tmp:
        tmp.write_text(body + "\n")
    return p


def read_family_file(path: str | os.PathLike) -> dict[str, Any]:
    """The validated record in a family file (no registration)."""
    from circuits.core.files import read_text

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no family file at {p}")
    try:
        record = json.loads(read_text(p, "family file"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not JSON ({e})") from None
    return _validate(record, str(p))


def load_family(path: str | os.PathLike, *, register: bool = True, replace: bool = True):
    """Read a family file and register its family (as ``layer:<first alias>``); returns the `Family`.

    A file whose family is empty (a search that found nothing) raises ValueError:
    there is nothing to register. replace: replace a user family of the same alias.
    """
    from circuits.families import Family, USER, register_family, snake

    rec = read_family_file(path)
    if not rec["family"]:
        raise ValueError(f"{path} lists no units in 'family' ({rec['layer']}: the search accepted none)")
    if not register:
        aliases = tuple(rec["aliases"]) or (snake(rec["name"]),)
        from circuits.core.networks import graph_named

        g = graph_named(rec["network"])
        return Family(rec["layer"], rec["name"], aliases, [parse_unit(u, g) for u in rec["family"]], USER)
    return register_family(rec["layer"], rec["name"], rec["family"], aliases=rec["aliases"], replace=replace)
