"""``refgraph info SNAP``: what a snapshot holds and where it was taken."""

from __future__ import annotations

import datetime

from ._common import Progress, human_bytes, open_snapshot, print_json

#: What each string policy kept, as ``refgraph info`` says it.
STRING_POLICIES = {
    "names": "names (names in full; other strings as length and fingerprint)",
    "all": "all (the first 40 characters of every string)",
    "none": "none (no string content)",
}


def run(args):
    snap = open_snapshot(args.snapshot, Progress.for_args(args))
    i = snap.info()
    if args.json:
        print_json(dict(i, snapshot=args.snapshot))
        return 0
    when = datetime.datetime.fromtimestamp(i["created"]).strftime("%Y-%m-%d %H:%M:%S")
    rows = [
        ("snapshot", args.snapshot),
        ("taken", f"{when}, pid {i['pid']}, Python {i['python']}"),
        ("objects", f"{i['objects']:,} ({i['tracked']:,} tracked by the gc)"),
        ("references", f"{i['references']:,}"),
        ("types", f"{i['types']:,}"),
        ("bytes", f"{human_bytes(i['bytes'])} ({i['bytes']:,})"),
        ("roots", f"{i['modules']:,} modules, {i['thread_frames']:,} thread frames"),
        ("with __del__", f"{i['with_del']:,}"),
        ("garbage left out", "yes" if i["collected"] else "no"),
        ("untracked objects", "included" if i["untracked"] else "left out"),
        ("strings", STRING_POLICIES.get(i["strings"], i["strings"])),
    ]
    rows += [("problem", p) for p in i.get("problems", ())]
    for k, v in rows:
        print(f"{k + ':':20} {v}")
    return 0


def register(sub):
    p = sub.add_parser("info", help="what a snapshot holds", description=__doc__)
    p.add_argument("snapshot", help="a snapshot file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)
