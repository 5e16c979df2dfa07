"""The whole-heap queries walk the collector's lists directly: same objects, same order as
``gc.get_objects()``, on every Python, and the switch back to ``gc.get_objects()`` works."""

import gc
import os
import subprocess
import sys
import textwrap

import pytest

import refgraph
from refgraph import _refgraph


class Walked:
    pass


@pytest.fixture
def spread():
    """Instances in every generation, created between collections."""
    gc.collect()
    made = []
    for _ in range(3):
        made += [Walked() for _ in range(300)]
        for o in made[-300:]:
            o.d = {"k": [o]}  # tracked companions of several types
        gc.collect(0)
    made += [Walked() for _ in range(50)]  # still in generation 0
    yield made
    del made[:]
    gc.collect()


def test_walk_is_active_on_known_versions():
    expected = (3, 10) <= sys.version_info[:2] <= (3, 13) and os.environ.get(
        "REFGRAPH_GC_WALK"
    ) != "0"
    assert _refgraph.gc_walk_active() is expected


def test_by_type_order_and_identity_match_get_objects(spread):
    got = _refgraph.by_type(None, "Walked")
    want = [o for o in gc.get_objects() if type(o) is Walked]
    assert len(got) == len(spread) == 950
    assert all(a is b for a, b in zip(got, want, strict=True))
    assert {id(o) for o in got} == {id(o) for o in spread}


def test_typestats_order_and_counts_match_get_objects(spread):
    walked = _refgraph.typestats(None, True, None)
    listed = _refgraph.typestats(gc.get_objects(), True, None)
    assert [n for n, _ in walked] == [n for n, _ in listed]
    assert dict(walked)["Walked"] == dict(listed)["Walked"] == 950
    # The only difference is the first result, alive during the second call: a list of tuples.
    diff = {n: dict(listed)[n] - c for n, c in walked if dict(listed)[n] != c}
    assert diff == {"list": 1, "tuple": len(walked)}, diff


def test_count_at_and_at_addrs_in_every_generation(spread):
    assert refgraph.count("Walked") == 950
    assert refgraph.count("test_gcwalk.Walked") == 950
    for o in (spread[0], spread[400], spread[-1]):  # oldest, middle, youngest
        assert refgraph.at(id(o)) is o
    picked = spread[::97]
    got = refgraph.at_addrs({id(o) for o in picked})
    assert {id(o) for o in got} == {id(o) for o in picked}
    assert refgraph.at(id(object())) is None  # untracked: never found


def test_objects_found_in_generation_being_finalized():
    """A query run from a finalizer during a collection sees what gc.get_objects() sees."""
    seen = {}

    class Finalized:
        def __del__(self):
            seen["walked"] = _refgraph.typestats(None, True, None)
            seen["listed"] = _refgraph.typestats(gc.get_objects(), True, None)
            seen["by_type"] = len(_refgraph.by_type(None, "Walked"))

    keep = [Walked() for _ in range(10)]
    f = Finalized()
    f.cycle = f
    del f
    gc.collect()
    assert seen["by_type"] == 10
    walked, listed = dict(seen["walked"]), dict(seen["listed"])
    assert set(walked) == set(listed)
    assert walked["Walked"] == listed["Walked"] == 10
    del keep


def test_switch_off_gives_the_same_answers():
    code = textwrap.dedent(
        """
        import gc, refgraph
        from refgraph import _refgraph
        class Walked: pass
        keep = [Walked() for _ in range(123)]
        gc.collect()
        print(_refgraph.gc_walk_active(), refgraph.count("Walked"),
              len(refgraph.by_type("Walked")), refgraph.at(id(keep[5])) is keep[5])
        """
    )
    env = dict(os.environ, REFGRAPH_GC_WALK="0")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "123", "123", "True"]


def test_gc_objects_is_get_objects(spread):
    """The list the capture, get_new_ids and get_leaking_objects start from."""
    walked = _refgraph.gc_objects()
    listed = gc.get_objects()
    assert all(o is not walked for o in walked)
    rest = [o for o in listed if o is not walked]
    assert len(rest) == len(listed) - 1 == len(walked)
    assert all(a is b for a, b in zip(walked, rest, strict=True))


def test_leaking_objects_and_new_ids_see_the_walked_heap(spread):
    roots = refgraph.get_leaking_objects()
    assert not any(type(o) is Walked for o in roots)  # all referred to by `spread`
    refgraph.get_new_ids(limit=0)
    more = [Walked() for _ in range(7)]
    new = refgraph.get_new_ids(limit=0)
    assert {id(o) for o in more} <= new["Walked"]


@pytest.mark.parametrize("walk", ["1", "0"])
def test_first_capture_of_a_process_sees_the_whole_heap(walk):
    """The first capture of a process checks the collector's lists (the young generations
    against ``gc.get_objects(generation)``, the oldest one's head in place) and walks them; with
    the walk switched off, it takes the references of ``gc.get_objects()``'s list over: either
    way the same objects as ``gc.get_objects()``, every reference given back, nothing kept
    alive."""
    code = textwrap.dedent(
        """
        import gc, sys, weakref
        from refgraph import _refgraph
        class Marker: pass
        keep = [Marker() for _ in range(321)]
        gone = Marker()
        w = weakref.ref(gone)
        gc.collect(); gc.disable()
        before = sys.getrefcount(keep[7])
        listed = len(gc.get_objects())
        h = _refgraph.Heap(True)  # the first query of this process
        # One more than listed: the tuple of the call's arguments, tracked meanwhile.
        first = (h.tracked_count - listed, keep[7] in h, gone in h)
        h.close(); del h
        del gone
        after = sys.getrefcount(keep[7])
        print(_refgraph.gc_walk_active(), first, before == after, w() is None)
        """
    )
    env = dict(os.environ, REFGRAPH_GC_WALK=walk)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    active = "True" if walk == "1" else "False"
    assert out == f"{active} (1, True, True) True True", out


def test_collector_estimate_counts_the_tracked_objects():
    """The collector's own count (read from its state, where the `gc` module's `garbage` and
    `callbacks` lists prove the layout) is what `gc.get_objects()` lists right after a
    collection, and grows with new objects before the next one; a first capture sizes its
    arrays from it."""
    if not _refgraph.gc_walk_active():
        assert _refgraph.gc_collector_estimate() is None
        return
    gc.collect()
    estimate = _refgraph.gc_collector_estimate()
    listed = len(gc.get_objects())
    assert abs(estimate - listed) <= 50, (estimate, listed)
    gc.disable()
    try:
        made = [[] for _ in range(20_000)]
        grown = _refgraph.gc_collector_estimate()
    finally:
        gc.enable()
    assert 20_000 <= grown - estimate <= 20_000 + 50, (estimate, grown)
    del made


@pytest.mark.parametrize("stale", [False, True])
def test_first_snapshot_of_a_process_sized_from_the_collector(stale):
    """The first capture of a process, on two threads, lists the objects into arrays sized
    from the collector's count: right after a collection (exact), or after most objects died
    since (the count is stale, far too high: the room left over is given back). Either way
    every object is there, once, as in a second snapshot, and the collector's lists are
    sound. (The builder made before the listing, with its pages faulted in ahead, needs
    millions of objects; `capture_marks_agree` makes it from 2**14 objects, with the
    listing's room faulted in too, and compares its graph with one built without marks.)"""
    code = textwrap.dedent(
        f"""
        import gc, refgraph
        from refgraph import _refgraph
        class Marker: pass
        keep = [[Marker(), {{}}] for _ in range(30_000)]
        dead = [[Marker()] for _ in range(200_000 if {stale} else 0)]
        gc.collect()
        estimate = _refgraph.gc_collector_estimate()
        del dead
        listed = len(gc.get_objects())
        first = refgraph.snapshot(collect=False)
        second = refgraph.snapshot(collect=False)
        want = sorted(id(k[0]) for k in keep)
        print(
            estimate is None or (estimate > 2 * listed) == {stale},
            sorted(first.addresses("Marker")) == want,
            sorted(second.addresses("Marker")) == want,
            abs(first.info()["objects"] - second.info()["objects"]) <= 50,
            _refgraph.gc_lists_sound() is not False,
        )
        """
    )
    env = dict(os.environ, REFGRAPH_THREADS="2")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "True True True True True", out


def test_first_query_lists_only_the_young_generations():
    """The layout check of the first query of a process lists the young generations only (the
    oldest holds nearly every object of a big heap: listing it would cost as much as the
    query); the oldest generation's head is proven in place."""
    code = textwrap.dedent(
        """
        import gc
        calls = []
        real = gc.get_objects
        def listing(*args):
            calls.append(args)
            return real(*args)
        gc.get_objects = listing
        import refgraph
        from refgraph import _refgraph
        keep = [{} for _ in range(1000)]
        n = refgraph.count("dict")
        gc.get_objects = real
        print(_refgraph.gc_walk_active(), calls, n >= 1000)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == "True [(0,), (1,)] True", out


def test_first_check_survives_a_finalizer_that_queries():
    """The first query checks the layout, which allocates; a collection started there may run
    a finalizer that queries refgraph again (re-entrant), on the same thread."""
    code = textwrap.dedent(
        """
        import gc, sys, refgraph
        seen = []
        class Bomb:
            def __del__(self):
                # Is the outer refgraph.count on the stack (a re-entrant call)?
                f, nested = sys._getframe(1), False
                while f is not None:
                    code = f.f_code
                    nested |= code.co_name == "count" and "refgraph" in code.co_filename
                    f = f.f_back
                seen.append((nested, refgraph.count("Bomb")))
        for _ in range(50):
            b = Bomb()
            b.me = b
        del b
        gc.set_threshold(1)
        n = refgraph.count("dict")
        gc.set_threshold(700)
        gc.collect()  # the Bombs not finalized during the query are, here
        print(n > 0, len(seen), sum(nested for nested, _ in seen))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out[0] == "True"
    assert int(out[1]) == 50, out  # every finalizer ran, and its own query answered
    if sys.version_info < (3, 12):
        # The collector runs inside an allocation there: finalizers ran inside the outer query.
        assert int(out[2]) >= 1, out
    # From 3.12 on a collection waits for the next eval-breaker check, in Python code: no
    # finalizer can run inside the extension's first check, only between Python lines.


def test_frozen_objects_are_left_out_as_by_get_objects():
    """gc.freeze() moves objects to the permanent generation, which gc.get_objects() skips."""
    code = textwrap.dedent(
        """
        import gc, refgraph
        class Walked: pass
        old = [Walked() for _ in range(40)]
        gc.freeze()
        new = [Walked() for _ in range(3)]
        listed = sum(type(o) is Walked for o in gc.get_objects())
        print(refgraph.count("Walked"), len(refgraph.by_type("Walked")), listed,
              refgraph.at(id(old[0])) is None, refgraph.at(id(new[0])) is new[0])
        gc.unfreeze()
        print(refgraph.count("Walked"))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == ["3", "3", "3", "True", "True", "43"]


def test_collector_state_and_refcounts_kept(spread):
    """gc_objects and by_type turn the collector off while they work, then back as it was;
    the references the list took go away with it."""
    probe = spread[123]
    before = sys.getrefcount(probe)
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            objs = _refgraph.gc_objects()
            assert sys.getrefcount(probe) == before + 1
            del objs
            assert len(_refgraph.by_type(None, "Walked")) == 950
            assert gc.isenabled() is enabled
        finally:
            gc.enable()
    assert sys.getrefcount(probe) == before


def test_capture_on_two_threads_gives_the_same_graph(spread):
    """The capture looks addresses up on a second thread while it traverses the next objects,
    and fills the address index by halves on two, while a third faults the pages of the
    reference arrays in ahead (whatever the heap's size, in this comparison); one thread and
    two give the same nodes, types, flags and references (compared inside one call, with no
    Python code run between the two captures)."""
    assert _refgraph.capture_threads_agree()
    # A heap big enough for many chunks of the pipeline and an index filled on two threads
    # (over 2^16 tracked objects), with untracked referents (ints, strs) first met in every
    # chunk.
    big = [[i, str(i), (i, -i)] for i in range(60_000)]
    assert _refgraph.capture_threads_agree()
    # Reporting progress makes the capture stop about once per percent of each phase (here
    # more often than once per chunk), with the chunks looked up ahead recorded first: the
    # graph is the same. `slice` takes the three arguments and changes nothing the capture
    # sees (a Python function would: its frame, what it appends to); no collection meanwhile.
    gc.disable()
    try:
        assert _refgraph.capture_threads_agree(slice)
    finally:
        gc.enable()
    del big


# While a capture runs, each listed object's `_gc_prev` link holds its node (restored before
# the capture returns): the capture finds the nodes of tracked referents from the objects.


class Plain:
    pass


class WithSlots:
    __slots__ = ("a", "b")


def marks_heap():
    """Referents of every kind the marks must tell apart: tracked objects of many types,
    classes (heap types, which are gc objects) and static types (which are not, and have no
    collector links), untracked containers, strs and ints, functions, modules, a cycle."""
    import asyncio
    import collections
    import enum

    class Color(enum.Enum):
        RED = 1

    made = []
    for i in range(3000):
        p = Plain()
        p.n, p.s, p.t = i, str(i), (i, "x")  # an int, a str, an untracked tuple
        w = WithSlots()
        w.a, w.b = p, int  # a tracked object and a static type
        made += [p, w, {"plain": Plain, "slots": WithSlots, "d": collections.OrderedDict()}]

    def plain_function(x=made):
        return x

    # a module, a class, a function, a list that holds itself
    made += [Color, Color.RED, asyncio, enum, plain_function, made]
    loop = asyncio.new_event_loop()
    made.append(loop.create_future())
    loop.close()
    return made


@pytest.mark.parametrize("inline", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_capture_with_marks_gives_the_same_graph(spread, threads, inline):
    """The nodes found from the marks are those the address index gives: the same nodes,
    types, flags and references, with roots the collector tracks (already nodes) and does
    not track (new nodes), on one thread and on two, the marks read after the traversal or
    as it goes (as on a big heap); the collector's lists are sound after (every `_gc_prev`
    restored), and a collection runs as usual."""
    made = marks_heap()
    gc.collect()
    untracked_root = {1: 2}
    assert not gc.is_tracked(untracked_root)
    roots = [untracked_root, spread[7], made[5], Plain]
    agree, used = _refgraph.capture_marks_agree(threads, roots, inline)
    assert agree
    assert _refgraph.gc_lists_sound() is not False
    if _refgraph.gc_walk_active():
        assert used is True
        assert _refgraph.gc_lists_sound() is True
    # Many captures in a row, with collections between them: the lists stay sound.
    for _ in range(3):
        assert refgraph.count("Plain") == 3000
        gc.collect()
        assert _refgraph.gc_lists_sound() is not False
    del made


def test_capture_with_marks_and_frozen_objects():
    """Objects `gc.freeze()` moved out of the generation lists are not listed, so not
    marked: referred to, they become nodes as the index finds them (the same graph); after
    `gc.unfreeze()` they are listed again and the lists are sound."""
    code = textwrap.dedent(
        """
        import gc
        from refgraph import _refgraph
        class Plain: pass
        old = [Plain() for _ in range(200)]
        gc.freeze()
        holder = [old, old[3], [Plain() for _ in range(50)]]
        agree = [_refgraph.capture_marks_agree(2, inline=i) for i in (False, True)]
        print(agree[0], agree[1] == agree[0], _refgraph.gc_lists_sound())
        gc.unfreeze()
        agree = [_refgraph.capture_marks_agree(2, inline=i) for i in (False, True)]
        print(agree[0], agree[1] == agree[0], _refgraph.gc_lists_sound())
        gc.collect()
        print(_refgraph.gc_lists_sound())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    if _refgraph.gc_walk_active():
        assert out == ["(True, True) True True", "(True, True) True True", "True"]
    else:
        assert out == ["(True, None) True None", "(True, None) True None", "None"]


def test_marks_switched_off():
    """`REFGRAPH_GC_MARKS=0`: no marks, every address looked up in the index."""
    code = textwrap.dedent(
        """
        from refgraph import _refgraph
        keep = [[i] for i in range(1000)]
        print(_refgraph.capture_marks_agree(2))
        """
    )
    env = dict(os.environ, REFGRAPH_GC_MARKS="0")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "(True, None)"


# `at` first checks the address in place (its collector links, read through the kernel, never
# dereferenced before they prove an object), and walks only when that proves nothing.

needs_walk = pytest.mark.skipif(
    not _refgraph.gc_walk_active() or not sys.platform.startswith("linux"),
    reason="the in-place check needs the collector walk and Linux",
)


def listed_at(addr):
    """objgraph's answer: the object of gc.get_objects() with that id, or None."""
    return next((o for o in gc.get_objects() if id(o) == addr), None)


@needs_walk
def test_at_proves_tracked_objects_in_place(spread):
    for o in (spread[0], spread[400], spread[-1], spread[7].d, spread[7].d["k"]):
        assert _refgraph.at_without_walk(id(o)) is o
        assert refgraph.at(id(o)) is o
    assert gc.is_tracked(spread[0])


@needs_walk
def test_at_never_proves_what_is_not_a_tracked_object():
    gc.collect()
    untracked_tuple = (1, 2, 3)
    gc.collect()  # tuples of atoms are untracked by a collection
    assert not gc.is_tracked(untracked_tuple)
    text = "a str, never tracked"
    data = bytearray(4096)
    freed = [Walked()]
    freed_addr = id(freed[0])
    del freed[:]
    addrs = [
        0, 1, 8, 16, 4096, 4096 + 16, 2**63, 2**64 - 16, 0x7FFF_FFFF_F000,
        id(untracked_tuple), id(text), id(12345678901234), id(None),
        id(data) + 8, id(data) + 16, freed_addr,
        id(gc) - 16, id(gc) + 8, id(gc) + 24,
    ]  # fmt: skip
    for a in addrs:
        proven = _refgraph.at_without_walk(a)
        assert proven is None or proven is listed_at(a), hex(a)
        assert refgraph.at(a) is listed_at(a), hex(a)


@needs_walk
def test_at_with_crafted_links_in_a_buffer_proves_nothing():
    """Words shaped like a PyGC_Head that point at real objects' heads, inside a bytearray: the
    neighbours do not link back, so nothing is proven (and nothing is dereferenced)."""
    import ctypes
    import struct

    neighbour = [Walked(), Walked()]
    head = id(neighbour[0]) - 16
    buf = bytearray(struct.pack("<QQQQ", head, head, 1, id(Walked)) * 64)
    data = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
    for a in range(data, data + len(buf), 8):
        assert _refgraph.at_without_walk(a) is None, hex(a - data)
    # Around the bytearray object itself, only real objects are found.
    for a in range(id(buf) - 256, id(buf) + 256, 8):
        proven = _refgraph.at_without_walk(a)
        assert proven is None or proven is listed_at(a), hex(a - id(buf))


@needs_walk
def test_at_on_unreadable_memory_never_faults(tmp_path):
    """Pages that fault when touched (a mapping past the end of its truncated file: SIGBUS, a
    page with no access: SIGSEGV) are read through the kernel, which reports an error."""
    code = textwrap.dedent(
        """
        import ctypes, mmap, os, refgraph, sys
        from refgraph import _refgraph
        path = sys.argv[1]
        with open(path, "wb") as f:
            f.write(b"x" * 65536)
        f = open(path, "r+b")
        m = mmap.mmap(f.fileno(), 65536)
        buf = (ctypes.c_char * 65536).from_buffer(m)
        base = ctypes.addressof(buf)
        os.truncate(path, 0)  # touching the pages now raises SIGBUS
        libc = ctypes.CDLL(None, use_errno=True)
        anon = mmap.mmap(-1, 8192)
        abuf = (ctypes.c_char * 8192).from_buffer(anon)
        abase = ctypes.addressof(abuf)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        assert libc.mprotect(abase, 8192, 0) == 0  # PROT_NONE
        found = [refgraph.at(a) for b in (base, abase) for a in (b + 16, b + 4096, b + 8192 - 16)]
        direct = [_refgraph.at_without_walk(b + 16) for b in (base, abase)]
        print(found.count(None), direct.count(None))
        libc.mprotect(abase, 8192, 3)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "f")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["6", "2"]
