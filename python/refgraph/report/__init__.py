"""One-file HTML reports of a snapshot and of leak suspects.

The page is self-contained: its script and style are inline, its data is embedded as JSON (with
``<``, ``>`` and ``&`` escaped, so that no string from the heap can end the block), and a
Content-Security-Policy forbids loading anything from anywhere. Every string from the heap is
inserted as text by the script, never parsed as markup.

The data is a summary computed in Rust (:meth:`refgraph.Snapshot.to_html`): statistics by type,
the biggest part of the dominator tree and the retainers of the biggest objects, whatever the
size of the heap.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import json
import math
from importlib import resources

from .. import _refgraph
from .._files import write_private

__all__ = [
    "page",
    "snapshot_page",
    "suspects_page",
    "write_page",
    "leak_data",
    "leak_summary_html",
]


def _asset(name):
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def _hash(text):
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _csp(script, style):
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_hash(script)}",
            f"style-src {_hash(style)}",
            "img-src 'none'",
            "font-src 'none'",
            "connect-src 'none'",
            "media-src 'none'",
            "object-src 'none'",
            "frame-src 'none'",
            "worker-src 'none'",
            "manifest-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def _script_safe(json_text):
    """JSON text that cannot end a ``<script>`` block or be read as markup inside one."""
    return (
        json_text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _dumps(value):
    return _script_safe(
        json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    )


def _text(value):
    """A str for the page (None stays None)."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0


def _float(value):
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return f if math.isfinite(f) else 0.0


def _utf8(s):
    """``s`` with lone surrogates replaced, for the native renderer."""
    return s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def leak_data(report):
    """The suspects of a leak report (the dict of ``LeakReport.to_json()``) as the page shows
    them, and a native SVG drawing of each suspect's path: ``(data, drawings)``. Fields are
    read as that schema gives them; a missing field shows as empty."""
    if not isinstance(report, dict):
        raise TypeError(f"expected the dict of LeakReport.to_json(), not {type(report).__name__}")
    suspects = []
    drawings = []
    for s in report.get("suspects") or []:
        if not isinstance(s, dict):
            continue
        path = [
            {
                "type": _text(step.get("type", "")),
                "label": _text(step.get("label", "")),
                "edge": _text(step.get("edge")),
            }
            for step in (s.get("path") or [])
            if isinstance(step, dict)
        ]
        alloc = s.get("allocated_at")
        suspects.append(
            {
                "holder": _text(s.get("holder", "")),
                "holder_type": _text(s.get("holder_type", "")),
                "new_objects": _int(s.get("new_objects")),
                "bytes_per_run": _int(s.get("bytes_per_run")),
                "share": _float(s.get("share")),
                "types": [
                    {"type": _text(t.get("type", "")), "per_run": _float(t.get("per_run"))}
                    for t in (s.get("types") or [])
                    if isinstance(t, dict)
                ],
                "path": path,
                "allocated_at": None
                if alloc is None
                else [
                    {"file": _text(a.get("file", "")), "line": _int(a.get("line"))}
                    for a in alloc
                    if isinstance(a, dict)
                ],
            }
        )
        steps = [
            (_utf8(p["type"]), _utf8(p["label"]), None if p["edge"] is None else _utf8(p["edge"]))
            for p in path
        ]
        drawings.append(_refgraph.draw_chain(steps) if steps else None)
    data = {
        "runs": _int(report.get("runs")),
        "calls_per_run": _int(report.get("calls_per_run")),
        "suspects": suspects,
    }
    return data, drawings


def page(*, snapshot_json=None, suspects=None, source=None, title="refgraph report"):
    """The HTML text of a report: ``snapshot_json`` is the report data of a snapshot (JSON text
    from Rust), ``suspects`` the dict of ``LeakReport.to_json()``, ``source`` a dict of strings
    shown at the top (``snapshot``, ``base``)."""
    script = _asset("report.js")
    style = _asset("report.css")
    source = {k: _text(v) for k, v in (source or {}).items() if v is not None}
    source.setdefault("generated", datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
    if suspects is not None:
        suspects, drawings = leak_data(suspects)
    else:
        drawings = []
    parts = [
        '{"snapshot":',
        _script_safe(snapshot_json) if snapshot_json is not None else "null",
        ',"suspects":',
        _dumps(suspects),
        ',"drawings":',
        _dumps(drawings),
        ',"source":',
        _dumps(source),
        "}",
    ]
    data = "".join(parts)
    template = _asset("page.html")
    out = template.replace("@CSP@", html.escape(_csp(script, style), quote=True))
    out = out.replace("@TITLE@", html.escape(_utf8(title)))
    # The data goes last: nothing in it is a placeholder that a later replace could touch.
    out = out.replace("@STYLE@", style).replace("@SCRIPT@", script)
    head, tail = out.split("@DATA@")
    return head + data + tail


def snapshot_page(snap, base=None, suspects=None, source=None, progress=None):
    """The HTML text of the report of a :class:`refgraph.Snapshot`, compared with ``base`` if
    given, with the leak suspects of ``suspects`` (the dict of ``LeakReport.to_json()``)."""
    inner_base = base._s if base is not None else None
    data = snap._s.report_json(inner_base, progress)
    return page(snapshot_json=data, suspects=suspects, source=source)


def suspects_page(report, source=None):
    """The HTML text of a report of leak suspects alone (the dict of
    ``LeakReport.to_json()``)."""
    return page(suspects=report, source=source)


def write_page(path, text):
    """Write a report to ``path`` as every heap-content file is written: created 0600,
    atomically, never through a symlink at the target (:func:`refgraph._files.write_private`).
    Returns the size in bytes."""
    return write_private(path, text.encode("utf-8"))


def leak_summary_html(report):
    """A short HTML summary of leak suspects (the dict of ``LeakReport.to_json()``) for
    Jupyter's ``_repr_html_``: every string escaped, no script."""
    data, _ = leak_data(report)
    esc = html.escape
    suspects = data["suspects"]
    if not suspects:
        return "<div><b>refgraph leak report</b>: no suspect (nothing grew with the work).</div>"
    rows = "".join(
        f"<tr><td style='text-align:left'><code>{esc(_utf8(s['holder']))}</code></td>"
        f"<td style='text-align:left'>{esc(_utf8(s['holder_type']))}</td>"
        f"<td>{s['new_objects']:,}</td><td>{s['bytes_per_run']:,}</td>"
        f"<td>{100 * s['share']:.1f}%</td>"
        f"<td style='text-align:left'>"
        f"{esc(', '.join(_utf8(t['type']) for t in s['types'][:3]))}</td></tr>"
        for s in suspects
    )
    return (
        f"<div><b>refgraph leak report</b>: {len(suspects)} suspect"
        f"{'' if len(suspects) == 1 else 's'} over {data['runs']} runs of "
        f"{data['calls_per_run']} calls"
        "<table><thead><tr><th style='text-align:left'>holder</th>"
        "<th style='text-align:left'>type</th><th>new objects</th><th>bytes per run</th>"
        "<th>share</th><th style='text-align:left'>new types</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )
