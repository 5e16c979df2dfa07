"""Two builds of refgraph's extension, measured in turns in one process: the only comparison
this host's noise allows (its speed moves by a third between processes, and between minutes).

    python benchmarks/ab.py --base OLD/_refgraph.abi3.so [--objects 1e6] [--rounds 6]
                            [--what capture|snapshot|quiet-snapshot]

The installed ``refgraph._refgraph`` is "new"; ``--base`` is another build's extension file
(for example from ``pip install --target DIR`` of an older wheel), loaded under the same module
name as a second module. One heap is built (``heap.py``, the benchmark's web-app heap), then
each round runs base and new in turn (the order alternates) with the collector off:

- ``capture``: the bare capture (``_refgraph.Heap``), and the floor (``gc.get_objects()`` plus a
  ``tp_traverse`` pass that only counts) once a round;
- ``snapshot``: the snapshot's capture with edge names, and the time of each phase it reports
  (``walk``, ``references``, ``sizes``, ``names``; ``<`` is the time before a phase started,
  ``>`` the phase itself);
- ``quiet-snapshot``: the same snapshot without a progress callback (a capture may do less
  when no Python code can run during it), its time only;
- ``graph-snapshot``: ``quiet-snapshot`` with the garbage left out on the graph (as
  ``snapshot(collect="graph")``, which the scale benchmark measures).

Printed: the median and the best of each, and new's median over base's.
"""

from __future__ import annotations

import argparse
import gc
import importlib.machinery
import importlib.util
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def load_extension(path):
    """The extension module at ``path``, loaded as a module of its own."""
    name = "_refgraph"
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def capture_once(module):
    t0 = time.perf_counter()
    h = module.Heap(True)
    t = time.perf_counter() - t0
    h.close()
    return {"capture": t}


def snapshot_once(module, phases=True, garbage=False):
    marks = []

    def progress(phase, done, total):
        if done == 0 or done == total:
            marks.append((phase + (">" if done == total else "<"), time.perf_counter()))

    t0 = time.perf_counter()
    snap = module.Snapshot.capture(
        untracked=True,
        roots=[],
        modules=[],
        collected=False,
        python=sys.version.split()[0],
        pid=os.getpid(),
        created=0,
        strings="names",
        names=True,
        progress=progress if phases else None,
        **({"find_garbage": True} if garbage else {}),
    )
    row = {"snapshot": time.perf_counter() - t0}
    del snap
    prev = t0
    for key, t in marks:
        row[key] = row.get(key, 0.0) + t - prev
        prev = t
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the other build's _refgraph extension file")
    ap.add_argument("--objects", default="1e6", help="gc-tracked objects in the heap")
    ap.add_argument("--rounds", type=int, default=6, help="runs of each build")
    ap.add_argument("--each", action="store_true", help="also print every run's times")
    ap.add_argument(
        "--what",
        choices=("capture", "snapshot", "quiet-snapshot", "graph-snapshot"),
        default="capture",
    )
    args = ap.parse_args(argv)

    import heap

    from refgraph import _refgraph as new

    base = load_extension(os.path.abspath(args.base))
    if base is new:
        raise SystemExit("--base is the installed extension itself")
    builds = {"base": base, "new": new}
    once = {
        "capture": capture_once,
        "snapshot": snapshot_once,
        "quiet-snapshot": lambda module: snapshot_once(module, phases=False),
        "graph-snapshot": lambda module: snapshot_once(module, phases=False, garbage=True),
    }[args.what]

    heap.build(int(float(args.objects)))
    gc.collect()
    gc.disable()
    results = {"base": {}, "new": {}}
    floors = []
    try:
        # One of each first: the first capture of a process checks the collector's layout.
        for module in builds.values():
            once(module)
        for i in range(args.rounds):
            order = ["base", "new"] if i % 2 == 0 else ["new", "base"]
            for name in order:
                times = once(builds[name])
                for key, t in times.items():
                    results[name].setdefault(key, []).append(t)
                if args.each:
                    shown = " ".join(f"{k} {t:.3f}" for k, t in times.items())
                    print(f"round {i} {name}: {shown}", flush=True)
            if args.what == "capture":
                t0 = time.perf_counter()
                new.traverse_pass()
                floors.append(time.perf_counter() - t0)
    finally:
        gc.enable()

    version = sys.version.split()[0]
    print(f"{len(gc.get_objects()):,} gc-tracked objects, {args.rounds} rounds, Python {version}")
    heads = ("base median", 12), ("new median", 12), ("base best", 11), ("new best", 10)
    print(f"{'':14s}" + "".join(f"{h:>{w}s}" for h, w in heads) + f"{'new/base':>10s}")
    for key in results["new"]:
        b, n = results["base"].get(key), results["new"][key]
        if not b:
            continue
        mb, mn = statistics.median(b), statistics.median(n)
        ratio = f"{mn / mb:.2f}" if mb > 0 else "n/a"
        print(f"{key:14s}{mb:12.3f}{mn:12.3f}{min(b):11.3f}{min(n):10.3f}{ratio:>10s}")
    if floors:
        f = statistics.median(floors)
        print(f"{'floor':14s}{f:12.3f}{'':12s}{min(floors):11.3f}")
        for name in ("base", "new"):
            ratio = statistics.median(results[name]["capture"]) / f
            print(f"{name} capture / floor (medians): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
