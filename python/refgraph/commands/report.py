"""``refgraph report SNAP [--base OLD] [-o report.html]``: a one-file HTML report of a snapshot.

The page shows a summary, the types (sortable, filtered as you type; with ``--base``, the change
since an older snapshot of the same process), the dominator tree by retained size, and who keeps
the biggest objects alive, with the names of the references. It opens from a file with no
network and loads nothing from anywhere."""

from __future__ import annotations

import os

from ..report import snapshot_page, write_page
from ._common import Failure, Progress, human_bytes, open_snapshot


def default_output(snap_path):
    base = os.path.basename(snap_path)
    stem = base[: -len(".rgsnap")] if base.endswith(".rgsnap") else base
    return stem + ".html"


def run(args):
    progress = Progress.for_args(args)
    snap = open_snapshot(args.snapshot, progress)
    base = open_snapshot(args.base, progress) if args.base else None
    out = args.output or default_output(args.snapshot)
    source = {"snapshot": os.path.basename(args.snapshot)}
    if args.base:
        source["base"] = os.path.basename(args.base)
    try:
        text = snapshot_page(snap, base, source=source, progress=progress)
    finally:
        progress.done()
    try:
        size = write_page(out, text)
    except OSError as e:
        raise Failure(f"{out}: {e.strerror or e}") from None
    print(f"wrote {out} ({human_bytes(size)})")
    return 0


def register(sub):
    p = sub.add_parser(
        "report", help="write a one-file HTML report of a snapshot", description=__doc__
    )
    p.add_argument("snapshot", help="the snapshot file")
    p.add_argument("--base", metavar="OLD", help="an older snapshot to compare with")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="the HTML file to write (default: the snapshot's name with .html, here)",
    )
    p.set_defaults(func=run)
