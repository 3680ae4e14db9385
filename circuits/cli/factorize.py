"""`circuits factorize`: NMF of a layer's post-ReLU activations over one image or many.

Example:
    $ circuits factorize mixed3b --image skimage:chelsea --rank 4 --json cat.json --plot cat.png
    $ circuits factorize mixed4 --images skimage --rank 6 --weights nsfwjs-inception-v3 --json all.json
    $ circuits trace-curve --factor cat.json:0 --image skimage:chelsea --out trace.png
"""

from __future__ import annotations

import argparse

from circuits.cli.dataset import IMAGE_SUFFIXES
from circuits.cli.device import add_device
from circuits.cli.limits import GRAD_SIDE, SCAN_SIDE, bounded_int
from circuits.cli.paths import In, Out, declare_io
from circuits.cli.options import add_weights, check_outputs, load_network, network_graph, nonnegative_int, positive_int


def register(sub) -> None:
    p = sub.add_parser("factorize", help="non-negative matrix factorization of a layer's activations (groups of neurons)")
    p.add_argument("layer", metavar="LAYER", help="a post-ReLU layer, e.g. mixed3b (InceptionV3: mixed2)")
    p.add_argument("--image", action="append", default=[], metavar="FILE|skimage:NAME",
                   help="an image (repeat for several; factored jointly)")
    p.add_argument("--images", metavar="DIR|skimage", help="every image of a folder, or skimage's photographs, jointly")
    p.add_argument("--rank", type=bounded_int(1024, "factors: NMF keeps positions x K and K x channels"), required=True, help="number of factors K")
    add_weights(p)
    p.add_argument("--size", type=SCAN_SIDE, default=None,
                   help="resize each image's shorter side to this (default the network's size: 224, InceptionV3 299)")
    p.add_argument("--limit", type=positive_int, help="use only the first N images of --images")
    p.add_argument("--json", help="write the factors here (JSON; a factor is then FILE.json:K for trace-curve)")
    p.add_argument("--plot", help="write the figure here (PNG): spatial maps and feature visualizations")
    p.add_argument("--vis-steps", type=nonnegative_int, default=128, metavar="N",
                   help="render each factor's direction for N steps in the figure (default 128; 0: none)")
    p.add_argument("--vis-size", type=GRAD_SIDE, default=96, help="side of each rendering (default 96)")
    p.add_argument("--max-iter", type=positive_int, default=500, help="NMF iterations at most (default 500)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    add_device(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_factorize)
    declare_io(p, outputs=[Out("--json", (".json",)), Out("--plot", (".png",))],
               inputs=[In("--image"), In("--images", "folder", IMAGE_SUFFIXES), In("--weights", "weights")])


def _inputs(args) -> tuple[list[str], list]:
    from circuits.cli.dataset import _image
    from circuits.dataset.sources import open_source

    names, images = [], []
    for spec in args.image:
        names.append(spec)
        images.append(_image(spec, args.size))
    if args.images:
        src = open_source(args.images, args.size)
        n = len(src) if args.limit is None else min(args.limit, len(src))
        for i in range(n):
            names.append(src.names[i])
            images.append(src.read(i))
    return names, images


def cmd_factorize(args: argparse.Namespace) -> int:
    from circuits.analysis.factorization import factorize, visualize_factors
    from circuits.core.files import write_json

    check_outputs([("--json", args.json, (".json",)), ("--plot", args.plot, (".png",))])
    if not args.image and not args.images:
        raise ValueError("give the images to factor: --image FILE|skimage:NAME (repeatable) and/or --images DIR|skimage")
    if args.limit and not args.images:
        raise ValueError("--limit applies to --images only")
    g = network_graph(args.weights)
    g.node(args.layer)  # an unknown layer fails here, before the model loads
    if args.size is None:
        args.size = g.default_input_size
    names, images = _inputs(args)
    model = load_network(args.weights, args.device).eval()
    fact = factorize(model, args.layer, images, args.rank, names, seed=args.seed, max_iter=args.max_iter)
    fact.meta = {"weights": args.weights, "image_size": args.size}
    print(f"NMF of {args.layer} ({fact.network}, weights {args.weights}) over {len(names)} image(s), "
          f"{fact.spatial.shape[0]} positions x {fact.directions.shape[1]} channels, rank {fact.rank}")
    print(f"relative error ||A - S D|| / ||A|| = {fact.relative_error:.4f} after {fact.n_iter} iterations")
    share = fact.spatial.sum(0) / max(float(fact.spatial.sum()), 1e-300)
    for k in range(fact.rank):
        top = ", ".join(f"{c} ({w:.2f})" for c, w in fact.top_channels(k, 5))
        print(f"factor {k}: share {100 * share[k]:.1f}%  channels {top}")
    vis = None
    if args.plot and args.vis_steps:
        vis = visualize_factors(model, fact, size=args.vis_size, steps=args.vis_steps, seed=args.seed,
                                progress=not args.quiet)
    if args.plot:  # the figure first: it is the output more likely to fail, and then nothing is written
        from circuits.plots.factorization import factorization_figure

        factorization_figure(images, fact, args.plot, vis=vis)
    if args.json:
        write_json(args.json, fact.to_json(), indent=None)
    for p in (args.json, args.plot):
        if p:
            print(f"wrote      {p}")
    return 0
