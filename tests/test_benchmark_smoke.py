"""The benchmark runs (N = 10k, one run each) so that it never rots. It times nothing here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
    assert all(r["refgraph_s"] > 0 for r in rows.values())
    assert data["png"]["nodes"] > 50
