"""Leak suspects: run a piece of work again and again and name what keeps its leftovers alive.

:func:`find_leaks` calls ``workload()`` a few times to warm up (caches fill, modules import),
then in ``runs`` rounds of ``calls_per_run`` calls each, first as a quick pass: with the objects
alive after the warm-up frozen (``gc.freeze()``), the collector's generations hold only what the
rounds create, so that a collection and a walk after each round cost in proportion to the new
objects, not to the heap. When no new object survives in a pattern of steady growth and no
container's length grows steadily, there is nothing to report and the search ends there (at a
cost of one walk of the heap that measures its containers). Otherwise the rounds run again,
measured in full. After the warm-up it notes every object
alive (and keeps it alive, so that no new object can take an old one's address); after each
round it notes which new objects exist (a walk of the collector's lists, no snapshot); at the
end it takes one snapshot. The objects born in the rounds that are still alive, born in the
first round and the last ones (steady growth, not what a cache that fills and evicts or a
first call creates), are then traced on the dominator tree to the old object through which
they are retained: the *holder*, such as ``__main__.bus._listeners``.

>>> import refgraph
>>> class Session:
...     pass
>>> sessions = []
>>> def handle_request():
...     sessions.append(Session())
>>> report = refgraph.find_leaks(handle_request)
>>> report.suspects[0].types[0].type.endswith("Session")
True
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections import Counter
from typing import NamedTuple

from . import _refgraph
from . import snapshot as _snapshot
from .present import write_native
from .snapshot import Snapshot

__all__ = ["LeakReport", "PathStep", "Suspect", "TypeGrowth", "find_leaks", "leaks_between"]


class TypeGrowth(NamedTuple):
    """A type of the leaked objects and how many of them each run adds."""

    type: str
    per_run: float


class PathStep(NamedTuple):
    """One object of a suspect's path: its type (``module.QualName``), a short label, and
    the name of the reference to the next step (None when it has none)."""

    type: str
    label: str
    edge: str | None
    address: int


class Suspect(NamedTuple):
    """An object through which new objects accumulate.

    ``holder``: the holder as an expression from a root; ``new_objects``: the new objects it
    retains; ``bytes_per_run``: their bytes per run; ``share``: the part of all new objects
    it explains; ``types``: what it accumulates, the leaked type first; ``path``: from a root
    through the holder (``path[holder_step]``) to one leaked object; ``allocated_at``: where
    the leaked objects were allocated, most first (with ``trace=True``), else None;
    ``lengths``: the holder's length before the first run and after the last, for a
    container.
    """

    holder: str
    holder_type: str
    new_objects: int
    bytes_per_run: int
    share: float
    types: list
    path: list
    holder_step: int
    allocated_at: list | None
    lengths: tuple | None

    def to_json(self):
        return {
            "holder": self.holder,
            "holder_type": self.holder_type,
            "new_objects": self.new_objects,
            "bytes_per_run": self.bytes_per_run,
            "share": self.share,
            "types": [{"type": t.type, "per_run": t.per_run} for t in self.types],
            "path": [{"type": p.type, "label": p.label, "edge": p.edge} for p in self.path],
            "allocated_at": (
                None
                if self.allocated_at is None
                else [{"file": f, "line": line} for f, line in self.allocated_at]
            ),
        }


def _path_lines(s, keep=2):
    """The path, one step a line, with long stretches away from the root, the holder and the
    leaked object left out."""
    n = len(s.path)
    h = s.holder_step if s.holder_step is not None else 0
    shown = set(range(keep)) | set(range(n - keep, n)) | set(range(h - keep, h + keep + 1))
    out = []
    skipped = 0
    for k, p in enumerate(s.path):
        if k not in shown:
            skipped += 1
            continue
        if skipped:
            out.append(f"        … {skipped} more step{'s' if skipped != 1 else ''}")
            skipped = 0
        arrow = "   " if k == 0 else "-> "
        mark = "  <- holder" if k == s.holder_step else ""
        label = f" {p.label}" if p.label else ""
        via = f"  {p.edge}" if p.edge else ""
        out.append(f"     {arrow}{p.type}{label}{via}{mark}")
    return out


def _count(x):
    return f"{x:g}" if x != int(x) else f"{int(x):,}"


class LeakReport:
    """What :func:`find_leaks` (or ``refgraph leaks``) found: ``suspects``, most bytes first.
    False when there is nothing to report."""

    def __init__(self, runs, calls_per_run, suspects, new_objects, snapshots=None):
        self.snapshots = snapshots
        self.runs = runs
        self.calls_per_run = calls_per_run
        self.suspects = suspects
        self.new_objects = new_objects

    def __bool__(self):
        return bool(self.suspects)

    def __len__(self):
        return len(self.suspects)

    def __iter__(self):
        return iter(self.suspects)

    def __getitem__(self, i):
        return self.suspects[i]

    def __repr__(self):
        return f"<refgraph.LeakReport: {len(self.suspects)} suspects over {self.runs} runs>"

    def to_json(self):
        """The report as a dict ready for ``json.dumps``: ``runs``, ``calls_per_run`` and
        ``suspects``."""
        return {
            "runs": self.runs,
            "calls_per_run": self.calls_per_run,
            "suspects": [s.to_json() for s in self.suspects],
        }

    def __str__(self):
        per = "call" if self.calls_per_run == 1 else f"{self.calls_per_run} calls"
        head = f"{self.runs} runs of {per}"
        if self.snapshots is not None:
            head = f"{self.snapshots} snapshots"
        if not self.suspects:
            return f"{head}: no leak suspect (nothing grew steadily)"
        n = len(self.suspects)
        lines = [f"{head}: {n} leak suspect{'s' if n != 1 else ''}"]
        for i, s in enumerate(self.suspects, 1):
            lines.append("")
            what = ", ".join(f"{_count(t.per_run)} {t.type}" for t in s.types[:3])
            if len(s.types) > 3:
                what += ", …"
            lines.append(f"{i}. {s.holder}  ({s.holder_type})")
            per_run = _refgraph.human_bytes(int(s.bytes_per_run))
            lines.append(
                f"   grows by {what} per run; {per_run} per run, {s.share:.0%} of the new objects"
            )
            if s.lengths is not None and s.lengths[1] != s.lengths[0]:
                lines.append(f"   length {s.lengths[0]:,} -> {s.lengths[1]:,}")
            if s.allocated_at:
                f, line = s.allocated_at[0]
                lines.append(f"   allocated at {f}:{line}")
            lines.extend(_path_lines(s))
        return "\n".join(lines)

    def _view(self, index):
        s = self.suspects[index]
        visits = []
        edges = []
        n = len(s.path)
        for k, p in enumerate(s.path):
            key = f"s{k}"
            label = p.type.rsplit(".", 1)[-1]
            if p.label:
                label += "\n" + p.label
            if k == s.holder_step and s.types:
                t = s.types[0]
                label += f"\n+{_count(t.per_run)} {t.type.rsplit('.', 1)[-1]} per run"
            out_edges = 0
            if k + 1 < n:
                edges.append((key, f"s{k + 1}", (p.edge, 2) if p.edge else None))
                out_edges = 1
            is_module = p.type == "module"
            visits.append(
                _refgraph.ViewNode(
                    key,
                    label,
                    k,
                    module=is_module,
                    highlighted=k == s.holder_step,
                    edges=out_edges,
                )
            )
        return _refgraph.View.from_walk(["s0"], visits, edges, False, max(n - 1, 1))

    def show(self, filename=None, index=0):
        """Draw the path of a suspect (the first by default) from its root through the holder
        to a leaked object. ``filename`` ending in ``.png``, ``.svg`` or ``.dot`` is written
        (no Graphviz needed); without one the SVG text is returned."""
        if not self.suspects:
            raise LookupError("no leak suspect to draw")
        view = self._view(index)
        if filename is None:
            return view.svg()
        write_native(view, os.fspath(filename))
        return None

    def to_html(self, path):
        """Write the report as one self-contained HTML page (suspects, their example paths with
        reference names, drawings you can pan and zoom) to ``path``; returns its size in bytes.
        For the heap around them too: ``snapshot.to_html(path, suspects=report.to_json())``."""
        from .report import suspects_page, write_page

        return write_page(path, suspects_page(self.to_json()))

    def _repr_html_(self):
        from .report import leak_summary_html

        return leak_summary_html(self.to_json())


def _suspects(raw, runs, calls_per_run, tracebacks=None, snapshots=None):
    rounds, new_objects, found = raw
    out = []
    for i, d in enumerate(found):
        types = [TypeGrowth(name, count / rounds) for name, count in d["types"]]
        path = [PathStep(t, label, edge, addr) for addr, t, label, edge in d["path"]]
        out.append(
            Suspect(
                holder=d["holder"],
                holder_type=d["holder_type"],
                new_objects=d["new_objects"],
                bytes_per_run=round(d["bytes"] / rounds),
                share=round(d["share"], 4),
                types=types,
                path=path,
                holder_step=d["holder_step"],
                allocated_at=None if tracebacks is None else tracebacks[i],
                lengths=d["lengths"],
            )
        )
    return LeakReport(runs, calls_per_run, out, new_objects, snapshots)


def _allocation_sites(found, limit=3):
    """Per suspect, the lines that allocated most of its sampled leaked objects."""
    import tracemalloc

    out = []
    for d in found:
        sample = d["sample"]
        lead = d["types"][0][0].rsplit(".", 1)[-1] if d["types"] else None
        wanted = {a: t for a, t in sample}
        # Lines that allocated objects of the leaked type first, then the others'.
        sites = Counter()
        objs = _refgraph.at_addrs(None, list(wanted)) if wanted else []
        try:
            for o in objs:
                name = type(o).__name__
                if name != wanted.get(id(o)):
                    continue
                tb = tracemalloc.get_object_traceback(o)
                if tb:
                    frame = tb[-1]
                    sites[(name == lead, frame.filename, frame.lineno)] += 1
        finally:
            del objs
        ranked = sorted(sites.items(), key=lambda kv: (not kv[0][0], -kv[1]))
        seen = []
        for (_, f, line), _ in ranked:
            if (f, line) not in seen:
                seen.append((f, line))
        out.append(seen[:limit])
    return out


def _final_snapshot(rounds, strings):
    """The snapshot after the last round. The lists of frames and modules it starts from are
    made while the old objects are still held, so that they cannot take the address of an old
    object freed by the release (and pass for old); then the old objects are released and the
    garbage collected."""
    frames = _snapshot._thread_frames()
    modules = _snapshot._proper_modules()
    try:
        rounds.release()
        gc.collect()
        inner = _refgraph.Snapshot.capture(
            True,
            frames,
            modules,
            True,
            sys.version.split()[0],
            os.getpid(),
            int(time.time()),
            strings,
            True,
            # Analysed here at once, never saved by us: packing its columns on the second
            # thread would only slow the capture and be undone by the analysis.
            pack=False,
        )
    finally:
        del frames, modules
    return Snapshot(inner)


def _library_modules():
    """Top-level modules whose types are the library's, not the program's: the leaked object a
    suspect's path ends at is of the program's own types when it holds any."""
    names = set(getattr(sys, "stdlib_module_names", ()))
    names.update(("refgraph", "builtins"))
    return sorted(names)


def _check(runs, warmup, calls_per_run):
    for name, v, low in (
        ("runs", runs, 1),
        ("warmup", warmup, 0),
        ("calls_per_run", calls_per_run, 1),
    ):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"{name} must be an int >= {low}, not {v!r}")
    if runs > 64:
        raise ValueError("runs must be at most 64")


# Objects already frozen when refgraph was imported: CPython 3.12's collector moves the immortal
# objects it meets (the tuples of its static types: 375 of them) into the permanent generation,
# where they are from startup and where every collection puts them back; the quick pass may
# unfreeze those. Objects the program freezes itself it leaves alone (the full search runs).
_frozen_at_import = gc.get_freeze_count()


def _screen_clean(workload, runs, calls_per_run):
    """The quick first pass: True when nothing the rounds created survived in a way that
    could be steady growth, and no container grew steadily (then the full search, which
    costs two walks of the whole heap, would find no suspect). With the objects alive now
    frozen (``gc.freeze()``), a collection and a walk of the collector's generations cost
    in proportion to the new objects only. When the program froze objects itself, the answer
    is False and the full search runs (``gc.get_freeze_count()`` walks the frozen objects: it
    is asked only here, before anything is frozen). Work that freezes its own new objects
    hides them from both searches."""
    if gc.get_freeze_count() not in (0, _frozen_at_import):
        return False
    screen = _refgraph.Screen()
    try:
        gc.freeze()
        try:
            for _ in range(runs):
                for _ in range(calls_per_run):
                    workload()
                gc.collect()
                screen.census()
        finally:
            gc.unfreeze()
        return not screen.grew()
    finally:
        screen.release()


def find_leaks(workload, *, runs=5, warmup=3, calls_per_run=2, trace=False, strings="names"):
    """Call ``workload()`` ``warmup`` times, then ``runs`` rounds of ``calls_per_run`` calls,
    and report what grows with the work: a :class:`LeakReport` (false when nothing does).

    A suspect is the object through which most new objects are retained (the list of an event
    bus's listeners, a cache dict, a class attribute), not the objects themselves. Objects
    born in every run (or every other) count; what a cache that fills and evicts, a lazy
    import or a first call creates does not, nor what only the newest call keeps. With
    ``trace=True`` tracemalloc runs during the rounds and each suspect names the lines that
    allocated its leaked objects (``allocated_at``).

    Work that leaves nothing behind is called ``warmup + runs * calls_per_run`` times; when the
    quick first pass sees growth, ``runs * calls_per_run`` more (the measured rounds). Two calls
    per run by default, so that a leak of one object every other call grows every run.
    Nothing of the workload is kept alive once the call returns. ``strings``: what the final
    snapshot keeps of string contents, as for :func:`refgraph.snapshot`.
    """
    if not callable(workload):
        raise TypeError(f"workload must be callable, not {type(workload).__name__}")
    _check(runs, warmup, calls_per_run)
    _snapshot._check_strings(strings)
    if trace:
        import tracemalloc  # before the old objects are taken: its import is not a leak
    for _ in range(warmup):
        workload()
    if _screen_clean(workload, runs, calls_per_run):
        return LeakReport(runs, calls_per_run, [], 0)
    # No collection first: garbage of the warm-up is held with the old objects (it is old) and
    # collected by the final snapshot's collection, once released.
    rounds = _refgraph.Rounds()
    started = False
    try:
        if trace:
            if not tracemalloc.is_tracing():
                tracemalloc.start()
                started = True
        for _ in range(runs):
            for _ in range(calls_per_run):
                workload()
            rounds.census()
        snap = _final_snapshot(rounds, strings)
        raw = snap._s.leak_suspects(rounds=rounds, library=_library_modules())
        tracebacks = _allocation_sites(raw[2]) if trace else None
        del snap
    finally:
        rounds.release()
        if started:
            tracemalloc.stop()
    return _suspects(raw, runs, calls_per_run, tracebacks)


def leaks_between(*snapshots):
    """Leak suspects from snapshots of the same running program, oldest first (two or more;
    three or more tell steady growth from a one-off): a :class:`LeakReport` whose runs are the
    intervals between snapshots."""
    if len(snapshots) < 2:
        raise ValueError("leaks_between needs at least two snapshots")
    for s in snapshots:
        if not isinstance(s, Snapshot):
            raise TypeError(f"expected Snapshot objects, not {type(s).__name__}")
    if len(snapshots) > 65:
        raise ValueError("at most 65 snapshots")
    *older, last = snapshots
    raw = last._s.leak_suspects(older=[s._s for s in older], library=_library_modules())
    return _suspects(raw, len(snapshots) - 1, 1, snapshots=len(snapshots))
