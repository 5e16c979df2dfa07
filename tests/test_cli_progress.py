"""Progress on a terminal: every slow step of a subcommand shows it on stderr when stderr is a
terminal (a real pseudo-terminal here), and nothing when it is a pipe or with ``--json``."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

import refgraph


class Session:
    def __init__(self, name):
        self.name = name
        self.items = [{"n": i} for i in range(50)]


@pytest.fixture(scope="module")
def snaps(tmp_path_factory):
    d = tmp_path_factory.mktemp("progress")
    keep = [Session(i) for i in range(200)]
    old = d / "old.rgsnap"
    refgraph.snapshot().save(old)
    keep += [Session(i) for i in range(300)]
    new = d / "new.rgsnap"
    refgraph.snapshot().save(new)
    del keep
    return d, old, new


def commands(d, old, new):
    return {
        "info": ["info", new],
        "top": ["top", new],
        "diff": ["diff", old, new],
        "paths": ["paths", new, "Session"],
        "graph": ["graph", new, "Session", "-o", d / "g.svg"],
        "leaks": ["leaks", old, new],
        "report": ["report", new, "-o", d / "r.html"],
    }


# What each command's progress says at least (the load, then its slow step).
EXPECTED = {
    "info": ["loading"],
    "top": ["loading", "retained sizes"],
    "diff": ["loading", "retained sizes"],
    "paths": ["loading", "finding retention paths"],
    "graph": ["loading", "drawing"],
    "leaks": ["loading", "finding leak suspects"],
    "report": ["loading", "retained sizes"],
}


def run_with_tty_stderr(args):
    """Run the CLI with stderr on a pseudo-terminal and stdout on a pipe: (stdout, stderr)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(
            [sys.executable, "-m", "refgraph", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
        )
        os.close(slave)
        slave = None
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            err += chunk
        out = p.stdout.read()
        p.stdout.close()
        assert p.wait(timeout=120) == 0, (out, err)
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    return out.decode(), err.decode()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_progress_on_a_terminal(snaps, name):
    args = commands(*snaps)[name]
    out, err = run_with_tty_stderr(args)
    for text in EXPECTED[name]:
        assert text in err, (name, err)
    # The line is cleared at the end: nothing of it is left before the output.
    assert err.endswith("\r\x1b[K"), err[-40:]
    assert "loading" not in out and "\r" not in out


@pytest.mark.parametrize("name", list(EXPECTED))
def test_no_progress_on_a_pipe(snaps, name):
    args = commands(*snaps)[name]
    r = subprocess.run(
        [sys.executable, "-m", "refgraph", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout


@pytest.mark.parametrize("name", [n for n in EXPECTED if n != "report"])
def test_no_progress_with_json_on_a_terminal(snaps, name):
    import json

    args = commands(*snaps)[name]
    out, err = run_with_tty_stderr([*args, "--json"])
    assert err == ""
    json.loads(out)
