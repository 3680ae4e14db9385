"""Families on disk: one JSON object per family, written atomically, read back and registered.

A family file is a JSON object with

* ``"format": "circuits.family"`` and ``"version": 1``;
* ``"layer"`` (e.g. ``"mixed3b"``), ``"name"`` and ``"aliases"`` (the first alias
  gives the id ``layer:alias``);
* ``"network"`` (written by `save_family`): the network whose layer it is
  (``"InceptionV1"``, ``"InceptionV3"``, a traced network's name); a file of another
  network than the model it is loaded into is refused;
* ``"family"``: the member unit ids in the family's order (may be empty: a search
  that found nothing is still a result worth keeping);
* anything else the writer adds (`circuits.tuning.discover` adds every unit's
  scores under ``"units"``, the criteria, coverage and curves).

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "mine.json")
    >>> _ = save_family(path, {"layer": "mixed3a", "name": "my curves", "aliases": ["my_curves"],
    ...                        "network": "InceptionV1", "family": ["mixed3a:81", "mixed3a:104"]})
    >>> from circuits.core.model import InceptionV1
    >>> model = InceptionV1()
    >>> fam = load_family(path, model)
    >>> fam.id, fam.channels, fam in model.families
    ('mixed3a:my_curves', [81, 104], True)
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


def _validate(record: Mapping[str, Any], where: str, network=None) -> dict[str, Any]:
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
    from circuits.core.networks import DECLARED, network_of
    from circuits.core.units import wrong_network

    g = network_of(network)
    named = record.get("network")
    if g is None:
        if named not in DECLARED:
            raise ValueError(
                f"{where}: the family's network {named!r} is not a declared one ({', '.join(DECLARED)}); "
                "read it with the model it belongs to (load_family(path, model))"
            )
        g = DECLARED[named]
    elif named is not None and named != g.name:
        owner = DECLARED.get(named)
        if owner is not None:
            raise wrong_network(f"{where} ({layer})", owner, g, "family")
        raise ValueError(f"{where}: a family of network {named!r}, not of {g.name} (the model's network)")
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


def save_family(path: str | os.PathLike, record: Mapping[str, Any], network=None) -> Path:
    """Write a family record (see the module doc) of `network` (a model or Graph; default the
    declared network the record names) to `path` as JSON, atomically; returns the path.

    >>> save_family("x.json", {"layer": "mixed3b", "family": [], "network": "InceptionV1"})   # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: x.json: missing key(s) name (a family file needs layer, name, family)
    """
    p = Path(path)
    rec = _validate(record, str(p), network)
    body = json.dumps(json_safe({"format": FORMAT, "version": VERSION, **rec}), indent=1, allow_nan=False)
    with atomic_path(p) as tmp:
        tmp.write_text(body + "\n")
    return p


def read_family_file(path: str | os.PathLike, network=None) -> dict[str, Any]:
    """The validated record in a family file (no registration), of `network` (a model or Graph;
    default the declared network the file names)."""
    from circuits.core.files import read_text

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no family file at {p}")
    try:
        record = json.loads(read_text(p, "family file"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not JSON ({e})") from None
    return _validate(record, str(p), network)


def load_family(path: str | os.PathLike, model, *, register: bool = True, replace: bool = True):
    """Read a family file of `model`'s network and register its family on `model` (as
    ``layer:<first alias>``); returns the `Family`.

    A file whose family is empty (a search that found nothing) raises ValueError:
    there is nothing to register. register=False: only the Family (`model` may then be
    a Graph). replace: replace a family of the same alias the model holds.
    """
    from circuits.families import make_family, register_family

    rec = read_family_file(path, model)
    if not rec["family"]:
        raise ValueError(f"{path} lists no units in 'family' ({rec['layer']}: the search accepted none)")
    if not register:
        return make_family(model, rec["layer"], rec["name"], rec["family"], rec["aliases"])
    return register_family(model, rec["layer"], rec["name"], rec["family"], aliases=rec["aliases"], replace=replace)
