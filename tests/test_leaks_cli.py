"""``refgraph leaks`` over snapshots of a running program, and leaks_between."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import refgraph

EVENT_BUS_APP = """
import sys
import refgraph

class Session:
    def __init__(self, user):
        self.user = user

    def on_event(self, event):
        pass

class EventBus:
    def __init__(self):
        self._listeners = []

    def subscribe(self, listener):
        self._listeners.append(listener)

bus = EventBus()
last_request = None

def make_tracker():
    current = "none yet"
    def track(i):
        nonlocal current
        current = f"request {i}"  # a closure's variable rebound: a cell holding a new str
    return track

track = make_tracker()

def handle_request(i):
    global last_request
    s = Session(f"user{i}")
    bus.subscribe(s.on_event)
    last_request = s
    track(i)
    return sum(range(i % 50))

i = 0
for path in sys.argv[1:]:
    for _ in range(800):
        i += 1
        handle_request(i)
    refgraph.snapshot().save(path)
"""

ONE_OFF_APP = """
import sys
import refgraph

class Config:
    pass

cache = {}

def handle_request(i):
    return i * 2

i = 0
for k, path in enumerate(sys.argv[1:]):
    if k == 1:
        cache.update((n, Config()) for n in range(500))  # loaded once, before snapshot 1
    for _ in range(100):
        i += 1
        handle_request(i)
    refgraph.snapshot().save(path)
"""


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "refgraph", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _snapshots(tmp_path_factory, program, n, name):
    d = tmp_path_factory.mktemp(name)
    prog = d / "app.py"
    prog.write_text(program)
    paths = [d / f"s{k}.rgsnap" for k in range(n)]
    subprocess.run([sys.executable, str(prog), *map(str, paths)], check=True, timeout=120)
    return paths


@pytest.fixture(scope="module")
def bus_snapshots(tmp_path_factory):
    return _snapshots(tmp_path_factory, EVENT_BUS_APP, 3, "bus")


def test_leaks_names_the_listener_list(bus_snapshots):
    r = _cli("leaks", *bus_snapshots)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "3 snapshots: 1 leak suspect" in r.stdout, r.stdout
    first = next(line for line in lines if line.startswith("1. "))
    assert first.startswith("1. __main__.bus._listeners  (list)"), r.stdout
    assert "800 __main__.Session" in r.stdout
    assert "length 800 -> 2,400" in r.stdout


def test_paths_shows_the_listeners(bus_snapshots):
    r = _cli("paths", bus_snapshots[-1], "Session")
    assert r.returncode == 0, r.stderr
    assert "_listeners" in r.stdout, r.stdout


def test_leaks_html(bus_snapshots, tmp_path):
    page = tmp_path / "leaks.html"
    r = _cli("leaks", *bus_snapshots, "--html", page)
    assert r.returncode == 0, r.stderr
    assert "1. __main__.bus._listeners" in r.stdout
    assert oct(page.stat().st_mode & 0o777) == "0o600"
    text = page.read_text()
    # The suspect and its holder are in the page's data, and so is the snapshot's summary.
    marker = '<script type="application/json" id="refgraph-data">'
    data = json.loads(text.split(marker, 1)[1].split("</script>", 1)[0])
    assert data["suspects"]["suspects"][0]["holder"] == "__main__.bus._listeners"
    assert data["snapshot"] is not None


def test_leaks_json(bus_snapshots):
    r = _cli("leaks", *bus_snapshots, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["runs"] == 2 and d["calls_per_run"] == 1
    s = d["suspects"][0]
    assert s["holder"] == "__main__.bus._listeners"
    assert s["holder_type"] == "list"
    assert s["types"][0] == {"type": "__main__.Session", "per_run": 800.0}
    assert s["allocated_at"] is None
    assert s["path"][-1]["type"] == "__main__.Session"
    assert [p["edge"] for p in s["path"][-3:-1]][-1] == ".__self__"


def test_two_snapshots_name_only_the_leak(bus_snapshots):
    # One round: everything new looks like growth, but a rebound variable (a global, a
    # closure's cell) is not a suspect.
    r = _cli("leaks", bus_snapshots[0], bus_snapshots[-1])
    assert r.returncode == 0, r.stderr
    assert "2 snapshots: 1 leak suspect" in r.stdout, r.stdout
    assert "1. __main__.bus._listeners  (list)" in r.stdout, r.stdout


def test_leaks_between_two_snapshots(bus_snapshots):
    a, _, c = (refgraph.load(p) for p in bus_snapshots)
    report = refgraph.leaks_between(a, c)
    assert report.suspects[0].holder == "__main__.bus._listeners"
    assert report.suspects[0].new_objects >= 1600


def test_a_one_off_is_not_steady(tmp_path_factory):
    paths = _snapshots(tmp_path_factory, ONE_OFF_APP, 4, "oneoff")
    r = _cli("leaks", *paths)
    assert r.returncode == 0, r.stderr
    assert "no leak suspect" in r.stdout, r.stdout
    # With two snapshots around the load, growth is all there is to see.
    r = _cli("leaks", paths[0], paths[1])
    assert "__main__.cache" in r.stdout, r.stdout


def test_leaks_errors(bus_snapshots, tmp_path):
    bad = tmp_path / "bad.rgsnap"
    bad.write_bytes(bus_snapshots[0].read_bytes()[:1000])
    r = _cli("leaks", bus_snapshots[0], bad)
    assert r.returncode == 1 and "truncated" in r.stderr
    assert r.stderr.count("\n") == 1
    assert _cli("leaks", bus_snapshots[0]).returncode == 2
    with pytest.raises(ValueError):
        refgraph.leaks_between(refgraph.load(bus_snapshots[0]))
    with pytest.raises(TypeError):
        refgraph.leaks_between(refgraph.load(bus_snapshots[0]), "x")
