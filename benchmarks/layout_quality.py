"""Layout quality: refgraph's native drawing against Graphviz's dot, on the graphs refgraph draws.

    python benchmarks/layout_quality.py [--only NAME,...] [--json out.json] [--repeat 3]
                                        [--pictures DIR]

The corpus (benchmarks/layout_corpus.py) is real ``show_refs``/``show_backrefs``/``show_chain``
calls. For each graph, the native geometry is read back from refgraph's own SVG
(``View.svg()``) and dot's from ``dot -Tjson`` on objgraph's DOT text (``View.dot()``); the same
code measures both (all lengths in points, 1/72 inch):

- **crossings**: points where two edges cross (not counting where edges meet at a node);
- **overlap**: length of edge running within 1.5 pt of another edge, in the same direction
  (within 15 degrees), outside the nodes; shown as a share of the total edge length;
- **through**: edges that pass through a node other than their two ends;
- **length**: total edge length;
- **bends**: total turning of all edges, in right angles (a 90 degree corner counts 1, a smooth
  S-curve that turns 30 degrees each way counts 0.67);
- **area**: the drawing's bounding box (nodes and edges, no margin), in square points;
- **time**: drawing a PNG, median of ``--repeat`` runs: ``View.png()`` (layout, raster, encode)
  against ``dot -Tpng`` on the same DOT file.

Graphviz must be installed (``apt-get install graphviz``); the tests never need it.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import layout_corpus  # noqa: E402

STEP = 3.0  # resampling step of edge polylines, in points
CELL = 24.0  # grid cell for neighbour queries


# --------------------------------------------------------------------------- geometry


def cubic(p0, p1, p2, p3, t):
    u = 1 - t
    a, b, c, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
    return (
        a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0],
        a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1],
    )


def bezier_points(ctrl, per=12):
    """A piecewise cubic (points 3k+1) sampled as a polyline."""
    out = [ctrl[0]]
    for i in range(0, len(ctrl) - 3, 3):
        for k in range(1, per + 1):
            out.append(cubic(ctrl[i], ctrl[i + 1], ctrl[i + 2], ctrl[i + 3], k / per))
    return out


def resample(poly, step=STEP):
    """The polyline cut into pieces of about ``step`` points."""
    out = [poly[0]]
    for a, b in zip(poly, poly[1:], strict=False):
        d = math.dist(a, b)
        n = max(1, math.ceil(d / step))
        for k in range(1, n + 1):
            t = k / n
            out.append((a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t))
    return out


class Drawing:
    """Nodes as ``(x0, y0, x1, y1, is_ellipse)``, edges as polylines (source to arrowhead)."""

    def __init__(self):
        self.nodes = []
        self.edges = []


def parse_svg_path(d):
    toks = d.replace(",", " ").replace("M", " M ").replace("L", " L ").replace("C", " C ").split()
    pts, i, cmd = [], 0, None
    poly = []
    while i < len(toks):
        t = toks[i]
        if t in ("M", "L", "C"):
            cmd = t
            i += 1
            continue
        if cmd == "C":
            c = [(float(toks[i + 2 * k]), float(toks[i + 2 * k + 1])) for k in range(3)]
            seg = bezier_points([poly[-1], *c])
            poly.extend(seg[1:])
            i += 6
        else:
            p = (float(toks[i]), float(toks[i + 1]))
            poly.append(p)
            i += 2
    del pts
    return poly


def native_drawing(svg):
    ns = "{http://www.w3.org/2000/svg}"
    root = ET.fromstring(svg)
    g = Drawing()
    for el in root.iter():
        tag = el.tag.replace(ns, "")
        if tag == "rect" and not el.get("width", "").endswith("%"):
            x, y = float(el.get("x")), float(el.get("y"))
            w, h = float(el.get("width")), float(el.get("height"))
            g.nodes.append((x, y, x + w, y + h, False))
        elif tag == "ellipse" and el.get("fill") != "none":
            cx, cy = float(el.get("cx")), float(el.get("cy"))
            rx, ry = float(el.get("rx")), float(el.get("ry"))
            g.nodes.append((cx - rx, cy - ry, cx + rx, cy + ry, True))
        elif tag == "path":
            g.edges.append(parse_svg_path(el.get("d")))
    return g


def dot_drawing(js):
    data = json.loads(js)
    top = float(data["bb"].split(",")[3])
    g = Drawing()
    for o in data.get("objects", []):
        if "pos" not in o:
            continue
        x, y = (float(v) for v in o["pos"].split(","))
        w, h = float(o["width"]) * 72, float(o["height"]) * 72
        y = top - y
        ell = o.get("shape") not in ("box", "rect", "rectangle", "plaintext", "none")
        g.nodes.append((x - w / 2, y - h / 2, x + w / 2, y + h / 2, ell))
    for e in data.get("edges", []):
        ctrl = []
        for part in e["pos"].split():
            if part.startswith(("e,", "s,")):
                continue
            x, y = (float(v) for v in part.split(","))
            ctrl.append((x, top - y))
        g.edges.append(bezier_points(ctrl))
    return g


# --------------------------------------------------------------------------- metrics


def inside(node, p, margin):
    x0, y0, x1, y1, ell = node
    if ell:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        rx, ry = (x1 - x0) / 2 - margin, (y1 - y0) / 2 - margin
        if rx <= 0 or ry <= 0:
            return False
        return ((p[0] - cx) / rx) ** 2 + ((p[1] - cy) / ry) ** 2 < 1
    return x0 + margin < p[0] < x1 - margin and y0 + margin < p[1] < y1 - margin


def rect_dist(node, p):
    x0, y0, x1, y1, _ = node
    dx = max(x0 - p[0], 0, p[0] - x1)
    dy = max(y0 - p[1], 0, p[1] - y1)
    return math.hypot(dx, dy)


class Grid:
    def __init__(self):
        self.cells = {}

    def keys(self, a, b):
        x0, x1 = sorted((a[0], b[0]))
        y0, y1 = sorted((a[1], b[1]))
        for i in range(int(x0 // CELL), int(x1 // CELL) + 1):
            for j in range(int(y0 // CELL), int(y1 // CELL) + 1):
                yield (i, j)

    def add(self, a, b, item):
        for k in self.keys(a, b):
            self.cells.setdefault(k, []).append(item)

    def near(self, a, b):
        seen = set()
        for k in self.keys(a, b):
            for item in self.cells.get(k, ()):
                if item not in seen:
                    seen.add(item)
                    yield item


def cross_point(a, b, c, d):
    """The point where segments ab and cd properly cross, or None."""
    r = (b[0] - a[0], b[1] - a[1])
    s = (d[0] - c[0], d[1] - c[1])
    den = r[0] * s[1] - r[1] * s[0]
    if abs(den) < 1e-9:
        return None
    qp = (c[0] - a[0], c[1] - a[1])
    t = (qp[0] * s[1] - qp[1] * s[0]) / den
    u = (qp[0] * r[1] - qp[1] * r[0]) / den
    if 0 <= t < 1 and 0 <= u < 1:
        return (a[0] + t * r[0], a[1] + t * r[1])
    return None


def seg_point_dist(a, b, p):
    dx, dy = b[0] - a[0], b[1] - a[1]
    ll = dx * dx + dy * dy
    t = 0 if ll == 0 else max(0, min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / ll))
    return math.hypot(a[0] + t * dx - p[0], a[1] + t * dy - p[1])


def measure(g):
    edges = [resample(e) for e in g.edges if len(e) >= 2]
    nodes = g.nodes
    # Each edge's two ends: the nodes nearest its first and last points.
    ends = []
    for e in edges:
        a = min(range(len(nodes)), key=lambda k: rect_dist(nodes[k], e[0])) if nodes else -1
        b = min(range(len(nodes)), key=lambda k: rect_dist(nodes[k], e[-1])) if nodes else -1
        ends.append((a, b))
    node_grid = Grid()
    for k, n in enumerate(nodes):
        node_grid.add((n[0], n[1]), (n[2], n[3]), k)
    seg_grid = Grid()
    segs = []
    for ei, e in enumerate(edges):
        for a, b in zip(e, e[1:], strict=False):
            si = len(segs)
            segs.append((ei, a, b))
            seg_grid.add(a, b, si)

    def in_any_node(p, margin, only=None):
        for k in node_grid.near(p, p):
            if only is not None and k not in only:
                continue
            if inside(nodes[k], p, margin):
                return True
        return False

    length = sum(math.dist(a, b) for _, a, b in segs)
    # Crossings: proper intersections of segments of different edges, away from the nodes
    # at the ends of either edge; hits closer than 2 pt merged.
    hits = {}
    for si, (ei, a, b) in enumerate(segs):
        for sj in seg_grid.near(a, b):
            if sj <= si:
                continue
            ej, c, d = segs[sj]
            if ej == ei:
                continue
            p = cross_point(a, b, c, d)
            if p is None:
                continue
            own = set(ends[ei]) | set(ends[ej])
            if in_any_node(p, -4.0, own):
                continue
            key = (min(ei, ej), max(ei, ej))
            pts = hits.setdefault(key, [])
            if all(math.dist(p, q) > 2.0 for q in pts):
                pts.append(p)
    crossings = sum(len(v) for v in hits.values())
    # Overlap: edge pieces running along another edge.
    overlap = 0.0
    for ei, a, b in segs:
        m = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        if in_any_node(m, -3.0):
            continue
        la = math.dist(a, b)
        if la == 0:
            continue
        for sj in seg_grid.near(m, m):
            ej, c, d = segs[sj]
            if ej == ei:
                continue
            lc = math.dist(c, d)
            if lc == 0:
                continue
            cos = abs((b[0] - a[0]) * (d[0] - c[0]) + (b[1] - a[1]) * (d[1] - c[1])) / (la * lc)
            if cos > 0.966 and seg_point_dist(c, d, m) < 1.5:
                overlap += la
                break
    # Edges through nodes other than their ends.
    through = 0
    for ei, e in enumerate(edges):
        bad = False
        for p in e:
            for k in node_grid.near(p, p):
                if k in ends[ei]:
                    continue
                if inside(nodes[k], p, 1.0):
                    bad = True
                    break
            if bad:
                break
        through += bad
    # Turning, in right angles.
    turning = 0.0
    for e in edges:
        prev = None
        for a, b in zip(e, e[1:], strict=False):
            if math.dist(a, b) < 1e-6:
                continue
            ang = math.atan2(b[1] - a[1], b[0] - a[0])
            if prev is not None:
                d = abs((ang - prev + math.pi) % (2 * math.pi) - math.pi)
                turning += d
            prev = ang
    xs = [v for n in nodes for v in (n[0], n[2])] + [p[0] for e in edges for p in e]
    ys = [v for n in nodes for v in (n[1], n[3])] + [p[1] for e in edges for p in e]
    w = (max(xs) - min(xs)) if xs else 0.0
    h = (max(ys) - min(ys)) if ys else 0.0
    return {
        "nodes": len(nodes),
        "edges": len(edges),
        "crossings": crossings,
        "overlap": overlap,
        "through": through,
        "length": length,
        "bends": turning / (math.pi / 2),
        "width": w,
        "height": h,
        "area": w * h,
    }


# --------------------------------------------------------------------------- running


def timed(fn, repeat):
    if repeat <= 0:  # --repeat 0: no timing (quicker runs while tuning)
        fn()
        return 0.0
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(names, repeat, pictures):
    dot = shutil.which("dot")
    if not dot:
        sys.exit("Graphviz's dot is needed for this benchmark (apt-get install graphviz)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, view in layout_corpus.corpus():
            if names and name not in names:
                continue
            src = os.path.join(tmp, name + ".dot")
            with open(src, "w") as f:
                f.write(view.dot())
            js = subprocess.run(
                [dot, "-Tjson", src], check=True, capture_output=True, text=True
            ).stdout
            native = measure(native_drawing(view.svg()))
            ref = measure(dot_drawing(js))
            png = os.path.join(tmp, name + ".png")
            native["time"] = timed(view.png, repeat)
            cmd = [dot, "-Tpng", "-o" + png, src]
            ref["time"] = timed(functools.partial(subprocess.run, cmd, check=True), repeat)
            if pictures:
                os.makedirs(pictures, exist_ok=True)
                with open(os.path.join(pictures, name + ".native.png"), "wb") as f:
                    f.write(view.png())
                shutil.copy(png, os.path.join(pictures, name + ".dot.png"))
            rows.append({"name": name, "visits": len(view), "native": native, "dot": ref})
            print_row(rows[-1], header=len(rows) == 1)
    return rows


def fmt_pct(x):
    return f"{100 * x:.1f}%"


def print_row(r, header=False):
    if header:
        print(
            f"{'graph':34} {'nodes':>5} {'edges':>5} | {'cross':>11} | {'overlap':>13} |"
            f" {'thru':>5} | {'length k':>11} | {'bends':>11} | {'area ratio':>10} |"
            f" {'time ms':>13}"
        )
    n, d = r["native"], r["dot"]
    ov_n = n["overlap"] / n["length"] if n["length"] else 0
    ov_d = d["overlap"] / d["length"] if d["length"] else 0
    print(
        f"{r['name']:34} {n['nodes']:5} {n['edges']:5} | {n['crossings']:5}/{d['crossings']:<5} |"
        f" {fmt_pct(ov_n):>6}/{fmt_pct(ov_d):<6} | {n['through']:2}/{d['through']:<2} |"
        f" {n['length'] / 1000:5.1f}/{d['length'] / 1000:<5.1f} |"
        f" {n['bends']:5.0f}/{d['bends']:<5.0f} |"
        f" {n['area'] / d['area'] if d['area'] else 0:10.2f} |"
        f" {1000 * n['time']:6.1f}/{1000 * d['time']:<6.1f}",
        flush=True,
    )


def total(rows, side, key):
    return sum(r[side][key] for r in rows)


def summary(rows):
    n = len(rows)
    better = sum(r["native"]["crossings"] <= r["dot"]["crossings"] for r in rows)
    cn = sum(r["native"]["crossings"] for r in rows)
    cd = sum(r["dot"]["crossings"] for r in rows)
    through = sum(r["native"]["through"] for r in rows)
    ov = sum(r["native"]["overlap"] for r in rows) / max(1, total(rows, "native", "length"))
    ovd = sum(r["dot"]["overlap"] for r in rows) / max(1, total(rows, "dot", "length"))
    area = [r["native"]["area"] / r["dot"]["area"] for r in rows if r["dot"]["area"]]
    tn = sum(r["native"]["time"] for r in rows)
    td = sum(r["dot"]["time"] for r in rows)
    ln = sum(r["native"]["length"] for r in rows)
    ld = sum(r["dot"]["length"] for r in rows)
    bn = sum(r["native"]["bends"] for r in rows)
    bd = sum(r["dot"]["bends"] for r in rows)
    lines = [
        f"graphs: {n}",
        f"crossings: native <= dot on {better}/{n} ({100 * better / max(1, n):.0f}%);"
        f" total {cn} vs {cd} ({cn / max(1, cd):.2f}x)",
        f"edges through nodes: native {through}, dot {sum(r['dot']['through'] for r in rows)}",
        f"overlapping edge length: native {fmt_pct(ov)}, dot {fmt_pct(ovd)} of edge length",
        f"total edge length: native/dot {ln / max(1, ld):.2f}x; bends {bn:.0f} vs {bd:.0f}",
        f"area native/dot: median {statistics.median(area):.2f}x, max {max(area):.2f}x,"
        f" over 1.5x on {sum(a > 1.5 for a in area)} graphs",
        f"PNG time: native {1000 * tn:.0f} ms, dot {1000 * td:.0f} ms ({tn / max(td, 1e-9):.3f}x)",
    ]
    print("\n".join(lines))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated graph names")
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pictures", help="write native and dot PNGs of each graph here")
    args = ap.parse_args()
    names = set(args.only.split(",")) if args.only else None
    rows = run(names, args.repeat, args.pictures)
    lines = summary(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "summary": lines}, f, indent=1)


if __name__ == "__main__":
    main()
