"""``refgraph diff OLD NEW``: what grew between two snapshots of the same process, by type.

Types are ordered by the memory their new objects own (retained bytes of the new objects no
other new object dominates), so the type that leaks comes before what its objects hold."""

from __future__ import annotations

from ._common import Progress, human_bytes, open_snapshot, print_json, signed, table


def run(args):
    progress = Progress.for_args(args)
    old = open_snapshot(args.old, progress)
    new = open_snapshot(args.new, progress)
    try:
        rows = new.diff(old, progress=progress)
    finally:
        progress.done()
    if not args.all:
        rows = [r for r in rows if r.count_delta > 0 or r.bytes_delta > 0 or r.new_objects_retained]
    rows = rows[: args.limit]
    if args.json:
        print_json(
            {
                "old": args.old,
                "new": args.new,
                "types": [
                    dict(r._asdict(), count_delta=r.count_delta, bytes_delta=r.bytes_delta)
                    for r in rows
                ],
            }
        )
        return 0
    o, n = old._facts(), new._facts()
    print(
        f"{args.old} -> {args.new}: {signed(n['objects'] - o['objects'], None)} objects, "
        f"{signed(n['bytes'] - o['bytes'])}"
    )
    print()
    if not rows:
        print("no type grew")
        return 0
    cells = [
        [
            r.name,
            f"{r.new_count:,}",
            signed(r.count_delta, None),
            human_bytes(r.new_bytes),
            signed(r.bytes_delta),
            f"{r.new_objects:,}",
            human_bytes(r.new_objects_retained),
        ]
        for r in rows
    ]
    print(
        table(
            cells,
            ["type", "count", "change", "bytes", "change", "new objects", "they own"],
            "<>>>>>>",
        )
    )
    return 0


def register(sub):
    p = sub.add_parser("diff", help="what grew between two snapshots, by type", description=__doc__)
    p.add_argument("old", help="the earlier snapshot")
    p.add_argument("new", help="the later snapshot")
    p.add_argument("-n", "--limit", type=int, default=20, help="rows to show (default 20)")
    p.add_argument("--all", action="store_true", help="also show types that shrank")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
