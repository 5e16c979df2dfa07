"""``refgraph attach PID``: look inside a running CPython process (3.10-3.13 through a pending
call injected with ptrace, 3.14+ through sys.remote_exec) without changing its code or
restarting it: a snapshot is taken inside it at a safe point between two bytecodes of its main
thread.

Prints the most common types with their counts and bytes; ``-o FILE.rgsnap`` saves the
snapshot for every other command (top, diff, paths, graph, info); ``--leaks`` takes several
snapshots over time and shows what keeps growing."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time

from .._files import write_private
from ..attach import inject, preflight
from ..attach.preflight import AttachError
from ..snapshot import from_bytes
from ._common import (
    Failure,
    Progress,
    headline,
    human_bytes,
    print_json,
    sorted_types,
    types_table,
)


def duration(text):
    """``30s``, ``2m``, ``500ms``, ``1h`` or a number of seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use 30s, 2m, 500ms)")
    value = float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    if value <= 0:
        raise argparse.ArgumentTypeError("a duration must be positive")
    return value


def _take(target, args, progress):
    session = inject.Session(
        target,
        timeout=args.timeout,
        collect=not args.no_collect,
        untracked=True,
        strings=args.strings,
    )
    try:
        return session.run(progress)
    except AttachError as e:
        raise Failure(str(e)) from None
    finally:
        progress.done()


def _rows(snap, sort, limit, progress=None):
    rows = snap.typestats(retained=sort == "retained", progress=progress)
    return sorted_types(rows, sort, limit)


def _print_top(args, snap, attached, progress=None):
    try:
        rows = _rows(snap, args.sort, args.limit, progress)
    finally:
        if progress is not None:
            progress.done()
    name = args.output or f"pid {args.pid}"
    if args.json:
        print_json(
            {
                "pid": args.pid,
                "snapshot": args.output,
                "info": snap.info(),
                "seconds": round(attached.seconds, 3),
                "seconds_in_target": round(attached.status.get("seconds", 0.0), 3),
                "types": [r._asdict() for r in rows],
            }
        )
        return
    print(headline(name, snap))
    print(
        f"attached in {attached.seconds:.2f} s (the target spent "
        f"{attached.status.get('seconds', 0.0):.2f} s taking the snapshot)"
    )
    print()
    retained = args.sort == "retained"
    print(types_table(rows, retained))


def _leaks(args, target, progress):
    outdir = args.output
    keep = outdir is not None
    if keep:
        os.makedirs(outdir, exist_ok=True)
    else:
        outdir = tempfile.mkdtemp(prefix="refgraph-leaks-")
    paths = []
    try:
        for i in range(args.rounds):
            if i:
                if progress.enabled:
                    sys.stderr.write(f"next snapshot in {args.every:g} s…\n")
                time.sleep(args.every)
            attached = _take(target, args, progress)
            path = os.path.join(outdir, f"refgraph-{args.pid}-{i + 1}.rgsnap")
            write_private(path, attached.data)
            paths.append(path)
            if not args.json:
                snap = from_bytes(attached.data)
                i_ = snap.info()
                print(
                    f"snapshot {i + 1}/{args.rounds}: {i_['objects']:,} objects, "
                    f"{human_bytes(i_['bytes'])}" + (f" -> {path}" if keep else "")
                )
        return _report_leaks(args, paths, progress)
    finally:
        if not keep:
            for p in paths:
                try:
                    os.unlink(p)
                except OSError:
                    pass
            try:
                os.rmdir(outdir)
            except OSError:
                pass


def _report_leaks(args, paths, progress):
    """Leak suspects over the snapshots taken (as ``refgraph leaks`` prints them)."""
    from ..leaks import leaks_between
    from ._common import open_snapshot

    snaps = [open_snapshot(p, progress) for p in paths]
    try:
        progress.stage("finding leak suspects")
        report = leaks_between(*snaps)
    finally:
        progress.done()
    report.suspects = report.suspects[: args.limit]
    if args.json:
        print_json(report.to_json())
    else:
        print()
        print(report)
    return 0


def run(args):
    progress = Progress.for_args(args)
    try:
        target = preflight.check(args.pid)
    except AttachError as e:
        raise Failure(str(e)) from None
    if args.leaks:
        if args.rounds < 2:
            raise Failure("--rounds must be at least 2")
        return _leaks(args, target, progress)
    attached = _take(target, args, progress)
    if args.output:
        try:
            write_private(args.output, attached.data)
        except OSError as e:
            raise Failure(f"{args.output}: {e.strerror or e}") from None
    try:
        progress.stage("reading the snapshot")
        snap = from_bytes(attached.data)
    finally:
        progress.done()
    _print_top(args, snap, attached, progress)
    return 0


def register(sub):
    p = sub.add_parser(
        "attach",
        help="snapshot a running CPython process (no code change, no restart)",
        description=__doc__,
    )
    p.add_argument("pid", type=int, help="process id of a CPython 3.10+ process")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="save the snapshot to FILE.rgsnap (with --leaks: a directory for every snapshot)",
    )
    p.add_argument(
        "--timeout",
        type=duration,
        default=10.0,
        help="how long to wait for the target to reach a safe point (default 10s)",
    )
    p.add_argument("-n", "--limit", type=int, default=20, help="rows to show (default 20)")
    p.add_argument(
        "--sort",
        choices=["count", "shallow", "retained"],
        default="count",
        help="order of the rows (default count; retained bytes take longer)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--strings",
        choices=["names", "all", "none"],
        default="names",
        help="what the snapshot keeps of the target's strings: names only (default; other "
        "strings as length and fingerprint), all (first characters), none",
    )
    p.add_argument(
        "--no-collect",
        action="store_true",
        help="do not run the target's garbage collector before the snapshot",
    )
    p.add_argument("--leaks", action="store_true", help="take --rounds snapshots --every interval")
    p.add_argument("--every", type=duration, default=30.0, help="interval of --leaks (default 30s)")
    p.add_argument("--rounds", type=int, default=4, help="snapshots --leaks takes (default 4)")
    p.set_defaults(func=run)
