//! The snapshot file format, version 1.
//!
//! ```text
//! magic     8 bytes   "RGSNAP\0\x1a"
//! version   u32 LE    1
//! sections  u32 LE    number of sections (at most 64)
//! directory one entry per section, 28 bytes each:
//!             tag u32, codec u32 (0 stored, 1 deflate), crc32 u32 of the stored bytes,
//!             raw length u64, stored length u64
//! dir crc   u32 LE    crc32 of everything above
//! data      the sections' stored bytes, in directory order, nothing after them
//! ```
//!
//! Section payloads are columns of LEB128 varints (signed values zigzag encoded): node
//! addresses as deltas, type ids, flags (raw bytes), shallow sizes, lengths, edges (degrees,
//! then targets relative to their source), labels and global names (node deltas and
//! length-prefixed UTF-8), the string policy with the fingerprints of strings kept without
//! their text (section 11: policy, key id, then node deltas with 6-byte fingerprints; a file
//! without it was written before string policies and keeps string text), edge names (section
//! 12, optional: the interned texts, then per edge a kind byte and, for named edges, a text id
//! or number; a file without it loads with every edge unnamed). Unknown tags are skipped, so
//! later versions can add sections.
//!
//! The loader trusts nothing: every length is checked against the bytes that are actually
//! there before anything is allocated, decompression is bounded by the declared size (which is
//! itself bounded by deflate's maximum ratio), every index is range checked and checksums are
//! verified, so a truncated, corrupt or hostile file gives an error, never a panic, a hang or a
//! huge allocation.

use super::strings::{StringPolicy, FINGERPRINT_BITS};
use super::{Meta, Snapshot, StringContent, NO_LEN};
use crate::edgenames::EdgeNames;
use crate::graph::{Graph, NodeId, TypeInfo};

pub const MAGIC: &[u8; 8] = b"RGSNAP\0\x1a";
pub const VERSION: u32 = 1;
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

fn labels_section(list: &[(NodeId, String)]) -> Vec<u8> {
    let mut o = Out::default();
    o.varint(list.len() as u64);
    let mut prev = 0u64;
    for (n, s) in list {
        o.varint(*n as u64 - prev);
        prev = *n as u64;
        o.string(s);
    }
    o.0
}

/// The sections of a snapshot, uncompressed.
fn sections(s: &Snapshot) -> Vec<(u32, Vec<u8>)> {
    let g = &s.graph;
    let n = g.len();
    let mut out = Vec::new();

    let mut o = Out::default();
    o.string(&s.meta.python);
    o.varint(s.meta.created);
    o.varint(s.meta.pid as u64);
    o.varint(s.meta.collected as u64 | (s.meta.untracked as u64) << 1);
    o.varint(n as u64);
    o.varint(g.tracked_count() as u64);
    o.varint(g.edge_count() as u64);
    out.push((META, o.0));

    let mut o = Out::default();
    o.varint(g.type_table().len() as u64);
    for t in g.type_table() {
        o.varint(t.addr);
        o.string(&t.short_name);
        o.string(&t.long_name);
    }
    out.push((TYPES, o.0));

    let mut o = Out(Vec::with_capacity(n * 3));
    let mut prev = 0u64;
    for &a in g.addrs() {
        o.signed(a.wrapping_sub(prev) as i64);
        prev = a;
    }
    out.push((ADDRS, o.0));

    let mut o = Out(Vec::with_capacity(n * 2));
    for &t in g.types() {
        o.varint(t as u64);
    }
    out.push((TYPE_IDS, o.0));

    out.push((FLAGS, g.all_flags().to_vec()));

    let mut o = Out(Vec::with_capacity(n * 2));
    for &z in &s.sizes {
        o.varint(z);
    }
    out.push((SIZES, o.0));

    let mut o = Out(Vec::with_capacity(n));
    for &l in &s.lens {
        o.varint(if l == NO_LEN { 0 } else { l as u64 + 1 });
    }
    out.push((LENS, o.0));

    let (offsets, targets) = g.referent_arrays();
    let mut o = Out(Vec::with_capacity(n + targets.len() * 3));
    for w in offsets.windows(2) {
        o.varint((w[1] - w[0]) as u64);
    }
    for v in 0..n {
        for &t in &targets[offsets[v] as usize..offsets[v + 1] as usize] {
            o.signed(t as i64 - v as i64);
        }
    }
    out.push((EDGES, o.0));

    out.push((LABELS, labels_section(&s.labels)));
    out.push((GLOBALS, labels_section(&s.globals)));

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
    out.push((STRINGS, o.0));
    if !s.names.is_empty() {
        let (kinds, values) = s.names.raw_parts();
        let mut o = Out(Vec::with_capacity(kinds.len() * 3));
        o.varint(s.names.text_count() as u64);
        for t in s.names.texts() {
            o.string(t);
        }
        o.varint(kinds.len() as u64);
        for (&k, &v) in kinds.iter().zip(values) {
            o.0.push(k);
            if k != 0 {
                o.varint(v as u64);
            }
        }
        out.push((NAMES, o.0));
    }
    out
}

/// Encode a snapshot as the bytes of a file (sections compressed in parallel).
pub fn to_bytes(s: &Snapshot) -> Vec<u8> {
    to_bytes_reporting(s, &mut |_, _| {})
}

/// [`to_bytes`], calling `progress(done, total)` before it starts, once the sections are encoded,
/// as each section's compression ends, and when the file is complete (`done == total`).
pub fn to_bytes_reporting(s: &Snapshot, progress: &mut dyn FnMut(u64, u64)) -> Vec<u8> {
    progress(0, 1);
    let secs = sections(s);
    // Steps: encoding, one per section compressed, assembling.
    let total = secs.len() as u64 + 2;
    progress(1, total);
    let stored: Vec<(u32, u32, Vec<u8>, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = secs
            .iter()
            .map(|(tag, raw)| {
                scope.spawn(move || {
                    let packed = miniz_oxide::deflate::compress_to_vec(raw, 1);
                    if packed.len() < raw.len() {
                        (*tag, 1u32, packed, raw.len() as u64)
                    } else {
                        (*tag, 0u32, raw.clone(), raw.len() as u64)
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let done = h.join().expect("compression thread");
                progress(2 + i as u64, total);
                done
            })
            .collect()
    });
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
    for (tag, codec, data, raw_len) in &stored {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&codec.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        out.extend_from_slice(&raw_len.to_le_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    for (_, _, data, _) in &stored {
        out.extend_from_slice(data);
    }
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

/// Split a file into its sections' raw (decompressed) bytes.
fn read_sections(b: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, FileError> {
    if b.len() < 16 || &b[..8] != MAGIC {
        return err("not a refgraph snapshot (bad magic number)");
    }
    let version = le_u32(b, 8);
    if version != VERSION {
        return err(format!(
            "snapshot format version {version} is not supported (this refgraph reads version {VERSION})"
        ));
    }
    let count = le_u32(b, 12) as usize;
    if count > MAX_SECTIONS {
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
        if crc32fast::hash(data) != crc && !cfg!(fuzzing) {
            return err(format!(
                "corrupt snapshot: checksum mismatch in section {tag}"
            ));
        }
        match codec {
            0 if raw_len == stored_len => {}
            1 if raw_len <= stored_len.saturating_mul(MAX_RATIO) + 64 => {}
            _ => return err(format!("corrupt snapshot: bad encoding of section {tag}")),
        }
        entries.push((tag, codec, data, raw_len));
    }
    if at != b.len() {
        return err("corrupt snapshot: unexpected bytes after the last section");
    }
    // Inflate the sections in parallel.
    let results: Vec<Result<(u32, Vec<u8>), FileError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .iter()
            .map(|&(tag, codec, data, raw_len)| {
                scope.spawn(move || {
                    if codec == 0 {
                        return Ok((tag, data.to_vec()));
                    }
                    match miniz_oxide::inflate::decompress_to_vec_with_limit(data, raw_len as usize)
                    {
                        Ok(v) if v.len() as u64 == raw_len => Ok((tag, v)),
                        _ => err(format!("corrupt snapshot: section {tag} does not inflate")),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| err("snapshot section could not be decoded"))
            })
            .collect()
    });
    results.into_iter().collect()
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
    for _ in 0..count {
        let Some((&k, rest)) = r.b.split_first() else {
            return err("edge names: truncated");
        };
        r.b = rest;
        let v = if k != 0 { r.u32(u32::MAX as u64)? } else { 0 };
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
    let mut step = |n: u64| progress(n, LOAD_STEPS);
    step(0);
    let secs = read_sections(b)?;
    step(1);
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
    let column = |tag: u32, name: &'static str| -> Result<In<'_>, FileError> {
        let data = get(tag, name)?;
        if data.len() < n {
            return err(format!("corrupt snapshot: {name} column is too short"));
        }
        Ok(In {
            b: data,
            what: name,
        })
    };

    let mut r = column(ADDRS, "addresses")?;
    let mut addrs = Vec::with_capacity(n);
    let mut prev = 0u64;
    for _ in 0..n {
        prev = prev.wrapping_add(r.signed()? as u64);
        addrs.push(prev);
    }
    r.done()?;
    step(2);

    let mut r = column(TYPE_IDS, "type ids")?;
    let mut types = Vec::with_capacity(n);
    for _ in 0..n {
        types.push(r.u32(nt.saturating_sub(1) as u64)?);
    }
    r.done()?;
    step(3);
    if n > 0 && nt == 0 {
        return err("corrupt snapshot: nodes without types");
    }

    let flags = get(FLAGS, "flags")?;
    if flags.len() != n {
        return err("corrupt snapshot: flags column has the wrong length");
    }
    let flags = flags.to_vec();

    let mut r = column(SIZES, "sizes")?;
    let mut sizes = Vec::with_capacity(n);
    for _ in 0..n {
        sizes.push(r.varint()?);
    }
    r.done()?;
    step(4);

    let mut r = column(LENS, "lengths")?;
    let mut lens = Vec::with_capacity(n);
    for _ in 0..n {
        let l = r.varint()?;
        lens.push(if l == 0 {
            NO_LEN
        } else if l - 1 < NO_LEN as u64 {
            (l - 1) as u32
        } else {
            return err("corrupt snapshot: length out of range");
        });
    }
    r.done()?;
    step(5);

    let mut r = column(EDGES, "edges")?;
    if (r.left() as u64) < n as u64 + edges {
        return err("corrupt snapshot: edges column is too short");
    }
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0u32);
    let mut total = 0u64;
    for _ in 0..n {
        total += r.varint()?;
        if total > edges {
            return err("corrupt snapshot: more edges than declared");
        }
        offsets.push(total as u32);
    }
    if total != edges {
        return err("corrupt snapshot: fewer edges than declared");
    }
    let mut targets = Vec::with_capacity(edges as usize);
    for v in 0..n {
        for _ in offsets[v]..offsets[v + 1] {
            let t = v as i64 + r.signed()?;
            if t < 0 || t >= n as i64 {
                return err("corrupt snapshot: edge to a node that does not exist");
            }
            targets.push(t as NodeId);
        }
    }
    r.done()?;
    step(6);

    let labels = read_labels(get(LABELS, "labels")?, n, "labels")?;
    let globals = read_labels(get(GLOBALS, "globals")?, n, "globals")?;
    let strings = read_strings(get(STRINGS, "strings").ok(), n)?;
    step(7);
    let names = match secs.iter().find(|s| s.0 == NAMES) {
        Some((_, data)) => read_names(data, edges as usize)?,
        None => EdgeNames::default(),
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

/// Read a snapshot file.
pub fn load(path: &std::path::Path) -> Result<Snapshot, FileError> {
    let bytes = std::fs::read(path).map_err(|e| FileError(format!("{}: {e}", path.display())))?;
    from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::leaky;

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
            names: EdgeNames::default(),
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
            lens: vec![],
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
        let secs: Vec<(u32, Vec<u8>)> = sections(&s)
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
