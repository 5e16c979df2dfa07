//! The data of the HTML report: a bounded summary of a snapshot, as JSON text ready to be
//! embedded in a page.
//!
//! The report never carries the heap: whatever the heap's size, it holds the statistics by type
//! (one row per type, with the change since a base snapshot), the biggest part of the dominator
//! tree (best first, by retained size), the biggest objects of the biggest types, and the
//! retainers ("who keeps this alive") of those objects a few steps deep, with the shortest path
//! to a root of the biggest ones. Every list that is cut says how much was left out.
//!
//! The JSON is written for a `<script type="application/json">` block: `<`, `>` and `&` are
//! escaped (`\u003c`…), as are U+2028 and U+2029, so no string from the heap can close the block
//! or be read as markup.
//!
//! # Shape
//!
//! ```text
//! { "format": "refgraph-report", "version": 1,
//!   "summary": {objects, bytes, tracked, references, types, roots, modules, thread_frames,
//!               unreferenced, unrooted, python, pid, created, collected, untracked},
//!   "base": null | {objects, bytes, python, pid, created},
//!   "columns": ["name", "count", "shallow", "retained"(, "old_count", "old_bytes",
//!               "new_objects", "new_retained")],
//!   "types": [[row per column], ...],
//!   "nodes": [node, ...],
//!   "dominators": [node index, ...], "dominators_more": [count, bytes],
//!   "examples": [[type row, [node index, ...]], ...],
//!   "new_examples": [[type row, [node index, ...]], ...] (with a base: new objects that own
//!                   new memory, of the types whose new objects own the most),
//!   "limits": {...} }
//! node: { "a": "0x…" address, "t": type row, "s": shallow bytes, "r": retained bytes,
//!         "l"?: label, "g"?: module global naming it, "n"?: length,
//!         "root"?: "module" | "frame" | "unreferenced" | "unrooted", "w"?: 1 (a weak reference),
//!         "del"?: 1 (class has __del__),
//!         "kc": children in the dominator tree, "k"?: those in the report (biggest first),
//!         "km"?: [count, bytes] of the children left out,
//!         "pc": referrers, "p"?: [[node index, edge name?], ...] those in the report,
//!         "h"?: node index of the next step on a shortest path to a root }
//! ```
//! A key marked `?` is absent when there is nothing to say (an unnamed edge is `[index]`).

use super::analysis::{type_stats, Analysis};
use super::paths::shortest_path_tree;
use super::{diff, Snapshot};
use crate::dominators::NONE;
use crate::graph::{flags, NodeId};
use crate::view::{node_fill, Edge, EdgeLabel, View, Visit};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Write;

/// How much of the heap a report describes.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Top-level entries of the dominator tree (objects only a root keeps).
    pub top_level: usize,
    /// Nodes of the dominator tree, expanded biggest first.
    pub dominator_nodes: usize,
    /// Children listed per expanded node of the dominator tree.
    pub children_per_node: usize,
    /// Types that get example objects, and examples per type (biggest retained first).
    pub example_types: usize,
    pub examples_per_type: usize,
    /// Objects whose whole shortest path to a root is included.
    pub path_targets: usize,
    /// Longest path to a root that is included.
    pub path_steps: usize,
    /// Referrers listed per node, and steps of referrers followed from each object.
    pub referrers_per_node: usize,
    pub retainer_depth: u32,
    /// All nodes of the report.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            top_level: 200,
            dominator_nodes: 4000,
            children_per_node: 25,
            example_types: 200,
            examples_per_type: 5,
            path_targets: 300,
            path_steps: 200,
            referrers_per_node: 8,
            retainer_depth: 3,
            max_nodes: 12_000,
        }
    }
}

/// Append `s` as a JSON string that is also safe inside an HTML `<script>` block.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The name of the reference from `from` to `to`, where the snapshot tells it: a module's
/// `__dict__`, and a module global (the key of the module's dict). Other edges are unnamed
/// (the report then leaves the name out). Snapshots that record the name of every reference
/// are read here, the one place the report gets names from.
pub fn edge_name(s: &Snapshot, from: NodeId, to: NodeId) -> Option<String> {
    let g = &s.graph;
    if g.has(from, flags::MODULE) && s.short_type_name(to) == "dict" {
        return Some("__dict__".into());
    }
    if s.short_type_name(from) != "dict" {
        return None;
    }
    let global = s.global_name(to)?;
    // The dict must be the __dict__ of the module the global belongs to.
    g.referrers(from).iter().find_map(|&m| {
        if !g.has(m, flags::MODULE) {
            return None;
        }
        let module = s.label(m)?;
        let name = global.strip_prefix(module)?.strip_prefix('.')?;
        Some(name.to_string())
    })
}

#[derive(Default)]
struct NodeInfo {
    /// Dominator children in the report, and (count, bytes) of those left out.
    kids: Option<(Vec<NodeId>, u64, u64)>,
    /// Referrers in the report, with edge names.
    refs: Option<Vec<(NodeId, Option<String>)>>,
}

struct Builder<'a> {
    a: &'a Analysis,
    order: Vec<NodeId>,
    index: FxHashMap<NodeId, u32>,
    info: Vec<NodeInfo>,
}

impl Builder<'_> {
    fn include(&mut self, v: NodeId) -> usize {
        if let Some(&i) = self.index.get(&v) {
            return i as usize;
        }
        let i = self.order.len();
        self.order.push(v);
        self.index.insert(v, i as u32);
        self.info.push(NodeInfo::default());
        i
    }

    fn has(&self, v: NodeId) -> bool {
        self.index.contains_key(&v)
    }

    fn slot(&mut self, v: NodeId) -> &mut NodeInfo {
        let i = self.include(v);
        &mut self.info[i]
    }

    /// The `k` biggest of `nodes` by retained size (ties by id), biggest first.
    fn biggest(&self, nodes: &[NodeId], k: usize) -> Vec<NodeId> {
        let key = |v: &NodeId| (Reverse(self.a.retained[*v as usize]), *v);
        let mut v = nodes.to_vec();
        if v.len() > k {
            v.select_nth_unstable_by_key(k, key);
            v.truncate(k);
        }
        v.sort_unstable_by_key(key);
        v
    }
}

/// Build the report data of `s` (analysed as `a`), with the change since `base` if given.
pub fn report_json(s: &Snapshot, a: &Analysis, base: Option<&Snapshot>, lim: &Limits) -> String {
    let g = &s.graph;
    let n = s.len();

    // Types: one row per long name, with the diff columns when there is a base.
    let stats = type_stats(s, Some(a));
    let mut row_index: FxHashMap<String, usize> = Default::default();
    for (i, r) in stats.iter().enumerate() {
        row_index.insert(r.name.clone(), i);
    }
    let row_of_type: Vec<usize> = g
        .type_table()
        .iter()
        .map(|t| row_index[&t.long_name])
        .collect();
    // name, count, shallow, retained, old_count, old_bytes, new_objects, new_retained
    let mut rows: Vec<(String, [u64; 7])> = stats
        .iter()
        .map(|r| (r.name.clone(), [r.count, r.shallow, r.retained, 0, 0, 0, 0]))
        .collect();
    let mut is_new: Vec<bool> = Vec::new();
    if let Some(old) = base {
        for r in rows.iter_mut() {
            r.1[3] = r.1[0];
            r.1[4] = r.1[1];
        }
        let (diff_rows, marks) = diff::diff_marking_new(old, s, Some(a));
        is_new = marks;
        for d in diff_rows {
            let i = match row_index.get(&d.name) {
                Some(&i) => i,
                None => {
                    rows.push((d.name.clone(), [0; 7]));
                    row_index.insert(d.name.clone(), rows.len() - 1);
                    rows.len() - 1
                }
            };
            let c = &mut rows[i].1;
            c[3] = d.old_count;
            c[4] = d.old_bytes;
            c[5] = d.new_objects;
            c[6] = d.new_objects_retained;
        }
    }

    let mut b = Builder {
        a,
        order: Vec::new(),
        index: Default::default(),
        info: Vec::new(),
    };

    // 1. The dominator tree, biggest subtrees first.
    let (off, kids) = a.children();
    let children = |v: usize| &kids[off[v] as usize..off[v + 1] as usize];
    let top_all = children(n);
    let top = b.biggest(top_all, lim.top_level);
    let top_bytes: u64 = top.iter().map(|&v| a.retained[v as usize]).sum();
    let all_top_bytes: u64 = top_all.iter().map(|&v| a.retained[v as usize]).sum();
    let dominators_more = (
        (top_all.len() - top.len()) as u64,
        all_top_bytes - top_bytes,
    );
    let mut queue: BinaryHeap<(u64, Reverse<NodeId>)> = BinaryHeap::new();
    for &v in &top {
        b.include(v);
        queue.push((a.retained[v as usize], Reverse(v)));
    }
    while b.order.len() < lim.dominator_nodes {
        let Some((_, Reverse(v))) = queue.pop() else {
            break;
        };
        let all = children(v as usize);
        if all.is_empty() {
            continue;
        }
        let chosen = b.biggest(all, lim.children_per_node);
        let chosen_bytes: u64 = chosen.iter().map(|&c| a.retained[c as usize]).sum();
        let all_bytes: u64 = a.retained[v as usize] - s.sizes[v as usize];
        for &c in &chosen {
            b.include(c);
            queue.push((a.retained[c as usize], Reverse(c)));
        }
        let left = ((all.len() - chosen.len()) as u64, all_bytes - chosen_bytes);
        b.slot(v).kids = Some((chosen, left.0, left.1));
    }
    drop(queue);

    // 2. The biggest objects of the biggest types.
    let mut type_rank: Vec<usize> = (0..stats.len()).collect();
    type_rank.sort_unstable_by_key(|&i| (Reverse(stats[i].retained), i));
    type_rank.truncate(lim.example_types);
    let mut slot_of_row = vec![usize::MAX; rows.len()];
    for (k, &r) in type_rank.iter().enumerate() {
        slot_of_row[r] = k;
    }
    let mut best: Vec<Vec<NodeId>> = vec![Vec::new(); type_rank.len()];
    let per = lim.examples_per_type;
    if per > 0 {
        for v in 0..n as NodeId {
            let k = slot_of_row[row_of_type[g.type_of(v) as usize]];
            if k == usize::MAX {
                continue;
            }
            let list = &mut best[k];
            let r = a.retained[v as usize];
            if list.len() == per && r <= a.retained[*list.last().unwrap() as usize] {
                continue;
            }
            let pos = list.partition_point(|&w| a.retained[w as usize] >= r);
            list.insert(pos, v);
            list.truncate(per);
        }
    }
    let mut examples: Vec<(usize, Vec<NodeId>)> = Vec::new();
    for (k, list) in best.into_iter().enumerate() {
        for &v in &list {
            b.include(v);
        }
        if !list.is_empty() {
            examples.push((type_rank[k], list));
        }
    }

    let mut is_root = vec![false; n];
    for &r in &a.roots {
        is_root[r as usize] = true;
    }

    // 2b. With a base: the biggest new objects that own new memory (no other new object
    //     dominates them) of the types whose new objects own the most, leaving out roots
    //     (nothing keeps those alive: they are not what a leak hunter looks for).
    let mut new_examples: Vec<(usize, Vec<NodeId>)> = Vec::new();
    if !is_new.is_empty() && per > 0 {
        let mut grew: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].1[6] > 0).collect();
        grew.sort_unstable_by_key(|&i| (Reverse(rows[i].1[6]), i));
        grew.truncate(lim.example_types);
        let mut slot = vec![usize::MAX; rows.len()];
        for (k, &r) in grew.iter().enumerate() {
            slot[r] = k;
        }
        let mut best: Vec<Vec<NodeId>> = vec![Vec::new(); grew.len()];
        for v in 0..n as NodeId {
            let vi = v as usize;
            if !is_new[vi] || is_root[vi] {
                continue;
            }
            let d = a.idom[vi];
            if d != NONE && is_new[d as usize] {
                continue;
            }
            let k = slot[row_of_type[g.type_of(v) as usize]];
            if k == usize::MAX {
                continue;
            }
            let list = &mut best[k];
            let r = a.retained[vi];
            if list.len() == per && r <= a.retained[*list.last().unwrap() as usize] {
                continue;
            }
            let pos = list.partition_point(|&w| a.retained[w as usize] >= r);
            list.insert(pos, v);
            list.truncate(per);
        }
        for (k, list) in best.into_iter().enumerate() {
            for &v in &list {
                b.include(v);
            }
            if !list.is_empty() {
                new_examples.push((grew[k], list));
            }
        }
    }

    // 3. Shortest paths to a root of the biggest objects that are not roots themselves.
    let (hop, _reached) = shortest_path_tree(s, &a.roots);
    let mut targets: Vec<NodeId> = b
        .order
        .iter()
        .copied()
        .filter(|&v| hop[v as usize] != NONE)
        .collect();
    targets = b.biggest(&targets, lim.path_targets);
    for examples_list in new_examples.iter().chain(examples.iter()).map(|e| &e.1) {
        for &v in examples_list {
            if hop[v as usize] != NONE && !targets.contains(&v) {
                targets.push(v);
            }
        }
    }
    let attach_refs = |b: &mut Builder, v: NodeId, must: Option<NodeId>| -> Vec<NodeId> {
        if b.info[b.index[&v] as usize].refs.is_some() {
            return Vec::new();
        }
        let all = g.referrers(v);
        let first = [must, Some(hop[v as usize]), Some(a.idom[v as usize])];
        let mut chosen: Vec<NodeId> = Vec::with_capacity(lim.referrers_per_node);
        for r in first.into_iter().flatten() {
            if r != NONE && !chosen.contains(&r) && all.contains(&r) {
                chosen.push(r);
            }
        }
        for &r in all {
            if chosen.len() >= lim.referrers_per_node {
                break;
            }
            if !chosen.contains(&r) {
                chosen.push(r);
            }
        }
        let named = chosen
            .iter()
            .map(|&r| (r, edge_name(s, r, v)))
            .collect::<Vec<_>>();
        for &r in &chosen {
            b.include(r);
        }
        b.slot(v).refs = Some(named);
        chosen
    };
    for &t in &targets {
        let mut v = t;
        for _ in 0..lim.path_steps {
            let p = hop[v as usize];
            if p == NONE {
                break;
            }
            b.include(v);
            attach_refs(&mut b, v, Some(p));
            v = p;
        }
    }

    // 4. Referrers of every object so far, a few steps deep, while the budget lasts.
    let mut by_size: Vec<NodeId> = b.order.clone();
    by_size.sort_unstable_by_key(|&v| (Reverse(a.retained[v as usize]), v));
    let mut bfs: VecDeque<(NodeId, u32)> = by_size.into_iter().map(|v| (v, 0)).collect();
    while let Some((v, depth)) = bfs.pop_front() {
        if b.order.len() + lim.referrers_per_node > lim.max_nodes {
            break;
        }
        let added = attach_refs(&mut b, v, None);
        if depth + 1 < lim.retainer_depth {
            for r in added {
                bfs.push_back((r, depth + 1));
            }
        }
    }

    // Write.
    let mut out = String::with_capacity(64 * rows.len() + 160 * b.order.len() + 4096);
    out.push_str("{\"format\":\"refgraph-report\",\"version\":1,\"summary\":{");
    let count = |f: u8| (0..n as NodeId).filter(|&v| g.has(v, f)).count();
    let flagged_roots = a.roots.iter().filter(|&&v| s.is_flagged_root(v)).count();
    let _ = write!(
        out,
        "\"objects\":{},\"bytes\":{},\"tracked\":{},\"references\":{},\"types\":{},\
         \"roots\":{},\"modules\":{},\"thread_frames\":{},\"unreferenced\":{},\"unrooted\":{},",
        n,
        s.total_bytes(),
        g.tracked_count(),
        g.edge_count(),
        rows.len(),
        a.roots.len(),
        count(flags::PROPER_MODULE),
        count(flags::ROOT),
        a.roots.len() - flagged_roots,
        a.unrooted.len()
    );
    out.push_str("\"python\":");
    push_json_str(&mut out, &s.meta.python);
    let _ = write!(
        out,
        ",\"pid\":{},\"created\":{},\"collected\":{},\"untracked\":{}}},\"base\":",
        s.meta.pid, s.meta.created, s.meta.collected, s.meta.untracked
    );
    match base {
        None => out.push_str("null"),
        Some(o) => {
            let _ = write!(
                out,
                "{{\"objects\":{},\"bytes\":{},",
                o.len(),
                o.total_bytes()
            );
            out.push_str("\"python\":");
            push_json_str(&mut out, &o.meta.python);
            let _ = write!(
                out,
                ",\"pid\":{},\"created\":{}}}",
                o.meta.pid, o.meta.created
            );
        }
    }
    out.push_str(",\"columns\":[\"name\",\"count\",\"shallow\",\"retained\"");
    if base.is_some() {
        out.push_str(",\"old_count\",\"old_bytes\",\"new_objects\",\"new_retained\"");
    }
    out.push_str("],\"types\":[");
    let width = if base.is_some() { 7 } else { 3 };
    for (i, (name, c)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_json_str(&mut out, name);
        for x in &c[..width] {
            let _ = write!(out, ",{x}");
        }
        out.push(']');
    }
    out.push_str("],\"nodes\":[");
    let idx = |v: NodeId| b.index[&v];
    let unrooted: rustc_hash::FxHashSet<NodeId> = a.unrooted.iter().copied().collect();
    for (i, &v) in b.order.iter().enumerate() {
        let vi = v as usize;
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"a\":\"{:#x}\",\"t\":{},\"s\":{},\"r\":{}",
            g.addr(v),
            row_of_type[g.type_of(v) as usize],
            s.sizes[vi],
            a.retained[vi]
        );
        if let Some(l) = s.label(v) {
            out.push_str(",\"l\":");
            push_json_str(&mut out, l);
        }
        if let Some(gl) = s.global_name(v) {
            out.push_str(",\"g\":");
            push_json_str(&mut out, gl);
        }
        if let Some(len) = s.length(v) {
            let _ = write!(out, ",\"n\":{len}");
        }
        let root = if g.has(v, flags::PROPER_MODULE) {
            Some("module")
        } else if g.has(v, flags::ROOT) {
            Some("frame")
        } else if unrooted.contains(&v) {
            Some("unrooted")
        } else if is_root[vi] {
            Some("unreferenced")
        } else {
            None
        };
        if let Some(r) = root {
            let _ = write!(out, ",\"root\":\"{r}\"");
        }
        if g.has(v, flags::WEAKREF) {
            out.push_str(",\"w\":1");
        }
        if g.has(v, flags::HAS_DEL) {
            out.push_str(",\"del\":1");
        }
        let _ = write!(out, ",\"kc\":{}", off[vi + 1] - off[vi]);
        let info = &b.info[i];
        if let Some((k, more, more_bytes)) = &info.kids {
            out.push_str(",\"k\":[");
            for (j, &c) in k.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", idx(c));
            }
            let _ = write!(out, "],\"km\":[{more},{more_bytes}]");
        }
        let _ = write!(out, ",\"pc\":{}", g.referrers(v).len());
        if let Some(refs) = &info.refs {
            out.push_str(",\"p\":[");
            for (j, (r, name)) in refs.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                let _ = write!(out, "[{}", idx(*r));
                if let Some(nm) = name {
                    out.push(',');
                    push_json_str(&mut out, nm);
                }
                out.push(']');
            }
            out.push(']');
        }
        let h = hop[vi];
        if h != NONE && b.has(h) {
            let _ = write!(out, ",\"h\":{}", idx(h));
        }
        out.push('}');
    }
    out.push_str("],\"dominators\":[");
    for (j, &v) in top.iter().enumerate() {
        if j > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", idx(v));
    }
    let _ = write!(
        out,
        "],\"dominators_more\":[{},{}],\"examples\":[",
        dominators_more.0, dominators_more.1
    );
    // `[[row, [node index, ...]], ...]` (the opening bracket is already written).
    let write_examples = |out: &mut String, rows: &[(usize, Vec<NodeId>)]| {
        for (j, (row, list)) in rows.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "[{row},[");
            for (k, &v) in list.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", idx(v));
            }
            out.push_str("]]");
        }
    };
    write_examples(&mut out, &examples);
    out.push_str("],\"new_examples\":[");
    write_examples(&mut out, &new_examples);
    let _ = write!(
        out,
        "],\"limits\":{{\"top_level\":{},\"dominator_nodes\":{},\"children_per_node\":{},\
         \"examples_per_type\":{},\"referrers_per_node\":{},\"retainer_depth\":{},\
         \"max_nodes\":{}}}}}",
        lim.top_level,
        lim.dominator_nodes,
        lim.children_per_node,
        lim.examples_per_type,
        lim.referrers_per_node,
        lim.retainer_depth,
        lim.max_nodes
    );
    out
}

/// A chain of objects (root first) as a drawable view: one node per step labelled with its
/// short type name and label, one edge per step labelled with the reference's name. The last
/// step is drawn as the target.
pub fn chain_view(steps: &[(String, String, Option<String>)]) -> View {
    let mut v = View::default();
    let key = |i: usize| format!("s{i}");
    let md = steps.len().saturating_sub(1) as i64;
    for (i, (ty, label, edge)) in steps.iter().enumerate() {
        let short = ty.rsplit('.').next().unwrap_or(ty);
        let mut text = clip(short, 60);
        if !label.is_empty() {
            text.push('\n');
            text.push_str(&clip(label, 60));
        }
        let start = v.edges.len();
        if i + 1 < steps.len() {
            v.edges.push(Edge {
                from: key(i),
                to: key(i + 1),
                label: edge.as_ref().map(|e| EdgeLabel {
                    text: clip(e, 60),
                    weight: None,
                }),
            });
        }
        v.visits.push(Visit {
            key: key(i),
            label: text,
            depth: i as u32,
            fill: node_fill(
                (md - i as i64).max(0),
                md.max(1),
                ty == "module" || ty.ends_with(".module"),
                false,
            ),
            has_del: false,
            attrs: None,
            edges: start..v.edges.len(),
            too_many: None,
        });
    }
    if !steps.is_empty() {
        v.roots.push(key(steps.len() - 1));
    }
    v
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::analysis::analyse;
    use crate::snapshot::testing::leaky;

    fn field<'a>(json: &'a str, key: &str) -> &'a str {
        let k = format!("\"{key}\":");
        let i = json.find(&k).unwrap() + k.len();
        let rest = &json[i..];
        let end = rest.find([',', '}', ']']).unwrap();
        &rest[..end]
    }

    #[test]
    fn json_strings_cannot_close_a_script_block() {
        let mut out = String::new();
        push_json_str(
            &mut out,
            "</script><img src=x onerror=\"a\">&\u{2028}\u{2029}\0\u{7f}\\\u{e9}",
        );
        assert_eq!(
            out,
            "\"\\u003c/script\\u003e\\u003cimg src=x onerror=\\\"a\\\"\\u003e\\u0026\
             \\u2028\\u2029\\u0000\\u007f\\\\\u{e9}\""
        );
    }

    #[test]
    fn report_of_a_leaky_heap() {
        let s = leaky(3);
        let a = analyse(&s, &mut |_, _| {});
        let j = report_json(&s, &a, None, &Limits::default());
        assert!(j.starts_with("{\"format\":\"refgraph-report\""));
        assert_eq!(field(&j, "objects"), "11");
        assert_eq!(field(&j, "roots"), "2");
        assert_eq!(field(&j, "modules"), "1");
        assert!(j.contains("\"base\":null"));
        assert!(j.contains("[\"app.Record\",3,144,312]"), "{j}");
        // The module is the first top-level dominator and lists its dict as a child.
        assert!(j.contains("\"dominators\":[0,"), "{j}");
        let module = &j[j.find("\"nodes\":[").unwrap()..];
        assert!(module.starts_with("\"nodes\":[{\"a\":\"0x"), "{module}");
        assert!(module.contains("\"root\":\"module\""));
        // The cache list is named by the module dict's key and lists its records as children.
        assert!(j.contains("\"g\":\"app._cache\""));
        assert!(
            j.contains(",\"_cache\"]"),
            "edge named after the global: {j}"
        );
        assert!(j.contains(",\"__dict__\"]"), "module to its dict: {j}");
        // Limits: one top-level entry only, the rest counted.
        let small = Limits {
            top_level: 1,
            ..Limits::default()
        };
        let j = report_json(&s, &a, None, &small);
        assert!(j.contains("\"dominators_more\":[1,80]"), "{j}");
    }

    #[test]
    fn diff_columns_with_a_base() {
        let new = leaky(5);
        let old = leaky(2);
        let a = analyse(&new, &mut |_, _| {});
        let j = report_json(&new, &a, Some(&old), &Limits::default());
        assert!(j.contains("\"new_retained\"]"));
        // Same addresses in the toy heaps: addresses 0..; record nodes 3,4 exist in both.
        let i = j.find("[\"app.Record\",5,").unwrap();
        let row = &j[i..i + j[i..].find(']').unwrap()];
        let cols: Vec<&str> = row.split(',').collect();
        assert_eq!(cols[4], "2", "old count: {row}");
        assert_eq!(cols[5], "96", "old bytes: {row}");
        // The new Records (5, 6, 7) are the examples of what grew; their payloads are owned by
        // them, so the Record row comes first.
        let rec_row = j[j.find("\"types\":[").unwrap()..]
            .split("],[")
            .position(|r| r.contains("app.Record"))
            .unwrap();
        assert!(
            j.contains(&format!("\"new_examples\":[[{rec_row},[")),
            "{}",
            &j[j.find("new_examples").unwrap()..]
        );
        assert!(report_json(&new, &a, None, &Limits::default()).contains("\"new_examples\":[]"));
    }

    #[test]
    fn budget_bounds_the_nodes() {
        let s = leaky(2000);
        let a = analyse(&s, &mut |_, _| {});
        let lim = Limits {
            dominator_nodes: 50,
            max_nodes: 120,
            ..Limits::default()
        };
        let j = report_json(&s, &a, None, &lim);
        let nodes = j.matches("{\"a\":").count();
        assert!(
            nodes <= 120 + lim.children_per_node + lim.referrers_per_node,
            "{nodes}"
        );
        // The cache list's children are cut and counted.
        assert!(j.contains("\"km\":[1975,"), "{}", &j[..2000.min(j.len())]);
    }

    #[test]
    fn chain_view_draws_named_edges() {
        let steps = vec![
            ("module".to_string(), "app".to_string(), Some("bus".into())),
            ("app.Bus".into(), String::new(), Some("_listeners".into())),
            ("list".into(), "3 items".into(), Some("[2]".into())),
            ("app.Session".into(), "</text>".into(), None),
        ];
        let v = chain_view(&steps);
        assert_eq!(v.visits.len(), 4);
        assert_eq!(v.edges.len(), 3);
        assert_eq!(v.roots, vec!["s3"]);
        let svg = crate::render::to_svg(&v);
        assert!(svg.contains(">_listeners</text>"));
        assert!(svg.contains("&lt;/text&gt;"));
    }
}
