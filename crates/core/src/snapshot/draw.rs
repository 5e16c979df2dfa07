//! A subgraph of a snapshot as a drawable [`View`]: what refers to some objects (or what they
//! refer to), breadth first and bounded, as `show_backrefs`/`show_refs` draw it.

use super::{human_bytes, Snapshot};
use crate::edgenames::EdgeName;
use crate::graph::{flags, Direction, NodeId};
use crate::nodeset::NodeSet;
use crate::subgraph::{walk, WalkHooks};
use crate::view::{node_fill, Edge, EdgeLabel, Hsv, View, Visit, MARKER_DARK_RED, MARKER_RED};
use std::convert::Infallible;

struct StopAtModules<'a>(&'a Snapshot, bool);

impl WalkHooks for StopAtModules<'_> {
    type Error = Infallible;
    fn filter(&mut self, _node: NodeId) -> Result<bool, Infallible> {
        Ok(true)
    }
    fn cull(&mut self, node: NodeId) -> Result<bool, Infallible> {
        Ok(self.1 && self.0.graph.has(node, flags::PROPER_MODULE))
    }
}

fn key(s: &Snapshot, n: NodeId) -> String {
    format!("o{}", s.graph.addr(n))
}

/// The label of a node: short type name, then its name or length, then its shallow size.
pub fn node_label(s: &Snapshot, n: NodeId) -> String {
    let mut out = s.short_type_name(n).to_string();
    if let Some(g) = s.global_name(n) {
        out.push('\n');
        out.push_str(g);
    } else if let Some(l) = s.label(n) {
        out.push('\n');
        out.push_str(l);
    } else if let Some(summary) = s.string_summary(n) {
        out.push('\n');
        out.push_str(&summary);
    } else if let Some(len) = s.length(n) {
        out.push_str(&format!("\n{len} items"));
    }
    out.push('\n');
    out.push_str(&human_bytes(s.sizes[n as usize]));
    out
}

/// Draw what refers to `targets` (`backrefs`, stopping at modules in `sys.modules`) or what
/// they refer to, up to `max_depth` steps and `too_many` edges per node.
pub fn view(
    s: &Snapshot,
    targets: &[NodeId],
    backrefs: bool,
    max_depth: u32,
    too_many: u64,
) -> View {
    let dir = if backrefs {
        Direction::Referrers
    } else {
        Direction::Referents
    };
    let ignored = NodeSet::new(0);
    let w = match walk(
        &s.graph,
        targets,
        dir,
        max_depth,
        too_many,
        &ignored,
        &mut StopAtModules(s, backrefs),
    ) {
        Ok(w) => w,
        Err(never) => match never {},
    };
    let mut v = View {
        roots: targets.iter().map(|&t| key(s, t)).collect(),
        backrefs,
        ..Default::default()
    };
    let md = max_depth as i64;
    for visit in &w.visits {
        let n = visit.node;
        let start = v.edges.len();
        for &m in &w.edges[visit.edges.clone()] {
            let (from, to) = if backrefs { (m, n) } else { (n, m) };
            // The reference's name (`.attr`, `['key']`, `[3]`, …); without names (an older
            // snapshot), a module dict's entry is labelled with the global's name.
            let label = match s.name_of_edge(from, to) {
                Some(name) => Some(EdgeLabel {
                    text: name.label(),
                    weight: matches!(name, EdgeName::DictKey(_)).then_some(2),
                }),
                None => match s.global_name(to) {
                    Some(gname) if s.short_type_name(from) == "dict" => Some(EdgeLabel {
                        text: gname.rsplit('.').next().unwrap_or(gname).to_string(),
                        weight: Some(2),
                    }),
                    _ => None,
                },
            };
            v.edges.push(Edge {
                from: key(s, from),
                to: key(s, to),
                label,
            });
        }
        v.visits.push(Visit {
            key: key(s, n),
            label: node_label(s, n),
            depth: visit.depth,
            fill: node_fill(visit.depth as i64, md, s.graph.has(n, flags::MODULE), false),
            has_del: s.graph.has(n, flags::HAS_DEL),
            attrs: None,
            edges: start..v.edges.len(),
            too_many: (visit.skipped > 0).then(|| {
                (
                    visit.skipped,
                    Hsv::gradient(MARKER_RED, MARKER_DARK_RED, visit.depth as i64 + 1, md),
                )
            }),
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::leaky;

    #[test]
    fn backrefs_of_a_record_reach_the_module() {
        let s = leaky(3);
        let v = view(&s, &[3], true, 5, 10);
        let labels: Vec<&str> = v.visits.iter().map(|x| x.label.as_str()).collect();
        assert_eq!(labels[0], "Record\n48 B");
        assert!(labels.contains(&"list\napp._cache\n56 B"));
        assert!(labels.contains(&"module\napp\n72 B"));
        let has = |v: &View, text: &str| {
            v.edges
                .iter()
                .any(|e| e.label.as_ref().is_some_and(|l| l.text == text))
        };
        // Edge names: the dict key, the list index, the module's dict.
        assert!(has(&v, "['_cache']"));
        assert!(has(&v, "[0]"));
        assert!(has(&v, ".__dict__"));
        let svg = crate::render::to_svg(&v);
        assert!(svg.contains("app._cache"));
        assert!(svg.contains(">[&#39;_cache&#39;]</text>"));
        // Without names, a module dict's entry is labelled with the global's name.
        let bare = Snapshot {
            names: Default::default(),
            ..s.clone()
        };
        let v = view(&bare, &[3], true, 5, 10);
        assert!(has(&v, "_cache"));
        assert!(!has(&v, "[0]"));
    }
}
