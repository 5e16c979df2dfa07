//! A drawable object graph: what `show_refs`, `show_backrefs` and `show_chain` produce.
//!
//! A [`View`] records the breadth-first walk exactly as objgraph performs it, so that the DOT
//! writer ([`crate::dot`]) can reproduce objgraph's text byte for byte and the native renderer
//! ([`crate::render`]) can draw the same picture without Graphviz.
//!
//! `visits` is the walk order. The same object may be visited more than once (objgraph does that
//! when the caller passes the same object twice), so a visit refers to its object by `key`, the
//! DOT node id (`o<address>`); renderers merge visits that share a key.

/// A colour in Graphviz's HSV notation, each component in `0.0..=1.0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hsv {
    pub h: f64,
    pub s: f64,
    pub v: f64,
}

impl Hsv {
    pub const fn new(h: f64, s: f64, v: f64) -> Self {
        Hsv { h, s, v }
    }

    /// Linear interpolation between two colours at `depth / max_depth`, as objgraph does.
    pub fn gradient(start: Hsv, end: Hsv, depth: i64, max_depth: i64) -> Hsv {
        if max_depth == 0 {
            return start;
        }
        let f = depth as f64 / max_depth as f64;
        Hsv {
            h: start.h * (1.0 - f) + end.h * f,
            s: start.s * (1.0 - f) + end.s * f,
            v: start.v * (1.0 - f) + end.v * f,
        }
    }

    /// Convert to 8-bit RGB.
    pub fn to_rgb(self) -> [u8; 3] {
        let h = (self.h.rem_euclid(1.0)) * 6.0;
        let s = self.s.clamp(0.0, 1.0);
        let v = self.v.clamp(0.0, 1.0);
        let i = h.floor();
        let f = h - i;
        let p = v * (1.0 - s);
        let q = v * (1.0 - s * f);
        let t = v * (1.0 - s * (1.0 - f));
        let (r, g, b) = match i as i64 % 6 {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
        let c = |x: f64| (x * 255.0).round().clamp(0.0, 255.0) as u8;
        [c(r), c(g), c(b)]
    }
}

const WHITE: Hsv = Hsv::new(0.0, 0.0, 1.0);
const GREY: Hsv = Hsv::new(0.0, 0.0, 0.3);
/// Start and end of the gradient of objgraph's "N more references" markers.
pub const MARKER_RED: Hsv = Hsv::new(0.0, 1.0, 1.0);
pub const MARKER_DARK_RED: Hsv = Hsv::new(0.0, 1.0, 0.3);

/// objgraph's node colour: a white-to-grey gradient by depth, green for modules, blue for
/// highlighted objects.
pub fn node_fill(depth: i64, max_depth: i64, module: bool, highlighted: bool) -> Hsv {
    let mut c = Hsv::gradient(WHITE, GREY, depth, max_depth);
    if module {
        c.h = 0.3;
        c.s = 1.0;
    }
    if highlighted {
        c.h = 0.6;
        c.s = 0.6;
        c.v = 0.5 + c.v * 0.5;
    }
    c
}

/// The label of an edge and the layout weight objgraph gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeLabel {
    /// Raw text (may contain newlines); the writers quote it.
    pub text: String,
    /// `weight=N` in DOT (10 for attributes, 2 for identifier dict keys, none otherwise).
    pub weight: Option<u32>,
}

/// One visit of the breadth-first walk: one object, with its decoration.
#[derive(Clone, Debug, PartialEq)]
pub struct Visit {
    /// DOT node id of the object, e.g. `o140234567890`.
    pub key: String,
    /// Raw label text, lines separated by `\n` (type name, short repr, extra info).
    pub label: String,
    /// Depth in the walk (0 for the objects the user passed).
    pub depth: u32,
    /// Fill colour.
    pub fill: Hsv,
    /// The object's class defines `__del__`: drawn with a red dotted `__del__` marker.
    pub has_del: bool,
    /// Extra node attributes from `extra_node_attrs` (raw values, sorted by name). `Some(vec![])`
    /// differs from `None` in the DOT text, as in objgraph.
    pub attrs: Option<Vec<(String, String)>>,
    /// Edges this visit emitted: indexes into [`View::edges`], in order.
    pub edges: std::ops::Range<usize>,
    /// Neighbours left out by `too_many`: `(count, fill)` of the "N more references" marker.
    pub too_many: Option<(u64, Hsv)>,
}

/// An edge between two objects, by key.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: Option<EdgeLabel>,
}

/// A whole drawable graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    /// Keys of the objects the user passed, in the order given (duplicates kept); drawn with red text.
    pub roots: Vec<String>,
    /// The walk, in order.
    pub visits: Vec<Visit>,
    /// All edges, grouped by the visit that emitted them.
    pub edges: Vec<Edge>,
    /// True for `show_backrefs` ("N more backreferences", marker edge points into the node).
    pub backrefs: bool,
}

/// A node of the merged graph, as a renderer sees it (one per distinct key).
#[derive(Clone, Debug, PartialEq)]
pub struct DrawNode {
    pub key: String,
    pub label: String,
    pub fill: Hsv,
    pub font_color: [u8; 3],
    pub has_del: bool,
    pub too_many: Option<(u64, Hsv)>,
    pub attrs: Vec<(String, String)>,
    pub depth: u32,
}

/// An edge of the merged graph: indexes of its two nodes and its label.
pub type DrawEdge = (usize, usize, Option<EdgeLabel>);

impl View {
    /// Merge visits by key, applying attributes in DOT order (a later assignment wins), as
    /// Graphviz does when it reads objgraph's text. Returns the nodes in first-visit order and
    /// the edges as index pairs into that list, with their labels.
    pub fn merged(&self) -> (Vec<DrawNode>, Vec<DrawEdge>) {
        let mut index: rustc_hash::FxHashMap<&str, usize> = Default::default();
        let mut nodes: Vec<DrawNode> = Vec::new();
        let mut red: rustc_hash::FxHashSet<&str> = Default::default();
        for r in &self.roots {
            red.insert(r.as_str());
        }
        for v in &self.visits {
            let color = if v.fill.v < 0.5 {
                [255, 255, 255]
            } else if red.contains(v.key.as_str()) {
                [255, 0, 0]
            } else {
                [0, 0, 0]
            };
            let node = DrawNode {
                key: v.key.clone(),
                label: v.label.clone(),
                fill: v.fill,
                font_color: color,
                has_del: v.has_del,
                too_many: v.too_many,
                attrs: v.attrs.clone().unwrap_or_default(),
                depth: v.depth,
            };
            match index.get(v.key.as_str()) {
                Some(&i) => {
                    let old = &mut nodes[i];
                    let too_many = node.too_many.or(old.too_many);
                    let has_del = node.has_del || old.has_del;
                    let depth = old.depth.min(node.depth);
                    *old = node;
                    old.too_many = too_many;
                    old.has_del = has_del;
                    old.depth = depth;
                }
                None => {
                    index.insert(v.key.as_str(), nodes.len());
                    nodes.push(node);
                }
            }
        }
        // Edges may point at objects that were never visited (cannot happen with objgraph's
        // walk, but a hand-built view may do it): give them a plain node.
        let mut edges = Vec::with_capacity(self.edges.len());
        for e in &self.edges {
            let id = |key: &String, nodes: &mut Vec<DrawNode>| -> usize {
                if let Some(&i) = index.get(key.as_str()) {
                    return i;
                }
                nodes.push(DrawNode {
                    key: key.clone(),
                    label: key.clone(),
                    fill: Hsv::new(0.0, 0.0, 1.0),
                    font_color: [0, 0, 0],
                    has_del: false,
                    too_many: None,
                    attrs: Vec::new(),
                    depth: 0,
                });
                nodes.len() - 1
            };
            let a = id(&e.from, &mut nodes);
            let b = id(&e.to, &mut nodes);
            // Newly pushed keys must be findable for later edges too.
            if !index.contains_key(e.from.as_str()) {
                index.insert(e.from.as_str(), a);
            }
            if !index.contains_key(e.to.as_str()) {
                index.insert(e.to.as_str(), b);
            }
            edges.push((a, b, e.label.clone()));
        }
        (nodes, edges)
    }
}
