//! The snapshot file format, version 3.
//!
//! ```text
//! magic     8 bytes   "RGSNAP\0\x1a"
//! version   u32 LE    3
//! chunks    u32 LE    number of directory entries
//! directory one entry per chunk, 28 bytes each:
//!             tag u32, codec u32 (0 stored, 1 deflate), crc32 u32 of the stored bytes,
//!             raw length u64, stored length u64
//! dir crc   u32 LE    crc32 of everything above
//! data      the chunks' stored bytes, in directory order, nothing after them
//! ```
//!
//! A section is stored as consecutive chunks with its tag, of [`CHUNK`] raw bytes each (the
//! last one shorter; an empty section is one empty chunk), each compressed on its own, so that
//! chunks are compressed, checked and inflated in parallel; the loader joins consecutive chunks
//! of the same tag. Chunk bounds depend only on the data: the file's bytes are the same on any
//! number of threads. Version 1 (refgraph before chunking) had one entry per section (at most
//! 64) and is still read; versions 1 and 2 coded each edge target relative to its source, and
//! are read so (version 3's code: [`TargetCode`]).
//!
//! Section payloads are columns of LEB128 varints (signed values zigzag encoded): node
//! addresses as deltas, type ids, flags (raw bytes), shallow sizes, lengths, edges (degrees,
//! then each target as its difference to the nearest of a few bases: its source, recent
//! targets, see [`TargetCode`]), labels and global names (node deltas and
//! length-prefixed UTF-8), the string policy with the fingerprints of strings kept without
//! their text (section 11: policy, key id, then node deltas with 6-byte fingerprints; a file
//! without it was written before string policies and keeps string text), edge names (section
//! 12, optional: the interned texts, then per edge a kind byte and, for named edges, a text id
//! or number, or for kinds 9 and 10 (version 3) an int dict key's value (zigzag), read as its
//! decimal text; a file without it loads with every edge unnamed). Unknown tags are skipped, so
//! later versions can add sections.
//!
//! The loader trusts nothing: every length is checked against the bytes that are actually
//! there before anything is allocated, decompression is bounded by the declared size (which is
//! itself bounded by deflate's maximum ratio), every index is range checked and checksums are
//! verified, so a truncated, corrupt or hostile file gives an error, never a panic, a hang or a
//! huge allocation.

use super::strings::{StringPolicy, FINGERPRINT_BITS};
use super::{Meta, Snapshot, StringContent, NO_LEN};
use crate::edgenames::{BuiltNames, EdgeKind, EdgeNames, FILE_INT_KEY, FILE_INT_KEY_OBJECT};
use crate::graph::{FixedArrays, Graph, NodeId, PackedArrays, TypeId, TypeInfo};
use crate::lazy::{Lazy, Packed};

pub const MAGIC: &[u8; 8] = b"RGSNAP\0\x1a";
pub const VERSION: u32 = 3;
const MAX_SECTIONS: usize = 64;
const ENTRY: usize = 28;
/// deflate cannot expand more than about 1032:1.
const MAX_RATIO: u64 = 1040;

const META: u32 = 1;
const TYPES: u32 = 2;
const ADDRS: u32 = 3;
const TYPE_IDS: u32 = 4;
const FLAGS: u32 = 5;
const SIZES: u32 = 6;
const LENS: u32 = 7;
const EDGES: u32 = 8;
const LABELS: u32 = 9;
const GLOBALS: u32 = 10;
const STRINGS: u32 = 11;
/// Bytes of a stored fingerprint.
const FP_BYTES: usize = (FINGERPRINT_BITS / 8) as usize;
const NAMES: u32 = 12;

/// Why a file could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError(pub String);

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FileError {}

fn err<T>(msg: impl Into<String>) -> Result<T, FileError> {
    Err(FileError(msg.into()))
}

// ----------------------------------------------------------------------------- encoding

#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn signed(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }
    fn string(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
}

fn labels_section<S: AsRef<str>>(list: &[(NodeId, S)]) -> Vec<u8> {
    let mut o = Out::default();
    o.varint(list.len() as u64);
    let mut prev = 0u64;
    for (n, s) in list {
        o.varint(*n as u64 - prev);
        prev = *n as u64;
        o.string(s.as_ref());
    }
    o.0
}

/// Nodes per piece when a column is encoded in parallel (a bound that depends only on the data,
/// so the bytes never depend on the number of threads).
const NODES_PER_PIECE: usize = 1 << 16;

/// A column of `n` items encoded in pieces of [`NODES_PER_PIECE`] in parallel: `piece(o, a, b)`
/// appends items `a..b`; the pieces are joined in order.
fn pieces(n: usize, per_item: usize, piece: impl Fn(&mut Out, usize, usize) + Sync) -> Vec<u8> {
    use rayon::prelude::*;
    let pieces: Vec<Vec<u8>> = (0..n.div_ceil(NODES_PER_PIECE))
        .into_par_iter()
        .map(|p| {
            let (a, b) = (p * NODES_PER_PIECE, ((p + 1) * NODES_PER_PIECE).min(n));
            let mut o = Out(Vec::with_capacity((b - a) * per_item));
            piece(&mut o, a, b);
            o.0
        })
        .collect();
    pieces.concat()
}

/// Where a column's bytes go: one buffer ([`to_bytes`], which encodes in parallel), or a
/// [`ChunkSink`] that compresses each chunk as soon as it is full (a capture's second thread,
/// which then never holds a whole section's raw bytes).
trait Sink {
    /// A column of `n` items in pieces of [`NODES_PER_PIECE`]: `piece(o, a, b)` appends items
    /// `a..b` (each piece on its own: the pieces may be encoded in parallel).
    fn pieces(
        &mut self,
        n: usize,
        per_item: usize,
        piece: &(dyn Fn(&mut Out, usize, usize) + Sync),
    );
    /// A column of `n` items: `item(o, i)` appends item `i`.
    fn column(&mut self, n: usize, per_item: usize, item: &(dyn Fn(&mut Out, usize) + Sync)) {
        self.pieces(n, per_item, &|o, a, b| {
            for i in a..b {
                item(o, i);
            }
        })
    }
    fn bytes(&mut self, b: &[u8]);
}

impl Sink for Vec<u8> {
    fn pieces(
        &mut self,
        n: usize,
        per_item: usize,
        piece: &(dyn Fn(&mut Out, usize, usize) + Sync),
    ) {
        let c = pieces(n, per_item, piece);
        if self.is_empty() {
            *self = c;
        } else {
            self.extend_from_slice(&c);
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

/// Compresses a section chunk by chunk as its bytes come (the same chunks as [`to_bytes`]
/// makes of the whole section), on the calling thread.
#[derive(Default)]
struct ChunkSink {
    buf: Vec<u8>,
    out: StoredChunks,
}

impl ChunkSink {
    fn flush_full(&mut self) {
        while self.buf.len() >= CHUNK {
            let rest = self.buf.split_off(CHUNK);
            let full = std::mem::replace(&mut self.buf, rest);
            self.out.push(stored_chunk(full));
        }
    }

    fn finish(mut self) -> StoredChunks {
        if !self.buf.is_empty() || self.out.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.out.push(stored_chunk(last));
        }
        self.out
    }
}

/// A chunk's raw bytes as stored: compressed if that makes them smaller.
fn stored_chunk(raw: Vec<u8>) -> (u32, Vec<u8>, usize) {
    let len = raw.len();
    match compress_chunk(&raw) {
        (codec, Some(packed)) => (codec, packed, len),
        (codec, None) => (codec, raw, len),
    }
}

impl Sink for ChunkSink {
    fn pieces(
        &mut self,
        n: usize,
        per_item: usize,
        piece: &(dyn Fn(&mut Out, usize, usize) + Sync),
    ) {
        for p in 0..n.div_ceil(NODES_PER_PIECE) {
            let (a, b) = (p * NODES_PER_PIECE, ((p + 1) * NODES_PER_PIECE).min(n));
            let mut o = Out(std::mem::take(&mut self.buf));
            o.0.reserve((b - a) * per_item);
            piece(&mut o, a, b);
            self.buf = o.0;
            self.flush_full();
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        for part in b.chunks(CHUNK) {
            self.buf.extend_from_slice(part);
            self.flush_full();
        }
    }
}

/// The addresses column: deltas.
fn addrs_raw(addrs: &[u64], to: &mut impl Sink) {
    addrs_raw_of(addrs.len(), |i| addrs[i], to)
}

/// The addresses of `n` nodes, node `i`'s given by `addr(i)`.
fn addrs_raw_of(n: usize, addr: impl Fn(usize) -> u64 + Sync, to: &mut impl Sink) {
    to.column(n, 3, &|o, i| {
        let prev = if i == 0 { 0 } else { addr(i - 1) };
        o.signed(addr(i).wrapping_sub(prev) as i64);
    })
}

fn types_raw(types: &[TypeId], to: &mut impl Sink) {
    to.column(types.len(), 2, &|o, i| o.varint(types[i] as u64))
}

/// The references of `n` nodes: degrees, then targets as [`TargetCode`] codes them, its
/// state starting afresh at each piece of [`NODES_PER_PIECE`] nodes.
fn edges_raw(n: usize, offsets: &[u32], targets: &[NodeId], to: &mut impl Sink) {
    to.column(n, 1, &|o, v| o.varint((offsets[v + 1] - offsets[v]) as u64));
    to.pieces(n, 3, &|o, a, b| {
        let mut code = TargetCode::new(a);
        for v in a..b {
            for &t in &targets[offsets[v] as usize..offsets[v + 1] as usize] {
                o.varint(code.encode(v, t));
            }
        }
    });
}

/// Recent targets a [`TargetCode`] remembers.
const RECENT: usize = 8;
/// Bases an edge target is coded against: its source, `hi`, `next` and the recent targets.
const BASES: u64 = 3 + RECENT as u64;

/// How version 3 codes an edge's target: as its difference to the nearest of eleven bases
/// (zigzag), times [`BASES`], plus the base's number. The bases: the edge's source node (an
/// object and what it holds are often made together), one past the highest target so far (an
/// object found only as a referent is numbered when first met, after the others), one past
/// the previous target (consecutive items), and the last [`RECENT`] distinct targets, most
/// recent first (the class, module globals or code that many objects in a row refer to, or
/// the neighbour of what the node before referred to). In the benchmark's heap this takes
/// 1.6 bytes a reference instead of 3.4, and 0.3 compressed instead of 1.6.
#[derive(Clone)]
struct TargetCode {
    hi: i64,
    next: i64,
    recent: [u32; RECENT],
}

impl TargetCode {
    /// The state at the start of a piece whose first node is `first`.
    fn new(first: usize) -> Self {
        TargetCode {
            hi: first as i64,
            next: first as i64,
            recent: [first as u32; RECENT],
        }
    }

    /// The code of target `t` of an edge from `v`: the smallest difference (any base with
    /// it would decode alike; one of the recent targets itself is taken at once).
    #[inline]
    fn encode(&mut self, v: usize, t: NodeId) -> u64 {
        let hits = self.hits(t);
        let code = if hits != 0 {
            3 + hits.trailing_zeros() as u64
        } else {
            let t64 = t as i64;
            let zz = |d: i64| ((d << 1) ^ (d >> 63)) as u64;
            // The difference and the base's number in one word: the smallest wins.
            let mut best = zz(t64 - v as i64) << 4;
            best = best.min((zz(t64 - self.hi) << 4) | 1);
            best = best.min((zz(t64 - self.next) << 4) | 2);
            for (j, &r) in self.recent.iter().enumerate() {
                best = best.min((zz(t64 - r as i64) << 4) | (3 + j as u64));
            }
            (best >> 4) * BASES + (best & 15)
        };
        self.update(t, hits);
        code
    }

    /// The target of the edge from `v` coded `code`, if it is one of the `n` nodes.
    #[inline]
    fn decode(&mut self, v: usize, code: u64, n: usize) -> Option<NodeId> {
        let (z, base) = (code / BASES, code % BASES);
        let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
        let from = match base {
            0 => v as i64,
            1 => self.hi,
            2 => self.next,
            j => self.recent[(j - 3) as usize] as i64,
        };
        let t = from.checked_add(d).filter(|&t| t >= 0 && t < n as i64)? as NodeId;
        self.update(t, self.hits(t));
        Some(t)
    }

    /// A bit for each recent target equal to `t` (compared all at once).
    #[inline]
    fn hits(&self, t: NodeId) -> u32 {
        let mut m = 0;
        for (j, &r) in self.recent.iter().enumerate() {
            m |= ((r == t) as u32) << j;
        }
        m
    }

    /// After target `t` (`hits`: [`TargetCode::hits`] of it).
    #[inline]
    fn update(&mut self, t: NodeId, hits: u32) {
        self.hi = self.hi.max(t as i64 + 1);
        self.next = t as i64 + 1;
        // `t` moves to the front: the ones before its place (all but the last when it is not
        // there) move back one.
        let at = if hits != 0 {
            hits.trailing_zeros() as usize
        } else {
            RECENT - 1
        };
        let old = self.recent;
        for j in 1..RECENT {
            self.recent[j] = if j <= at { old[j - 1] } else { old[j] };
        }
        self.recent[0] = t;
    }
}

fn sizes_raw(sizes: &[u64], to: &mut impl Sink) {
    to.column(sizes.len(), 2, &|o, i| o.varint(sizes[i]))
}

fn lens_raw(lens: &[u32], to: &mut impl Sink) {
    to.column(lens.len(), 1, &|o, i| {
        let l = lens[i];
        o.varint(if l == NO_LEN { 0 } else { l as u64 + 1 });
    })
}

/// The start of the edge names section: the interned texts of `texts`, then the number of
/// edges.
fn names_header(texts: &EdgeNames, edges: usize) -> Vec<u8> {
    let mut o = Out::default();
    o.varint(texts.text_count() as u64);
    for t in texts.texts() {
        o.string(t);
    }
    o.varint(edges as u64);
    o.0
}

/// The edge names section; false (nothing written) when there are none (the section is then
/// left out).
fn names_raw(names: &EdgeNames, to: &mut impl Sink) -> bool {
    if names.is_empty() {
        return false;
    }
    let (kinds, values) = names.raw_parts();
    to.bytes(&names_header(names, kinds.len()));
    to.column(kinds.len(), 3, &|o, i| {
        o.0.push(kinds[i]);
        if kinds[i] != 0 {
            o.varint(values[i] as u64);
        }
    });
    true
}

/// `encode` into one buffer.
fn raw(encode: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    encode(&mut v);
    v
}

/// `encode` compressed chunk by chunk (see [`ChunkSink`]).
fn packed(encode: impl FnOnce(&mut ChunkSink)) -> StoredChunks {
    let mut sink = ChunkSink::default();
    encode(&mut sink);
    sink.finish()
}

/// A section's contents as [`to_bytes`] gets them: encoded now, or the chunks a column kept
/// packed already holds (a loaded snapshot's, or one the capture packed), written as they are.
enum Section<'a> {
    Raw(Vec<u8>),
    Packed(&'a [(u32, Vec<u8>, usize)]),
}

/// The chunks of a packed column, when they can stand for its value: not decoded yet, or
/// decoded without a problem (a column that did not decode is written as what it reads as).
fn reuse<T>(col: &Lazy<T>) -> Option<&[(u32, Vec<u8>, usize)]> {
    let p = col.packed_form()?;
    if col.peek().is_some() && col.problem().is_some() {
        return None;
    }
    Some(&p.chunks)
}

/// A column's section: its packed chunks if it has usable ones, else `encode` of its value.
fn section<'a, T: Default>(col: &'a Lazy<T>, encode: impl FnOnce(&T) -> Vec<u8>) -> Section<'a> {
    match reuse(col) {
        Some(chunks) => Section::Packed(chunks),
        None => Section::Raw(encode(col.decoded())),
    }
}

/// The sections of a snapshot (encoded in parallel; the packed columns as they are).
fn sections(s: &Snapshot) -> Vec<(u32, Section<'_>)> {
    let g = &s.graph;
    let n = g.len();
    let (offsets, targets) = g.referent_arrays();
    let types = g.types();

    let meta = || {
        let mut o = Out::default();
        o.string(&s.meta.python);
        o.varint(s.meta.created);
        o.varint(s.meta.pid as u64);
        o.varint(s.meta.collected as u64 | (s.meta.untracked as u64) << 1);
        o.varint(n as u64);
        o.varint(g.tracked_count() as u64);
        o.varint(g.edge_count() as u64);
        o.0
    };
    let type_table = || {
        let mut o = Out::default();
        o.varint(g.type_table().len() as u64);
        for t in g.type_table() {
            o.varint(t.addr);
            o.string(&t.short_name);
            o.string(&t.long_name);
        }
        o.0
    };
    let addr_col = || section(g.addrs_column(), |a| raw(|v| addrs_raw(a, v)));
    let packed_arrays = g.packed_arrays();
    let type_col = || match packed_arrays {
        Some(p) => Section::Packed(&p.types),
        None => Section::Raw(raw(|v| types_raw(types, v))),
    };
    let size_col = || section(&s.sizes, |z| raw(|v| sizes_raw(z, v)));
    let len_col = || section(&s.lens, |l| raw(|v| lens_raw(l, v)));
    let edge_col = || match packed_arrays {
        Some(p) => Section::Packed(&p.edges),
        None => Section::Raw(raw(|v| edges_raw(n, offsets, targets, v))),
    };
    let strings = || {
        let st = &s.strings;
        let mut o = Out(Vec::with_capacity(
            st.fingerprints.len() * (FP_BYTES + 1) + 16,
        ));
        o.varint(st.policy.code());
        o.varint(st.key_id);
        o.varint(st.fingerprints.len() as u64);
        let mut prev = 0u64;
        for &(n, f) in &st.fingerprints {
            o.varint(n as u64 - prev);
            prev = n as u64;
            o.0.extend_from_slice(&f.to_le_bytes()[..FP_BYTES]);
        }
        o.0
    };
    let names = || match reuse(&s.names) {
        Some(chunks) => Some(Section::Packed(chunks)),
        None => {
            let mut v = Vec::new();
            names_raw(&s.names, &mut v).then_some(Section::Raw(v))
        }
    };

    // The big columns in parallel with each other (and each in pieces).
    let ((edges, names), ((addrs_b, types_b), (sizes_b, lens_b))) = rayon::join(
        || rayon::join(edge_col, names),
        || {
            rayon::join(
                || rayon::join(addr_col, type_col),
                || rayon::join(size_col, len_col),
            )
        },
    );
    let mut out = vec![
        (META, Section::Raw(meta())),
        (TYPES, Section::Raw(type_table())),
        (ADDRS, addrs_b),
        (TYPE_IDS, types_b),
        (FLAGS, Section::Raw(g.all_flags().to_vec())),
        (SIZES, sizes_b),
        (LENS, lens_b),
        (EDGES, edges),
        (
            LABELS,
            section(&s.labels, |v: &Vec<(NodeId, String)>| labels_section(v)),
        ),
        (GLOBALS, Section::Raw(labels_section(&s.globals))),
        (STRINGS, Section::Raw(strings())),
    ];
    if let Some(names) = names {
        out.push((NAMES, names));
    }
    out
}

/// Raw bytes per compressed chunk: a section is stored as consecutive chunks of at most this
/// many raw bytes, each compressed on its own (so in parallel, on any number of threads, to the
/// same bytes).
pub const CHUNK: usize = 1 << 20;

/// A chunk as the file stores it: codec 1 (deflate) when that makes it smaller, else codec 0
/// and the raw bytes (None: the caller has them).
fn compress_chunk(raw: &[u8]) -> (u32, Option<Vec<u8>>) {
    let mut packed = miniz_oxide::deflate::compress_to_vec(raw, 1);
    if packed.len() < raw.len() {
        // Its buffer is at least half the raw size, zeroed (touched) and kept by a truncate:
        // a capture keeps hundreds of chunks, each in a copy of its own size (at 10M objects
        // the snapshot held about 60 MB less at its peak).
        if packed.capacity() > packed.len() + packed.len() / 8 {
            packed = packed.as_slice().to_vec();
        }
        (1, Some(packed))
    } else {
        (0, None)
    }
}

/// A column as a loaded snapshot keeps it: its chunks, decoded on first use by `decode` (given
/// `arg`, a node or edge count), or read as `empty` when they do not decode.
fn lazy<T>(
    chunks: StoredChunks,
    arg: usize,
    what: &'static str,
    decode: fn(&[u8], usize) -> Result<T, String>,
    empty: fn(usize) -> T,
) -> Lazy<T> {
    Lazy::packed(Packed {
        chunks,
        arg,
        decode,
        empty,
        what,
    })
}

fn addrs_lazy(chunks: StoredChunks, n: usize) -> Lazy<Vec<u64>> {
    let decode = |raw: &[u8], n| read_addrs(raw, n).map_err(|e| e.0);
    lazy(chunks, n, "addresses", decode, |n| vec![0; n])
}

fn sizes_lazy(chunks: StoredChunks, n: usize) -> Lazy<Vec<u64>> {
    let decode = |raw: &[u8], n| read_sizes(raw, n).map_err(|e| e.0);
    lazy(chunks, n, "sizes", decode, |n| vec![0; n])
}

fn lens_lazy(chunks: StoredChunks, n: usize) -> Lazy<Vec<u32>> {
    let decode = |raw: &[u8], n| read_lens(raw, n).map_err(|e| e.0);
    lazy(chunks, n, "lengths", decode, |n| vec![NO_LEN; n])
}

fn labels_lazy(chunks: StoredChunks, n: usize) -> Lazy<Vec<(NodeId, String)>> {
    let decode = |raw: &[u8], n| read_labels(raw, n, "labels").map_err(|e| e.0);
    lazy(chunks, n, "labels", decode, |_| Vec::new())
}

fn names_lazy(chunks: StoredChunks, edges: usize) -> Lazy<EdgeNames> {
    let decode = |raw: &[u8], edges| read_names(raw, edges).map_err(|e| e.0);
    lazy(chunks, edges, "edge names", decode, |_| {
        EdgeNames::default()
    })
}

/// Columns packed as the file stores them, as a loaded snapshot keeps them (decoded on first
/// use, written by [`to_bytes`] as they are), compressed chunk by chunk as they are encoded (no
/// whole section is held uncompressed): a capture packs each column once it is complete,
/// on its second thread, so that it holds less and saving has less left to do.
pub mod pack {
    use super::*;

    /// A graph's type ids and references (see [`Graph::keep_packed_arrays`]).
    pub fn arrays(a: FixedArrays<'_>) -> PackedArrays {
        PackedArrays {
            types: types(a.types),
            edges: edges(a),
        }
    }

    /// A graph's type ids, as [`arrays`] packs them (one part of it, to pack on its own).
    pub fn types(types: &[TypeId]) -> crate::graph::PackedChunks {
        packed(|to| types_raw(types, to))
    }

    /// A graph's references, as [`arrays`] packs them.
    pub fn edges(a: FixedArrays<'_>) -> crate::graph::PackedChunks {
        packed(|to| edges_raw(a.types.len(), a.offsets, a.targets, to))
    }

    /// The addresses of a graph's nodes (see [`Graph::set_addrs_packed`]).
    pub fn addrs(addrs: &[u64]) -> Lazy<Vec<u64>> {
        addrs_lazy(packed(|to| addrs_raw(addrs, to)), addrs.len())
    }

    /// As [`addrs`], the address of node `i` of `n` given by `addr(i)`: a capture packs the
    /// addresses straight from its references to the objects, without a column of them.
    pub fn addrs_of(n: usize, addr: impl Fn(usize) -> u64 + Sync) -> Lazy<Vec<u64>> {
        addrs_lazy(packed(|to| addrs_raw_of(n, addr, to)), n)
    }

    pub fn sizes(sizes: &[u64]) -> Lazy<Vec<u64>> {
        sizes_lazy(packed(|to| sizes_raw(sizes, to)), sizes.len())
    }

    pub fn lens(lens: &[u32]) -> Lazy<Vec<u32>> {
        lens_lazy(packed(|to| lens_raw(lens, to)), lens.len())
    }

    /// Labels of a snapshot of `n` nodes.
    pub fn labels<S: AsRef<str>>(labels: &[(NodeId, S)], n: usize) -> Lazy<Vec<(NodeId, String)>> {
        labels_lazy(packed(|to| to.bytes(&labels_section(labels))), n)
    }

    /// Edge names a builder kept encoded ([`EdgeNamesBuilder::encoding`]; none: an empty,
    /// unpacked value, as the file leaves the section out).
    pub fn built_names(built: BuiltNames) -> Lazy<EdgeNames> {
        match built {
            BuiltNames::Names(names) => self::names(names),
            BuiltNames::Encoded(None) => EdgeNames::default().into(),
            BuiltNames::Encoded(Some(e)) => {
                let chunks = packed(|to| {
                    to.bytes(&names_header(&e.texts, e.edges));
                    drop(e.texts);
                    to.bytes(&e.bytes);
                });
                names_lazy(chunks, e.edges)
            }
        }
    }

    /// Edge names (none: an empty, unpacked value, as the file leaves the section out).
    pub fn names(names: EdgeNames) -> Lazy<EdgeNames> {
        if names.is_empty() {
            return names.into();
        }
        let edges = names.raw_parts().0.len();
        let chunks = packed(|to| {
            names_raw(&names, to);
        });
        drop(names);
        names_lazy(chunks, edges)
    }
}

/// A chunk ready to write: tag, codec, crc, the stored bytes, the raw length.
type Stored<'a> = (u32, u32, u32, std::borrow::Cow<'a, [u8]>, usize);

/// Encode a snapshot as the bytes of a file (encoded and compressed in parallel on the pool of
/// [`crate::threads`]; the bytes do not depend on the number of threads).
pub fn to_bytes(s: &Snapshot) -> Vec<u8> {
    to_bytes_reporting(s, &mut |_, _| {})
}

/// [`to_bytes`], calling `progress(done, total)` before it starts, once the sections are
/// encoded, as batches of chunks are compressed, and when the file is complete
/// (`done == total`). Columns kept packed are written as they are.
pub fn to_bytes_reporting(s: &Snapshot, progress: &mut dyn FnMut(u64, u64)) -> Vec<u8> {
    to_buffer_reporting(s, progress, |len, fill| {
        let mut out = vec![0u8; len];
        fill(&mut out);
        out
    })
}

/// [`to_bytes_reporting`] into a buffer that `sink` makes: it is called once with the file's
/// length and a function that writes the file into a slice of exactly that length (for a
/// buffer owned elsewhere, such as a Python `bytes`, so that the file is not copied again).
pub fn to_buffer_reporting<R>(
    s: &Snapshot,
    progress: &mut dyn FnMut(u64, u64),
    sink: impl FnOnce(usize, &(dyn Fn(&mut [u8]) + Sync)) -> R,
) -> R {
    use rayon::prelude::*;
    use std::borrow::Cow;
    progress(0, 1);
    let secs = crate::threads::run(|| sections(s));
    // Chunks in file order: (tag, raw bytes to compress) or (tag, a packed chunk).
    enum Todo<'a> {
        Raw(u32, &'a [u8]),
        Packed(u32, &'a (u32, Vec<u8>, usize)),
    }
    let mut chunks: Vec<Todo> = Vec::new();
    for (tag, sec) in &secs {
        match sec {
            Section::Raw(raw) if raw.is_empty() => chunks.push(Todo::Raw(*tag, &raw[..])),
            Section::Raw(raw) => chunks.extend(raw.chunks(CHUNK).map(|c| Todo::Raw(*tag, c))),
            Section::Packed(p) => chunks.extend(p.iter().map(|c| Todo::Packed(*tag, c))),
        }
    }
    // Steps: encoding, one per batch of chunks compressed, assembling.
    let batch = (crate::threads::current() * 4).max(8);
    let total = chunks.len().div_ceil(batch) as u64 + 2;
    progress(1, total);
    let mut stored: Vec<Stored> = Vec::with_capacity(chunks.len());
    for (i, group) in chunks.chunks(batch).enumerate() {
        let done: Vec<Stored> = crate::threads::run(|| {
            group
                .par_iter()
                .map(|todo| match *todo {
                    Todo::Raw(tag, raw) => {
                        let (codec, packed) = compress_chunk(raw);
                        let data = packed.map_or(Cow::Borrowed(raw), Cow::Owned);
                        (tag, codec, crc32fast::hash(&data), data, raw.len())
                    }
                    Todo::Packed(tag, (codec, data, raw_len)) => (
                        tag,
                        *codec,
                        crc32fast::hash(data),
                        Cow::Borrowed(&data[..]),
                        *raw_len,
                    ),
                })
                .collect()
        });
        stored.extend(done);
        progress(2 + i as u64, total);
    }
    // The header (magic, version, the chunk table) and its checksum, then the chunks.
    let mut head = Vec::with_capacity(16 + stored.len() * ENTRY + 4);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&(stored.len() as u32).to_le_bytes());
    for (tag, codec, crc, data, raw_len) in &stored {
        head.extend_from_slice(&tag.to_le_bytes());
        head.extend_from_slice(&codec.to_le_bytes());
        head.extend_from_slice(&crc.to_le_bytes());
        head.extend_from_slice(&(*raw_len as u64).to_le_bytes());
        head.extend_from_slice(&(data.len() as u64).to_le_bytes());
    }
    let crc = crc32fast::hash(&head);
    head.extend_from_slice(&crc.to_le_bytes());
    let len = head.len() + stored.iter().map(|c| c.3.len()).sum::<usize>();
    let fill = |out: &mut [u8]| {
        assert_eq!(out.len(), len, "a buffer of the file's length");
        let (first, mut rest) = out.split_at_mut(head.len());
        first.copy_from_slice(&head);
        for (_, _, _, data, _) in &stored {
            let (here, after) = rest.split_at_mut(data.len());
            here.copy_from_slice(data);
            rest = after;
        }
    };
    let out = sink(len, &fill);
    progress(total, total);
    out
}

// ----------------------------------------------------------------------------- decoding

struct In<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> In<'a> {
    fn left(&self) -> usize {
        self.b.len()
    }
    fn varint(&mut self) -> Result<u64, FileError> {
        let mut v = 0u64;
        for (i, &byte) in self.b.iter().enumerate().take(10) {
            let bits = (byte & 0x7f) as u64;
            if i == 9 && bits > 1 {
                return err(format!("{}: number too large", self.what));
            }
            v |= bits << (7 * i);
            if byte & 0x80 == 0 {
                self.b = &self.b[i + 1..];
                return Ok(v);
            }
        }
        err(format!("{}: truncated number", self.what))
    }
    fn signed(&mut self) -> Result<i64, FileError> {
        let u = self.varint()?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }
    fn u32(&mut self, max: u64) -> Result<u32, FileError> {
        let v = self.varint()?;
        if v > max {
            return err(format!("{}: value {v} out of range", self.what));
        }
        Ok(v as u32)
    }
    /// A count of items that each take at least one byte.
    fn count(&mut self) -> Result<usize, FileError> {
        let c = self.varint()?;
        if c > self.left() as u64 {
            return err(format!("{}: count {c} exceeds the data", self.what));
        }
        Ok(c as usize)
    }
    fn string(&mut self) -> Result<String, FileError> {
        let len = self.varint()?;
        if len > self.left() as u64 {
            return err(format!("{}: truncated text", self.what));
        }
        let (s, rest) = self.b.split_at(len as usize);
        self.b = rest;
        match std::str::from_utf8(s) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => err(format!("{}: text is not UTF-8", self.what)),
        }
    }
    fn done(&self) -> Result<(), FileError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            err(format!(
                "{}: {} unexpected bytes at the end",
                self.what,
                self.b.len()
            ))
        }
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A section kept as stored: `(codec, stored bytes, raw length)` per chunk.
type StoredChunks = Vec<(u32, Vec<u8>, usize)>;

/// The version of the file `b` (which starts with the magic number), if this loader reads it.
fn file_version(b: &[u8]) -> Result<u32, FileError> {
    let version = le_u32(b, 8);
    if !(1..=VERSION).contains(&version) {
        return err(format!(
            "snapshot format version {version} is not supported (this refgraph reads versions 1 \
             to {VERSION})"
        ));
    }
    Ok(version)
}

/// Split a file into its sections' raw (decompressed) bytes, except the sections tagged in
/// `keep_packed`, whose chunks are only checked and returned as stored (decoded on first use,
/// see [`crate::lazy`]). Checksums and inflation run in parallel, one task per chunk.
#[allow(clippy::type_complexity)]
fn read_sections(
    b: &[u8],
    keep_packed: &[u32],
) -> Result<(Vec<(u32, Vec<u8>)>, Vec<(u32, StoredChunks)>), FileError> {
    use rayon::prelude::*;
    if b.len() < 16 || &b[..8] != MAGIC {
        return err("not a refgraph snapshot (bad magic number)");
    }
    let version = file_version(b)?;
    let count = le_u32(b, 12) as usize;
    // Version 1 has one entry per section; version 2 one per chunk, each taking a directory
    // entry in the file (so their number is bounded by the file's length).
    if (version == 1 && count > MAX_SECTIONS) || count > (b.len() - 16) / ENTRY {
        return err(format!("corrupt snapshot: {count} sections"));
    }
    let dir_end = 16 + count * ENTRY;
    if b.len() < dir_end + 4 {
        return err("truncated snapshot (directory)");
    }
    if crc32fast::hash(&b[..dir_end]) != le_u32(b, dir_end) && !cfg!(fuzzing) {
        return err("corrupt snapshot: directory checksum mismatch");
    }
    let mut at = dir_end + 4;
    let mut entries = Vec::with_capacity(count);
    for i in 0..count {
        let e = 16 + i * ENTRY;
        let (tag, codec, crc) = (le_u32(b, e), le_u32(b, e + 4), le_u32(b, e + 8));
        let (raw_len, stored_len) = (le_u64(b, e + 12), le_u64(b, e + 20));
        if stored_len > (b.len() - at) as u64 {
            return err("truncated snapshot (section data missing)");
        }
        let data = &b[at..at + stored_len as usize];
        at += stored_len as usize;
        match codec {
            0 if raw_len == stored_len => {}
            1 if raw_len <= stored_len.saturating_mul(MAX_RATIO) + 64 => {}
            _ => return err(format!("corrupt snapshot: bad encoding of section {tag}")),
        }
        entries.push((tag, codec, crc, data, raw_len));
    }
    if at != b.len() {
        return err("corrupt snapshot: unexpected bytes after the last section");
    }
    // Version 2: consecutive chunks with the same tag make one section. Each section gets
    // one buffer of its final size, and each chunk is checked and inflated straight into its
    // part of it, in parallel: no buffer per chunk, nothing copied or grown afterwards.
    let mut sections: Vec<(u32, std::ops::Range<usize>, u64)> = Vec::new();
    for (i, &(tag, _, _, _, raw_len)) in entries.iter().enumerate() {
        match sections.last_mut() {
            Some((t, range, total)) if version >= 2 && *t == tag => {
                range.end = i + 1;
                *total += raw_len;
            }
            _ => sections.push((tag, i..i + 1, raw_len)),
        }
    }
    // Sections kept packed: checksums checked, stored bytes copied (the file is freed after).
    let mut packed: Vec<(u32, StoredChunks)> = Vec::new();
    sections.retain(|(tag, range, _)| {
        if !keep_packed.contains(tag) {
            return true;
        }
        packed.push((
            *tag,
            entries[range.clone()]
                .iter()
                .map(|&(_, codec, _, data, raw_len)| (codec, data.to_vec(), raw_len as usize))
                .collect(),
        ));
        false
    });
    for &(tag, _, crc, data, _) in entries.iter().filter(|e| keep_packed.contains(&e.0)) {
        if crc32fast::hash(data) != crc && !cfg!(fuzzing) {
            return err(format!(
                "corrupt snapshot: checksum mismatch in section {tag}"
            ));
        }
    }
    let mut out: Vec<(u32, Vec<u8>)> = Vec::with_capacity(sections.len());
    for &(tag, _, total) in &sections {
        let total = usize::try_from(total)
            .map_err(|_| FileError(format!("corrupt snapshot: section {tag} is too big")))?;
        let buf = crate::hugepages::try_zeroed_bytes(total).ok_or_else(|| {
            FileError(format!(
                "corrupt snapshot: section {tag} claims {total} bytes, more than can be had"
            ))
        })?;
        out.push((tag, buf));
    }
    let mut jobs = Vec::with_capacity(entries.len());
    for ((_, range, _), (_, buf)) in sections.iter().zip(out.iter_mut()) {
        let mut rest = buf.as_mut_slice();
        for e in &entries[range.clone()] {
            let (part, tail) = rest.split_at_mut(e.4 as usize);
            rest = tail;
            jobs.push((e, part));
        }
    }
    crate::threads::run(|| {
        jobs.into_par_iter()
            .try_for_each(|(&(tag, codec, crc, data, _), part)| {
                if crc32fast::hash(data) != crc && !cfg!(fuzzing) {
                    return err(format!(
                        "corrupt snapshot: checksum mismatch in section {tag}"
                    ));
                }
                if crate::lazy::unpack(codec, data, part) {
                    Ok(())
                } else {
                    err(format!("corrupt snapshot: section {tag} does not inflate"))
                }
            })
    })?;
    Ok((out, packed))
}

/// Bytes per piece when a column of varints is decoded in parallel.
const BYTES_PER_PIECE: usize = 1 << 20;

/// Split `data`, a sequence of varints, into pieces of about [`BYTES_PER_PIECE`] bytes, each
/// starting at a varint (after a byte below 0x80), with the number of varints that end in each
/// (counted in parallel).
fn varint_pieces(data: &[u8]) -> Vec<(&[u8], usize)> {
    use rayon::prelude::*;
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let mut end = (start + BYTES_PER_PIECE).min(data.len());
        while end < data.len() && data[end - 1] >= 0x80 {
            end += 1;
        }
        pieces.push(&data[start..end]);
        start = end;
    }
    pieces
        .into_par_iter()
        .map(|p| (p, p.iter().filter(|&&x| x < 0x80).count()))
        .collect()
}

/// Decode a column of exactly `out.len()` varints filling `data`, in parallel: `piece(first, r,
/// slots)` decodes `slots.len()` values from `r` into `slots`, `first` being the index of the
/// first. Every piece then must be fully read.
fn decode_column<T: Send>(
    data: &[u8],
    what: &'static str,
    out: &mut [T],
    piece: impl Fn(usize, &mut In<'_>, &mut [T]) -> Result<(), FileError> + Sync,
) -> Result<(), FileError> {
    use rayon::prelude::*;
    let pieces = varint_pieces(data);
    let total: usize = pieces.iter().map(|p| p.1).sum();
    if total != out.len() || data.last().is_some_and(|&x| x >= 0x80) {
        // Too few or too many values, or a truncated last one: decode serially for the error.
        let mut r = In { b: data, what };
        for _ in 0..out.len() {
            r.varint()?;
        }
        r.done()?;
        return err(format!("{what}: wrong number of values"));
    }
    let mut jobs = Vec::with_capacity(pieces.len());
    let mut rest = out;
    let mut first = 0;
    for (b, k) in pieces {
        let (slots, tail) = rest.split_at_mut(k);
        rest = tail;
        jobs.push((first, b, slots));
        first += k;
    }
    jobs.into_par_iter().try_for_each(|(first, b, slots)| {
        let mut r = In { b, what };
        piece(first, &mut r, slots)?;
        r.done()
    })
}

/// Decode the edge targets of version 3 (see [`TargetCode`]) into `targets`, given the edge
/// lists' `offsets`: in parallel, by pieces of [`NODES_PER_PIECE`] nodes, each starting where
/// the varints counted before it end.
fn decode_targets(data: &[u8], offsets: &[u32], targets: &mut [NodeId]) -> Result<(), FileError> {
    use rayon::prelude::*;
    const WHAT: &str = "edges";
    let n = offsets.len() - 1;
    let pieces = varint_pieces(data);
    let total: usize = pieces.iter().map(|p| p.1).sum();
    if total != targets.len() || data.last().is_some_and(|&x| x >= 0x80) {
        return err(format!("{WHAT}: wrong number of values"));
    }
    // The first edge of each piece of nodes, and (below) the byte where its code starts.
    let firsts: Vec<usize> = (0..n.div_ceil(NODES_PER_PIECE))
        .map(|p| offsets[p * NODES_PER_PIECE] as usize)
        .collect();
    let mut counted = 0;
    let mut jobs = Vec::with_capacity(pieces.len());
    for (bytes, k) in pieces {
        let at = bytes.as_ptr() as usize - data.as_ptr() as usize;
        jobs.push((bytes, at, counted));
        counted += k;
    }
    // For each stretch of bytes, the starts of the pieces whose first edge is coded in it.
    let found: Vec<Vec<usize>> = jobs
        .into_par_iter()
        .map(|(bytes, at, counted)| {
            let from = firsts.partition_point(|&f| f < counted);
            let mut starts = Vec::new();
            let mut edge = counted;
            let mut want = from;
            let mut pos = 0;
            while want < firsts.len() && pos <= bytes.len() {
                if firsts[want] == edge && pos < bytes.len() {
                    starts.push(at + pos);
                    want += 1;
                    continue;
                }
                if pos == bytes.len() {
                    break;
                }
                // Past the varint that starts at `pos`.
                while bytes[pos] >= 0x80 {
                    pos += 1;
                }
                pos += 1;
                edge += 1;
            }
            starts
        })
        .collect();
    let mut starts: Vec<usize> = found.into_iter().flatten().collect();
    // Pieces whose first edge is past the last (no edges from there on) start at the end.
    starts.resize(firsts.len(), data.len());
    starts.push(data.len());
    let mut work = Vec::with_capacity(firsts.len());
    let mut rest = targets;
    for p in 0..firsts.len() {
        let (a, b) = (p * NODES_PER_PIECE, ((p + 1) * NODES_PER_PIECE).min(n));
        let (slots, tail) = rest.split_at_mut((offsets[b] - offsets[a]) as usize);
        rest = tail;
        work.push((a, b, &data[starts[p]..starts[p + 1]], slots));
    }
    let corrupt = || FileError("corrupt snapshot: edge to a node that does not exist".into());
    crate::threads::run(|| {
        work.into_par_iter().try_for_each(|(a, b, bytes, slots)| {
            let mut r = In {
                b: bytes,
                what: WHAT,
            };
            let mut code = TargetCode::new(a);
            let base = offsets[a] as usize;
            for v in a..b {
                let slots = &mut slots[offsets[v] as usize - base..offsets[v + 1] as usize - base];
                for t in slots {
                    *t = code.decode(v, r.varint()?, n).ok_or_else(corrupt)?;
                }
            }
            r.done()
        })
    })
}

/// The byte length of the first `count` varints of `data` (found with parallel counts).
fn varints_len(data: &[u8], count: usize, what: &'static str) -> Result<usize, FileError> {
    let mut seen = 0;
    let mut at = 0;
    for (p, k) in varint_pieces(data) {
        if seen + k >= count {
            let mut r = In { b: p, what };
            for _ in seen..count {
                r.varint()?;
            }
            return Ok(at + p.len() - r.left());
        }
        seen += k;
        at += p.len();
    }
    if count == 0 {
        return Ok(0);
    }
    err(format!("{what}: truncated number"))
}

/// A column of `n` numbers, one read by `one` each, decoded in parallel pieces.
fn u64_column(
    data: &[u8],
    n: usize,
    what: &'static str,
    one: impl Fn(&mut In<'_>) -> Result<u64, FileError> + Sync,
) -> Result<Vec<u64>, FileError> {
    let mut out: Vec<u64> = crate::hugepages::zeroed(n);
    crate::threads::run(|| {
        decode_column(data, what, &mut out, |_, r, part| {
            for x in part.iter_mut() {
                *x = one(r)?;
            }
            Ok(())
        })
    })?;
    Ok(out)
}

/// The addresses column (decoded on first use, in parallel): deltas.
fn read_addrs(data: &[u8], n: usize) -> Result<Vec<u64>, FileError> {
    let mut addrs = u64_column(data, n, "addresses", |r| Ok(r.signed()? as u64))?;
    let mut prev = 0u64;
    for a in addrs.iter_mut() {
        prev = prev.wrapping_add(*a);
        *a = prev;
    }
    Ok(addrs)
}

/// The sizes column (decoded on first use, in parallel).
fn read_sizes(data: &[u8], n: usize) -> Result<Vec<u64>, FileError> {
    if data.len() < n {
        return err("sizes: column is too short");
    }
    u64_column(data, n, "sizes", |r| r.varint())
}

/// The lengths column (decoded on first use).
fn read_lens(data: &[u8], n: usize) -> Result<Vec<u32>, FileError> {
    let mut r = In {
        b: data,
        what: "lengths",
    };
    let mut lens: Vec<u32> = crate::hugepages::with_capacity(n);
    for _ in 0..n {
        let l = r.varint()?;
        lens.push(if l == 0 {
            NO_LEN
        } else if l - 1 < NO_LEN as u64 {
            (l - 1) as u32
        } else {
            return err("lengths: length out of range");
        });
    }
    r.done()?;
    Ok(lens)
}

fn read_labels(
    data: &[u8],
    n: usize,
    what: &'static str,
) -> Result<Vec<(NodeId, String)>, FileError> {
    let mut r = In { b: data, what };
    let count = r.count()?;
    let mut out = Vec::with_capacity(count);
    let mut prev = 0u64;
    for i in 0..count {
        let d = r.varint()?;
        if i > 0 && d == 0 {
            return err(format!("{what}: nodes out of order"));
        }
        prev = prev.saturating_add(d);
        if prev >= n as u64 {
            return err(format!("{what}: node {prev} does not exist"));
        }
        out.push((prev as NodeId, r.string()?));
    }
    r.done()?;
    Ok(out)
}

fn read_strings(data: Option<&[u8]>, n: usize) -> Result<StringContent, FileError> {
    let Some(data) = data else {
        return Ok(StringContent::default());
    };
    let what = "string policy";
    let mut r = In { b: data, what };
    let policy = StringPolicy::from_code(r.varint()?)
        .ok_or_else(|| FileError(format!("{what}: unknown policy")))?;
    let key_id = r.varint()?;
    let count = r.count()?;
    if (count as u64).saturating_mul(FP_BYTES as u64 + 1) > r.left() as u64 {
        return err(format!("{what}: count {count} exceeds the data"));
    }
    let mut fingerprints = Vec::with_capacity(count);
    let mut prev = 0u64;
    for i in 0..count {
        let d = r.varint()?;
        if i > 0 && d == 0 {
            return err(format!("{what}: nodes out of order"));
        }
        prev = prev.saturating_add(d);
        if prev >= n as u64 {
            return err(format!("{what}: node {prev} does not exist"));
        }
        if r.left() < FP_BYTES {
            return err(format!("{what}: truncated fingerprint"));
        }
        let mut f = [0u8; 8];
        f[..FP_BYTES].copy_from_slice(&r.b[..FP_BYTES]);
        r.b = &r.b[FP_BYTES..];
        fingerprints.push((prev as NodeId, u64::from_le_bytes(f)));
    }
    r.done()?;
    Ok(StringContent {
        policy,
        key_id,
        fingerprints,
    })
}

fn read_names(data: &[u8], edges: usize) -> Result<EdgeNames, FileError> {
    let mut r = In {
        b: data,
        what: "edge names",
    };
    let nt = r.count()?;
    let mut texts = Vec::with_capacity(nt);
    for _ in 0..nt {
        texts.push(r.string()?);
    }
    let count = r.count()?;
    if count != 0 && count != edges {
        return err("corrupt snapshot: edge names do not match the edges");
    }
    let mut kinds = Vec::with_capacity(count);
    let mut values = Vec::with_capacity(count);
    // The texts of int keys (coded by value), each added once.
    let mut ints: rustc_hash::FxHashMap<i64, u32> = Default::default();
    for _ in 0..count {
        let Some((&k, rest)) = r.b.split_first() else {
            return err("edge names: truncated");
        };
        r.b = rest;
        let (k, v) = match k {
            0 => (0, 0),
            FILE_INT_KEY | FILE_INT_KEY_OBJECT => {
                let z = r.varint()?;
                let key = ((z >> 1) as i64) ^ -((z & 1) as i64);
                let next = texts.len();
                let id = *ints.entry(key).or_insert_with(|| {
                    texts.push(key.to_string());
                    next as u32
                });
                if texts.len() > u32::MAX as usize {
                    return err("edge names: too many texts");
                }
                let kind = if k == FILE_INT_KEY {
                    EdgeKind::DictKey
                } else {
                    EdgeKind::DictKeyObject
                };
                (kind as u8, id)
            }
            k => (k, r.u32(u32::MAX as u64)?),
        };
        kinds.push(k);
        values.push(v);
    }
    r.done()?;
    EdgeNames::from_parts(kinds, values, texts, edges)
        .map_err(|e| FileError(format!("corrupt snapshot: {e}")))
}

/// Decode the bytes of a snapshot file.
pub fn from_bytes(b: &[u8]) -> Result<Snapshot, FileError> {
    from_bytes_reporting(b, &mut |_, _| {})
}

/// Steps [`from_bytes_reporting`] reports.
pub const LOAD_STEPS: u64 = 10;

/// [`from_bytes`], calling `progress(done, LOAD_STEPS)` before its first step and after each.
pub fn from_bytes_reporting(
    b: &[u8],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Snapshot, FileError> {
    decode(std::borrow::Cow::Borrowed(b), progress)
}

/// [`from_bytes_reporting`] on the file's bytes, which are freed as soon as its sections are
/// read (before the columns are decoded: at 30 million objects, 220 MB less at the peak).
pub fn from_vec_reporting(
    b: Vec<u8>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Snapshot, FileError> {
    decode(std::borrow::Cow::Owned(b), progress)
}

fn decode(
    b: std::borrow::Cow<'_, [u8]>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Snapshot, FileError> {
    let mut step = |n: u64| progress(n, LOAD_STEPS);
    step(0);
    // Addresses, sizes, lengths, labels and edge names stay compressed until a query reads
    // them.
    let (mut secs, packed) = read_sections(&b, &[ADDRS, SIZES, LENS, LABELS, NAMES])?;
    // Checked by `read_sections`: versions before 3 code the targets relative to their source.
    let relative_targets = le_u32(&b, 8) < 3;
    drop(b);
    step(1);
    // The big columns leave the list: each is freed as soon as it is decoded.
    let mut take = |tag: u32, name: &'static str| -> Result<Vec<u8>, FileError> {
        secs.iter_mut()
            .find(|s| s.0 == tag)
            .map(|s| std::mem::take(&mut s.1))
            .ok_or_else(|| FileError(format!("corrupt snapshot: no {name} section")))
    };
    let columns = [
        take(TYPE_IDS, "type ids"),
        take(FLAGS, "flags"),
        take(EDGES, "edges"),
    ];
    let mut packed_addrs = None;
    let mut packed_sizes = None;
    let mut packed_lens = None;
    let mut packed_labels = None;
    let mut packed_names = None;
    for (tag, chunks) in packed {
        match tag {
            ADDRS => packed_addrs = Some(chunks),
            SIZES => packed_sizes = Some(chunks),
            LENS => packed_lens = Some(chunks),
            LABELS => packed_labels = Some(chunks),
            _ => packed_names = Some(chunks),
        }
    }
    let get = |tag: u32, name: &'static str| -> Result<&[u8], FileError> {
        secs.iter()
            .find(|s| s.0 == tag)
            .map(|s| s.1.as_slice())
            .ok_or_else(|| FileError(format!("corrupt snapshot: no {name} section")))
    };

    let mut r = In {
        b: get(META, "metadata")?,
        what: "metadata",
    };
    let python = r.string()?;
    let created = r.varint()?;
    let pid = r.u32(u32::MAX as u64)?;
    let bits = r.varint()?;
    let n = r.varint()?;
    let tracked = r.varint()?;
    let edges = r.varint()?;
    r.done()?;
    if n >= u32::MAX as u64 || tracked > n || edges >= u32::MAX as u64 {
        return err("corrupt snapshot: impossible node or edge counts");
    }
    let n = n as usize;
    let meta = Meta {
        python,
        created,
        pid,
        collected: bits & 1 != 0,
        untracked: bits & 2 != 0,
    };

    let mut r = In {
        b: get(TYPES, "types")?,
        what: "types",
    };
    let nt = r.count()?;
    let mut table = Vec::with_capacity(nt);
    for _ in 0..nt {
        table.push(TypeInfo {
            addr: r.varint()?,
            short_name: r.string()?,
            long_name: r.string()?,
        });
    }
    r.done()?;

    // Every column has exactly n entries of at least one byte each.
    let [type_data, flags, edge_data] = columns;
    let column = |data: Result<Vec<u8>, FileError>, name: &'static str| {
        let data = data?;
        if data.len() < n {
            return err(format!("corrupt snapshot: {name} column is too short"));
        }
        Ok(data)
    };
    let type_data = column(type_data, "type ids")?;
    let flags = flags?;
    let edge_data = column(edge_data, "edges")?;
    if n > 0 && nt == 0 {
        return err("corrupt snapshot: nodes without types");
    }
    if flags.len() != n {
        return err("corrupt snapshot: flags column has the wrong length");
    }
    if (edge_data.len() as u64) < n as u64 + edges {
        return err("corrupt snapshot: edges column is too short");
    }

    // The columns are decoded in parallel with each other, each in pieces.
    let types = move || -> Result<Vec<u32>, FileError> {
        let mut types: Vec<u32> = crate::hugepages::zeroed(n);
        let max = nt.saturating_sub(1) as u64;
        decode_column(&type_data, "type ids", &mut types, |_, r, out| {
            for t in out.iter_mut() {
                *t = r.u32(max)?;
            }
            Ok(())
        })?;
        Ok(types)
    };
    let edge_lists = move || -> Result<(Vec<u32>, Vec<NodeId>), FileError> {
        let split = varints_len(&edge_data, n, "edges")?;
        let (deg_data, target_data) = edge_data.split_at(split);
        let mut offsets: Vec<u32> = crate::hugepages::zeroed(n + 1);
        decode_column(deg_data, "edges", &mut offsets[1..], |_, r, out| {
            for d in out.iter_mut() {
                *d = r.u32(edges)?;
            }
            Ok(())
        })?;
        let mut total = 0u64;
        for o in offsets[1..].iter_mut() {
            total += *o as u64;
            if total > edges {
                return err("corrupt snapshot: more edges than declared");
            }
            *o = total as u32;
        }
        if total != edges {
            return err("corrupt snapshot: fewer edges than declared");
        }
        let mut targets: Vec<NodeId> = crate::hugepages::zeroed(edges as usize);
        if !relative_targets {
            decode_targets(target_data, &offsets, &mut targets)?;
            return Ok((offsets, targets));
        }
        let offsets_ref = &offsets;
        decode_column(target_data, "edges", &mut targets, |first, r, out| {
            // The source of edge `first`: the last node whose edges start at or before it.
            let mut v = offsets_ref.partition_point(|&o| o as usize <= first) - 1;
            for (i, t) in out.iter_mut().enumerate() {
                while offsets_ref[v + 1] as usize <= first + i {
                    v += 1;
                }
                let x = v as i64 + r.signed()?;
                if x < 0 || x >= n as i64 {
                    return err("corrupt snapshot: edge to a node that does not exist");
                }
                *t = x as NodeId;
            }
            Ok(())
        })?;
        Ok((offsets, targets))
    };
    let (edge_res, type_res) = crate::threads::run(|| rayon::join(edge_lists, types));
    let addrs = addrs_lazy(required(packed_addrs, "addresses")?, n);
    step(2);
    let types = type_res?;
    step(3);
    let sizes = sizes_lazy(required(packed_sizes, "sizes")?, n);
    step(4);
    let lens = lens_lazy(required(packed_lens, "lengths")?, n);
    step(5);
    let (offsets, targets) = edge_res?;
    step(6);

    let labels = labels_lazy(required(packed_labels, "labels")?, n);
    let globals = read_labels(get(GLOBALS, "globals")?, n, "globals")?;
    let strings = read_strings(get(STRINGS, "strings").ok(), n)?;
    step(7);
    let names = match packed_names {
        Some(chunks) => names_lazy(chunks, edges as usize),
        None => EdgeNames::default().into(),
    };
    step(8);

    let graph = Graph::from_parts(addrs, types, flags, tracked as u32, offsets, targets, table)
        .map_err(|e| FileError(format!("corrupt snapshot: {e}")))?;
    step(9);
    let s = Snapshot {
        graph,
        sizes,
        lens,
        labels,
        globals,
        names,
        meta,
        strings,
    };
    s.validate()
        .map_err(|e| FileError(format!("corrupt snapshot: {e}")))?;
    step(LOAD_STEPS);
    Ok(s)
}

/// A section kept packed until first use (see [`Lazy`]); missing, an error.
fn required(chunks: Option<StoredChunks>, what: &str) -> Result<StoredChunks, FileError> {
    chunks.ok_or_else(|| FileError(format!("corrupt snapshot: no {what} section")))
}

/// Read a snapshot file.
pub fn load(path: &std::path::Path) -> Result<Snapshot, FileError> {
    let bytes = std::fs::read(path).map_err(|e| FileError(format!("{}: {e}", path.display())))?;
    from_vec_reporting(bytes, &mut |_, _| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every section's raw bytes (packed ones inflated).
    fn raw_sections(s: &Snapshot) -> Vec<(u32, Vec<u8>)> {
        sections(s)
            .into_iter()
            .map(|(tag, sec)| match sec {
                Section::Raw(v) => (tag, v),
                Section::Packed(chunks) => {
                    let mut raw = Vec::new();
                    for (codec, data, len) in chunks {
                        let mut part = vec![0; *len];
                        assert!(crate::lazy::unpack(*codec, data, &mut part));
                        raw.extend_from_slice(&part);
                    }
                    (tag, raw)
                }
            })
            .collect()
    }
    use crate::snapshot::testing::leaky;

    /// A packed column's chunks hold what they store, not the compressor's buffer (at least
    /// half a raw chunk each), and give the addresses back, also when packed from a function.
    #[test]
    fn packed_chunks_hold_only_their_bytes() {
        let n = 3 * CHUNK / 2;
        let addrs: Vec<u64> = (0..n as u64).map(|i| 0x7f00_0000_0000 + i * 48).collect();
        let packed = pack::addrs_of(n, |i| addrs[i]);
        let chunks = &packed.packed_form().expect("packed").chunks;
        assert!(chunks.len() > 1);
        for (codec, data, len) in chunks {
            assert_eq!(*codec, 1, "compressible");
            assert!(data.len() < len / 4, "{} of {len}", data.len());
            assert!(data.capacity() <= data.len() + data.len() / 8);
        }
        assert_eq!(*packed, addrs);
        assert_eq!(*pack::addrs(&addrs), addrs);
    }

    #[test]
    fn saving_reports_its_steps_in_order() {
        let s = leaky(50);
        let mut seen = Vec::new();
        let bytes = to_bytes_reporting(&s, &mut |d, t| seen.push((d, t)));
        assert_eq!(bytes, to_bytes(&s));
        assert_eq!(seen[0], (0, 1));
        let total = seen[1].1;
        let expected: Vec<(u64, u64)> = (1..=total).map(|d| (d, total)).collect();
        assert_eq!(seen[1..], expected[..]);
    }

    #[test]
    fn loading_reports_every_step_in_order() {
        let s = leaky(50);
        let bytes = to_bytes(&s);
        let mut seen = Vec::new();
        let back = from_bytes_reporting(&bytes, &mut |d, t| seen.push((d, t))).unwrap();
        assert_eq!(back.len(), s.len());
        let expected: Vec<(u64, u64)> = (0..=LOAD_STEPS).map(|d| (d, LOAD_STEPS)).collect();
        assert_eq!(seen, expected);
        // The same from an owned buffer.
        let mut again = Vec::new();
        let owned = from_vec_reporting(bytes.clone(), &mut |d, t| again.push((d, t))).unwrap();
        assert_eq!(again, expected);
        same(&back, &owned);
        // A file that fails stops the reports where it fails.
        seen.clear();
        assert!(
            from_bytes_reporting(&bytes[..bytes.len() - 1], &mut |d, t| seen.push((d, t))).is_err()
        );
        assert_eq!(seen, vec![(0, LOAD_STEPS)]);
    }

    fn same(a: &Snapshot, b: &Snapshot) {
        assert_eq!(a.graph.addrs(), b.graph.addrs());
        assert_eq!(a.graph.types(), b.graph.types());
        assert_eq!(a.graph.all_flags(), b.graph.all_flags());
        assert_eq!(a.graph.referent_arrays(), b.graph.referent_arrays());
        assert_eq!(a.graph.type_table(), b.graph.type_table());
        assert_eq!(a.graph.tracked_count(), b.graph.tracked_count());
        for v in 0..a.len() as NodeId {
            assert_eq!(a.graph.referrers(v), b.graph.referrers(v));
        }
        assert_eq!(a.sizes, b.sizes);
        assert_eq!(a.lens, b.lens);
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.globals, b.globals);
        assert_eq!(a.names, b.names);
        assert_eq!(a.meta, b.meta);
        assert_eq!(a.strings, b.strings);
    }

    #[test]
    fn a_file_without_names_loads_with_every_edge_unnamed() {
        let s = leaky(4);
        assert!(!s.names.is_empty());
        let bytes = to_bytes(&Snapshot {
            names: EdgeNames::default().into(),
            ..s.clone()
        });
        let loaded = from_bytes(&bytes).unwrap();
        assert!(loaded.names.is_empty());
        assert_eq!(loaded.edge_name(2, 0), None);
        assert_eq!(loaded.graph.referent_arrays(), s.graph.referent_arrays());
        // With names, they come back.
        let again = from_bytes(&to_bytes(&s)).unwrap();
        assert_eq!(
            again.edge_name(2, 1),
            Some(crate::edgenames::EdgeName::Index(1))
        );
    }

    #[test]
    fn bad_name_sections_are_refused() {
        let s = leaky(2);
        let edges = s.graph.edge_count();
        let section = |texts: &[&str], edge_bytes: &[u8], count: usize| {
            let mut o = Out::default();
            o.varint(texts.len() as u64);
            for t in texts {
                o.string(t);
            }
            o.varint(count as u64);
            o.0.extend_from_slice(edge_bytes);
            o.0
        };
        // Text id out of range.
        let mut eb = vec![1u8, 5];
        eb.extend(std::iter::repeat_n(0u8, edges - 1));
        assert!(read_names(&section(&["a"], &eb, edges), edges).is_err());
        // Unknown kind.
        let mut eb = vec![200u8, 0];
        eb.extend(std::iter::repeat_n(0u8, edges - 1));
        assert!(read_names(&section(&["a"], &eb, edges), edges).is_err());
        // Wrong edge count.
        let eb = vec![0u8; edges - 1];
        assert!(read_names(&section(&[], &eb, edges - 1), edges).is_err());
        // Truncated.
        let eb = vec![0u8; edges - 1];
        assert!(read_names(&section(&[], &eb, edges), edges).is_err());
        // Valid.
        let mut eb = vec![1u8, 0];
        eb.extend(std::iter::repeat_n(0u8, edges - 1));
        let n = read_names(&section(&["a"], &eb, edges), edges).unwrap();
        assert_eq!(n.get(0), Some(crate::edgenames::EdgeName::Attr("a")));
    }

    #[test]
    fn addresses_sizes_lengths_labels_and_names_are_decoded_on_first_use() {
        let s = leaky(50);
        let back = from_bytes(&to_bytes(&s)).unwrap();
        let packed = |b: &Snapshot| {
            [
                !b.graph.addrs_decoded(),
                b.lens.peek().is_none(),
                b.labels.peek().is_none(),
                b.names.peek().is_none(),
            ]
        };
        assert_eq!(packed(&back), [true; 4]);
        assert!(back.sizes.peek().is_none());
        // The dominator tree reads none of them; retained sizes and statistics read the sizes.
        let a = crate::snapshot::analysis::analyse(&back, &mut |_, _| {});
        assert!(back.sizes.peek().is_some());
        crate::snapshot::analysis::type_stats(&back, Some(&a));
        assert_eq!(packed(&back), [true; 4]);
        assert_eq!(back.label(0), s.label(0));
        assert_eq!(packed(&back), [true, true, false, true]);
        assert_eq!(back.length(2), s.length(2));
        assert_eq!(packed(&back), [true, false, false, true]);
        assert_eq!(back.graph.find(s.graph.addr(7)), Some(7));
        assert_eq!(packed(&back), [false, false, false, true]);
        same(&s, &back);
        assert!(back.problems().is_empty());
    }

    /// Sections with right checksums but wrong contents load; each reads as empty when first
    /// used, and the snapshot says why.
    #[test]
    fn malformed_lazy_sections_read_empty_with_a_reason() {
        let s = leaky(20);
        let edges = s.graph.edge_count();
        // Written as version 1 (edge targets relative to their source).
        let mut secs = sections_before_3(&s);
        for (tag, raw) in secs.iter_mut() {
            let mut o = Out::default();
            match *tag {
                ADDRS => {
                    // An 11-byte varint.
                    o.0.extend_from_slice(&[0xff; 10]);
                    o.0.push(1);
                    o.0.extend(std::iter::repeat_n(0u8, s.len() - 1));
                }
                SIZES => {
                    // An 11-byte varint for node 1.
                    o.varint(1);
                    o.0.extend_from_slice(&[0xff; 10]);
                    o.0.push(1);
                    o.0.extend(std::iter::repeat_n(0u8, s.len() - 2));
                }
                LENS => {
                    // A length of 2^33 for node 0.
                    o.varint(1 << 33);
                    o.0.extend(std::iter::repeat_n(0u8, s.len() - 1));
                }
                LABELS => {
                    // Two labels for node 3: out of order.
                    o.varint(2);
                    for d in [3, 0] {
                        o.varint(d);
                        o.string("x");
                    }
                }
                NAMES => {
                    // Text id 9 of one text.
                    o.varint(1);
                    o.string("a");
                    o.varint(edges as u64);
                    o.0.extend_from_slice(&[1, 9]);
                    o.0.extend(std::iter::repeat_n(0u8, edges - 1));
                }
                _ => continue,
            }
            *raw = o.0;
        }
        let file = version_1_of(secs);
        let back = from_bytes(&file).unwrap();
        assert!(back.problems().is_empty(), "not known before use");
        // Saved before use, the sections are written as they are: the problems come back.
        let again = from_bytes(&to_bytes(&back)).unwrap();
        assert!(again.labels.is_empty() && again.names.is_empty() && again.total_bytes() == 0);
        assert!(again.graph.addrs()[3] == 0 && again.length(0).is_none());
        assert_eq!(again.problems().len(), 5, "{:?}", again.problems());
        // Queries that need what cannot be read get nothing, and do not fail.
        assert_eq!(back.graph.find(s.graph.addr(3)), None);
        assert!(back.graph.addrs().iter().all(|&a| a == 0));
        let a = crate::snapshot::analysis::analyse(&back, &mut |_, _| {});
        crate::snapshot::diff::diff(&s, &back, Some(&a));
        crate::snapshot::diff::diff(&back, &back, Some(&a));
        let roots = crate::snapshot::analysis::roots(&back);
        crate::snapshot::paths::retention_paths(&back, &roots, &[5, 6]);
        assert!((0..s.len() as NodeId).all(|v| back.length(v).is_none()));
        assert_eq!(back.label(3), None);
        assert_eq!(back.edge_name(0, 0), None);
        assert!(back.labels.is_empty() && back.names.is_empty());
        assert_eq!(back.total_bytes(), 0);
        let problems = back.problems();
        assert_eq!(problems.len(), 5, "{problems:?}");
        for (p, what) in problems.iter().zip([
            "addresses: number too large",
            "sizes: number too large",
            "length out of range",
            "labels: nodes out of order",
            "corrupt snapshot: ",
        ]) {
            assert!(
                p.starts_with("corrupt snapshot: ") && p.contains(what),
                "{problems:?}"
            );
        }
        // Everything else reads as usual.
        same(
            &Snapshot {
                graph: Graph::from_parts(
                    vec![0; s.len()],
                    s.graph.types().to_vec(),
                    s.graph.all_flags().to_vec(),
                    s.graph.tracked_count() as u32,
                    s.graph.referent_arrays().0.to_vec(),
                    s.graph.referent_arrays().1.to_vec(),
                    s.graph.type_table().to_vec(),
                )
                .unwrap(),
                sizes: vec![0; s.len()].into(),
                lens: vec![NO_LEN; s.len()].into(),
                labels: Vec::new().into(),
                names: EdgeNames::default().into(),
                ..s.clone()
            },
            &back,
        );
        // Saved once found unreadable, they are written as what they read as: no problem left.
        let again = from_bytes(&to_bytes(&back)).unwrap();
        assert!(again.labels.is_empty() && again.names.is_empty() && again.total_bytes() == 0);
        assert!(again.problems().is_empty(), "{:?}", again.problems());
    }

    #[test]
    fn round_trip() {
        let mut s = leaky(50);
        s.labels.push((7, "naïve \"quoted\"\n</text>".into()));
        s.labels.sort();
        let bytes = to_bytes(&s);
        same(&s, &from_bytes(&bytes).unwrap());
        s.strings = StringContent {
            policy: StringPolicy::Names,
            key_id: 0xfeed,
            fingerprints: vec![(4, 0xa1b2_c3d4_e5f6), (9, 1)],
        };
        same(&s, &from_bytes(&to_bytes(&s)).unwrap());
        let empty = Snapshot::default();
        let e = from_bytes(&to_bytes(&Snapshot {
            lens: Vec::new().into(),
            ..empty
        }))
        .unwrap();
        assert!(e.is_empty());
    }

    /// A file without the string section (written before string policies, or by a writer
    /// that does not know them) loads as policy "all" without fingerprints.
    #[test]
    fn files_without_a_string_section_keep_text() {
        let s = leaky(3);
        let secs: Vec<(u32, Vec<u8>)> = raw_sections(&s)
            .into_iter()
            .filter(|x| x.0 != STRINGS)
            .collect();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(secs.len() as u32).to_le_bytes());
        for (tag, raw) in &secs {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&crc32fast::hash(raw).to_le_bytes());
            out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
            out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        for (_, raw) in &secs {
            out.extend_from_slice(raw);
        }
        let back = from_bytes(&out).unwrap();
        assert_eq!(back.strings, StringContent::default());
        assert_eq!(back.strings.policy, StringPolicy::All);
        assert_eq!(back.labels, s.labels);
    }

    /// The raw sections of `s` with its edges as versions 1 and 2 code them: each target
    /// relative to its source.
    fn sections_before_3(s: &Snapshot) -> Vec<(u32, Vec<u8>)> {
        let (offsets, targets) = s.graph.referent_arrays();
        let mut o = Out::default();
        for v in 0..s.graph.len() {
            o.varint((offsets[v + 1] - offsets[v]) as u64);
        }
        for v in 0..s.graph.len() {
            for &t in &targets[offsets[v] as usize..offsets[v + 1] as usize] {
                o.signed(t as i64 - v as i64);
            }
        }
        let mut secs = raw_sections(s);
        secs.iter_mut().find(|x| x.0 == EDGES).unwrap().1 = o.0;
        secs
    }

    /// A version 1 file: one directory entry per section, however big.
    fn version_1(s: &Snapshot) -> Vec<u8> {
        version_1_of(sections_before_3(s))
    }

    /// A version 2 file: sections in chunks of [`CHUNK`] raw bytes, edges coded as before 3.
    fn version_2(s: &Snapshot) -> Vec<u8> {
        let mut parts: Vec<(u32, Vec<u8>)> = Vec::new();
        for (tag, raw) in sections_before_3(s) {
            if raw.is_empty() {
                parts.push((tag, Vec::new()));
            }
            for c in raw.chunks(CHUNK) {
                parts.push((tag, c.to_vec()));
            }
        }
        deflated_file(2, parts)
    }

    /// A version 1 file of these raw sections, checksums right.
    fn version_1_of(secs: Vec<(u32, Vec<u8>)>) -> Vec<u8> {
        deflated_file(1, secs)
    }

    /// A file of this version with a directory entry for each of `secs` (tag, raw bytes),
    /// each deflated, checksums right.
    fn deflated_file(version: u32, secs: Vec<(u32, Vec<u8>)>) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(secs.len() as u32).to_le_bytes());
        let packed: Vec<Vec<u8>> = secs
            .iter()
            .map(|(_, raw)| miniz_oxide::deflate::compress_to_vec(raw, 1))
            .collect();
        for ((tag, raw), p) in secs.iter().zip(&packed) {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&crc32fast::hash(p).to_le_bytes());
            out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
            out.extend_from_slice(&(p.len() as u64).to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        for p in &packed {
            out.extend_from_slice(p);
        }
        out
    }

    #[test]
    fn version_1_files_still_load() {
        let s = leaky(50);
        same(&s, &from_bytes(&version_1(&s)).unwrap());
        // A big one, whose sections are over a chunk (several chunks in later versions).
        let mut big = leaky(200_000);
        big.labels.truncate(3);
        let v1 = version_1(&big);
        let v2 = to_bytes(&big);
        assert!(le_u32(&v2, 12) > le_u32(&v1, 12));
        same(&big, &from_bytes(&v1).unwrap());
        same(&big, &from_bytes(&v2).unwrap());
        // In version 1, a repeated tag was a second section (the first one is read), not a
        // continuation.
        let mut v1 = version_1(&s);
        v1[8] = 4;
        let e = from_bytes(&v1).unwrap_err();
        assert!(e.0.contains("version 4 is not supported"), "{e}");
        v1[8] = 0;
        let e = from_bytes(&v1).unwrap_err();
        assert!(e.0.contains("version 0 is not supported"), "{e}");
    }

    /// Files written before version 3 (edge targets relative to their source) still load, and
    /// save in version 3 as the same snapshot; version 3's references take fewer bytes.
    #[test]
    fn version_2_files_still_load() {
        for s in [leaky(50), leaky(200_000)] {
            let v2 = version_2(&s);
            assert_eq!(le_u32(&v2, 8), 2);
            let back = from_bytes(&v2).unwrap();
            same(&s, &back);
            let v3 = to_bytes(&back);
            assert_eq!(le_u32(&v3, 8), 3);
            assert!(raw_sections(&back) == raw_sections(&s));
            let again = from_bytes(&v3).unwrap();
            same(&s, &again);
            assert_eq!(to_bytes(&again), v3);
            let edges = |secs: Vec<(u32, Vec<u8>)>| {
                secs.into_iter().find(|x| x.0 == EDGES).unwrap().1.len()
            };
            let (before, now) = (edges(sections_before_3(&s)), edges(raw_sections(&s)));
            assert!(
                s.len() < 1000 || now < before,
                "{now} bytes, {before} before"
            );
        }
    }

    /// Any bytes read as version 3 targets give targets in range or an error, never a panic:
    /// random codes (short, long, cut), for edge lists of one piece of nodes and of several.
    #[test]
    fn target_codes_from_any_bytes_never_panic() {
        let mut x = 99u64;
        let mut rnd = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        let mut decoded = 0;
        for round in 0..4000 {
            let n = if round % 1000 == 999 {
                2 * NODES_PER_PIECE + 5
            } else {
                (rnd() % 200) as usize
            };
            let mut offsets = vec![0u32];
            for _ in 0..n {
                let d = (rnd() % if n > 1000 { 2 } else { 4 }) as u32;
                offsets.push(offsets.last().unwrap() + d);
            }
            let edges = *offsets.last().unwrap() as usize;
            // Half of them one byte a code, the right count for single-byte codes.
            let len = if round % 2 == 0 {
                edges
            } else {
                (rnd() % (edges as u64 * 3 + 2)) as usize
            };
            let data: Vec<u8> = (0..len)
                .map(|_| match round % 3 {
                    0 => rnd() as u8 & 0x7f,
                    // The source itself, or the most recent target: always a node.
                    1 => [0, 3][(rnd() % 2) as usize],
                    _ => rnd() as u8,
                })
                .collect();
            let mut out = vec![0; edges];
            if decode_targets(&data, &offsets, &mut out).is_ok() {
                decoded += 1;
                assert!(out.iter().all(|&t| (t as usize) < n));
            }
        }
        assert!(decoded > 100, "some random codes are valid ({decoded})");
    }

    /// Int dict keys, coded by their value in the file (no text at capture), read back as the
    /// decimal texts a plain builder interns, each text once.
    #[test]
    fn int_keys_are_coded_by_value_and_read_as_text() {
        use crate::edgenames::{EdgeName, EdgeNamesBuilder};
        let keys = [7i64, -12, 7, i64::MAX, i64::MIN, 0, 1 << 40];
        let mut plain = EdgeNamesBuilder::with_capacity(16);
        let mut enc = EdgeNamesBuilder::encoding(16);
        plain.push(Some(EdgeName::DictKey("7")));
        enc.push(Some(EdgeName::DictKey("7")));
        for &k in &keys {
            let t = k.to_string();
            plain.push(Some(EdgeName::DictKey(&t)));
            plain.push(Some(EdgeName::DictKeyObject(&t)));
            enc.push_int_key(false, k);
            enc.push_int_key(true, k);
        }
        plain.push(None);
        enc.push(None);
        plain.push(Some(EdgeName::Attr("x")));
        enc.push(Some(EdgeName::Attr("x")));
        let plain = plain.finish();
        let edges = plain.len();
        let names = pack::built_names(enc.build());
        assert_eq!(names.len(), edges);
        for e in 0..edges {
            assert_eq!(names.get(e), plain.get(e), "edge {e}");
        }
        // "7" twice: interned by the capture once, and once for the int keys.
        assert_eq!(names.text_count(), 8);
        // Codes that do not fit are refused.
        let mut bad = names_header(&plain, 1);
        bad.extend_from_slice(&[FILE_INT_KEY, 0xff, 0xff]);
        assert!(read_names(&bad, 1).is_err());
        // Random kinds and values: names or an error, never a panic.
        let mut x = 7u64;
        for round in 0..3000 {
            let edges = round % 40;
            let mut b = names_header(&plain, edges);
            for _ in 0..edges * 2 + round % 5 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let byte = (x >> 56) as u8;
                b.push(if round % 2 == 0 { byte % 12 } else { byte });
            }
            if let Ok(names) = read_names(&b, edges) {
                for e in 0..names.len() {
                    let _ = names.get(e);
                }
            }
        }
    }

    /// The targets' code on its own: every kind of base, the state starting afresh at each
    /// piece of nodes, and codes that do not decode to a node refused.
    #[test]
    fn target_codes_round_trip() {
        let n = 3 * NODES_PER_PIECE + 17;
        // Sources with edges to themselves, neighbours, far nodes, repeats, runs, the end.
        let mut offsets = vec![0u32];
        let mut targets: Vec<NodeId> = Vec::new();
        let mut x = 12345u64;
        for v in 0..n {
            let k = (v % 7) as u32;
            for j in 0..k {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let t = match (x >> 60) % 6 {
                    0 => v,
                    1 => (v + j as usize) % n,
                    2 => (x >> 20) as usize % n,
                    3 => n - 1,
                    4 => targets.last().map_or(0, |&t| (t as usize + 1) % n),
                    _ => targets.len() % 97,
                };
                targets.push(t as NodeId);
            }
            offsets.push(targets.len() as u32);
        }
        let mut raw = Vec::new();
        edges_raw(n, &offsets, &targets, &mut raw);
        let split = varints_len(&raw, n, "edges").unwrap();
        let mut back = vec![0; targets.len()];
        decode_targets(&raw[split..], &offsets, &mut back).unwrap();
        assert_eq!(back, targets);
        // The same bytes through the chunked sink.
        let mut sink = ChunkSink::default();
        edges_raw(n, &offsets, &targets, &mut sink);
        let mut joined = Vec::new();
        for (codec, data, len) in sink.finish() {
            let mut part = vec![0; len];
            assert!(crate::lazy::unpack(codec, &data, &mut part));
            joined.extend_from_slice(&part);
        }
        assert_eq!(joined, raw);
        // A code past the last node, or before the first, is an error.
        let mut c = TargetCode::new(0);
        assert_eq!(c.decode(5, 0, 10), Some(5));
        assert_eq!(c.decode(5, 1, 10), Some(6)); // one past the highest (5)
        assert_eq!(c.decode(0, 20 * BASES, 10), None);
        assert_eq!(c.decode(0, 3 * BASES, 10), None); // -2 from the source
        assert_eq!(c.decode(0, u64::MAX, 10), None);
        // Too few or too many codes.
        let mut short = vec![0; targets.len() - 1];
        assert!(decode_targets(&raw[split..], &offsets[..], &mut short).is_err());
        assert!(decode_targets(&raw[split..raw.len() - 1], &offsets, &mut back).is_err());
    }

    #[test]
    fn chunks_of_one_section_are_joined_only_when_consecutive() {
        let s = leaky(5);
        let secs = raw_sections(&s);
        // The flags section split in two chunks, stored raw: loads as the whole section.
        let write = |parts: &[(u32, &[u8])]| {
            let mut out = Vec::new();
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(&VERSION.to_le_bytes());
            out.extend_from_slice(&(parts.len() as u32).to_le_bytes());
            for (tag, raw) in parts {
                out.extend_from_slice(&tag.to_le_bytes());
                out.extend_from_slice(&0u32.to_le_bytes());
                out.extend_from_slice(&crc32fast::hash(raw).to_le_bytes());
                out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
                out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
            }
            let crc = crc32fast::hash(&out);
            out.extend_from_slice(&crc.to_le_bytes());
            for (_, raw) in parts {
                out.extend_from_slice(raw);
            }
            out
        };
        let mut parts: Vec<(u32, &[u8])> = Vec::new();
        for (tag, raw) in &secs {
            if *tag == FLAGS {
                let (a, b) = raw.split_at(raw.len() / 2);
                parts.push((FLAGS, a));
                parts.push((FLAGS, b));
            } else {
                parts.push((*tag, raw));
            }
        }
        same(&s, &from_bytes(&write(&parts)).unwrap());
        // Not consecutive: the second run is another section, and the first is too short.
        let i = parts.iter().position(|p| p.0 == FLAGS).unwrap();
        parts.swap(i + 1, i + 2);
        assert!(from_bytes(&write(&parts)).is_err());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error() {
        let mut s = leaky(5);
        s.strings.policy = StringPolicy::Names;
        s.strings.fingerprints = vec![(6, 0x1234_5678_9abc)];
        let bytes = to_bytes(&s);
        for cut in 0..bytes.len() {
            assert!(from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                // A flip may only be accepted if it leaves the meaning intact, which the
                // checksums make impossible here.
                assert!(from_bytes(&b).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn hostile_sizes_are_refused_without_allocating() {
        // A valid directory claiming a huge raw length for a small stored section.
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        let data = [0u8; 4];
        out.extend_from_slice(&META.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&data).to_le_bytes());
        out.extend_from_slice(&(1u64 << 40).to_le_bytes());
        out.extend_from_slice(&4u64.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&data);
        let e = from_bytes(&out).unwrap_err();
        assert!(e.0.contains("bad encoding"), "{e}");
    }
}
