//! The heap graph model: compact, index based.
//!
//! Nodes are `u32` ids. Node `i < tracked_count()` is the `i`-th object that the garbage
//! collector reported (in `gc.get_objects()` order); later nodes are objects found only as
//! referents (str, int, untracked tuples and dicts, …). Edges are stored twice in CSR form:
//!
//! * **referents** of every node, in `tp_traverse` order, duplicates kept — what
//!   `gc.get_referents(obj)` returns;
//! * **referrers** of every node: only gc-tracked sources, each once, in gc order — what
//!   `gc.get_referrers(obj)` returns.

use crate::addrindex::AddrIndex;
use crate::lazy::Lazy;
use crate::nodeset::NodeSet;
use crate::numbering::Numbering;
use std::sync::OnceLock;

/// Index of a node.
pub type NodeId = u32;
/// Index into the type table.
pub type TypeId = u32;

/// Per-node flag bits.
pub mod flags {
    /// The garbage collector tracks the object (it was in `gc.get_objects()`).
    pub const TRACKED: u8 = 1;
    /// The object supports gc traversal (its referents were recorded).
    pub const GC_TYPE: u8 = 2;
    /// The object's class defines `__del__`.
    pub const HAS_DEL: u8 = 4;
    /// A module that is in `sys.modules` under its own name (a root for leak hunting).
    pub const PROPER_MODULE: u8 = 8;
    /// A module object.
    pub const MODULE: u8 = 16;
    /// A weak reference or proxy.
    pub const WEAKREF: u8 = 32;
    /// A root of retention other than modules: a frame on a thread's stack.
    pub const ROOT: u8 = 64;
}

/// A type, with the two names objgraph uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeInfo {
    /// Address of the type object.
    pub addr: u64,
    /// `type.__name__`.
    pub short_name: String,
    /// `type.__module__ + '.' + type.__name__` (or the bare name when there is no module).
    pub long_name: String,
}

/// Error raised when a graph would not fit the index types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    TooManyNodes,
    TooManyEdges,
    /// Edges must be pushed for nodes in increasing order, each once.
    OutOfOrder {
        expected: NodeId,
        got: NodeId,
    },
    /// The nodes a [`Resolver`] numbered must be added ([`GraphBuilder::add_reserved`]),
    /// all of them and no others, before edges or other nodes.
    ReservedNodes,
    /// [`Resolver::push_referents`]' ends must increase and end at the number of addresses.
    BadEnds,
    /// [`GraphBuilder::add_tracked_run_numbered`]'s types must be one per node, each an index
    /// into the distinct types.
    BadTypes,
    /// The builder's address index is out with a [`Resolver`] (see
    /// [`GraphBuilder::take_resolver`]): nodes are added only as the resolver numbers them.
    IndexLent,
    /// A referent given to [`Resolver::push_referents`] as [`RESOLVED`] names no node that
    /// exists.
    BadResolved,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::TooManyNodes => write!(f, "heap has more than 2^32-1 objects"),
            GraphError::TooManyEdges => write!(f, "heap has more than 2^32-1 references"),
            GraphError::OutOfOrder { expected, got } => {
                write!(
                    f,
                    "edges for node {got} pushed while node {expected} was expected"
                )
            }
            GraphError::ReservedNodes => write!(f, "reserved nodes were not added in order"),
            GraphError::BadEnds => write!(f, "edge ends do not match the edges"),
            GraphError::BadTypes => write!(f, "node types do not match the nodes or the types"),
            GraphError::IndexLent => write!(f, "the address index is lent to a resolver"),
            GraphError::BadResolved => write!(f, "a resolved referent names no node"),
        }
    }
}

impl std::error::Error for GraphError {}

/// The heap graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Decoded on first use in a loaded snapshot (statistics and retained sizes need none).
    addrs: Lazy<Vec<u64>>,
    types: Vec<TypeId>,
    flags: Vec<u8>,
    tracked: u32,
    fwd_offsets: Vec<u32>,
    fwd_targets: Vec<NodeId>,
    /// The referrer index, derived from the referents by the first [`Graph::referrers`] (a
    /// snapshot that is only saved never needs it: at 10M objects it is 190 MB).
    rev: OnceLock<Referrers>,
    type_table: Vec<TypeInfo>,
    /// Address → node, built by the first [`Graph::find`] (a graph queried once, like a
    /// capture for one call, uses [`Graph::find_once`] and never pays for it).
    by_addr: OnceLock<AddrIndex>,
    /// The type ids and references as a snapshot file stores them, when a capture packed them
    /// already (`snapshot::file::pack::arrays`): those arrays never change once built.
    packed_arrays: Option<Box<PackedArrays>>,
}

/// A section as a snapshot file stores it: `(codec, stored bytes, raw length)` per chunk.
pub type PackedChunks = Vec<(u32, Vec<u8>, usize)>;

/// A graph's type ids and references packed as a snapshot file stores them.
#[derive(Clone, Debug)]
pub struct PackedArrays {
    pub types: PackedChunks,
    pub edges: PackedChunks,
}

/// The arrays of a graph that never change once it is built ([`Graph::fixed_arrays`]).
#[derive(Clone, Copy)]
pub struct FixedArrays<'a> {
    pub types: &'a [TypeId],
    pub offsets: &'a [u32],
    pub targets: &'a [NodeId],
}

/// Referrers as CSR arrays: `offsets[n]..offsets[n + 1]` indexes `sources` for node `n`.
#[derive(Clone, Debug, Default)]
struct Referrers {
    offsets: Vec<u32>,
    sources: Vec<NodeId>,
}

/// Which way to follow edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From an object to what it refers to (`gc.get_referents`).
    Referents,
    /// From an object to what refers to it (`gc.get_referrers`).
    Referrers,
}

impl Graph {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// True when the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Number of gc-tracked nodes (they come first).
    pub fn tracked_count(&self) -> usize {
        self.tracked as usize
    }

    /// Number of referent edges.
    pub fn edge_count(&self) -> usize {
        self.fwd_targets.len()
    }

    /// Address (`id()`) of a node.
    pub fn addr(&self, n: NodeId) -> u64 {
        self.addrs[n as usize]
    }

    /// Why a loaded snapshot's addresses could not be decoded (they then read as 0), if so.
    pub fn addr_problem(&self) -> Option<&str> {
        self.addrs.problem()
    }

    /// The addresses as a column (a loaded snapshot's, or a packing capture's, stay packed until
    /// first use: see [`crate::lazy`]).
    pub fn addrs_column(&self) -> &Lazy<Vec<u64>> {
        &self.addrs
    }

    /// Take the decoded addresses out, to pack them (a capture does, while its own references
    /// give the addresses): [`Graph::set_addrs_packed`] must put them back before the graph
    /// is used again.
    pub fn take_addrs(&mut self) -> Vec<u64> {
        std::mem::take(&mut *self.addrs)
    }

    /// Keep the addresses packed (as [`crate::snapshot::file::pack::addrs`] makes them) instead
    /// of decoded; they must be the same addresses (or these were taken out).
    pub fn set_addrs_packed(&mut self, addrs: Lazy<Vec<u64>>) {
        debug_assert!(addrs.packed_form().is_some());
        debug_assert!(self
            .addrs
            .peek()
            .is_none_or(|a| a.is_empty() || **a == *addrs));
        self.addrs = addrs;
    }

    /// The type ids and references (to read, to pack).
    pub fn fixed_arrays(&self) -> FixedArrays<'_> {
        FixedArrays {
            types: &self.types,
            offsets: &self.fwd_offsets,
            targets: &self.fwd_targets,
        }
    }

    /// The flags and the type table (to fill in), and the type ids (to read, to pack
    /// meanwhile), at once.
    pub fn annotation_parts(&mut self) -> (&mut [u8], &mut [TypeInfo], &[TypeId]) {
        (&mut self.flags, &mut self.type_table, &self.types)
    }

    /// Keep the type ids and references packed as a file stores them, packed from this graph's
    /// own arrays (see `snapshot::file::pack::arrays`).
    pub fn keep_packed_arrays(&mut self, p: PackedArrays) {
        self.packed_arrays = Some(Box::new(p));
    }

    /// The type ids and references packed as a file stores them, if a capture packed them.
    pub fn packed_arrays(&self) -> Option<&PackedArrays> {
        self.packed_arrays.as_deref()
    }

    /// Whether the addresses are decoded (a loaded snapshot decodes them on first use).
    pub fn addrs_decoded(&self) -> bool {
        self.addrs.peek().is_some()
    }

    /// All addresses, by node id.
    pub fn addrs(&self) -> &[u64] {
        &self.addrs
    }

    /// Type of a node.
    pub fn type_of(&self, n: NodeId) -> TypeId {
        self.types[n as usize]
    }

    /// Types of all nodes.
    pub fn types(&self) -> &[TypeId] {
        &self.types
    }

    /// Flags of a node.
    pub fn flags(&self, n: NodeId) -> u8 {
        self.flags[n as usize]
    }

    /// Set flag bits on a node.
    pub fn set_flags(&mut self, n: NodeId, bits: u8) {
        self.flags[n as usize] |= bits;
    }

    /// True when the node has all `bits`.
    pub fn has(&self, n: NodeId, bits: u8) -> bool {
        self.flags[n as usize] & bits == bits
    }

    /// The type table.
    pub fn type_table(&self) -> &[TypeInfo] {
        &self.type_table
    }

    /// Mutable access to the type table (names are filled in after capture).
    pub fn type_table_mut(&mut self) -> &mut [TypeInfo] {
        &mut self.type_table
    }

    /// What the node refers to, in traversal order (duplicates kept).
    pub fn referents(&self, n: NodeId) -> &[NodeId] {
        let n = n as usize;
        &self.fwd_targets[self.fwd_offsets[n] as usize..self.fwd_offsets[n + 1] as usize]
    }

    /// What refers to the node: gc-tracked objects only, each once, in gc order. The first
    /// call derives the referrer index of the whole graph.
    pub fn referrers(&self, n: NodeId) -> &[NodeId] {
        let n = n as usize;
        let rev = self.rev.get_or_init(|| build_referrers(self));
        &rev.sources[rev.offsets[n] as usize..rev.offsets[n + 1] as usize]
    }

    /// Neighbours in a direction.
    pub fn neighbours(&self, n: NodeId, dir: Direction) -> &[NodeId] {
        match dir {
            Direction::Referents => self.referents(n),
            Direction::Referrers => self.referrers(n),
        }
    }

    /// Find a node by address. The first call indexes every address (O(n) time, 16 bytes a
    /// node at most half full); later calls are O(1). For a graph queried once or twice, use
    /// [`Graph::find_once`].
    pub fn find(&self, addr: u64) -> Option<NodeId> {
        self.by_addr.get_or_init(|| self.addr_index()).get(addr)
    }

    /// A new index of every address, for a caller that wants one for a while without the
    /// graph keeping it (see [`Graph::find`] for the one the graph keeps).
    pub fn addr_index(&self) -> AddrIndex {
        let mut index = AddrIndex::with_capacity(self.len());
        index.insert_run(self.addrs(), 0);
        index
    }

    /// Find a node by address with a linear scan: cheaper than building the index of
    /// [`Graph::find`] for one lookup (uses the index if it is already built).
    pub fn find_once(&self, addr: u64) -> Option<NodeId> {
        if let Some(index) = self.by_addr.get() {
            return index.get(addr);
        }
        self.addrs
            .iter()
            .position(|&a| a == addr)
            .map(|i| i as NodeId)
    }

    /// The referent CSR arrays: `offsets[n]..offsets[n + 1]` indexes `targets` for node `n`.
    pub fn referent_arrays(&self) -> (&[u32], &[NodeId]) {
        (&self.fwd_offsets, &self.fwd_targets)
    }

    /// All flags, by node id.
    pub fn all_flags(&self) -> &[u8] {
        &self.flags
    }

    /// Rebuild a graph from its columns (as stored in a snapshot file), checking every index.
    /// The referrer index is derived when first needed.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        addrs: impl Into<Lazy<Vec<u64>>>,
        types: Vec<TypeId>,
        flags: Vec<u8>,
        tracked: u32,
        fwd_offsets: Vec<u32>,
        fwd_targets: Vec<NodeId>,
        type_table: Vec<TypeInfo>,
    ) -> Result<Graph, String> {
        let addrs = addrs.into();
        let n = types.len();
        if n >= u32::MAX as usize {
            return Err("too many nodes".into());
        }
        if addrs.peek().is_some_and(|a| a.len() != n) || flags.len() != n {
            return Err("node columns differ in length".into());
        }
        if tracked as usize > n {
            return Err("more tracked nodes than nodes".into());
        }
        if fwd_offsets.len() != n + 1 || fwd_offsets[0] != 0 {
            return Err("bad edge offsets".into());
        }
        if fwd_offsets.windows(2).any(|w| w[0] > w[1])
            || fwd_offsets[n] as usize != fwd_targets.len()
        {
            return Err("edge offsets are not increasing".into());
        }
        let bad_edge = if fwd_targets.len() < 1 << 20 {
            fwd_targets.iter().any(|&t| t as usize >= n)
        } else {
            crate::threads::run(|| {
                use rayon::prelude::*;
                fwd_targets.par_iter().any(|&t| t as usize >= n)
            })
        };
        if bad_edge {
            return Err("edge to a node that does not exist".into());
        }
        if types.iter().any(|&t| t as usize >= type_table.len()) {
            return Err("node of a type that does not exist".into());
        }
        Ok(Graph {
            addrs,
            types,
            flags,
            tracked,
            fwd_offsets,
            fwd_targets,
            rev: OnceLock::new(),
            type_table,
            by_addr: OnceLock::new(),
            packed_arrays: None,
        })
    }

    /// Remove the nodes of `gone` (a set over this graph's nodes), in place: the others keep
    /// their order (tracked ones first) and are numbered anew without gaps, references to
    /// removed nodes are dropped, and types no node has any more leave the type table (the
    /// others keep their order). For a graph just built: no packed arrays, no packed
    /// addresses (decoded ones, or none, are kept in step).
    pub fn remove_nodes(&mut self, gone: &NodeSet) {
        assert!(
            self.packed_arrays.is_none() && self.addrs.packed_form().is_none(),
            "nodes are removed from a graph just built"
        );
        let n = self.len();
        let words = gone.words();
        // The new id of a kept node: kept nodes in the words before its own, and before it in
        // its own.
        let mut before = Vec::with_capacity(words.len());
        let mut kept = 0u32;
        for (w, &bits) in words.iter().enumerate() {
            before.push(kept);
            let in_word = (n - w * 64).min(64) as u32;
            kept += in_word - bits.count_ones();
        }
        let is_gone = |v: usize| words[v / 64] & (1 << (v % 64)) != 0;
        let new_id = |v: usize| {
            let below = !words[v / 64] & ((1u64 << (v % 64)) - 1);
            before[v / 64] + below.count_ones()
        };
        let mut used = vec![false; self.type_table.len()];
        let mut addrs = self
            .addrs
            .peek()
            .is_some_and(|a| a.len() == n)
            .then(|| self.take_addrs());
        let mut to = 0usize;
        let mut edges = 0usize;
        let mut tracked = 0u32;
        for v in 0..n {
            let (from, end) = (self.fwd_offsets[v], self.fwd_offsets[v + 1]);
            if is_gone(v) {
                continue;
            }
            self.types[to] = self.types[v];
            self.flags[to] = self.flags[v];
            if let Some(a) = &mut addrs {
                a[to] = a[v];
            }
            used[self.types[v] as usize] = true;
            if v < self.tracked as usize {
                tracked += 1;
            }
            self.fwd_offsets[to] = edges as u32;
            for k in from as usize..end as usize {
                let t = self.fwd_targets[k] as usize;
                if !is_gone(t) {
                    self.fwd_targets[edges] = new_id(t);
                    edges += 1;
                }
            }
            to += 1;
        }
        self.fwd_offsets[to] = edges as u32;
        self.fwd_offsets.truncate(to + 1);
        self.fwd_targets.truncate(edges);
        self.types.truncate(to);
        self.flags.truncate(to);
        if let Some(mut a) = addrs {
            a.truncate(to);
            self.addrs = a.into();
        }
        self.tracked = tracked;
        if used.iter().any(|&u| !u) {
            let mut renumber = vec![0 as TypeId; used.len()];
            let mut next = 0;
            for (t, &u) in used.iter().enumerate() {
                renumber[t] = next;
                next += u as TypeId;
            }
            let mut t = 0;
            self.type_table.retain(|_| {
                t += 1;
                used[t - 1]
            });
            for ty in &mut self.types {
                *ty = renumber[*ty as usize];
            }
        }
        self.rev = OnceLock::new();
        self.by_addr = OnceLock::new();
    }

    /// Bytes used by the graph's arrays (not counting type names).
    pub fn heap_bytes(&self) -> usize {
        let rev = self
            .rev
            .get()
            .map_or(0, |r| r.offsets.capacity() + r.sources.capacity());
        self.addrs.peek().map_or(0, |a| a.capacity() * 8)
            + self.types.capacity() * 4
            + self.flags.capacity()
            + (self.fwd_offsets.capacity() + self.fwd_targets.capacity() + rev) * 4
    }
}

/// One more than the last id a graph may hold.
const ID_LIMIT: NodeId = NodeId::MAX - 1;

/// A referent that [`Resolver::push_referents`] takes as already resolved: `RESOLVED | id` is
/// node `id`, found by the caller (no address has this bit: user-space addresses are below
/// 2^63), as a capture does for the tracked objects when it can tell their nodes from their
/// objects and keeps them out of the index ([`GraphBuilder::leave_tracked_out_of_index`]).
pub const RESOLVED: u64 = 1 << 63;

/// Looks up referents by address in a builder's index and records them as the nodes' edges,
/// on any thread (plain data only): the capture's second thread does it for chunk after chunk
/// of nodes while the first collects the referents of the next chunks and adds the nodes the
/// resolver numbered. Taken from a builder with [`GraphBuilder::take_resolver`] (the builder's
/// index and edges go with it) and given back with [`GraphBuilder::return_resolver`];
/// meanwhile the nodes it numbers are added with [`GraphBuilder::reserve_numbered`] and
/// [`GraphBuilder::add_reserved`].
pub struct Resolver {
    index: AddrIndex,
    /// The id the next address not found gets (`None`: its edge is dropped).
    next: Option<NodeId>,
    /// Node ids handed out: the builder's nodes when taken, and those numbered since.
    numbered: usize,
    /// The builder's referent arrays (see [`Graph`]), extended here.
    offsets: Vec<u32>,
    targets: Vec<NodeId>,
}

/// Where a [`Resolver`] will write the referents of the nodes to come, for other threads to
/// fault those pages in ahead of it ([`EdgeRoom::prefault_block`]). Addresses only: a room
/// that became stale (the arrays outgrew their reservation) only makes the hint useless.
#[derive(Clone, Copy, Debug)]
pub struct EdgeRoom {
    targets: (usize, usize, usize),
    offsets: (usize, usize, usize),
}

/// The unit in which [`EdgeRoom`] faults pages in: a huge page's span of address space
/// (aligned), so that threads that share the work, a block each, never zero one page twice.
const BLOCK_BYTES: usize = 2 << 20;

impl EdgeRoom {
    /// The room of the referents (`which` 0) or of the node ends (1): where its first item
    /// goes and where the room ends (addresses).
    fn bounds(&self, which: usize) -> (usize, usize) {
        let (base, len, cap) = if which == 0 {
            self.targets
        } else {
            self.offsets
        };
        (base + len * 4, base + cap * 4)
    }

    /// The block (2 MiB of address space, aligned) that holds item `i` of the room of `which`
    /// (0: referents, 1: node ends; item 0 is the first referent the resolver writes, or the
    /// end of the first node it records), numbered from the block that holds item 0.
    pub fn block_of(&self, which: usize, i: usize) -> usize {
        let start = self.bounds(which).0;
        (start + i * 4) / BLOCK_BYTES - start / BLOCK_BYTES
    }

    /// The addresses of block `k` of `which` that lie in the room (empty past its end).
    fn block(&self, which: usize, k: usize) -> std::ops::Range<usize> {
        let (start, end) = self.bounds(which);
        let block = (start / BLOCK_BYTES + k) * BLOCK_BYTES;
        block.max(start)..(block + BLOCK_BYTES).min(end).max(block.max(start))
    }

    /// Fault in the part of block `k` of `which` (see [`EdgeRoom::block_of`]) that lies in the
    /// room, ready to be written ([`crate::hugepages::populate`]: no content changes).
    pub fn prefault_block(&self, which: usize, k: usize) {
        let r = self.block(which, k);
        crate::hugepages::populate(r.start, r.len());
    }
}

impl Resolver {
    /// Where the referents of the nodes to come will be written (see [`EdgeRoom`]).
    pub fn edge_room(&self) -> EdgeRoom {
        let room = |v: &Vec<u32>| (v.as_ptr() as usize, v.len(), v.capacity());
        EdgeRoom {
            targets: room(&self.targets),
            offsets: room(&self.offsets),
        }
    }

    /// How many node ids exist: the builder's nodes when this resolver was taken, and those it
    /// numbered since. After each chunk, the builder is told with
    /// [`GraphBuilder::reserve_numbered`].
    pub fn numbered(&self) -> usize {
        self.numbered
    }

    /// Record the referents of nodes `first..first + ends.len()`, given by address: node
    /// `first + k`'s are `addrs[ends[k - 1]..ends[k]]` (from 0 for the first). Each address is
    /// looked up in the index; one not found is, for a resolver that adds, given the id of the
    /// next node to come (in order of first appearance: the same address again gets the same
    /// id) and listed in `fresh`, whose nodes the caller must then add in order with
    /// [`GraphBuilder::add_reserved`]; for one that does not add, the edge is dropped. A
    /// referent given as [`RESOLVED`]` | id` is node `id` (one that exists, else
    /// [`GraphError::BadResolved`]), not looked up. Nodes must be pushed in id order.
    pub fn push_referents(
        &mut self,
        first: NodeId,
        ends: &[usize],
        addrs: &[u64],
        fresh: &mut Vec<u64>,
    ) -> Result<(), GraphError> {
        // The lookups are cache misses: the slots of the addresses a few places ahead are
        // prefetched so that they overlap (20 measured a little faster than 12 or 32).
        const AHEAD: usize = 20;
        fresh.clear();
        let expected = (self.offsets.len() - 1) as NodeId;
        if first != expected {
            return Err(GraphError::OutOfOrder {
                expected,
                got: first,
            });
        }
        if ends.last().map_or(0, |&e| e) != addrs.len() || ends.windows(2).any(|w| w[0] > w[1]) {
            return Err(GraphError::BadEnds);
        }
        if self.targets.len() + addrs.len() >= u32::MAX as usize {
            return Err(GraphError::TooManyEdges);
        }
        self.targets.reserve(addrs.len());
        self.offsets.reserve(ends.len());
        for &a in addrs.iter().take(AHEAD) {
            if a & RESOLVED == 0 {
                self.index.prefetch(a);
            }
        }
        let mut j = 0;
        for &end in ends {
            while j < end {
                let a = addrs[j];
                if let Some(&b) = addrs.get(j + AHEAD) {
                    if b & RESOLVED == 0 {
                        self.index.prefetch(b);
                    }
                }
                j += 1;
                if a & RESOLVED != 0 {
                    let id = a & !RESOLVED;
                    if id >= self.numbered as u64 {
                        return Err(GraphError::BadResolved);
                    }
                    self.targets.push(id as NodeId);
                    continue;
                }
                let id = match self.next {
                    None => match self.index.get(a) {
                        Some(id) => id,
                        None => continue,
                    },
                    Some(next) => match self.index.get_or_insert(a, next) {
                        Ok(id) => id,
                        Err(id) => {
                            if id >= ID_LIMIT {
                                return Err(GraphError::TooManyNodes);
                            }
                            fresh.push(a);
                            self.numbered += 1;
                            self.next = Some(id + 1);
                            id
                        }
                    },
                };
                self.targets.push(id);
            }
            self.offsets.push(self.targets.len() as u32);
        }
        Ok(())
    }
}

/// Builds a [`Graph`] node by node.
///
/// Usage: add the gc-tracked nodes first with [`GraphBuilder::add_tracked`], then for each node
/// in id order call [`GraphBuilder::push_edges`] with its referents' addresses; unknown referents
/// become new (untracked) nodes at the end, whose own edges are pushed when their turn comes.
#[derive(Default)]
pub struct GraphBuilder {
    g: Graph,
    /// The graph's addresses, moved into it by [`GraphBuilder::finish`] (none kept with
    /// [`GraphBuilder::without_addrs`]).
    addrs: Vec<u64>,
    no_addrs: bool,
    index: AddrIndex,
    types: TypeIds,
    sealed_tracked: bool,
    /// Ids a [`Resolver`] gave to addresses whose nodes are not added yet.
    reserved: usize,
    /// The address index is out with a [`Resolver`].
    index_lent: bool,
    /// Threads [`GraphBuilder::add_tracked_run`] may use (0 or 1: this one only).
    threads: usize,
    /// Tracked nodes are not put in the index
    /// ([`GraphBuilder::leave_tracked_out_of_index`]).
    tracked_unindexed: bool,
    /// Its arrays and index are on huge pages.
    huge: bool,
}

/// Type ids by type address, as the builder hands them out (in order of first appearance),
/// each with its entry in the graph's type table.
#[derive(Default)]
struct TypeIds(Numbering);

impl TypeIds {
    #[inline]
    fn get(&mut self, table: &mut Vec<TypeInfo>, type_addr: u64) -> TypeId {
        let t = self.0.number(type_addr);
        if t as usize == table.len() {
            table.push(TypeInfo {
                addr: type_addr,
                ..Default::default()
            });
        }
        t
    }
}

impl GraphBuilder {
    /// A builder with room for `nodes` nodes.
    pub fn with_capacity(nodes: usize, edges: usize) -> Self {
        Self::with_capacity_paged(nodes, edges, crate::hugepages::wanted())
    }

    fn with_capacity_paged(nodes: usize, edges: usize, huge: bool) -> Self {
        let mut b = GraphBuilder {
            huge,
            ..Default::default()
        };
        b.addrs.reserve(nodes);
        b.g.types.reserve(nodes);
        b.g.flags.reserve(nodes);
        b.g.fwd_offsets.reserve(nodes + 1);
        b.g.fwd_targets.reserve(edges);
        // Written once in order, but big: fewer page faults.
        crate::hugepages::advise_vec_if(&b.addrs, huge);
        crate::hugepages::advise_vec_if(&b.g.types, huge);
        crate::hugepages::advise_vec_if(&b.g.fwd_offsets, huge);
        crate::hugepages::advise_vec_if(&b.g.fwd_targets, huge);
        b.index = AddrIndex::with_capacity_paged(nodes, huge);
        b.g.fwd_offsets.push(0);
        b
    }

    /// [`GraphBuilder::without_addrs`] for a capture of a live heap, whose arrays are written
    /// once, right after they are made: on huge pages only where
    /// [`crate::hugepages::wanted_for_capture`].
    pub fn for_capture(nodes: usize, edges: usize) -> Self {
        Self::without_addrs_paged(nodes, edges, crate::hugepages::wanted_for_capture())
    }

    /// As [`GraphBuilder::with_capacity`], for a caller that has the nodes' addresses itself
    /// and gives them to [`GraphBuilder::finish_with_addrs`]: none are kept meanwhile (8
    /// bytes per node less while the address index is also held).
    pub fn without_addrs(nodes: usize, edges: usize) -> Self {
        Self::without_addrs_paged(nodes, edges, crate::hugepages::wanted())
    }

    fn without_addrs_paged(nodes: usize, edges: usize, huge: bool) -> Self {
        let mut b = Self::with_capacity_paged(nodes, edges, huge);
        b.addrs = Vec::new();
        b.no_addrs = true;
        b
    }

    /// Keep the tracked nodes out of the address index, which is made anew with room for
    /// `others` nodes: for a caller that finds the tracked nodes of referents itself and gives
    /// them to [`Resolver::push_referents`] as [`RESOLVED`] (a capture that can tell an
    /// object's node from the object). [`GraphBuilder::lookup`] then finds only the other
    /// nodes, [`GraphBuilder::add_tracked`] does not check for duplicates, and
    /// [`GraphBuilder::push_edges`] would make a second node for a tracked referent. Only
    /// before any node is added (else [`GraphError::OutOfOrder`]).
    pub fn leave_tracked_out_of_index(&mut self, others: usize) -> Result<(), GraphError> {
        if !self.is_empty() || self.index_lent {
            return Err(GraphError::OutOfOrder {
                expected: 0,
                got: self.len() as NodeId,
            });
        }
        self.tracked_unindexed = true;
        self.index = AddrIndex::with_capacity_paged(others, self.huge);
        Ok(())
    }

    /// The memory reserved for the first `nodes` nodes and `edges` references to come and not
    /// written yet, as address and bytes, in the order a capture first writes it: the nodes'
    /// types and flags, the address index, the node ends, the referents. Addresses only (for
    /// faulting pages in ahead on another thread): stale once an array grows.
    pub fn unwritten(&self, nodes: usize, edges: usize) -> Vec<(usize, usize)> {
        fn room<T>(v: &Vec<T>, upto: usize) -> (usize, usize) {
            let size = std::mem::size_of::<T>();
            let end = upto.min(v.capacity());
            let start = v.len().min(end);
            (v.as_ptr() as usize + start * size, (end - start) * size)
        }
        vec![
            room(&self.g.types, nodes),
            room(&self.g.flags, nodes),
            self.index.slots_memory(),
            room(&self.g.fwd_offsets, nodes + 1),
            room(&self.g.fwd_targets, edges),
        ]
    }

    fn type_id(&mut self, type_addr: u64) -> TypeId {
        self.types.get(&mut self.g.type_table, type_addr)
    }

    /// Let [`GraphBuilder::add_tracked_run`] use `threads` threads (two at most: the address
    /// index filled by halves, see [`AddrIndex::insert_run_on_two`]).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads;
    }

    fn add(&mut self, addr: u64, type_addr: u64, flags: u8) -> Result<NodeId, GraphError> {
        if self.len() >= u32::MAX as usize {
            return Err(GraphError::TooManyNodes);
        }
        if self.g.fwd_offsets.is_empty() {
            self.g.fwd_offsets.push(0);
        }
        if self.reserved != 0 {
            return Err(GraphError::ReservedNodes);
        }
        if self.index_lent {
            return Err(GraphError::IndexLent);
        }
        let id = self.len() as NodeId;
        let t = self.type_id(type_addr);
        if !self.no_addrs {
            self.addrs.push(addr);
        }
        self.g.types.push(t);
        self.g.flags.push(flags);
        if !(self.tracked_unindexed && flags & flags::TRACKED != 0) {
            self.index.insert(addr, id);
        }
        Ok(id)
    }

    /// Add a gc-tracked node. All tracked nodes must be added before any untracked one.
    /// Returns `None` if the address was already added (a duplicate in the input).
    pub fn add_tracked(
        &mut self,
        addr: u64,
        type_addr: u64,
        flags: u8,
    ) -> Result<Option<NodeId>, GraphError> {
        debug_assert!(!self.sealed_tracked, "tracked nodes come first");
        if !self.tracked_unindexed && self.index.get(addr).is_some() {
            return Ok(None);
        }
        let id = self.add(addr, type_addr, flags | flags::TRACKED)?;
        self.g.tracked = id + 1;
        Ok(Some(id))
    }

    /// Add gc-tracked nodes `addrs` (with `types`, both in node order) as
    /// [`GraphBuilder::add_tracked`] one by one would, except that an address met again is a
    /// node again (whose id the index does not give: it keeps the first). Faster: the index
    /// inserts overlap ([`AddrIndex::insert_run`]).
    pub fn add_tracked_run(
        &mut self,
        addrs: &[u64],
        types: &[u64],
        flags: u8,
    ) -> Result<(), GraphError> {
        debug_assert_eq!(addrs.len(), types.len());
        self.add_tracked_run_with(addrs, flags, |g, type_ids| {
            for &t in types {
                let t = type_ids.get(&mut g.type_table, t);
                g.types.push(t);
            }
        })
    }

    /// [`GraphBuilder::add_tracked_run`] with each node's type given as an index into the
    /// type addresses `distinct` (as a listing numbers them: 4 bytes per node instead of 8, and
    /// a type-id lookup per distinct type instead of one per node). An index out of range is
    /// [`GraphError::BadTypes`]; nothing is added then.
    pub fn add_tracked_run_numbered(
        &mut self,
        addrs: &[u64],
        types: &[u32],
        distinct: &[u64],
        flags: u8,
    ) -> Result<(), GraphError> {
        if addrs.len() != types.len() || types.iter().any(|&t| t as usize >= distinct.len()) {
            return Err(GraphError::BadTypes);
        }
        self.add_tracked_run_with(addrs, flags, |g, type_ids| {
            // The builder's id of each distinct type, found when first met (in node order,
            // as `add_tracked_run` numbers them).
            let mut ids = vec![TypeId::MAX; distinct.len()];
            g.types.extend(types.iter().map(|&t| {
                let id = &mut ids[t as usize];
                if *id == TypeId::MAX {
                    *id = type_ids.get(&mut g.type_table, distinct[t as usize]);
                }
                *id
            }));
        })
    }

    fn add_tracked_run_with(
        &mut self,
        addrs: &[u64],
        flags: u8,
        add_types: impl FnOnce(&mut Graph, &mut TypeIds),
    ) -> Result<(), GraphError> {
        debug_assert!(!self.sealed_tracked, "tracked nodes come first");
        if self.index_lent {
            return Err(GraphError::IndexLent);
        }
        let first = self.len();
        if first + addrs.len() > u32::MAX as usize {
            return Err(GraphError::TooManyNodes);
        }
        if self.g.fwd_offsets.is_empty() {
            self.g.fwd_offsets.push(0);
        }
        let (g, type_ids) = (&mut self.g, &mut self.types);
        let add_types = || add_types(g, type_ids);
        // Big runs on two threads: the index's inserts are cache misses at random places.
        if self.tracked_unindexed {
            add_types();
        } else if self.threads > 1 && addrs.len() >= 1 << 16 {
            self.index
                .insert_run_on_two(addrs, first as NodeId, add_types);
        } else {
            add_types();
            self.index.insert_run(addrs, first as NodeId);
        }
        if !self.no_addrs {
            self.addrs.extend_from_slice(addrs);
        }
        let fl = flags | flags::TRACKED;
        self.g.flags.resize(self.len(), fl);
        self.g.tracked = self.len() as NodeId;
        Ok(())
    }

    /// Add an untracked node before any edges are pushed (e.g. a root the gc does not track).
    pub fn add_untracked(
        &mut self,
        addr: u64,
        type_addr: u64,
        flags: u8,
    ) -> Result<NodeId, GraphError> {
        self.sealed_tracked = true;
        self.add(addr, type_addr, flags & !flags::TRACKED)
    }

    /// The node for an address, if known (never a tracked node's when tracked nodes are left
    /// out of the index: [`GraphBuilder::leave_tracked_out_of_index`]).
    pub fn lookup(&self, addr: u64) -> Option<NodeId> {
        debug_assert!(!self.index_lent, "the index is out with a resolver");
        self.index.get(addr)
    }

    /// Number of nodes so far.
    pub fn len(&self) -> usize {
        self.g.types.len()
    }

    /// The types seen so far, in id order.
    pub fn type_table(&self) -> &[TypeInfo] {
        &self.g.type_table
    }

    /// True when no node was added yet.
    pub fn is_empty(&self) -> bool {
        self.g.types.is_empty()
    }

    /// Id of the next node whose edges are expected.
    pub fn next_to_push(&self) -> NodeId {
        (self.g.fwd_offsets.len().max(1) - 1) as NodeId
    }

    /// Record node `n`'s referents, given by address. Addresses not seen before are passed to
    /// `describe`, which gives their `(type_addr, flags)` to make them new (untracked) nodes,
    /// or None to drop the edge; `on_new` is then called with the new node's id and address
    /// (the caller keeps its object alive and decides whether to traverse it later). Nodes must
    /// be pushed in id order.
    pub fn push_edges<I, D, F>(
        &mut self,
        n: NodeId,
        referents: I,
        mut describe: D,
        mut on_new: F,
    ) -> Result<(), GraphError>
    where
        I: IntoIterator<Item = u64>,
        D: FnMut(u64) -> Option<(u64, u8)>,
        F: FnMut(NodeId, u64),
    {
        self.sealed_tracked = true;
        if self.g.fwd_offsets.is_empty() {
            self.g.fwd_offsets.push(0);
        }
        let expected = self.next_to_push();
        if n != expected {
            return Err(GraphError::OutOfOrder { expected, got: n });
        }
        if self.reserved != 0 {
            return Err(GraphError::ReservedNodes);
        }
        if self.index_lent {
            return Err(GraphError::IndexLent);
        }
        for addr in referents {
            let id = match self.index.get(addr) {
                Some(id) => id,
                None => {
                    let Some((type_addr, fl)) = describe(addr) else {
                        continue;
                    };
                    let id = self.add(addr, type_addr, fl & !flags::TRACKED)?;
                    on_new(id, addr);
                    id
                }
            };
            self.g.fwd_targets.push(id);
        }
        if self.g.fwd_targets.len() >= u32::MAX as usize {
            return Err(GraphError::TooManyEdges);
        }
        self.g.fwd_offsets.push(self.g.fwd_targets.len() as u32);
        Ok(())
    }

    /// A [`Resolver`] holding this builder's address index, for looking up referents on another
    /// thread while this builder records what it resolved. With `adding`, addresses not found
    /// are given the ids of the nodes to come; without, edges to them are dropped. Until
    /// the resolver is given back ([`GraphBuilder::return_resolver`]), nodes are added only as
    /// it numbers them ([`GraphBuilder::reserve_numbered`], then
    /// [`GraphBuilder::add_reserved`]): other additions fail with [`GraphError::IndexLent`].
    pub fn take_resolver(&mut self, adding: bool) -> Result<Resolver, GraphError> {
        if self.index_lent {
            return Err(GraphError::IndexLent);
        }
        let numbered = self.len() + self.reserved;
        self.sealed_tracked = true;
        self.index_lent = true;
        if self.g.fwd_offsets.is_empty() {
            self.g.fwd_offsets.push(0);
        }
        Ok(Resolver {
            index: std::mem::take(&mut self.index),
            next: adding.then_some(numbered as NodeId),
            numbered,
            offsets: std::mem::take(&mut self.g.fwd_offsets),
            targets: std::mem::take(&mut self.g.fwd_targets),
        })
    }

    /// Give back the resolver taken with [`GraphBuilder::take_resolver`], and with it the
    /// index. The nodes it numbered must have been added (else
    /// [`GraphError::ReservedNodes`]; the index comes back all the same).
    pub fn return_resolver(&mut self, resolver: Resolver) -> Result<(), GraphError> {
        self.index = resolver.index;
        self.g.fwd_offsets = resolver.offsets;
        self.g.fwd_targets = resolver.targets;
        self.index_lent = false;
        if resolver.numbered != self.len() + self.reserved {
            self.reserved = resolver.numbered.saturating_sub(self.len());
            return Err(GraphError::ReservedNodes);
        }
        Ok(())
    }

    /// The lent resolver has numbered `numbered` nodes in all ([`Resolver::numbered`], read
    /// after it resolved a chunk): those not added yet are to be added next, with
    /// [`GraphBuilder::add_reserved`], before that chunk's edges are pushed. A count below
    /// what the builder already knows of is [`GraphError::ReservedNodes`].
    pub fn reserve_numbered(&mut self, numbered: usize) -> Result<(), GraphError> {
        if numbered < self.len() + self.reserved {
            return Err(GraphError::ReservedNodes);
        }
        self.reserved = numbered - self.len();
        Ok(())
    }

    /// Add the node a [`Resolver`] numbered for `addr` (reserved nodes are added in the order
    /// they were given ids); already in the index.
    pub fn add_reserved(
        &mut self,
        addr: u64,
        type_addr: u64,
        flags: u8,
    ) -> Result<NodeId, GraphError> {
        if self.reserved == 0 {
            return Err(GraphError::ReservedNodes);
        }
        debug_assert!(self.index_lent || self.index.get(addr) == Some(self.len() as NodeId));
        let id = self.len() as NodeId;
        let t = self.type_id(type_addr);
        if !self.no_addrs {
            self.addrs.push(addr);
        }
        self.g.types.push(t);
        self.g.flags.push(flags & !flags::TRACKED);
        self.reserved -= 1;
        Ok(id)
    }

    /// Finish: nodes whose edges were not pushed get none (the referrer index is derived when
    /// first needed).
    pub fn finish(self) -> Graph {
        assert!(
            !self.no_addrs,
            "a builder without addresses finishes with them"
        );
        self.finish_with_addrs(|_| Vec::new())
    }

    /// [`GraphBuilder::finish`] a builder made [`GraphBuilder::without_addrs`] with no
    /// addresses at all: [`Graph::set_addrs_packed`] must give them before the graph is used
    /// (a capture that packs them from its own references to the objects, as a snapshot does,
    /// never holds a column of them).
    pub fn finish_addrs_later(mut self) -> Graph {
        assert!(self.no_addrs, "a builder with addresses keeps them");
        self.no_addrs = false;
        self.finish_with_addrs(|_| unreachable!("not asked for"))
    }

    /// [`GraphBuilder::finish`] a builder made [`GraphBuilder::without_addrs`]: `addrs(n)`
    /// gives the addresses of the `n` nodes in id order, once the address index is freed.
    /// Panics if it gives another number of addresses.
    pub fn finish_with_addrs(mut self, addrs: impl FnOnce(usize) -> Vec<u64>) -> Graph {
        let n = self.len();
        if self.g.fwd_offsets.is_empty() {
            self.g.fwd_offsets.push(0);
        }
        let last = *self.g.fwd_offsets.last().unwrap_or(&0);
        while self.g.fwd_offsets.len() < n + 1 {
            self.g.fwd_offsets.push(last);
        }
        drop(self.index);
        // Room reserved for references beyond those met is given back (virtual memory: the
        // pages past the end were never touched).
        let targets = &mut self.g.fwd_targets;
        if targets.capacity() - targets.len() > targets.len() / 8 {
            targets.shrink_to_fit();
        }
        if self.no_addrs {
            self.addrs = addrs(n);
            assert_eq!(self.addrs.len(), n, "one address per node");
        }
        self.g.addrs = self.addrs.into();
        self.g
    }
}

/// Derive the referrer index: for each target, its tracked sources in increasing id (gc) order,
/// each once. Targets are split into ranges, one per task of the pool of [`crate::threads`]:
/// each task reads every edge but writes only its own targets' counts and slots, so the index is
/// the same on any number of threads.
fn build_referrers(g: &Graph) -> Referrers {
    let n = g.len();
    let tracked = g.tracked as usize;
    let fwd_offsets = &g.fwd_offsets;
    let fwd_targets = &g.fwd_targets;
    let tasks = crate::threads::range_tasks_for(fwd_targets.len(), 1 << 20);
    // Target ranges, each a multiple of 64 nodes long.
    let span = n.div_ceil(tasks).next_multiple_of(64).max(64);
    let ranges: Vec<(usize, usize)> = (0..n.div_ceil(span))
        .map(|i| (i * span, ((i + 1) * span).min(n)))
        .collect();
    // Indexed by target: written at random.
    let mut counts: Vec<u32> = crate::hugepages::zeroed(n + 1);
    let mut last = crate::hugepages::filled(u32::MAX, n);
    // Both passes visit the tracked sources in order, each task keeping the targets in its range.
    let pass = |lo: usize, hi: usize, last: &mut [u32], found: &mut dyn FnMut(usize, u32)| {
        let (lo32, hi32) = (lo as u32, hi as u32);
        for src in 0..tracked {
            let s = fwd_offsets[src] as usize;
            let e = fwd_offsets[src + 1] as usize;
            for &t in &fwd_targets[s..e] {
                if t >= lo32 && t < hi32 {
                    let ti = t as usize - lo;
                    if last[ti] != src as u32 {
                        last[ti] = src as u32;
                        found(ti, src as u32);
                    }
                }
            }
        }
    };
    {
        let mut count_parts: Vec<(&mut [u32], &mut [u32], usize, usize)> = Vec::new();
        let mut c_rest = &mut counts[1..];
        let mut l_rest = &mut last[..];
        for &(lo, hi) in &ranges {
            let (c, ct) = c_rest.split_at_mut(hi - lo);
            let (l, lt) = l_rest.split_at_mut(hi - lo);
            c_rest = ct;
            l_rest = lt;
            count_parts.push((c, l, lo, hi));
        }
        crate::threads::for_each_part(count_parts, |(c, l, lo, hi)| {
            pass(lo, hi, l, &mut |ti, _| c[ti] += 1);
        });
    }
    for i in 0..n {
        counts[i + 1] += counts[i];
    }
    let total = counts[n] as usize;
    let mut sources: Vec<NodeId> = crate::hugepages::zeroed(total);
    last.iter_mut().for_each(|x| *x = u32::MAX);
    {
        let mut fill_parts: Vec<(&mut [NodeId], &mut [u32], usize, usize)> = Vec::new();
        let mut s_rest = &mut sources[..];
        let mut l_rest = &mut last[..];
        for &(lo, hi) in &ranges {
            let len = (counts[hi] - counts[lo]) as usize;
            let (sp, st) = s_rest.split_at_mut(len);
            let (l, lt) = l_rest.split_at_mut(hi - lo);
            s_rest = st;
            l_rest = lt;
            fill_parts.push((sp, l, lo, hi));
        }
        let counts = &counts;
        crate::threads::for_each_part(fill_parts, |(sp, l, lo, hi)| {
            let base = counts[lo] as usize;
            // Next free slot per target of the range, relative to the range's start.
            let mut fill: Vec<u32> = counts[lo..hi]
                .iter()
                .map(|&c| (c as usize - base) as u32)
                .collect();
            pass(lo, hi, l, &mut |ti, src| {
                sp[fill[ti] as usize] = src;
                fill[ti] += 1;
            });
        });
    }
    Referrers {
        offsets: counts,
        sources,
    }
}

/// Build a graph by hand: `nodes` are `(type name, tracked)`, `edges` are referents per node.
/// Addresses are `8 * (id + 1)`; types are interned by name. Meant for tests and examples.
pub fn from_edges(nodes: &[(&str, bool)], edges: &[&[NodeId]]) -> Graph {
    // A deterministic pseudo address per type name (FNV-1a).
    let type_addr = |name: &str| -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        h | 1
    };
    let tracked = nodes.iter().take_while(|n| n.1).count();
    assert!(
        nodes[tracked..].iter().all(|n| !n.1),
        "tracked nodes must come first"
    );
    let mut b = GraphBuilder::with_capacity(nodes.len(), 0);
    for (i, (name, tracked)) in nodes.iter().enumerate() {
        let addr = 8 * (i as u64 + 1);
        if *tracked {
            b.add_tracked(addr, type_addr(name), flags::GC_TYPE)
                .unwrap();
        } else {
            b.add(addr, type_addr(name), flags::GC_TYPE).unwrap();
        }
    }
    for (i, list) in edges.iter().enumerate() {
        let refs: Vec<u64> = list.iter().map(|&t| 8 * (t as u64 + 1)).collect();
        b.push_edges(
            i as NodeId,
            refs,
            |_| panic!("edge to an unknown node"),
            |_, _| {},
        )
        .unwrap();
    }
    let mut g = b.finish();
    for info in g.type_table_mut() {
        if let Some((name, _)) = nodes.iter().find(|n| type_addr(n.0) == info.addr) {
            info.short_name = name.to_string();
            info.long_name = format!("builtins.{name}");
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_nodes_leave_the_others_in_order_with_their_references() {
        // 0 list -> [1, 2, 1], 1 A -> [3], 2 B -> [2, 4], 3 str (untracked) -> [], 4 int
        // (untracked) -> []; 70 nodes of type "pad" after them, the 69th referring to 1 and 72.
        let mut nodes = vec![
            ("list", true),
            ("A", true),
            ("B", true),
            ("str", false),
            ("int", false),
        ];
        nodes.extend(std::iter::repeat_n(("pad", false), 70));
        let mut edges: Vec<Vec<NodeId>> = vec![vec![1, 2, 1], vec![3], vec![2, 4], vec![], vec![]];
        edges.extend(std::iter::repeat_n(vec![], 70));
        edges[68] = vec![1, 72];
        let lists: Vec<&[NodeId]> = edges.iter().map(|e| e.as_slice()).collect();
        let mut g = from_edges(&nodes, &lists);
        let addrs = g.addrs().to_vec();
        assert_eq!(g.referrers(2), &[0, 2]); // built, to be dropped with the removal
        let mut gone = NodeSet::new(g.len());
        for v in [2, 4, 70] {
            gone.insert(v);
        }
        g.remove_nodes(&gone);
        assert_eq!(g.len(), 72);
        assert_eq!(g.tracked_count(), 2);
        assert_eq!(g.referents(0), &[1, 1]);
        assert_eq!(g.referents(1), &[2]);
        assert_eq!(g.referents(2), &[] as &[NodeId]);
        // Old 68 is new 66 (two removed before it), old 72 new 69 (three).
        assert_eq!(g.referents(66), &[1, 69]);
        assert_eq!(g.edge_count(), 5);
        let kept: Vec<u64> = (0..75)
            .filter(|v| ![2, 4, 70].contains(v))
            .map(|v| addrs[v])
            .collect();
        assert_eq!(g.addrs(), kept.as_slice());
        // "B" and "int" had no node left: out of the table, the others in their order.
        let names: Vec<&str> = g
            .type_table()
            .iter()
            .map(|t| t.short_name.as_str())
            .collect();
        assert_eq!(names, ["list", "A", "str", "pad"]);
        assert_eq!(g.type_table()[g.type_of(2) as usize].short_name, "str");
        assert_eq!(g.type_table()[g.type_of(71) as usize].short_name, "pad");
        // Referrers (tracked ones) derived anew: new 2 is the old str, which old 1 refers to
        // (old 2 referred to itself).
        assert_eq!(g.referrers(2), &[1]);
        assert_eq!(g.find(addrs[3]), Some(2));
        assert_eq!(g.find(addrs[2]), None);
    }

    #[test]
    fn referrers_are_tracked_deduplicated_and_in_gc_order() {
        // 0 -> [2, 2, 1], 1 -> [2], 3 (untracked dict) -> [2]
        let g = from_edges(
            &[
                ("list", true),
                ("list", true),
                ("str", true),
                ("dict", false),
            ],
            &[&[2, 2, 1], &[2], &[], &[2]],
        );
        assert_eq!(g.referents(0), &[2, 2, 1]);
        assert_eq!(g.referrers(2), &[0, 1]);
        assert_eq!(g.referrers(1), &[0]);
        assert_eq!(g.referrers(0), &[] as &[NodeId]);
        assert_eq!(g.referents(3), &[2]);
        assert_eq!(g.tracked_count(), 3);
        assert_eq!(g.type_table().len(), 3);
        assert_eq!(g.type_table()[g.type_of(3) as usize].short_name, "dict");
    }

    #[test]
    fn builder_discovers_untracked_referents() {
        let mut b = GraphBuilder::with_capacity(4, 4);
        b.add_tracked(100, 1, flags::GC_TYPE).unwrap();
        assert_eq!(
            b.add_tracked(100, 1, 0).unwrap(),
            None,
            "duplicates are ignored"
        );
        b.add_tracked(200, 1, flags::GC_TYPE).unwrap();
        let mut new = vec![];
        let describe = |addr: u64| match addr {
            300 => Some((2, 0)),
            400 => Some((2, flags::GC_TYPE)),
            _ => None,
        };
        b.push_edges(0, [300, 200, 300, 999], describe, |n, _| new.push(n))
            .unwrap();
        assert_eq!(new, vec![2], "999 was dropped, 300 added once");
        assert!(
            b.push_edges(2, [], describe, |_, _| {}).is_err(),
            "out of order"
        );
        b.push_edges(1, [400], describe, |n, _| new.push(n))
            .unwrap();
        b.push_edges(2, [], describe, |_, _| {}).unwrap();
        b.push_edges(3, [100], describe, |_, _| {}).unwrap();
        let g = b.finish();
        assert_eq!(g.len(), 4);
        assert_eq!(g.referents(0), &[2, 1, 2]);
        assert_eq!(g.referrers(2), &[0]);
        // Node 3 is untracked: its edge to node 0 is a referent but not a referrer.
        assert_eq!(g.referents(3), &[0]);
        assert_eq!(g.referrers(0), &[] as &[NodeId]);
        assert!(!g.has(3, flags::TRACKED));
        assert!(g.has(3, flags::GC_TYPE));
        assert_eq!(g.find_once(400), Some(3));
        assert_eq!(g.find_once(500), None);
        assert_eq!(g.find(400), Some(3));
        assert_eq!(g.find(500), None);
        // Once the index is built, find_once uses it: same answers.
        for (i, &a) in g.addrs().iter().enumerate() {
            assert_eq!(g.find(a), Some(i as NodeId));
            assert_eq!(g.find_once(a), Some(i as NodeId));
        }
    }

    #[test]
    fn a_run_of_tracked_nodes_is_the_same_as_one_by_one() {
        // Types in runs and alternating; more nodes than the builder was sized for.
        let addrs: Vec<u64> = (0..5000u64).map(|i| 0x7000_0000 + i * 48).collect();
        let types: Vec<u64> = (0..5000u64)
            .map(|i| if i % 7 < 3 { 0x10 } else { 0x20 + (i % 2) * 16 })
            .collect();
        let edges = |b: &mut GraphBuilder| {
            for n in 0..addrs.len() {
                let refs = [
                    addrs[(n * 31) % addrs.len()],
                    0x9000_0000 + (n as u64 % 5) * 16,
                ];
                b.push_edges(n as NodeId, refs, |_| Some((0x40, 0)), |_, _| {})
                    .unwrap();
            }
        };
        let mut one = GraphBuilder::with_capacity(100, 100);
        for (&a, &t) in addrs.iter().zip(&types) {
            one.add_tracked(a, t, flags::GC_TYPE).unwrap();
        }
        edges(&mut one);
        let one = one.finish();
        let mut run = GraphBuilder::with_capacity(100, 100);
        run.add_tracked_run(&addrs[..1234], &types[..1234], flags::GC_TYPE)
            .unwrap();
        run.add_tracked_run(&addrs[1234..], &types[1234..], flags::GC_TYPE)
            .unwrap();
        edges(&mut run);
        let run = run.finish();
        assert_eq!(run.len(), 5005);
        // Room reserved for references and never used is given back.
        let mut roomy = GraphBuilder::with_capacity(2, 1 << 20);
        roomy.add_tracked_run(&addrs[..2], &types[..2], 0).unwrap();
        roomy
            .push_edges(0, [addrs[1]], |_| None, |_, _| {})
            .unwrap();
        assert!(roomy.finish().heap_bytes() < 1 << 10);
        assert_eq!(run.tracked_count(), one.tracked_count());
        assert_eq!(run.addrs(), one.addrs());
        assert_eq!(run.types(), one.types());
        assert_eq!(run.all_flags(), one.all_flags());
        assert_eq!(run.referent_arrays(), one.referent_arrays());
        let addrs_of = |g: &Graph| g.type_table().iter().map(|t| t.addr).collect::<Vec<_>>();
        assert_eq!(addrs_of(&run), addrs_of(&one));
        // A builder that keeps no addresses, given them at the end, builds the same graph.
        let mut bare = GraphBuilder::without_addrs(100, 100);
        bare.add_tracked_run(&addrs[..1234], &types[..1234], flags::GC_TYPE)
            .unwrap();
        bare.add_tracked_run(&addrs[1234..], &types[1234..], flags::GC_TYPE)
            .unwrap();
        let mut added = Vec::new();
        for n in 0..addrs.len() {
            let refs = [
                addrs[(n * 31) % addrs.len()],
                0x9000_0000 + (n as u64 % 5) * 16,
            ];
            bare.push_edges(n as NodeId, refs, |_| Some((0x40, 0)), |_, a| added.push(a))
                .unwrap();
        }
        assert_eq!(bare.len(), 5005);
        let bare = bare.finish_with_addrs(|n| {
            assert_eq!(n, 5005);
            addrs.iter().chain(&added).copied().collect()
        });
        assert_eq!(bare.addrs(), one.addrs());
        assert_eq!(bare.types(), one.types());
        assert_eq!(bare.all_flags(), one.all_flags());
        assert_eq!(bare.referent_arrays(), one.referent_arrays());
        assert_eq!(bare.tracked_count(), one.tracked_count());
    }

    #[test]
    fn a_resolver_builds_what_push_edges_builds() {
        // Tracked nodes 0..500; referents: tracked ones, new ones met again in the same chunk
        // and in later chunks, and new ones' own referents (pushed when their turn comes).
        let tracked: Vec<u64> = (0..500u64).map(|i| 0x1000 + i * 32).collect();
        let types = vec![0x10u64; tracked.len()];
        let refs = |n: usize| -> Vec<u64> {
            if n < 500 {
                vec![
                    tracked[(n * 7) % 500],
                    0x9_0000 + (n as u64 % 37) * 16,
                    0x9_0000,
                ]
            } else if n % 3 == 0 {
                vec![0xA_0000 + n as u64 * 16, tracked[n % 500]]
            } else {
                vec![]
            }
        };
        let describe = |a: u64| Some((0x40 + (a & 0x10), (a & 0x10 != 0) as u8));
        let mut one = GraphBuilder::with_capacity(10, 10);
        one.add_tracked_run(&tracked, &types, flags::GC_TYPE)
            .unwrap();
        let mut n = 0;
        while n < one.len() {
            one.push_edges(n as NodeId, refs(n), describe, |_, _| {})
                .unwrap();
            n += 1;
        }
        let one = one.finish();
        assert!(one.len() > 540, "new nodes, and their own new referents");
        for adding in [true, false] {
            let mut b = GraphBuilder::with_capacity(10, 10);
            b.add_tracked_run(&tracked, &types, flags::GC_TYPE).unwrap();
            let mut fresh = Vec::new();
            let mut n = 0;
            // Chunks of 40 nodes: the referents of a chunk looked up, then recorded; the
            // resolver is kept for two chunks and then given back and taken again.
            let mut resolver = Some(b.take_resolver(adding).unwrap());
            assert_eq!(b.take_resolver(adding).err(), Some(GraphError::IndexLent));
            assert_eq!(
                b.add_untracked(0x7777_0000, 0x10, 0),
                Err(GraphError::IndexLent),
                "no node is added while the index is out"
            );
            let mut round = 0;
            while n < b.len() {
                let r = resolver.get_or_insert_with(|| b.take_resolver(adding).unwrap());
                let until = (n + 40).min(b.len());
                let lists: Vec<Vec<u64>> = (n..until).map(refs).collect();
                let flat: Vec<u64> = lists.concat();
                let mut ends = Vec::new();
                for l in &lists {
                    ends.push(ends.last().copied().unwrap_or(0) + l.len());
                }
                if let Some(&e) = ends.last().filter(|&&e| e > 0) {
                    assert_eq!(
                        r.push_referents(n as NodeId, &ends, &flat[..e - 1], &mut fresh),
                        Err(GraphError::BadEnds)
                    );
                }
                assert_eq!(
                    r.push_referents(n as NodeId + 1, &ends, &flat, &mut fresh),
                    Err(GraphError::OutOfOrder {
                        expected: n as NodeId,
                        got: n as NodeId + 1
                    })
                );
                r.push_referents(n as NodeId, &ends, &flat, &mut fresh)
                    .unwrap();
                assert!(adding || fresh.is_empty());
                assert_eq!(r.numbered(), b.len() + fresh.len());
                b.reserve_numbered(r.numbered()).unwrap();
                assert_eq!(
                    b.reserve_numbered(b.len()),
                    if fresh.is_empty() {
                        Ok(())
                    } else {
                        Err(GraphError::ReservedNodes)
                    }
                );
                for &a in &fresh {
                    let (t, fl) = describe(a).unwrap();
                    b.add_reserved(a, t, fl | flags::TRACKED).unwrap();
                }
                assert_eq!(
                    b.add_reserved(1, 1, 0),
                    Err(GraphError::ReservedNodes),
                    "only as many as were reserved"
                );
                n = until;
                round += 1;
                if round % 2 == 0 {
                    b.return_resolver(resolver.take().unwrap()).unwrap();
                }
            }
            if let Some(r) = resolver.take() {
                b.return_resolver(r).unwrap();
            }
            let g = b.finish();
            if adding {
                assert_eq!(g.addrs(), one.addrs());
                assert_eq!(g.types(), one.types());
                assert_eq!(g.all_flags(), one.all_flags());
                assert_eq!(g.referent_arrays(), one.referent_arrays());
                let type_addrs =
                    |g: &Graph| g.type_table().iter().map(|t| t.addr).collect::<Vec<_>>();
                assert_eq!(type_addrs(&g), type_addrs(&one));
            } else {
                // Without adding, edges to unknown addresses are dropped.
                assert_eq!(g.len(), 500);
                assert_eq!(g.referents(3), &[21]);
                assert_eq!(g.edge_count(), 500);
            }
        }
    }

    #[test]
    fn unwritten_room_is_inside_the_arrays_and_past_what_is_written() {
        let mut b = GraphBuilder::without_addrs(100, 300);
        b.add_tracked(0x1000, 0x10, 0).unwrap();
        b.add_tracked(0x2000, 0x10, 0).unwrap();
        let (types, flags) = (&b.g.types, &b.g.flags);
        let rooms = b.unwritten(50, 120);
        // Types and flags: from the third node through the 50th; the index whole; the node ends
        // through the 51st; the referents through the 120th.
        assert_eq!(rooms[0], (types.as_ptr() as usize + 2 * 4, 48 * 4));
        assert_eq!(rooms[1], (flags.as_ptr() as usize + 2, 48));
        assert_eq!(rooms[2], b.index.slots_memory());
        assert_eq!(rooms[3].1, 50 * 4, "the first node end (0) is written");
        assert_eq!(rooms[4].1, 120 * 4);
        // Asked for more than the arrays hold: only what they hold.
        let rooms = b.unwritten(1 << 20, 1 << 20);
        assert_eq!(rooms[0].1, (types.capacity() - 2) * 4);
        assert_eq!(rooms[4].1, b.g.fwd_targets.capacity() * 4);
    }

    #[test]
    fn tracked_nodes_kept_out_of_the_index_and_given_resolved_build_the_same_graph() {
        // Tracked nodes 0..300, referents: tracked ones (given resolved), new ones met once
        // and again (looked up), a tracked address given unresolved (not in the index: a
        // new node), and the new nodes' own referents.
        let tracked: Vec<u64> = (0..300u64).map(|i| 0x1000 + i * 32).collect();
        let types = vec![0x10u64; tracked.len()];
        let refs = |n: usize| -> Vec<u64> {
            if n < 300 {
                vec![tracked[(n * 11) % 300], 0x9_0000 + (n as u64 % 23) * 16]
            } else {
                vec![tracked[n % 300], 0xB_0000 + n as u64 * 16]
            }
        };
        let describe = |a: u64| Some((0x40 + (a & 0x10), 0u8));
        let mut one = GraphBuilder::with_capacity(10, 10);
        one.add_tracked_run(&tracked, &types, flags::GC_TYPE)
            .unwrap();
        let mut n = 0;
        while n < one.len() && n < 400 {
            one.push_edges(n as NodeId, refs(n), describe, |_, _| {})
                .unwrap();
            n += 1;
        }
        let one = one.finish();
        let mut b = GraphBuilder::with_capacity(10, 10);
        b.leave_tracked_out_of_index(16).unwrap();
        b.add_tracked_run(&tracked, &types, flags::GC_TYPE).unwrap();
        assert_eq!(
            b.leave_tracked_out_of_index(16),
            Err(GraphError::OutOfOrder {
                expected: 0,
                got: 300
            }),
            "only before any node"
        );
        assert_eq!(
            b.lookup(tracked[5]),
            None,
            "tracked nodes are not in the index"
        );
        let root = b.add_untracked(0x7_0000, 0x20, 0).unwrap();
        assert_eq!(b.lookup(0x7_0000), Some(root), "others are");
        let mut fresh = Vec::new();
        let mut r = b.take_resolver(true).unwrap();
        let node_of = |a: u64| {
            tracked
                .iter()
                .position(|&t| t == a)
                .map(|i| i as u64 | RESOLVED)
        };
        let mut n = 0;
        let mut ids = r.numbered();
        let mut added = Vec::new();
        while n < ids && n < 401 {
            let list: Vec<u64> = if n == root as usize {
                vec![]
            } else {
                let k = if n > root as usize { n - 1 } else { n };
                refs(k)
                    .into_iter()
                    .map(|a| node_of(a).unwrap_or(a))
                    .collect()
            };
            r.push_referents(n as NodeId, &[list.len()], &list, &mut fresh)
                .unwrap();
            ids = r.numbered();
            added.extend_from_slice(&fresh);
            n += 1;
        }
        assert_eq!(
            r.push_referents(n as NodeId, &[1], &[RESOLVED | ids as u64], &mut fresh),
            Err(GraphError::BadResolved),
            "a resolved id must name a node"
        );
        b.reserve_numbered(ids).unwrap();
        for &a in &added {
            let (t, fl) = describe(a).unwrap();
            b.add_reserved(a, t, fl).unwrap();
        }
        b.return_resolver(r).unwrap();
        let g = b.finish();
        // The same edges as the builder that indexes everything, but for the root node put
        // at 300 (its ids shifted by one past it).
        let shift = |id: NodeId| if id >= 300 { id + 1 } else { id };
        for v in 0..300 {
            let want: Vec<NodeId> = one.referents(v).iter().map(|&t| shift(t)).collect();
            assert_eq!(g.referents(v), &want[..], "node {v}");
        }
        assert_eq!(g.addrs()[301..], one.addrs()[300..g.len() - 1]);
        assert!(g.len() > 320, "new nodes numbered and added");
    }

    #[test]
    fn numbered_types_give_what_type_addresses_give() {
        // Types met in another order in `distinct` than in the nodes, some never met.
        let addrs: Vec<u64> = (0..200u64).map(|i| 0x1000 + i * 16).collect();
        let type_of = |i: usize| [0x50u64, 0x30, 0x50, 0x70, 0x30][i % 5] + (i / 97) as u64 * 0x100;
        let types: Vec<u64> = (0..addrs.len()).map(type_of).collect();
        let distinct: Vec<u64> = vec![
            0x999, 0x170, 0x130, 0x70, 0x230, 0x30, 0x150, 0x50, 0x270, 0x250,
        ];
        let ids: Vec<u32> = types
            .iter()
            .map(|t| distinct.iter().position(|d| d == t).unwrap() as u32)
            .collect();
        for threads in [1, 2] {
            let mut a = GraphBuilder::with_capacity(10, 10);
            let mut b = GraphBuilder::with_capacity(10, 10);
            a.set_threads(threads);
            b.set_threads(threads);
            // Two runs each: the second meets types the first did not.
            a.add_tracked_run(&addrs[..120], &types[..120], flags::GC_TYPE)
                .unwrap();
            a.add_tracked_run(&addrs[120..], &types[120..], flags::GC_TYPE)
                .unwrap();
            b.add_tracked_run_numbered(&addrs[..120], &ids[..120], &distinct, flags::GC_TYPE)
                .unwrap();
            b.add_tracked_run_numbered(&addrs[120..], &ids[120..], &distinct, flags::GC_TYPE)
                .unwrap();
            let (a, b) = (a.finish(), b.finish());
            assert_eq!(a.types(), b.types());
            assert_eq!(a.type_table(), b.type_table());
            assert_eq!(a.addrs(), b.addrs());
            assert_eq!(a.all_flags(), b.all_flags());
            assert_eq!(a.tracked_count(), 200);
        }
        let mut c = GraphBuilder::with_capacity(10, 10);
        assert_eq!(
            c.add_tracked_run_numbered(&addrs[..2], &[0, 10], &distinct, 0),
            Err(GraphError::BadTypes)
        );
        assert_eq!(
            c.add_tracked_run_numbered(&addrs[..2], &[0], &distinct, 0),
            Err(GraphError::BadTypes)
        );
        assert_eq!(c.len(), 0, "nothing added");
    }

    #[test]
    fn an_edge_rooms_blocks_cover_it_once_each_and_faulting_them_in_changes_nothing() {
        let mut b = GraphBuilder::with_capacity(10, 3_000_000);
        b.add_tracked_run(&[0x100, 0x200], &[0x10, 0x10], flags::GC_TYPE)
            .unwrap();
        let mut r = b.take_resolver(true).unwrap();
        let mut fresh = Vec::new();
        r.push_referents(0, &[1], &[0x200], &mut fresh).unwrap();
        let room = r.edge_room();
        for which in [0, 1] {
            let (start, end) = room.bounds(which);
            let items = (end - start) / 4;
            assert!(which == 1 || items >= 2_999_999, "{items}");
            let last = room.block_of(which, items.saturating_sub(1));
            assert_eq!(room.block_of(which, 0), 0);
            // Blocks follow each other without gap or overlap, aligned inside, each at most
            // 2 MiB, from the first item's place to the room's end; none past it.
            let mut at = start;
            for k in 0..=last {
                let blk = room.block(which, k);
                assert_eq!(blk.start, at, "block {k}");
                assert!(blk.len() <= BLOCK_BYTES && !blk.is_empty());
                assert!(k == 0 || blk.start % BLOCK_BYTES == 0);
                at = blk.end;
                room.prefault_block(which, k);
            }
            assert_eq!(at, end);
            assert!(room.block(which, last + 1).is_empty());
            room.prefault_block(which, last + 5);
            // An item's block holds its address.
            for i in [0, 1, items / 3, items.saturating_sub(1)] {
                let a = start + i * 4;
                assert!(
                    room.block(which, room.block_of(which, i)).contains(&a),
                    "{i}"
                );
            }
        }
        r.push_referents(1, &[2], &[0x100, 0x300], &mut fresh)
            .unwrap();
        assert_eq!(fresh, [0x300]);
        b.return_resolver(r).unwrap_err();
        b.add_reserved(0x300, 0x20, 0).unwrap();
        let g = b.finish();
        assert_eq!(g.referents(0), &[1]);
        assert_eq!(g.referents(1), &[0, 2]);
    }

    #[test]
    fn a_resolver_given_back_before_its_nodes_are_added_is_an_error() {
        let mut b = GraphBuilder::with_capacity(10, 10);
        b.add_tracked_run(&[0x100, 0x200], &[0x10, 0x10], flags::GC_TYPE)
            .unwrap();
        let mut r = b.take_resolver(true).unwrap();
        let mut fresh = Vec::new();
        r.push_referents(0, &[2], &[0x200, 0x300], &mut fresh)
            .unwrap();
        assert_eq!(fresh, [0x300]);
        assert_eq!(b.return_resolver(r), Err(GraphError::ReservedNodes));
        // The index came back: the numbered node is added as reserved, then all is well.
        b.add_reserved(0x300, 0x20, 0).unwrap();
        assert_eq!(b.lookup(0x300), Some(2));
        let g = b.finish();
        assert_eq!(g.referents(0), &[1, 2]);
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn a_big_run_on_two_threads_is_the_same_as_on_one() {
        let n = 100_000u64;
        let addrs: Vec<u64> = (0..n)
            .map(|i| (0x7000_0000 + i * 48) ^ ((i % 7) << 20))
            .collect();
        let types: Vec<u64> = (0..n).map(|i| 0x10 + (i % 5 + i % 3) * 16).collect();
        let build = |threads: usize| {
            let mut b = GraphBuilder::with_capacity(10, 10);
            b.set_threads(threads);
            b.add_tracked_run(&addrs[..7], &types[..7], flags::GC_TYPE)
                .unwrap();
            b.add_tracked_run(&addrs[7..], &types[7..], flags::GC_TYPE)
                .unwrap();
            let ids: Vec<Option<NodeId>> = addrs.iter().map(|&a| b.lookup(a)).collect();
            (ids, b.finish())
        };
        let (ids1, one) = build(1);
        let (ids2, two) = build(2);
        assert_eq!(ids2, ids1);
        assert_eq!(ids2[77_777], Some(77_777));
        assert_eq!(two.types(), one.types());
        assert_eq!(two.all_flags(), one.all_flags());
        let type_addrs = |g: &Graph| g.type_table().iter().map(|t| t.addr).collect::<Vec<_>>();
        assert_eq!(type_addrs(&two), type_addrs(&one));
        assert_eq!(two.addrs(), one.addrs());
    }

    #[test]
    fn addresses_given_later_packed() {
        let mut b = GraphBuilder::without_addrs(4, 4);
        b.add_tracked_run(&[0x1000, 0x2000], &[0x10, 0x10], 0)
            .unwrap();
        b.push_edges(0, [0x2000u64], |_| None, |_, _| {}).unwrap();
        let mut g = b.finish_addrs_later();
        assert!(g.addrs().is_empty());
        let addrs = [0x1000u64, 0x2000];
        g.set_addrs_packed(crate::snapshot::file::pack::addrs_of(2, |i| addrs[i]));
        assert_eq!(g.addrs(), &addrs);
        assert_eq!(g.find(0x2000), Some(1));
        assert_eq!(g.referents(0), &[1]);
    }

    #[test]
    #[should_panic(expected = "one address per node")]
    fn a_builder_without_addresses_needs_one_per_node() {
        let mut b = GraphBuilder::without_addrs(4, 4);
        b.add_tracked_run(&[0x1000, 0x2000], &[0x10, 0x10], 0)
            .unwrap();
        b.finish_with_addrs(|_| vec![0x1000]);
    }
}
