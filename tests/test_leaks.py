"""find_leaks on typical leaks (the first suspect names the leaked type and its holder) and on
work that only looks like a leak (no suspect)."""

from __future__ import annotations

import collections
import gc
import json
import weakref

import leak_patterns as lp
import pytest

import refgraph
from refgraph import _refgraph

# CPython 3.12's collector keeps its immortal objects in the permanent generation (375 tuples).
_FROZEN_BY_CPYTHON = refgraph.leaks._frozen_at_import


def _leaked_type(suspect):
    return suspect.path[-1].type


@pytest.mark.parametrize("name", sorted(lp.LEAKS))
def test_typical_leak_is_named(name):
    work, leaked, holder = lp.LEAKS[name]()
    try:
        report = refgraph.find_leaks(work)
    finally:
        cleanup = lp.CLEANUPS.get(name)
        if cleanup:
            cleanup()
    assert report, f"{name}: no suspect\n{report}"
    first = report.suspects[0]
    if isinstance(leaked, str):
        leaked = (leaked,)
    assert _leaked_type(first).rsplit(".", 1)[-1] in leaked, str(report)
    assert first.types[0].type == first.path[-1].type
    assert first.types[0].per_run >= 1 or name in ("every_other_call",), str(report)
    assert holder in first.holder, str(report)
    assert 0 < first.share <= 1
    assert first.bytes_per_run > 0


@pytest.mark.parametrize("name", sorted(lp.CLEAN))
def test_no_suspect_without_a_leak(name):
    work = lp.CLEAN[name]()
    report = refgraph.find_leaks(work)
    assert not report, str(report)
    assert report.to_json()["suspects"] == []
    assert "no leak suspect" in str(report)


def test_event_bus_report():
    work, _, _ = lp.leak_event_bus()
    report = refgraph.find_leaks(work, runs=4, calls_per_run=3)
    first = report.suspects[0]
    assert first.holder_type == "list"
    assert first.holder == "leak_patterns.bus._listeners"
    # Three warm-up calls, 4 quick runs of 3 that see growth, then the 4 measured runs of 3.
    assert first.lengths == (15, 27)
    per_run = {t.type: t.per_run for t in first.types}
    assert per_run["leak_patterns.Session"] == 3
    assert per_run["method"] == 3
    steps = [p.type for p in first.path]
    assert steps[first.holder_step] == "list"
    assert steps[-2:] == ["method", "leak_patterns.Session"]
    assert steps[0] == "module"
    text = str(report)
    assert "leak_patterns.bus" in text and "leak_patterns.Session" in text
    data = report.to_json()
    json.dumps(data)
    assert data["runs"] == 4 and data["calls_per_run"] == 3
    s = data["suspects"][0]
    assert set(s) == {
        "holder",
        "holder_type",
        "new_objects",
        "bytes_per_run",
        "share",
        "types",
        "path",
        "allocated_at",
    }
    assert s["allocated_at"] is None
    assert all(set(p) == {"type", "label", "edge"} for p in s["path"])
    assert all(set(t) == {"type", "per_run"} for t in s["types"])


def test_trace_names_the_allocating_line():
    work, _, _ = lp.leak_event_bus()
    report = refgraph.find_leaks(work, trace=True)
    sites = report.suspects[0].allocated_at
    assert sites, str(report)
    files = {f for f, _ in sites}
    assert lp.__file__ in files
    data = report.to_json()["suspects"][0]["allocated_at"]
    assert data[0]["file"] == sites[0][0] and data[0]["line"] == sites[0][1]
    import tracemalloc

    assert not tracemalloc.is_tracing()


def test_show_draws_the_path(tmp_path):
    work, _, _ = lp.leak_event_bus()
    report = refgraph.find_leaks(work)
    svg = report.show()
    assert svg.startswith("<svg") or "<svg" in svg[:200]
    assert "Session" in svg
    png = tmp_path / "leak.png"
    report.show(filename=png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        report.show(filename=tmp_path / "leak.gif")


def test_empty_report_cannot_be_drawn():
    report = refgraph.find_leaks(lp.clean_workload())
    with pytest.raises(LookupError):
        report.show()


def test_nothing_of_the_workload_is_kept_alive():
    class Item:
        pass

    items = []

    def work():
        items.append(Item())

    before = len(gc.get_objects())
    report = refgraph.find_leaks(work)
    assert report
    refs = [weakref.ref(i) for i in items]
    del items[:]
    gc.collect()
    assert all(r() is None for r in refs)
    del report
    gc.collect()
    # The old objects the search held are released: the heap is back to its size.
    assert len(gc.get_objects()) < before + 500


def test_workload_errors_propagate_and_release():
    class Old:
        pass

    held = [Old()]
    ref = weakref.ref(held[0])
    calls = []

    def work():
        calls.append(1)
        if len(calls) == 5:
            held.clear()  # the search holds the old object: it stays alive for now
        if len(calls) == 6:
            raise KeyError("boom")

    with pytest.raises(KeyError):
        refgraph.find_leaks(work)
    gc.collect()
    assert ref() is None  # released when the search ended


def test_old_objects_are_held_only_during_the_search():
    class Old:
        pass

    class New:
        pass

    held = [Old()]
    ref = weakref.ref(held[0])
    seen = []
    kept = []

    def work():
        kept.append(New())  # a leak: the quick pass sees growth, the full search runs
        if len(seen) == 14:  # warm-up 3, quick rounds 10, then the second measured call
            held.clear()
        seen.append(ref() is not None)

    report = refgraph.find_leaks(work, warmup=3, runs=5, calls_per_run=2)
    assert report
    assert len(seen) == 3 + 10 + 10
    assert seen[14:] == [True] * 9  # kept alive while measuring
    gc.collect()
    assert ref() is None


def test_work_that_leaves_nothing_is_measured_once():
    calls = [0]

    def work():
        calls[0] += 1  # a counter: appending to a list would be growth
        return [object() for _ in range(10)]

    report = refgraph.find_leaks(work, warmup=2, runs=4, calls_per_run=3)
    assert not report
    assert calls[0] == 2 + 4 * 3  # the quick pass found nothing: no second set of rounds
    assert gc.get_freeze_count() in (0, _FROZEN_BY_CPYTHON)


def test_growth_is_measured_again_in_full():
    calls = [0]
    kept = []

    def work():
        calls[0] += 1  # a counter: appending to a list would be growth
        kept.append(object.__new__(type("Grown", (), {})))

    report = refgraph.find_leaks(work, warmup=2, runs=4, calls_per_run=3)
    assert report
    assert calls[0] == 2 + 2 * 4 * 3
    assert gc.get_freeze_count() in (0, _FROZEN_BY_CPYTHON)


def test_keys_renewed_in_a_bounded_queue_need_no_second_rounds():
    # An LRU cache that appends a new key tuple to its queue on every hit (as jinja2's does):
    # the queue keeps its length, its keys are born in many rounds; nothing grows.
    marker = []  # an old list in each key keeps the tuples tracked
    queue = collections.deque(maxlen=6)
    names = [f"t{i}" for i in range(6)]
    calls = [0]

    def work():
        calls[0] += 1
        # A varying subset, so that the keys alive were born in several rounds.
        for name in names[: 1 + calls[0] % 3]:
            queue.append((name, marker))

    for _ in range(3):
        work()
    screen = _refgraph.Screen()
    gc.freeze()
    try:
        for _ in range(5):
            work()
            work()
            gc.collect()
            screen.census()
    finally:
        gc.unfreeze()
    born = screen.survivors()
    assert born[0] and born[-1] and sum(1 for n in born if n) >= 3  # steady, all together
    assert not screen.grew()  # but each only replaces another in the queue
    screen.release()

    calls[0] = 0
    report = refgraph.find_leaks(work, warmup=3, runs=5, calls_per_run=2)
    assert not report, str(report)
    assert calls[0] == 3 + 5 * 2


def test_a_queue_that_grows_is_still_measured():
    queue = collections.deque()
    calls = [0]

    def work():
        calls[0] += 1
        queue.append(("new", calls[0]))

    report = refgraph.find_leaks(work, warmup=3, runs=5, calls_per_run=2)
    assert report and report.suspects[0].holder_type == "collections.deque"
    assert calls[0] == 3 + 2 * 5 * 2


def test_frozen_objects_of_the_program_stay_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        calls = []
        kept = []

        def work():
            calls.append(1)
            kept.append(bytearray(10))

        report = refgraph.find_leaks(work, warmup=1, runs=3, calls_per_run=1)
        assert gc.get_freeze_count() == frozen
        assert len(calls) == 1 + 3  # no quick pass: it would unfreeze the program's objects
        assert report and report.suspects[0].types[0].type == "bytearray"
    finally:
        gc.unfreeze()


def test_a_failure_in_the_quick_pass_unfreezes():
    n = []

    def work():
        n.append(1)
        if len(n) == 5:
            raise KeyError("boom")

    with pytest.raises(KeyError):
        refgraph.find_leaks(work, warmup=1)
    assert gc.get_freeze_count() in (0, _FROZEN_BY_CPYTHON)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"runs": 0},
        {"warmup": -1},
        {"calls_per_run": 0},
        {"runs": 65},
        {"runs": 2.5},
        {"strings": "some"},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        refgraph.find_leaks(lambda: None, **kwargs)


def test_not_callable():
    with pytest.raises(TypeError):
        refgraph.find_leaks(42)


hostile = {"<script>alert(1)</script>": []}


class _Evil:
    pass


def test_hostile_names_are_text(tmp_path):
    def work():
        hostile["<script>alert(1)</script>"].append(_Evil())

    # By default a key that is not name-like is not kept (the string policy of snapshots).
    report = refgraph.find_leaks(work)
    assert report.suspects[0].holder.startswith("test_leaks.hostile")
    assert "script" not in report.suspects[0].holder
    assert "script" not in str(report) and "script" not in json.dumps(report.to_json())
    # Kept with strings="all": shown as text, never markup.
    report = refgraph.find_leaks(work, strings="all")
    assert report.suspects[0].holder == "test_leaks.hostile['<script>alert(1)</script>']"
    svg = report.show()
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    out = tmp_path / "x.svg"
    report.show(filename=out)
    assert "<script>" not in out.read_text()
    json.dumps(report.to_json())


def test_drawing_file_is_private(tmp_path):
    import os
    import stat

    work, _, _ = lp.leak_event_bus()
    report = refgraph.find_leaks(work)
    out = tmp_path / "leak.svg"
    old = os.umask(0)
    try:
        report.show(filename=out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "Session" in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["leak.svg"]


def test_to_html_writes_one_private_page(tmp_path):
    work, _, _ = lp.leak_event_bus()
    report = refgraph.find_leaks(work)
    page = tmp_path / "leaks.html"
    size = report.to_html(page)
    assert size == page.stat().st_size > 0
    assert page.stat().st_mode & 0o777 == 0o600
    assert "leak_patterns.bus._listeners" in page.read_text()


def test_html_summary_for_jupyter():
    work, _, _ = lp.leak_event_bus()
    report = refgraph.find_leaks(work)
    html = report._repr_html_()
    assert "leak_patterns.bus._listeners" in html and "<script" not in html
    assert "no suspect" in refgraph.find_leaks(lp.clean_workload())._repr_html_()
