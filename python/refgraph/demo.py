"""``refgraph demo``: a small program that leaks, and how refgraph finds the leak.

A request handler caches every session in a module-level dict that nobody ever clears. First the
one-call way: :func:`refgraph.find_leaks` runs the handler a few times and names what grows and
the object that holds it, draws the path to it (natively, no Graphviz needed) and writes an HTML
report. Then the objgraph way, step by step: the growth, the type that piles up, the chain of
references from a module that keeps one session alive, and its drawing.
"""

from __future__ import annotations

import io
import itertools
import os

import refgraph

from . import labels

#: The leak: a module-level cache that is never cleared.
_session_cache: dict = {}


class Session:
    """What each request leaves behind."""

    def __init__(self, user):
        self.user = user
        self.history = [f"/login?user={user}"]
        self.buffer = bytearray(256)


def handle_request(i):
    session = Session(f"user{i}")
    _session_cache[session.user] = session  # oops: cached forever
    return len(session.history)


def describe_chain(chain):
    """One line per step: the object, then the attribute or key that leads to the next."""
    lines = []
    for i, obj in enumerate(chain):
        lines.append(f"  {labels.short_typename(obj)} {labels.safe_repr(obj)}")
        if i + 1 < len(chain):
            label = labels.edge_label(obj, chain[i + 1])
            via = label[0].replace("\n", " ") if label else "(reference)"
            lines.append(f"    --[{via}]-->")
    return "\n".join(lines)


def main(out_dir=".", requests=500):
    print("refgraph demo: a request handler that caches every session and never forgets one.\n")
    numbers = itertools.count()

    def one_request():
        handle_request(next(numbers))

    print("1. The one-call way: refgraph.find_leaks(one_request)\n")
    report = refgraph.find_leaks(one_request, calls_per_run=max(1, requests // 10))
    print(report)
    picture = os.path.join(out_dir, "refgraph-demo.png")
    page = os.path.join(out_dir, "refgraph-demo.html")
    if report:
        report.show(filename=picture)
        report.to_html(page)
        print(f"\nDrawn to {picture} (no Graphviz needed); a report to open in a browser: {page}")
    _session_cache.clear()

    print("\n2. The objgraph way, step by step (import refgraph as objgraph)\n")
    refgraph.show_growth(limit=5, file=io.StringIO())  # baseline
    for i in range(requests):
        handle_request(i)

    print(f"After {requests} requests, the types that grew (show_growth):")
    refgraph.show_growth(limit=5)

    print("\nMost common types (show_most_common_types):")
    refgraph.show_most_common_types(limit=5)

    victim = refgraph.by_type("Session")[-1]
    chain = refgraph.find_backref_chain(victim, refgraph.is_proper_module)
    print("\nWhat keeps the newest Session alive (find_backref_chain to a module):")
    print(describe_chain(chain))

    filename = os.path.join(out_dir, "refgraph-demo-chain.png")
    print(f"\nDrawing the chain (show_chain) to {filename}:")
    refgraph.show_chain(chain, filename=filename, refcounts=True)
    _session_cache.clear()
    return report, chain
