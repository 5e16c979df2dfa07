"""Reference chains and graphs: refgraph's DOT and chains equal objgraph's on the same heap."""

from __future__ import annotations

import difflib
import gc
import io
import os
import sys
import weakref

import objgraph
import pytest

import refgraph

import heap_fixture as hf
from conftest import dot_of, same_dot


def assert_same(func, *args, **kwargs):
    expected, got = same_dot(func, *args, **kwargs)
    if expected != got:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), got.splitlines(True), "objgraph", "refgraph"
            )
        )
        pytest.fail(f"{func} DOT differs:\n{diff[:6000]}")
    return got


def in_fixture(x):
    """Keep the walk inside the fixture's own objects (plus plain values)."""
    return isinstance(
        x,
        (
            hf.Node,
            hf.Slotted,
            hf.Finalized,
            list,
            tuple,
            dict,
            set,
            str,
            int,
            type(hf.bound),
            type(hf.closure),
        ),
    ) and not (isinstance(x, dict) and len(x) > 30)


ROOTS = {
    "root": lambda: hf.root,
    "child": lambda: hf.child,
    "slotted": lambda: hf.slotted,
    "finalized": lambda: hf.finalized,
    "bound": lambda: hf.bound,
    "closure": lambda: hf.closure,
    "registry": lambda: hf.registry,
    "fake_module": lambda: hf.fake_module,
    "frame": lambda: hf.frame,
    "generator": lambda: hf.suspended,
    "quoting": lambda: hf.quoting,
    "several": lambda: [hf.root, hf.registry, hf.root],
    "tuple_of_roots": lambda: (hf.slotted, hf.bound),
}


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_show_refs_same_dot(name):
    obj = ROOTS[name]()
    got = assert_same("show_refs", obj, max_depth=2, filter=in_fixture, too_many=4)
    assert got.startswith("digraph ObjectGraph {\n")


@pytest.mark.parametrize("name", sorted(ROOTS))
def test_show_backrefs_same_dot(name):
    obj = ROOTS[name]()
    assert_same("show_backrefs", obj, max_depth=3, too_many=5)


def test_show_refs_every_option():
    got = assert_same(
        "show_refs",
        [hf.root, hf.registry],
        max_depth=3,
        too_many=3,
        filter=in_fixture,
        highlight=lambda x: isinstance(x, hf.Node),
        extra_info=lambda x: "len=%s" % (len(x) if hasattr(x, "__len__") else "-"),
        refcounts=True,
        shortnames=False,
        extra_node_attrs=lambda x: {"URL": "x%d" % (id(x) % 7), "tooltip": None, "shape": 'bo"x'},
        extra_ignore=[id(hf.slotted)],
    )
    assert "fontcolor=white" in got and "more references" in got
    assert "heap_fixture.Node [" in got


def test_show_backrefs_every_option():
    got = assert_same(
        "show_backrefs",
        [hf.child],
        max_depth=4,
        too_many=2,
        highlight=lambda x: isinstance(x, dict),
        extra_info=lambda x: type(x).__name__.upper(),
        refcounts=True,
        extra_node_attrs=lambda x: {},
    )
    assert "more backreferences" in got


def test_del_marker_and_modules():
    got = assert_same("show_refs", [hf.finalized], max_depth=1)
    key = "o%d" % id(hf.finalized)
    assert f'{key}_has_a_del[label="__del__"' in got
    got = assert_same("show_backrefs", hf.fake_module, max_depth=2)
    got = assert_same("show_refs", hf.this_module, max_depth=1, too_many=3)
    assert 'fillcolor="0.3,1,1"' in got  # modules are green


def test_quoting_of_labels():
    got = assert_same("show_refs", hf.quoting, max_depth=1)
    assert '[label="str\\n\'quote\\"back' in got  # an edge labelled by a dict key
    got = assert_same("show_refs", hf.quoting, max_depth=0, extra_info=lambda x: 'a"b\\c\nd\0e')
    assert '\\na\\"b\\\\c\\nd\\\\0e"' in got


def test_depth_zero_and_negative():
    assert_same("show_refs", hf.root, max_depth=0)
    assert_same("show_backrefs", hf.root, max_depth=0, too_many=0)
    assert_same("show_refs", hf.root, max_depth=1, too_many=0)


PREDICATES = {
    "module": lambda: refgraph.is_proper_module,
    "objgraph_module": lambda: objgraph.is_proper_module,
    "node": lambda: lambda x: isinstance(x, hf.Node) and x.name == "root",
    "never": lambda: lambda x: False,
}


@pytest.mark.parametrize("pred", sorted(PREDICATES))
@pytest.mark.parametrize("start", ["child", "slotted", "closure", "registry", "frame"])
def test_chains_same_as_objgraph(pred, start):
    obj = ROOTS[start]()
    predicate = PREDICATES[pred]()
    for max_depth in (1, 5):
        for find in ("find_backref_chain", "find_ref_chain"):
            if find == "find_ref_chain" and pred in ("module", "objgraph_module", "never"):
                depth = min(max_depth, 3)  # forward search from a module-level object is huge
            else:
                depth = max_depth
            expected = getattr(objgraph, find)(obj, predicate, max_depth=depth)
            got = getattr(refgraph, find)(obj, predicate, max_depth=depth)
            assert [id(x) for x in got] == [id(x) for x in expected], (find, depth)
            del expected, got


def test_chain_endpoints_and_not_found():
    chain = refgraph.find_backref_chain(hf.child, refgraph.is_proper_module)
    assert chain[-1] is hf.child and refgraph.is_proper_module(chain[0])
    chain = refgraph.find_ref_chain(hf.root, lambda x: x is hf.child)
    assert chain[0] is hf.root and chain[-1] is hf.child
    assert refgraph.find_ref_chain(hf.root, lambda x: False, max_depth=2) == [hf.root]
    fresh = {"only": "strings"}  # untracked dict held by this frame only
    assert refgraph.find_ref_chain(fresh, lambda x: x == "strings") == [fresh, "strings"]
    assert refgraph.find_backref_chain(fresh, refgraph.is_proper_module) == [fresh]


def test_predicate_called_in_bfs_order():
    seen_o, seen_r = [], []
    objgraph.find_ref_chain(hf.root, lambda x: seen_o.append(id(x)) and False, max_depth=3)
    seen_o.clear()
    objgraph.find_ref_chain(hf.root, lambda x: seen_o.append(id(x)) and False, max_depth=3)
    refgraph.find_ref_chain(hf.root, lambda x: seen_r.append(id(x)) and False, max_depth=3)
    assert seen_r == seen_o


def test_extra_ignore_in_chains():
    direct = refgraph.find_backref_chain(hf.child, lambda x: x is hf.registry, max_depth=3)
    assert len(direct) == 2
    avoided = refgraph.find_backref_chain(
        hf.child, lambda x: x is hf.registry, max_depth=3, extra_ignore=[id(hf.registry)]
    )
    assert avoided == [hf.child]


def test_show_chain_same_dot():
    chain = objgraph.find_backref_chain(hf.child, objgraph.is_proper_module)
    assert_same("show_chain", chain)
    fwd = objgraph.find_ref_chain(hf.root, lambda x: x is hf.child)
    assert_same("show_chain", fwd, backrefs=False)
    assert_same("show_chain", chain, fwd[::-1], refcounts=True)


def test_output_and_filename_conflict(tmp_path):
    with pytest.raises(ValueError, match="Cannot specify both output and filename"):
        refgraph.show_refs(hf.root, output=io.StringIO(), filename=str(tmp_path / "x.dot"))


def test_dot_filename_and_messages(tmp_path, capsys):
    target = tmp_path / "graph.dot"
    refgraph.show_refs(hf.root, filename=str(target), max_depth=1)
    out = capsys.readouterr().out
    assert out.startswith("Graph written to %s (" % target)
    assert target.read_text(encoding="utf-8").startswith("digraph ObjectGraph {")
    objgraph.show_refs(hf.root, filename=str(tmp_path / "o.dot"), max_depth=1)
    expected = capsys.readouterr().out.replace("o.dot", "graph.dot")
    assert out == expected


def test_callbacks_that_raise_propagate():
    class Boom(Exception):
        pass

    def boom(x):
        raise Boom()

    for kwargs in (
        {"filter": boom},
        {"highlight": boom},
        {"extra_info": boom},
        {"extra_node_attrs": boom},
    ):
        with pytest.raises(Boom):
            refgraph.show_refs(hf.root, output=io.StringIO(), **kwargs)
        with pytest.raises(Boom):
            refgraph.show_backrefs(hf.child, output=io.StringIO(), **kwargs)
    with pytest.raises(Boom):
        refgraph.find_ref_chain(hf.root, boom)
    with pytest.raises(Boom):
        refgraph.find_backref_chain(hf.root, boom)


def test_callbacks_that_mutate_and_free_do_not_crash():
    victims = {"a": [hf.Node(str(i)) for i in range(50)], "b": {i: [i] for i in range(50)}}
    holder = [victims]
    # Only containers this test made may be emptied (the walk also reaches classes and
    # modules, whose dicts must survive).
    owned = {id(victims), id(holder), id(victims["a"]), id(victims["b"])}
    owned |= {id(v) for v in victims["b"].values()} | {id(n.__dict__) for n in victims["a"]}

    calls = []

    def destroy(x):
        victims.clear()
        holder.clear()
        if id(x) in owned and isinstance(x, (list, dict)):
            x.clear()
        # A full collection on each of the first calls, then on every 8th (on every call, this
        # test took 15 s).
        calls.append(None)
        if len(calls) <= 4 or len(calls) % 8 == 0:
            gc.collect()
        return True

    out = io.StringIO()
    refgraph.show_refs(
        holder, output=out, filter=destroy, highlight=destroy, extra_info=destroy, max_depth=4
    )
    assert out.getvalue().endswith("}\n")
    holder2 = [{"x": [1, 2, 3]}]
    owned |= {id(holder2), id(holder2[0]), id(holder2[0]["x"])}
    refgraph.find_ref_chain(holder2, destroy)
    refgraph.show_backrefs(hf.Node("x"), output=io.StringIO(), filter=destroy)


def test_no_user_object_kept_alive():
    n = hf.Node("temp")
    holder = [n]
    ref = weakref.ref(n)
    refgraph.show_refs(holder, output=io.StringIO(), refcounts=True)
    refgraph.show_backrefs(n, output=io.StringIO(), extra_info=repr)
    refgraph.find_backref_chain(n, refgraph.is_proper_module)
    n_id = id(n)
    refgraph.find_ref_chain(holder, lambda x: id(x) == n_id)
    refgraph.show_chain([holder, n], output=io.StringIO())
    before = sys.getrefcount(n)
    for _ in range(20):  # each call collects garbage, as objgraph's do: 10-50 ms
        refgraph.show_refs(holder, output=io.StringIO(), max_depth=1)
        refgraph.find_ref_chain(holder, lambda x: id(x) == n_id, max_depth=2)
    assert sys.getrefcount(n) == before
    del n, holder
    gc.collect()
    assert ref() is None


def test_tools_own_objects_never_appear():
    target = hf.Node("lonely")
    got = dot_of(refgraph, "show_backrefs", [target], max_depth=2)
    # Nothing refers to `target` but this test's (untracked) frame and the list we passed.
    assert got.count(" -> ") == 0, got


def test_bad_arguments():
    with pytest.raises(TypeError):
        refgraph.show_refs(hf.root, output=io.StringIO(), max_depth="3")
    with pytest.raises(TypeError):
        refgraph.show_refs(hf.root, output=io.StringIO(), filter=5)
    with pytest.raises(TypeError):
        refgraph.find_ref_chain(hf.root, "not callable")
    with pytest.raises(TypeError):
        refgraph.find_backref_chain(hf.root, refgraph.is_proper_module, extra_ignore=["x"])
    with pytest.raises(ValueError):
        refgraph.show_refs(hf.root, filename="x.png", renderer="bogus")


def test_is_proper_module():
    assert refgraph.is_proper_module(os)
    assert not refgraph.is_proper_module(hf.fake_module)
    assert not refgraph.is_proper_module([])
