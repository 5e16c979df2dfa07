"""``refgraph graph SNAP TYPE -o x.svg``: draw what refers to objects of a type (or to one
object), as show_backrefs does, from a snapshot. SVG, PNG or DOT; no Graphviz needed."""

from __future__ import annotations

from ..present import own_format
from ._common import Failure, Progress, open_snapshot, parse_target, print_json


def run(args):
    try:
        own_format(args.output)
    except ValueError as e:
        raise Failure(str(e)) from None
    progress = Progress.for_args(args)
    snap = open_snapshot(args.snapshot, progress)
    target = parse_target(args.target)
    try:
        progress.stage(f"drawing {args.output}")
        by_address = isinstance(target, int)
        nodes = snap.graph(
            None if by_address else target,
            args.output,
            address=target if by_address else None,
            count=args.count,
            backrefs=not args.refs,
            max_depth=args.depth,
            too_many=args.too_many,
        )
    except LookupError:
        raise Failure(f"{args.snapshot}: no object {args.target!r}") from None
    except OSError as e:
        raise Failure(f"{args.output}: {e.strerror or e}") from None
    finally:
        progress.done()
    if args.json:
        print_json({"output": args.output, "nodes": nodes})
    else:
        print(f"Graph written to {args.output} ({nodes} nodes)")
    return 0


def register(sub):
    p = sub.add_parser(
        "graph", help="draw what refers to objects of a type (SVG/PNG/DOT)", description=__doc__
    )
    p.add_argument("snapshot", help="a snapshot file")
    p.add_argument("target", help="a type name or an address (0x7f…)")
    p.add_argument("-o", "--output", required=True, help="output file: .svg, .png or .dot")
    p.add_argument("--count", type=int, default=1, help="objects of the type to start from")
    p.add_argument("--depth", type=int, default=5, help="steps to follow (default 5)")
    p.add_argument("--too-many", type=int, default=10, help="edges drawn per object")
    p.add_argument("--refs", action="store_true", help="draw what they refer to instead")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)
