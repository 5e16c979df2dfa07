//! A layered (Sugiyama-style) layout of a [`View`], top to bottom like Graphviz's `dot`.
//!
//! 1. Nodes: one per object, plus the small `__del__` and "N more references" markers.
//! 2. Cycles are broken two ways ([`Breaking`]): every edge against the walk order turned round
//!    (objects found later point back to earlier ones), or only the edges a depth-first walk
//!    finds closing a cycle, as `dot` does. Both are laid out as far as the ranks' places, and
//!    the second is kept when its drawing is much smaller without many more crossings
//!    ([`better`]). Reversed edges are drawn the right way round.
//! 3. Ranks by longest path (for the depth-first breaking, then shortened: a node with more
//!    edges below than above moves down, and the other way round, [`assign_ranks`]); a rank far
//!    wider than the drawing is tall has the leaves of its fans staggered over two rows
//!    ([`wrap_wide_ranks`]). Edges that span several ranks get dummy
//!    vertices. When any edge is labelled, object edges span two ranks and the label is a dummy
//!    vertex of its own width in the middle one, so labels never overlap nodes or each other.
//! 4. Order within ranks: barycentre sweeps, each followed by transposition of neighbours,
//!    keeping the order with the fewest crossings.
//! 5. X: Brandes and Köpf's four aligned placements, balanced, so long edges run straight;
//!    when that is much wider than a placement by medians that packs each rank (fans under
//!    different parents side by side), the narrower one is kept.
//! 6. Y: a gap between ranks is tall enough for a track (below) for each edge that runs flat
//!    in it, counted from the same ports as the routes.
//! 7. Edges: cubic splines from a port on the source's bottom, through the middles of their
//!    dummies, to a port on the target's top; the ports of one side are spread along it in the
//!    order of the edges' other ends. In a gap where an edge goes far sideways it runs flat on
//!    a track of its own (reached from a port at 45 degrees, from a dummy vertically, with round
//!    corners), the tracks of a gap nested so that the edges of
//!    a fan neither lie on top of one another nor cross (a fan of splines drawn as S-curves
//!    would share one flat stretch in the middle of the gap). An edge whose spline would touch
//!    a node or a label is drawn instead straight down through the space its dummies
//!    reserved, turning only in the empty gaps between ranks, so it never passes through a
//!    node.

use super::style::{node_style, NodeStyle, Rgb, Shape, RED};
use super::text;
use crate::view::{EdgeLabel, Hsv, View};

/// An axis-aligned rectangle (top-left corner and size).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl Rect {
    pub fn right(&self) -> f32 {
        self.x + self.w
    }
    pub fn bottom(&self) -> f32 {
        self.y + self.h
    }
    pub fn cx(&self) -> f32 {
        self.x + self.w / 2.0
    }
    pub fn cy(&self) -> f32 {
        self.y + self.h / 2.0
    }
    /// True when the interiors intersect.
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.right() && o.x < self.right() && self.y < o.bottom() && o.y < self.bottom()
    }
    /// True when the point is strictly inside, `margin` away from every side.
    pub fn contains(&self, (px, py): (f32, f32), margin: f32) -> bool {
        px > self.x + margin
            && px < self.right() - margin
            && py > self.y + margin
            && py < self.bottom() - margin
    }
}

/// What a laid-out node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Object,
    /// The red `__del__` marker of an object whose class defines `__del__`.
    DelMarker,
    /// "N more references" / "N more backreferences".
    TooMany,
}

/// A node with its place.
#[derive(Clone, Debug, PartialEq)]
pub struct LaidNode {
    pub rect: Rect,
    pub lines: Vec<String>,
    pub style: NodeStyle,
    pub kind: NodeKind,
    /// The object's key (`o<address>`); markers carry the key of their object.
    pub key: String,
    /// What a reader hovering over the node is told: the whole label, uncut, and the address.
    pub title: String,
}

/// An edge label with its place.
#[derive(Clone, Debug, PartialEq)]
pub struct LaidLabel {
    pub rect: Rect,
    pub lines: Vec<String>,
    pub font_size: f32,
}

/// An edge with its route: a spline of cubic Bézier pieces from the source to the target, as
/// control points `p0 c1 c2 p1 c1 c2 p2 …` (3k+1 points, as Graphviz writes them). The
/// arrowhead's tip is the last point.
#[derive(Clone, Debug, PartialEq)]
pub struct LaidEdge {
    pub from: usize,
    pub to: usize,
    pub points: Vec<(f32, f32)>,
    pub color: Rgb,
    pub dotted: bool,
    pub label: Option<LaidLabel>,
    /// An object that refers to itself: `points` are the four points of one cubic loop.
    pub self_loop: bool,
}

/// A whole picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub width: f32,
    pub height: f32,
    pub nodes: Vec<LaidNode>,
    pub edges: Vec<LaidEdge>,
}

const MARGIN: f32 = 12.0;
const NODE_SEP: f32 = 18.0;
const DUMMY_HALF: f32 = 5.0;
const LOOP_ROOM: f32 = 26.0;
const EDGE_FONT: f32 = 12.0;
const MARKER_FONT: f32 = 6.0;
const SWEEPS: usize = 24;
/// An edge that goes sideways more than this many times the least rank gap in one gap runs
/// flat, on a track of its own, rather than as an S-curve.
const FLAT: f32 = 2.0;
/// How far sideways an edge goes per unit down between its port and its track.
const SLANT: f32 = 1.0;
/// The median x placement replaces Brandes and Köpf's when it is narrower than this share.
const NARROWER: f32 = 0.8;
/// The least gap between a rank of nodes and a rank of edge labels.
const LABEL_GAP: f32 = 12.0;
/// Distance between two tracks.
const TRACK_SEP: f32 = 2.0;

struct Vertex {
    /// Index into the node list, or None for a dummy.
    node: Option<usize>,
    rank: usize,
    /// Extents left and right of the centre, and height.
    left: f32,
    right: f32,
    height: f32,
    preds: Vec<usize>,
    succs: Vec<usize>,
    x: f32,
    order_key: f64,
}

struct Route {
    /// Vertices from the DAG source to the DAG sink.
    chain: Vec<usize>,
    reversed: bool,
    label_vertex: Option<usize>,
    edge: usize,
}

struct PlainEdge {
    from: usize,
    to: usize,
    label: Option<EdgeLabel>,
    color: Rgb,
    dotted: bool,
    minlen: usize,
}

fn node_size(lines: &[String], size: f32, shape: Shape) -> (f32, f32) {
    let w = lines
        .iter()
        .map(|l| text::line_width(l, size))
        .fold(0.0f32, f32::max);
    let h = lines.len() as f32 * text::line_height(size);
    match shape {
        Shape::Box | Shape::Plain => ((w + 16.0).max(54.0), (h + 6.0).max(36.0)),
        Shape::Ellipse => (((w + 16.0) * 1.42).max(54.0), ((h + 8.0) * 1.42).max(36.0)),
        Shape::DoubleCircle => {
            let d = (w.max(h) * 1.3 + 10.0).max(36.0);
            (d, d)
        }
    }
}

fn marker_size(lines: &[String], shape: Shape) -> (f32, f32) {
    let w = lines
        .iter()
        .map(|l| text::line_width(l, MARKER_FONT))
        .fold(0.0f32, f32::max);
    match shape {
        Shape::DoubleCircle => {
            let d = (w + 8.0).max(18.0);
            (d, d)
        }
        _ => ((w + 10.0).max(30.0), 18.0),
    }
}

/// Lay out a view.
pub fn layout(view: &View) -> Layout {
    let (dnodes, dedges) = view.merged();
    let mut nodes: Vec<LaidNode> = Vec::with_capacity(dnodes.len() * 2);
    let mut keys: Vec<f64> = Vec::with_capacity(dnodes.len() * 2);
    let mut edges: Vec<PlainEdge> = Vec::new();
    let labelled = dedges.iter().any(|e| e.2.is_some());
    let obj_minlen = if labelled { 2 } else { 1 };
    for (i, n) in dnodes.iter().enumerate() {
        let style = node_style(n);
        let lines = text::label_lines(&n.label);
        let (w, h) = node_size(&lines, style.font_size, style.shape);
        nodes.push(LaidNode {
            rect: Rect {
                x: 0.0,
                y: 0.0,
                w,
                h,
            },
            lines,
            style,
            kind: NodeKind::Object,
            key: n.key.clone(),
            title: node_title(&n.key, &n.label),
        });
        let depth = n.depth as f64;
        keys.push(if view.backrefs { -depth } else { depth } + i as f64 * 1e-9);
    }
    let mut self_loops: Vec<(usize, Option<EdgeLabel>)> = Vec::new();
    for (a, b, label) in &dedges {
        if a == b {
            self_loops.push((*a, label.clone()));
            continue;
        }
        edges.push(PlainEdge {
            from: *a,
            to: *b,
            label: label.clone(),
            color: [0, 0, 0],
            dotted: false,
            minlen: obj_minlen,
        });
    }
    // Markers, each a small node linked by a red dotted edge.
    for (i, n) in dnodes.iter().enumerate() {
        if n.has_del {
            let lines = vec!["__del__".to_string()];
            let (w, h) = marker_size(&lines, Shape::DoubleCircle);
            let m = nodes.len();
            nodes.push(LaidNode {
                rect: Rect {
                    x: 0.0,
                    y: 0.0,
                    w,
                    h,
                },
                lines,
                style: NodeStyle {
                    shape: Shape::DoubleCircle,
                    fill: Hsv::new(0.0, 0.5, 1.0).to_rgb(),
                    stroke: RED,
                    font: [0, 0, 0],
                    font_size: MARKER_FONT,
                },
                kind: NodeKind::DelMarker,
                key: n.key.clone(),
                title: format!("{} defines __del__", first_line(&n.label)),
            });
            keys.push(keys[i] + 0.5);
            edges.push(PlainEdge {
                from: i,
                to: m,
                label: None,
                color: RED,
                dotted: true,
                minlen: 1,
            });
        }
        if let Some((count, fill)) = n.too_many {
            let what = if view.backrefs {
                "backreferences"
            } else {
                "references"
            };
            let lines = vec![format!("{count} more {what}")];
            let title = format!("{} has {}", first_line(&n.label), lines[0]);
            let (w, h) = marker_size(&lines, Shape::Box);
            let m = nodes.len();
            nodes.push(LaidNode {
                rect: Rect {
                    x: 0.0,
                    y: 0.0,
                    w,
                    h,
                },
                lines,
                style: NodeStyle {
                    shape: Shape::Box,
                    fill: fill.to_rgb(),
                    stroke: RED,
                    font: [255, 255, 255],
                    font_size: MARKER_FONT,
                },
                kind: NodeKind::TooMany,
                key: n.key.clone(),
                title,
            });
            let (from, to, key) = if view.backrefs {
                (m, i, keys[i] - 0.5)
            } else {
                (i, m, keys[i] + 0.5)
            };
            keys.push(key);
            edges.push(PlainEdge {
                from,
                to,
                label: None,
                color: RED,
                dotted: true,
                minlen: 1,
            });
        }
    }

    // Two ways of breaking the cycles, each laid out as far as the ranks' places; the one
    // whose drawing is much smaller wins, unless it crosses many more edges (see `better`).
    let mut best: Option<Candidate> = None;
    for breaking in [Breaking::Walk, Breaking::DepthFirst] {
        let mut lay = Layered::build(&nodes, &keys, &edges, &self_loops, breaking);
        if let Some((b, ..)) = &best {
            if b.same_ranks(&lay) {
                continue;
            }
        }
        lay.order();
        lay.place_x_bk();
        let mut placed = nodes.clone();
        let (tops, heights) = lay.place_y(&mut placed);
        lay.area = lay.extent_area(&tops, &heights);
        if best.as_ref().is_none_or(|(b, ..)| better(&lay, b)) {
            best = Some((lay, placed, tops, heights));
        }
    }
    let Some((lay, placed, rank_top, rank_h)) = best else {
        unreachable!("one candidate at least")
    };
    let nodes = placed;
    let mut out_edges = lay.route(&nodes, &edges, &rank_top, &rank_h);
    for (n, _) in &self_loops {
        out_edges.push(self_loop(&nodes[*n].rect, *n));
    }
    finish(nodes, out_edges)
}

fn first_line(label: &str) -> &str {
    label.split('\n').next().unwrap_or("")
}

/// A node's hover text: its whole label (not cut as drawn) and, for objgraph's `o<id>` keys,
/// the object's address in hex.
pub fn node_title(key: &str, label: &str) -> String {
    let mut t = String::with_capacity(label.len() + 24);
    // Bound what one title can hold (a label may be a huge repr).
    let cut: String = label.chars().take(4000).collect();
    t.push_str(&cut);
    if cut.len() < label.len() {
        t.push('…');
    }
    if let Some(addr) = key.strip_prefix('o').and_then(|d| d.parse::<u64>().ok()) {
        t.push_str(&format!("\nat 0x{addr:x}"));
    }
    t
}

fn label_block(label: &EdgeLabel) -> (Vec<String>, f32, f32) {
    let lines = text::label_lines(&label.text);
    let w = lines
        .iter()
        .map(|l| text::line_width(l, EDGE_FONT))
        .fold(0.0f32, f32::max);
    let h = lines.len() as f32 * text::line_height(EDGE_FONT);
    (lines, w, h)
}

/// A loop on the right side of a node (room for it was reserved). Its label, if any, is left
/// out of the picture (the DOT text keeps it): it would sit where the neighbours are.
fn self_loop(r: &Rect, n: usize) -> LaidEdge {
    let (x, cy) = (r.right(), r.cy());
    let reach = LOOP_ROOM - 4.0;
    let points = vec![
        (x, cy - 7.0),
        (x + reach, cy - 18.0),
        (x + reach, cy + 18.0),
        (x, cy + 7.0),
    ];
    LaidEdge {
        from: n,
        to: n,
        points,
        color: [0, 0, 0],
        dotted: false,
        label: None,
        self_loop: true,
    }
}

/// A graph far wider than tall is hard to read: a rank much wider than the drawing is tall has
/// its leaves (nodes with nothing below them) staggered over several ranks below it, in turn,
/// and its sources (nothing above them: the referrers of `show_backrefs`) over several ranks
/// above it, as Graphviz's `unflatten` does. Edges to them grow longer; no constraint breaks.
fn wrap_wide_ranks(
    nodes: &[LaidNode],
    dag: &[(usize, usize, usize, bool)],
    rank: &mut [usize],
    keys: &[f64],
) {
    let n = nodes.len();
    if n == 0 {
        return;
    }
    let mut outdeg = vec![0usize; n];
    let mut indeg = vec![0usize; n];
    // The one neighbour of a node that has only one (its parent in a fan).
    let mut parent_of = vec![usize::MAX; n];
    let mut step = 1;
    // Whether a node has more than one neighbour (two edges to one node, as a cycle of two,
    // count as one).
    let mut many = vec![false; n];
    for &(a, b, len, _) in dag {
        outdeg[a] += 1;
        indeg[b] += 1;
        many[a] |= parent_of[a] != usize::MAX && parent_of[a] != b;
        many[b] |= parent_of[b] != usize::MAX && parent_of[b] != a;
        parent_of[a] = b;
        parent_of[b] = a;
        step = step.max(len);
    }
    // Widths of the ranks and the height of the drawing, roughly (nodes only).
    let measure = |rank: &[usize]| {
        let nranks = rank.iter().max().map_or(0, |r| r + 1);
        let mut width = vec![0.0f32; nranks];
        let mut height = vec![0.0f32; nranks];
        for i in 0..n {
            width[rank[i]] += nodes[i].rect.w + NODE_SEP;
            height[rank[i]] = height[rank[i]].max(nodes[i].rect.h);
        }
        let tall: f32 = height.iter().map(|h| h + 40.0).sum();
        (width, tall)
    };
    for _round in 0..2 {
        let before = rank.to_vec();
        let (width, tall) = measure(rank);
        let limit = (2.5 * tall).max(1000.0);
        let mut changed = false;
        for (r, &w) in width.iter().enumerate() {
            if w <= limit {
                continue;
            }
            // Two rows halve the width; more rows gain less, as edges to the lower rows pass
            // between the nodes of the upper ones.
            let k = 2;
            for down in [true, false] {
                let mut movable: Vec<usize> = (0..n)
                    .filter(|&i| {
                        // Only the leaves of fans (one neighbour, maybe by two edges):
                        // staggering the children of one parent adds no crossing.
                        rank[i] == r
                            && !many[i]
                            && if down {
                                outdeg[i] == 0 && indeg[i] > 0
                            } else {
                                indeg[i] == 0 && outdeg[i] > 0
                            }
                    })
                    .collect();
                if movable.len() < 2 * k {
                    continue;
                }
                movable.sort_by(|&a, &b| {
                    (parent_of[a], keys[a])
                        .partial_cmp(&(parent_of[b], keys[b]))
                        .unwrap_or(std::cmp::Ordering::Equal)
                        .then(a.cmp(&b))
                });
                let mut j = 0;
                for (m, &i) in movable.iter().enumerate() {
                    if m > 0 && parent_of[movable[m - 1]] != parent_of[i] {
                        j = 0;
                    }
                    let shift = step * (j % k);
                    j += 1;
                    if down {
                        rank[i] += shift;
                    } else {
                        // Moved up: everything else moves down instead, below.
                        rank[i] = rank[i].wrapping_sub(shift);
                    }
                }
                changed = true;
                break;
            }
        }
        // Ranks that went below zero (wrapped around): shift all down.
        let lowest = rank.iter().map(|&r| r as isize).min().unwrap_or(0);
        if lowest < 0 {
            for r in rank.iter_mut() {
                *r = (*r as isize - lowest) as usize;
            }
        }
        if !changed {
            break;
        }
        // Wrapping is for the shape of the picture, but not at any price: keep it only when
        // the picture gets smaller too (a rank as wide stays, or the new rows cost more
        // height than the width saved).
        let (after_w, after_tall) = measure(rank);
        let widest = |w: &[f32]| w.iter().copied().fold(0.0f32, f32::max);
        if widest(&after_w) * after_tall >= widest(&width) * tall {
            rank.copy_from_slice(&before);
            break;
        }
    }
}

/// The edges a depth-first walk finds closing a cycle (to a node still on the walk's path),
/// starting from the nodes in `order` and following each node's edges in their order.
fn dfs_back_edges(n: usize, edges: &[PlainEdge], order: &[usize]) -> Vec<bool> {
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (k, e) in edges.iter().enumerate() {
        out[e.from].push((e.to, k));
    }
    // 0: not seen, 1: on the path, 2: done.
    let mut state = vec![0u8; n];
    let mut back = vec![false; edges.len()];
    for &s in order {
        if state[s] != 0 {
            continue;
        }
        state[s] = 1;
        let mut call: Vec<(usize, usize)> = vec![(s, 0)];
        while let Some(&mut (v, ref mut k)) = call.last_mut() {
            if *k < out[v].len() {
                let (w, ei) = out[v][*k];
                *k += 1;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        call.push((w, 0));
                    }
                    1 => back[ei] = true,
                    _ => {}
                }
            } else {
                state[v] = 2;
                call.pop();
            }
        }
    }
    back
}

/// Ranks of an acyclic graph `(top, bottom, minlen, _)`: longest path from the sources first,
/// then each node moved, while that shortens the edges, to the rank where the edges it has
/// above and below are shortest in total (down when it has more edges below than above, up
/// in the other case), as far as its neighbours allow. `pos` breaks ties in the topological
/// order.
fn assign_ranks(
    n: usize,
    dag: &[(usize, usize, usize, bool)],
    pos: &[usize],
    compact: bool,
) -> Vec<usize> {
    let mut incoming: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    let mut outgoing: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    let mut indeg = vec![0usize; n];
    for &(a, b, len, _) in dag {
        incoming[b].push((a, len));
        outgoing[a].push((b, len));
        indeg[b] += 1;
    }
    // Topological order, the walk order first among the nodes ready.
    let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(usize, usize)>> = (0..n)
        .filter(|&i| indeg[i] == 0)
        .map(|i| std::cmp::Reverse((pos[i], i)))
        .collect();
    let mut topo = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse((_, i))) = heap.pop() {
        topo.push(i);
        for &(b, _) in &outgoing[i] {
            indeg[b] -= 1;
            if indeg[b] == 0 {
                heap.push(std::cmp::Reverse((pos[b], b)));
            }
        }
    }
    let mut rank = vec![0usize; n];
    for &i in &topo {
        rank[i] = incoming[i]
            .iter()
            .map(|&(a, len)| rank[a] + len)
            .max()
            .unwrap_or(0);
    }
    if !compact {
        // Sources pulled down next to their first successor (keeps marker boxes of backrefs
        // next to their node, and stray referrers near what they refer to).
        for i in 0..n {
            if incoming[i].is_empty() {
                if let Some(lim) = outgoing[i].iter().map(|&(b, len)| rank[b] - len).min() {
                    rank[i] = rank[i].max(lim);
                }
            }
        }
        return rank;
    }
    for _round in 0..8 {
        let mut moved = false;
        for &i in topo.iter().rev() {
            let (up, down) = (incoming[i].len(), outgoing[i].len());
            if down > up {
                if let Some(lim) = outgoing[i].iter().map(|&(b, len)| rank[b] - len).min() {
                    if lim > rank[i] {
                        rank[i] = lim;
                        moved = true;
                    }
                }
            } else if up > down {
                if let Some(lim) = incoming[i].iter().map(|&(a, len)| rank[a] + len).max() {
                    if lim < rank[i] {
                        rank[i] = lim;
                        moved = true;
                    }
                }
            }
        }
        if !moved {
            break;
        }
    }
    let low = rank.iter().copied().min().unwrap_or(0);
    for r in &mut rank {
        *r -= low;
    }
    rank
}

/// A layout placed as far as the ranks: the layered graph, the nodes with their places, and
/// the top and height of each rank.
type Candidate = (Layered, Vec<LaidNode>, Vec<f32>, Vec<f32>);

/// How the cycles of the graph are broken before ranking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Breaking {
    /// Every edge against the walk order (an object found later pointing to one found
    /// earlier) is turned round; ranks by longest path, sources pulled down.
    Walk,
    /// Only the edges a depth-first walk finds closing a cycle are turned round, as `dot`
    /// does; ranks by longest path, then shortened ([`assign_ranks`]).
    DepthFirst,
}

/// Whether `a` is to be drawn rather than `b`: a drawing under 0.9 times the area, with at
/// most 1.2 times the crossings (and 5 more), wins, and so does one with under 0.7 times the
/// crossings and at most 1.3 times the area; otherwise the first one tried stays.
fn better(a: &Layered, b: &Layered) -> bool {
    let (ca, cb) = (a.crossings as f32, b.crossings as f32);
    (a.area < 0.9 * b.area && ca <= 1.2 * cb + 5.0) || (ca < 0.7 * cb && a.area <= 1.3 * b.area)
}

struct Layered {
    v: Vec<Vertex>,
    ranks: Vec<Vec<usize>>,
    routes: Vec<Route>,
    /// Crossings between ranks of the order kept (after `order`).
    crossings: usize,
    /// Width times height of the placed vertices (after `place_y`).
    area: f32,
}

impl Layered {
    fn build(
        nodes: &[LaidNode],
        keys: &[f64],
        edges: &[PlainEdge],
        self_loops: &[(usize, Option<EdgeLabel>)],
        breaking: Breaking,
    ) -> Self {
        let n = nodes.len();
        // Topological order of the forward DAG: by key.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]).then(a.cmp(&b)));
        let mut pos = vec![0usize; n];
        for (p, &i) in order.iter().enumerate() {
            pos[i] = p;
        }
        // DAG edges: (top, bottom, minlen, reversed). Which edges are turned round depends on
        // `breaking`.
        let back: Vec<bool> = match breaking {
            Breaking::Walk => edges.iter().map(|e| pos[e.from] > pos[e.to]).collect(),
            Breaking::DepthFirst => dfs_back_edges(n, edges, &order),
        };
        let dag: Vec<(usize, usize, usize, bool)> = edges
            .iter()
            .zip(&back)
            .map(|(e, &b)| {
                if !b {
                    (e.from, e.to, e.minlen, false)
                } else {
                    (e.to, e.from, e.minlen, true)
                }
            })
            .collect();
        let mut rank = assign_ranks(n, &dag, &pos, breaking == Breaking::DepthFirst);
        wrap_wide_ranks(nodes, &dag, &mut rank, keys);
        let mut loops = vec![false; n];
        for (i, _) in self_loops {
            loops[*i] = true;
        }
        let mut v: Vec<Vertex> = (0..n)
            .map(|i| {
                let r = &nodes[i].rect;
                Vertex {
                    node: Some(i),
                    rank: rank[i],
                    left: r.w / 2.0,
                    right: r.w / 2.0 + if loops[i] { LOOP_ROOM } else { 0.0 },
                    height: r.h,
                    preds: Vec::new(),
                    succs: Vec::new(),
                    x: 0.0,
                    order_key: pos[i] as f64,
                }
            })
            .collect();
        let mut routes = Vec::with_capacity(dag.len());
        for (ei, &(a, b, _, reversed)) in dag.iter().enumerate() {
            let mut chain = vec![a];
            let mut label_vertex = None;
            let span = rank[b] - rank[a];
            let mid = rank[a] + span / 2;
            for r in rank[a] + 1..rank[b] {
                let id = v.len();
                let (mut left, mut right, mut height) = (DUMMY_HALF, DUMMY_HALF, 0.0);
                if r == mid {
                    if let Some(l) = &edges[ei].label {
                        let (_, w, h) = label_block(l);
                        right = w + 10.0;
                        left = DUMMY_HALF + 2.0;
                        height = h;
                        label_vertex = Some(id);
                    }
                }
                v.push(Vertex {
                    node: None,
                    rank: r,
                    left,
                    right,
                    height,
                    preds: Vec::new(),
                    succs: Vec::new(),
                    x: 0.0,
                    order_key: pos[a] as f64,
                });
                chain.push(id);
            }
            chain.push(b);
            for w in chain.windows(2) {
                v[w[0]].succs.push(w[1]);
                v[w[1]].preds.push(w[0]);
            }
            routes.push(Route {
                chain,
                reversed,
                label_vertex,
                edge: ei,
            });
        }
        let nranks = v.iter().map(|x| x.rank + 1).max().unwrap_or(0);
        let mut ranks: Vec<Vec<usize>> = vec![Vec::new(); nranks];
        let mut ids: Vec<usize> = (0..v.len()).collect();
        ids.sort_by(|&a, &b| v[a].order_key.total_cmp(&v[b].order_key).then(a.cmp(&b)));
        for i in ids {
            ranks[v[i].rank].push(i);
        }
        Layered {
            v,
            ranks,
            routes,
            crossings: 0,
            area: 0.0,
        }
    }

    fn crossings(&self, pos: &[usize]) -> usize {
        let mut total = 0;
        for r in 0..self.ranks.len().saturating_sub(1) {
            let mut pairs: Vec<(usize, usize)> = Vec::new();
            for &a in &self.ranks[r] {
                for &b in &self.v[a].succs {
                    pairs.push((pos[a], pos[b]));
                }
            }
            pairs.sort_unstable();
            // Count inversions of the second coordinate (merge sort).
            let mut seq: Vec<usize> = pairs.iter().map(|p| p.1).collect();
            total += inversions(&mut seq);
        }
        total
    }

    fn positions(&self) -> Vec<usize> {
        let mut pos = vec![0; self.v.len()];
        for rank in &self.ranks {
            for (p, &i) in rank.iter().enumerate() {
                pos[i] = p;
            }
        }
        pos
    }

    fn order(&mut self) {
        // Initial order: each rank by the mean position of predecessors, else by key.
        for r in 1..self.ranks.len() {
            self.sort_rank(r, true);
        }
        let mut best = self.ranks.clone();
        let mut best_cross = self.crossings(&self.positions());
        for sweep in 0..SWEEPS {
            if best_cross == 0 {
                break;
            }
            if sweep % 2 == 0 {
                for r in 1..self.ranks.len() {
                    self.sort_rank(r, true);
                }
            } else {
                for r in (0..self.ranks.len().saturating_sub(1)).rev() {
                    self.sort_rank(r, false);
                }
            }
            self.transpose();
            let c = self.crossings(&self.positions());
            if c < best_cross {
                best_cross = c;
                best = self.ranks.clone();
            }
        }
        self.ranks = best;
        self.crossings = best_cross;
    }

    /// Whether both have the same vertices on the same ranks (same cycles broken).
    fn same_ranks(&self, o: &Layered) -> bool {
        self.v.len() == o.v.len()
            && self.v.iter().zip(&o.v).all(|(a, b)| a.rank == b.rank)
            && self
                .routes
                .iter()
                .zip(&o.routes)
                .all(|(a, b)| a.reversed == b.reversed)
    }

    /// Width times height of the placed vertices.
    fn extent_area(&self, tops: &[f32], heights: &[f32]) -> f32 {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for vx in &self.v {
            lo = lo.min(vx.x - vx.left);
            hi = hi.max(vx.x + vx.right);
        }
        let h = match (tops.first(), tops.last(), heights.last()) {
            (Some(t0), Some(t1), Some(h1)) => t1 + h1 - t0,
            _ => 0.0,
        };
        (hi - lo).max(0.0) * h
    }

    /// Crossings between the edges of `u` and of `w` (both in one rank) when `u` is left of `w`.
    fn pair_crossings(&self, u: usize, w: usize, pos: &[usize]) -> usize {
        let mut c = 0;
        for nb in [
            (&self.v[u].preds, &self.v[w].preds),
            (&self.v[u].succs, &self.v[w].succs),
        ] {
            for &a in nb.0 {
                for &b in nb.1 {
                    if pos[a] > pos[b] {
                        c += 1;
                    }
                }
            }
        }
        c
    }

    /// Swap neighbours in a rank while that removes crossings (Gansner et al.'s transpose).
    fn transpose(&mut self) {
        let mut pos = self.positions();
        for _ in 0..8 {
            let mut improved = false;
            for r in 0..self.ranks.len() {
                for k in 1..self.ranks[r].len() {
                    let (u, w) = (self.ranks[r][k - 1], self.ranks[r][k]);
                    if self.pair_crossings(u, w, &pos) > self.pair_crossings(w, u, &pos) {
                        self.ranks[r].swap(k - 1, k);
                        pos[u] = k;
                        pos[w] = k - 1;
                        improved = true;
                    }
                }
            }
            if !improved {
                break;
            }
        }
    }

    fn sort_rank(&mut self, r: usize, down: bool) {
        let pos = self.positions();
        let rank = &self.ranks[r];
        let mut keyed: Vec<(f64, usize, usize)> = rank
            .iter()
            .enumerate()
            .map(|(p, &i)| {
                let nb = if down {
                    &self.v[i].preds
                } else {
                    &self.v[i].succs
                };
                let key = if nb.is_empty() {
                    p as f64
                } else {
                    nb.iter().map(|&j| pos[j] as f64).sum::<f64>() / nb.len() as f64
                };
                (key, p, i)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.ranks[r] = keyed.into_iter().map(|k| k.2).collect();
    }

    fn sep(&self, a: usize, b: usize) -> f32 {
        let gap = if self.v[a].node.is_some() && self.v[b].node.is_some() {
            NODE_SEP
        } else {
            NODE_SEP / 2.0
        };
        self.v[a].right + gap + self.v[b].left
    }

    fn pack(&mut self, r: usize, desired: &[f32]) {
        let rank = self.ranks[r].clone();
        let k = rank.len();
        if k == 0 {
            return;
        }
        let mut left = vec![0.0f32; k];
        let mut right = vec![0.0f32; k];
        for i in 0..k {
            left[i] = if i == 0 {
                desired[0]
            } else {
                desired[i].max(left[i - 1] + self.sep(rank[i - 1], rank[i]))
            };
        }
        for i in (0..k).rev() {
            right[i] = if i == k - 1 {
                desired[k - 1]
            } else {
                desired[i].min(right[i + 1] - self.sep(rank[i], rank[i + 1]))
            };
        }
        for i in 0..k {
            self.v[rank[i]].x = (left[i] + right[i]) / 2.0;
        }
    }

    /// Brandes and Köpf's coordinate assignment ("Fast and Simple Horizontal Coordinate
    /// Assignment", 2001): four alignments of vertices into vertical blocks with their median
    /// neighbours (up/down, leftmost/rightmost), each compacted; every vertex at the average
    /// of its two middle candidates. Long edges, whose dummies align, stay straight.
    fn place_x_bk(&mut self) {
        let nv = self.v.len();
        if nv == 0 {
            return;
        }
        let pos = self.positions();
        let dummy = |i: usize| self.v[i].node.is_none();
        // Type-1 conflicts: a segment between two dummies (part of a long edge) crossing
        // another segment; the other one gives way.
        let mut conflicts: rustc_hash::FxHashSet<(usize, usize)> = Default::default();
        for l in 1..self.ranks.len() {
            let (prev, layer) = (&self.ranks[l - 1], &self.ranks[l]);
            let mut k0 = 0usize;
            let mut scan = 0usize;
            for (l1, &v) in layer.iter().enumerate() {
                let inner = if dummy(v) {
                    self.v[v].preds.iter().copied().find(|&u| dummy(u))
                } else {
                    None
                };
                let k1 = inner.map_or(prev.len(), |u| pos[u]);
                if inner.is_some() || l1 + 1 == layer.len() {
                    for &u in &layer[scan..=l1] {
                        for &w in &self.v[u].preds {
                            let wp = pos[w];
                            if (wp < k0 || k1 < wp) && !(dummy(w) && dummy(u)) {
                                conflicts.insert((w, u));
                            }
                        }
                    }
                    scan = l1 + 1;
                    k0 = k1;
                }
            }
        }
        let mut candidates: Vec<[f32; 4]> = vec![[0.0; 4]; nv];
        let mut widths = [0.0f32; 4];
        let mut mins = [0.0f32; 4];
        let mut maxs = [0.0f32; 4];
        for dir in 0..4 {
            let down = dir < 2; // align with the neighbours above
            let left = dir % 2 == 0; // leftmost median first
                                     // Layers and their order as this direction sees them.
            let mut layers: Vec<Vec<usize>> = self.ranks.clone();
            if !down {
                layers.reverse();
            }
            if !left {
                for l in &mut layers {
                    l.reverse();
                }
            }
            let mut lpos = vec![0usize; nv];
            for l in &layers {
                for (p, &i) in l.iter().enumerate() {
                    lpos[i] = p;
                }
            }
            let mut root: Vec<usize> = (0..nv).collect();
            let mut align: Vec<usize> = (0..nv).collect();
            for l in &layers {
                let mut r: isize = -1;
                for &v in l {
                    let mut nb: Vec<usize> = if down {
                        self.v[v].preds.clone()
                    } else {
                        self.v[v].succs.clone()
                    };
                    if nb.is_empty() {
                        continue;
                    }
                    nb.sort_by_key(|&u| lpos[u]);
                    nb.dedup();
                    let d = nb.len();
                    let meds = if d % 2 == 1 {
                        vec![nb[d / 2]]
                    } else {
                        vec![nb[d / 2 - 1], nb[d / 2]]
                    };
                    for m in meds {
                        if align[v] != v {
                            break;
                        }
                        let key = if down { (m, v) } else { (v, m) };
                        if !conflicts.contains(&key) && r < lpos[m] as isize {
                            align[m] = v;
                            root[v] = root[m];
                            align[v] = root[v];
                            r = lpos[m] as isize;
                        }
                    }
                }
            }
            // Compaction: a graph of blocks, separated by the vertices' extents.
            let sep = |a: usize, b: usize| {
                if left {
                    self.sep(a, b)
                } else {
                    self.sep(b, a)
                }
            };
            let mut block_preds: Vec<Vec<(usize, f32)>> = vec![Vec::new(); nv];
            let mut block_succs: Vec<Vec<(usize, f32)>> = vec![Vec::new(); nv];
            for l in &layers {
                for w in l.windows(2) {
                    let (a, b) = (root[w[0]], root[w[1]]);
                    let d = sep(w[0], w[1]);
                    block_preds[b].push((a, d));
                    block_succs[a].push((b, d));
                }
            }
            // Topological order of the blocks (they form a DAG when the alignment is valid).
            let roots: Vec<usize> = (0..nv).filter(|&i| root[i] == i).collect();
            let mut indeg = vec![0usize; nv];
            for &b in &roots {
                indeg[b] = block_preds[b].len();
            }
            let mut queue: Vec<usize> = roots.iter().copied().filter(|&b| indeg[b] == 0).collect();
            let mut topo = Vec::with_capacity(roots.len());
            while let Some(b) = queue.pop() {
                topo.push(b);
                for &(c, _) in &block_succs[b] {
                    indeg[c] -= 1;
                    if indeg[c] == 0 {
                        queue.push(c);
                    }
                }
            }
            if topo.len() != roots.len() {
                // Cannot happen for a valid alignment; keep the old placement rather than fail.
                return self.place_x();
            }
            let mut xs = vec![0.0f32; nv];
            for &b in &topo {
                xs[b] = block_preds[b]
                    .iter()
                    .map(|&(a, d)| xs[a] + d)
                    .fold(0.0f32, f32::max);
            }
            // Pull blocks towards their right neighbours where there is room.
            for &b in topo.iter().rev() {
                if let Some(m) = block_succs[b]
                    .iter()
                    .map(|&(c, d)| xs[c] - d)
                    .reduce(f32::min)
                {
                    if m > xs[b] {
                        xs[b] = m;
                    }
                }
            }
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for i in 0..nv {
                let x = xs[root[i]];
                let x = if left { x } else { -x };
                candidates[i][dir] = x;
                lo = lo.min(x - self.v[i].left);
                hi = hi.max(x + self.v[i].right);
            }
            widths[dir] = hi - lo;
            mins[dir] = lo;
            maxs[dir] = hi;
        }
        // Align the four to the narrowest, then take the average of the two middle values.
        let best = (0..4)
            .min_by(|&a, &b| widths[a].total_cmp(&widths[b]))
            .unwrap_or(0);
        let mut shift = [0.0f32; 4];
        for dir in 0..4 {
            shift[dir] = if dir % 2 == 0 {
                mins[best] - mins[dir]
            } else {
                maxs[best] - maxs[dir]
            };
        }
        for (i, cand) in candidates.iter().enumerate() {
            let mut c = *cand;
            for (x, s) in c.iter_mut().zip(shift) {
                *x += s;
            }
            c.sort_by(f32::total_cmp);
            self.v[i].x = (c[1] + c[2]) / 2.0;
        }
        // The average of valid placements keeps every separation; rounding may not: make sure.
        for r in 0..self.ranks.len() {
            let rank = self.ranks[r].clone();
            for k in 1..rank.len() {
                let need = self.v[rank[k - 1]].x + self.sep(rank[k - 1], rank[k]);
                if self.v[rank[k]].x < need {
                    self.v[rank[k]].x = need;
                }
            }
        }
        // Aligned blocks can make a drawing far wider than its widest rank (fans under
        // different parents side by side): then the median placement, which packs each rank
        // and bends long edges, is kept if it is much narrower.
        let aligned: Vec<f32> = self.v.iter().map(|x| x.x).collect();
        let wide = self.width();
        self.place_x();
        if self.width() >= NARROWER * wide {
            for (vx, x) in self.v.iter_mut().zip(aligned) {
                vx.x = x;
            }
        }
    }

    /// Width of the placed vertices.
    fn width(&self) -> f32 {
        let (lo, hi) = self
            .v
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x.x - x.left), hi.max(x.x + x.right))
            });
        (hi - lo).max(0.0)
    }

    fn place_x(&mut self) {
        for r in 0..self.ranks.len() {
            let rank = self.ranks[r].clone();
            let mut x = 0.0;
            let mut desired = Vec::with_capacity(rank.len());
            for (p, &i) in rank.iter().enumerate() {
                if p > 0 {
                    x += self.sep(rank[p - 1], i);
                }
                desired.push(x);
            }
            self.pack(r, &desired);
        }
        for it in 0..16 {
            let down = it % 2 == 0;
            let order: Vec<usize> = if down {
                (1..self.ranks.len()).collect()
            } else {
                (0..self.ranks.len().saturating_sub(1)).rev().collect()
            };
            for r in order {
                let desired: Vec<f32> = self.ranks[r]
                    .iter()
                    .map(|&i| {
                        let nb = if down {
                            &self.v[i].preds
                        } else {
                            &self.v[i].succs
                        };
                        let mut xs: Vec<f32> = nb.iter().map(|&j| self.v[j].x).collect();
                        if xs.is_empty() {
                            return self.v[i].x;
                        }
                        xs.sort_by(f32::total_cmp);
                        let m = xs.len();
                        // Dummies follow their edge strictly; real nodes the median.
                        if m % 2 == 1 {
                            xs[m / 2]
                        } else {
                            (xs[m / 2 - 1] + xs[m / 2]) / 2.0
                        }
                    })
                    .collect();
                self.pack(r, &desired);
            }
        }
    }

    /// The least gap between two ranks, and the unit of how far sideways an edge goes before
    /// it runs flat ([`FLAT`]).
    fn base_gap(&self) -> f32 {
        if self.routes.iter().any(|r| r.label_vertex.is_some()) {
            18.0
        } else {
            36.0
        }
    }

    /// Rank bands: top and height of each. Also sets the nodes' rectangles.
    fn place_y(&mut self, nodes: &mut [LaidNode]) -> (Vec<f32>, Vec<f32>) {
        let gap = self.base_gap();
        // With labels, object edges span two ranks, the labels in the middle one: gaps half
        // as tall again as the label's gaps (`dot` packs its label ranks as tightly).
        let least_gap = if gap < 36.0 { LABEL_GAP } else { gap };
        let mut tops = Vec::with_capacity(self.ranks.len());
        let mut heights = Vec::with_capacity(self.ranks.len());
        // The gaps are sized for the tracks `route` will lay, from the same ports.
        for vx in &self.v {
            if let Some(n) = vx.node {
                nodes[n].rect.x = vx.x - vx.left;
            }
        }
        let (start_x, end_x) = self.ports(nodes);
        let by_gap = self.flat_pieces(&start_x, &end_x);
        let mut y = 0.0;
        for (r, rank) in self.ranks.iter().enumerate() {
            let h = rank
                .iter()
                .map(|&i| self.v[i].height)
                .fold(0.0f32, f32::max);
            // Each edge that goes far sideways gets a track of its own in the gap (see
            // `route`): room for them, TRACK_SEP apart.
            let tracks = match by_gap.get(r) {
                Some(segs) if !segs.is_empty() => {
                    let mut segs = segs.clone();
                    segs.sort_by(|p, q| {
                        (p.0, p.1, p.2, p.3)
                            .partial_cmp(&(q.0, q.1, q.2, q.3))
                            .unwrap_or(std::cmp::Ordering::Equal)
                    });
                    let plain: Vec<(bool, f32, f32)> =
                        segs.iter().map(|s| (s.0, s.1, s.2)).collect();
                    (track_levels(&plain).1 + 1) as f32 * TRACK_SEP
                }
                _ => 0.0,
            };
            tops.push(y);
            heights.push(h);
            y += h + least_gap.max(tracks);
        }
        for vx in &self.v {
            if let Some(n) = vx.node {
                let r = &mut nodes[n].rect;
                r.x = vx.x - vx.left;
                r.y = tops[vx.rank] + (heights[vx.rank] - r.h) / 2.0;
            }
        }
        (tops, heights)
    }

    /// The x of each route's two ports: the edges leaving a node's bottom (entering its top)
    /// are spread along that side in the order of the x of their next vertex, so edges into a
    /// hub do not meet. Needs the nodes' x (`rect.x`) placed.
    fn ports(&self, nodes: &[LaidNode]) -> (Vec<f32>, Vec<f32>) {
        let n = nodes.len();
        let mut bottom_ports: Vec<Vec<(f32, usize)>> = vec![Vec::new(); n];
        let mut top_ports: Vec<Vec<(f32, usize)>> = vec![Vec::new(); n];
        for (ri, route) in self.routes.iter().enumerate() {
            let c = &route.chain;
            let top = self.v[c[0]].node.expect("chains start at a node");
            let bottom = self.v[c[c.len() - 1]].node.expect("chains end at a node");
            bottom_ports[top].push((self.v[c[1]].x, ri));
            top_ports[bottom].push((self.v[c[c.len() - 2]].x, ri));
        }
        let spread = |ports: &mut Vec<(f32, usize)>, rect: &Rect, shape: Shape| {
            ports.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let k = ports.len();
            // Round shapes keep their ports near the middle, where the outline is flat.
            let usable = match shape {
                Shape::Box | Shape::Plain => (rect.w - 12.0).max(0.0),
                _ => rect.w * 0.4,
            };
            let step = if k > 1 {
                (usable / (k - 1) as f32).min(16.0)
            } else {
                0.0
            };
            ports
                .iter()
                .enumerate()
                .map(|(i, &(_, ri))| (ri, rect.cx() + (i as f32 - (k as f32 - 1.0) / 2.0) * step))
                .collect::<Vec<_>>()
        };
        let mut start_x = vec![0.0f32; self.routes.len()];
        let mut end_x = vec![0.0f32; self.routes.len()];
        for i in 0..n {
            let (r, sh) = (&nodes[i].rect, nodes[i].style.shape);
            for (ri, x) in spread(&mut bottom_ports[i], r, sh) {
                start_x[ri] = x;
            }
            for (ri, x) in spread(&mut top_ports[i], r, sh) {
                end_x[ri] = x;
            }
        }
        (start_x, end_x)
    }

    /// The pieces of edges that run flat on a track, by gap (the rank above it).
    fn flat_pieces(&self, start_x: &[f32], end_x: &[f32]) -> Vec<Vec<FlatPiece>> {
        let base = self.base_gap();
        let mut by_gap: Vec<Vec<FlatPiece>> = vec![Vec::new(); self.ranks.len()];
        for (ri, route) in self.routes.iter().enumerate() {
            let c = &route.chain;
            for k in 0..c.len() - 1 {
                let x0 = if k == 0 { start_x[ri] } else { self.v[c[k]].x };
                let x1 = if k + 2 == c.len() {
                    end_x[ri]
                } else {
                    self.v[c[k + 1]].x
                };
                if (x1 - x0).abs() > FLAT * base {
                    let (right, a, b) = flat_segment(x0, x1);
                    by_gap[self.v[c[k]].rank].push((right, a, b, ri, k));
                }
            }
        }
        by_gap
    }

    fn route(
        &self,
        nodes: &[LaidNode],
        edges: &[PlainEdge],
        tops: &[f32],
        heights: &[f32],
    ) -> Vec<LaidEdge> {
        let n = nodes.len();
        let (start_x, end_x) = self.ports(nodes);
        // Labels beside their label vertex.
        let labels: Vec<Option<LaidLabel>> = self
            .routes
            .iter()
            .map(|route| {
                let lv = route.label_vertex?;
                let l = edges[route.edge].label.as_ref()?;
                let (lines, w, h) = label_block(l);
                let vx = &self.v[lv];
                Some(LaidLabel {
                    rect: Rect {
                        x: vx.x + DUMMY_HALF + 3.0,
                        y: tops[vx.rank] + (heights[vx.rank] - h) / 2.0,
                        w,
                        h,
                    },
                    lines,
                    font_size: EDGE_FONT,
                })
            })
            .collect();
        // What an edge must not cross, by rank: nodes and labels (tagged to skip an edge's own).
        let mut obstacles: Vec<Vec<(Rect, usize)>> = vec![Vec::new(); self.ranks.len()];
        for vx in &self.v {
            if let Some(i) = vx.node {
                obstacles[vx.rank].push((nodes[i].rect, i));
            }
        }
        for (ri, route) in self.routes.iter().enumerate() {
            if let (Some(lv), Some(l)) = (route.label_vertex, &labels[ri]) {
                obstacles[self.v[lv].rank].push((l.rect, n + ri));
            }
        }
        let clear = |points: &[(f32, f32)], own: [usize; 3]| -> bool {
            sample_points_every(points, 2.0).into_iter().all(|p| {
                let r = match tops.partition_point(|&t| t <= p.1) {
                    0 => return true,
                    k => k - 1,
                };
                if p.1 > tops[r] + heights[r] {
                    return true;
                }
                obstacles[r]
                    .iter()
                    .all(|(rect, id)| own.contains(id) || !rect.contains(p, -2.0))
            })
        };
        // Tracks: an edge that goes far sideways in a gap runs flat there, at a height of its
        // own, so that the edges of a fan do not lie on top of one another. Of the edges that
        // go left in a gap, the one that ends furthest left runs highest (and so on), which
        // nests them without crossings; the same mirrored for those going right.
        let mut by_gap = self.flat_pieces(&start_x, &end_x);
        let mut tracks: rustc_hash::FxHashMap<(usize, usize), f32> = Default::default();
        for (r, segs) in by_gap.iter_mut().enumerate() {
            if r + 1 >= self.ranks.len() {
                continue;
            }
            let (top, bottom) = (tops[r] + heights[r], tops[r + 1]);
            segs.sort_by(|p, q| {
                (p.0, p.1, p.2, p.3)
                    .partial_cmp(&(q.0, q.1, q.2, q.3))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            let plain: Vec<(bool, f32, f32)> = segs.iter().map(|s| (s.0, s.1, s.2)).collect();
            let (levels, count) = track_levels(&plain);
            let step = (bottom - top) / (count + 1) as f32;
            for (s, level) in segs.iter().zip(levels) {
                let y = top + step * (level + 1) as f32;
                tracks.insert((s.3, s.4), y);
            }
        }
        let mut out = Vec::with_capacity(self.routes.len());
        for (ri, route) in self.routes.iter().enumerate() {
            let c = &route.chain;
            let first = &self.v[c[0]];
            let last = &self.v[c[c.len() - 1]];
            let (top_node, bottom_node) = (first.node.expect("node"), last.node.expect("node"));
            let tr = &nodes[top_node].rect;
            let br = &nodes[bottom_node].rect;
            let own = [top_node, bottom_node, n + ri];
            // The x of each vertex of the chain (ports at the two ends).
            let xs: Vec<f32> = (0..c.len())
                .map(|k| {
                    if k == 0 {
                        start_x[ri]
                    } else if k == c.len() - 1 {
                        end_x[ri]
                    } else {
                        self.v[c[k]].x
                    }
                })
                .collect();
            let track = |k: usize| tracks.get(&(ri, k)).copied();
            // A smooth spline through the ports and the middles of the dummies.
            let mut through = vec![(xs[0], tr.bottom())];
            let mut flat = Vec::with_capacity(c.len());
            for (k, &d) in c.iter().enumerate().take(c.len() - 1).skip(1) {
                let dv = &self.v[d];
                flat.push(track(k - 1));
                through.push((xs[k], tops[dv.rank] + heights[dv.rank] / 2.0));
            }
            flat.push(track(c.len() - 2));
            through.push((xs[c.len() - 1], br.y));
            // Through the dummies at the slope of the edge's line when that clears the
            // nodes, else steeper (straight down through the middle of each band).
            let mut points = Vec::new();
            for inner in [4.0f32, 0.6] {
                points = spline(
                    &through,
                    |i, s| {
                        if i == 0 || i == through.len() - 1 {
                            s.clamp(-2.5, 2.5)
                        } else {
                            s.clamp(-inner, inner)
                        }
                    },
                    &flat,
                );
                if clear(&points, own) {
                    break;
                }
            }
            if !clear(&points, own) {
                // Safe: straight down through each band (the space of the dummies is
                // reserved), curves only in the empty gaps between bands.
                let mut through = vec![(xs[0], tr.bottom())];
                let mut flat = Vec::new();
                let band_bottom = tops[first.rank] + heights[first.rank];
                if band_bottom > tr.bottom() + 0.5 {
                    through.push((xs[0], band_bottom));
                    flat.push(None);
                }
                for (k, &d) in c.iter().enumerate().take(c.len() - 1).skip(1) {
                    let dv = &self.v[d];
                    flat.push(track(k - 1));
                    through.push((xs[k], tops[dv.rank]));
                    flat.push(None);
                    through.push((xs[k], tops[dv.rank] + heights[dv.rank]));
                }
                flat.push(track(c.len() - 2));
                if br.y > tops[last.rank] + 0.5 {
                    through.push((xs[c.len() - 1], tops[last.rank]));
                    flat.push(None);
                }
                through.push((xs[c.len() - 1], br.y));
                points = spline(&through, |_, _| 0.0, &flat);
            }
            if route.reversed {
                points.reverse();
            }
            let e = &edges[route.edge];
            out.push(LaidEdge {
                from: e.from,
                to: e.to,
                points,
                color: e.color,
                dotted: e.dotted,
                label: labels[ri].clone(),
                self_loop: false,
            });
        }
        out
    }
}

/// A flat piece of an edge in a gap: [`flat_segment`], the route and the piece's index in it.
type FlatPiece = (bool, f32, f32, usize, usize);

/// A flat piece of an edge from `x0` to `x1`, as sorted for [`track_levels`]: going right or
/// not, then the far end first (mirrored for those going right).
fn flat_segment(x0: f32, x1: f32) -> (bool, f32, f32) {
    if x1 > x0 {
        (true, -x1, -x0)
    } else {
        (false, x1, x0)
    }
}

/// The level (0 highest) of the track of each flat piece of edge in one gap, given sorted, and
/// how many levels there are. Pieces that share some x are on different levels; of two going
/// the same way, the one that ends further out is higher, which nests them without
/// crossings. Pieces that share no x may share a level.
fn track_levels(segs: &[(bool, f32, f32)]) -> (Vec<usize>, usize) {
    // Those going left and those going right interleaved, each side in its order.
    let count = |side: bool| segs.iter().filter(|s| s.0 == side).count().max(1) as f32;
    let (nl, nr) = (count(false), count(true));
    let mut seen = [0usize; 2];
    let mut keyed: Vec<(f32, usize)> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let k = seen[s.0 as usize] as f32 + 0.5;
            seen[s.0 as usize] += 1;
            (if s.0 { k / nr } else { k / nl }, i)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let span = |s: &(bool, f32, f32)| {
        let (lo, hi) = if s.0 { (-s.2, -s.1) } else { (s.1, s.2) };
        (lo - TRACK_SEP, hi + TRACK_SEP)
    };
    let mut levels = vec![0usize; segs.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(segs.len());
    let mut count = 0;
    for &(_, j) in &keyed {
        let (lo, hi) = span(&segs[j]);
        let level = placed
            .iter()
            .filter(|&&i| {
                let (a, b) = span(&segs[i]);
                a < hi && lo < b
            })
            .map(|&i| levels[i] + 1)
            .max()
            .unwrap_or(0);
        levels[j] = level;
        count = count.max(level + 1);
        placed.push(j);
    }
    (levels, count)
}

/// As [`hermite`], but a piece with a track (a height in the gap between two ranks) goes down
/// to it, along it and down again, with round corners (vertical at both ends).
fn spline(
    through: &[(f32, f32)],
    limit: impl Fn(usize, f32) -> f32,
    tracks: &[Option<f32>],
) -> Vec<(f32, f32)> {
    let vertical = |i: usize| {
        (i > 0 && tracks.get(i - 1).is_some_and(|t| t.is_some()))
            || tracks.get(i).is_some_and(|t| t.is_some())
    };
    let smooth = hermite(through, |i, s| if vertical(i) { 0.0 } else { limit(i, s) });
    if tracks.iter().all(|t| t.is_none()) {
        return smooth;
    }
    let line = push_line;
    let mut out = vec![through[0]];
    for i in 0..through.len() - 1 {
        let (a, b) = (through[i], through[i + 1]);
        match tracks.get(i).copied().flatten() {
            None => out.extend_from_slice(&smooth[3 * i + 1..3 * i + 4]),
            Some(ty) => {
                let sgn = if b.0 >= a.0 { 1.0 } else { -1.0 };
                let dx = (b.0 - a.0).abs();
                // At a port (the first or last point) the edge goes to and from its track
                // slanting (SLANT sideways per unit down, all edges of a gap alike, so the
                // slants of nested tracks run parallel); after a dummy, vertically.
                let (h1, h2) = ((ty - a.1).max(0.0), (b.1 - ty).max(0.0));
                let mut d1 = if i == 0 { h1 * SLANT } else { 0.0 };
                let mut d2 = if i + 2 == through.len() {
                    h2 * SLANT
                } else {
                    0.0
                };
                if d1 + d2 > 0.8 * dx {
                    let f = 0.8 * dx / (d1 + d2);
                    d1 *= f;
                    d2 *= f;
                }
                let c1 = (a.0 + sgn * d1, ty);
                let c2 = (b.0 - sgn * d2, ty);
                let flat_len = (c2.0 - c1.0).abs();
                let r1 = (dist(a, c1) * 0.6).min(flat_len / 3.0).min(dx / 3.0);
                let r2 = (dist(c2, b) * 0.6).min(flat_len / 3.0).min(dx / 3.0);
                corner(&mut out, a, c1, (c2.0, ty), r1);
                corner(&mut out, c1, c2, b, r2);
                line(&mut out, b);
            }
        }
    }
    out
}

fn dist(a: (f32, f32), b: (f32, f32)) -> f32 {
    ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt()
}

/// From the last point of `out` (on the line from `from` to `at`) a line to `r` before the
/// corner `at`, then a round corner (one cubic) to `r` after it on the way to `to`.
fn corner(out: &mut Vec<(f32, f32)>, from: (f32, f32), at: (f32, f32), to: (f32, f32), r: f32) {
    let unit = |p: (f32, f32), q: (f32, f32)| {
        let d = dist(p, q);
        if d < 1e-4 {
            (0.0, 0.0)
        } else {
            ((q.0 - p.0) / d, (q.1 - p.1) / d)
        }
    };
    let (u, v) = (unit(from, at), unit(at, to));
    let r = r.max(0.0);
    let q1 = (at.0 - u.0 * r, at.1 - u.1 * r);
    let q2 = (at.0 + v.0 * r, at.1 + v.1 * r);
    push_line(out, q1);
    const K: f32 = 0.5523;
    if dist(q1, q2) < 1e-3 {
        return;
    }
    out.push((q1.0 + u.0 * r * K, q1.1 + u.1 * r * K));
    out.push((q2.0 - v.0 * r * K, q2.1 - v.1 * r * K));
    out.push(q2);
}

/// A straight piece from the last point of `out` to `b`, as one cubic.
fn push_line(out: &mut Vec<(f32, f32)>, b: (f32, f32)) {
    let a = *out.last().expect("started");
    if (a.0 - b.0).abs() + (a.1 - b.1).abs() < 1e-3 {
        return;
    }
    out.push((a.0 + (b.0 - a.0) / 3.0, a.1 + (b.1 - a.1) / 3.0));
    out.push((a.0 + 2.0 * (b.0 - a.0) / 3.0, a.1 + 2.0 * (b.1 - a.1) / 3.0));
    out.push(b);
}

/// A spline through `through` (y increasing), as cubic Bézier control points. The tangent at
/// each point is given as a slope dx/dy: Catmull-Rom's, passed through `limit(i, slope)`.
fn hermite(through: &[(f32, f32)], limit: impl Fn(usize, f32) -> f32) -> Vec<(f32, f32)> {
    let k = through.len();
    let slope = |a: (f32, f32), b: (f32, f32)| {
        let dy = b.1 - a.1;
        if dy.abs() < 1e-3 {
            0.0
        } else {
            (b.0 - a.0) / dy
        }
    };
    let slopes: Vec<f32> = (0..k)
        .map(|i| {
            let s = if i == 0 {
                slope(through[0], through[1.min(k - 1)])
            } else if i == k - 1 {
                slope(through[k - 2], through[k - 1])
            } else {
                slope(through[i - 1], through[i + 1])
            };
            limit(i, s)
        })
        .collect();
    let mut out = Vec::with_capacity(3 * k);
    out.push(through[0]);
    for i in 0..k.saturating_sub(1) {
        let (a, b) = (through[i], through[i + 1]);
        let dy = (b.1 - a.1) / 3.0;
        out.push((a.0 + slopes[i] * dy, a.1 + dy));
        out.push((b.0 - slopes[i + 1] * dy, b.1 - dy));
        out.push(b);
    }
    out
}

fn inversions(seq: &mut [usize]) -> usize {
    if seq.len() < 2 {
        return 0;
    }
    let mid = seq.len() / 2;
    let mut count = {
        let (a, b) = seq.split_at_mut(mid);
        inversions(a) + inversions(b)
    };
    let mut merged = Vec::with_capacity(seq.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < seq.len() {
        if seq[i] <= seq[j] {
            merged.push(seq[i]);
            i += 1;
        } else {
            merged.push(seq[j]);
            count += mid - i;
            j += 1;
        }
    }
    merged.extend_from_slice(&seq[i..mid]);
    merged.extend_from_slice(&seq[j..]);
    seq.copy_from_slice(&merged);
    count
}

/// Shift everything so the picture starts at the margin, and size it.
fn finish(mut nodes: Vec<LaidNode>, mut edges: Vec<LaidEdge>) -> Layout {
    let mut min_x = f32::INFINITY;
    let mut min_y = f32::INFINITY;
    let mut max_x = f32::NEG_INFINITY;
    let mut max_y = f32::NEG_INFINITY;
    let mut grow = |x: f32, y: f32| {
        min_x = min_x.min(x);
        min_y = min_y.min(y);
        max_x = max_x.max(x);
        max_y = max_y.max(y);
    };
    for n in &nodes {
        grow(n.rect.x, n.rect.y);
        grow(n.rect.right(), n.rect.bottom());
    }
    for e in &edges {
        for &(x, y) in &e.points {
            grow(x, y);
        }
        if let Some(l) = &e.label {
            grow(l.rect.x, l.rect.y);
            grow(l.rect.right(), l.rect.bottom());
        }
    }
    if !min_x.is_finite() {
        return Layout {
            width: 2.0 * MARGIN,
            height: 2.0 * MARGIN,
            nodes,
            edges,
        };
    }
    let (dx, dy) = (MARGIN - min_x, MARGIN - min_y);
    for n in &mut nodes {
        n.rect.x += dx;
        n.rect.y += dy;
    }
    for e in &mut edges {
        for p in &mut e.points {
            p.0 += dx;
            p.1 += dy;
        }
        if let Some(l) = &mut e.label {
            l.rect.x += dx;
            l.rect.y += dy;
        }
    }
    Layout {
        width: (max_x - min_x + 2.0 * MARGIN).ceil(),
        height: (max_y - min_y + 2.0 * MARGIN).ceil(),
        nodes,
        edges,
    }
}

/// Points along an edge's route, for drawing checks and tests: each cubic piece sampled at
/// `per_curve` points or more, at most about 2 points apart.
pub fn sample_route(e: &LaidEdge, per_curve: usize) -> Vec<(f32, f32)> {
    sample_points_every_n(&e.points, 2.0, per_curve)
}

/// Points along a piecewise cubic given by its control points (3k+1 of them).
pub fn sample_points(p: &[(f32, f32)], per_curve: usize) -> Vec<(f32, f32)> {
    let mut out = Vec::with_capacity(p.len() / 3 * per_curve + 1);
    if let Some(&first) = p.first() {
        out.push(first);
    }
    let mut i = 0;
    while i + 3 < p.len() {
        for k in 1..=per_curve {
            out.push(cubic(
                p[i],
                p[i + 1],
                p[i + 2],
                p[i + 3],
                k as f32 / per_curve as f32,
            ));
        }
        i += 3;
    }
    out
}

/// Points along a piecewise cubic, at most about `step` apart (a piece is no longer than its
/// control polygon).
pub fn sample_points_every(p: &[(f32, f32)], step: f32) -> Vec<(f32, f32)> {
    sample_points_every_n(p, step, 1)
}

fn sample_points_every_n(p: &[(f32, f32)], step: f32, least: usize) -> Vec<(f32, f32)> {
    let mut out = Vec::new();
    if let Some(&first) = p.first() {
        out.push(first);
    }
    let dist = |a: (f32, f32), b: (f32, f32)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    let mut i = 0;
    while i + 3 < p.len() {
        let len = dist(p[i], p[i + 1]) + dist(p[i + 1], p[i + 2]) + dist(p[i + 2], p[i + 3]);
        let k = ((len / step).ceil() as usize).clamp(least.max(1), 10_000);
        for j in 1..=k {
            out.push(cubic(
                p[i],
                p[i + 1],
                p[i + 2],
                p[i + 3],
                j as f32 / k as f32,
            ));
        }
        i += 3;
    }
    out
}

fn cubic(p0: (f32, f32), p1: (f32, f32), p2: (f32, f32), p3: (f32, f32), t: f32) -> (f32, f32) {
    let u = 1.0 - t;
    let a = u * u * u;
    let b = 3.0 * u * u * t;
    let c = 3.0 * u * t * t;
    let d = t * t * t;
    (
        a * p0.0 + b * p1.0 + c * p2.0 + d * p3.0,
        a * p0.1 + b * p1.1 + c * p2.1 + d * p3.1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(from: usize, to: usize) -> PlainEdge {
        PlainEdge {
            from,
            to,
            label: None,
            color: [0, 0, 0],
            dotted: false,
            minlen: 1,
        }
    }

    #[test]
    fn depth_first_turns_round_only_edges_that_close_a_cycle() {
        // 0 -> 1 -> 2 -> 0 is a cycle; 3 -> 1 is not in it, though 3 comes after 1.
        let edges = [plain(0, 1), plain(1, 2), plain(2, 0), plain(3, 1)];
        let back = dfs_back_edges(4, &edges, &[0, 1, 2, 3]);
        assert_eq!(back, vec![false, false, true, false]);
    }

    #[test]
    fn ranks_are_shortened() {
        // 0 -> 1 -> 2 -> 3 -> 4, and 5 -> 4, 5 -> 3: 5 has two edges below and none above,
        // so it moves down to just above 3 (rank 2), not rank 0.
        let dag = [
            (0, 1, 1, false),
            (1, 2, 1, false),
            (2, 3, 1, false),
            (3, 4, 1, false),
            (5, 4, 1, false),
            (5, 3, 1, false),
        ];
        let pos = [0, 1, 2, 3, 4, 5];
        assert_eq!(assign_ranks(6, &dag, &pos, true), vec![0, 1, 2, 3, 4, 2]);
        // 5 under 0 with two edges below, to 3 and 4: down to rank 2, next to 3 (without the
        // shortening it would stay at rank 1, under 0).
        let dag = [
            (0, 1, 1, false),
            (1, 2, 1, false),
            (2, 3, 1, false),
            (3, 4, 1, false),
            (0, 5, 1, false),
            (5, 3, 1, false),
            (5, 4, 1, false),
        ];
        let pos = [0, 1, 2, 3, 4, 5];
        assert_eq!(assign_ranks(6, &dag, &pos, true)[5], 2);
        assert_eq!(assign_ranks(6, &dag, &pos, false)[5], 1);
    }
}
