"""The graphs refgraph draws, for the layout-quality benchmark: each one a real ``show_refs``,
``show_backrefs`` or ``show_chain`` call on real objects (standard library objects, the test
fixture heap, the seed example, typical leak patterns), kept as the ``_refgraph.View`` that the
call would have drawn.

``corpus()`` returns ``[(name, view)]``. The objects each graph shows are kept alive in
``_KEEP`` so that the walks see them as a program would.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import sys

import refgraph
from refgraph import present

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

_KEEP = []


def view_of(func, *args, **kw):
    """The view a real ``show_*`` call draws (the call's own walk; nothing is written)."""
    seen = []

    def keep(view, filename, output, renderer):
        seen.append(view)

    saved = present.present
    present.present = keep
    try:
        func(*args, **kw)
    finally:
        present.present = saved
    return seen[0]


# --------------------------------------------------------------------------- leak patterns


class Listener:
    def __init__(self, bus, name):
        self.name = name
        self.bus = bus
        bus.subscribe(self.on_event)

    def on_event(self, event):
        return (self.name, event)


class EventBus:
    def __init__(self):
        self.handlers = []

    def subscribe(self, handler):
        self.handlers.append(handler)


class Session:
    def __init__(self, user):
        self.user = user
        self.data = {"user": user, "items": [user] * 3}
        self.history = []


class Cache:
    def __init__(self):
        self.store = {}

    def get(self, key):
        if key not in self.store:
            self.store[key] = Session(key)
        return self.store[key]


class Node:
    def __init__(self, name, parent=None):
        self.name = name
        self.parent = parent
        self.children = []
        if parent is not None:
            parent.children.append(self)


class Finalized:
    def __init__(self, other=None):
        self.other = other

    def __del__(self):
        pass


def make_tree(depth, fan):
    root = Node("root")
    level = [root]
    for d in range(depth):
        nxt = []
        for p in level:
            for i in range(fan):
                nxt.append(Node(f"n{d}.{i}", p))
        level = nxt
    return root


def make_closures(n):
    data = {"payload": list(range(5))}

    def outer(i):
        def handler():
            return data, i

        return handler

    return [outer(i) for i in range(n)]


def make_traceback_leak():
    try:
        big = [object() for _ in range(3)]  # noqa: F841
        raise KeyError("kept")
    except KeyError as e:
        return e


# --------------------------------------------------------------------------- the corpus


def corpus():
    import argparse
    import decimal
    import email.message
    import fractions
    import json
    import logging
    import re
    import string
    import textwrap
    import xml.etree.ElementTree as ET

    import heap_fixture as hf

    out = []

    def add(name, func, *args, **kw):
        out.append((name, view_of(func, *args, **kw)))

    refs, backrefs, chain = refgraph.show_refs, refgraph.show_backrefs, refgraph.show_chain

    # The seed example (examples/graph_references.py).
    quote = """
    People who think they know everything are a
    great annoyance to those of us who do.
    """
    words = quote.lower().strip().split()
    counts = collections.Counter(words)
    _KEEP.append((quote, words, counts))
    add(
        "seed_refs",
        refs,
        [words, quote, counts],
        refcounts=True,
        too_many=5,
        filter=lambda x: not isinstance(x, dict),
    )
    add("seed_backrefs", backrefs, [words, quote, counts], refcounts=True, max_depth=5)

    # The cycle of the seed text, with and without __del__.
    x = []
    y = [x]
    x.append(y)
    f1 = Finalized()
    f2 = Finalized(f1)
    f1.other = f2
    _KEEP.append((x, y, f1, f2))
    add("cycle_lists_backrefs", backrefs, [x, y], max_depth=6)
    add("cycle_del", refs, [f1], max_depth=4)

    # The test fixture heap.
    add("fixture_root_refs_d3", refs, [hf.root], max_depth=3)
    add("fixture_root_refs_d4", refs, [hf.root], max_depth=4, too_many=6)
    add("fixture_child_backrefs", backrefs, [hf.child], max_depth=3)
    add("fixture_registry_refs", refs, [hf.registry], max_depth=3, too_many=10)
    add("fixture_slotted_refs", refs, [hf.slotted], max_depth=3)
    add("fixture_frame_refs", refs, [hf.frame], max_depth=2, too_many=8)
    add("fixture_closure_refs", refs, [hf.closure], max_depth=3, too_many=8)

    # Leak patterns.
    bus = EventBus()
    listeners = [Listener(bus, f"l{i}") for i in range(12)]
    cache = Cache()
    for k in range(15):
        cache.get(f"user{k}")
    tree = make_tree(3, 3)
    leaf = tree.children[1].children[2].children[0]
    closures = make_closures(10)
    err = make_traceback_leak()
    _KEEP.append((bus, listeners, cache, tree, closures, err))
    add("leak_listeners_refs", refs, [bus], max_depth=4, too_many=15)
    add("leak_listener_backrefs", backrefs, [listeners[3]], max_depth=4)
    add("leak_cache_refs", refs, [cache], max_depth=4, too_many=20)
    add("leak_session_backrefs", backrefs, [cache.store["user3"]], max_depth=8, too_many=20)
    add("leak_tree_refs", refs, [tree], max_depth=5, too_many=6)
    add("leak_tree_leaf_backrefs", backrefs, [leaf], max_depth=6, too_many=6)
    add("leak_closures_refs", refs, [closures], max_depth=4, too_many=12)
    add("leak_traceback_refs", refs, [err], max_depth=4, too_many=8)
    add(
        "chain_leaf_to_module",
        chain,
        refgraph.find_backref_chain(leaf, refgraph.is_proper_module),
    )
    add(
        "chains_session_listener_to_module",
        chain,
        refgraph.find_backref_chain(cache.store["user7"], refgraph.is_proper_module),
        refgraph.find_backref_chain(listeners[5], refgraph.is_proper_module),
    )

    # Standard library objects.
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("--size", type=int, default=3)
    parser.add_argument("names", nargs="*")
    logger = logging.getLogger("refgraph.layout.demo")
    logger.addHandler(logging.StreamHandler())
    pattern = re.compile(r"(?P<word>\w+)\s+(?P<num>\d+)")
    msg = email.message.EmailMessage()
    msg["Subject"] = "layout"
    msg.set_content("hello")
    etree = ET.fromstring("<a><b x='1'><c/><c/></b><d>text</d><e><f/></e></a>")
    ctx = decimal.Context(prec=12)
    frac = fractions.Fraction(3, 7)
    od = collections.OrderedDict((k, [k] * 2) for k in "abcdef")
    dd = collections.defaultdict(list, {"a": [1], "b": [2, 3]})
    partial = functools.partial(textwrap.fill, width=30)
    tmpl = string.Template("$who likes $what")
    decoder = json.JSONDecoder()
    _KEEP.append((parser, logger, pattern, msg, etree, ctx, frac, od, dd, partial, tmpl, decoder))
    add("stdlib_argparse_refs", refs, [parser], max_depth=3, too_many=8)
    add("stdlib_argparse_refs_d4", refs, [parser], max_depth=4, too_many=5)
    add("stdlib_logger_refs", refs, [logger], max_depth=4, too_many=8)
    add("stdlib_logger_backrefs", backrefs, [logger], max_depth=3, too_many=8)
    add("stdlib_email_refs", refs, [msg], max_depth=4, too_many=8)
    add("stdlib_etree_refs", refs, [etree], max_depth=5, too_many=8)
    add("stdlib_decimal_module_refs", refs, [decimal], max_depth=2, too_many=30)
    add("stdlib_ordereddict_refs", refs, [od], max_depth=3)
    add("stdlib_partial_refs", refs, [partial], max_depth=3, too_many=6)
    add("stdlib_template_refs", refs, [tmpl], max_depth=5, too_many=6)
    add("stdlib_json_decoder_refs", refs, [decoder], max_depth=3, too_many=6)
    add("stdlib_fraction_refs", refs, [frac], max_depth=6, too_many=6)
    add("stdlib_re_backrefs", backrefs, [pattern], max_depth=3, too_many=6)
    add(
        "stdlib_textwrap_module_refs",
        refs,
        [textwrap.TextWrapper],
        max_depth=2,
        too_many=12,
    )
    add("stdlib_json_module_refs", refs, [json], max_depth=2, too_many=25)

    # Bigger graphs (100-300 nodes).
    big_cache = Cache()
    for k in range(40):
        big_cache.get(f"user{k}")
    big_tree = make_tree(4, 3)
    _KEEP.append((big_cache, big_tree))
    add("big_cache_refs", refs, [big_cache], max_depth=4, too_many=50)
    add("big_tree_refs", refs, [big_tree], max_depth=7, too_many=5)
    add("big_argparse_refs", refs, [parser], max_depth=5, too_many=10)
    add("big_logging_refs", refs, [logger], max_depth=6, too_many=6)
    add("big_email_refs", refs, [msg], max_depth=6, too_many=6)
    add("big_fixture_child_backrefs", backrefs, [hf.child], max_depth=6, too_many=12)
    return out


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        for name, view in corpus():
            print(f"{name:32} {len(view):4} visits")
