"""``refgraph paths SNAP TYPE``: what keeps the objects of a type alive — the shortest paths
from roots (modules, thread stacks, objects nothing refers to), grouped by shape. Each group
is written as a Python expression (``__main__.bus._listeners[...].__self__``), then one
example path step by step with the name of each reference."""

from __future__ import annotations

from ._common import Failure, Progress, human_bytes, open_snapshot, parse_target, print_json


def run(args):
    progress = Progress.for_args(args)
    snap = open_snapshot(args.snapshot, progress)
    target = parse_target(args.target)
    try:
        progress.stage("finding retention paths")
        if isinstance(target, int):
            found = snap.paths(address=target)
        else:
            found = snap.paths(target)
    finally:
        progress.done()
    if found.targets == 0:
        if isinstance(target, int):
            what = f"object at {hex(target)}"
        else:
            what = f"objects of type {target!r}"
        raise Failure(f"{args.snapshot}: no {what}")
    groups = found.groups[: args.limit]
    if args.json:
        print_json(
            {
                "target": args.target,
                "targets": found.targets,
                "unreachable": found.unreachable,
                "groups": [
                    {
                        "count": g.count,
                        "bytes": g.bytes,
                        "shape": g.shape,
                        "expression": g.expression,
                        "example_expression": g.example_expression,
                        "example": [
                            {"address": a, "object": d, "edge": e}
                            for (a, d), e in zip(g.example, [*g.edges, None], strict=True)
                        ],
                    }
                    for g in groups
                ],
            }
        )
        return 0
    shapes = len(found.groups)
    print(
        f"{found.targets:,} {args.target} objects; {found.targets - found.unreachable:,} "
        f"reached from roots along {shapes} path shape{'s' if shapes != 1 else ''}"
    )
    for g in groups:
        print()
        print(f"{g.count:,} objects, {human_bytes(g.bytes)}: {g.expression}")
        if g.example_expression != g.expression:
            print(f"  e.g. {g.example_expression}")
        for i, (addr, desc) in enumerate(g.example):
            arrow = "   " if i == 0 else "-> "
            edge = g.edges[i - 1] if i > 0 and i - 1 < len(g.edges) else None
            via = f"  {edge}" if edge else ""
            print(f"  {arrow}{desc}  [0x{addr:x}]{via}")
    if found.unreachable:
        print()
        print(
            f"{found.unreachable:,} objects are reached from no root: held by cycles, or by "
            "references the garbage collector cannot see (C extensions)"
        )
    if len(found.groups) > len(groups):
        print()
        print(f"({len(found.groups) - len(groups)} more shapes; use --limit)")
    return 0


def register(sub):
    p = sub.add_parser(
        "paths", help="what keeps objects of a type alive (paths to roots)", description=__doc__
    )
    p.add_argument("snapshot", help="a snapshot file")
    p.add_argument("target", help="a type name (Record or app.Record) or an address (0x7f…)")
    p.add_argument("-n", "--limit", type=int, default=5, help="path shapes to show (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)
