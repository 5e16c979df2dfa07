"""``snapshot(progress=...)``: phases in order, a raising callback, a callback that changes the
heap while the capture runs."""

from __future__ import annotations

import gc
import sys
import weakref

import pytest

import refgraph

PHASES = ["walk", "references", "sizes", "names"]
#: With ``collect="graph"``, the walk that finds the garbage comes between.
GRAPH_PHASES = ["walk", "references", "garbage", "sizes", "names"]


class Record:
    def __init__(self, i):
        self.i = i


class Other:
    def __init__(self, i):
        self.i = i


@pytest.mark.parametrize("collect", [True, "graph"])
def test_phases_arrive_in_order_with_done_at_most_total(collect):
    keep = [Record(i) for i in range(20_000)]
    calls = []
    snap = refgraph.snapshot(collect=collect, progress=lambda *a: calls.append(a))
    phases_wanted = GRAPH_PHASES if collect == "graph" else PHASES
    assert [r.count for r in snap.typestats(retained=False) if r.name == f"{__name__}.Record"] == [
        len(keep)
    ]
    phases = [c[0] for c in calls]
    # Each phase's calls are contiguous and the phases come in order.
    order = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert order == phases_wanted
    for phase in phases_wanted:
        mine = [c for c in calls if c[0] == phase]
        assert mine[0][1] == 0, phase
        assert mine[-1][1] == mine[-1][2] > 0, phase
        assert all(isinstance(d, int) and isinstance(t, int) for _, d, t in mine)
        assert all(0 <= d <= t for _, d, t in mine), phase
        dones = [d for _, d, _ in mine]
        assert dones == sorted(dones), phase
        # About once per percent, not once per object.
        assert 2 < len(mine) <= 300, (phase, len(mine))
    assert calls[-1][2] == len(snap)


def test_without_names_there_is_no_names_phase():
    calls = []
    refgraph.snapshot(names=False, progress=lambda *a: calls.append(a[0]))
    assert list(dict.fromkeys(calls)) == PHASES[:3]


def test_progress_must_be_callable():
    with pytest.raises(TypeError, match="progress"):
        refgraph.snapshot(progress=3)


class Stop(Exception):
    pass


@pytest.mark.parametrize(
    ("collect", "phase"), [(True, p) for p in PHASES] + [("graph", p) for p in GRAPH_PHASES]
)
@pytest.mark.parametrize("at", ["start", "middle"])
def test_a_raising_callback_ends_the_capture_and_releases_everything(collect, phase, at):
    target = Record(-1)
    ref = weakref.ref(target)
    before = sys.getrefcount(target)
    keep = [Record(i) for i in range(5_000)]
    before_keep = sys.getrefcount(keep[2500])

    def progress(p, done, total):
        if p == phase and (done == 0 if at == "start" else 0 < done < total):
            raise Stop(p)

    with pytest.raises(Stop, match=phase):
        refgraph.snapshot(collect=collect, progress=progress)
    # Counted outside the asserts (assertion rewriting holds what it shows).
    after = sys.getrefcount(target)
    one = keep[2500]
    after_keep = sys.getrefcount(one) - 1
    del one
    assert (after, after_keep) == (before, before_keep)
    assert gc.isenabled()  # the names pass disables the collector while it runs
    del target
    gc.collect()
    assert ref() is None
    # The interpreter is fine and the next capture works.
    assert len(refgraph.snapshot()) > 0


def test_a_class_freed_by_the_first_callback_is_held_by_the_capture():
    """The objects' classes are read as they are listed, before the first progress call, and
    held: a callback that moves objects to another class and collects the old one changes
    nothing in what is reported (their classes when listed), and the old class is freed once
    the capture is over."""
    ns: dict = {}
    exec("class Doomed:\n    pass\n", ns)
    victims = [ns["Doomed"]() for _ in range(3)]
    doomed = weakref.ref(ns.pop("Doomed"))
    seen = []

    def progress(phase, done, total):
        seen.append(phase)
        if len(seen) == 1:
            for v in victims:
                v.__class__ = Other
            gc.collect()

    snap = refgraph.snapshot(collect=False, progress=progress)
    # Freed once the capture let go of it (only the capture held it).
    gc.collect()
    assert doomed() is None
    stats = {r.name: r.count for r in snap.typestats(retained=False)}
    # The classes the objects had when they were listed.
    assert stats.get("Doomed") == 3, {k: v for k, v in stats.items() if "Doomed" in k}
    assert len(refgraph.snapshot()) > 0


def test_a_callback_that_changes_the_heap_does_not_crash():
    """Classes made and freed, objects' classes changed, containers emptied, collections and a
    nested capture, all while the capture runs."""
    objs = [Record(i) for i in range(30_000)]
    lists = [[Record(i), {"k": Record(i)}, "x" * (i % 50)] for i in range(10_000)]
    made = []
    seen = []
    nested = []

    def progress(phase, done, total):
        seen.append(phase)
        # A new class with an instance, then its instances moved to another class, so the new
        # class is freed; objects walked or not yet walked change class both ways.
        cls = type(f"Tmp{len(seen)}", (Record,), {})
        for o in objs[len(seen) * 50 : len(seen) * 50 + 50]:
            o.__class__ = cls if o.__class__ is Record else Record
        made.append(cls(0))
        if len(made) > 3:
            made.pop(0).__class__ = Other
        for lst in lists[len(seen) * 20 : len(seen) * 20 + 20]:
            lst.clear()
        lists.append([Record(-1) for _ in range(10)])
        if len(seen) % 40 == 0:
            gc.collect()
        if len(seen) == 150 and not nested:
            nested.append(len(refgraph.snapshot(collect=False)))

    snap = refgraph.snapshot(progress=progress)
    assert len(snap) > 0 and nested and nested[0] > 0
    stats = {r.name: r.count for r in snap.typestats()}
    assert sum(n for name, n in stats.items() if "Record" in name or "Tmp" in name) > 0
    # Every query still works on what was captured.
    snap.paths("Record")
    assert refgraph.snapshot_from_bytes(snap.to_bytes()).info()["objects"] == len(snap)


def test_load_reports_its_steps(tmp_path):
    path = tmp_path / "s.rgsnap"
    snap = refgraph.snapshot()
    snap.save(path)
    calls = []
    back = refgraph.load(path, progress=lambda *a: calls.append(a))
    assert len(back) == len(snap)
    assert {c[0] for c in calls} == {"loading"}
    dones = [c[1] for c in calls]
    total = calls[0][2]
    assert dones == list(range(total + 1)) and total > 1


def test_a_raising_load_callback_is_ignored(tmp_path):
    path = tmp_path / "s.rgsnap"
    refgraph.snapshot().save(path)

    def progress(*a):
        raise Stop("ignored")

    assert len(refgraph.load(path, progress=progress)) > 0


def test_save_reports_its_steps(tmp_path):
    snap = refgraph.snapshot()
    calls = []
    size = snap.save(tmp_path / "s.rgsnap", progress=lambda *a: calls.append(a))
    assert size == (tmp_path / "s.rgsnap").stat().st_size
    assert {c[0] for c in calls} == {"saving"}
    assert calls[0][1] == 0 and calls[-1][1] == calls[-1][2] > 1
    assert all(0 <= d <= t for _, d, t in calls)

    def raising(*a):
        raise Stop("ignored")

    snap.save(tmp_path / "t.rgsnap", progress=raising)
    assert (tmp_path / "t.rgsnap").read_bytes() == (tmp_path / "s.rgsnap").read_bytes()
