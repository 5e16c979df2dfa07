"""refgraph against objgraph, side by side on the same heap, in the same process.

    python benchmarks/bench.py --objects 1000000 [--repeat 5] [--json out.json]
                               [--only typestats,count] [--timeout 120] [--smoke]

For each operation: the median time of several runs with each implementation, the ratio
objgraph/refgraph, and the peak memory each call adds. Operations that objgraph may not finish
(deep chains, wide searches, big graphs) run objgraph in a forked child killed at ``--timeout``.
See benchmarks/README.md for the method.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import io
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import heap  # noqa: E402  (the benchmark heap lives in a real module)
import objgraph  # noqa: E402
import procmem  # noqa: E402

try:
    import refgraph
    from refgraph import _refgraph, graphs
except ImportError as e:  # pragma: no cover - reported in the table
    refgraph = None
    _IMPORT_ERROR = str(e)


# --------------------------------------------------------------------------- measuring


_rss_kb = procmem.status_kb
_reset_peak = procmem.reset_peak


def peak_added_mb(fn):
    """Peak RSS added while ``fn`` runs, in MB (None where the kernel cannot reset the peak)."""
    gc.collect()
    if not _reset_peak():
        return None
    base = _rss_kb("VmRSS")
    fn()
    return max(0, _rss_kb("VmHWM") - base) / 1024


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def in_child(fn, repeat, timeout):
    """Run ``timed(fn)`` in a forked child; None if it did not finish within ``timeout``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            result = timed(fn, repeat)
        except BaseException:  # noqa: BLE001 - report failure to the parent
            result = -1.0
        os.write(w, json.dumps(result).encode())
        os._exit(0)
    os.close(w)
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            data = os.read(r, 1024)
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(r)
    if not data:
        return None
    value = json.loads(data)
    return None if value is None or value < 0 else value


# --------------------------------------------------------------------------- operations


def operations(n_graph):
    """(name, callable(module), slow_for_objgraph, collects[, setup, teardown]) for each
    benchmarked operation."""
    tail20 = heap.tail(heap.CHAIN20)
    tail1000 = heap.tail(heap.CHAIN1000)
    some = heap.RECORDS[len(heap.RECORDS) // 2][0]
    addrs = {id(r[0]) for r in heap.RECORDS[:1000] if isinstance(r, tuple)}
    chain20_head = heap.CHAIN20
    sink = io.StringIO
    # get_new_ids is measured in use: its state primed by a first call, as a leak hunter does.
    # The states are made just before and dropped just after (objgraph's holds a Python int
    # per object, which would swell the heap every later operation sees).
    new_ids_state = {}

    def prime_new_ids():
        for m in (objgraph, refgraph):
            if m is not None:
                new_ids_state[m] = {}
                m.get_new_ids(file=sink(), _state=new_ids_state[m], limit=0)

    def drop_new_ids():
        new_ids_state.clear()
        gc.collect()

    def proper(m):
        return m.is_proper_module

    ops = [
        ("typestats", lambda m: m.typestats(), False, False),
        ("show_most_common_types", lambda m: m.show_most_common_types(file=sink()), False, False),
        ("count", lambda m: m.count("Record"), False, False),
        ("by_type", lambda m: m.by_type("Point"), False, False),
        ("at", lambda m: m.at(id(some)), False, False),
        ("at_addrs", lambda m: m.at_addrs(addrs), False, False),
        ("show_growth", lambda m: m.show_growth(peak_stats={}, file=sink()), False, True),
        (
            "get_new_ids",
            lambda m: m.get_new_ids(file=sink(), _state=new_ids_state[m], limit=5),
            False,
            True,
            prime_new_ids,
            drop_new_ids,
        ),
        ("get_leaking_objects", lambda m: m.get_leaking_objects(), False, True),
        (
            "find_backref_chain 20",
            lambda m: m.find_backref_chain(tail20, proper(m), max_depth=30),
            True,
            True,
        ),
        (
            "find_backref_chain 1000",
            lambda m: m.find_backref_chain(tail1000, proper(m), max_depth=1100),
            True,
            True,
        ),
        (
            "find_ref_chain",
            lambda m: m.find_ref_chain(chain20_head, lambda x: x is tail20, max_depth=30),
            True,
            True,
        ),
        (
            "find_ref_chain wide",
            lambda m: m.find_ref_chain(heap.RECORDS, lambda x: False, max_depth=10**6),
            True,
            True,
        ),
        (
            "show_backrefs depth 5",
            lambda m: m.show_backrefs([some], max_depth=5, output=sink()),
            True,
            True,
        ),
        (
            "show_refs depth 3",
            lambda m: m.show_refs([heap.RECORDS[:n_graph]], max_depth=3, output=sink()),
            True,
            True,
        ),
    ]
    return ops


def png_drawing(n_graph):
    """Time drawing the show_refs graph to PNG: refgraph natively, Graphviz's dot -Tpng."""
    view = graphs._walk_view([heap.RECORDS[:n_graph]], False, graphs._GraphOptions(), "bench")
    nodes = len(view)
    native = timed(view.png, 3)
    dot_time = None
    dot = shutil.which("dot")
    if dot:
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "g.dot")
            with open(src, "w") as f:
                f.write(view.dot())
            cmd = [dot, "-Tpng", "-o" + os.path.join(d, "g.png"), src]
            dot_time = timed(lambda: subprocess.run(cmd, check=True), 3)
    return nodes, native, dot_time


def floors(repeat):
    out = {
        "gc.get_objects()": timed(gc.get_objects, repeat),
        "gc.collect()": timed(gc.collect, repeat),
    }
    if refgraph is not None:

        def capture():
            h = _refgraph.Heap(True)
            h.close()

        # The process's first capture apart (no earlier one to size its arrays by), then the
        # median of at least three, each after a floor run: one run of either moves by a
        # third with this host's spells (README, "What limits the rest").
        first = timed(capture, 1)
        caps, fls = [], []
        for _ in range(max(repeat, 3)):
            if hasattr(_refgraph, "traverse_pass"):
                fls.append(timed(_refgraph.traverse_pass, 1))
            caps.append(timed(capture, 1))
        out["refgraph capture"] = statistics.median(caps)
        out["refgraph first capture"] = first
        if fls:
            out["gc.get_objects() + tp_traverse pass"] = statistics.median(fls)
        h = _refgraph.Heap(True)
        out["_capture_stats"] = {
            "nodes": len(h),
            "tracked": h.tracked_count,
            "edges": h.edge_count,
            "graph_bytes": h.nbytes,
        }
        h.close()
    return out


def snapshot_figures(repeat):
    """Heap snapshots: capture alone, capture + save, file size, load, retained sizes."""
    d = tempfile.mkdtemp(prefix="refgraph-bench-")
    path = os.path.join(d, "heap.rgsnap")
    try:
        capture = timed(lambda: refgraph.snapshot(collect=False), repeat)
        capture_mb = peak_added_mb(lambda: refgraph.snapshot(collect=False))
        # Without edge names: what recording them costs.
        bare = timed(lambda: refgraph.snapshot(collect=False, names=False), repeat)
        bare_mb = peak_added_mb(lambda: refgraph.snapshot(collect=False, names=False))
        refgraph.snapshot(collect=False, names=False).save(path)
        bare_size = os.path.getsize(path)
        save = timed(lambda: refgraph.snapshot(collect=False).save(path), repeat)
        size = os.path.getsize(path)
        load = timed(lambda: refgraph.load(path), repeat)
        snap = refgraph.load(path)
        t0 = time.perf_counter()
        snap.typestats(retained=True)
        retained = time.perf_counter() - t0
        nodes = len(snap)
        del snap
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return {
        "nodes": nodes,
        "capture_s": capture,
        "capture_mb": capture_mb,
        "capture_without_names_s": bare,
        "capture_without_names_mb": bare_mb,
        "capture_save_s": save,
        "file_bytes": size,
        "file_without_names_bytes": bare_size,
        "load_s": load,
        "retained_sizes_s": retained,
    }


class _Listener:
    def __init__(self, n):
        self.n = n
        self.payload = [n] * 4

    def on_event(self, event):
        return event


def _peak_added_trimmed_mb(fn):
    """Like :func:`peak_added_mb`, after giving free heap memory back to the system
    (``malloc_trim``), so that what ``fn`` allocates shows in the resident size instead of
    reusing pages freed by earlier operations."""
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        trim = None
    gc.collect()
    if trim is not None:
        trim(0)
    if not _reset_peak():
        return None
    base = _rss_kb("VmRSS")
    fn()
    return max(0, _rss_kb("VmHWM") - base) / 1024


def leaks_figures(repeat):
    """find_leaks with its defaults on the benchmark heap, against one snapshot(): the tool's
    own time (the workload's calls are timed and taken out) and the peak memory each adds."""
    listeners = []
    spent = [0.0]

    def workload():
        t = time.perf_counter()
        for i in range(10):
            listeners.append(_Listener(i).on_event)
        spent[0] += time.perf_counter() - t

    def find():
        spent[0] = 0.0
        t = time.perf_counter()
        report = refgraph.find_leaks(workload)
        return time.perf_counter() - t - spent[0], report

    snapshot = timed(lambda: refgraph.snapshot(), repeat)
    tool = []
    report = None
    for _ in range(repeat):
        t, report = find()
        tool.append(t)
    found = bool(report) and report.suspects[0].path[-1].type.endswith("_Listener")
    snapshot_mb = _peak_added_trimmed_mb(lambda: refgraph.snapshot())
    leaks_mb = _peak_added_trimmed_mb(lambda: refgraph.find_leaks(workload))
    del listeners[:]
    tool_s = statistics.median(tool)
    return {
        "snapshot_s": snapshot,
        "find_leaks_tool_s": tool_s,
        "ratio": tool_s / snapshot if snapshot else None,
        "snapshot_mb": snapshot_mb,
        "find_leaks_mb": leaks_mb,
        "found": found,
    }


# --------------------------------------------------------------------------- report


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
        "objgraph": objgraph.__version__,
        "refgraph": getattr(refgraph, "__version__", None),
    }


def fmt_s(x):
    if x is None:
        return "n/a"
    if x == float("inf"):
        return "> timeout"
    if x < 1e-4:
        return f"{x * 1e6:9.1f} us"
    return f"{x * 1000:9.1f} ms" if x < 10 else f"{x:9.1f} s "


def fmt_mb(x):
    return "n/a" if x is None else f"{x:8.1f}"


def run(args):
    n = args.objects
    t0 = time.perf_counter()
    heap.build(n)
    gc.collect()
    tracked = len(gc.get_objects())
    info = machine()
    info.update(objects_requested=n, gc_tracked=tracked, build_seconds=time.perf_counter() - t0)
    fl = floors(args.repeat)
    capture_stats = fl.pop("_capture_stats", None)
    info["capture"] = capture_stats
    floor_collect = fl["gc.collect()"] + fl.get("refgraph capture", 0.0)
    only = set(args.only.split(",")) if args.only else None
    rows = []
    n_graph = 30
    for name, fn, slow, collects, *hooks in operations(n_graph):
        if only and name not in only:
            continue
        if hooks:
            hooks[0]()
        row = {"operation": name}
        if refgraph is not None:
            row["refgraph_mb"] = peak_added_mb(lambda fn=fn: fn(refgraph))
            row["refgraph_s"] = timed(lambda fn=fn: fn(refgraph), args.repeat)
        if slow:
            row["objgraph_mb"] = None
            t = in_child(lambda fn=fn: fn(objgraph), 1, args.timeout)
            row["objgraph_s"] = float("inf") if t is None else t
        else:
            row["objgraph_mb"] = peak_added_mb(lambda fn=fn: fn(objgraph))
            row["objgraph_s"] = timed(lambda fn=fn: fn(objgraph), args.repeat)
        if row.get("refgraph_s"):
            row["ratio"] = row["objgraph_s"] / row["refgraph_s"]
        if collects and row.get("refgraph_s"):
            row["vs_floor"] = row["refgraph_s"] / floor_collect
        if hooks:
            hooks[1]()
        rows.append(row)
        print(f"  {name}: done", file=sys.stderr)
    drawing = None
    if refgraph is not None and (not only or "png" in only):
        nodes, native, dot_time = png_drawing(n_graph)
        drawing = {"nodes": nodes, "refgraph_native_s": native, "dot_tpng_s": dot_time}
    snap = None
    if refgraph is not None and (not only or "snapshot" in only):
        snap = snapshot_figures(args.repeat)
    attach = None
    if refgraph is not None and (only is None or "attach" in only) and not args.smoke:
        # A second process with the same heap, attached to (Linux only).
        import attach_bench

        try:
            attach = attach_bench.measure(n, min(args.repeat, 3))
        except Exception as e:  # a failed attach must not lose the rest of the run
            print(f"attach not measured: {type(e).__name__}: {e}", file=sys.stderr)
    leaks = None
    if refgraph is not None and (not only or "leaks" in only):
        leaks = leaks_figures(args.repeat)
    return {
        "machine": info,
        "floors": fl,
        "operations": rows,
        "png": drawing,
        "snapshot": snap,
        "attach": attach,
        "leaks": leaks,
    }


def print_table(res):
    m = res["machine"]
    print(
        f"refgraph {m['refgraph']} vs objgraph {m['objgraph']} — Python {m['python']}, {m['date']}"
    )
    print(f"machine: {m['cpu']}, {m['cores']} cores")
    cap = m.get("capture") or {}
    print(
        f"heap: {m['gc_tracked']:,} gc-tracked objects"
        + (
            f"; capture: {cap['nodes']:,} nodes, {cap['edges']:,} edges, "
            f"{cap['graph_bytes'] / 2**20:.1f} MB of graph arrays"
            if cap
            else ""
        )
    )
    print()
    head = (
        f"{'operation':26s} {'objgraph':>12s} {'refgraph':>12s} {'ratio':>8s}"
        f" {'vs floor':>9s} {'og +MB':>8s} {'rg +MB':>8s}"
    )
    print(head)
    print("-" * len(head))
    for r in res["operations"]:
        ratio = r.get("ratio")
        ratio_s = (
            "n/a"
            if ratio is None
            else ("> " if r["objgraph_s"] == float("inf") else "")
            + (
                (f"{ratio:.1f}x" if ratio < 1000 else f"{ratio:.0f}x")
                if r["objgraph_s"] != float("inf")
                else "timeout"
            )
        )
        vs = r.get("vs_floor")
        print(
            f"{r['operation']:26s} {fmt_s(r['objgraph_s']):>12s} {fmt_s(r.get('refgraph_s')):>12s}"
            f" {ratio_s:>8s} {('%.2f' % vs) if vs else '':>9s}"
            f" {fmt_mb(r.get('objgraph_mb')):>8s} {fmt_mb(r.get('refgraph_mb')):>8s}"
        )
    print()
    fl = res["floors"]
    print("floors:", ", ".join(f"{k} {fmt_s(v).strip()}" for k, v in fl.items()))
    pass_s = fl.get("gc.get_objects() + tp_traverse pass")
    if pass_s and fl.get("refgraph capture"):
        print(
            f"capture / floor (gc.get_objects() + tp_traverse pass): "
            f"{fl['refgraph capture'] / pass_s:.2f}x (the process's first capture "
            f"{fl['refgraph first capture'] / pass_s:.2f}x)"
        )
    p = res.get("png")
    if p:
        dot = fmt_s(p["dot_tpng_s"]).strip() if p["dot_tpng_s"] else "n/a (Graphviz not installed)"
        print(
            f"PNG of the show_refs graph ({p['nodes']} nodes): refgraph native "
            f"{fmt_s(p['refgraph_native_s']).strip()}, dot -Tpng {dot}"
        )
    sn = res.get("snapshot")
    if sn:
        print(
            f"snapshot of {sn['nodes']:,} objects: capture {fmt_s(sn['capture_s']).strip()},"
            f" capture + save {fmt_s(sn['capture_save_s']).strip()},"
            f" file {sn['file_bytes'] / 2**20:.1f} MB, load {fmt_s(sn['load_s']).strip()},"
            f" retained sizes (dominators) {fmt_s(sn['retained_sizes_s']).strip()}"
        )
        print(
            f"  edge names: capture without them {fmt_s(sn['capture_without_names_s']).strip()},"
            f" peak +{fmt_mb(sn['capture_mb']).strip()} with names,"
            f" +{fmt_mb(sn['capture_without_names_mb']).strip()} without;"
            f" file without them {sn['file_without_names_bytes'] / 2**20:.1f} MB"
        )
    at = res.get("attach")
    if at:
        import attach_bench

        print(attach_bench.describe(at))
    lk = res.get("leaks")
    if lk:
        print(
            f"find_leaks (defaults: 3 warm-up calls, 5 runs of 2): tool time"
            f" {fmt_s(lk['find_leaks_tool_s']).strip()} = {lk['ratio']:.2f}x one snapshot()"
            f" ({fmt_s(lk['snapshot_s']).strip()}); peak +MB {fmt_mb(lk['find_leaks_mb']).strip()}"
            f" vs snapshot() {fmt_mb(lk['snapshot_mb']).strip()};"
            f" leak named: {'yes' if lk['found'] else 'NO'}"
        )
    print()
    print(
        "ratio = objgraph / refgraph (median times); vs floor = refgraph / (gc.collect() + capture)"
        " for operations that collect first; +MB = peak RSS added by one call (VmHWM after"
        " resetting it); objgraph's slow operations run in a forked child (no memory figure)."
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--objects", type=int, default=100_000, help="gc-tracked objects to build")
    p.add_argument("--repeat", type=int, default=5, help="runs per operation (median)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds objgraph may take")
    p.add_argument("--json", help="also write the results as JSON to this file")
    p.add_argument(
        "--only",
        help="comma-separated operations (names as in the table, png, snapshot, attach)",
    )
    p.add_argument("--smoke", action="store_true", help="10k objects, one run, short timeouts")
    args = p.parse_args(argv)
    if args.smoke:
        args.objects, args.repeat, args.timeout = 10_000, 1, 20.0
    if refgraph is None:
        print(
            f"refgraph cannot be imported ({_IMPORT_ERROR}): timing objgraph only", file=sys.stderr
        )
    res = run(args)
    print_table(res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
