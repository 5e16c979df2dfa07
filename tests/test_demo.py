"""`refgraph demo`, the README's first command: it finds the leak and draws it without Graphviz."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_names_the_leak_and_draws_it(tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))  # no `dot` on the PATH
    r = subprocess.run(
        [sys.executable, "-m", "refgraph", "demo", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    # The one-call way names the holder and the type that piles up, first.
    first = next(line for line in out.splitlines() if line.startswith("1. refgraph.demo"))
    assert first.startswith("1. refgraph.demo._session_cache  (dict)"), out
    assert "refgraph.demo.Session" in out
    # The objgraph way still shows the growth and the chain from the module.
    assert "Session" in out.split("show_growth")[1]
    assert "--[_session_cache]-->" in out
    for name in ("refgraph-demo.png", "refgraph-demo-chain.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), name
    page = tmp_path / "refgraph-demo.html"
    assert page.stat().st_mode & 0o777 == 0o600
    assert "_session_cache" in page.read_text()
