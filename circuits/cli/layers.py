"""`circuits layers` and `circuits unit`: where things live in the graph."""

from __future__ import annotations

import json

from circuits.cli.options import add_weights, network_graph, positive_int, weights_name
from circuits.cli.paths import In, declare_io
from circuits.core.units import parse_unit


def register(sub) -> None:
    p = sub.add_parser("layers", help="print the layer table (channels, branch offsets, receptive fields)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--input-size", type=positive_int, default=None,
                   help="input side in pixels (default: the network's usual size, 224 or 299)")
    add_weights(p, help="whose network to describe: a weight source (e.g. nsfwjs-inception-v3 for InceptionV3); no weights are read")
    p.set_defaults(func=cmd_layers)
    declare_io(p, inputs=[In("--weights", "weights")])

    p = sub.add_parser("unit", help="print where a unit (layer:channel) lives")
    p.add_argument("unit", help="unit id, e.g. mixed3b:379")
    p.add_argument("--input-size", type=positive_int, default=None,
                   help="input side in pixels (default: the network's usual size, 224 or 299)")
    add_weights(p, help="whose network the unit is in: a weight source (e.g. nsfwjs-inception-v3); no weights are read")
    p.set_defaults(func=cmd_unit)
    declare_io(p, inputs=[In("--weights", "weights")])


def _network(args):
    g = network_graph(weights_name(args))
    size = args.input_size or g.default_input_size
    return g, size


def cmd_layers(args) -> int:
    g, size = _network(args)
    rows = g.layer_table(size)
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
    g, size = _network(args)
    u = parse_unit(args.unit, g)
    n = g.node(u.layer)
    rf = g.receptive_field(u.branch, size)
    cy, cx = u.centre(size)
    iy, ix = rf.centre_of(cy, cx)
    print(f"unit           {u.id} of {g.name}")
    print(f"layer          {u.layer} ({n.op}, {n.channels} channels)")
    print(f"branch         {u.branch} channel {u.branch_channel}")
    print(f"centre         ({cy}, {cx}) of {'x'.join(map(str, g.output_hw(u.layer, size)))} at {size} px")
    print(f"receptive field {rf.size} px, stride {rf.stride}, centred at input ({iy:g}, {ix:g})")
    return 0
