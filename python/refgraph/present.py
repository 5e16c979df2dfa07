"""Presenting a graph: DOT text to a file object or a ``.dot`` file, images drawn natively
(``.png``, ``.svg``) or by Graphviz (any other format, or when asked), inline display in
Jupyter, and the messages objgraph prints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from ._files import write_private

#: File formats refgraph writes without Graphviz: images it draws itself, and DOT text.
OWN_FORMATS = (".svg", ".png", ".dot")
#: The images among them.
NATIVE_FORMATS = (".svg", ".png")
#: Environment variable choosing the default renderer: ``native`` or ``graphviz``.
RENDERER_ENV = "REFGRAPH_RENDERER"
_RENDERERS = ("native", "graphviz")


def _renderer(renderer):
    if renderer is None:
        renderer = os.environ.get(RENDERER_ENV) or "native"
    renderer = str(renderer).lower()
    if renderer not in _RENDERERS:
        raise ValueError(f"renderer must be 'native' or 'graphviz', not {renderer!r}")
    return renderer


def check_target(filename, renderer):
    """Reject bad arguments before any work is done."""
    _renderer(renderer)
    if filename is not None and not isinstance(filename, (str, os.PathLike)):
        raise TypeError(f"filename must be a path, not {type(filename).__name__}")


def program_in_path(program):
    return shutil.which(program) is not None


def is_interactive():
    """True inside Jupyter or another graphical IPython shell (not the terminal one)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and "Terminal" not in type(shell).__name__


def native_available(view):
    return hasattr(view, "png") and hasattr(view, "svg")


class Graph:
    """A drawn graph for inline display in Jupyter (``_repr_svg_``), also usable as text."""

    def __init__(self, view):
        self._view = view
        self.source = view.dot()

    def _repr_svg_(self):
        return self._view.svg()

    def __str__(self):
        return self.source

    def __repr__(self):
        return f"<refgraph.Graph with {len(self._view)} nodes>"

    def save(self, filename):
        """Write the graph as ``.png``, ``.svg`` or ``.dot``."""
        write_native(self._view, os.fspath(filename))


def own_format(filename):
    """The extension of ``filename`` (``'.svg'``, ``'.png'`` or ``'.dot'``) when refgraph writes
    that format itself; ``ValueError`` naming the formats otherwise."""
    ext = os.path.splitext(os.fspath(filename))[1].lower()
    if ext not in OWN_FORMATS:
        names = ", ".join(OWN_FORMATS[:-1]) + " or " + OWN_FORMATS[-1]
        raise ValueError(
            f"{os.fspath(filename)}: unknown file extension {ext or '(none)'};"
            f" refgraph writes {names} files"
        )
    return ext


def write_native(view, filename):
    """Draw ``view`` natively into ``filename`` (.png, .svg or .dot), as every file that holds
    heap content is written: 0600, atomically, never through a symlink."""
    ext = own_format(filename)
    if ext == ".png":
        data = view.png()
    elif ext == ".svg":
        data = view.svg().encode("utf-8")
    else:
        data = view.dot().encode("utf-8")
    write_private(filename, data)


def present(view, filename, output, renderer):
    """Write or show a graph as objgraph does, drawing natively where we can."""
    text = view.dot()
    nodes = len(view)
    if output:
        output.write(text)
        return None
    if filename is not None:
        filename = os.fspath(filename)
    if filename and filename.endswith(".dot"):
        with open(filename, "w", encoding="utf-8") as f:
            f.write(text)
        print("Graph written to %s (%d nodes)" % (filename, nodes))
        return None
    if not filename and is_interactive() and native_available(view):
        return Graph(view)
    fd, dot_filename = tempfile.mkstemp(prefix="objgraph-", suffix=".dot", text=True)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    print("Graph written to %s (%d nodes)" % (dot_filename, nodes))
    _present_image(view, dot_filename, filename, _renderer(renderer))
    return None


def _present_image(view, dot_filename, filename, renderer):
    if not filename and program_in_path("xdot"):
        print("Spawning graph viewer (xdot)")
        subprocess.Popen(["xdot", dot_filename], close_fds=True)
        return
    if not filename:
        print("Graph viewer (xdot) not found, generating a png instead")
        filename = dot_filename[:-4] + ".png"
    ext = os.path.splitext(filename)[1].lower()
    if renderer == "native" and ext in NATIVE_FORMATS and native_available(view):
        write_native(view, filename)
        print("Image generated as %s" % filename)
        return
    if program_in_path("dot"):
        cmd = ["dot", "-T" + ext[1:], "-o" + filename, dot_filename]
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0:
            print(
                'dot failed (exit code %d) while executing "%s"' % (proc.returncode, " ".join(cmd))
            )
        else:
            print("Image generated as %s" % filename)
        return
    if ext in NATIVE_FORMATS and native_available(view):
        # Asked for Graphviz, which is missing: still draw the picture.
        write_native(view, filename)
        print("Image renderer (dot) not found, drew %s natively" % filename)
        return
    print(
        "Image renderer (dot) not found, not doing anything else"
        " (refgraph draws .png and .svg itself; %s needs Graphviz)" % (ext or "this format")
    )
