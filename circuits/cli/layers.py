"""`circuits layers` and `circuits unit`: where things live in the graph."""

from __future__ import annotations

import json

from circuits.cli.options import positive_int
from circuits.core import graph
from circuits.core.units import parse_unit


def register(sub) -> None:
    p = sub.add_parser("layers", help="print the layer table (channels, branch offsets, receptive fields)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--input-size", type=positive_int, default=224, help="input side in pixels (default 224)")
    p.set_defaults(func=cmd_layers)

    p = sub.add_parser("unit", help="print where a unit (layer:channel) lives")
    p.add_argument("unit", help="unit id, e.g. mixed3b:379")
    p.add_argument("--input-size", type=positive_int, default=224, help="input side in pixels (default 224)")
    p.set_defaults(func=cmd_unit)


def cmd_layers(args) -> int:
    rows = graph.layer_table(args.input_size)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    head = f"{'name':34} {'op':8} {'ch':>5} {'k/s':>5} {'concat':17} {'offset':>6} {'rf':>5} {'rf_str':>6} {'out':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        ks = f"{r['kernel']}/{r['stride']}" if r["kernel"] else ""
        out = "x".join(map(str, r["output_hw"]))
        print(
            f"{r['name']:34} {r['op']:8} {r['channels']:5d} {ks:>5} {r['concat'] or '':17} "
            f"{'' if r['offset'] is None else r['offset']:>6} {r['rf_size']:5d} {r['rf_stride']:6d} {out:>9}"
        )
    return 0


def cmd_unit(args) -> int:
    u = parse_unit(args.unit)
    n = graph.node(u.layer)
    rf = graph.receptive_field(u.branch, args.input_size)
    cy, cx = u.centre(args.input_size)
    iy, ix = rf.centre_of(cy, cx)
    print(f"unit           {u.id}")
    print(f"layer          {u.layer} ({n.op}, {n.channels} channels)")
    print(f"branch         {u.branch} channel {u.branch_channel}")
    print(f"centre         ({cy}, {cx}) of {'x'.join(map(str, graph.output_hw(u.layer, args.input_size)))}")
    print(f"receptive field {rf.size} px, stride {rf.stride}, centred at input ({iy:g}, {ix:g})")
    return 0
