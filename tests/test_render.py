"""Pictures: .png and .svg drawn natively (no Graphviz), Graphviz only when asked or needed."""

from __future__ import annotations

import os
import struct
import sys
import types
import xml.etree.ElementTree as ET

import pytest

import refgraph

import heap_fixture as hf


@pytest.fixture
def no_graphviz(monkeypatch, tmp_path):
    """A PATH with no `dot` and no `xdot`."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("REFGRAPH_RENDERER", raising=False)
    return empty


@pytest.fixture
def fake_dot(monkeypatch, tmp_path):
    """A `dot` that records its arguments and writes a marker file."""
    bindir = tmp_path / "fake-bin"
    bindir.mkdir()
    log = tmp_path / "dot-calls.txt"
    script = bindir / "dot"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{log}"\n'
        'for a in "$@"; do case "$a" in -o*) printf graphviz > "${a#-o}";; esac; done\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("REFGRAPH_RENDERER", raising=False)
    return log


def png_size(path):
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_png_without_graphviz(no_graphviz, tmp_path, capsys):
    target = tmp_path / "refs.png"
    refgraph.show_refs([hf.root], filename=str(target), max_depth=2)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Graph written to ") and out[0].endswith(" nodes)")
    assert out[1] == "Image generated as %s" % target
    w, h = png_size(target)
    assert w > 100 and h > 50


def test_png_grows_with_the_graph(no_graphviz, tmp_path):
    small, big = tmp_path / "small.png", tmp_path / "big.png"
    refgraph.show_refs([hf.child], filename=str(small), max_depth=1, too_many=2)
    refgraph.show_refs([hf.registry], filename=str(big), max_depth=3, too_many=10)
    (w1, h1), (w2, h2) = png_size(small), png_size(big)
    assert w2 * h2 > w1 * h1


def test_svg_without_graphviz(no_graphviz, tmp_path, capsys):
    target = tmp_path / "backrefs.svg"
    refgraph.show_backrefs(
        [hf.child], filename=str(target), max_depth=2, extra_info=lambda x: "<&>"
    )
    assert capsys.readouterr().out.endswith("Image generated as %s\n" % target)
    root = ET.parse(target).getroot()
    assert root.tag.endswith("svg")
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "<&>" in texts
    assert any(t.startswith("Node") for t in texts)


def test_other_formats_need_graphviz(no_graphviz, tmp_path, capsys):
    target = tmp_path / "refs.pdf"
    refgraph.show_refs([hf.root], filename=str(target), max_depth=1)
    out = capsys.readouterr().out
    assert "Image renderer (dot) not found, not doing anything else" in out
    assert ".pdf needs Graphviz" in out
    assert not target.exists()


def test_other_formats_go_to_graphviz(fake_dot, tmp_path, capsys):
    target = tmp_path / "refs.pdf"
    refgraph.show_refs([hf.root], filename=str(target), max_depth=1)
    assert "Image generated as %s" % target in capsys.readouterr().out
    assert target.read_text() == "graphviz"
    assert "-Tpdf" in fake_dot.read_text()


def test_png_is_native_even_with_graphviz(fake_dot, tmp_path):
    target = tmp_path / "refs.png"
    refgraph.show_refs([hf.root], filename=str(target), max_depth=1)
    png_size(target)
    assert not fake_dot.exists()


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_graphviz_on_request(fake_dot, tmp_path, monkeypatch, how):
    target = tmp_path / "refs.png"
    if how == "argument":
        refgraph.show_refs([hf.root], filename=str(target), max_depth=1, renderer="graphviz")
    else:
        monkeypatch.setenv("REFGRAPH_RENDERER", "graphviz")
        refgraph.show_refs([hf.root], filename=str(target), max_depth=1)
    assert target.read_text() == "graphviz"
    assert "-Tpng" in fake_dot.read_text()


def test_graphviz_requested_but_missing(no_graphviz, tmp_path, capsys):
    target = tmp_path / "refs.png"
    refgraph.show_refs([hf.root], filename=str(target), max_depth=1, renderer="graphviz")
    assert "Image renderer (dot) not found, drew %s natively" % target in capsys.readouterr().out
    png_size(target)


def test_no_filename_no_viewer_writes_a_png(no_graphviz, capsys):
    refgraph.show_backrefs([hf.child], max_depth=1)
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "Graph viewer (xdot) not found, generating a png instead"
    assert out[2].startswith("Image generated as ") and out[2].endswith(".png")
    path = out[2][len("Image generated as ") :]
    png_size(path)
    os.unlink(path)
    os.unlink(path[:-4] + ".dot")


def test_inline_display_in_jupyter(monkeypatch, no_graphviz, capsys):
    class ZMQInteractiveShell:
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()
    monkeypatch.setitem(sys.modules, "IPython", fake)
    graph = refgraph.show_refs([hf.root], max_depth=1)
    assert capsys.readouterr().out == ""
    svg = graph._repr_svg_()
    ET.fromstring(svg)
    assert str(graph).startswith("digraph ObjectGraph {")

    # The terminal IPython shell is not inline.
    class TerminalInteractiveShell:
        pass

    fake.get_ipython = lambda: TerminalInteractiveShell()
    assert refgraph.show_refs([hf.root], max_depth=1, output=__import__("io").StringIO()) is None


def test_seed_example_graph_references(no_graphviz, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "graph_references.py")
    code = compile(open(path).read(), path, "exec")
    exec(code, {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert out.count("Image generated as") == 2
    assert png_size(tmp_path / "show_refs.png")[0] > 200
    assert png_size(tmp_path / "show_backrefs.png")[0] > 200


def test_with_del_marker_is_drawn(no_graphviz, tmp_path):
    target = tmp_path / "del.svg"
    refgraph.show_refs([hf.finalized], filename=str(target), max_depth=1)
    svg = target.read_text()
    assert 'class="del"' in svg and ">__del__<" in svg


class _Link:
    pass


def test_png_too_large_says_what_to_do(no_graphviz, tmp_path):
    head = cur = _Link()
    for _ in range(600):
        cur.next = _Link()
        cur = cur.next
    only_links = lambda x: isinstance(x, (_Link, dict))  # noqa: E731
    with pytest.raises(RuntimeError, match=r"too large for a PNG.*\.svg"):
        refgraph.show_refs(
            [head], filename=str(tmp_path / "chain.png"), max_depth=1300, filter=only_links
        )
    svg = tmp_path / "chain.svg"
    refgraph.show_refs([head], filename=str(svg), max_depth=1300, filter=only_links)
    root = ET.parse(svg).getroot()
    nodes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
    assert len(nodes) > 600
    title = nodes[0].find("{http://www.w3.org/2000/svg}title").text
    assert "_Link" in title and "at 0x%x" % id(head) in title
