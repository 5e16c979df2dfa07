"""Edge names in snapshots: how each referrer holds each referent (attribute, key, index, …),
recorded without running user code or changing the heap, and paths written as Python."""

from __future__ import annotations

import collections
import functools
import gc
import json
import os
import subprocess
import sys
import weakref

import pytest

import refgraph


class Item:
    def __init__(self, tag=None):
        self.tag = tag

    def method(self):
        return self.tag


class Slotted:
    __slots__ = ("first", "second")


class Key:
    """A dict key without a literal form; its ``__repr__`` must never be called."""

    def __repr__(self):
        raise AssertionError("a key's __repr__ was called")

    def __hash__(self):
        return 7

    def __eq__(self, other):
        return self is other


class Config:
    registry = [Item("class attribute")]


GLOBAL_HOLDER = [Item("global")]


def names_of(snap, obj):
    """``{referent address: [names]}`` of ``obj`` in a snapshot."""
    out = collections.defaultdict(list)
    for addr, name in snap.referents(obj):
        out[addr].append(name)
    return out


def name_of(snap, holder, obj):
    found = names_of(snap, holder).get(id(obj))
    assert found, f"{obj!r} is not a referent of {type(holder).__name__}"
    return found[0]


def attribute(snap, obj, value):
    """How ``obj`` holds ``value`` as an attribute: ``.x`` through inline values (3.11+) or
    ``.__dict__`` then ``['x']`` through a dict (3.10, or a materialised dict)."""
    direct = names_of(snap, obj).get(id(value))
    if direct:
        return direct[0]
    for addr, name in snap.referents(obj):
        if name == ".__dict__":
            key = names_of(snap, refgraph_object(addr)).get(id(value))
            if key:
                return ".__dict__" + key[0]
    return None


def refgraph_object(addr):
    found = [o for o in gc.get_objects() if id(o) == addr]
    assert found, "the dict is tracked"
    return found[0]


def test_attributes_slots_and_class():
    plain = Item([1])
    slotted = Slotted()
    slotted.first = [2]
    slotted.second = Item()
    snap = refgraph.snapshot()
    expected = ".__dict__['tag']" if sys.version_info < (3, 11) else ".tag"
    assert attribute(snap, plain, plain.tag) == expected
    assert snap.expression(plain.tag) is not None
    assert name_of(snap, plain, Item) == ".__class__"
    assert name_of(snap, slotted, slotted.first) == ".first"
    assert name_of(snap, slotted, slotted.second) == ".second"


def test_materialised_dict_reads_as_attributes():
    obj = Item([3])
    d = obj.__dict__  # materialise it
    snap = refgraph.snapshot()
    # 3.13 keeps the values inline while they are valid and traverses them, not the dict.
    assert attribute(snap, obj, obj.tag) in (".__dict__['tag']", ".tag")
    # (A 3.13 dict over valid inline values leaves them to the object's traversal.)
    if id(obj.tag) in names_of(snap, d):
        assert name_of(snap, d, obj.tag) == "['tag']"
    del d
    assert snap.expression(GLOBAL_HOLDER).endswith(".GLOBAL_HOLDER")
    # Held only through the module global (no local variable of this frame refers to it).
    GLOBAL_HOLDER.append(Item([4]))
    GLOBAL_HOLDER[1].__dict__  # noqa: B018 (materialise it)
    try:
        snap = refgraph.snapshot()
        assert snap.expression(GLOBAL_HOLDER[1].tag).endswith(".GLOBAL_HOLDER[1].tag")
    finally:
        GLOBAL_HOLDER.pop()


class IntKey(int):
    pass


def test_dict_keys():
    key = Key()
    names = ("s", "i", "n", "b", "by", "t", "f", "o", "long", "neg", "big", "max", "min", "sub")
    values = {name: [name] for name in names}
    d = {
        "s": values["s"],
        7: values["i"],
        -12: values["neg"],
        10**6: values["big"],
        2**63 - 1: values["max"],
        -(2**63): values["min"],
        IntKey(3): values["sub"],
        None: values["n"],
        False: values["b"],
        b"raw": values["by"],
        (1, "a", None): values["t"],
        2.5: values["f"],
        key: values["o"],
        10**40: values["long"],
    }
    snap = refgraph.snapshot()
    names = {n: name_of(snap, d, v) for n, v in values.items()}
    assert names == {
        "s": "['s']",
        "i": "[7]",
        "n": "[None]",
        "b": "[False]",
        "by": "[<bytes>]",  # bytes contents are never kept
        "t": "[(1, 'a', None)]",
        "f": "[2.5]",
        "o": "[<Key>]",
        "long": "[<int>]",
        "neg": "[-12]",
        "big": "[1000000]",
        "max": "[9223372036854775807]",
        "min": "[-9223372036854775808]",
        "sub": "[<IntKey>]",  # a subclass's repr may be code: not called
    }
    # Dicts with keys other than str refer to their keys too.
    assert "key <Key>" in names_of(snap, d)[id(key)]


def test_sequences_sets_and_deques():
    a, b, c = Item(), Item(), Item()
    lst = [a, b, c]
    tup = (a, b, c)
    dq = collections.deque([a, b, c])
    st = {a, b}
    fs = frozenset([c])
    snap = refgraph.snapshot()
    for seq in (lst, tup, dq):
        assert [name_of(snap, seq, x) for x in (a, b, c)] == ["[0]", "[1]", "[2]"]
    assert name_of(snap, st, a) == "set member"
    assert name_of(snap, fs, c) == "set member"
    # An object held twice by a list: each reference has its own index.
    twice = [a, b, a]
    snap = refgraph.snapshot()
    assert sorted(names_of(snap, twice)[id(a)]) == ["[0]", "[2]"]


def test_closures_methods_partials_weakrefs_exceptions_classes():
    def make():
        captured = Item("closure")
        other = 5

        def handler():
            return captured, other

        return handler

    handler = make()
    obj = Item()
    bound = obj.method
    part = functools.partial(print, obj, sep=obj)
    target = Item()

    def callback(ref):
        pass

    ref = weakref.ref(target, callback)
    try:
        raise ValueError("kept")
    except ValueError as e:
        exc = e
    snap = refgraph.snapshot()
    cell = handler.__closure__[handler.__code__.co_freevars.index("captured")]
    assert name_of(snap, handler, handler.__closure__) == ".__closure__"
    assert name_of(snap, handler, handler.__code__) == ".__code__"
    assert name_of(snap, cell, cell.cell_contents) == "closure captured"
    expr = snap.expression(cell.cell_contents)
    assert expr is not None
    assert name_of(snap, bound, obj) == ".__self__"
    assert name_of(snap, bound, Item.method) == ".__func__"
    assert name_of(snap, part, print) == ".func"
    assert name_of(snap, part, part.args) == ".args"
    assert name_of(snap, part, part.keywords) == ".keywords"
    assert name_of(snap, ref, callback) == ".__callback__"
    assert name_of(snap, exc, exc.__traceback__) == ".__traceback__"
    assert name_of(snap, exc, exc.args) == ".args"
    assert name_of(snap, Item, Item.__mro__) == ".__mro__"
    assert name_of(snap, Item, Item.__bases__) == ".__bases__"
    assert snap.expression(Config.registry[0]).endswith(".Config.registry[0]")


def test_no_instance_dict_is_materialised():
    """Reading names must not create the ``__dict__`` of objects that keep their attributes
    inline (3.11+): their size and referents are the same after a snapshot."""
    objs = [Item([i]) for i in range(50)]
    before = [(sys.getsizeof(o), [id(r) for r in gc.get_referents(o)]) for o in objs]
    snap = refgraph.snapshot()
    after = [(sys.getsizeof(o), [id(r) for r in gc.get_referents(o)]) for o in objs]
    assert before == after
    if sys.version_info >= (3, 11):
        assert all(name_of(snap, o, o.tag) == ".tag" for o in objs)
        # No dict among the referents: the values are inline and named through the class.
        assert not any(type(r) is dict for o in objs for r in gc.get_referents(o))


def test_a_key_repr_and_getattr_never_run():
    class Hostile:
        def __getattr__(self, name):
            raise AssertionError(f"__getattr__({name!r}) ran")

        def __getattribute__(self, name):
            if name in ("__class__", "__dict__"):
                return object.__getattribute__(self, name)
            raise AssertionError(f"__getattribute__({name!r}) ran")

    h = Hostile()
    object.__setattr__(h, "value", [1])
    d = {Key(): h}
    snap = refgraph.snapshot()
    assert name_of(snap, d, h) == "[<Key>]"
    assert attribute(snap, h, object.__getattribute__(h, "value")) in (
        ".value",
        ".__dict__['value']",
    )


def test_names_survive_the_file(tmp_path):
    obj = Item([1])
    snap = refgraph.snapshot()
    path = tmp_path / "s.rgsnap"
    snap.save(path)
    loaded = refgraph.load(path)
    assert loaded.referents(address=id(obj)) == snap.referents(obj)
    assert loaded.info()["named_references"] == snap.info()["named_references"] > 0


def test_int_keys_survive_the_file(tmp_path):
    """A snapshot stores an int dict key as its value (file version 3): loaded, it reads as
    the same name, for the value and for the key object, down to the 64-bit extremes; a key
    too big for 64 bits keeps its placeholder."""
    values = [[k] for k in range(6)]
    d = dict(zip((7, -12, 0, 2**63 - 1, -(2**63), 10**40), values, strict=True))
    snap = refgraph.snapshot()
    path = tmp_path / "s.rgsnap"
    snap.save(path)
    loaded = refgraph.load(path)
    assert loaded.referents(address=id(d)) == snap.referents(d)
    names = {n for _, n in snap.referents(d)}
    assert {"[7]", "[-12]", "[0]", "[9223372036854775807]", "[-9223372036854775808]"} <= names
    assert "[<int>]" in names and "key -12" in names


def test_an_older_file_loads_without_names():
    seed = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "load", "seed-10.rgsnap")
    s = refgraph.load(seed)
    assert s.info()["named_references"] == 0
    found = s.paths("Record")
    assert found.targets == 10
    # (The seeds' types are named builtins.*.)
    assert found.groups[0].expression == "app -> <builtins.dict> -> app._cache -> <builtins.Record>"
    assert all(e is None for e in found.groups[0].edges)
    named = refgraph.load(seed.replace("seed-10", "seed-named-10"))
    assert named.info()["named_references"] > 0
    assert named.paths("Record").groups[0].expression.startswith("app.")


BUS_PROGRAM = """
import sys
import refgraph


class Session:
    def __init__(self, user):
        self.user = user

    def on_event(self, event):
        pass


class EventBus:
    def __init__(self):
        self._listeners = []

    def subscribe(self, callback):
        self._listeners.append(callback)


bus = EventBus()


def handle_request(i):
    session = Session(f"user{i}")
    bus.subscribe(session.on_event)  # never unsubscribed


for i in range(3200):
    handle_request(i)
refgraph.snapshot().save(sys.argv[1])
"""


def test_event_bus_paths_name_the_listeners(tmp_path):
    prog = tmp_path / "bus.py"
    prog.write_text(BUS_PROGRAM)
    snap = tmp_path / "bus.rgsnap"
    subprocess.run([sys.executable, str(prog), str(snap)], check=True, timeout=120)
    r = subprocess.run(
        [sys.executable, "-m", "refgraph", "paths", str(snap), "Session"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "3,200 objects" in r.stdout
    assert "__main__.bus._listeners[...].__self__" in r.stdout, r.stdout
    assert "EventBus __main__.bus" in r.stdout and ".__self__" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "refgraph", "paths", str(snap), "Session", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    p = json.loads(r.stdout)
    g = p["groups"][0]
    assert g["count"] == 3200
    assert g["expression"] == "__main__.bus._listeners[...].__self__"
    assert g["example_expression"].startswith("__main__.bus._listeners[")
    assert g["example_expression"].endswith("].__self__")
    assert "  e.g. __main__.bus._listeners[" in text
    edges = [step["edge"] for step in g["example"]]
    assert edges[-1] is None
    assert ".__self__" in edges
    # An attribute in the instance's values (3.11+) or in its __dict__ (3.10).
    assert "._listeners" in edges or "['_listeners']" in edges
    loaded = refgraph.load(snap)
    ex = loaded.paths("Session").groups[0].example
    assert loaded.expression(address=ex[-1][0]).startswith("__main__.bus._listeners[")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="inline values are 3.11+")
def test_many_attributes_and_deleted_ones():
    """More attributes than the shared keys hold (the dict is then a real dict), and deleted
    attributes (empty slots in the values): names stay right."""

    class Many:
        pass

    class Gaps:
        pass

    many = Many()
    for i in range(40):
        setattr(many, f"a{i}", [i])
    gaps = Gaps()
    gaps.x = [1]
    gaps.y = [2]
    del gaps.x
    snap = refgraph.snapshot()
    for i in (0, 17, 39):
        value = getattr(many, f"a{i}")
        holder_names = names_of(snap, many)
        if id(value) in holder_names:
            assert holder_names[id(value)] == [f".a{i}"]
        else:
            d = next(r for r in gc.get_referents(many) if type(r) is dict)
            assert name_of(snap, d, value) == f"['a{i}']"
        assert snap.expression(value) is None or snap.expression(value).endswith(f".a{i}")
    assert name_of(snap, gaps, gaps.y) == ".y"


def test_drawings_label_edges_with_names(tmp_path):
    holder = Item()
    holder.members = [Item("drawn")]
    GLOBAL_HOLDER.append(holder)
    try:
        snap = refgraph.snapshot()
        dot = tmp_path / "g.dot"
        snap.graph(holder.members[0], dot, max_depth=6)
        text = dot.read_text()
        assert '[label="[0]"]' in text
        # The list is an attribute of the holder: in its values (3.11+) or its __dict__.
        assert '[label=".members"]' in text or "[label=\"['members']\"" in text
        assert "[label=\"['GLOBAL_HOLDER']\"" in text
        svg = snap.graph(holder.members[0], max_depth=4)
        assert ">[0]</text>" in svg
    finally:
        GLOBAL_HOLDER.pop()


def test_frame_locals_where_the_frame_shows_them():
    """3.10 frames refer to their locals (named by the code's variable names); from 3.11 a
    running frame's locals are not references the collector sees, so they are roots."""
    kept = Item("local")
    snap = refgraph.snapshot()
    frame = sys._getframe()
    if sys.version_info < (3, 11):
        assert name_of(snap, frame, kept) == "local kept"
        assert snap.expression(kept).endswith(".f_locals['kept']")
        assert name_of(snap, frame, frame.f_code) == ".f_code"
    else:
        assert snap.expression(kept) == "<test_edge_names.Item>"


def test_a_metaclass_getattribute_never_runs():
    calls = []

    class Meta(type):
        def __getattribute__(cls, name):
            calls.append(name)
            return type.__getattribute__(cls, name)

    class Guarded(metaclass=Meta):
        shared = [1]

        def __init__(self):
            self.own = [2]

    g = Guarded()
    calls.clear()
    snap = refgraph.snapshot()
    assert calls == [], calls
    mro = type.__dict__["__mro__"].__get__(Guarded)
    assert name_of(snap, Guarded, mro) == ".__mro__"
    own = object.__getattribute__(g, "own")
    assert attribute(snap, g, own) in (".own", ".__dict__['own']")


SECRET = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"


def test_key_names_follow_the_string_policy():
    # Held only through the module global (no local of this frame refers to it during a
    # snapshot: 3.10 frames show their locals).
    GLOBAL_HOLDER.append({SECRET: [1], "user": [2], "has space": [3]})
    try:
        by_policy = {}
        for policy in ("names", "all", "none"):
            snap = refgraph.snapshot(strings=policy)
            holder = GLOBAL_HOLDER[1]
            # (A loop, not a comprehension: on 3.11 a comprehension's closure would hold a cell
            # to ``holder``.)
            by_policy[policy] = {}
            for k in holder:
                by_policy[policy][k] = name_of(snap, holder, holder[k])
            by_policy[policy]["expr"] = snap.expression(holder["user"])
            del holder
            assert SECRET.encode() not in snap.to_bytes() or policy == "all", policy
    finally:
        GLOBAL_HOLDER.pop()
    assert by_policy["names"][SECRET] == "[<str>]"
    assert by_policy["names"]["user"] == "['user']"
    assert by_policy["names"]["has space"] == "[<str>]"
    assert by_policy["all"][SECRET] == f"[{SECRET!r}]"
    assert by_policy["all"]["has space"] == "['has space']"
    assert by_policy["none"]["user"] == "[<str>]"
    # Module globals keep their names under every policy.
    assert by_policy["none"]["expr"].startswith("test_edge_names.GLOBAL_HOLDER[1]")
    assert by_policy["names"]["expr"].endswith(".GLOBAL_HOLDER[1]['user']")
