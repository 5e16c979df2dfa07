//! refgraph's core: the heap graph model and everything computed from it, with no Python
//! dependency. The Python extension (`crates/python`) fills a [`graph::Graph`] from the live
//! interpreter; every query then runs here.
//!
//! * [`graph`] — the model: u32 node ids, CSR referents and referrers, a type table.
//! * [`edgenames`] — how each referrer holds each referent (attribute, key, index, …).
//! * [`stats`] — counts per type.
//! * [`chain`] — shortest reference chains (BFS).
//! * [`subgraph`] — the bounded walk that `show_refs`/`show_backrefs` draw.
//! * [`view`] and [`dot`] — the drawable graph and objgraph's DOT text.
//! * [`render`] — layout, SVG and PNG without Graphviz.
//! * [`dominators`] — dominator trees and retained sizes.
//! * [`garbage`] — cyclic garbage found on a captured graph, as the collector would.
//! * [`snapshot`] — heap snapshots: sizes, labels, the file format, diffs, retention paths.

pub mod addrindex;
pub mod chain;
pub mod dominators;
pub mod dot;
pub mod edgenames;
pub mod garbage;
pub mod graph;
pub mod hugepages;
pub mod lazy;
pub mod nodeset;
pub mod numbering;
pub mod render;
pub mod snapshot;
pub mod stats;
pub mod subgraph;
pub mod threads;
pub mod view;

#[cfg(test)]
mod testutil;
