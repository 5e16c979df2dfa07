//! Edge names: how a referrer holds each referent (attribute `x`, dict key `'k'`, index 3, …).
//!
//! Edge `k` of node `src` is the `k`-th referent of `src` in `tp_traverse` order (the graph's
//! CSR position `offsets[src] + k`). Names are stored in two arrays parallel to the edge array
//! — a kind byte (`0` = unnamed) and a `u32` value (an index into an interned text table, or a
//! number) — so a name costs 5 bytes per edge and repeated texts (attribute names) are stored
//! once. A graph without names (an older snapshot file, a query that did not ask for them) has
//! empty arrays and every edge is unnamed.
//!
//! Many of CPython's own references are attributes of C objects and are named as such:
//! a bound method's `__self__` and `__func__`, a function's `__closure__`, `__globals__` and
//! `__code__`, a cell's `cell_contents`, a class's `__mro__`, `__bases__` and `__dict__`, a
//! `functools.partial`'s `func`, `args` and `keywords`, a weak reference's `__callback__`,
//! an object's `__class__` and `__dict__`.

use rustc_hash::FxHashMap;

/// The kind of an edge name, as stored (one byte per edge; `0` means unnamed).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// An attribute: instance `__dict__` entry seen through the object (3.11+ inline values),
    /// `__slots__` member, or a C object's field that Python exposes under that name.
    Attr = 1,
    /// The value stored under a dict key; the text is the key's repr (`'name'`, `3`, `None`,
    /// `(1, 'a')`), or a placeholder in angle brackets (`<Session>`) for other keys.
    DictKey = 2,
    /// The key object itself (dicts with non-str keys refer to their keys); text as `DictKey`.
    DictKeyObject = 3,
    /// Position in a list, tuple or deque.
    Index = 4,
    /// Member of a set or frozenset.
    SetMember = 5,
    /// The contents of a closure cell (`cell.cell_contents`); the text is the name of the free
    /// variable the cell holds for the functions that share it.
    Cell = 6,
    /// A frame's local variable (or cell/free variable) by name.
    Local = 7,
    /// Any other named reference; free text, not a Python expression.
    Other = 8,
}

impl EdgeKind {
    /// The kind stored as `b`, if it is one.
    pub fn from_u8(b: u8) -> Option<EdgeKind> {
        Some(match b {
            1 => EdgeKind::Attr,
            2 => EdgeKind::DictKey,
            3 => EdgeKind::DictKeyObject,
            4 => EdgeKind::Index,
            5 => EdgeKind::SetMember,
            6 => EdgeKind::Cell,
            7 => EdgeKind::Local,
            8 => EdgeKind::Other,
            _ => return None,
        })
    }

    /// Does the stored value index the text table (rather than being a number or nothing)?
    pub fn has_text(self) -> bool {
        !matches!(self, EdgeKind::Index | EdgeKind::SetMember)
    }
}

/// In the snapshot file only: an edge to the value under an int dict key, the key's value
/// (zigzag varint) in place of a text id; read as [`EdgeKind::DictKey`] with the key's decimal
/// text.
pub const FILE_INT_KEY: u8 = 9;
/// As [`FILE_INT_KEY`], for the edge to the key object ([`EdgeKind::DictKeyObject`]).
pub const FILE_INT_KEY_OBJECT: u8 = 10;

/// The name of one edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdgeName<'a> {
    Attr(&'a str),
    DictKey(&'a str),
    DictKeyObject(&'a str),
    Index(u32),
    SetMember,
    Cell(&'a str),
    Local(&'a str),
    Other(&'a str),
}

/// Is `s` a Python identifier (ASCII letters, digits, `_`; not starting with a digit)?
/// Non-ASCII identifiers are valid Python but are written as `getattr`-free subscripts only
/// when the rules are simple, so they count as identifiers too when made of alphanumerics.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c == '_' || c.is_alphanumeric())
}

impl<'a> EdgeName<'a> {
    /// The kind of this name.
    pub fn kind(&self) -> EdgeKind {
        match self {
            EdgeName::Attr(_) => EdgeKind::Attr,
            EdgeName::DictKey(_) => EdgeKind::DictKey,
            EdgeName::DictKeyObject(_) => EdgeKind::DictKeyObject,
            EdgeName::Index(_) => EdgeKind::Index,
            EdgeName::SetMember => EdgeKind::SetMember,
            EdgeName::Cell(_) => EdgeKind::Cell,
            EdgeName::Local(_) => EdgeKind::Local,
            EdgeName::Other(_) => EdgeKind::Other,
        }
    }

    /// The text of the name (`""` for indexes and set members).
    pub fn text(&self) -> &'a str {
        match *self {
            EdgeName::Attr(t)
            | EdgeName::DictKey(t)
            | EdgeName::DictKeyObject(t)
            | EdgeName::Cell(t)
            | EdgeName::Local(t)
            | EdgeName::Other(t) => t,
            EdgeName::Index(_) | EdgeName::SetMember => "",
        }
    }

    /// What to append to a Python expression for the referrer to get the referent, if the
    /// reference can be written so. `position` is the edge's index among the referrer's
    /// referents (unused by the current kinds).
    ///
    /// `.x` (attribute), `['k']` (dict key), `[3]` (index), `.cell_contents` (closure cell),
    /// `.f_locals['x']` (frame local). Keys written as placeholders, key objects, set members
    /// and other names have no expression.
    pub fn suffix(&self, position: usize) -> Option<String> {
        let _ = position;
        match *self {
            EdgeName::Attr(t) if is_identifier(t) => Some(format!(".{t}")),
            EdgeName::Attr(_) => None,
            EdgeName::DictKey(k) if !k.starts_with('<') && !k.is_empty() => Some(format!("[{k}]")),
            EdgeName::DictKey(_) => None,
            EdgeName::Index(i) => Some(format!("[{i}]")),
            EdgeName::Cell(_) => Some(".cell_contents".to_string()),
            EdgeName::Local(t) if is_identifier(t) => Some(format!(".f_locals['{t}']")),
            EdgeName::Local(_) => None,
            EdgeName::DictKeyObject(_) | EdgeName::SetMember | EdgeName::Other(_) => None,
        }
    }

    /// A short label for people (edge labels of drawings, JSON): `.x`, `['k']`, `[3]`,
    /// `key 'k'`, `set member`, `closure x`, `local x`, or the free text.
    pub fn label(&self) -> String {
        match *self {
            EdgeName::Attr(t) => format!(".{t}"),
            EdgeName::DictKey(k) => format!("[{k}]"),
            EdgeName::DictKeyObject(k) => format!("key {k}"),
            EdgeName::Index(i) => format!("[{i}]"),
            EdgeName::SetMember => "set member".into(),
            EdgeName::Cell(t) => format!("closure {t}"),
            EdgeName::Local(t) => format!("local {t}"),
            EdgeName::Other(t) => t.to_string(),
        }
    }
}

impl std::fmt::Display for EdgeName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// The names of all edges of a graph (or of none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeNames {
    /// One byte per edge: an [`EdgeKind`] or 0 (unnamed). Empty when nothing is named.
    kinds: Vec<u8>,
    /// One value per edge: a text id or a number, by kind.
    values: Vec<u32>,
    /// The interned texts, concatenated; text `i` is `text[ends[i-1]..ends[i]]`.
    text: String,
    ends: Vec<u32>,
}

impl EdgeNames {
    /// True when no edge has a name (the arrays are empty).
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Number of edges covered (0 or the graph's edge count).
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Number of distinct texts.
    pub fn text_count(&self) -> usize {
        self.ends.len()
    }

    /// Text number `i`.
    pub fn text(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// The name of the edge at CSR position `edge` (`offsets[src] + k`), if it has one.
    pub fn get(&self, edge: usize) -> Option<EdgeName<'_>> {
        let kind = EdgeKind::from_u8(*self.kinds.get(edge)?)?;
        let v = self.values[edge];
        Some(match kind {
            EdgeKind::Attr => EdgeName::Attr(self.text(v)),
            EdgeKind::DictKey => EdgeName::DictKey(self.text(v)),
            EdgeKind::DictKeyObject => EdgeName::DictKeyObject(self.text(v)),
            EdgeKind::Index => EdgeName::Index(v),
            EdgeKind::SetMember => EdgeName::SetMember,
            EdgeKind::Cell => EdgeName::Cell(self.text(v)),
            EdgeKind::Local => EdgeName::Local(self.text(v)),
            EdgeKind::Other => EdgeName::Other(self.text(v)),
        })
    }

    /// Number of named edges.
    pub fn named_count(&self) -> usize {
        self.kinds.iter().filter(|&&k| k != 0).count()
    }

    /// Bytes the names take (array lengths, so a loaded copy reports the same).
    pub fn heap_bytes(&self) -> usize {
        self.kinds.len() + self.values.len() * 4 + self.text.len() + self.ends.len() * 4
    }

    /// The raw columns `(kinds, values, texts)` (for the file format).
    pub fn raw_parts(&self) -> (&[u8], &[u32]) {
        (&self.kinds, &self.values)
    }

    /// Iterate over the texts in id order.
    pub fn texts(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.ends.len() as u32).map(move |i| self.text(i))
    }

    /// Rebuild from stored columns, checking every kind and text id; `edges` is the graph's
    /// edge count (the columns must be empty or that long).
    pub fn from_parts(
        kinds: Vec<u8>,
        values: Vec<u32>,
        texts: Vec<String>,
        edges: usize,
    ) -> Result<EdgeNames, String> {
        if kinds.len() != values.len() || (!kinds.is_empty() && kinds.len() != edges) {
            return Err("edge name columns do not match the edge count".into());
        }
        let mut text = String::new();
        let mut ends = Vec::with_capacity(texts.len());
        for t in &texts {
            text.push_str(t);
            if text.len() > u32::MAX as usize {
                return Err("edge name texts are too long".into());
            }
            ends.push(text.len() as u32);
        }
        for (&k, &v) in kinds.iter().zip(&values) {
            if k == 0 {
                continue;
            }
            let Some(kind) = EdgeKind::from_u8(k) else {
                return Err(format!("unknown edge name kind {k}"));
            };
            if kind.has_text() && v as usize >= ends.len() {
                return Err("edge name text that does not exist".into());
            }
        }
        Ok(EdgeNames {
            kinds,
            values,
            text,
            ends,
        })
    }

    /// Check the arrays against a graph's edge count.
    pub fn validate(&self, edges: usize) -> Result<(), String> {
        if self.kinds.len() != self.values.len() || (!self.is_empty() && self.len() != edges) {
            return Err("edge name columns do not match the edge count".into());
        }
        Ok(())
    }
}

/// Builds [`EdgeNames`] edge by edge, in CSR order, interning texts.
///
/// The texts are looked up by a 64-bit hash that maps to the id of the first text with that
/// hash, compared with the text in the table: no second copy of each text (at millions of
/// distinct dictionary keys, the copies and their allocations were a third of the capture's
/// peak). A different text with the same hash goes to `collided`, keyed by the text itself.
#[derive(Default)]
pub struct EdgeNamesBuilder {
    names: EdgeNames,
    by_hash: FxHashMap<u64, u32>,
    collided: FxHashMap<Box<str>, u32>,
    /// With [`EdgeNamesBuilder::encoding`]: the edges as the snapshot file encodes them (a
    /// kind byte, then the value as a varint unless unnamed), about half the bytes of the
    /// kind and value arrays, instead of those arrays.
    encoded: Option<Encoded>,
}

#[derive(Default)]
struct Encoded {
    bytes: Vec<u8>,
    edges: usize,
    named: bool,
}

/// Where a builder was: what [`EdgeNamesBuilder::truncate`] goes back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    edges: usize,
    bytes: usize,
}

/// Edge names as a snapshot file encodes them (see [`EdgeNamesBuilder::encoding`]): the
/// interned texts, the number of edges, and each edge's kind byte and varint value.
pub struct EncodedNames {
    pub texts: EdgeNames,
    pub edges: usize,
    pub bytes: Vec<u8>,
}

/// What a builder made: the names, or (encoding) the names as the file encodes them, None
/// when no edge is named.
pub enum BuiltNames {
    Names(EdgeNames),
    Encoded(Option<EncodedNames>),
}

impl EdgeNamesBuilder {
    /// A builder with room for `edges` edges.
    pub fn with_capacity(edges: usize) -> Self {
        let mut b = EdgeNamesBuilder::default();
        b.names.kinds.reserve(edges);
        b.names.values.reserve(edges);
        b
    }

    /// The id of a text, added to the table if new.
    pub fn intern(&mut self, t: &str) -> u32 {
        use std::collections::hash_map::Entry;
        use std::hash::BuildHasher;
        let h = rustc_hash::FxBuildHasher.hash_one(t);
        let next = self.names.ends.len() as u32;
        match self.by_hash.entry(h) {
            Entry::Occupied(e) => {
                let i = *e.get();
                if self.names.text(i) == t {
                    return i;
                }
                if let Some(&i) = self.collided.get(t) {
                    return i;
                }
                self.collided.insert(t.into(), next);
            }
            Entry::Vacant(e) => {
                e.insert(next);
            }
        }
        self.names.text.push_str(t);
        self.names.ends.push(self.names.text.len() as u32);
        next
    }

    /// A builder that keeps the edges as the snapshot file encodes them (see [`Encoded`]): for
    /// a capture that packs them once complete. `edges`: the expected number.
    pub fn encoding(edges: usize) -> Self {
        EdgeNamesBuilder {
            encoded: Some(Encoded {
                // A kind byte and a varint per edge: 2.7 bytes per edge in the benchmark's heap
                // (its cache's million int keys are texts with ids of 3 bytes). Written once
                // as the capture runs: paged as the capture's own arrays.
                bytes: crate::hugepages::with_capacity_if(
                    edges * 3,
                    crate::hugepages::wanted_for_capture(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Number of edges pushed so far.
    pub fn len(&self) -> usize {
        match &self.encoded {
            Some(e) => e.edges,
            None => self.names.kinds.len(),
        }
    }

    /// Where the builder is now (to go back to with [`EdgeNamesBuilder::truncate`]).
    pub fn mark(&self) -> Mark {
        Mark {
            edges: self.len(),
            bytes: self.encoded.as_ref().map_or(0, |e| e.bytes.len()),
        }
    }

    /// Forget the edges pushed since `mark` (their texts stay interned).
    pub fn truncate(&mut self, mark: Mark) {
        match &mut self.encoded {
            Some(e) => {
                e.bytes.truncate(mark.bytes);
                e.edges = mark.edges;
            }
            None => {
                self.names.kinds.truncate(mark.edges);
                self.names.values.truncate(mark.edges);
            }
        }
    }

    /// An interned text by id.
    pub fn text(&self, i: u32) -> &str {
        self.names.text(i)
    }

    /// True when no edge was pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Name the next edge (or leave it unnamed).
    pub fn push(&mut self, name: Option<EdgeName<'_>>) {
        match name {
            None => self.push_raw(0, 0),
            Some(n) => {
                let v = match n {
                    EdgeName::Index(i) => i,
                    EdgeName::SetMember => 0,
                    other => self.intern(other.text()),
                };
                self.push_raw(n.kind() as u8, v);
            }
        }
    }

    /// Push an already interned name: `kind` (0 = unnamed) and its value.
    #[inline]
    pub fn push_raw(&mut self, kind: u8, value: u32) {
        match &mut self.encoded {
            Some(e) => {
                e.edges += 1;
                if kind == 0 {
                    e.bytes.push(0);
                    return;
                }
                e.named = true;
                // The kind and the value's varint, written at once. Most values (text ids of
                // common names, small indices) take one byte; otherwise the bytes are put
                // together in a register and all eight written (a copy of a constant size,
                // inlined: one of a variable size was a call to `memmove` per edge, a tenth of
                // the pass; one from a buffer on the stack stalled on reading it back), then
                // cut to the varint's end.
                if value < 0x80 {
                    e.bytes.extend_from_slice(&[kind, value as u8]);
                    return;
                }
                let mut word = kind as u64;
                let mut n = 1;
                let mut v = value;
                while v >= 0x80 {
                    word |= (((v & 0x7f) | 0x80) as u64) << (8 * n);
                    v >>= 7;
                    n += 1;
                }
                word |= (v as u64) << (8 * n);
                let end = e.bytes.len() + n + 1;
                e.bytes.extend_from_slice(&word.to_le_bytes());
                e.bytes.truncate(end);
            }
            None => {
                self.names.kinds.push(kind);
                self.names.values.push(value);
            }
        }
    }

    /// Is this builder writing the file's encoding ([`EdgeNamesBuilder::encoding`])? Only such
    /// a builder takes [`EdgeNamesBuilder::push_int_key`].
    pub fn is_encoding(&self) -> bool {
        self.encoded.is_some()
    }

    /// Push a dict key that is an int, as the file codes it without a text: `object` for the
    /// edge to the key object itself ([`EdgeKind::DictKeyObject`]), else to the value
    /// ([`EdgeKind::DictKey`]). The loader gives it the key's decimal text (a cache keyed by
    /// a million ids or counters would otherwise intern a million texts as it is captured).
    /// Only for an encoding builder.
    pub fn push_int_key(&mut self, object: bool, value: i64) {
        let e = self
            .encoded
            .as_mut()
            .expect("int keys are pushed to an encoding builder only");
        e.edges += 1;
        e.named = true;
        e.bytes.push(if object {
            FILE_INT_KEY_OBJECT
        } else {
            FILE_INT_KEY
        });
        let mut v = ((value << 1) ^ (value >> 63)) as u64;
        while v >= 0x80 {
            e.bytes.push((v as u8) | 0x80);
            v >>= 7;
        }
        e.bytes.push(v as u8);
    }

    /// What was built: [`EdgeNamesBuilder::finish`]'s names, or the encoded edges of a builder
    /// made by [`EdgeNamesBuilder::encoding`].
    pub fn build(mut self) -> BuiltNames {
        match self.encoded.take() {
            None => BuiltNames::Names(self.finish()),
            Some(e) if !e.named => BuiltNames::Encoded(None),
            Some(mut e) => {
                e.bytes.shrink_to_fit();
                let mut texts = self.names;
                texts.text.shrink_to_fit();
                texts.ends.shrink_to_fit();
                BuiltNames::Encoded(Some(EncodedNames {
                    texts,
                    edges: e.edges,
                    bytes: e.bytes,
                }))
            }
        }
    }

    /// The names; when no edge has a name, the empty (unnamed) set. Not for a builder made by
    /// [`EdgeNamesBuilder::encoding`] (see [`EdgeNamesBuilder::build`]).
    pub fn finish(self) -> EdgeNames {
        debug_assert!(
            self.encoded.is_none(),
            "an encoding builder is built, not finished"
        );
        let mut n = self.names;
        if n.kinds.iter().all(|&k| k == 0) {
            return EdgeNames::default();
        }
        n.kinds.shrink_to_fit();
        n.values.shrink_to_fit();
        n.text.shrink_to_fit();
        n.ends.shrink_to_fit();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An encoding builder keeps what a plain one keeps, going back to a mark alike, and says
    /// when nothing is named.
    #[test]
    fn an_encoding_builder_keeps_the_same_names() {
        let mut plain = EdgeNamesBuilder::with_capacity(8);
        let mut enc = EdgeNamesBuilder::encoding(8);
        for b in [&mut plain, &mut enc] {
            b.push(Some(EdgeName::Attr("cfg")));
            let m = b.mark();
            b.push(Some(EdgeName::Index(300)));
            b.push(None);
            b.truncate(m);
            assert_eq!(b.len(), 1);
            b.push(Some(EdgeName::Index(70_000)));
            b.push(None);
            b.push(Some(EdgeName::DictKey("k")));
            // Varints of four and five bytes.
            b.push(Some(EdgeName::Index(1 << 21)));
            b.push(Some(EdgeName::Index(u32::MAX)));
        }
        let BuiltNames::Encoded(Some(e)) = enc.build() else {
            panic!("named edges")
        };
        let plain = plain.finish();
        assert_eq!(e.edges, 6);
        assert_eq!(e.texts.texts().collect::<Vec<_>>(), ["cfg", "k"]);
        // kind, varint value; unnamed: the kind byte alone.
        let (kinds, values) = plain.raw_parts();
        let mut expected = Vec::new();
        for (&k, &v) in kinds.iter().zip(values) {
            expected.push(k);
            if k != 0 {
                let mut v = v;
                while v >= 0x80 {
                    expected.push(v as u8 | 0x80);
                    v >>= 7;
                }
                expected.push(v as u8);
            }
        }
        assert_eq!(e.bytes, expected);
        let mut none = EdgeNamesBuilder::encoding(2);
        none.push(None);
        assert!(matches!(none.build(), BuiltNames::Encoded(None)));
    }

    #[test]
    fn texts_with_the_same_hash_stay_apart() {
        use std::hash::BuildHasher;
        let mut b = EdgeNamesBuilder::default();
        let a = b.intern("a");
        // Make "b" and "c" hash to what "a" does.
        for t in ["b", "c"] {
            let h = rustc_hash::FxBuildHasher.hash_one(t);
            b.by_hash.insert(h, a);
        }
        let (x, y) = (b.intern("b"), b.intern("c"));
        assert_eq!((a, x, y), (0, 1, 2));
        assert_eq!((b.intern("a"), b.intern("b"), b.intern("c")), (0, 1, 2));
        assert_eq!(b.intern("d"), 3);
        assert_eq!(b.names.text(1), "b");
        assert_eq!(b.names.text(2), "c");
        assert_eq!(b.names.text_count(), 4);
    }

    #[test]
    fn names_round_trip_through_the_builder_and_parts() {
        let mut b = EdgeNamesBuilder::with_capacity(6);
        b.push(Some(EdgeName::Attr("_listeners")));
        b.push(None);
        b.push(Some(EdgeName::Index(2917)));
        b.push(Some(EdgeName::Attr("_listeners")));
        b.push(Some(EdgeName::DictKey("'k'")));
        b.push(Some(EdgeName::SetMember));
        let n = b.finish();
        assert_eq!(n.len(), 6);
        assert_eq!(n.text_count(), 2, "texts are interned");
        assert_eq!(n.get(0), Some(EdgeName::Attr("_listeners")));
        assert_eq!(n.get(1), None);
        assert_eq!(n.get(2), Some(EdgeName::Index(2917)));
        assert_eq!(n.get(3), Some(EdgeName::Attr("_listeners")));
        assert_eq!(n.get(4), Some(EdgeName::DictKey("'k'")));
        assert_eq!(n.get(5), Some(EdgeName::SetMember));
        assert_eq!(n.get(6), None);
        assert_eq!(n.named_count(), 5);
        let (k, v) = n.raw_parts();
        let texts: Vec<String> = n.texts().map(String::from).collect();
        let again = EdgeNames::from_parts(k.to_vec(), v.to_vec(), texts, 6).unwrap();
        assert_eq!(again, n);
    }

    #[test]
    fn no_names_is_empty() {
        let mut b = EdgeNamesBuilder::with_capacity(3);
        for _ in 0..3 {
            b.push(None);
        }
        let n = b.finish();
        assert!(n.is_empty());
        assert_eq!(n.get(0), None);
        assert!(n.validate(3).is_ok());
    }

    #[test]
    fn bad_parts_are_refused() {
        assert!(EdgeNames::from_parts(vec![1], vec![0], vec![], 1).is_err());
        assert!(EdgeNames::from_parts(vec![9], vec![0], vec![], 1).is_err());
        assert!(EdgeNames::from_parts(vec![1, 0], vec![0], vec!["a".into()], 2).is_err());
        assert!(EdgeNames::from_parts(vec![1], vec![0], vec!["a".into()], 2).is_err());
        assert!(EdgeNames::from_parts(vec![4], vec![u32::MAX], vec![], 1).is_ok());
    }

    #[test]
    fn suffixes_and_labels() {
        assert_eq!(EdgeName::Attr("x").suffix(0).as_deref(), Some(".x"));
        assert_eq!(EdgeName::Attr("not an id").suffix(0), None);
        assert_eq!(EdgeName::DictKey("'k'").suffix(0).as_deref(), Some("['k']"));
        assert_eq!(
            EdgeName::DictKey("(1, 'a')").suffix(0).as_deref(),
            Some("[(1, 'a')]")
        );
        assert_eq!(EdgeName::DictKey("<Session>").suffix(0), None);
        assert_eq!(EdgeName::Index(3).suffix(7).as_deref(), Some("[3]"));
        assert_eq!(
            EdgeName::Cell("x").suffix(1).as_deref(),
            Some(".cell_contents")
        );
        assert_eq!(
            EdgeName::Local("req").suffix(0).as_deref(),
            Some(".f_locals['req']")
        );
        assert_eq!(EdgeName::SetMember.suffix(0), None);
        assert_eq!(EdgeName::DictKeyObject("3").label(), "key 3");
        assert_eq!(EdgeName::Cell("x").label(), "closure x");
        assert_eq!(EdgeName::Index(2).to_string(), "[2]");
        assert!(is_identifier("_a1") && is_identifier("café"));
        assert!(!is_identifier("1a") && !is_identifier("a-b") && !is_identifier(""));
    }
}
