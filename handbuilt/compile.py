"""Compile a hand-built `Spec` into a state dict for `circuits.core.model.InceptionV1`.

Every weight not written by a rule is zero (so units that carry no family are silent).
The spec is checked before anything is written, and the result is checked for units
no input can ever switch on; each error names the bank or rule at fault.

Example:
    >>> from handbuilt import spec
    >>> sd = compile_spec(spec.SPEC)
    >>> sd["mixed3b_5x5_pre_relu_conv.weight"].shape
    torch.Size([96, 32, 5, 5])
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Mapping

import numpy as np
import torch

from circuits.core import graph, ops
from circuits.core.bounds import graph_bounds

from .rules import KINDS, Arc, Bank, Gabor, Normalize, PoolEnergy, PoolPhases, Relay, Rule, Segment, Spec, Tile, Tolerance

__all__ = ["SpecError", "compile_spec", "check_spec", "upper_bounds"]

INPUT_RANGE = (-117.0, 138.0)  # Lucid's input: pixels 0..255 minus 117
# The channel-preserving ops a source may pass through on its way to a convolution.


class SpecError(ValueError):
    """A hand-built specification that cannot be compiled; the message names the bank or rule."""


def _rule_name(rule: Rule) -> str:
    if isinstance(rule, Normalize):
        return f"Normalize({rule.bank} by {rule.by})"
    dst = rule.dst if isinstance(rule.dst, str) else "+".join(rule.dst)
    src = getattr(rule, "src", "image")
    return f"{type(rule).__name__}({src} -> {dst})"


def _dsts(rule: Rule) -> tuple[str, ...]:
    return (rule.dst,) if isinstance(rule.dst, str) else tuple(rule.dst)


def _cos_sin(deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of degrees, exact at multiples of 90 (so 90-degree rotations permute kernels exactly)."""
    deg = np.asarray(deg, dtype=np.float64) % 360.0
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    for k, (ck, sk) in enumerate(((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))):
        exact = deg == 90.0 * k
        c = np.where(exact, ck, c)
        s = np.where(exact, sk, s)
    return c, s


# --- checking the spec -------------------------------------------------------


def _conv_of(bank: Bank) -> str:
    """The convolution computing the bank's branch (None-safe: check_spec reports a branch without one)."""
    return graph.INCEPTION_V1.pre_relu_of(bank.branch) or f"{bank.branch} (no convolution)"


def check_spec(spec: Spec) -> None:
    """Raise SpecError for a malformed spec: every problem names its bank or rule.

    >>> from handbuilt.rules import Spec, Bank
    >>> check_spec(Spec((Bank("a", "conv2d1", "conv2d1", (3, 3), (0.0, 90.0), "line"),)))
    Traceback (most recent call last):
    handbuilt.compile.SpecError: bank 'a': channel 3 of conv2d1 is named twice
    """
    names = [b.name for b in spec.banks]
    for n in set(names):
        if names.count(n) > 1:
            raise SpecError(f"bank {n!r} is declared twice")
    owner: dict[tuple[str, int], str] = {}
    for b in spec.banks:
        if b.kind not in KINDS:
            raise SpecError(f"bank {b.name!r}: kind {b.kind!r} is not one of {', '.join(map(repr, KINDS))}")
        try:
            graph.node(b.layer)
            graph.node(b.branch)
        except KeyError as e:
            raise SpecError(f"bank {b.name!r}: {e}") from None
        if graph.INCEPTION_V1.pre_relu_of(b.branch) is None:
            raise SpecError(f"bank {b.name!r}: branch {b.branch!r} is not computed by a convolution")
        if b.kind == "contrast":
            if b.orientations is not None:
                raise SpecError(f"bank {b.name!r}: a contrast bank has no orientations (give None)")
        elif b.orientations is None or len(b.orientations) != len(b.channels) or not all(
            np.isfinite(b.orientations)
        ):
            if b.orientations is not None and len(b.orientations) == len(b.channels):
                raise SpecError(f"bank {b.name!r}: orientations must be finite degrees, got {list(b.orientations)}")
            n_or = "no" if b.orientations is None else len(b.orientations)
            raise SpecError(
                f"bank {b.name!r}: {n_or} orientations for {len(b.channels)} channels "
                "(one orientation per channel)"
            )
        if b.fwhm is not None and (len(b.fwhm) != len(b.channels) or not all(0 < w <= 360 for w in b.fwhm)):
            raise SpecError(
                f"bank {b.name!r}: fwhm needs one width in (0, 360] degrees per channel "
                f"({len(b.channels)}), got {list(b.fwhm)}"
            )
        if b.phases is not None and len(b.phases) != len(b.channels):
            raise SpecError(f"bank {b.name!r}: {len(b.phases)} phases for {len(b.channels)} channels (one per channel)")
        for c in b.channels:
            try:
                branch, _ = graph.branch_of(b.layer, c)
            except IndexError as e:
                raise SpecError(f"bank {b.name!r}: {e}") from None
            if branch != b.branch:
                raise SpecError(
                    f"bank {b.name!r}: channel {c} of {b.layer} is computed by {branch}, "
                    f"not by the bank's branch {b.branch}"
                )
            key = (b.layer, c)
            if key in owner:
                where = "" if owner[key] == b.name else f" (also in bank {owner[key]!r})"
                raise SpecError(f"bank {b.name!r}: channel {c} of {b.layer} is named twice{where}")
            owner[key] = b.name
    computed: dict[str, str] = {}
    tiled: dict[str, set[str]] = {}
    for r in spec.rules:
        if isinstance(r, Normalize):
            _check_normalize(spec, r, owner)
            continue
        for d in _dsts(r):
            try:
                spec.bank(d)
            except KeyError as e:
                raise SpecError(f"rule {_rule_name(r)}: {e.args[0]}") from None
            if d in computed and not (isinstance(r, Tile) and d in tiled and r.src not in tiled[d]):
                raise SpecError(f"rule {_rule_name(r)}: bank {d!r} is already computed by {computed[d]}")
            computed.setdefault(d, _rule_name(r))
            if isinstance(r, Tile):  # several Tile rules may add up in one bank, one per source
                tiled.setdefault(d, set()).add(r.src)
        src = getattr(r, "src", None)
        if src is not None:
            try:
                sb = spec.bank(src)
            except KeyError as e:
                raise SpecError(f"rule {_rule_name(r)}: {e.args[0]}") from None
            for d in _dsts(r):
                db = spec.bank(d)
                try:
                    _source_index(sb, sb.channels[0], _conv_of(db))
                except SpecError as e:
                    raise SpecError(f"rule {_rule_name(r)}: {e}") from None
        if isinstance(r, Gabor) and graph.node(_conv_of(spec.bank(r.dst))).inputs[0] != graph.INPUT:
            raise SpecError(f"rule {_rule_name(r)}: Gabor filters read the image; {r.dst!r} is not in conv2d0")
        if isinstance(r, Gabor) and spec.bank(r.dst).phases is None:
            raise SpecError(f"rule {_rule_name(r)}: bank {r.dst!r} needs phases for Gabor filters")
        if isinstance(r, PoolPhases) and spec.bank(r.src).phases is None:
            raise SpecError(f"rule {_rule_name(r)}: source bank {r.src!r} has no phases to pool")
        if isinstance(r, Tile) and isinstance(r.path, Arc) and spec.bank(r.dst[0]).kind != "curve":
            raise SpecError(f"rule {_rule_name(r)}: an Arc path builds curve units, but {r.dst[0]!r} holds lines")
        if isinstance(r, Tile) and isinstance(r.path, Segment):
            for d in r.dst:
                if spec.bank(d).kind != "line":
                    raise SpecError(f"rule {_rule_name(r)}: a Segment path builds line units, but {d!r} holds curves")
        if isinstance(r, Tile) and isinstance(r.tuning, Tolerance):
            for d in r.dst:
                db = spec.bank(d)
                if r.tuning.by_width is not None and db.fwhm is None:
                    raise SpecError(f"rule {_rule_name(r)}: a tolerance by width needs the published widths of {d!r}")
                for ch, side, share in r.tuning.leans:
                    if ch not in db.channels or side not in (-1, 0, 1) or not 0.0 <= share <= 1.0:
                        raise SpecError(
                            f"rule {_rule_name(r)}: lean ({ch}, {side}, {share}) needs a channel of {d!r} "
                            f"({', '.join(map(str, db.channels))}), a side in -1, 0, 1 and a share in 0..1")
        oriented = (Tile, PoolPhases, Relay)
        if isinstance(r, oriented) and spec.bank(r.src).kind == "contrast":
            raise SpecError(f"rule {_rule_name(r)}: source bank {r.src!r} has no orientations to tile or relay")
        if isinstance(r, oriented + (Gabor,)) and any(spec.bank(d).kind == "contrast" for d in _dsts(r)):
            raise SpecError(f"rule {_rule_name(r)}: contrast banks are computed by PoolEnergy")
        if isinstance(r, PoolEnergy) and spec.bank(r.dst).kind != "contrast":
            raise SpecError(f"rule {_rule_name(r)}: PoolEnergy computes orientation-blind units: {r.dst!r} must be kind 'contrast'")
        if isinstance(r, Relay):
            sb = spec.bank(r.src)
            if sb.kind != spec.bank(r.dst).kind:
                raise SpecError(f"rule {_rule_name(r)}: relays {sb.kind} units into {spec.bank(r.dst).kind} units")
            P = sb.period
            for o in spec.bank(r.dst).orientations:
                if not any(abs((o - so + P / 2) % P - P / 2) < 1e-6 for so in sb.orientations):
                    raise SpecError(
                        f"rule {_rule_name(r)}: no unit of {r.src!r} has orientation {o % P:g} to relay "
                        f"(it has {', '.join(f'{x:g}' for x in sb.orientations)})"
                    )
    for b in spec.banks:
        if b.name not in computed:
            raise SpecError(f"bank {b.name!r} has no rule computing it (each bank needs exactly one)")


def _check_normalize(spec: Spec, r: Normalize, owner: dict[tuple[str, int], str]) -> None:
    try:
        bank, by = spec.bank(r.bank), spec.bank(r.by)
    except KeyError as e:
        raise SpecError(f"rule {_rule_name(r)}: {e.args[0]}") from None
    if bank.branch != by.branch:
        raise SpecError(f"rule {_rule_name(r)}: {r.bank!r} ({bank.branch}) and {r.by!r} ({by.branch}) must share a layer")
    lrn = [n for n in graph.NODES if isinstance(n.kind, ops.LRN) and n.inputs[0] == bank.branch]
    if not lrn:
        raise SpecError(f"rule {_rule_name(r)}: no LRN follows {bank.branch} (LRNs follow conv2d0's max-pool and conv2d2)")
    radius = ops.LRN_DEPTH_RADIUS
    by_ch = {graph.branch_of(by.layer, c)[1] for c in by.channels}
    for c in bank.channels:
        bc = graph.branch_of(bank.layer, c)[1]
        window = range(bc - radius, bc + radius + 1)
        divisors = [w for w in window if w in by_ch]
        others = [w for w in window if w != bc and (bank.layer, w) in owner and owner[(bank.layer, w)] != r.by]
        if len(divisors) != 1 or others:
            found = f"{len(divisors)} units of {r.by!r}" + (f" ({', '.join(map(str, divisors))})" if divisors else "")
            extra = f" and other units {', '.join(f'{w} ({owner[(bank.layer, w)]})' for w in others)}" if others else ""
            raise SpecError(
                f"rule {_rule_name(r)}: the LRN window of {bank.layer}:{c} (channels {bc - radius}..{bc + radius}) "
                f"holds {found}{extra}; it needs exactly one unit of {r.by!r} and nothing else"
            )


def _source_index(src: Bank, channel: int, dst_conv: str) -> int:
    """Input channel of convolution `dst_conv` that carries `channel` of bank `src`.

    The source may reach the convolution through ReLUs, max-pools, LRNs and concatenations.
    """
    branch, ch = graph.branch_of(src.layer, channel)
    tensor = graph.node(dst_conv).inputs[0]
    seen = [tensor]
    while tensor != branch:
        n = graph.node(tensor)
        for b, off, _ in graph.branches(tensor) if len(n.inputs) > 1 else ():
            if b == branch:
                return off + ch
        if not n.kind.keeps_channels:
            raise SpecError(
                f"bank {src.name!r} ({branch}) does not feed {dst_conv}, which reads {' <- '.join(seen)}"
            )
        tensor = n.inputs[0]
        seen.append(tensor)
    return ch


# --- writing weights ---------------------------------------------------------


def _gabor_kernels(rule: Gabor, bank: Bank, k: int) -> np.ndarray:
    """[units, 3, k, k] Gabor kernels on input pixels."""
    r = np.arange(k) - k // 2
    dy, dx = np.meshgrid(r, r, indexing="ij")
    c, s = _cos_sin(np.array(bank.orientations))
    out = np.zeros((len(bank.channels), 3, k, k))
    for u in range(len(bank.channels)):
        t = dx * c[u] + dy * s[u]  # along the line
        n = -dx * s[u] + dy * c[u]  # across it
        env = np.exp(-0.5 * (t / rule.sigma_along) ** 2 - 0.5 * (n / rule.sigma_across) ** 2)
        carrier = np.cos(2 * math.pi * n / rule.wavelength + math.radians(bank.phases[u]))
        kern = env * carrier
        kern = kern - env * (kern.sum() / env.sum())  # no DC: uniform images give 0
        kern = kern / np.abs(kern).sum()
        out[u] = rule.gain * np.asarray(rule.luma)[:, None, None] * kern[None]
    return out


def _tile_kernels(rule: Tile, src: Bank, dst: Bank, k: int, stride: int) -> np.ndarray:
    """[dst units, src units, k, k]: the rule's template rotated to each dst orientation."""
    r = (np.arange(k) - k // 2) * float(stride)
    gy, gx = np.meshgrid(r, r, indexing="ij")
    src_ori = np.asarray(src.orientations)
    out = np.zeros((len(dst.channels), len(src.channels), k, k))
    for u, theta in enumerate(dst.orientations):
        factor = 1.0  # how much broader than the template the unit is published
        if rule.reference_fwhm is not None and dst.fwhm is not None:
            factor = dst.fwhm[u] / rule.reference_fwhm
        path, spread = rule.path, rule.spread * factor**rule.spread_stretch
        if isinstance(path, Arc) and rule.radius_stretch:
            path = Arc(path.radius * factor**rule.radius_stretch, path.length)
        qx, qy, tangent = path.sample(rule.samples)
        # +1 where the path has turned one way since its middle, -1 the other way, 0 at the middle
        # (and all along a straight path): a Tolerance tells a tighter curve from a straighter one by it.
        turn = tangent - tangent[len(tangent) // 2]
        side = np.where(np.abs(turn) < 1e-9, 0.0, np.sign(turn))
        c, s = _cos_sin(theta)
        px = qx * c - qy * s
        py = qx * s + qy * c
        tang = theta + tangent
        expected = tang if src.kind == "line" else tang - 90.0
        # [samples, ky, kx]: how much each grid cell sees each path sample
        near = np.exp(-0.5 * ((gx[None] - px[:, None, None]) ** 2 + (gy[None] - py[:, None, None]) ** 2) / spread**2)
        # [src units, samples]: how well each source orientation fits the path there
        tuning = rule.tuning
        if isinstance(tuning, Tolerance) and (tuning.by_width is not None or tuning.leans):
            # per unit: its tolerance from its published width, its lean if it has one
            tuning = tuning.for_unit(dst.channels[u], None if dst.fwhm is None else dst.fwhm[u])
        elif factor != 1.0:
            tuning = tuning.stretched(factor, rule.balanced)
        delta = src_ori[:, None] - expected[None, :]
        if isinstance(tuning, Tolerance):  # signed by the side of the path: which way is a tighter curve
            fit = tuning(delta, src.period, side=side[None, :])
        else:
            fit = tuning(delta, src.period)
        w = np.einsum("km,mij->kij", fit, near) / rule.samples
        pos = w[w > 0].sum()
        out[u] = w * (rule.gain / pos) if pos > 0 else w
    return out


def _find(orientations: np.ndarray, o: float, period: float) -> int:
    """Index of the unit with orientation `o` (mod period); check_spec made sure it exists."""
    d = np.abs((orientations - o + period / 2) % period - period / 2)
    return int(np.argmin(d))


def _write(sd: dict, conv: str, out_idx: list[int], in_idx: list[int], w: np.ndarray, bias: float) -> None:
    W = sd[f"{graph.node(conv).param}.weight"]
    B = sd[f"{graph.node(conv).param}.bias"]
    t = torch.as_tensor(w, dtype=torch.float32)
    for i, o in enumerate(out_idx):
        W[o, in_idx] = t[i]
        B[o] = bias


def _branch_channels(bank: Bank) -> list[int]:
    return [graph.branch_of(bank.layer, c)[1] for c in bank.channels]


def _compile_rule(sd: dict, spec: Spec, rule: Rule) -> None:
    if isinstance(rule, Gabor):
        dst = spec.bank(rule.dst)
        conv = _conv_of(dst)
        k = graph.node(conv).kernel[0]
        _write(sd, conv, _branch_channels(dst), [0, 1, 2], _gabor_kernels(rule, dst, k), rule.bias)
        return
    if isinstance(rule, (PoolPhases, Relay)):
        src, dst = spec.bank(rule.src), spec.bank(rule.dst)
        conv = _conv_of(dst)
        in_idx = [_source_index(src, c, conv) for c in src.channels]
        so = np.asarray(src.orientations)
        w = np.zeros((len(dst.channels), len(src.channels), 1, 1))
        for u, o in enumerate(dst.orientations):
            if isinstance(rule, Relay) and rule.tuning is None:
                w[u, _find(so, o, src.period), 0, 0] = rule.gain
            elif isinstance(rule, Relay):
                w[u, :, 0, 0] = rule.gain * rule.tuning(so - o, src.period)
            else:
                fit = rule.tuning(so - o, src.period)
                w[u, :, 0, 0] = fit * (rule.gain / fit[fit > 0].sum())
        _write(sd, conv, _branch_channels(dst), in_idx, w, rule.bias)
        return
    if isinstance(rule, Normalize):
        return  # a layout constraint, checked in check_spec
    if isinstance(rule, PoolEnergy):
        src, dst = spec.bank(rule.src), spec.bank(rule.dst)
        conv = _conv_of(dst)
        k = graph.node(conv).kernel[0]
        stride = graph.receptive_field(graph.node(conv).inputs[0]).stride
        r = (np.arange(k) - k // 2) * float(stride)
        g = np.exp(-0.5 * (r[:, None] ** 2 + r[None, :] ** 2) / rule.spread**2)
        g = g / (g.sum() * len(src.channels))
        w = np.tile(rule.gain * g, (len(dst.channels), len(src.channels), 1, 1))
        in_idx = [_source_index(src, c, conv) for c in src.channels]
        _write(sd, conv, _branch_channels(dst), in_idx, w, rule.bias)
        return
    if isinstance(rule, Tile):
        src = spec.bank(rule.src)
        for d in rule.dst:
            dst = spec.bank(d)
            conv = _conv_of(dst)
            node = graph.node(conv)
            stride = graph.receptive_field(node.inputs[0]).stride
            in_idx = [_source_index(src, c, conv) for c in src.channels]
            w = _tile_kernels(rule, src, dst, node.kernel[0], stride)
            _write(sd, conv, _branch_channels(dst), in_idx, w, rule.bias)
        return
    raise SpecError(f"unknown rule type {type(rule).__name__}")  # pragma: no cover


# --- dead units --------------------------------------------------------------


def upper_bounds(sd: Mapping[str, torch.Tensor], until: str) -> dict[str, torch.Tensor]:
    """Per-channel upper bound of every tensor up to `until`, for any input in Lucid's range
    (`circuits.core.bounds`: each op's interval arithmetic from the op table)."""
    def params(name: str) -> SimpleNamespace:
        return SimpleNamespace(weight=sd[f"{name}.weight"], bias=sd[f"{name}.bias"])

    try:
        bounds = graph_bounds(graph.INCEPTION_V1, params, until, INPUT_RANGE)
    except NotImplementedError as e:  # pragma: no cover - the hand-built network ends before the classifier
        raise SpecError(f"bounds do not go as far as {until}: {e}") from None
    return {name: hi for name, (_, hi) in bounds.items()}


def _check_alive(sd: dict, spec: Spec) -> None:
    last = max((_conv_of(b) for b in spec.banks), key=graph.index)
    ub = upper_bounds(sd, last)
    for r in spec.rules:
        for d in _dsts(r):
            bank = spec.bank(d)
            conv = _conv_of(bank)
            for c, bc in zip(bank.channels, _branch_channels(bank)):
                if ub[conv][bc] <= 0:
                    raise SpecError(
                        f"rule {_rule_name(r)} makes unit {bank.layer}:{c} of bank {d!r} dead: with bias "
                        f"{float(sd[graph.node(conv).param + '.bias'][bc]):g} its input can never exceed 0 "
                        f"(upper bound {float(ub[conv][bc]):.3g} over all images); lower the threshold or raise the gain"
                    )


def compile_spec(spec: Spec) -> dict[str, torch.Tensor]:
    """The state dict of `spec`: zero everywhere except the units its rules compute.

    >>> from handbuilt import spec
    >>> sd = compile_spec(spec.SPEC)
    >>> float(sd["mixed4a_1x1_pre_relu_conv.weight"].abs().sum())
    0.0
    """
    check_spec(spec)
    sd = {k: torch.zeros(s) for k, s in graph.parameter_shapes().items()}
    for rule in spec.rules:
        _compile_rule(sd, spec, rule)
    _check_alive(sd, spec)
    return sd
