"""Heap snapshots: sizes, labels, the file format, diffs, retention paths, retained sizes."""

from __future__ import annotations

import gc
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref

import pytest

import refgraph

from conftest import rss_kb


class Record:
    def __init__(self, i):
        self.i = i


class SelfSized:
    """A class whose own ``__sizeof__`` must never be called by a snapshot."""

    calls = 0

    def __sizeof__(self):
        SelfSized.calls += 1
        raise RuntimeError("user __sizeof__ called")


_module_cache = []


def test_sizes_equal_sys_getsizeof():
    slotted = type("Slotted", (), {"__slots__": ("a", "b")})()
    objs = [
        Record(1),
        [1, 2, 3],
        list(range(100)),
        {},
        {"a": 1},
        dict.fromkeys(range(50)),
        (1, 2),
        ("x",) * 30,
        "abc",
        "é" * 100,
        "\U0001f600" * 3,
        b"abc",
        bytearray(b"xyz"),
        {1, 2},
        frozenset(range(20)),
        Record,
        len,
        refgraph.snapshot,
        sys,
        slotted,
        10**40,
        -(10**30),
        3.5,
        1j,
        range(10),
        weakref.ref(Record),
    ]
    snap = refgraph.snapshot()
    for o in objs:
        assert snap.size(o) == sys.getsizeof(o), (type(o), snap.describe(o))
    assert snap.size(address=1) is None


def test_sizes_equal_sys_getsizeof_over_the_whole_heap():
    # Every object the collector tracks and the objects they refer to, with their
    # sys.getsizeof, listed just before the snapshot (which changes none of them): each one is
    # as big as the snapshot says, in particular those whose type has a C __sizeof__ of
    # its own (list, dict, set, int, str, …, called directly by the snapshot) and static types
    # (whose pre-header sys.getsizeof counts differently on 3.10, 3.11-3.12 and 3.13).
    keep = [b"bytes" * 10, bytearray(b"x" * 50), 10**50, "\u20ac" * 9, frozenset({1, 2})]
    keep.append(struct.Struct("20i"))  # a heap type of a C extension with a C __sizeof__ (3.11+)
    objs = gc.get_objects()
    # The untracked items of built-in containers (str, int, bytes, …). Not gc.get_referents of
    # every object: some traverse functions report dead objects (3.12.0-3.12.5's _asyncio
    # module its free list), and a reference taken to one corrupts the interpreter.
    builtin = (list, tuple, dict, set, frozenset)
    referents = [
        r for o in objs if type(o) in builtin for r in gc.get_referents(o) if not gc.is_tracked(r)
    ]
    objs += referents
    expected = [sys.getsizeof(o) for o in objs]
    snap = refgraph.snapshot(collect=False)
    own_sizeof = set()
    checked = 0
    for o, want in zip(objs, expected, strict=True):
        size = snap.size(address=id(o))
        if size is None or o is objs or o is referents or o is expected:
            continue
        if sys.version_info < (3, 11) and type(o) is type(test_no_user_code_runs.__code__):
            continue  # 3.10: grows a cache after 1024 calls, which snapshot() may make
        assert size == want, (type(o), snap.describe(o))
        checked += 1
        for c in type(o).__mro__:
            if not c.__flags__ & (1 << 9):  # the nearest static base (not Py_TPFLAGS_HEAPTYPE)
                if c.__sizeof__ is not object.__sizeof__:
                    own_sizeof.add(c.__name__)
                break
    assert checked > 10_000
    assert {"list", "dict", "set", "frozenset", "int", "str", "bytearray", "type"} <= own_sizeof
    assert all(snap.size(o) == sys.getsizeof(o) for o in keep)
    assert snap.size(int) == sys.getsizeof(int)
    assert snap.size(Record) == sys.getsizeof(Record)


def test_a_c_sizeof_is_called_only_on_its_own_type():
    class Borrowed(list):
        __sizeof__ = dict.__sizeof__  # would read a list as a dict

    class Plain(list):
        pass

    a, b = Borrowed(range(7)), Plain(range(7))
    snap = refgraph.snapshot()
    # The list's own __sizeof__ (sys.getsizeof(a) raises: dict.__sizeof__ refuses a list).
    assert snap.size(a) == sys.getsizeof(b)
    with pytest.raises(TypeError):
        sys.getsizeof(a)


def test_no_user_code_runs():
    class LyingMeta(type):
        def __getattribute__(cls, name):
            raise RuntimeError(f"metaclass lookup of {name}")

    class Hostile(metaclass=LyingMeta):
        pass

    SelfSized.calls = 0
    keep = [SelfSized() for _ in range(3)] + [Hostile(), Hostile]
    try:
        snap = refgraph.snapshot()
        assert SelfSized.calls == 0
        # The user's __sizeof__ is bypassed: the built-in size is reported, the one
        # sys.getsizeof gives for an instance of a class without its own __sizeof__.
        builtin = (
            sys.getsizeof(Record(0)) - object.__sizeof__(Record(0)) + object.__sizeof__(keep[0])
        )
        assert snap.size(keep[0]) == builtin
        names = {row.name for row in snap.typestats(retained=False)}
        prefix = f"{__name__}.test_no_user_code_runs.<locals>"
        assert f"{prefix}.Hostile" in names
        assert f"{prefix}.LyingMeta" in names
    finally:
        # Hostile classes must not outlive the test: other tests' filters meet every object.
        del keep, Hostile, LyingMeta
        gc.collect()


def test_labels_lengths_and_globals():
    global _module_cache
    _module_cache = [Record(i) for i in range(7)]
    long_text = "".join(["abcdefghijklmnopqrstuvwxyz"] * 3)
    holder = [long_text]  # a running frame's locals are invisible to the gc (3.11+)
    snap = refgraph.snapshot()
    assert snap.describe(_module_cache) == f"list {__name__}._module_cache (7 items)"
    assert snap.describe(sys) == "module sys"
    assert snap.describe(Record) == f"type {__name__}.Record"
    # By default a string that is not a name keeps its length and a fingerprint only.
    described = snap.describe(long_text)
    assert re.fullmatch(r"str len=78 #[0-9a-f]{12}", described), described
    every = refgraph.snapshot(strings="all")
    assert every.describe(long_text) == "str 'abcdefghijklmnopqrstuvwxyzabcdefghijklmn..."
    assert snap.describe(address=id(sys)) == "module sys"
    with pytest.raises(TypeError):
        snap.describe(sys, address=id(sys))
    assert holder


def test_objects_are_not_kept_alive_and_refcounts_are_unchanged():
    r = Record(0)
    w = weakref.ref(r)
    before = sys.getrefcount(r)
    snaps = [refgraph.snapshot() for _ in range(3)]
    assert sys.getrefcount(r) == before
    del r
    gc.collect()
    assert w() is None, "a snapshot holds no reference to the objects it records"
    assert all(len(s) > 0 for s in snaps)


def test_refcounts_of_every_kind_of_object_are_unchanged():
    """A snapshot, with edge names and without, takes one reference to every object it
    records and gives each back exactly once: containers, instances and their dicts,
    closures and their cells, bound methods, frames, modules and a self-cycle keep their
    reference counts, and nothing is kept alive."""

    def make_closure(v):
        def get():
            return v

        return get

    r = Record(1)
    fn = make_closure(r)
    cycle = []
    cycle.append(cycle)
    objects = [
        r,
        r.__dict__,
        {"k": r, 1: [r]},
        [r, r],
        (r, "x"),
        {1, 2},
        fn,
        fn.__closure__,
        fn.__closure__[0],
        r.__init__,
        sys._getframe(),
        cycle,
        sys.modules[__name__],
    ]
    before = [sys.getrefcount(o) for o in objects]
    for names in (True, False):
        snaps = [refgraph.snapshot(names=names) for _ in range(2)]
        assert [sys.getrefcount(o) for o in objects] == before
        assert all(len(s) > 0 for s in snaps)
    w = weakref.ref(r)
    del r, fn, objects, snaps
    gc.collect()
    assert w() is None


def test_save_and_load_round_trip(tmp_path):
    snap = refgraph.snapshot()
    path = tmp_path / "s.rgsnap"
    size = snap.save(path)
    assert size == os.path.getsize(path)
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p], "no temporary file left"
    loaded = refgraph.load(path)
    assert loaded.info() == snap.info()
    assert loaded.typestats() == snap.typestats()
    assert loaded.to_bytes() == snap.to_bytes()
    assert refgraph.snapshot_from_bytes(snap.to_bytes()).info() == snap.info()


def test_bad_files_raise_clear_errors(tmp_path):
    good = refgraph.snapshot().to_bytes()
    with pytest.raises(OSError):
        refgraph.load(tmp_path / "missing.rgsnap")
    with pytest.raises(OSError):
        refgraph.load(tmp_path)
    cases = {
        "empty": b"",
        "text": b"hello world, not a snapshot at all",
        "truncated": good[: len(good) // 2],
        "header only": good[:40],
        "flipped": good[:100] + bytes([good[100] ^ 0xFF]) + good[101:],
        "appended": good + b"\0",
        "newer version": good[:8] + (99).to_bytes(4, "little") + good[12:],
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(refgraph.SnapshotError) as e:
            refgraph.load(p)
        assert isinstance(e.value, ValueError), name
        assert str(e.value), name
    with pytest.raises(refgraph.SnapshotError, match="version 99"):
        refgraph.snapshot_from_bytes(cases["newer version"])


def test_retained_size_of_a_list_of_exclusive_buffers():
    bufs = [bytearray(1000 + i) for i in range(10)]
    holder = [bufs.pop() for _ in range(10)]
    snap = refgraph.snapshot()
    expected = sys.getsizeof(holder) + sum(sys.getsizeof(b) for b in holder)
    assert snap.retained_size(holder) == expected
    assert snap.retained_size(holder[0]) == sys.getsizeof(holder[0])


def test_retained_sizes_are_computed_without_the_gil():
    """Another Python thread runs while the retained sizes are computed; the progress
    callback is still called (with the GIL), and the answer is the same as computed again
    on a fresh load."""
    keep = [[Record(i)] for i in range(150_000)]
    snap = refgraph.snapshot(collect=False)
    ticks = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0)  # hands the GIL back at once

    seen = []

    def progress(stage, done, total):
        seen.append((stage, done, total, ticks[0]))

    interval = sys.getswitchinterval()
    # No forced switches: the spinning thread runs only when this one releases the GIL.
    sys.setswitchinterval(1000)
    t = threading.Thread(target=spin)
    t.start()
    try:
        rows = snap.typestats(retained=True, progress=progress)
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        t.join()
    assert len(seen) > 10
    assert seen[-1][1] == seen[-1][2]
    # Never backwards, and the end said once, last (retained sizes are summed after the
    # dominator tree: its nine tenths).
    assert all(a[1] <= b[1] and a[2] == b[2] for a, b in zip(seen, seen[1:], strict=False))
    assert [d for _, d, _, _ in seen].count(seen[-1][2]) == 1
    assert seen[-1][3] > seen[0][3], "no other thread ran during the analysis"
    assert refgraph.snapshot_from_bytes(snap.to_bytes()).typestats(retained=True) == rows
    del keep


def test_saving_and_loading_run_without_the_gil(tmp_path):
    """Another Python thread runs while a snapshot is encoded, compressed, read back and
    decoded; the progress callbacks are still called (with the GIL)."""
    keep = [[Record(i)] for i in range(150_000)]
    snap = refgraph.snapshot(collect=False)
    path = tmp_path / "s.rgsnap"
    ticks = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0)  # hands the GIL back at once

    saved, loaded, compared = [], [], []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000)
    t = threading.Thread(target=spin)
    t.start()
    try:
        snap.save(path, progress=lambda *a: saved.append((*a, ticks[0])))
        back = refgraph.load(path, progress=lambda *a: loaded.append((*a, ticks[0])))
        back.typestats(retained=True)
        before = ticks[0]
        rows = back.diff(snap)
        compared.append(ticks[0] - before)
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        t.join()
    for seen in (saved, loaded):
        assert len(seen) > 2
        assert seen[-1][1] == seen[-1][2]
        assert seen[-1][3] > seen[0][3], f"no other thread ran: {seen}"
    assert compared[0] > 0, "no other thread ran during the diff"
    assert rows == []
    del keep


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux /proc")
def test_no_thread_outlives_a_call(tmp_path):
    """The worker threads of saving, loading and the analysis are joined before each call
    returns (a process that forks later, or a target of `refgraph attach`, keeps none)."""
    keep = [[Record(i)] for i in range(50_000)]
    # Garbage of earlier tests is collected first and no collection runs below (a finalizer
    # of another library's object could start a thread of its own).
    gc.collect()
    gc.disable()
    try:
        before = sorted(os.listdir("/proc/self/task"))
        snap = refgraph.snapshot(collect=False)
        snap.save(tmp_path / "s.rgsnap")
        back = refgraph.load(tmp_path / "s.rgsnap")
        back.typestats(retained=True)
        back.diff(snap)
        back.paths("Record")
        # A joined thread can stay listed for a moment while the kernel finishes its exit:
        # one that outlives the call stays listed.
        deadline = time.monotonic() + 2
        while (after := sorted(os.listdir("/proc/self/task"))) != before:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
    finally:
        gc.enable()
    new = {}
    for tid in set(after) - set(before):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                new[tid] = f.read().strip()
        except OSError:
            new[tid] = "(gone)"
    assert after == before, f"threads left: {new}"
    del keep


_THREADS_PROBE = """
import sys, refgraph
s = refgraph.load(sys.argv[1])
old = refgraph.load(sys.argv[2])
sys.stdout.buffer.write(s.to_bytes())
with open(sys.argv[3], "w") as f:
    print(repr(s.typestats(retained=True)), file=f)
    print(repr(s.diff(old)), file=f)
    print(repr(s.paths("Record")), file=f)
"""


def test_results_do_not_depend_on_the_number_of_threads(tmp_path):
    """REFGRAPH_THREADS=1 (serial) and several threads give the same file bytes and the same
    retained sizes, diff and paths."""
    global _module_cache
    _module_cache = [Record(i) for i in range(30_000)]
    old = refgraph.snapshot()
    _module_cache.extend(Record(i) for i in range(20_000))
    new = refgraph.snapshot()
    old.save(tmp_path / "old.rgsnap")
    new.save(tmp_path / "new.rgsnap")
    prog = tmp_path / "probe.py"
    prog.write_text(_THREADS_PROBE)
    out = {}
    for threads in ("1", "2", "5"):
        env = dict(os.environ, REFGRAPH_THREADS=threads)
        text = tmp_path / f"text{threads}"
        files = [str(tmp_path / "new.rgsnap"), str(tmp_path / "old.rgsnap"), str(text)]
        done = subprocess.run(
            [sys.executable, str(prog), *files],
            env=env,
            capture_output=True,
            check=True,
            timeout=120,
        )
        out[threads] = (done.stdout, text.read_text())
    assert out["1"][0] == new.to_bytes() == (tmp_path / "new.rgsnap").read_bytes()
    assert out["1"] == out["2"] == out["5"]
    assert "Record" in out["1"][1]
    _module_cache = []


_CAPTURE_PROBE = """
import sys, refgraph
class Record:
    def __init__(self, i):
        self.payload = [i, str(i) * 3]
held = [Record(i) for i in range(20_000)]
by_key = {f"key{i}": Record(i) for i in range(5_000)}
s = refgraph.snapshot()
data = s.to_bytes()
back = refgraph.snapshot_from_bytes(data)
assert back.to_bytes() == data, "a loaded file saves as itself"
for query in ("typestats", "paths"):
    mine = s.typestats(retained=True) if query == "typestats" else s.paths("Record")
    theirs = back.typestats(retained=True) if query == "typestats" else back.paths("Record")
    assert repr(mine) == repr(theirs), query
addr = id(by_key["key7"])
expr = s.expression(address=addr)
assert expr == back.expression(address=addr) == "__main__.by_key['key7']", expr
assert s.describe(address=addr) == back.describe(address=addr)
payload = held[123].payload
assert s.size(payload) == back.size(payload) == sys.getsizeof(payload)
assert s.size(payload[1]) == sys.getsizeof(payload[1])
print(len(data), s.info()["bytes"] == back.info()["bytes"])
"""


def test_a_capture_packs_its_columns_as_the_file_stores_them(tmp_path):
    """With two threads a capture packs its columns as it goes (written by save as they are);
    with one it does not: either way the snapshot reads the same as its file, and the file
    loads and saves as itself."""
    prog = tmp_path / "probe.py"
    prog.write_text(_CAPTURE_PROBE)
    for threads in ("1", "2"):
        done = subprocess.run(
            [sys.executable, str(prog)],
            env=dict(os.environ, REFGRAPH_THREADS=threads),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        size, same_bytes = done.stdout.split()
        assert int(size) > 10_000 and same_bytes == "True"


def test_diff_names_the_growing_type_first():
    global _module_cache
    _module_cache = []
    old = refgraph.snapshot()
    _module_cache.extend(Record(i) for i in range(2000))
    new = refgraph.snapshot()
    rows = new.diff(old)
    assert rows[0].name == f"{__name__}.Record"
    assert rows[0].count_delta == 2000
    assert rows[0].new_objects == 2000
    assert rows[0].bytes_delta == 2000 * sys.getsizeof(_module_cache[0])
    with pytest.raises(TypeError):
        new.diff("not a snapshot")


def test_paths_lead_to_the_module_global():
    global _module_cache
    _module_cache = [Record(i) for i in range(5)]
    snap = refgraph.snapshot()
    found = snap.paths("Record")
    assert found.targets >= 5
    shapes = [g.shape for g in found.groups]
    want = ["dict", f"list {__name__}._module_cache", f"{__name__}.Record"]
    assert any(s[-3:] == want and s[0] == f"module {__name__}" for s in shapes), shapes
    one = snap.paths(_module_cache[0])
    assert one.targets == 1 and one.groups[0].example[-1][0] == id(_module_cache[0])


def test_weak_references_do_not_retain():
    class Target:
        pass

    global _module_cache
    t = Target()
    _module_cache = [weakref.ref(t)]
    snap = refgraph.snapshot()
    for g in snap.paths(t).groups:
        assert not any("weakref" in step for step in g.shape)


def test_thread_stacks_are_roots():
    ready = threading.Event()
    stop = threading.Event()

    class OnlyOnAStack:
        pass

    def worker():
        local = OnlyOnAStack()  # noqa: F841  (held by the frame only)
        ready.set()
        stop.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    ready.wait(10)
    try:
        snap = refgraph.snapshot()
        assert snap.info()["thread_frames"] >= 2
        found = snap.paths("OnlyOnAStack")
        assert found.targets == 1 and found.unreachable == 0
        # Python 3.10's frames show their locals to the gc; from 3.11 on a running frame's
        # locals are invisible to it, so the object is a root itself (nothing refers to it).
        shape = found.groups[0].shape
        if sys.version_info < (3, 11):
            assert shape[0].startswith("frame"), shape
        else:
            assert len(shape) == 1, shape
    finally:
        stop.set()
        t.join()


def test_graph_draws_svg_png_and_dot(tmp_path):
    global _module_cache
    _module_cache = [Record(i) for i in range(3)]
    snap = refgraph.snapshot()
    import xml.etree.ElementTree as ET

    n = snap.graph("Record", tmp_path / "g.svg")
    assert n >= 3
    ET.parse(tmp_path / "g.svg")
    snap.graph(_module_cache[0], tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    snap.graph("Record", tmp_path / "g.dot", backrefs=False)
    assert (tmp_path / "g.dot").read_text().startswith("digraph ObjectGraph {")
    assert "<svg" in snap.graph("Record")
    with pytest.raises(ValueError, match=".svg, .png or .dot"):
        snap.graph("Record", tmp_path / "g.pdf")
    with pytest.raises(LookupError):
        snap.graph("NoSuchTypeAnywhere", tmp_path / "x.svg")
    with pytest.raises(TypeError):
        snap.paths()


def test_options_untracked_and_collect():
    snap = refgraph.snapshot(untracked=False, collect=False)
    info = snap.info()
    assert info["untracked"] is False and info["collected"] is False
    # Only roots the gc does not track (fresh frame objects) are added.
    assert info["objects"] - info["tracked"] <= info["thread_frames"]
    full = refgraph.snapshot()
    assert full.info()["objects"] > full.info()["tracked"]


class GarbageNode:
    pass


class Finalized:
    ran = []

    def __del__(self):
        Finalized.ran.append(id(self))


def _make_garbage(alive_target):
    """Reference cycles of many kinds that nothing else refers to (with what only they refer
    to: a unique str, int and tuple, a class and its instance), one of them referring to
    `alive_target`; returns the ids of the garbage objects, a weak reference to one, and the id
    of a tracked tuple the garbage holds only through a code object."""
    a, b = GarbageNode(), GarbageNode()
    a.other, b.other = b, a
    a.text = "garbage-only " + str(id(a))
    a.number = 10**30 + id(a)
    a.pair = (a.text, a.number)
    b.alive = alive_target
    lst = []
    lst.append(lst)
    d = {}
    d["self"] = d
    f = Finalized()
    f.me = f

    class Local:
        pass

    x = Local()
    x.cycle = x
    try:
        raise ValueError("boom")
    except ValueError as e:
        err = e
    err.keep = err  # the exception, its traceback and this frame

    def outer():
        def inner():
            return inner

        return inner

    closure = outer()
    # Code compiled at run time: its constant is held by its code object alone.
    ns = {}
    exec(f"def dynamic():\n    return {'dynamic-' + str(id(a))!r}\n", ns)
    code = ns["dynamic"].__code__
    constant = next(c for c in code.co_consts if isinstance(c, str) and c.startswith("dyn"))
    ids = [id(o) for o in (ns, code, code.co_consts, constant)]
    through_code = id(code.co_consts)
    del ns, code, constant
    ids += [id(o) for o in (a, b, a.text, a.number, a.pair, lst, d, f, Local, x, err)]
    ids.append(id(closure))
    return ids, weakref.ref(a), through_code


@pytest.mark.parametrize("untracked", [True, False])
@pytest.mark.parametrize("progress", [False, True])
def test_graph_leaves_garbage_out_without_collecting(untracked, progress):
    """``collect="graph"`` leaves out what `gc.collect()` would free, found on the graph: no
    collection runs and no finalizer; what is alive is kept, also when garbage refers to it,
    and also an alive cycle held only by a local variable."""
    alive = GarbageNode()
    held_cycle = GarbageNode()
    held_cycle.me = held_cycle
    held_cycle.items = [held_cycle]
    gc.collect()
    started = []

    def note(phase, info):
        started.append(phase)

    gc.disable()
    gc.callbacks.append(note)
    try:
        ids, weak, through_code = _make_garbage(alive)
        Finalized.ran.clear()
        snap = refgraph.snapshot(
            untracked=untracked, collect="graph", progress=(lambda *a: None) if progress else None
        )
        assert started == [] and Finalized.ran == []
        assert weak() is not None  # still garbage in the process: not collected
        assert snap.info()["collected"] is True
        present = [i for i in ids if snap.size(address=i) is not None]
        # Without untracked, a code object is no node: a tracked object it holds (its
        # constants) seems held from outside and stays.
        assert present == ([] if untracked else [through_code])
        assert snap.size(alive) is not None and snap.size(held_cycle) is not None
        assert snap.size(held_cycle.items) is not None
        # The same heap without leaving garbage out has all of it (with untracked=False,
        # not the str, the int, the code object and its str constant).
        whole = refgraph.snapshot(untracked=untracked, collect=False)
        missing = [i for i in ids if whole.size(address=i) is None]
        assert len(missing) == (0 if untracked else 4)
        assert started == []
    finally:
        gc.callbacks.remove(note)
        gc.enable()
    gc.collect()
    assert weak() is None and len(Finalized.ran) == 1


def test_default_collects_first():
    """The default snapshot runs `gc.collect()` first (finalizers of garbage run); a `collect`
    string other than "graph" is refused."""
    gc.collect()
    gc.disable()
    try:
        _, weak, _ = _make_garbage(GarbageNode())
        Finalized.ran.clear()
        snap = refgraph.snapshot()
        # Freed (their addresses may hold new objects now).
        assert weak() is None and len(Finalized.ran) == 1
        assert snap.info()["collected"] is True
    finally:
        gc.enable()
    with pytest.raises(ValueError, match="collect must be"):
        refgraph.snapshot(collect="yes")


def test_code_objects_contents_are_recorded():
    """What a code object holds (constants, names, file name, line table) is in a snapshot,
    though `gc.get_referents` reports nothing for it."""

    def sample():
        return len("a constant of sample")

    code = sample.__code__
    assert gc.get_referents(code) == []
    snap = refgraph.snapshot()
    held = {addr for addr, _ in snap.referents(code)}
    assert {id(code.co_consts), id(code.co_names), id(code.co_filename)} <= held
    assert snap.size(code.co_consts) is not None
    # The objgraph-compatible walks follow tp_traverse only.
    assert refgraph.find_ref_chain(code, lambda o: o is code.co_consts) == [code]


def test_garbage_left_out_as_the_collector_frees_it():
    """Counts by type of a snapshot that leaves garbage out, against one taken right after
    `gc.collect()`: equal, or the first a few more (at most 3 a type, not one per object
    freed: what the garbage held through references the collector does not follow, or what
    freeing it released elsewhere), or one more a class freed for a weak reference and an int
    (its entry in its bases' `__subclasses__()`). Never fewer: nothing alive is left out.
    Forty times the garbage of `_make_garbage` would show as forty a type."""
    alive = [GarbageNode() for _ in range(10)]
    gc.collect()
    gc.disable()
    try:
        for _ in range(40):
            _make_garbage(alive[0])
        # Only the extension's object is kept from the first: on 3.10 the Python wrapper's
        # __dict__ would be one more dict in the second.
        left_out = refgraph.snapshot(collect="graph")._s
        # A bool, not the count: on 3.10 the frame's locals are seen, and a big int is one more.
        freed_all = gc.collect() >= 40 * 13
        collected = refgraph.snapshot(collect=False)
    finally:
        gc.enable()
    left_out = refgraph.Snapshot(left_out)
    assert freed_all
    a = {r.name: r.count for r in left_out.typestats(retained=False)}
    b = {r.name: r.count for r in collected.typestats(retained=False)}
    ours = {"refgraph.snapshot.Snapshot", "refgraph._refgraph.Snapshot"}
    for name in (set(a) | set(b)) - ours:
        more = a.get(name, 0) - b.get(name, 0)
        limit = 40 + 3 if name in ("weakref.ReferenceType", "int") else 3
        assert 0 <= more <= limit, (name, a.get(name, 0), b.get(name, 0))
    assert a[f"{__name__}.GarbageNode"] == 10
    assert f"{__name__}.Finalized" not in a and f"{__name__}.Local" not in a


@pytest.mark.skipif(not hasattr(signal, "SIGUSR2"), reason="no SIGUSR2")
def test_dump_on_signal(tmp_path):
    previous = refgraph.dump_on_signal(signal.SIGUSR2, tmp_path)
    try:
        os.kill(os.getpid(), signal.SIGUSR2)
        for _ in range(100):  # the handler runs at the next bytecode boundary
            if os.listdir(tmp_path):
                break
        files = os.listdir(tmp_path)
        assert len(files) == 1 and files[0].endswith(".rgsnap")
        assert len(refgraph.load(tmp_path / files[0])) > 0
    finally:
        signal.signal(signal.SIGUSR2, previous)
    with pytest.raises(NotADirectoryError):
        refgraph.dump_on_signal(signal.SIGUSR2, tmp_path / "missing")


@pytest.mark.slow
def test_repeated_snapshots_do_not_leak_memory():
    for _ in range(5):
        refgraph.snapshot(collect=False).to_bytes()
    before = rss_kb()
    for _ in range(40):
        refgraph.snapshot(collect=False).to_bytes()
    assert rss_kb() - before < 20_000, "RSS grew by more than 20 MB over 40 snapshots"


LEAKY_PROGRAM = """
import sys
import refgraph

class Session:
    def __init__(self, user):
        self.user = user
        self.history = [user] * 5

_sessions = {}

def handle(i):
    _sessions[i] = Session(f"user{i}")  # never evicted

for i in range(100):
    handle(i)
refgraph.snapshot().save(sys.argv[1])
for i in range(100, 3100):
    handle(i)
refgraph.snapshot().save(sys.argv[2])
"""


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "refgraph", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def two_snapshots(tmp_path_factory):
    d = tmp_path_factory.mktemp("leak")
    prog = d / "leaky.py"
    prog.write_text(LEAKY_PROGRAM)
    a, b = d / "a.rgsnap", d / "b.rgsnap"
    subprocess.run([sys.executable, str(prog), str(a), str(b)], check=True, timeout=120)
    return a, b


def test_cli_diff_names_the_leak_and_paths_show_the_global(two_snapshots):
    a, b = two_snapshots
    r = _cli("diff", a, b)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("__main__.")]
    first_row = r.stdout.splitlines()[4]
    assert first_row.startswith("__main__.Session"), r.stdout
    assert "+3,000" in rows[0]
    r = _cli("paths", b, "Session")
    assert r.returncode == 0, r.stderr
    assert "3,100 Session objects" in r.stdout
    assert "module __main__" in r.stdout
    assert "dict __main__._sessions (3100 items)" in r.stdout


def test_cli_json_and_other_commands(two_snapshots, tmp_path):
    import json

    a, b = two_snapshots
    d = json.loads(_cli("diff", a, b, "--json").stdout)
    assert d["types"][0]["name"] == "__main__.Session"
    assert d["types"][0]["count_delta"] == 3000
    t = json.loads(_cli("top", b, "--json", "-n", "5").stdout)
    assert len(t["types"]) == 5 and t["info"]["objects"] > 0
    assert all(row["retained"] >= row["shallow"] or row["count"] == 0 for row in t["types"])
    p = json.loads(_cli("paths", b, "__main__.Session", "--json").stdout)
    assert p["targets"] == 3100 and p["groups"][0]["count"] == 3100
    i = json.loads(_cli("info", b, "--json").stdout)
    assert i["untracked"] is True
    out = tmp_path / "g.svg"
    r = _cli("graph", b, "Session", "-o", out)
    assert r.returncode == 0 and out.exists() and "Graph written to" in r.stdout
    top = _cli("top", b, "--sort", "count")
    assert top.returncode == 0 and "count" in top.stdout


def test_cli_errors_are_one_line(two_snapshots, tmp_path):
    a, b = two_snapshots
    bad = tmp_path / "bad.rgsnap"
    bad.write_bytes(a.read_bytes()[:1000])
    for args, needle in [
        (("top", tmp_path / "missing.rgsnap"), "no such file"),
        (("top", bad), "truncated"),
        (("info", __file__), "not a refgraph snapshot"),
        (("paths", b, "NoSuchType"), "no objects of type"),
        (("graph", b, "Session", "-o", tmp_path / "x.pdf"), "unknown file extension"),
    ]:
        r = _cli(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr
    assert _cli("top").returncode == 2  # usage error from argparse
    h = _cli("--help")
    assert h.returncode == 0
    for command in ("top", "diff", "paths", "graph", "info", "demo"):
        assert command in h.stdout
        assert _cli(command, "--help").returncode == 0


def test_extension_records_match_the_public_rows():
    # The package builds its public named tuples from the extension's records field by field:
    # a field renamed or dropped on one side must fail here, not shift values silently.
    from refgraph import _refgraph
    from refgraph.snapshot import PathGroup, TypeDiff, TypeStat

    for record, public in (
        (_refgraph.TypeRow, TypeStat),
        (_refgraph.DiffRow, TypeDiff),
        (_refgraph.PathGroup, PathGroup),
    ):
        fields = {k for k, v in vars(record).items() if type(v).__name__ == "getset_descriptor"}
        assert fields == set(public._fields), (record, public)
    snap = refgraph.snapshot()
    rows = snap.typestats()
    assert all(isinstance(r, TypeStat) for r in rows)
    assert sum(r.count for r in rows) == len(snap)
