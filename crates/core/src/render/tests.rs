//! Structural tests of the drawing: on objgraph-like graphs of 10 to 300 nodes, nodes never
//! overlap, labels fit their boxes, edges never pass through a node they do not join, edge labels
//! never cover a node; SVG is well-formed and escaped; PNG size grows with the graph.

use super::layout::{sample_route, Layout, NodeKind};
use super::{layout, text, to_png, to_svg};
use crate::view::{Edge, EdgeLabel, Hsv, View, Visit};

use crate::testutil::Rng;

/// A view shaped like objgraph's walks: a BFS tree with depth-limited fan-out, plus cycles,
/// cross edges, self references, edge labels, `__del__` and too_many markers.
fn objgraph_like(n: usize, seed: u64, backrefs: bool) -> View {
    let mut rng = Rng(seed | 1);
    let kinds = [
        "list\n3 items",
        "dict\n12 items",
        "Counter\n15 items",
        "str\n'hello'",
        "function\n<function handler at 0x7f3a2b1c>",
        "tuple\n2 items",
        "module\nrefgraph.demo",
        "Session [3]\n<app.Session object at 0x7f00aa11>",
    ];
    let mut depth = vec![0u32; n];
    let mut parent = vec![0usize; n];
    for i in 1..n {
        parent[i] = rng.below(i as u64) as usize;
        depth[i] = depth[parent[i]] + 1;
    }
    let max_depth = depth.iter().copied().max().unwrap_or(0).max(1);
    let mut out_edges: Vec<Vec<(usize, Option<EdgeLabel>)>> = vec![Vec::new(); n];
    let label = |rng: &mut Rng| -> Option<EdgeLabel> {
        match rng.below(4) {
            0 => Some(EdgeLabel {
                text: "__dict__".into(),
                weight: Some(10),
            }),
            1 => Some(EdgeLabel {
                text: "str\n'a key with spaces'".into(),
                weight: None,
            }),
            2 => Some(EdgeLabel {
                text: "children".into(),
                weight: Some(2),
            }),
            _ => None,
        }
    };
    for i in 1..n {
        let l = label(&mut rng);
        out_edges[parent[i]].push((i, l));
    }
    for _ in 0..n / 4 {
        let a = rng.below(n as u64) as usize;
        let b = rng.below(n as u64) as usize;
        let l = label(&mut rng);
        out_edges[a].push((b, l)); // cycles, cross edges and the odd self reference
    }
    let key = |i: usize| format!("o{}", 1000 + i);
    let mut view = View {
        roots: vec![key(0)],
        backrefs,
        ..Default::default()
    };
    for i in 0..n {
        let start = view.edges.len();
        for (j, l) in &out_edges[i] {
            let (from, to) = if backrefs {
                (key(*j), key(i))
            } else {
                (key(i), key(*j))
            };
            view.edges.push(Edge {
                from,
                to,
                label: l.clone(),
            });
        }
        let v = Hsv::gradient(
            Hsv::new(0.0, 0.0, 1.0),
            Hsv::new(0.0, 0.0, 0.3),
            depth[i] as i64,
            max_depth as i64,
        )
        .v;
        view.visits.push(Visit {
            key: key(i),
            label: kinds[rng.below(kinds.len() as u64) as usize].to_string(),
            depth: depth[i],
            fill: Hsv::new(0.0, 0.0, v),
            has_del: rng.below(9) == 0,
            attrs: None,
            edges: start..view.edges.len(),
            too_many: (rng.below(7) == 0).then(|| (3 + rng.below(40), Hsv::new(0.0, 1.0, 0.6))),
        });
    }
    view
}

fn check(l: &Layout, what: &str) {
    // Nodes never overlap.
    for (i, a) in l.nodes.iter().enumerate() {
        for b in &l.nodes[i + 1..] {
            assert!(
                !a.rect.overlaps(&b.rect),
                "{what}: nodes overlap: {:?} {:?}",
                a.rect,
                b.rect
            );
        }
        // Every label line fits inside its box.
        for line in &a.lines {
            let w = text::line_width(line, a.style.font_size);
            assert!(
                w <= a.rect.w,
                "{what}: label {line:?} ({w}) wider than its box {}",
                a.rect.w
            );
        }
        let h = a.lines.len() as f32 * text::line_height(a.style.font_size);
        assert!(h <= a.rect.h, "{what}: label taller than its box");
        assert!(
            a.rect.x >= 0.0
                && a.rect.y >= 0.0
                && a.rect.right() <= l.width
                && a.rect.bottom() <= l.height
        );
    }
    for e in &l.edges {
        // Edges never pass through a node other than their two ends.
        for p in sample_route(e, 24) {
            for (k, n) in l.nodes.iter().enumerate() {
                if k == e.from || k == e.to {
                    continue;
                }
                assert!(
                    !n.rect.contains(p, 0.5),
                    "{what}: edge {}->{} passes through node {k} at {p:?}",
                    e.from,
                    e.to
                );
            }
        }
        // Edge labels never cover a node.
        if let Some(lab) = &e.label {
            for n in &l.nodes {
                assert!(
                    !lab.rect.overlaps(&n.rect),
                    "{what}: edge label {:?} over a node",
                    lab.lines
                );
            }
        }
    }
    // Edge labels never cover each other.
    let labels: Vec<_> = l.edges.iter().filter_map(|e| e.label.as_ref()).collect();
    for (i, a) in labels.iter().enumerate() {
        for b in &labels[i + 1..] {
            assert!(!a.rect.overlaps(&b.rect), "{what}: edge labels overlap");
        }
    }
}

#[test]
fn layouts_have_no_overlaps_and_no_edges_through_nodes() {
    for &n in &[10usize, 30, 100, 300] {
        for seed in 1..4u64 {
            for backrefs in [false, true] {
                let view = objgraph_like(n, seed * 7919 + n as u64, backrefs);
                let l = layout(&view);
                let objects = l
                    .nodes
                    .iter()
                    .filter(|x| x.kind == NodeKind::Object)
                    .count();
                assert_eq!(objects, n);
                check(&l, &format!("n={n} seed={seed} backrefs={backrefs}"));
            }
        }
    }
}

#[test]
fn the_checks_can_fail() {
    // Move one node onto another: the overlap check must notice.
    let mut l = layout(&objgraph_like(10, 5, false));
    l.nodes[1].rect = l.nodes[0].rect;
    let r = std::panic::catch_unwind(|| check(&l, "broken"));
    assert!(r.is_err());
}

#[test]
fn markers_are_drawn() {
    let view = objgraph_like(30, 11, false);
    let dels = view.visits.iter().filter(|v| v.has_del).count();
    let many = view.visits.iter().filter(|v| v.too_many.is_some()).count();
    let l = layout(&view);
    assert_eq!(
        l.nodes
            .iter()
            .filter(|n| n.kind == NodeKind::DelMarker)
            .count(),
        dels
    );
    assert_eq!(
        l.nodes
            .iter()
            .filter(|n| n.kind == NodeKind::TooMany)
            .count(),
        many
    );
    let svg = to_svg(&view);
    assert_eq!(svg.matches("class=\"del\"").count(), dels);
    assert!(svg.contains("more references"));
}

#[test]
fn svg_is_well_formed_and_escaped() {
    let nasty = "quote\" <script>alert(1)</script> & amp;\nNUL\u{0} esc\u{1b} é 漢字 </text>";
    let view = View {
        roots: vec!["o1".into()],
        visits: vec![
            Visit {
                key: "o1".into(),
                label: nasty.into(),
                depth: 0,
                fill: Hsv::new(0.0, 0.0, 1.0),
                has_del: true,
                attrs: Some(vec![
                    ("fillcolor".into(), "<bad>".into()),
                    ("shape".into(), "ellipse".into()),
                ]),
                edges: 0..1,
                too_many: Some((2, Hsv::new(0.0, 1.0, 0.5))),
            },
            Visit {
                key: "o2".into(),
                label: "x".repeat(100_000),
                depth: 1,
                fill: Hsv::new(0.0, 0.0, 0.3),
                has_del: false,
                attrs: None,
                edges: 1..1,
                too_many: None,
            },
        ],
        edges: vec![Edge {
            from: "o1".into(),
            to: "o2".into(),
            label: Some(EdgeLabel {
                text: "<&>\"'\u{0}".into(),
                weight: None,
            }),
        }],
        backrefs: false,
    };
    let svg = to_svg(&view);
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").to_string())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("<script>alert(1)</script>")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t == "<&>\"'\u{FFFD}"), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("漢字 </text>")));
    assert!(!svg.contains('\u{0}'));
    // The 100,000-character label is cut for drawing.
    assert!(texts
        .iter()
        .all(|t| t.chars().count() <= text::MAX_LINE_CHARS + 1));
    assert!(svg.len() < 20_000);
}

fn png_size(data: &[u8]) -> (u32, u32) {
    assert_eq!(&data[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(data[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(data[20..24].try_into().unwrap());
    (w, h)
}

#[test]
fn png_grows_with_the_graph() {
    let small = png_size(&to_png(&objgraph_like(5, 3, false)).unwrap());
    let big = png_size(&to_png(&objgraph_like(60, 3, false)).unwrap());
    assert!(big.0 * big.1 > 4 * small.0 * small.1, "{small:?} {big:?}");
    let empty = png_size(&to_png(&View::default()).unwrap());
    assert!(empty.0 >= 1 && empty.1 >= 1);
}

#[test]
fn png_draws_pixels_in_node_colours() {
    // One green module node: the PNG must contain its fill colour.
    let view = View {
        roots: vec![],
        visits: vec![Visit {
            key: "o1".into(),
            label: "module\nx".into(),
            depth: 0,
            fill: Hsv::new(0.3, 1.0, 1.0),
            has_del: false,
            attrs: None,
            edges: 0..0,
            too_many: None,
        }],
        edges: vec![],
        backrefs: false,
    };
    let data = to_png(&view).unwrap();
    let pm = tiny_skia::Pixmap::decode_png(&data).unwrap();
    let green = pm
        .pixels()
        .iter()
        .filter(|p| (p.red(), p.green(), p.blue()) == (51, 255, 0))
        .count();
    assert!(green > 500, "{green} green pixels");
    let dark = pm
        .pixels()
        .iter()
        .filter(|p| p.red() < 60 && p.green() < 60)
        .count();
    assert!(dark > 50, "text and outline are drawn ({dark} dark pixels)");
}

/// Points where two edges of the drawing cross, away from the nodes at their ends (where edges
/// meet anyway); each edge sampled as a polyline.
fn drawn_crossings(l: &Layout) -> usize {
    let lines: Vec<Vec<(f32, f32)>> = l.edges.iter().map(|e| sample_route(e, 16)).collect();
    let bbox = |p: &[(f32, f32)]| {
        p.iter().fold(
            (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
            |(a, b, c, d), &(x, y)| (a.min(x), b.min(y), c.max(x), d.max(y)),
        )
    };
    let boxes: Vec<_> = lines.iter().map(|p| bbox(p)).collect();
    let near_end = |p: (f32, f32), e: &super::layout::LaidEdge| {
        [e.from, e.to].iter().any(|&k| {
            let r = &l.nodes[k].rect;
            p.0 > r.x - 4.0 && p.0 < r.right() + 4.0 && p.1 > r.y - 4.0 && p.1 < r.bottom() + 4.0
        })
    };
    let mut count = 0;
    for i in 0..lines.len() {
        for j in i + 1..lines.len() {
            let (a, b) = (boxes[i], boxes[j]);
            if a.2 < b.0 || b.2 < a.0 || a.3 < b.1 || b.3 < a.1 {
                continue;
            }
            let mut hits: Vec<(f32, f32)> = Vec::new();
            for s in lines[i].windows(2) {
                for t in lines[j].windows(2) {
                    let (p, r) = (s[0], (s[1].0 - s[0].0, s[1].1 - s[0].1));
                    let (q, u) = (t[0], (t[1].0 - t[0].0, t[1].1 - t[0].1));
                    let den = r.0 * u.1 - r.1 * u.0;
                    if den.abs() < 1e-9 {
                        continue;
                    }
                    let w = (q.0 - p.0, q.1 - p.1);
                    let ts = (w.0 * u.1 - w.1 * u.0) / den;
                    let us = (w.0 * r.1 - w.1 * r.0) / den;
                    if (0.0..1.0).contains(&ts) && (0.0..1.0).contains(&us) {
                        let x = (p.0 + ts * r.0, p.1 + ts * r.1);
                        if near_end(x, &l.edges[i]) || near_end(x, &l.edges[j]) {
                            continue;
                        }
                        if hits
                            .iter()
                            .all(|h| (h.0 - x.0).abs() + (h.1 - x.1).abs() > 2.0)
                        {
                            hits.push(x);
                        }
                    }
                }
            }
            count += hits.len();
        }
    }
    count
}

#[test]
fn crossings_not_worse_than_before() {
    // Crossings of the drawings the layout made before splines, Brandes-Köpf and
    // transposition (same graphs, same counting), as upper bounds.
    let before = [
        ((30usize, 1u64, false), BEFORE[0]),
        ((30, 2, true), BEFORE[1]),
        ((100, 3, false), BEFORE[2]),
        ((100, 4, true), BEFORE[3]),
    ];
    for ((n, seed, backrefs), limit) in before {
        let l = layout(&objgraph_like(n, seed, backrefs));
        let c = drawn_crossings(&l);
        eprintln!("crossings n={n} seed={seed} backrefs={backrefs}: {c} (before {limit})");
        assert!(
            c <= limit,
            "n={n} seed={seed}: {c} crossings, {limit} before"
        );
    }
}

/// Measured with the layout of main before this change (commit 3b44347).
const BEFORE: [usize; 4] = [13, 10, 92, 229];

#[test]
fn crossing_count_counts() {
    // Two edges that swap sides cross once; the counter must see it.
    let mk = |from: &str, to: &str| Edge {
        from: from.into(),
        to: to.into(),
        label: None,
    };
    let visit = |k: &str, d: u32, edges: std::ops::Range<usize>| Visit {
        key: k.into(),
        label: k.into(),
        depth: d,
        fill: Hsv::new(0.0, 0.0, 1.0),
        has_del: false,
        attrs: None,
        edges,
        too_many: None,
    };
    let view = View {
        roots: vec![],
        visits: vec![
            visit("a", 0, 0..2),
            visit("b", 0, 2..4),
            visit("c", 1, 4..4),
            visit("d", 1, 4..4),
        ],
        edges: vec![mk("a", "c"), mk("a", "d"), mk("b", "c"), mk("b", "d")],
        backrefs: false,
    };
    assert_eq!(drawn_crossings(&layout(&view)), 1);
}

/// A chain of `n` objects, each referring to the next: a drawing `n` ranks tall.
fn chain(n: usize) -> View {
    let mut view = View::default();
    for i in 0..n {
        let start = view.edges.len();
        if i + 1 < n {
            view.edges.push(Edge {
                from: format!("o{i}"),
                to: format!("o{}", i + 1),
                label: None,
            });
        }
        view.visits.push(Visit {
            key: format!("o{i}"),
            label: format!("list\n{i} items"),
            depth: i as u32,
            fill: Hsv::new(0.0, 0.0, 1.0),
            has_del: false,
            attrs: None,
            edges: start..view.edges.len(),
            too_many: None,
        });
    }
    view
}

#[test]
fn png_size_is_capped() {
    use super::png::{MAX_SIDE, MIN_SCALE, SCALE};
    // A little over the limit: shrunk to fit.
    let tall = chain(300);
    let l = layout(&tall);
    assert!(l.height * SCALE > MAX_SIDE && l.height * MIN_SCALE < MAX_SIDE);
    let (w, h) = png_size(&to_png(&tall).unwrap());
    assert!(
        h as f32 <= MAX_SIDE + 1.0 && h as f32 > MAX_SIDE - 2.0,
        "{w}x{h}"
    );
    // Far over: refused with a message that says what to do.
    let err = to_png(&chain(1000)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, super::RenderError::TooLarge { .. }));
    assert!(
        msg.contains("too large for a PNG") && msg.contains(".svg"),
        "{msg}"
    );
    // SVG has no limit.
    assert!(to_svg(&chain(1000)).contains("o999"));
}

#[test]
fn svg_groups_nodes_and_edges_with_titles() {
    let mut view = objgraph_like(30, 17, false);
    let long = format!("str\n'{}'", "y".repeat(500));
    view.visits[3].label = long.clone();
    view.visits[3].key = "o140234567890".into();
    for e in &mut view.edges {
        for k in [&mut e.from, &mut e.to] {
            if k == "o1003" {
                *k = "o140234567890".into();
            }
        }
    }
    let svg = to_svg(&view);
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let groups = |class: &str| {
        doc.descendants()
            .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some(class))
            .collect::<Vec<_>>()
    };
    let l = layout(&view);
    assert_eq!(groups("node").len(), l.nodes.len());
    assert_eq!(groups("edge").len(), l.edges.len());
    // Every group has a title; a node's has its whole label and its address.
    for g in groups("node").iter().chain(groups("edge").iter()) {
        assert!(g.children().any(|c| c.has_tag_name("title")));
    }
    let node = groups("node")
        .into_iter()
        .find(|g| g.attribute("id") == Some("o140234567890"))
        .expect("node group by key");
    let title = node
        .children()
        .find(|c| c.has_tag_name("title"))
        .and_then(|t| t.text())
        .unwrap();
    assert!(title.contains(&"y".repeat(500)), "full label in the title");
    assert!(title.ends_with("at 0x20a6a1b0d2"), "{title}");
    // Edges name their ends.
    let edge = groups("edge")
        .into_iter()
        .find(|g| g.attribute("data-to") == Some("o140234567890"));
    assert!(edge.is_some());
}

/// A hub object with `n` labelled references to leaves, each leaf referring back to the hub
/// (a module's dict and its functions): a wide fan out of the hub and a fan back into it.
fn hub(n: usize) -> View {
    let mut view = View {
        roots: vec!["o0".into()],
        ..Default::default()
    };
    for i in 0..=n {
        let start = view.edges.len();
        if i == 0 {
            for j in 1..=n {
                view.edges.push(Edge {
                    from: "o0".into(),
                    to: format!("o{j}"),
                    label: Some(EdgeLabel {
                        text: format!("name_{j}"),
                        weight: None,
                    }),
                });
            }
        } else {
            view.edges.push(Edge {
                from: format!("o{i}"),
                to: "o0".into(),
                label: Some(EdgeLabel {
                    text: "__globals__".into(),
                    weight: None,
                }),
            });
        }
        view.visits.push(Visit {
            key: format!("o{i}"),
            label: if i == 0 {
                "dict\n40 items".into()
            } else {
                format!("function\n<function f{i} at 0x7f00aa{i:02}>")
            },
            depth: (i > 0) as u32,
            fill: Hsv::new(0.0, 0.0, 0.8),
            has_del: false,
            attrs: None,
            edges: start..view.edges.len(),
            too_many: None,
        });
    }
    view
}

/// Length of edge (outside the nodes, 3 pt around them) that runs within 1.2 pt of another
/// edge in the same direction (within 15 degrees: not where two edges cross), and the total
/// edge length.
fn overlapping_length(l: &Layout) -> (f32, f32) {
    // Pieces of about 2 pt: (edge, middle, direction, length), in a grid of 4 pt cells.
    let mut pieces = Vec::new();
    for (i, e) in l.edges.iter().enumerate() {
        for w in sample_route(e, 4).windows(2) {
            let d = (w[1].0 - w[0].0, w[1].1 - w[0].1);
            let len = d.0.hypot(d.1);
            if len > 0.0 {
                let m = ((w[0].0 + w[1].0) / 2.0, (w[0].1 + w[1].1) / 2.0);
                pieces.push((i, m, (d.0 / len, d.1 / len), len));
            }
        }
    }
    let cell = |p: (f32, f32)| ((p.0 / 4.0).floor() as i64, (p.1 / 4.0).floor() as i64);
    let mut grid: std::collections::HashMap<(i64, i64), Vec<usize>> = Default::default();
    for (k, p) in pieces.iter().enumerate() {
        grid.entry(cell(p.1)).or_default().push(k);
    }
    let near_node = |p: (f32, f32)| l.nodes.iter().any(|n| n.rect.contains(p, -3.0));
    let (mut over, mut total) = (0.0f32, 0.0f32);
    for &(i, m, d, len) in &pieces {
        total += len;
        let (cx, cy) = cell(m);
        let close = (cx - 1..=cx + 1).any(|x| {
            (cy - 1..=cy + 1).any(|y| {
                grid.get(&(x, y)).is_some_and(|ks| {
                    ks.iter().any(|&k| {
                        let (j, q, e, _) = pieces[k];
                        j != i
                            && (q.0 - m.0).hypot(q.1 - m.1) < 1.2
                            && (d.0 * e.0 + d.1 * e.1).abs() > 0.966
                    })
                })
            })
        });
        if close && !near_node(m) {
            over += len;
        }
    }
    (over, total)
}

#[test]
fn edges_of_a_fan_do_not_run_on_top_of_one_another() {
    // Up to 20 references out and 20 back: 40 ports on the hub's 60 pt side. (With more,
    // the ports themselves are closer than 1.2 pt and the edges meet near the hub.)
    for n in [6usize, 12, 20] {
        let l = layout(&hub(n));
        check(&l, &format!("hub {n}"));
        let (over, total) = overlapping_length(&l);
        assert!(
            over < 0.01 * total,
            "hub {n}: {over:.0} of {total:.0} pt of edge run on another edge"
        );
    }
    // The measure can fail: an edge drawn twice lies on top of itself.
    let mut l = layout(&hub(6));
    let twin = l.edges[0].clone();
    l.edges.push(twin);
    let (over, total) = overlapping_length(&l);
    assert!(over > 0.05 * total, "{over} of {total}");
}

#[test]
fn a_wide_fan_of_cycles_of_two_is_wrapped_into_rows() {
    // 30 functions, each named by a dict and pointing back to it (`__globals__`): one row of
    // them would be about 30 boxes wide; they are staggered into rows.
    let mut view = hub(30);
    for e in &mut view.edges {
        e.label = None;
    }
    let l = layout(&view);
    check(&l, "hub 30");
    let funcs: Vec<_> = l.nodes.iter().filter(|n| n.key != "o0").collect();
    let mut rows: Vec<i32> = funcs.iter().map(|n| n.rect.y.round() as i32).collect();
    rows.sort();
    rows.dedup();
    assert!(rows.len() >= 2, "rows of the functions: {rows:?}");
    // Not yet: narrower. The x placement keeps each function in a column of its own (the
    // edges of the lower row run down between the boxes of the upper one), so the rows do
    // not interleave; see the README's layout section.
}

#[test]
fn edges_of_wide_graphs_do_not_run_on_top_of_one_another() {
    // Graphs of objgraph's shape, up to 300 nodes: under 1% of edge length runs along
    // another edge (the target; the benchmark measures the same on real graphs).
    for &n in &[30usize, 100, 300] {
        for seed in 1..4u64 {
            for backrefs in [false, true] {
                let what = format!("n={n} seed={seed} backrefs={backrefs}");
                let l = layout(&objgraph_like(n, seed * 7919 + n as u64, backrefs));
                let (over, total) = overlapping_length(&l);
                eprintln!("{what}: {over:.0} of {total:.0}");
                assert!(
                    over < 0.01 * total,
                    "{what}: {over:.0} of {total:.0} pt of edge run on another edge"
                );
            }
        }
    }
}

/// The flat pieces of the edges (straight, horizontal, over 4 pt long): (y, x from, x to).
fn flat_pieces(l: &Layout) -> Vec<(f32, f32, f32)> {
    let mut out = Vec::new();
    for e in l.edges.iter().filter(|e| !e.self_loop) {
        for k in (0..e.points.len().saturating_sub(3)).step_by(3) {
            let (a, b, c, d) = (
                e.points[k],
                e.points[k + 1],
                e.points[k + 2],
                e.points[k + 3],
            );
            let flat = [b.1, c.1, d.1].iter().all(|y| (y - a.1).abs() < 1e-3);
            if flat && (d.0 - a.0).abs() > 4.0 {
                out.push((a.1, a.0.min(d.0), a.0.max(d.0)));
            }
        }
    }
    out
}

#[test]
fn tracks_are_apart() {
    // Two edges that run flat over the same stretch of x are on tracks 2 pt apart at least:
    // the gap was made tall enough for them, counting them from the same ports as the routes
    // (counted from the vertices' middles, n=100 seed=2 backrefs had 10 pairs closer).
    for &n in &[30usize, 100, 300] {
        for seed in 1..4u64 {
            for backrefs in [false, true] {
                let what = format!("n={n} seed={seed} backrefs={backrefs}");
                let l = layout(&objgraph_like(n, seed * 7919 + n as u64, backrefs));
                let flat = flat_pieces(&l);
                let mut close = 0;
                for (i, p) in flat.iter().enumerate() {
                    for q in &flat[i + 1..] {
                        let dy = (p.0 - q.0).abs();
                        if dy > 1e-3 && dy < 1.9 && p.1 < q.2 - 1.0 && q.1 < p.2 - 1.0 {
                            close += 1;
                        }
                    }
                }
                eprintln!(
                    "{what}: {} flat pieces, {close} pairs too close",
                    flat.len()
                );
                assert_eq!(close, 0, "{what}");
            }
        }
    }
}
