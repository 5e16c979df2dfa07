"""The benchmark runs (N = 10k, one run each) so that it never rots. It times nothing here."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

BENCH = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "bench.py")


def test_benchmark_smoke_run(tmp_path):
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, BENCH, "--smoke", "--json", str(out_json)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    for op in ("typestats", "get_leaking_objects", "find_backref_chain 1000", "show_refs depth 3"):
        assert op in table
    assert "floors:" in table and "PNG of the show_refs graph" in table
    data = json.loads(out_json.read_text())
    assert data["machine"]["gc_tracked"] >= 10_000
    rows = {r["operation"]: r for r in data["operations"]}
    assert len(rows) == 15
    # Every operation ran to the end with both libraries (objgraph's slow ones in a child that
    # reports inf when it times out, which it must not at 10k objects).
    for name, r in rows.items():
        assert math.isfinite(r["refgraph_s"]) and math.isfinite(r["objgraph_s"]), (name, r)
        assert r["ratio"] == r["objgraph_s"] / r["refgraph_s"], name
    assert data["png"]["nodes"] > 50


REPORT_BENCH = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "report_bench.py")


def test_report_benchmark_smoke_run(tmp_path):
    out_json = tmp_path / "report.json"
    args = [sys.executable, REPORT_BENCH, "--smoke", "--json", str(out_json)]
    if not (os.path.exists("/usr/bin/chromium") or os.environ.get("CI")):
        args.append("--no-browser")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "write the report" in proc.stdout
    data = json.loads(out_json.read_text())
    assert data["objects"] > 10_000 and data["size_bytes"] > 10_000
    if "--no-browser" not in args:
        assert data["console_errors"] == 0 and 0 < data["type_rows_in_dom"] < 150


SCALE = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "scale.py")


def test_scale_benchmark_smoke_run(tmp_path):
    out_json = tmp_path / "scale.json"
    plot = tmp_path / "scale.png"
    proc = subprocess.run(
        [sys.executable, SCALE, "--smoke", "--json", str(out_json), "--plot", str(plot)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "capture / floor" in proc.stdout and "load+retained peak MB" in proc.stdout
    assert "(median of pairs)" in proc.stdout
    rows = json.loads(out_json.read_text())
    assert [r["objects_requested"] for r in rows] == [10_000, 20_000]
    for r in rows:
        assert r["nodes"] > r["gc_tracked"] >= r["objects_requested"] * 0.9
        assert r["edges"] > r["nodes"]
        assert r["capture_vs_floor"] > 0 and r["capture_vs_floor_median"] > 0
        # The leak the child plants (1% more Records) is what diff and leaks find.
        assert r["diff_record_delta"] == r["planted"] and r["leaks_found_record"], r
        for key in ("snapshot_s", "save_s", "load_s", "retained_s", "report_s"):
            assert 0 < r[key] < 60, (key, r[key])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


AB = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "ab.py")


@pytest.mark.parametrize("what", ["capture", "snapshot", "quiet-snapshot"])
def test_ab_benchmark_smoke_run(tmp_path, what):
    # The installed extension against a copy of itself (a copy: the same file cannot be
    # initialised twice in one process).
    import shutil

    from refgraph import _refgraph

    base = tmp_path / os.path.basename(_refgraph.__file__)
    shutil.copy(_refgraph.__file__, base)
    proc = subprocess.run(
        [sys.executable, AB, "--base", str(base), "--objects", "2e4", "--rounds", "2"]
        + ["--what", what],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()[2:]}
    if what == "capture":
        assert len(rows["capture"]) == 5 and "floor" in rows
        assert "capture / floor (medians)" in proc.stdout
    elif what == "snapshot":
        for key in ("snapshot", "walk>", "references>", "sizes>", "names>"):
            assert len(rows[key]) == 5, (key, proc.stdout)
    else:
        assert len(rows["snapshot"]) == 5 and "names>" not in rows, proc.stdout
    # Medians and bests are times; the last column is new / base.
    key = "capture" if what == "capture" else "snapshot"
    assert all(float(v) > 0 for v in rows[key][:4])
