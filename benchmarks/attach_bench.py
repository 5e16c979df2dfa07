"""``refgraph attach`` against an in-process snapshot of the same heap.

    python benchmarks/attach_bench.py --objects 1000000 [--repeat 3]

A child process builds the benchmark heap (heap.py), takes ``refgraph.snapshot()`` + ``save()``
itself (the in-process time), then runs a busy loop; this process attaches to it ``--repeat``
times (the injection, the wait for a safe point, the capture in the target, writing and reading
the file).
Both collect garbage first, as ``refgraph attach`` does by default. The figure that matters is
attach − in-process: what attaching costs on top of the snapshot itself. Also called by
bench.py (``--only attach``); needs Linux (and gdb on machines other than x86_64).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import gc, os, sys, time
sys.path.insert(0, sys.argv[1])
import heap
import refgraph
heap.build(int(sys.argv[2]))
gc.collect()
path = os.path.join(sys.argv[3], "inproc.rgsnap")
times = []
for _ in range(int(sys.argv[4])):
    t0 = time.perf_counter()
    refgraph.snapshot().save(path)
    times.append(time.perf_counter() - t0)
os.unlink(path)
with open(os.path.join(sys.argv[3], "ready.tmp"), "w") as f:
    f.write(" ".join(map(repr, times)))
os.rename(os.path.join(sys.argv[3], "ready.tmp"), os.path.join(sys.argv[3], "ready"))
stop = os.path.join(sys.argv[3], "stop")
n = 0
while not os.path.exists(stop):
    for _ in range(10000):
        n += 1
"""


def _injector():
    from refgraph.attach import preflight

    return preflight.injector(sys.version_info[:3])


def available():
    if sys.platform != "linux":
        return False
    return _injector() != "gdb" or shutil.which("gdb") is not None


def measure(objects, repeat=3):
    """{'objects', 'nodes', 'inproc_s', 'attach_s', 'inject_s', 'in_target_s', 'beyond_s'} with
    medians over ``repeat`` runs, or None when attach cannot run here."""
    if not available():
        return None
    import refgraph
    from refgraph.attach import inject, preflight

    if _injector() == "gdb":
        try:
            # Where gdb cannot call into a process safely, refgraph refuses to attach: nothing
            # to measure (checked on a process of our own before the target is started).
            preflight.check_gdb_calls(shutil.which("gdb"))
        except preflight.AttachError as e:
            print(f"attach not measured: {e}", file=sys.stderr)
            return None

    d = tempfile.mkdtemp(prefix="refgraph-attach-bench-")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(refgraph.__file__)))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, HERE, str(objects), d, str(repeat)], env=env
    )
    try:
        ready = os.path.join(d, "ready")
        while not os.path.exists(ready):
            if child.poll() is not None:
                raise RuntimeError(f"benchmark target exited with {child.returncode}")
            time.sleep(0.05)
        with open(ready) as f:
            inproc = [float(x) for x in f.read().split()]
        target = preflight.check(child.pid)
        runs = []
        for _ in range(repeat):
            session = inject.Session(target, timeout=300)
            t0 = time.perf_counter()
            got = session.run()
            total = time.perf_counter() - t0
            runs.append((total, got.inject_seconds, got.status["seconds"], got.status["objects"]))
        open(os.path.join(d, "stop"), "w").close()
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        shutil.rmtree(d, ignore_errors=True)
    med = statistics.median
    inproc_s = med(inproc)
    attach_s = med(r[0] for r in runs)
    return {
        "objects": objects,
        "nodes": runs[-1][3],
        "inproc_s": inproc_s,
        "attach_s": attach_s,
        "inject_s": med(r[1] for r in runs),
        "in_target_s": med(r[2] for r in runs),
        "beyond_s": attach_s - inproc_s,
    }


def describe(r):
    return (
        f"attach to a {r['nodes']:,}-object process: {r['attach_s']:.2f} s "
        f"(injection {r['inject_s']:.2f} s, snapshot in the target {r['in_target_s']:.2f} s); "
        f"in-process snapshot + save {r['inproc_s']:.2f} s; attach costs "
        f"{r['beyond_s']:+.2f} s beyond it"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--objects", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    r = measure(args.objects, args.repeat)
    if r is None:
        print("attach benchmark skipped: needs Linux (and gdb on machines other than x86_64)")
        return 0
    print(describe(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
