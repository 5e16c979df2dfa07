"""``refgraph leaks OLD NEW [NEWER ...]``: leak suspects from snapshots of a running program.

The objects of the last snapshot that were not in the first are traced on its dominator tree
to the old object through which they are retained (the holder: ``__main__.bus._listeners``).
With three or more snapshots, only what grew steadily (new objects between the first two
snapshots and between the last two) is reported, not a one-off; with two, any growth is."""

from __future__ import annotations

from ..leaks import leaks_between
from ._common import Failure, Progress, open_snapshot, print_json


def run(args):
    paths = [args.old, args.new, *args.newer]
    if len(paths) > 65:
        raise Failure("at most 65 snapshots")
    progress = Progress.for_args(args)
    snaps = [open_snapshot(p, progress) for p in paths]
    pids = {s._facts()["pid"] for s in snaps}
    try:
        progress.stage("finding leak suspects")
        report = leaks_between(*snaps)
    finally:
        progress.done()
    report.suspects = report.suspects[: args.limit]
    if args.html:
        try:
            snaps[-1].to_html(
                args.html, base=snaps[0], suspects=report.to_json(), progress=progress
            )
        finally:
            progress.done()
    if args.json:
        print_json(report.to_json())
        return 0
    if len(pids) > 1:
        print("warning: the snapshots come from different processes; objects cannot match")
    print(" -> ".join(paths))
    print(report)
    return 0


def register(sub):
    p = sub.add_parser(
        "leaks",
        help="leak suspects: what grows between snapshots and what holds it",
        description=__doc__,
    )
    p.add_argument("old", help="the earliest snapshot")
    p.add_argument("new", help="a later snapshot")
    p.add_argument("newer", nargs="*", help="later snapshots, oldest first")
    p.add_argument("-n", "--limit", type=int, default=5, help="suspects to show (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write a one-file HTML report: the last snapshot, what grew since the first, "
        "and the suspects",
    )
    p.set_defaults(func=run)
