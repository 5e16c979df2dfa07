"""Never crash, never leak: every public function against every hostile object.

The matrix (kinds of hostile objects x functions) runs on every Python the suite runs on. A
crash of the interpreter fails the whole run; a raising callback must surface as its exception.
"""

from __future__ import annotations

import gc
import io
import re
import sys
import threading
import types
import weakref
import xml.etree.ElementTree as ET

import pytest
import zoo as zoo_module

import refgraph

from conftest import rss_kb


def _svg_ok(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")


FUNCTIONS = {
    "count": lambda o, tmp: refgraph.count("Plain", [o]),
    "count_long": lambda o, tmp: refgraph.count("zoo.Plain", [o, o]),
    "typestats": lambda o, tmp: refgraph.typestats([o], shortnames=False),
    "typestats_filter": lambda o, tmp: refgraph.typestats([o], filter=lambda x: x is o),
    "most_common_types": lambda o, tmp: refgraph.most_common_types(objects=[o, o]),
    "show_most_common_types": lambda o, tmp: refgraph.show_most_common_types(
        objects=[o], file=io.StringIO()
    ),
    "by_type": lambda o, tmp: refgraph.by_type("Plain", [o]),
    "at": lambda o, tmp: refgraph.at(id(o)),
    "at_addrs": lambda o, tmp: refgraph.at_addrs({id(o)}),
    "get_leaking_objects": lambda o, tmp: refgraph.get_leaking_objects([o]),
    "find_ref_chain": lambda o, tmp: refgraph.find_ref_chain(o, lambda x: False, max_depth=3),
    "find_backref_chain": lambda o, tmp: refgraph.find_backref_chain(
        o, refgraph.is_proper_module, max_depth=6
    ),
    "show_refs": lambda o, tmp: refgraph.show_refs(
        [o], output=io.StringIO(), refcounts=True, max_depth=2, extra_info=lambda x: "i"
    ),
    "show_backrefs": lambda o, tmp: refgraph.show_backrefs(
        [o], output=io.StringIO(), max_depth=2, highlight=lambda x: True, shortnames=False
    ),
    "show_chain": lambda o, tmp: refgraph.show_chain([o], output=io.StringIO()),
    "show_refs_svg": lambda o, tmp: (
        refgraph.show_refs([o], filename=str(tmp / "g.svg"), max_depth=1),
        _svg_ok(tmp / "g.svg"),
    ),
    "show_backrefs_png": lambda o, tmp: refgraph.show_backrefs(
        [o], filename=str(tmp / "g.png"), max_depth=1
    ),
    "is_proper_module": lambda o, tmp: refgraph.is_proper_module(o),
    "snapshot": lambda o, tmp: _snapshot_everything(o, tmp),
}


def _snapshot_everything(o, tmp, snap=None):
    """Capture the heap (unless given a capture of it), then ask it everything about ``o``."""
    if snap is None:
        snap = refgraph.snapshot(collect=False)
        again = refgraph.snapshot_from_bytes(snap.to_bytes())
        assert len(again) == len(snap)
    snap.paths(o)
    snap.paths(address=id(o))
    snap.retained_size(o)
    snap.describe(o)
    snap.expression(o)
    refs = snap.referents(o)
    if refs is not None:
        # Every name is text (or None); a named referent is a referent gc reports, or what a
        # code object holds in its members (a snapshot follows those too).
        got = {id(r) for r in gc.get_referents(o)}
        if type(o) is types.CodeType:
            members = vars(types.CodeType).items()
            got |= {
                id(getattr(o, k)) for k, v in members if isinstance(v, types.MemberDescriptorType)
            }
        assert all(name is None or isinstance(name, str) for _, name in refs)
        assert all(addr in got for addr, name in refs if name is not None)
    if snap.size(o) is not None:
        snap.graph(filename=str(tmp / "s.svg"), max_depth=2, address=id(o))
        _svg_ok(tmp / "s.svg")


def _kinds():
    z = zoo_module.make_zoo()
    kinds = sorted(z)
    zoo_module.close_zoo(z)
    return kinds


KINDS = _kinds()


# The class and the code object belong to the zoo module itself; the resurrector lives on by
# design until close_zoo() clears its list.
PERMANENT = {"weird_name_class", "code", "resurrector"}

# Kinds whose reference counts are checked around every function of the matrix.
REFCOUNTED = {"raising_repr", "mock_spec", "slotted", "hostile_repr_2", "weird_name_class"}


@pytest.fixture(scope="module")
def zoo():
    """The zoo every test of the matrix shares. When the module's tests are done, no object of
    it may still be alive: no function keeps its argument (or anything it saw) alive."""
    zoo_module.run_gather()
    z = zoo_module.make_zoo()
    refs = {}
    for kind, obj in z.items():
        try:
            refs[kind] = weakref.ref(obj)
        except TypeError:
            pass  # ints, strs, code objects ... cannot be weakly referenced
    del obj
    yield z
    zoo_module.close_zoo(z)
    gc.collect()
    alive = [k for k, r in refs.items() if r() is not None and k not in PERMANENT]
    assert alive == [], f"zoo objects kept alive after the matrix: {alive}"


@pytest.fixture(scope="module")
def zoo_snapshot(zoo):
    """One capture of the heap with the whole zoo in it, which the matrix's questions about each
    kind read: the capture is the same for every kind (the REFCOUNTED kinds, whose counts are
    checked around a call, take their own)."""
    snap = refgraph.snapshot(collect=False)
    again = refgraph.snapshot_from_bytes(snap.to_bytes())
    assert len(again) == len(snap)
    return snap


DOT_LINE = re.compile(r"^(digraph ObjectGraph \{|\}|  \S.*;)$")


@pytest.mark.parametrize("func", sorted(FUNCTIONS))
@pytest.mark.parametrize("kind", KINDS)
def test_zoo_matrix(zoo, kind, func, tmp_path, capsys, request):
    obj = zoo[kind]
    if func == "snapshot" and kind not in REFCOUNTED:
        _snapshot_everything(obj, tmp_path, request.getfixturevalue("zoo_snapshot"))
    else:
        FUNCTIONS[func](obj, tmp_path)
    if kind in REFCOUNTED:
        # The first call warmed up whatever caches there are: another one leaves the argument's
        # reference count as it found it.
        before = sys.getrefcount(obj)
        FUNCTIONS[func](obj, tmp_path)
        assert sys.getrefcount(obj) == before
    capsys.readouterr()


@pytest.mark.parametrize("kind", KINDS)
def test_dot_lines_stay_well_formed(zoo, kind):
    out = io.StringIO()
    refgraph.show_refs([zoo[kind]], output=out, max_depth=1, extra_info=lambda x: 'a\nb\x00c"d')
    for line in out.getvalue().splitlines():
        assert DOT_LINE.match(line), line[:200]
    assert "\x00" not in out.getvalue()


def test_hostile_labels_escaped_in_svg(zoo, tmp_path):
    objs = [zoo[k] for k in KINDS if k.startswith("hostile_repr")]
    target = tmp_path / "hostile.svg"
    refgraph.show_refs(objs, filename=str(target), max_depth=0)
    svg = target.read_text(encoding="utf-8")
    ET.fromstring(svg)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert len(svg) < 200_000, "the 10 MB repr is cut for drawing"


def test_whole_heap_functions_with_the_zoo_alive(zoo):
    refgraph.show_growth(file=io.StringIO())
    refgraph.show_growth(file=io.StringIO(), shortnames=False)
    refgraph.get_new_ids(limit=3, file=io.StringIO(), _state={})
    refgraph.typestats(shortnames=False)
    refgraph.most_common_types(limit=None)
    assert refgraph.count("RaisingRepr") >= 1
    assert refgraph.by_type("zoo.Slotted")
    orphan = [zoo_module.Plain()]  # held by this frame only; its Plain by the list
    leaking = {id(o) for o in refgraph.get_leaking_objects()}
    assert id(orphan[0]) not in leaking
    assert not leaking & {id(o) for o in zoo.values()}, "every zoo object is in the zoo's dict"
    if sys.version_info >= (3, 11):  # a running frame is not gc-tracked from 3.11 on
        assert id(orphan) in leaking
    del leaking, orphan


# --------------------------------------------------------------------------- callbacks


class Boom(Exception):
    pass


def _owned():
    data = {"items": [zoo_module.Plain() for _ in range(30)], "map": {i: [i] for i in range(30)}}
    holder = [data, data["items"], data["map"]]
    owned = {id(data), id(holder), id(data["items"]), id(data["map"])}
    owned |= {id(v) for v in data["map"].values()}
    return holder, owned


def _callbacks(owned, holder, counter):
    def allocate(x):
        counter.append([object() for _ in range(10)])
        return True

    def mutate(x):
        if id(x) in owned and isinstance(x, list):
            x.append(zoo_module.Plain())
            x.reverse()
        if id(x) in owned and isinstance(x, dict):
            x.clear()
        return True

    def delete(x):
        holder.clear()
        return True

    calls = []

    def collect(x):
        # A full collection during the walk: on each of the first calls, then on every 8th (one
        # on every call, about a hundred a test, took up to 8 s a test in CI).
        calls.append(None)
        if len(calls) <= 4 or len(calls) % 8 == 0:
            gc.collect()
        return True

    def boom(x):
        raise Boom()

    return {
        "allocate": allocate,
        "mutate": mutate,
        "delete": delete,
        "collect": collect,
        "boom": boom,
    }


@pytest.mark.parametrize("behaviour", ["allocate", "mutate", "delete", "collect", "boom"])
@pytest.mark.parametrize(
    "where", ["filter", "highlight", "extra_info", "extra_node_attrs", "predicate"]
)
def test_callbacks_that_misbehave(behaviour, where):
    holder, owned = _owned()
    start = holder[0]
    counter = []
    cb = _callbacks(owned, holder, counter)[behaviour]
    if where == "extra_node_attrs":

        def call(x):
            cb(x)
            return {"URL": "u"}

        callback = call
    elif where == "extra_info":

        def call(x):
            cb(x)
            return "info"

        callback = call
    else:
        callback = cb

    def run():
        if where == "predicate":
            refgraph.find_ref_chain(start, lambda x: bool(callback(x)) and False, max_depth=4)
            refgraph.find_backref_chain(start, lambda x: bool(callback(x)) and False, max_depth=3)
        else:
            refgraph.show_refs([start], output=io.StringIO(), max_depth=3, **{where: callback})
            refgraph.show_backrefs([start], output=io.StringIO(), max_depth=2, **{where: callback})

    if behaviour == "boom":
        with pytest.raises(Boom):
            run()
    else:
        run()


# --------------------------------------------------------------------------- big heaps


@pytest.mark.slow
def test_million_deep_chain():
    head = zoo_module.deep_chain(1_000_000)
    tail = head
    while tail.next is not None:
        tail = tail.next
    tail_id = id(tail)
    chain = refgraph.find_ref_chain(head, lambda x: id(x) == tail_id, max_depth=2_000_000)
    assert len(chain) == 1_000_000 and chain[-1] is tail
    head_id = id(head)
    back = refgraph.find_backref_chain(tail, lambda x: id(x) == head_id, max_depth=2_000_000)
    assert len(back) == 1_000_000
    out = io.StringIO()
    refgraph.show_refs([head], output=out, max_depth=50)
    assert out.getvalue().count(" -> ") >= 50
    del chain, back, head, tail


@pytest.mark.slow
def test_ten_million_element_list():
    big = [None] * 10_000_000
    big[5] = zoo_module.Plain()
    out = io.StringIO()
    refgraph.show_refs([big], output=out, max_depth=1, too_many=3)
    assert "9999997 more references" in out.getvalue()
    found = refgraph.find_ref_chain(big, lambda x: isinstance(x, zoo_module.Plain), max_depth=1)
    assert found[-1] is big[5]
    del big


def test_capture_while_another_thread_allocates():
    stop = threading.Event()

    def churn():
        keep = []
        while not stop.is_set():
            keep.append([zoo_module.Plain() for _ in range(50)])
            if len(keep) > 100:
                keep.clear()

    t = threading.Thread(target=churn)
    t.start()
    try:
        target = zoo_module.Plain()
        holder = [target]
        for _ in range(20):
            refgraph.show_backrefs([target], output=io.StringIO(), max_depth=2)
            refgraph.find_backref_chain(target, lambda x: x is holder)
            refgraph.typestats()
            refgraph.get_leaking_objects()
    finally:
        stop.set()
        t.join()


# --------------------------------------------------------------------------- hygiene


@pytest.mark.slow
def test_rss_flat_over_many_calls():
    objs = [zoo_module.Plain() for _ in range(50)] + [{}, [], ()]
    target = objs[0]

    def cheap():
        refgraph.typestats(objs)
        refgraph.count("Plain", objs)
        refgraph.by_type("Plain", objs)
        refgraph.most_common_types(objects=objs)
        refgraph.at_addrs({id(target)})

    def graph():
        refgraph.get_leaking_objects(objs[:5])
        refgraph.show_refs([objs], output=io.StringIO(), max_depth=1)
        refgraph.find_backref_chain(target, lambda x: x is objs, max_depth=3)

    for _ in range(200):
        cheap()
    for _ in range(20):
        graph()
    gc.collect()
    before = rss_kb()
    for _ in range(10_000):
        cheap()
    # Each of these captures the heap and collects garbage (30-90 ms a call in the suite): 50
    # rounds would show a capture's buffers kept (megabytes a call) many times over.
    for _ in range(50):
        graph()
    gc.collect()
    grown = rss_kb() - before
    assert grown < 8 * 1024, f"RSS grew by {grown} kB"
