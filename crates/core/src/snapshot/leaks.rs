//! Leak suspects: the objects through which what a repeated piece of work leaves behind is
//! retained (the accumulation points of Eclipse MAT's leak suspects, found on the dominator
//! tree of the final heap and on the ages of its objects).
//!
//! The input is the heap after the last of `R` rounds of work (a [`Snapshot`] with its
//! [`Analysis`]) and a [`History`]: the round each object was born in (0 for objects that
//! existed before the first round: *old* objects) and the lengths of old containers after each
//! round. Then:
//!
//! 1. Every new object belongs to its nearest old dominator, its *holder*: the old object
//!    through which it is retained (the `_listeners` list, not the bound method in it).
//! 2. Holders are joined along the tree of their own nearest old dominators; each node of that
//!    tree knows which rounds the new objects below it were born in.
//! 3. From the top, the search goes down into every child whose new objects show *steady
//!    growth* (born in the first round and in one of the last two, in at least half of the
//!    rounds), and stops at the deepest such node whose steady growth no single child
//!    explains: the accumulation point. A node whose objects come from children that each grew
//!    only once (the branches of a deep trie) is that point. A cache that fills and evicts
//!    keeps only the newest rounds' objects, a first call's lazy initialisation only one
//!    round's: neither is steady. A container whose length did not grow is never a suspect
//!    (a bounded cache whose entries are replaced).
//! 4. An old container whose length grew steadily (a dict keyed by new strings: nothing new is
//!    tracked, only its length shows the leak) is a suspect too, unless a suspect holds it.
//!
//! Each suspect is then described by the new objects reachable from it through new objects
//! only (weak references do not retain): their count, bytes and types, one path from a root
//! through the holder to a leaked object, and a sample of leaked objects.

use super::analysis::Analysis;
use super::paths::shortest_path_tree;
use super::Snapshot;
use crate::addrindex::AddrIndex;
use crate::dominators::NONE;
use crate::graph::{flags, NodeId};
use crate::nodeset::NodeSet;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// Birth round of an object that existed before the first round.
pub const OLD: u8 = 0;
/// Birth round of a new object whose round is not known (an object the collector does not
/// track, seen only in the final heap).
pub const UNKNOWN: u8 = u8::MAX;
/// The holder of objects retained from outside the heap.
pub const OUTSIDE: NodeId = NONE;
/// The most rounds a history can have (round `r` is bit `r - 1` of a `u64` mask).
pub const MAX_ROUNDS: usize = 64;

/// What is known about the rounds of work that led to the final heap.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Number of rounds `R` (1 to [`MAX_ROUNDS`]).
    pub rounds: usize,
    /// Per node of the final heap: [`OLD`], the round it was born in (`1..=R`), or [`UNKNOWN`].
    pub birth: Vec<u8>,
    /// Old containers whose length is known after every round: `(node, lengths)` sorted by
    /// node, `lengths[0]` before the first round, `lengths[r]` after round `r`. A watched
    /// container missing here kept the same length throughout.
    pub lengths: Vec<(NodeId, Vec<u32>)>,
    /// Old containers whose length was watched (sorted), changed or not.
    pub watched: Vec<NodeId>,
    /// Top-level modules whose types belong to libraries (the standard library, say): the
    /// leaked object a path ends at is of another type when there is one. Types of builtins
    /// (no module) always count as library types.
    pub library: Vec<String>,
}

impl History {
    fn lengths_of(&self, n: NodeId) -> Option<&[u32]> {
        self.lengths
            .binary_search_by_key(&n, |e| e.0)
            .ok()
            .map(|i| self.lengths[i].1.as_slice())
    }

    /// Is a type (by long name) a builtin or of a library module?
    pub fn is_library(&self, type_name: &str) -> bool {
        match type_name.split_once('.') {
            None => true,
            Some((top, _)) => self.library.iter().any(|m| m == top),
        }
    }

    fn is_watched(&self, n: NodeId) -> bool {
        self.watched.binary_search(&n).is_ok()
    }

    /// The history of the last of several snapshots of the same process, oldest first: an
    /// object is the same one in two snapshots when it has the same address and type name. An
    /// object present in every snapshot is old; one present from snapshot `k` on was born in
    /// round `k`. Lengths of old containers are read from each snapshot.
    pub fn from_snapshots(snaps: &[&Snapshot]) -> Result<History, String> {
        if snaps.len() < 2 {
            return Err("at least two snapshots are needed".into());
        }
        let rounds = snaps.len() - 1;
        if rounds > MAX_ROUNDS {
            return Err(format!("at most {} snapshots", MAX_ROUNDS + 1));
        }
        let last = snaps[rounds];
        // Type ids of the final snapshot in each earlier one, by long name.
        let type_maps: Vec<Vec<u32>> = snaps[..rounds]
            .iter()
            .map(|s| {
                let by_name: FxHashMap<&str, u32> = s
                    .graph
                    .type_table()
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.long_name.as_str(), i as u32))
                    .collect();
                last.graph
                    .type_table()
                    .iter()
                    .map(|t| by_name.get(t.long_name.as_str()).copied().unwrap_or(NONE))
                    .collect()
            })
            .collect();
        let n = last.len();
        // Columns decoded once here, not by the first thread to read them below.
        let addrs = last.graph.addrs();
        for s in snaps {
            s.lens.decoded();
        }
        let index: Vec<AddrIndex> = snaps[..rounds]
            .iter()
            .map(|s| s.graph.addr_index())
            .collect();
        let container_type: Vec<bool> = last
            .graph
            .type_table()
            .iter()
            .map(|t| growable_name(&t.long_name))
            .collect();
        let same = |k: usize, v: NodeId| -> Option<NodeId> {
            let s = snaps[k];
            let w = index[k].get(addrs[v as usize])?;
            (s.graph.type_of(w) == type_maps[k][last.graph.type_of(v) as usize]).then_some(w)
        };
        // A container at a reused address (another list of the same type, say a temporary one
        // of the program or of the snapshot call itself) is not the same object: one that
        // really stayed keeps at least half of what it referred to before (growth appends;
        // a container that was emptied and refilled is new for this purpose too).
        let kept = |now: &mut rustc_hash::FxHashSet<u64>, k: usize, w: NodeId, v: NodeId| {
            let before = snaps[k].graph.referents(w);
            if before.is_empty() {
                return true;
            }
            let refs = last.graph.referents(v);
            let old_addr = |r: &NodeId| snaps[k].graph.addr(*r);
            if before.len() * refs.len() <= 64 {
                // Small containers (most of them): compared directly, no set.
                let still = before
                    .iter()
                    .filter(|r| refs.iter().any(|&x| addrs[x as usize] == old_addr(r)))
                    .count();
                return 2 * still >= before.len();
            }
            // Emptying a set clears its whole table: one left big by a big container is
            // made again at this one's size.
            if now.capacity() > 4 * refs.len().max(16) {
                *now =
                    rustc_hash::FxHashSet::with_capacity_and_hasher(refs.len(), Default::default());
            } else {
                now.clear();
            }
            now.extend(refs.iter().map(|&r| addrs[r as usize]));
            let still = before.iter().filter(|r| now.contains(&old_addr(r))).count();
            2 * still >= before.len()
        };
        // Pieces of nodes on the pool, each with its own watched containers and lengths,
        // joined in order: the same history on any number of threads.
        const PIECE: usize = 1 << 16;
        let mut birth = vec![OLD; n];
        type Found = (Vec<NodeId>, Vec<(NodeId, Vec<u32>)>);
        let mut found: Vec<Found> = vec![Default::default(); n.div_ceil(PIECE)];
        let parts: Vec<_> = birth
            .chunks_mut(PIECE)
            .zip(found.iter_mut())
            .enumerate()
            .collect();
        crate::threads::for_each_part(parts, |(p, (births, (watched, lengths)))| {
            let mut now = rustc_hash::FxHashSet::default();
            for (i, out) in births.iter_mut().enumerate() {
                let v = (p * PIECE + i) as NodeId;
                let container = container_type[last.graph.type_of(v) as usize];
                let mut b = 0usize;
                for k in (0..rounds).rev() {
                    match same(k, v) {
                        Some(w) if !container || kept(&mut now, k, w, v) => {}
                        _ => {
                            b = k + 1;
                            break;
                        }
                    }
                }
                *out = b as u8;
                if b == 0 && container && last.length(v).is_some() {
                    let mut ls: Vec<u32> = (0..rounds)
                        .map(|k| same(k, v).and_then(|w| snaps[k].length(w)).unwrap_or(0))
                        .collect();
                    ls.push(last.length(v).unwrap_or(0));
                    watched.push(v);
                    if ls.iter().any(|&l| l != ls[0]) {
                        lengths.push((v, ls));
                    }
                }
            }
        });
        let mut watched = Vec::new();
        let mut lengths = Vec::new();
        for (w, l) in found {
            watched.extend(w);
            lengths.extend(l);
        }
        Ok(History {
            rounds,
            birth,
            lengths,
            watched,
            library: Vec::new(),
        })
    }
}

/// Containers whose length can grow in place (not tuples, strings or bytes).
fn growable(s: &Snapshot, v: NodeId) -> bool {
    growable_name(s.type_name(v))
}

/// Is this the long name of a type of containers whose length can grow in place?
fn growable_name(name: &str) -> bool {
    matches!(
        name,
        "list"
            | "dict"
            | "set"
            | "bytearray"
            | "collections.deque"
            | "collections.OrderedDict"
            | "collections.defaultdict"
    )
}

/// Do objects born in the rounds of `mask` (bit `r - 1` for round `r`) show steady growth over
/// `rounds` rounds: born in the first round, in one of the last two, and in at least half of
/// them? With two rounds both are needed; with one, that one.
pub fn steady(mask: u64, rounds: usize) -> bool {
    if rounds == 0 {
        return false;
    }
    let full = if rounds >= 64 {
        u64::MAX
    } else {
        (1u64 << rounds) - 1
    };
    let m = mask & full;
    match rounds {
        1 => m & 1 != 0,
        2 => m == 0b11,
        r => m & 1 != 0 && (m >> (r - 2)) != 0 && m.count_ones() as usize >= r.div_ceil(2),
    }
}

/// Rounds in which a length grew, as a mask; None if it ever shrank or did not grow overall.
fn growth_mask(lengths: &[u32]) -> Option<u64> {
    let mut mask = 0u64;
    for (r, w) in lengths.windows(2).enumerate() {
        if w[1] < w[0] {
            return None;
        }
        if w[1] > w[0] && r < 64 {
            mask |= 1 << r;
        }
    }
    (mask != 0).then_some(mask)
}

/// New objects below a node of the tree of holders.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    count: u64,
    /// Rounds the tracked new objects were born in.
    mask: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.count += o.count;
        self.mask |= o.mask;
    }
}

/// One leak suspect.
#[derive(Clone, Debug, PartialEq)]
pub struct Suspect {
    /// The old object that holds the leaked objects, or [`OUTSIDE`] for new objects no
    /// object of the heap retains (held by C code or the interpreter, as atexit's callbacks).
    pub holder: NodeId,
    /// New objects reachable from the holder through new objects.
    pub new_objects: u64,
    /// Their shallow bytes.
    pub bytes: u64,
    /// `new_objects` over all new objects that an old object retains.
    pub share: f64,
    /// `(long type name, count)`: the leaked type first (the one the example path ends at),
    /// then by count.
    pub types: Vec<(String, u64)>,
    /// A path from a root through the holder to a leaked object (just the holder and the
    /// object when no root reaches the holder).
    pub path: Vec<NodeId>,
    /// Index of the holder in `path`.
    pub holder_step: usize,
    /// Length of the holder before the first round and after the last, when it is a
    /// container whose length was watched.
    pub lengths: Option<(u32, u32)>,
    /// Up to `sample` leaked objects: of the leaked type first (up to half), then others.
    pub sample: Vec<NodeId>,
}

/// Everything found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeakReport {
    pub rounds: usize,
    /// Suspects, most bytes first.
    pub suspects: Vec<Suspect>,
    /// New objects an old object retains (the denominator of `share`).
    pub new_objects: u64,
}

/// Types of objects that only carry references (containers, functions, frames): the object a
/// suspect's example path ends at is the nearest new object of another type when there is one.
fn is_plumbing(name: &str) -> bool {
    matches!(
        name,
        "dict"
            | "list"
            | "tuple"
            | "set"
            | "frozenset"
            | "method"
            | "function"
            | "builtin_function_or_method"
            | "cell"
            | "frame"
            | "traceback"
            | "code"
            | "weakref"
            | "weakref.KeyedRef"
            | "str"
            | "int"
            | "float"
            | "bytes"
            | "bool"
            | "NoneType"
            | "collections.deque"
            | "collections.OrderedDict"
            | "collections.defaultdict"
            | "functools.partial"
            | "types.SimpleNamespace"
    )
}

/// Find the leak suspects of the final heap `s` (analysed by `a`) given its history. At most
/// `sample` leaked objects are sampled per suspect.
pub fn find_suspects(s: &Snapshot, a: &Analysis, h: &History, sample: usize) -> LeakReport {
    let n = s.len();
    let rounds = h.rounds.clamp(1, MAX_ROUNDS);
    let is_new = |v: NodeId| h.birth[v as usize] != OLD;
    let virt = n as NodeId; // the virtual root of the dominator tree
    let up = |v: NodeId| -> NodeId {
        let d = a.idom[v as usize];
        if d == NONE {
            virt
        } else {
            d
        }
    };
    // 1. Nearest old dominator of every new object (memoised along chains of new objects).
    let mut holder_of: FxHashMap<NodeId, NodeId> = Default::default();
    let mut own: FxHashMap<NodeId, Tally> = Default::default();
    let mut chain: Vec<NodeId> = Vec::new();
    let mut total_new = 0u64;
    let mut outside: Vec<NodeId> = Vec::new();
    for v in 0..n as NodeId {
        if !is_new(v) {
            continue;
        }
        let mut x = up(v);
        chain.clear();
        let hold = loop {
            if x == virt || !is_new(x) {
                break x;
            }
            if let Some(&hh) = holder_of.get(&x) {
                break hh;
            }
            chain.push(x);
            x = up(x);
        };
        for &c in &chain {
            holder_of.insert(c, hold);
        }
        holder_of.insert(v, hold);
        if hold == virt {
            // Retained by no old object: new roots (held by C code or the interpreter, as
            // atexit holds its callbacks) and what they retain.
            let b = h.birth[v as usize];
            if a.idom[v as usize] == NONE && b != UNKNOWN && (b as usize) <= rounds {
                outside.push(v);
            }
        } else {
            total_new += 1;
        }
        let t = own.entry(hold).or_default();
        t.count += 1;
        let b = h.birth[v as usize];
        if b != UNKNOWN && (b as usize) <= rounds {
            t.mask |= 1 << (b - 1);
        }
    }
    drop(holder_of);
    // 2. The tree of holders: each joined to its nearest old dominator, up to the virtual root.
    let old_parent = |o: NodeId| -> NodeId {
        let mut x = up(o);
        while x != virt && is_new(x) {
            x = up(x);
        }
        x
    };
    let mut parent: FxHashMap<NodeId, NodeId> = Default::default();
    for &o in own.keys() {
        if o == virt {
            continue;
        }
        let mut x = o;
        while x != virt && !parent.contains_key(&x) {
            let p = old_parent(x);
            parent.insert(x, p);
            x = p;
        }
    }
    // Depths, then sums from the deepest nodes up.
    let mut depth: FxHashMap<NodeId, u32> = Default::default();
    for &o in parent.keys() {
        if depth.contains_key(&o) {
            continue;
        }
        chain.clear();
        let mut x = o;
        let base = loop {
            if x == virt {
                break 0;
            }
            if let Some(&d) = depth.get(&x) {
                break d;
            }
            chain.push(x);
            x = parent[&x];
        };
        for (i, &c) in chain.iter().rev().enumerate() {
            depth.insert(c, base + 1 + i as u32);
        }
    }
    let mut order: Vec<NodeId> = parent.keys().copied().collect();
    order.sort_unstable_by_key(|o| (std::cmp::Reverse(depth[o]), *o));
    let mut sub: FxHashMap<NodeId, Tally> = Default::default();
    for &o in &order {
        let mut t = sub.get(&o).copied().unwrap_or_default();
        if let Some(x) = own.get(&o) {
            t.add(x);
        }
        sub.insert(o, t);
        sub.entry(parent[&o]).or_default().add(&t);
    }
    let mut children: FxHashMap<NodeId, Vec<NodeId>> = Default::default();
    for &o in order.iter().rev() {
        children.entry(parent[&o]).or_default().push(o);
    }
    // 3. Down from the top into steady children; a node whose steady growth no steady child
    //    explains is an accumulation point.
    let grows = |o: NodeId| -> bool {
        match h.lengths_of(o) {
            Some(ls) => ls.last() > ls.first(),
            // An object whose length is not known that holds a single new object (a closure's
            // cell, a slot or a frame's local): a variable rebound to a new value, not growth.
            // One object is born in one round, so this only matters with one round (two
            // snapshots); an object growing by one a round holds one new object per round.
            None => {
                !(h.is_watched(o)
                    || (growable(s, o) && s.length(o).is_some())
                    || own.get(&o).is_some_and(|t| t.count == 1))
            }
        }
    };
    let mut points: Vec<NodeId> = Vec::new();
    let mut stack: Vec<NodeId> = vec![virt];
    while let Some(o) = stack.pop() {
        // A container of constant length replaces what it holds itself (a bounded cache, a
        // module's globals rebound): those objects do not count; growth through its children
        // (the branches of a trie) does.
        let mut rest = if o == virt || grows(o) {
            own.get(&o).copied().unwrap_or_default()
        } else {
            Tally::default()
        };
        for &c in children.get(&o).map(|v| v.as_slice()).unwrap_or(&[]) {
            let t = sub[&c];
            if steady(t.mask, rounds) {
                stack.push(c);
            } else if o != virt && t.mask.count_ones() == 1 {
                // A branch made in one round (of a trie): several such make steady growth.
                rest.add(&t);
            }
        }
        if steady(rest.mask, rounds) && (o == virt || !s.graph.has(o, flags::ROOT)) {
            points.push(o);
        }
    }
    // 4. Old containers that grew steadily, unless a suspect holds them.
    let is_point: rustc_hash::FxHashSet<NodeId> = points.iter().copied().collect();
    for (c, ls) in &h.lengths {
        if is_point.contains(c) || is_new(*c) {
            continue;
        }
        if !growth_mask(ls).is_some_and(|m| steady(m, rounds)) {
            continue;
        }
        // Lengths counted during the rounds (no collection) include garbage that the final
        // snapshot's collection freed (weak tables such as `object.__subclasses__`' entries of
        // dead classes): the container must still be longer then than it was at the start.
        if s.length(*c).is_some_and(|now| now <= ls[0]) {
            continue;
        }
        let mut x = old_parent(*c);
        let mut held = false;
        while x != virt {
            if is_point.contains(&x) {
                held = true;
                break;
            }
            x = old_parent(x);
        }
        if !held {
            points.push(*c);
        }
    }
    if points.is_empty() {
        return LeakReport {
            rounds,
            suspects: Vec::new(),
            new_objects: total_new,
        };
    }
    // 5. Describe each suspect.
    // Paths start at modules and thread stacks when they can: one search from those, and
    // one from all roots for holders only reached from others.
    let roots = super::analysis::roots(s);
    let flagged: Vec<NodeId> = roots
        .iter()
        .copied()
        .filter(|&r| s.is_flagged_root(r))
        .collect();
    let (mut tree, mut reached) = shortest_path_tree(s, &flagged);
    if points.iter().any(|&o| o != virt && !reached[o as usize]) {
        (tree, reached) = shortest_path_tree(s, &roots);
    }
    let mut suspects: Vec<Suspect> = points
        .into_iter()
        .map(|o| {
            // Old holders below `o` in the tree of holders: its new objects below them count.
            let mut below: rustc_hash::FxHashSet<NodeId> = Default::default();
            let mut todo = if o == virt { Vec::new() } else { vec![o] };
            while let Some(x) = todo.pop() {
                for &c in children.get(&x).map(|v| v.as_slice()).unwrap_or(&[]) {
                    if below.insert(c) {
                        todo.push(c);
                    }
                }
            }
            let seeds: &[NodeId] = if o == virt { &outside } else { &[] };
            describe(s, h, o, seeds, &below, &tree, &reached, total_new, sample)
        })
        // Objects held from outside the heap count only when they are of a type that is not
        // plumbing (the lists and tuples of a snapshot being taken are not a leak).
        .filter(|sp: &Suspect| {
            sp.holder != OUTSIDE
                || sp
                    .path
                    .last()
                    .is_some_and(|&v| !is_plumbing(s.type_name(v)))
        })
        .collect();
    // Objects held from outside the heap are new objects too: every share counts them.
    if let Some(c) = suspects
        .iter()
        .find(|sp| sp.holder == OUTSIDE)
        .map(|sp| sp.new_objects)
    {
        for sp in suspects.iter_mut().filter(|sp| sp.holder != OUTSIDE) {
            sp.share = sp.new_objects as f64 / (total_new + c).max(1) as f64;
        }
    }
    // Weak references accumulate because what they refer to does: the holder of the
    // referents comes first. Then the most bytes.
    let weak = |x: &Suspect| {
        x.path
            .get(x.holder_step + 1)
            .is_some_and(|&v| s.graph.has(v, flags::WEAKREF))
    };
    suspects.sort_by(|x, y| {
        weak(x)
            .cmp(&weak(y))
            .then(y.bytes.cmp(&x.bytes))
            .then(y.new_objects.cmp(&x.new_objects))
            .then(x.holder.cmp(&y.holder))
    });
    LeakReport {
        rounds,
        suspects,
        new_objects: total_new,
    }
}

/// Count the new objects reachable from holder `o` through new objects (and the old holders
/// `below` it) and build its path.
#[allow(clippy::too_many_arguments)]
fn describe(
    s: &Snapshot,
    h: &History,
    o: NodeId,
    seeds: &[NodeId],
    below: &rustc_hash::FxHashSet<NodeId>,
    tree: &[NodeId],
    reached: &[bool],
    total_new: u64,
    sample: usize,
) -> Suspect {
    let g = &s.graph;
    let is_new = |v: NodeId| h.birth[v as usize] != OLD;
    let mut seen = NodeSet::new(s.len());
    let mut from: FxHashMap<NodeId, NodeId> = Default::default();
    let mut queue: VecDeque<NodeId> = VecDeque::new();
    let mut visited: Vec<NodeId> = Vec::new();
    let outside = o as usize == s.len();
    if outside {
        for &r in seeds {
            seen.insert(r);
            queue.push_back(r);
        }
    } else {
        seen.insert(o);
        queue.push_back(o);
    }
    let mut count = 0u64;
    let mut bytes = 0u64;
    let mut by_type: FxHashMap<&str, (u64, usize)> = Default::default();
    while let Some(v) = queue.pop_front() {
        if is_new(v) {
            count += 1;
            bytes += s.sizes[v as usize];
            visited.push(v);
            let name = s.type_name(v);
            let k = by_type.len();
            let e = by_type.entry(name).or_insert((0, k));
            e.0 += 1;
        }
        if g.has(v, flags::WEAKREF) {
            continue;
        }
        for &w in g.referents(v) {
            if (is_new(w) || below.contains(&w)) && seen.insert(w) {
                from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    // The leaked object: the nearest new object of a type of the program (not of a library),
    // else the nearest that is not plumbing, else the nearest.
    let leaked = visited
        .iter()
        .copied()
        .find(|&v| !h.is_library(s.type_name(v)))
        .or_else(|| {
            visited
                .iter()
                .copied()
                .find(|&v| !is_plumbing(s.type_name(v)))
        })
        .or_else(|| visited.first().copied());
    let mut types: Vec<(String, u64, usize)> = by_type
        .into_iter()
        .map(|(k, (c, first))| (k.to_string(), c, first))
        .collect();
    let lead = leaked.map(|v| s.type_name(v).to_string());
    types.sort_by(|x, y| {
        let xl = Some(&x.0) == lead.as_ref();
        let yl = Some(&y.0) == lead.as_ref();
        yl.cmp(&xl).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2))
    });
    // Root to holder, then holder to the leaked object.
    let mut path: Vec<NodeId> = Vec::new();
    if outside {
        // No holder: the path starts at the new root that leads to the leaked object.
    } else if reached[o as usize] {
        let mut x = o;
        path.push(x);
        while tree[x as usize] != NONE {
            x = tree[x as usize];
            path.push(x);
        }
        path.reverse();
    } else {
        path.push(o);
    }
    let holder_step = path.len().saturating_sub(1);
    if let Some(t) = leaked {
        let mut tail = vec![t];
        let mut x = t;
        while let Some(&p) = from.get(&x) {
            if p == o && !outside {
                break;
            }
            tail.push(p);
            x = p;
        }
        tail.reverse();
        path.extend(tail);
    }
    // Objects of the leaked type first, then others (for allocation sites: an object whose
    // allocation was not traced still leaves its neighbours).
    let mut samples: Vec<NodeId> = match &lead {
        Some(name) => visited
            .iter()
            .copied()
            .filter(|&v| s.type_name(v) == name)
            .take(sample.div_ceil(2))
            .collect(),
        None => Vec::new(),
    };
    let more = sample.saturating_sub(samples.len());
    samples.extend(
        visited
            .iter()
            .copied()
            .filter(|&v| Some(s.type_name(v)) != lead.as_deref())
            .take(more),
    );
    let lengths = if outside {
        None
    } else {
        h.lengths_of(o)
            .map(|ls| (ls[0], *ls.last().unwrap_or(&ls[0])))
            .or_else(|| {
                (h.is_watched(o) || (growable(s, o) && s.length(o).is_some()))
                    .then(|| s.length(o).map(|l| (l, l)))
                    .flatten()
            })
    };
    Suspect {
        holder: if outside { OUTSIDE } else { o },
        new_objects: count,
        bytes,
        share: {
            let all = if outside {
                total_new + count
            } else {
                total_new
            };
            if all == 0 {
                0.0
            } else {
                (count as f64 / all as f64).min(1.0)
            }
        },
        types: types.into_iter().map(|(k, c, _)| (k, c)).collect(),
        path,
        holder_step,
        lengths,
        sample: samples,
    }
}

/// A short label of a step of a path: the module global or name it has, or its length.
pub fn step_label(s: &Snapshot, n: NodeId) -> String {
    if let Some(g) = s.global_name(n) {
        return g.to_string();
    }
    if let Some(l) = s.label(n) {
        return l.to_string();
    }
    match s.length(n) {
        Some(l) => format!("{l} items"),
        None => String::new(),
    }
}

/// The name of the reference from `from` to `to` (the next step of a path), when known.
pub fn edge_name(s: &Snapshot, from: NodeId, to: NodeId) -> Option<String> {
    s.name_of_edge(from, to).map(|e| e.label())
}

/// The holder as an expression from a root (`__main__.bus._listeners`), in segments joined by
/// ` -> ` where a reference has no Python form.
pub fn holder_expression(s: &Snapshot, path: &[NodeId]) -> String {
    super::expr::expression(s, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{from_edges, Graph};
    use crate::snapshot::analysis::analyse;
    use crate::snapshot::{Meta, NO_LEN};

    /// A heap built by hand: nodes `(type, birth)`, edges per node. Node 0 is a module (a
    /// root); `lens` gives lengths (only for list/dict nodes listed).
    struct Heap {
        nodes: Vec<(&'static str, u8)>,
        edges: Vec<Vec<NodeId>>,
    }

    impl Heap {
        fn new() -> Self {
            let mut h = Heap {
                nodes: Vec::new(),
                edges: Vec::new(),
            };
            h.add("module", OLD);
            h.add("dict", OLD);
            h.link(0, 1);
            h
        }
        fn add(&mut self, t: &'static str, birth: u8) -> NodeId {
            self.nodes.push((t, birth));
            self.edges.push(Vec::new());
            (self.nodes.len() - 1) as NodeId
        }
        fn link(&mut self, a: NodeId, b: NodeId) {
            self.edges[a as usize].push(b);
        }
        fn snapshot(&self) -> (Snapshot, Vec<u8>) {
            let nodes: Vec<(&str, bool)> = self.nodes.iter().map(|n| (n.0, true)).collect();
            let refs: Vec<&[NodeId]> = self.edges.iter().map(|e| e.as_slice()).collect();
            let mut g: Graph = from_edges(&nodes, &refs);
            g.set_flags(0, flags::MODULE | flags::PROPER_MODULE);
            for t in g.type_table_mut() {
                t.long_name = match t.short_name.as_str() {
                    "Session" | "Node" | "Other" => format!("app.{}", t.short_name),
                    x => x.to_string(),
                };
            }
            for v in 0..g.len() as NodeId {
                if g.type_table()[g.type_of(v) as usize].short_name == "weakref" {
                    g.set_flags(v, flags::WEAKREF);
                }
            }
            let n = g.len();
            let mut lens = vec![NO_LEN; n];
            for (v, l) in lens.iter_mut().enumerate() {
                if matches!(self.nodes[v].0, "list" | "dict") {
                    *l = self.edges[v].len() as u32;
                }
            }
            let s = Snapshot {
                graph: g,
                sizes: vec![10; n].into(),
                lens: lens.into(),
                labels: vec![(0, "app".into())].into(),
                globals: Vec::new(),
                meta: Meta::default(),
                ..Default::default()
            };
            (s, self.nodes.iter().map(|n| n.1).collect())
        }
    }

    fn run(h: &Heap, rounds: usize, lengths: Vec<(NodeId, Vec<u32>)>) -> (Snapshot, LeakReport) {
        let (s, birth) = h.snapshot();
        let mut watched: Vec<NodeId> = (0..s.len() as NodeId)
            .filter(|&v| birth[v as usize] == OLD && growable(&s, v))
            .collect();
        watched.sort_unstable();
        let hist = History {
            rounds,
            birth,
            lengths,
            watched,
            library: vec!["collections".into()],
        };
        let a = analyse(&s, &mut |_, _| {});
        let r = find_suspects(&s, &a, &hist, 10);
        (s, r)
    }

    #[test]
    fn steady_growth() {
        assert!(steady(0b11111, 5));
        assert!(steady(0b10101, 5));
        assert!(steady(0b01111, 5)); // the newest is held elsewhere
        assert!(!steady(0b11110, 5)); // nothing from the first round: a bounded cache
        assert!(!steady(0b00001, 5)); // one round: lazy initialisation
        assert!(!steady(0b00111, 5)); // not in the last two rounds
        assert!(!steady(0b10001, 5)); // two rounds of five
        assert!(steady(0b1, 1));
        assert!(steady(0b11, 2));
        assert!(!steady(0b10, 2));
        assert!(steady(u64::MAX, 64));
    }

    /// module -> dict -> bus -> list -> method -> Session, one per round.
    fn event_bus(rounds: u8, decoy: bool) -> (Heap, NodeId) {
        let mut h = Heap::new();
        let bus = h.add("Bus", OLD);
        h.link(1, bus);
        let list = h.add("list", OLD);
        h.link(bus, list);
        let mut last = NONE;
        for r in 1..=rounds {
            let m = h.add("method", r);
            let sess = h.add("Session", r);
            let d = h.add("dict", r);
            h.link(list, m);
            h.link(m, sess);
            h.link(sess, d);
            last = sess;
        }
        if decoy {
            // module dict -> last Session (a `last_request` global).
            h.link(1, last);
        }
        (h, list)
    }

    #[test]
    fn the_listener_list_is_the_suspect() {
        let (h, list) = event_bus(5, false);
        let (s, r) = run(&h, 5, vec![(list, vec![0, 1, 2, 3, 4, 5])]);
        assert_eq!(r.suspects.len(), 1, "{r:?}");
        let sp = &r.suspects[0];
        assert_eq!(sp.holder, list);
        assert_eq!(sp.new_objects, 15);
        assert_eq!(sp.types[0], ("app.Session".to_string(), 5));
        assert_eq!(sp.lengths, Some((0, 5)));
        let names: Vec<&str> = sp.path.iter().map(|&v| s.type_name(v)).collect();
        assert_eq!(
            names,
            vec!["module", "dict", "Bus", "list", "method", "app.Session"]
        );
        assert_eq!(sp.holder_step, 3);
        assert_eq!(sp.sample.len(), 10);
        assert!(sp.sample[..5]
            .iter()
            .all(|&v| s.type_name(v) == "app.Session"));
        assert!((sp.share - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_decoy_holding_the_newest_is_not_the_suspect() {
        let (h, list) = event_bus(5, true);
        let (_, r) = run(&h, 5, vec![(list, vec![0, 1, 2, 3, 4, 5])]);
        assert_eq!(r.suspects.len(), 1, "{r:?}");
        assert_eq!(r.suspects[0].holder, list);
        // All five sessions are reachable from the list, the shared newest one included.
        assert_eq!(r.suspects[0].types[0], ("app.Session".to_string(), 5));
    }

    #[test]
    fn a_bounded_cache_is_not_a_leak() {
        // A dict of constant length whose values are replaced: survivors of rounds 2..5.
        let mut h = Heap::new();
        let cache = h.add("dict", OLD);
        h.link(1, cache);
        for r in 2..=5 {
            let e = h.add("Session", r);
            h.link(cache, e);
        }
        let (_, r) = run(&h, 5, vec![]);
        assert!(r.suspects.is_empty(), "{r:?}");
        // Every round's object survives, but the length never changed: replaced values.
        let mut h = Heap::new();
        let cache = h.add("dict", OLD);
        h.link(1, cache);
        for r in 1..=5 {
            let e = h.add("Session", r);
            h.link(cache, e);
        }
        let (_, r) = run(&h, 5, vec![]);
        assert!(r.suspects.is_empty(), "{r:?}");
    }

    #[test]
    fn lazy_initialisation_is_not_a_leak() {
        let mut h = Heap::new();
        let holder = h.add("Other", OLD);
        h.link(1, holder);
        for _ in 0..50 {
            let e = h.add("Session", 1);
            h.link(holder, e);
        }
        let (_, r) = run(&h, 5, vec![]);
        assert!(r.suspects.is_empty(), "{r:?}");
    }

    #[test]
    fn a_deep_trie_is_held_by_its_root() {
        // An old trie root; each round adds a new branch under a different old node, 30 deep.
        let mut h = Heap::new();
        let root = h.add("dict", OLD);
        h.link(1, root);
        let mut olds = vec![root];
        for _ in 0..5 {
            let d = h.add("dict", OLD);
            h.link(root, d);
            olds.push(d);
        }
        for r in 1..=5u8 {
            let mut at = olds[r as usize];
            for _ in 0..30 {
                let d = h.add("dict", r);
                h.link(at, d);
                at = d;
            }
            let leaf = h.add("Node", r);
            h.link(at, leaf);
        }
        let (s, r) = run(&h, 5, vec![]);
        assert_eq!(r.suspects.len(), 1, "{r:?}");
        let sp = &r.suspects[0];
        assert_eq!(sp.holder, root);
        assert_eq!(sp.new_objects, 155);
        assert_eq!(s.type_name(*sp.path.last().unwrap()), "app.Node");
        assert_eq!(sp.types[0].0, "app.Node");
    }

    #[test]
    fn a_dict_of_new_strings_grows() {
        // Untracked new keys (birth unknown): only the length shows the leak.
        let mut h = Heap::new();
        let seen = h.add("dict", OLD);
        h.link(1, seen);
        for _ in 0..5 {
            let k = h.add("str", UNKNOWN);
            h.link(seen, k);
        }
        let (_, r) = run(&h, 5, vec![(seen, vec![0, 1, 2, 3, 4, 5])]);
        assert_eq!(r.suspects.len(), 1, "{r:?}");
        assert_eq!(r.suspects[0].holder, seen);
        assert_eq!(r.suspects[0].types, vec![("str".to_string(), 5)]);
        // Growing then shrinking: not a leak.
        let (_, r) = run(&h, 5, vec![(seen, vec![0, 1, 2, 3, 2, 5])]);
        assert!(r.suspects.is_empty(), "{r:?}");
    }

    #[test]
    fn weak_references_do_not_hold() {
        // The sessions are held by a side list; a weak-value dict holds weakrefs to them.
        let mut h = Heap::new();
        let side = h.add("list", OLD);
        let wdict = h.add("dict", OLD);
        h.link(1, side);
        h.link(1, wdict);
        for r in 1..=5 {
            let sess = h.add("Session", r);
            let d = h.add("dict", r);
            h.link(sess, d);
            h.link(side, sess);
            let w = h.add("weakref", r);
            h.link(wdict, w);
            // A weakref's referent is not a reference the collector sees: no edge.
        }
        let (s, r) = run(
            &h,
            5,
            vec![
                (side, vec![0, 1, 2, 3, 4, 5]),
                (wdict, vec![0, 1, 2, 3, 4, 5]),
            ],
        );
        assert_eq!(r.suspects.len(), 2, "{r:?}");
        assert_eq!(r.suspects[0].holder, side);
        assert_eq!(
            s.type_name(*r.suspects[0].path.last().unwrap()),
            "app.Session"
        );
    }

    #[test]
    fn two_leaks_under_one_module_are_two_suspects() {
        let mut h = Heap::new();
        let a = h.add("list", OLD);
        let b = h.add("list", OLD);
        h.link(1, a);
        h.link(1, b);
        for r in 1..=5 {
            for _ in 0..2 {
                let x = h.add("Session", r);
                h.link(a, x);
            }
            let y = h.add("Other", r);
            h.link(b, y);
        }
        let (_, r) = run(
            &h,
            5,
            vec![(a, vec![0, 2, 4, 6, 8, 10]), (b, vec![0, 1, 2, 3, 4, 5])],
        );
        let holders: Vec<NodeId> = r.suspects.iter().map(|x| x.holder).collect();
        assert_eq!(holders, vec![a, b]);
    }

    #[test]
    fn rebound_globals_and_a_one_off_load_are_not_steady() {
        // A module dict of constant length whose globals are rebound (own objects of rounds
        // 3..5) and a cache loaded once in round 1: neither grows steadily.
        let mut h = Heap::new();
        let cache = h.add("dict", OLD);
        h.link(1, cache);
        for _ in 0..20 {
            let c = h.add("Other", 1);
            h.link(cache, c);
        }
        for r in 3..=5 {
            let g = h.add("Session", r);
            h.link(1, g);
        }
        let (_, r) = run(&h, 5, vec![(cache, vec![0, 20, 20, 20, 20, 20])]);
        assert!(r.suspects.is_empty(), "{r:?}");
    }

    #[test]
    fn a_rebound_variable_in_one_round_is_not_a_leak() {
        // One round (two snapshots): a closure's cell rebound to a new string, next to a list
        // that grew by three sessions. Only the list is a suspect.
        let mut h = Heap::new();
        let func = h.add("function", OLD);
        h.link(1, func);
        let cell = h.add("cell", OLD);
        h.link(func, cell);
        let path = h.add("str", 1);
        h.link(cell, path);
        let list = h.add("list", OLD);
        h.link(1, list);
        for _ in 0..3 {
            let x = h.add("Session", 1);
            h.link(list, x);
        }
        let (_, r) = run(&h, 1, vec![(list, vec![0, 3])]);
        assert_eq!(r.suspects.len(), 1, "{r:?}");
        assert_eq!(r.suspects[0].holder, list);
        // A cell rebound to a new list that holds new objects made in the round (set up lazily
        // and filled): that is growth the round can see, and stays a suspect.
        let items = h.add("list", 1);
        h.nodes[path as usize] = ("str", OLD);
        h.edges[cell as usize] = vec![items];
        for _ in 0..4 {
            let x = h.add("Other", 1);
            h.link(items, x);
        }
        let (_, r) = run(&h, 1, vec![(list, vec![0, 3])]);
        let holders: Vec<NodeId> = r.suspects.iter().map(|sp| sp.holder).collect();
        assert_eq!(holders, vec![cell, list], "{r:?}");
        // One new object a round in an object of unknown length, over three rounds: a leak.
        let mut h = Heap::new();
        let registry = h.add("Registry", OLD);
        h.link(1, registry);
        for r in 1..=3 {
            let x = h.add("Session", r);
            h.link(registry, x);
        }
        let (_, r) = run(&h, 3, vec![]);
        assert_eq!(r.suspects.len(), 1, "{r:?}");
        assert_eq!(r.suspects[0].holder, registry);
    }

    #[test]
    fn objects_held_outside_the_heap() {
        // New roots (atexit's bound methods) holding sessions: no holder in the heap.
        let mut h = Heap::new();
        for r in 1..=5 {
            let m = h.add("method", r);
            let sess = h.add("Session", r);
            h.link(m, sess);
        }
        let (s, r) = run(&h, 5, vec![]);
        assert_eq!(r.suspects.len(), 1, "{r:?}");
        let sp = &r.suspects[0];
        assert_eq!(sp.holder, OUTSIDE);
        assert_eq!(sp.new_objects, 10);
        assert_eq!(sp.types[0], ("app.Session".to_string(), 5));
        let names: Vec<&str> = sp.path.iter().map(|&v| s.type_name(v)).collect();
        assert_eq!(names, vec!["method", "app.Session"]);
        // Roots of unknown birth that are only plumbing (a snapshot's own lists): nothing.
        let mut h = Heap::new();
        for _ in 0..5 {
            let l = h.add("list", UNKNOWN);
            let t = h.add("tuple", UNKNOWN);
            h.link(l, t);
        }
        let (_, r) = run(&h, 5, vec![]);
        assert!(r.suspects.is_empty(), "{r:?}");
    }

    #[test]
    fn a_leak_every_other_round() {
        let mut h = Heap::new();
        let list = h.add("list", OLD);
        h.link(1, list);
        for r in [1u8, 3, 5] {
            let x = h.add("Session", r);
            h.link(list, x);
        }
        let (_, r) = run(&h, 5, vec![(list, vec![0, 1, 1, 2, 2, 3])]);
        assert_eq!(r.suspects.len(), 1, "{r:?}");
        assert_eq!(r.suspects[0].holder, list);
    }

    #[test]
    fn history_from_snapshots() {
        let (h, list) = event_bus(3, false);
        let (last, birth) = h.snapshot();
        // Earlier snapshots: the same heap without the objects born later.
        let mut earlier = Vec::new();
        for k in 0..3u8 {
            let mut e = Heap::new();
            e.nodes.clear();
            e.edges.clear();
            // Keep ids equal for nodes that exist: build the whole heap, then cut edges to
            // later objects and give later objects another type so they do not match.
            for (i, &(t, b)) in h.nodes.iter().enumerate() {
                e.nodes.push(if b <= k { (t, b) } else { ("Other", b) });
                e.edges.push(
                    h.edges[i]
                        .iter()
                        .copied()
                        .filter(|&w| h.nodes[w as usize].1 <= k)
                        .collect(),
                );
            }
            earlier.push(e.snapshot().0);
        }
        let mut all: Vec<&Snapshot> = earlier.iter().collect();
        all.push(&last);
        let hist = History::from_snapshots(&all).unwrap();
        assert_eq!(hist.rounds, 3);
        assert_eq!(hist.birth, birth);
        let ls = hist.lengths_of(list).unwrap();
        assert_eq!(ls, &[0, 1, 2, 3]);
        let a = analyse(&last, &mut |_, _| {});
        let r = find_suspects(&last, &a, &hist, 5);
        assert_eq!(r.suspects[0].holder, list);
    }

    #[test]
    fn a_reused_address_is_not_an_old_container_that_grew() {
        // In the first snapshot a list at this address held objects that the list at the
        // same address in the last one does not hold: another list (a temporary one, say).
        // With one item (compared directly) and with 20 (through a set).
        for items in [1u32, 20] {
            let mut first = Heap::new();
            let l0 = first.add("list", OLD);
            first.link(1, l0);
            let xs: Vec<NodeId> = (0..items).map(|_| first.add("tuple", OLD)).collect();
            for &x in &xs {
                first.link(l0, x);
            }
            let mut last = Heap::new();
            let l1 = last.add("list", OLD);
            last.link(1, l1);
            // The items' addresses, other objects.
            let others: Vec<NodeId> = (0..items).map(|_| last.add("Other", OLD)).collect();
            assert_eq!((l0, &xs), (l1, &others));
            for _ in 0..items + 5 {
                let t = last.add("tuple", OLD);
                last.link(l1, t);
            }
            let (s0, _) = first.snapshot();
            let (s1, _) = last.snapshot();
            let hist = History::from_snapshots(&[&s0, &s1]).unwrap();
            assert_eq!(hist.birth[l1 as usize], 1, "{items}: not the same list");
            assert!(hist.lengths_of(l1).is_none());
            // The same list, still holding its items, that grew: old, with its lengths.
            let mut grown = Heap::new();
            let l2 = grown.add("list", OLD);
            grown.link(1, l2);
            for _ in 0..items {
                let kept = grown.add("tuple", OLD);
                grown.link(l2, kept);
            }
            for _ in 0..5 {
                let t = grown.add("tuple", OLD);
                grown.link(l2, t);
            }
            let (s2, _) = grown.snapshot();
            let hist = History::from_snapshots(&[&s0, &s2]).unwrap();
            assert_eq!(hist.birth[l2 as usize], 0, "{items}");
            assert_eq!(hist.lengths_of(l2).unwrap(), &[items, items + 5]);
        }
    }
}
