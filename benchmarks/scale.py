"""How refgraph's cost grows with the heap: 1M, 3M, 10M and 30M objects.

    python benchmarks/scale.py [--sizes 1e6,3e6,1e7,3e7] [--json out.json] [--plot scale.png]
                               [--keep DIR] [--smoke]

For each size, a fresh interpreter builds the benchmark heap (``heap.py``, the same synthetic
web-app heap as ``bench.py``) and measures, in that process:

- ``refgraph.snapshot(collect="graph")`` (the garbage left out, found on the graph instead
  of a ``gc.collect()`` first), the process's first capture, and ``save()``: time, and the
  peak memory the snapshot adds (the kernel's high-water mark, reset just before: Rust and
  Python allocations both count);
- the capture's floor (``gc.get_objects()`` plus one ``tp_traverse`` call per object that only
  counts references) and the bare capture (``_refgraph.Heap``), whose ratio is the issue's
  "capture at 2x its floor": run in turns (``--repeat`` times each), the best of each and the
  median of the ratios of the pairs;
- a second snapshot after the heap grew by 1% (a leak of ``Record`` objects), saved too.

A second fresh interpreter then works on the two files only, as the CLI does after the fact:
``load`` (time, and the whole process's peak memory), retained sizes
(``typestats(retained=True)``), ``diff``, ``paths`` of the leaking type; and the CLI's
``top``, ``leaks`` and ``report`` run as separate processes (time and their own peak memory).

Per object = divided by the snapshot's nodes (tracked objects plus the str/int/untracked
containers they refer to). The table and the plot (``--plot``, matplotlib) show time and
memory per object against the heap's size: a flat line is linear cost.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import procmem  # noqa: E402

_status_kb = procmem.status_kb
_reset_peak = procmem.reset_peak


def _measure(fn):
    """(seconds, peak MB added, result) of one call."""
    gc.collect()
    reset = _reset_peak()
    base = _status_kb("VmRSS")
    t0 = time.perf_counter()
    result = fn()
    t = time.perf_counter() - t0
    peak = (max(0, _status_kb("VmHWM") - base) / 1024) if reset else None
    return t, peak, result


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# --------------------------------------------------------------------------- children


def capture_child(n, directory, repeat):
    import heap

    import refgraph
    from refgraph import _refgraph

    out = {"objects_requested": n}
    t0 = time.perf_counter()
    heap.build(n)
    gc.collect()
    out["build_s"] = time.perf_counter() - t0
    out["gc_tracked"] = len(gc.get_objects())
    out["rss_heap_mb"] = _status_kb("VmRSS") / 1024
    gc.disable()
    try:
        # The snapshot first: the process's first capture, as a user's usually is (sized
        # from the collector's count, with no earlier capture to go by).
        t, mb, snap = _measure(lambda: refgraph.snapshot(collect="graph"))
        out["snapshot_s"] = t
        out["snapshot_mb"] = mb
        out["nodes"] = len(snap)
        info = snap.info()
        out["edges"] = info.get("references")
        a = os.path.join(directory, "a.rgsnap")
        t, _, _ = _measure(lambda: snap.save(a))
        out["save_s"] = t
        out["file_bytes"] = os.path.getsize(a)
        snap = None

        def bare():
            h = _refgraph.Heap(True)
            h.close()

        # The floor and the capture in turns, so that a slow spell of the host (this VM's
        # speed moves by a third between minutes) weighs on both: the best of each, and the
        # median of the ratios of the runs made side by side.
        floors, captures = [], []
        for _ in range(repeat):
            floors.append(_best(_refgraph.traverse_pass, 1))
            captures.append(_best(bare, 1))
        out["floor_s"] = min(floors)
        out["capture_s"] = min(captures)
        out["capture_vs_floor"] = out["capture_s"] / out["floor_s"]
        out["capture_vs_floor_median"] = statistics.median(
            c / f for c, f in zip(captures, floors, strict=True)
        )
        # The heap leaks 1% more records, held by the module-level cache.
        base = len(heap.CACHE)
        out["planted"] = max(1, n // heap.PER_UNIT // 100)
        for i in range(out["planted"]):
            heap.CACHE[base + i] = [heap.Record(base + i)]
        refgraph.snapshot(collect="graph").save(os.path.join(directory, "b.rgsnap"))
    finally:
        gc.enable()
    return out


#: Runs the CLI (``sys.argv[1:]``) and writes the process's peak resident memory as its
#: last line.
_CLI_PEAK = """
import sys
from refgraph.cli import main
try:
    rc = main(sys.argv[1:])
finally:
    with open("/proc/self/status") as f:
        hwm = next(line.split()[1] for line in f if line.startswith("VmHWM"))
    sys.stdout.flush()
    sys.stderr.write("\\nrefgraph-peak-kb " + hwm + "\\n")
sys.exit(rc)
"""


def analyse_child(directory):
    import refgraph

    a = os.path.join(directory, "a.rgsnap")
    b = os.path.join(directory, "b.rgsnap")
    out = {}
    base_kb = _status_kb("VmRSS")
    t, _, snap = _measure(lambda: refgraph.load(a))
    out["load_s"] = t
    t, _, _ = _measure(lambda: snap.typestats(retained=True))
    out["retained_s"] = t
    out["load_retained_peak_mb"] = (_status_kb("VmHWM") - base_kb) / 1024
    newer = refgraph.load(b)
    t, _, rows = _measure(lambda: newer.diff(snap))
    out["diff_s"] = t
    out["diff_record_delta"] = sum(r.count_delta for r in rows if r.name.endswith("Record"))
    snap = None
    t, _, _ = _measure(lambda: newer.paths("Record"))
    out["paths_s"] = t
    newer = None
    # The CLI's own peak, read by the process itself as it exits: the peak `wait4` reports for
    # a child also counts the pages of the parent it was forked from (this process, which
    # still holds what the loads above left in its heap), not only the CLI's.
    cli = [sys.executable, "-c", _CLI_PEAK]
    for name, args in (
        ("top", ["top", b]),
        ("leaks", ["leaks", a, b]),
        ("report", ["report", b, "-o", os.path.join(directory, "report.html")]),
    ):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cli + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = proc.stdout.read()
        _, status, _usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out[name + "_s"] = time.perf_counter() - t0
        text, _, peak = text.rstrip().rpartition(b"\nrefgraph-peak-kb ")
        out[name + "_peak_mb"] = int(peak) / 1024 if peak.isdigit() else float("nan")
        if proc.returncode != 0:
            raise SystemExit(f"refgraph {name} failed:\n{text.decode(errors='replace')}")
        if name == "leaks":
            out["leaks_found_record"] = b"Record" in text
    return out


# --------------------------------------------------------------------------- parent


def _run_child(args):
    cmd = [sys.executable, os.path.abspath(__file__)] + args
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_size(n, repeat, keep):
    directory = tempfile.mkdtemp(prefix="refgraph-scale-", dir=keep)
    try:
        row = _run_child(["--capture-child", str(n), "--dir", directory, "--repeat", str(repeat)])
        row.update(_run_child(["--analyse-child", directory]))
    finally:
        if keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    return row


COLUMNS = [
    # (key, header, scale, per-object unit or None)
    ("floor_s", "floor", 1e3, "ns"),
    ("capture_s", "capture", 1e3, "ns"),
    ("snapshot_s", "snapshot", 1e3, "ns"),
    ("save_s", "save", 1e3, "ns"),
    ("load_s", "load", 1e3, "ns"),
    ("retained_s", "retained", 1e3, "ns"),
    ("diff_s", "diff", 1e3, "ns"),
    ("paths_s", "paths", 1e3, "ns"),
    ("top_s", "top (CLI)", 1e3, "ns"),
    ("leaks_s", "leaks (CLI)", 1e3, "ns"),
    ("report_s", "report (CLI)", 1e3, "ns"),
]


def print_table(rows, out=sys.stdout):
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"refgraph scale — Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}")
    p()
    head = f"{'':24s}" + "".join(f"{r['gc_tracked'] / 1e6:>13.1f}M" for r in rows)
    p(head + "   (gc-tracked objects)")
    p("-" * len(head))

    def line(label, values):
        p(f"{label:24s}" + "".join(f"{v:>14s}" for v in values))

    line("nodes", [f"{r['nodes']:,}" for r in rows])
    line("edges", [f"{r['edges']:,}" if r.get("edges") else "n/a" for r in rows])
    line("capture / floor (best)", [f"{r['capture_vs_floor']:.2f}x" for r in rows])
    line(
        "  (median of pairs)",
        [
            f"{r['capture_vs_floor_median']:.2f}x" if "capture_vs_floor_median" in r else "n/a"
            for r in rows
        ],
    )
    for key, header, _, _ in COLUMNS:
        line(
            header + " s (ns/node)",
            [f"{r[key]:.2f} ({r[key] / r['nodes'] * 1e9:.0f})" for r in rows],
        )
    line("snapshot + save s", [f"{r['snapshot_s'] + r['save_s']:.2f}" for r in rows])
    line(
        "snapshot +MB (B/node)",
        [f"{r['snapshot_mb']:.0f} ({r['snapshot_mb'] * 2**20 / r['nodes']:.0f})" for r in rows],
    )
    line(
        "  B per gc-tracked obj",
        [f"{r['snapshot_mb'] * 2**20 / r['gc_tracked']:.0f}" for r in rows],
    )
    line(
        "file MB (B/node)",
        [f"{r['file_bytes'] / 1e6:.1f} ({r['file_bytes'] / r['nodes']:.1f})" for r in rows],
    )
    line(
        "load+retained s",
        [f"{r['load_s'] + r['retained_s']:.2f}" for r in rows],
    )
    line(
        "load+retained peak MB",
        [
            f"{mb:.0f} ({mb * 2**20 / r['nodes']:.0f})"
            for r in rows
            for mb in [r["load_retained_peak_mb"]]
        ],
    )
    for name in ("top", "leaks", "report"):
        line(f"{name} (CLI) peak MB", [f"{r[name + '_peak_mb']:.0f}" for r in rows])
    line("leak found (Record)", ["yes" if r.get("leaks_found_record") else "NO" for r in rows])


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["nodes"] / 1e6 for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.get_cmap("tab20").colors
    for i, (key, header, _, _) in enumerate(COLUMNS):
        ax1.plot(
            xs,
            [r[key] / r["nodes"] * 1e9 for r in rows],
            marker="os^v"[i % 4],
            color=colours[i % len(colours)],
            label=header,
        )
    ax1.set_xscale("log")
    ax1.set_xlabel("objects in the snapshot (millions, log scale)")
    ax1.set_ylabel("time per object (ns)")
    ax1.set_title("Time per object (flat = linear cost)")
    # Below the plots: inside, the legend hid the highest line.
    ax1.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    ax1.grid(alpha=0.3)
    for key, header in (
        ("snapshot_mb", "snapshot(): extra peak"),
        ("load_retained_peak_mb", "load + retained sizes: process peak"),
        ("report_peak_mb", "report (CLI): process peak"),
    ):
        ax2.plot(xs, [r[key] * 2**20 / r["nodes"] for r in rows], marker="o", label=header)
    ax2.plot(xs, [r["file_bytes"] / r["nodes"] for r in rows], marker="o", label="file size")
    ax2.set_xscale("log")
    ax2.set_xlabel("objects in the snapshot (millions, log scale)")
    ax2.set_ylabel("bytes per object")
    ax2.set_title("Memory per object")
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    ax2.grid(alpha=0.3)
    for ax in (ax1, ax2):
        ax.set_xticks(xs, [f"{x:.1f}" for x in xs])
        ax.minorticks_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1e6,3e6,1e7,3e7", help="comma-separated object counts")
    ap.add_argument("--repeat", type=int, default=5, help="runs of the floor and the capture")
    ap.add_argument("--json", help="also write the rows as JSON")
    ap.add_argument("--plot", help="draw time and memory per object to this PNG (matplotlib)")
    ap.add_argument("--keep", help="make the snapshot files in this folder, and keep them")
    ap.add_argument("--smoke", action="store_true", help="10k and 20k objects, one run")
    ap.add_argument("--capture-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--analyse-child", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.capture_child:
        print(json.dumps(capture_child(args.capture_child, args.dir, args.repeat)))
        return 0
    if args.analyse_child:
        print(json.dumps(analyse_child(args.analyse_child)))
        return 0
    sizes = [10_000, 20_000] if args.smoke else [int(float(s)) for s in args.sizes.split(",")]
    repeat = 1 if args.smoke else args.repeat
    rows = []
    for n in sizes:
        print(f"  {n:,} objects...", file=sys.stderr, flush=True)
        rows.append(measure_size(n, repeat, args.keep))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
    print_table(rows)
    if args.plot:
        plot(rows, args.plot)
        print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
