//! Heap snapshots: the graph of a whole heap with sizes and cheap labels, kept in memory or in
//! a file, and what is computed from it offline: statistics by type with shallow and retained
//! bytes, diffs between two snapshots, retention paths to roots and drawable subgraphs.
//!
//! * [`file`] — the versioned binary file format (save and a loader that never trusts its input).
//! * [`analysis`] — roots, the dominator tree and retained sizes, type statistics.
//! * [`diff`] — growth by type between two snapshots.
//! * [`paths`] — shortest retention paths from roots, grouped by shape.
//! * [`leaks`] — leak suspects: where what repeated work leaves behind accumulates.
//! * [`draw`] — a subgraph as a [`crate::view::View`] for the renderers.
//! * [`report`] — the bounded summary an HTML report embeds, as JSON.
//! * [`expr`] — a path written as a Python expression from its edge names.

pub mod analysis;
pub mod diff;
pub mod draw;
pub mod expr;
pub mod file;
pub mod leaks;
pub mod paths;
pub mod report;
pub mod strings;

use crate::edgenames::{EdgeName, EdgeNames};
use crate::graph::{flags, Graph, NodeId};
use crate::lazy::Lazy;
use strings::{format_fingerprint, StringPolicy};

/// `lens` value of a node with no length.
pub const NO_LEN: u32 = u32::MAX;

/// Facts about the moment and process a snapshot was taken in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// `sys.version` of the interpreter.
    pub python: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Process id.
    pub pid: u32,
    /// A `gc.collect()` ran before the capture.
    pub collected: bool,
    /// Objects the gc does not track (str, int, …) reachable from tracked ones have nodes.
    pub untracked: bool,
}

/// What a snapshot kept of string contents (see [`strings`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringContent {
    /// The policy the snapshot was taken with ([`StringPolicy::All`] for files written before
    /// policies existed).
    pub policy: StringPolicy,
    /// Identifies the fingerprint key: fingerprints of two snapshots are comparable only when
    /// their key ids are equal (0: no fingerprints).
    pub key_id: u64,
    /// `(node, fingerprint)` of the strings kept as a fingerprint, sorted by node.
    pub fingerprints: Vec<(NodeId, u64)>,
}

/// A whole heap: the graph, the shallow size of every node in bytes (what `sys.getsizeof`
/// reports), lengths of containers, short labels (names of modules, classes and functions,
/// string values as the string policy allows) and the module globals that name objects.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub graph: Graph,
    /// Shallow sizes in bytes (a loaded snapshot decodes them on first use).
    pub sizes: Lazy<Vec<u64>>,
    /// `len()` of built-in containers and strings, [`NO_LEN`] otherwise (a loaded snapshot
    /// decodes them on first use).
    pub lens: Lazy<Vec<u32>>,
    /// `(node, label)`, sorted by node, at most one per node (a loaded snapshot decodes them
    /// on first use).
    pub labels: Lazy<Vec<(NodeId, String)>>,
    /// `(node, "module.name")` for objects bound to a global of a module, sorted by node.
    pub globals: Vec<(NodeId, String)>,
    /// How each referrer holds each referent ([`crate::edgenames`]); empty when the snapshot
    /// was taken without names (an older file). A loaded snapshot decodes them on first use.
    pub names: Lazy<EdgeNames>,
    pub meta: Meta,
    /// The string policy and the fingerprints of strings not kept as text.
    pub strings: StringContent,
}

fn sorted_lookup(list: &[(NodeId, String)], n: NodeId) -> Option<&str> {
    list.binary_search_by_key(&n, |e| e.0)
        .ok()
        .map(|i| list[i].1.as_str())
}

impl Snapshot {
    /// Check the columns agree with the graph (used by the loader and by builders).
    pub fn validate(&self) -> Result<(), String> {
        let n = self.graph.len();
        if self.sizes.peek().is_some_and(|z| z.len() != n)
            || self.lens.peek().is_some_and(|l| l.len() != n)
        {
            return Err("size or length column does not match the node count".into());
        }
        // Sections still packed are checked when they are decoded.
        for list in [self.labels.peek(), Some(&self.globals)]
            .into_iter()
            .flatten()
        {
            if list.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err("labels are not sorted by node".into());
            }
            if list.last().is_some_and(|e| e.0 as usize >= n) {
                return Err("label of a node that does not exist".into());
            }
        }
        let fp = &self.strings.fingerprints;
        if fp.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("fingerprints are not sorted by node".into());
        }
        if fp.last().is_some_and(|e| e.0 as usize >= n) {
            return Err("fingerprint of a node that does not exist".into());
        }
        if let Some(names) = self.names.peek() {
            names.validate(self.graph.edge_count())?;
        }
        Ok(())
    }

    /// Sections of a loaded file that could not be decoded when first used (each then reads
    /// as empty), with the reason.
    pub fn problems(&self) -> Vec<String> {
        [
            self.graph.addr_problem(),
            self.sizes.problem(),
            self.lens.problem(),
            self.labels.problem(),
            self.names.problem(),
        ]
        .into_iter()
        .flatten()
        .map(|p| {
            let p = p.strip_prefix("corrupt snapshot: ").unwrap_or(p);
            format!("corrupt snapshot: {p}")
        })
        .collect()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.graph.len()
    }

    /// True when the snapshot has no node.
    pub fn is_empty(&self) -> bool {
        self.graph.is_empty()
    }

    /// Sum of all shallow sizes.
    pub fn total_bytes(&self) -> u64 {
        self.sizes.iter().sum()
    }

    /// The short label of a node (module, class or function name, string value), if any.
    pub fn label(&self, n: NodeId) -> Option<&str> {
        sorted_lookup(&self.labels, n)
    }

    /// The fingerprint of a string kept without its text, if any.
    pub fn fingerprint(&self, n: NodeId) -> Option<u64> {
        let fp = &self.strings.fingerprints;
        fp.binary_search_by_key(&n, |e| e.0).ok().map(|i| fp[i].1)
    }

    /// What a snapshot says of a string it keeps no text of: `len=37 #a1b2c3d4e5f6`
    /// (length and fingerprint), `len=37`, or None for a node with a label or not a str.
    pub fn string_summary(&self, n: NodeId) -> Option<String> {
        if self.label(n).is_some() || !matches!(self.type_name(n), "str" | "builtins.str") {
            return None;
        }
        let mut s = match self.length(n) {
            Some(l) => format!("len={l}"),
            None => "len=?".to_string(),
        };
        if let Some(f) = self.fingerprint(n) {
            s.push(' ');
            s.push_str(&format_fingerprint(f));
        }
        Some(s)
    }

    /// The module global bound to a node (`"module.name"`), if any.
    pub fn global_name(&self, n: NodeId) -> Option<&str> {
        sorted_lookup(&self.globals, n)
    }

    /// The name of the `k`-th referent edge of `src` (in `tp_traverse` order), if it has one.
    pub fn edge_name(&self, src: NodeId, k: usize) -> Option<EdgeName<'_>> {
        if self.names.is_empty() {
            return None;
        }
        let (offsets, _) = self.graph.referent_arrays();
        let start = offsets[src as usize] as usize;
        let end = offsets[src as usize + 1] as usize;
        if start + k >= end {
            return None;
        }
        self.names.get(start + k)
    }

    /// The edge `src -> dst` to show: its position among `src`'s referents and its name — the
    /// first named edge from `src` to `dst`, else the first edge (unnamed). `None` when `src`
    /// does not refer to `dst`.
    pub fn edge_between(&self, src: NodeId, dst: NodeId) -> Option<(usize, Option<EdgeName<'_>>)> {
        let mut first = None;
        for (k, &t) in self.graph.referents(src).iter().enumerate() {
            if t == dst {
                if let Some(n) = self.edge_name(src, k) {
                    return Some((k, Some(n)));
                }
                first.get_or_insert(k);
            }
        }
        first.map(|k| (k, None))
    }

    /// The name of the edge `src -> dst` (the first named one), if any.
    pub fn name_of_edge(&self, src: NodeId, dst: NodeId) -> Option<EdgeName<'_>> {
        self.edge_between(src, dst).and_then(|e| e.1)
    }

    /// The length of a node, if it has one.
    pub fn length(&self, n: NodeId) -> Option<u32> {
        let l = self.lens[n as usize];
        (l != NO_LEN).then_some(l)
    }

    /// Long type name of a node (`module.Class`, or the bare name for builtins).
    pub fn type_name(&self, n: NodeId) -> &str {
        &self.graph.type_table()[self.graph.type_of(n) as usize].long_name
    }

    /// Short type name of a node.
    pub fn short_type_name(&self, n: NodeId) -> &str {
        &self.graph.type_table()[self.graph.type_of(n) as usize].short_name
    }

    /// Nodes whose type has this name: the long name when it contains a dot, else the short
    /// one (as objgraph matches type names).
    pub fn nodes_of_type(&self, name: &str) -> Vec<NodeId> {
        let long = name.contains('.');
        let wanted: Vec<bool> = self
            .graph
            .type_table()
            .iter()
            .map(|t| {
                if long {
                    t.long_name == name
                } else {
                    t.short_name == name
                }
            })
            .collect();
        (0..self.len() as NodeId)
            .filter(|&n| wanted[self.graph.type_of(n) as usize])
            .collect()
    }

    /// One line describing a node: type, then its label, global name and length when known.
    /// A string kept without its text shows its length and fingerprint (`str len=37
    /// #a1b2c3d4e5f6`), never as if the fingerprint were the text.
    pub fn describe(&self, n: NodeId) -> String {
        let mut s = self.type_name(n).to_string();
        if let Some(g) = self.global_name(n) {
            s.push_str(&format!(" {g}"));
        } else if let Some(l) = self.label(n) {
            s.push_str(&format!(" {l}"));
        } else if let Some(summary) = self.string_summary(n) {
            s.push(' ');
            s.push_str(&summary);
            return s;
        }
        if let Some(l) = self.length(n) {
            if self.label(n).is_none() {
                s.push_str(&format!(" ({l} items)"));
            }
        }
        s
    }

    /// Is the node a root of retention: a module in `sys.modules`, a frame of a thread's stack
    /// (flag [`flags::ROOT`]), or an object nothing in the heap refers to?
    pub fn is_flagged_root(&self, n: NodeId) -> bool {
        self.graph.flags(n) & (flags::PROPER_MODULE | flags::ROOT) != 0
    }
}

/// Format a byte count for people: `512 B`, `1.5 KiB`, `3.2 MiB`, `1.1 GiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::graph::from_edges;

    /// A small leaky heap: a module whose dict holds a cache list of `Record`s, each with a
    /// payload list, plus an unrelated dict and a weakref to a record.
    ///
    /// ```text
    /// 0 module m -> 1 dict -> 2 list(cache) -> 3,4,5 Record -> 6,7,8 list(payload)
    /// 1 dict -> 9 dict(other) ; 10 weakref (no referrers; refers to nothing)
    /// ```
    pub fn leaky(records: usize) -> Snapshot {
        let mut nodes: Vec<(&str, bool)> = vec![("module", true), ("dict", true), ("list", true)];
        for _ in 0..records {
            nodes.push(("Record", true));
        }
        for _ in 0..records {
            nodes.push(("list", true));
        }
        nodes.push(("dict", true));
        nodes.push(("weakref", true));
        let rec0 = 3u32;
        let pay0 = rec0 + records as u32;
        let other = pay0 + records as u32;
        let mut edges: Vec<Vec<NodeId>> = vec![vec![1], vec![2, other], vec![]];
        for i in 0..records as u32 {
            edges[2].push(rec0 + i);
        }
        for i in 0..records as u32 {
            edges.push(vec![pay0 + i]);
        }
        for _ in 0..records {
            edges.push(vec![]);
        }
        edges.push(vec![]);
        edges.push(vec![]);
        let refs: Vec<&[NodeId]> = edges.iter().map(|e| e.as_slice()).collect();
        let mut graph = from_edges(&nodes, &refs);
        graph.set_flags(0, flags::MODULE | flags::PROPER_MODULE);
        graph.set_flags(other + 1, flags::WEAKREF);
        for t in graph.type_table_mut() {
            if t.short_name == "Record" {
                t.long_name = "app.Record".into();
            } else {
                t.long_name = t.short_name.clone();
            }
        }
        let n = graph.len();
        let mut sizes = vec![0u64; n];
        for (i, s) in sizes.iter_mut().enumerate() {
            *s = match graph.type_table()[graph.type_of(i as NodeId) as usize]
                .short_name
                .as_str()
            {
                "module" => 72,
                "dict" => 232,
                "list" => 56,
                "Record" => 48,
                _ => 80,
            };
        }
        let mut lens = vec![NO_LEN; n];
        lens[2] = records as u32;
        // Names: module -> dict is `__dict__`, dict -> list is the global `_cache`, the other
        // dict is under the key 3; records are list items, each holds its payload as `.payload`.
        let mut b = crate::edgenames::EdgeNamesBuilder::with_capacity(graph.edge_count());
        for v in 0..n as NodeId {
            for (k, _) in graph.referents(v).iter().enumerate() {
                b.push(match v {
                    0 => Some(EdgeName::Attr("__dict__")),
                    1 if k == 0 => Some(EdgeName::DictKey("'_cache'")),
                    1 => Some(EdgeName::DictKey("3")),
                    2 => Some(EdgeName::Index(k as u32)),
                    v if v >= rec0 && v < pay0 => Some(EdgeName::Attr("payload")),
                    _ => None,
                });
            }
        }
        Snapshot {
            graph,
            sizes: sizes.into(),
            lens: lens.into(),
            labels: vec![(0, "app".into())].into(),
            globals: vec![(2, "app._cache".into())],
            names: b.finish().into(),
            meta: Meta {
                python: "3.11.7".into(),
                created: 1_700_000_000,
                pid: 42,
                collected: true,
                untracked: true,
            },
            strings: StringContent::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::from_edges;

    #[test]
    fn a_string_without_text_shows_length_and_fingerprint() {
        let mut g = from_edges(
            &[
                ("dict", true),
                ("str", false),
                ("str", false),
                ("str", false),
            ],
            &[&[1, 2, 3], &[], &[], &[]],
        );
        for t in g.type_table_mut() {
            t.long_name = t.short_name.clone();
        }
        let s = Snapshot {
            sizes: vec![232, 90, 60, 60].into(),
            lens: vec![3, 37, 3, 11].into(),
            labels: vec![(2, "'cfg'".into())].into(),
            strings: StringContent {
                policy: StringPolicy::Names,
                key_id: 1,
                fingerprints: vec![(1, 0xa1b2c3)],
            },
            graph: g,
            ..Default::default()
        };
        assert_eq!(s.describe(1), "str len=37 #000000a1b2c3");
        assert_eq!(s.describe(2), "str 'cfg'");
        assert_eq!(s.describe(3), "str len=11");
        assert_eq!(s.describe(0), "dict (3 items)");
        let v = draw::view(&s, &[1], false, 1, 10);
        assert_eq!(v.visits[0].label, "str\nlen=37 #000000a1b2c3\n90 B");
    }
}
