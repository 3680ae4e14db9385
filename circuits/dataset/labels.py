"""Hand labels of sampled crops against activation, as in "Curve Detectors".

`circuits.plots.dataset.write_sheet` writes a blind labelling sheet: the crops a scan sampled per activation
bin, shuffled, numbered, without their activations (PNG pages and a CSV with an empty
`label` column). `label_views` turns a filled-in CSV (crop_id,label) into the
article's three views:

- p(label | bin): within each quilt bin, the fraction of its labelled crops per label;
- density by label: p(bin) (all crops, from the scan's histogram) x p(label | bin);
- share of the expected post-ReLU activation: label L's share of
  E[ReLU(x)] = sum over bins of p(bin) E[ReLU(x) | bin] p(L | bin), with
  E[ReLU(x) | bin] from the histogram's fine bins (at their centres).

Bins without labelled crops get no p(label | bin) and contribute nothing.

Example:
    >>> read_labels_text('crop_id,label\\n"a@0,0,5",curve\\n')    # crop ids hold commas: quoted
    {'a@0,0,5': 'curve'}
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Mapping

import numpy as np


__all__ = ["LABELS", "read_labels", "read_labels_text", "label_views"]

LABELS: tuple[str, ...] = ("curve", "imperfect", "unrelated", "opposing")


def read_labels_text(text: str) -> dict[str, str]:
    """crop id -> label from CSV text with columns crop_id and label (other columns ignored;
    rows with an empty label are left out)."""
    rows = csv.DictReader(io.StringIO(text))
    if not rows.fieldnames or not {"crop_id", "label"} <= set(rows.fieldnames):
        raise ValueError(f"labels CSV needs columns crop_id and label, got {rows.fieldnames}")
    out: dict[str, str] = {}
    for n, r in enumerate(rows, start=2):
        lab = (r["label"] or "").strip().lower()
        if not lab:
            continue
        if lab not in LABELS:
            raise ValueError(f"line {n}: unknown label {r['label']!r}; use one of {', '.join(LABELS)}")
        cid = r["crop_id"].strip()
        if cid in out and out[cid] != lab:
            raise ValueError(f"line {n}: crop {cid} is labelled both {out[cid]!r} and {lab!r}")
        out[cid] = lab
    if not out:
        raise ValueError("the labels CSV has no labelled rows")
    return out


def read_labels(path: str | os.PathLike) -> dict[str, str]:
    """crop id -> label of a labels CSV file; a binary or non-UTF-8 file is an error naming it."""
    from circuits.core.files import read_text

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such labels file: {p}")
    try:
        return read_labels_text(read_text(p, "labels file"))
    except (ValueError, csv.Error) as e:
        msg = str(e)
        raise ValueError(msg if str(p) in msg else f"labels file {p}: {msg}") from None


def label_views(summary: Mapping, labels: Mapping[str, str]) -> dict:
    """The three views (see the module docstring) for one unit's scan summary."""
    width = summary["samples"]["bin_width"]
    value = {c["crop_id"]: c["value"] for b in summary["samples"]["bins"] for c in b["crops"]}
    unknown = [c for c in labels if c not in value]
    if unknown:
        raise ValueError(f"{len(unknown)} labelled crops are not among the scan's samples of {summary['unit']} "
                         f"(e.g. {unknown[0]!r}); label crops from `circuits dataset-sheet` of this scan")
    edges = np.asarray(summary["histogram"]["edges"])
    counts = np.asarray(summary["histogram"]["counts"], dtype=float)
    n = float(summary["n_crops"])
    centres = (edges[:-1] + edges[1:]) / 2
    coarse = np.floor(centres / width).astype(int)
    by_bin: dict[int, dict[str, int]] = {}
    for cid, lab in labels.items():
        b = int(np.floor(value[cid] / width))
        by_bin.setdefault(b, dict.fromkeys(LABELS, 0))[lab] += 1
    bins, total_relu = [], float((counts * np.maximum(centres, 0)).sum() / n)
    share = dict.fromkeys(LABELS, 0.0)
    for b in sorted(by_bin):
        sel = coarse == b
        p_bin = float(counts[sel].sum() / n)
        relu_mass = float((counts[sel] * np.maximum(centres[sel], 0)).sum() / n)  # p(bin) E[ReLU | bin]
        k = sum(by_bin[b].values())
        p_label = {lab: by_bin[b][lab] / k for lab in LABELS}
        for lab in LABELS:
            share[lab] += relu_mass * p_label[lab]
        bins.append({"lo": b * width, "hi": (b + 1) * width, "centre": (b + 0.5) * width, "n_labelled": k,
                     "counts": by_bin[b], "p_label": p_label, "p_bin": p_bin,
                     "density_by_label": {lab: p_bin / width * p_label[lab] for lab in LABELS}})
    covered = sum(share.values())
    return {"unit": summary["unit"], "labels": list(LABELS), "n_labelled": len(labels), "bins": bins,
            "expected_share": {lab: (v / covered if covered > 0 else 0.0) for lab, v in share.items()},
            "expected_relu": total_relu, "expected_relu_covered": covered}
