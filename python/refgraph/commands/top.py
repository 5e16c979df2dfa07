"""``refgraph top SNAP``: the types that hold the most memory, with counts, shallow and
retained bytes."""

from __future__ import annotations

from ._common import Progress, headline, open_snapshot, print_json, sorted_types, types_table


def run(args):
    progress = Progress.for_args(args)
    snap = open_snapshot(args.snapshot, progress)
    retained = args.sort == "retained"
    try:
        rows = snap.typestats(retained=retained, progress=progress)
    finally:
        progress.done()
    rows = sorted_types(rows, args.sort, args.limit)
    if args.json:
        print_json(
            {
                "snapshot": args.snapshot,
                "info": snap.info(),
                "types": [r._asdict() for r in rows],
            }
        )
        return 0
    print(headline(args.snapshot, snap))
    print()
    print(types_table(rows, retained))
    return 0


def register(sub):
    p = sub.add_parser(
        "top",
        help="types holding the most memory (count, shallow and retained bytes)",
        description=__doc__,
    )
    p.add_argument("snapshot", help="a snapshot file (refgraph.snapshot().save(path))")
    p.add_argument("-n", "--limit", type=int, default=20, help="rows to show (default 20)")
    p.add_argument(
        "--sort",
        choices=["retained", "shallow", "count"],
        default="retained",
        help="order of the rows (retained bytes need the dominator tree: slower)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
