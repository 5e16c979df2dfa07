//! A retention path written the way a Python programmer would reach the object:
//! `__main__.bus._listeners[2917].__self__`.
//!
//! The expression starts at the path's root — a module by its name, an object bound to a module
//! global by `module.name`, anything else as `<type label>` — and appends one suffix per edge
//! from the edge's name ([`EdgeName::suffix`]). `.__dict__` followed by a str key that is an
//! identifier is written as an attribute (`.__dict__['bus']` → `.bus`), which covers module
//! globals, class attributes and instance attributes in a materialised `__dict__`.
//!
//! A step that cannot be written as Python (an unnamed edge, a set member, a dict key object, a
//! key with no literal form) ends the expression; the path goes on with ` -> `, the edge's label
//! in parentheses if it has one, and the next node written as a new start:
//! `__main__.seen -> (set member) <app.Session>`.

use super::Snapshot;
use crate::edgenames::{is_identifier, EdgeName};
use crate::graph::{flags, NodeId};

/// One step of a path, for structured output (JSON, drawings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub node: NodeId,
    /// The label of the edge from this node to the next ([`EdgeName::label`]); `None` for the
    /// last node and for unnamed edges.
    pub edge: Option<String>,
}

/// The steps of a path with the labels of its edges.
pub fn steps(s: &Snapshot, path: &[NodeId]) -> Vec<Step> {
    path.iter()
        .enumerate()
        .map(|(i, &n)| Step {
            node: n,
            edge: path
                .get(i + 1)
                .and_then(|&m| s.name_of_edge(n, m))
                .map(|e| e.label()),
        })
        .collect()
}

/// How an expression starts at node `n`: a module's name, a module global's `module.name`, or
/// `<type label>`.
pub fn start(s: &Snapshot, n: NodeId) -> String {
    if s.graph.has(n, flags::MODULE) {
        if let Some(l) = s.label(n) {
            return l.to_string();
        }
    }
    if let Some(g) = s.global_name(n) {
        return g.to_string();
    }
    match s.label(n) {
        Some(l) => format!("<{} {l}>", s.type_name(n)),
        None => format!("<{}>", s.type_name(n)),
    }
}

/// The attribute a dict key stands for after `.__dict__`: `'name'` → `name`, if the key is a
/// plain str literal of an identifier.
fn key_as_attr(key: &str) -> Option<&str> {
    let inner = key.strip_prefix('\'')?.strip_suffix('\'')?;
    is_identifier(inner).then_some(inner)
}

/// Append the edge `name` (at `position` among the referrer's referents) to the expression
/// `cur`; `dict_at` is where a trailing `.__dict__` starts in `cur`. False when the edge has no
/// expression form.
fn append(
    cur: &mut String,
    dict_at: &mut Option<usize>,
    name: EdgeName<'_>,
    position: usize,
) -> bool {
    if let (EdgeName::DictKey(k), Some(at)) = (name, *dict_at) {
        if let Some(attr) = key_as_attr(k) {
            cur.truncate(at);
            cur.push('.');
            cur.push_str(attr);
            *dict_at = None;
            return true;
        }
    }
    match name.suffix(position) {
        Some(sfx) => {
            *dict_at = (name == EdgeName::Attr("__dict__")).then_some(cur.len());
            cur.push_str(&sfx);
            true
        }
        None => false,
    }
}

/// The path (root first) as a Python expression where one exists, in segments joined by
/// ` -> ` where it does not (see the module documentation). Each edge is the first named edge
/// between its two nodes ([`Snapshot::edge_between`]).
pub fn expression(s: &Snapshot, path: &[NodeId]) -> String {
    pattern(s, path, &[])
}

/// [`expression`] with the indexes and keys of the steps flagged in `vary` (by
/// edge position along the path) written as `[...]`: the shape of many paths at once.
pub fn pattern(s: &Snapshot, path: &[NodeId], vary: &[bool]) -> String {
    let edges: Vec<u32> = path
        .windows(2)
        .map(|w| s.edge_between(w[0], w[1]).map_or(u32::MAX, |e| e.0 as u32))
        .collect();
    pattern_with_edges(s, path, &edges, vary)
}

/// [`pattern`] for a path whose edges are known by position: `edges[i]` is the position of
/// the edge `path[i] -> path[i + 1]` among `path[i]`'s referents (`u32::MAX`: none).
pub fn pattern_with_edges(s: &Snapshot, path: &[NodeId], edges: &[u32], vary: &[bool]) -> String {
    let Some(&first) = path.first() else {
        return String::new();
    };
    let mut out = String::new();
    let mut cur = start(s, first);
    let mut dict_at = None;
    for (i, w) in path.windows(2).enumerate() {
        let (a, b) = (w[0], w[1]);
        let k = edges.get(i).copied().unwrap_or(u32::MAX) as usize;
        let name = s.edge_name(a, k);
        let varies = vary.get(i).copied().unwrap_or(false);
        let done = match name {
            Some(EdgeName::Index(_) | EdgeName::DictKey(_)) if varies => {
                cur.push_str("[...]");
                dict_at = None;
                true
            }
            Some(name) => append(&mut cur, &mut dict_at, name, k),
            None => false,
        };
        if !done {
            out.push_str(&cur);
            out.push_str(" -> ");
            if let Some(name) = name {
                out.push('(');
                out.push_str(&name.label());
                out.push_str(") ");
            }
            cur = start(s, b);
            dict_at = None;
        }
    }
    out.push_str(&cur);
    out
}

/// The per-edge suffix texts of a path (the edge's label, or `""` when unnamed): two paths of
/// the same shape differ where these differ.
pub fn edge_labels(s: &Snapshot, path: &[NodeId]) -> Vec<String> {
    path.windows(2)
        .map(|w| {
            s.name_of_edge(w[0], w[1])
                .map(|n| n.label())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edgenames::EdgeNamesBuilder;
    use crate::graph::from_edges;
    use crate::snapshot::testing::leaky;
    use crate::snapshot::NO_LEN;

    #[test]
    fn module_global_list_item_and_attribute() {
        let s = leaky(3);
        // 0 module -> 1 dict -> 2 list -> 3 Record -> 6 payload
        assert_eq!(expression(&s, &[0, 1, 2, 4, 7]), "app._cache[1].payload");
        assert_eq!(expression(&s, &[0, 1, 2]), "app._cache");
        // The other dict is under the key 3: not an attribute.
        assert_eq!(expression(&s, &[0, 1, 9]), "app.__dict__[3]");
        assert_eq!(expression(&s, &[2]), "app._cache");
        assert_eq!(
            pattern(&s, &[0, 1, 2, 4, 7], &[false, false, true, false]),
            "app._cache[...].payload"
        );
        let st = steps(&s, &[0, 1, 2, 4]);
        assert_eq!(st[0].edge.as_deref(), Some(".__dict__"));
        assert_eq!(st[1].edge.as_deref(), Some("['_cache']"));
        assert_eq!(st[2].edge.as_deref(), Some("[1]"));
        assert_eq!(st[3].edge, None);
        assert_eq!(s.edge_name(2, 1), Some(EdgeName::Index(1)));
        assert_eq!(s.edge_name(2, 3), None);
        assert_eq!(s.name_of_edge(3, 6), Some(EdgeName::Attr("payload")));
        assert_eq!(s.name_of_edge(3, 7), None);
    }

    /// The event bus: `__main__.bus._listeners[1].__self__`, with a set member and an
    /// unnamed edge breaking the expression.
    #[test]
    fn event_bus_and_broken_steps() {
        // 0 module __main__, 1 its dict, 2 EventBus, 3 list, 4 method, 5 method,
        // 6 Session, 7 Session, 8 set, 9 function (closure holder), 10 tuple, 11 cell
        let nodes = [
            ("module", true),
            ("dict", true),
            ("EventBus", true),
            ("list", true),
            ("method", true),
            ("method", true),
            ("Session", true),
            ("Session", true),
            ("set", true),
            ("function", true),
            ("tuple", true),
            ("cell", true),
        ];
        let edges: [&[NodeId]; 12] = [
            &[1],
            &[2, 8, 9],
            &[3],
            &[4, 5],
            &[6],
            &[7],
            &[],
            &[],
            &[7],
            &[10],
            &[11, 11],
            &[6],
        ];
        let mut g = from_edges(&nodes, &edges);
        g.set_flags(0, flags::MODULE | flags::PROPER_MODULE);
        for t in g.type_table_mut() {
            t.long_name = t.short_name.clone();
        }
        let mut b = EdgeNamesBuilder::with_capacity(g.edge_count());
        let names: [&[Option<EdgeName>]; 12] = [
            &[Some(EdgeName::Attr("__dict__"))],
            &[
                Some(EdgeName::DictKey("'bus'")),
                Some(EdgeName::DictKey("'seen'")),
                Some(EdgeName::DictKey("'handler'")),
            ],
            &[Some(EdgeName::Attr("_listeners"))],
            &[Some(EdgeName::Index(0)), Some(EdgeName::Index(1))],
            &[None],
            &[Some(EdgeName::Attr("__self__"))],
            &[],
            &[],
            &[Some(EdgeName::SetMember)],
            &[Some(EdgeName::Attr("__closure__"))],
            &[Some(EdgeName::Index(1)), Some(EdgeName::Index(0))],
            &[Some(EdgeName::Cell("x"))],
        ];
        for list in names {
            for &n in list {
                b.push(n);
            }
        }
        let s = Snapshot {
            sizes: vec![1; 12].into(),
            lens: vec![NO_LEN; 12].into(),
            labels: vec![(0, "__main__".into())].into(),
            globals: vec![(2, "__main__.bus".into()), (8, "__main__.seen".into())],
            names: b.finish().into(),
            graph: g,
            ..Default::default()
        };
        s.validate().unwrap();
        assert_eq!(
            expression(&s, &[0, 1, 2, 3, 5, 7]),
            "__main__.bus._listeners[1].__self__"
        );
        assert_eq!(
            expression(&s, &[0, 1, 2, 3, 4, 6]),
            "__main__.bus._listeners[0] -> <Session>"
        );
        assert_eq!(
            expression(&s, &[0, 1, 8, 7]),
            "__main__.seen -> (set member) <Session>"
        );
        // A tuple is traversed from its end: the first edge to the cell names index 1.
        assert_eq!(
            expression(&s, &[0, 1, 9, 10, 11, 6]),
            "__main__.handler.__closure__[1].cell_contents"
        );
        assert_eq!(s.name_of_edge(11, 6), Some(EdgeName::Cell("x")));
        assert_eq!(s.name_of_edge(11, 6).unwrap().label(), "closure x");
        assert_eq!(s.edge_between(4, 6), Some((0, None)));
        assert_eq!(s.edge_between(6, 4), None);
        // Without names, every step is a break.
        let bare = Snapshot {
            names: Default::default(),
            ..s.clone()
        };
        assert_eq!(
            expression(&bare, &[0, 1, 2, 3]),
            "__main__ -> <dict> -> __main__.bus -> <list>"
        );
    }
}
