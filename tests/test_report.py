"""The HTML report as a file: self-contained, safe with hostile strings, written privately.

What the page does in a browser is tested in test_report_browser.py (real Chromium)."""

from __future__ import annotations

import base64
import hashlib
import html.parser
import json
import os
import re
import stat
import subprocess
import sys
import types

import pytest

import refgraph
from refgraph import report

HOSTILE = [
    "</script><script>window.__pwned=1</script>",
    "<img src=x onerror=window.__pwned=2>",
    "\"quoted\" 'single' `back`",
    "line\u2028sep\u2029para",
    "nul\x00byte",
    "lone\ud800surrogate",
    "<!--",
    "]]><svg onload=window.__pwned=3>",
]


class Session:
    def __init__(self, i):
        self.payload = [i] * 20


class Bus:
    def __init__(self):
        self._listeners = []


def leak_json(holder="__main__.bus._listeners"):
    """A hand-made dict of the schema of ``LeakReport.to_json()`` (issue 13)."""
    return {
        "runs": 5,
        "calls_per_run": 100,
        "suspects": [
            {
                "holder": holder,
                "holder_type": "list",
                "new_objects": 500,
                "bytes_per_run": 48_000,
                "share": 0.97,
                "types": [
                    {"type": "app.Session", "per_run": 100.0},
                    {"type": "method", "per_run": 100.0},
                ],
                "path": [
                    {"type": "module", "label": "__main__", "edge": "bus"},
                    {"type": "app.EventBus", "label": "", "edge": "_listeners"},
                    {"type": "list", "label": "3200 items", "edge": "[2917]"},
                    {"type": "method", "label": "Session.on_event", "edge": "__self__"},
                    {"type": "app.Session", "label": "", "edge": None},
                ],
                "allocated_at": [{"file": "app/session.py", "line": 42}],
            },
            {
                "holder": "app.cache",
                "holder_type": "dict",
                "new_objects": 10,
                "bytes_per_run": 800,
                "share": 0.02,
                "types": [{"type": "bytes", "per_run": 2.0}],
                "path": [
                    {"type": "module", "label": "app", "edge": "cache"},
                    {"type": "dict", "label": "10 items", "edge": None},
                    {"type": "bytes", "label": "", "edge": None},
                ],
                "allocated_at": None,
            },
        ],
    }


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.data = {}
        self._in = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag
        self.data.setdefault(tag, [])

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in:
            self.data[self._in].append(data)


def parse(page):
    p = _Tags()
    p.feed(page)
    return p


@pytest.fixture(scope="module")
def snaps():
    bus = Bus()
    old = refgraph.snapshot()
    bus._listeners.extend(Session(i) for i in range(300))
    new = refgraph.snapshot()
    yield old, new
    del bus


def test_page_is_self_contained(snaps, tmp_path):
    old, new = snaps
    out = tmp_path / "r.html"
    size = new.to_html(out, base=old, suspects=leak_json())
    page = out.read_text(encoding="utf-8")
    assert size == len(page.encode())
    p = parse(page)
    names = [t for t, _ in p.tags]
    # One inline script and one data block, one inline style; nothing refers to a URL.
    assert names.count("script") == 2 and names.count("style") == 1, names
    for tag, attrs in p.tags:
        assert "src" not in attrs and "href" not in attrs, (tag, attrs)
        assert tag not in ("link", "iframe", "img", "object", "embed", "base", "form"), tag
    # Outside the data (where strings from the heap may look like URLs, as text), the only
    # URL is the SVG namespace, which is a name, not something loaded.
    head, rest = page.split('id="refgraph-data">', 1)
    code = head + rest.split("</script>", 1)[1]
    for bad in ("@import", "fetch(", "XMLHttpRequest", "import(", "WebSocket", "sendBeacon"):
        assert bad not in code, bad
    urls = set(re.findall(r"[a-z]+://[^\s\"'<>)]*", code))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls


def test_csp_allows_exactly_the_inline_script_and_style(snaps):
    _, new = snaps
    page = report.snapshot_page(new)
    p = parse(page)
    csp = next(a["content"] for t, a in p.tags if a.get("http-equiv") == "Content-Security-Policy")
    script = next(s for t, s in zip(p.tags, _script_bodies(page), strict=False) if s)
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]

    def h(text):
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == h(script)
    assert directives["style-src"] == h(style)
    for d in ("img-src", "connect-src", "font-src", "base-uri", "form-action", "object-src"):
        assert directives[d] == "'none'", d
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def _script_bodies(page):
    """The bodies of executable inline scripts (not the JSON data block)."""
    return re.findall(r"<script>(.*?)</script>", page, re.S)


def test_script_inserts_text_only():
    with open(os.path.join(report.__path__[0], "report.js"), encoding="utf-8") as f:
        text = f.read()
    for bad in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "Function(",
    ):
        assert bad not in text, bad


def test_data_round_trips_and_matches_the_snapshot(snaps):
    old, new = snaps
    page = report.snapshot_page(new, old, suspects=leak_json())
    data = json.loads(page.split('id="refgraph-data">', 1)[1].split("</script>", 1)[0])
    s = data["snapshot"]
    info = new.info()
    assert s["summary"]["objects"] == info["objects"]
    assert s["summary"]["bytes"] == info["bytes"]
    assert s["base"]["objects"] == old.info()["objects"]
    cols = s["columns"]
    assert cols[:4] == ["name", "count", "shallow", "retained"] and len(cols) == 8
    rows = {r[0]: r for r in s["types"]}
    ts = {t.name: t for t in new.typestats()}
    sess = rows[f"{__name__}.Session"]
    assert sess[1:4] == [ts[sess[0]].count, ts[sess[0]].shallow, ts[sess[0]].retained]
    assert sess[1] - sess[4] == 300 and sess[6] == 300
    # Every node index in the data points at a node.
    n = len(s["nodes"])
    for node in s["nodes"]:
        for k in node.get("k", []):
            assert 0 <= k < n
        for ref in node.get("p", []):
            assert 0 <= ref[0] < n and len(ref) in (1, 2)
        assert node["pc"] >= len(node.get("p", []))
        assert int(node["a"], 16) > 0
    # The bus's list is described, held by the Bus's dict (or inline values), with its size.
    bus_lists = [x for x in s["nodes"] if s["types"][x["t"]][0] == "list" and x.get("n", 0) >= 300]
    assert bus_lists, "the listeners list is among the biggest objects"
    # Suspects are carried as the to_json schema says, with one drawing each.
    assert data["suspects"]["suspects"][0]["holder"] == "__main__.bus._listeners"
    assert len(data["drawings"]) == 2
    assert data["drawings"][0].startswith("<?xml") and "_listeners" in data["drawings"][0]


def test_suspects_with_missing_fields_still_render():
    partial = {"suspects": [{"holder": "x"}, "not a dict", {"path": [{"type": "list"}]}]}
    data, drawings = report.leak_data(partial)
    assert data["runs"] == 0 and len(data["suspects"]) == 2
    assert data["suspects"][0]["path"] == [] and drawings[0] is None
    assert data["suspects"][1]["path"] == [{"type": "list", "label": "", "edge": None}]
    with pytest.raises(TypeError):
        report.leak_data(["not", "a", "dict"])
    page = report.suspects_page(partial)
    assert '"snapshot":null' in page


def make_hostile_snapshot():
    """A snapshot whose class names, module names, dict keys and str values are hostile. Taken
    with ``strings="all"``: by default such strings are not names and their text is not kept,
    and the point here is that any text that is kept stays text."""
    mod = types.ModuleType("hostile_mod")
    sys.modules["hostile_mod"] = mod
    keep = []
    try:
        for i, text in enumerate(HOSTILE):
            # A class's __name__ cannot hold NUL or a lone surrogate; its __module__ can.
            cls = type(text.replace("\x00", "").replace("\ud800", "") or "X", (), {})
            cls.__module__ = text
            obj = cls()
            obj.__dict__[text] = text * 2  # an attribute named by a hostile dict key
            # 1 MiB retained each: among the biggest objects the report describes whatever
            # else the test process holds (a full suite run leaves a large heap).
            obj.blob = bytearray(1 << 20)
            setattr(mod, text, obj)  # a module global named by a hostile key
            keep.append({text: [obj, text + str(i)]})
        return refgraph.snapshot(strings="all")
    finally:
        del sys.modules["hostile_mod"], keep


@pytest.fixture
def hostile_snapshot():
    return make_hostile_snapshot()


def hostile_leak_json():
    d = leak_json(holder=HOSTILE[0])
    s = d["suspects"][0]
    s["holder_type"] = HOSTILE[1]
    s["types"].append({"type": HOSTILE[5], "per_run": 1.0})
    s["path"][1]["label"] = HOSTILE[2]
    s["path"][2]["edge"] = HOSTILE[3]
    s["path"][3]["type"] = HOSTILE[4]
    s["path"][4]["label"] = HOSTILE[0]
    s["allocated_at"] = [{"file": HOSTILE[7], "line": 1}]
    return d


def test_hostile_strings_stay_inside_the_data_block(hostile_snapshot):
    page = report.snapshot_page(hostile_snapshot, suspects=hostile_leak_json())
    p = parse(page)
    assert [t for t, _ in p.tags].count("script") == 2
    assert "img" not in [t for t, _ in p.tags] and "svg" not in [t for t, _ in p.tags]
    data_text = page.split('id="refgraph-data">', 1)[1].split("</script>", 1)[0]
    for raw in ("<", ">", "&", "\u2028", "\u2029", "\x00"):
        assert raw not in data_text, repr(raw)
    data = json.loads(data_text)
    text = json.dumps(data, ensure_ascii=False)
    # The hostile strings are in the data as text (the class names, the module global and
    # attribute names, the string values, the suspects).
    assert HOSTILE[0] in text and HOSTILE[1] in text
    names = [r[0] for r in data["snapshot"]["types"]]
    assert any(n.startswith("nul\x00byte.") for n in names), "NUL kept in a module name"
    assert any(re.match("lone\ufffd+surrogate[.]", n) for n in names), "lone surrogate replaced"
    assert any(HOSTILE[0] in (x.get("g") or "") for x in data["snapshot"]["nodes"]), "globals"
    assert data["suspects"]["suspects"][0]["holder"] == HOSTILE[0]
    page.encode("utf-8")  # no lone surrogate reaches the file


def test_written_private_and_atomically(snaps, tmp_path):
    _, new = snaps
    out = tmp_path / "r.html"
    new.to_html(out)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["r.html"], "no temporary file left"
    # A symlink at the target is replaced, never written through.
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "link.html"
    link.symlink_to(victim)
    new.to_html(link)
    assert victim.read_text() == "keep me"
    assert not link.is_symlink() and link.stat().st_size > 1000
    with pytest.raises(TypeError):
        new.to_html(tmp_path / "x.html", base="not a snapshot")
    with pytest.raises(OSError):
        new.to_html(tmp_path / "missing-dir" / "x.html")


def test_repr_html_escapes(hostile_snapshot):
    text = hostile_snapshot._repr_html_()
    assert "<script" not in text and "<img" not in text
    assert "objects" in text and text.startswith("<div>")


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "refgraph", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_cli_report(snaps, tmp_path):
    old, new = snaps
    old.save(tmp_path / "before.rgsnap")
    new.save(tmp_path / "after.rgsnap")
    r = _cli("report", "after.rgsnap", "--base", "before.rgsnap", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("wrote after.html (")
    page = (tmp_path / "after.html").read_text()
    assert "after.rgsnap" in page and "before.rgsnap" in page and '"new_retained"' in page
    r = _cli("report", "after.rgsnap", "-o", "x.html", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "x.html").exists()
    r = _cli("report", "nope.rgsnap", cwd=tmp_path)
    assert r.returncode == 1 and "nope.rgsnap: no such file" in r.stderr
    (tmp_path / "bad.rgsnap").write_bytes(b"not a snapshot")
    r = _cli("report", "bad.rgsnap", cwd=tmp_path)
    assert r.returncode == 1 and "bad.rgsnap" in r.stderr and "Traceback" not in r.stderr
    r = _cli("report", "after.rgsnap", "-o", "no/such/dir.html", cwd=tmp_path)
    assert r.returncode == 1 and "no/such/dir.html" in r.stderr


def test_report_stays_small_with_many_objects(tmp_path):
    # 200,000 extra objects in one list: the report describes the list, not its items.
    big = [Session(i) for i in range(200_000)]
    snap = refgraph.snapshot()
    page = report.snapshot_page(snap)
    assert len(page.encode()) < 3_000_000, len(page)
    data = json.loads(page.split('id="refgraph-data">', 1)[1].split("</script>", 1)[0])
    assert len(data["snapshot"]["nodes"]) <= 12_000 + 25 + 8
    assert data["snapshot"]["summary"]["objects"] > 600_000
    del big


def test_leak_summary_html_escapes():
    text = report.leak_summary_html(hostile_leak_json())
    assert "<script" not in text and "<img" not in text and "<svg" not in text
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;" in text
    assert "97.0%" in text and "2 suspects over 5 runs of 100 calls" in text
    text.encode("utf-8")  # lone surrogates replaced
    assert "no suspect" in report.leak_summary_html({"runs": 5, "suspects": []})
