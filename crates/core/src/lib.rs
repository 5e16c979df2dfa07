//! refgraph's core: the heap graph model and everything computed from it, with no Python
//! dependency. The Python extension (`crates/python`) fills a [`graph::Graph`] from the live
//! interpreter; every query then runs here.

pub mod dot;
pub mod view;
