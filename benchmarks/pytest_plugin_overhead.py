"""Per-test overhead of ``pytest --refgraph-leaks`` beyond the repeated calls themselves.

Runs pytest in this process on a generated module of tests that leak nothing, with the heap
grown to ``--objects`` gc-tracked objects, and prints the median of the plugin's own time per
test (its check minus the time spent inside the test's calls), next to one ``snapshot()`` of
the same heap for scale.

    python benchmarks/pytest_plugin_overhead.py --objects 100000 --tests 10
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import textwrap
import time

TESTS = """
class Item:
    __slots__ = ("n",)

    def __init__(self, n):
        self.n = n


def make(n):
    return [Item(i) for i in range(n)]


"""


class _Collect:
    def __init__(self):
        self.results = {}

    def pytest_runtest_logreport(self, report):
        v = getattr(report, "refgraph_leaks", None)
        if v is not None:
            self.results[report.nodeid] = v


class _Node:
    __slots__ = ("a", "b")

    def __init__(self, a):
        self.a = a
        self.b = None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--objects", type=int, default=100_000, help="gc-tracked objects on the heap")
    p.add_argument("--tests", type=int, default=10, help="clean tests to check")
    args = p.parse_args()

    import pytest

    import refgraph

    have = len(gc.get_objects())
    heap = [[_Node(i)] for i in range(max(0, (args.objects - have) // 2))]
    body = TESTS + "".join(
        f"def test_clean_{i}():\n    assert len(make({10 + i})) == {10 + i}\n\n\n"
        for i in range(args.tests)
    )
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "test_overhead_suite.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(body))
        collect = _Collect()
        ret = pytest.main(
            ["-q", "-p", "no:cacheprovider", "--refgraph-leaks", path], plugins=[collect]
        )
        gc_objects = len(gc.get_objects())
        t = time.perf_counter()
        snap = refgraph.snapshot()
        snap_s = time.perf_counter() - t
        del snap
    statuses = {v["status"] for v in collect.results.values()}
    overheads = [v["overhead_ms"] for v in collect.results.values()]
    # 3 warm-up calls (the first is the test itself) and 5 rounds of 2: the quick pass only.
    full = sum(1 for v in collect.results.values() if v.get("calls", 0) > 3 + 5 * 2)
    print(
        f"python {sys.version.split()[0]}; heap {gc_objects:,} gc-tracked objects; "
        f"{len(overheads)} tests, statuses {sorted(statuses)}, pytest exit {int(ret)}; "
        f"{full} needed the measured rounds after the quick pass"
    )
    print(
        f"plugin overhead per clean test: median {statistics.median(overheads):.1f} ms "
        f"(min {min(overheads):.1f}, max {max(overheads):.1f}); "
        f"one snapshot() {snap_s * 1000:.1f} ms"
    )
    del heap


if __name__ == "__main__":
    main()
