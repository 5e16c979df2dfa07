"""What the subcommands share: loading snapshots with one-line errors, progress on a
terminal, number formatting and JSON output."""

from __future__ import annotations

import datetime
import json
import sys

from .._refgraph import human_bytes
from ..snapshot import SnapshotError, load


class Failure(Exception):
    """A one-line error for the user; the command exits with status 1."""


def signed(n, fmt=human_bytes):
    text = fmt(n) if fmt is not None else f"{n:,}"
    return text if str(text).startswith("-") or n == 0 else f"+{text}"


class Progress:
    """A one-line progress display on stderr, only when stderr is a terminal: a stage's text
    (:meth:`stage`), or a bar when called as ``progress(stage, done, total)`` (the callables
    of :func:`refgraph.snapshot` and the :class:`~refgraph.Snapshot` methods)."""

    def __init__(self, enabled=None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.shown = False

    @classmethod
    def for_args(cls, args):
        """The display for a command's arguments: none with ``--json`` (nor when stderr is
        not a terminal)."""
        return cls(False if getattr(args, "json", False) else None)

    def stage(self, text):
        if self.enabled:
            sys.stderr.write(f"\r\x1b[K{text}…")
            sys.stderr.flush()
            self.shown = True

    def __call__(self, stage, done, total):
        if self.enabled:
            width = 30
            filled = int(width * done / total) if total else width
            pct = 100 * done // total if total else 100
            bar = "█" * filled + "·" * (width - filled)
            sys.stderr.write(f"\r\x1b[K{stage} {bar} {pct:3d}%")
            sys.stderr.flush()
            self.shown = True

    def done(self):
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False


def open_snapshot(path, progress=None):
    shown = None
    if progress is not None:
        progress.stage(f"loading {path}")

        def shown(_phase, done, total):
            progress(f"loading {path}", done, total)

    try:
        return load(path, progress=shown)
    except FileNotFoundError:
        raise Failure(f"{path}: no such file") from None
    except IsADirectoryError:
        raise Failure(f"{path}: is a directory") from None
    except OSError as e:
        raise Failure(f"{path}: {e.strerror or e}") from None
    except SnapshotError as e:
        raise Failure(str(e)) from None
    finally:
        if progress is not None:
            progress.done()


def parse_target(text):
    """A type name, or an address written ``0x…`` or in decimal digits."""
    t = text.strip()
    try:
        if t.lower().startswith("0x"):
            return int(t, 16)
        if t.isdigit():
            return int(t)
    except ValueError:
        pass
    return t


def headline(path, snap):
    i = snap._facts()
    when = datetime.datetime.fromtimestamp(i["created"]).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{path}: {i['objects']:,} objects, {human_bytes(i['bytes'])}, "
        f"Python {i['python']}, pid {i['pid']}, taken {when}"
    )


def print_json(value):
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")


def table(rows, headers, aligns):
    """Rows of strings as a fixed-width table (``aligns``: '<' or '>' per column)."""
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r, strict=True)]
    lines = []
    for r in [headers, *rows]:
        cells = [f"{c:{a}{w}}" for c, a, w in zip(r, aligns, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def sorted_types(rows, sort, limit):
    """Type statistics rows sorted by ``sort`` (``count``, ``shallow`` or ``retained``), largest
    first, the first ``limit`` of them."""
    key = {
        "retained": lambda r: (r.retained, r.shallow),
        "shallow": lambda r: r.shallow,
    }.get(sort, lambda r: r.count)
    return sorted(rows, key=key, reverse=True)[:limit]


def types_table(rows, retained):
    """The ``top`` table: type, count, shallow and (when computed) retained bytes."""
    cells = [
        [
            r.name,
            f"{r.count:,}",
            human_bytes(r.shallow),
            human_bytes(r.retained) if retained else "-",
        ]
        for r in rows
    ]
    return table(cells, ["type", "count", "shallow", "retained"], "<>>>")
