//! Columns of a loaded snapshot that stay compressed until a query reads them.
//!
//! A snapshot file's addresses, sizes, lengths, labels and edge names are big once decoded (8,
//! 8 and 4 bytes per node, about 50 bytes per label and 5 bytes per reference: at 30 million
//! objects, well over a gigabyte together) and many queries never read them (statistics by
//! type read only the sizes; the dominator tree reads none). [`Lazy`] keeps such a section as
//! the file stored it (its compressed chunks, checksums already verified by the loader) and
//! decodes it, in parallel, the first time it is dereferenced. A capture packs its addresses,
//! sizes, lengths, labels and edge names the same way on its second thread (`snapshot::file::pack`),
//! and saving writes a packed column's chunks as they are.
//!
//! A section whose contents turn out to be malformed when decoded (the checksums matched, so
//! the file was written that way on purpose) decodes to its empty value (no labels, no names,
//! no lengths, zero sizes), and the reason is kept ([`Lazy::problem`]): the snapshot then reads
//! as one taken without that section.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

/// A section as stored in the file: its chunks (codec 0 stored, 1 deflate) with their raw
/// lengths, and how to decode the joined raw bytes.
#[derive(Clone)]
pub struct Packed<T> {
    /// `(codec, stored bytes, raw length)` per chunk, in order.
    pub chunks: Vec<(u32, Vec<u8>, usize)>,
    /// Passed to `decode` (a node or edge count).
    pub arg: usize,
    /// Decodes the raw bytes of the whole section.
    pub decode: fn(&[u8], usize) -> Result<T, String>,
    /// What the section reads as when it cannot be decoded (given `arg`).
    pub empty: fn(usize) -> T,
    /// The section's name, for messages.
    pub what: &'static str,
}

impl<T> Packed<T> {
    /// Inflate the chunks (in parallel, each straight into its part of one buffer) and decode.
    fn open(&self) -> Result<T, String> {
        use rayon::prelude::*;
        let total: usize = self.chunks.iter().map(|c| c.2).sum();
        // The loader checked each raw length against its stored length and deflate's ratio.
        let mut raw = crate::hugepages::try_zeroed_bytes(total)
            .ok_or_else(|| format!("{}: {total} bytes cannot be had", self.what))?;
        let mut jobs = Vec::with_capacity(self.chunks.len());
        let mut rest = &mut raw[..];
        for chunk in &self.chunks {
            let (part, tail) = rest.split_at_mut(chunk.2);
            rest = tail;
            jobs.push((chunk, part));
        }
        let what = self.what;
        crate::threads::run(|| {
            jobs.into_par_iter()
                .try_for_each(|((codec, data, _), part)| {
                    if unpack(*codec, data, part) {
                        Ok(())
                    } else {
                        Err(format!("{what} does not inflate"))
                    }
                })
        })?;
        (self.decode)(&raw, self.arg)
    }
}

/// Fill `part` with a chunk's raw bytes (codec 0 stored, 1 deflate); false unless they are
/// exactly `part.len()` bytes.
pub(crate) fn unpack(codec: u32, data: &[u8], part: &mut [u8]) -> bool {
    if codec == 0 {
        if data.len() != part.len() {
            return false;
        }
        part.copy_from_slice(data);
        return true;
    }
    // Inflated by zlib-rs (through flate2): a quarter less time than miniz_oxide on a
    // snapshot's chunks, which are still deflated by miniz_oxide (faster there, and smaller).
    let mut inflater = flate2::Decompress::new(false);
    let done = inflater.decompress(data, part, flate2::FlushDecompress::Finish);
    matches!(done, Ok(flate2::Status::StreamEnd)) && inflater.total_out() == part.len() as u64
}

/// A value that is either here or decoded from its [`Packed`] form on first use.
pub struct Lazy<T> {
    value: OnceLock<T>,
    packed: Option<Packed<T>>,
    problem: OnceLock<String>,
}

impl<T> Lazy<T> {
    /// A value to decode on first use.
    pub fn packed(p: Packed<T>) -> Self {
        Lazy {
            value: OnceLock::new(),
            packed: Some(p),
            problem: OnceLock::new(),
        }
    }

    /// The packed form (as the file stores it), if the value came packed and was not changed
    /// since: a decoded value is kept beside it, never instead of it.
    pub fn packed_form(&self) -> Option<&Packed<T>> {
        self.packed.as_ref()
    }

    /// The value if it is decoded already (or was never packed), without decoding it.
    pub fn peek(&self) -> Option<&T> {
        self.value.get()
    }

    /// Why the packed section could not be decoded (it then reads as empty), if it could not.
    pub fn problem(&self) -> Option<&str> {
        self.value.get()?;
        self.problem.get().map(String::as_str)
    }
}

impl<T: Default> Lazy<T> {
    /// The value, decoded now if it is not yet.
    ///
    /// Decoded outside the cell's initialiser, in parallel on the pool of [`crate::threads`]:
    /// no thread waits inside a `OnceLock` for work that could itself be waiting for the same
    /// cell (a rayon worker blocked in a join steals other tasks, which may read this column).
    /// Two threads that ask at once may both decode; the first value stored is kept.
    pub fn decoded(&self) -> &T {
        if let Some(v) = self.value.get() {
            return v;
        }
        let v = match &self.packed {
            None => T::default(),
            Some(p) => p.open().unwrap_or_else(|e| {
                let _ = self.problem.set(e);
                (p.empty)(p.arg)
            }),
        };
        let _ = self.value.set(v);
        self.value.get().expect("stored just above")
    }
}

impl<T> From<T> for Lazy<T> {
    fn from(v: T) -> Self {
        Lazy {
            value: OnceLock::from(v),
            packed: None,
            problem: OnceLock::new(),
        }
    }
}

impl<T: FromIterator<A>, A> FromIterator<A> for Lazy<T> {
    fn from_iter<I: IntoIterator<Item = A>>(iter: I) -> Self {
        T::from_iter(iter).into()
    }
}

impl<T: Default> Default for Lazy<T> {
    fn default() -> Self {
        T::default().into()
    }
}

impl<T: Default> Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.decoded()
    }
}

impl<T: Default> DerefMut for Lazy<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.decoded();
        self.packed = None;
        self.value.get_mut().expect("decoded just above")
    }
}

impl<T: Default + Clone> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        match (self.value.get(), &self.packed) {
            (None, Some(p)) => Lazy::packed(p.clone()),
            _ => {
                let c: Lazy<T> = self.decoded().clone().into();
                if let Some(e) = self.problem.get() {
                    let _ = c.problem.set(e.clone());
                }
                c
            }
        }
    }
}

impl<T: Default + PartialEq> PartialEq for Lazy<T> {
    fn eq(&self, other: &Self) -> bool {
        self.decoded() == other.decoded()
    }
}

impl<T: fmt::Debug> fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value.get() {
            Some(v) => v.fmt(f),
            None => write!(f, "<not decoded yet>"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_chunk_inflates_only_to_its_exact_length() {
        let raw: Vec<u8> = (0..100_000u32)
            .map(|i| ((i % 251) ^ (i / 7)) as u8)
            .collect();
        let packed = miniz_oxide::deflate::compress_to_vec(&raw, 1);
        let mut part = vec![0; raw.len()];
        assert!(super::unpack(1, &packed, &mut part) && part == raw);
        assert!(!super::unpack(1, &packed, &mut vec![0; raw.len() - 1]));
        assert!(!super::unpack(1, &packed, &mut vec![0; raw.len() + 1]));
        assert!(!super::unpack(1, &packed[..packed.len() / 2], &mut part));
        let mut bad = packed.clone();
        bad[0] |= 0x06; // block type 3: reserved
        assert!(!super::unpack(1, &bad, &mut part));
        assert!(super::unpack(0, &raw, &mut part) && !super::unpack(0, &raw[1..], &mut part));
    }

    use super::*;

    fn count_bytes(raw: &[u8], arg: usize) -> Result<Vec<u8>, String> {
        if raw.len() != arg {
            return Err(format!("{} bytes, expected {arg}", raw.len()));
        }
        Ok(raw.to_vec())
    }

    fn packed(raw: &[u8], arg: usize) -> Packed<Vec<u8>> {
        let (a, b) = raw.split_at(raw.len() / 2);
        Packed {
            chunks: vec![
                (1, miniz_oxide::deflate::compress_to_vec(a, 1), a.len()),
                (0, b.to_vec(), b.len()),
            ],
            arg,
            decode: count_bytes,
            empty: |_| Vec::new(),
            what: "test section",
        }
    }

    #[test]
    fn decodes_once_on_first_use() {
        let raw: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        let l = Lazy::packed(packed(&raw, raw.len()));
        assert!(l.peek().is_none());
        assert_eq!(format!("{l:?}"), "<not decoded yet>");
        let c = l.clone();
        assert_eq!(*l, raw);
        assert!(l.peek().is_some());
        assert!(l.problem().is_none());
        assert!(c.peek().is_none(), "a clone of a packed value stays packed");
        assert_eq!(c, l);
    }

    #[test]
    fn a_section_that_does_not_decode_reads_empty_with_its_reason() {
        let raw = vec![1u8; 100];
        let l = Lazy::packed(packed(&raw, 99));
        assert!(l.problem().is_none(), "not known before decoding");
        assert!(l.is_empty());
        assert_eq!(l.problem(), Some("100 bytes, expected 99"));
        let mut bad = packed(&raw, 100);
        bad.chunks[0].1.truncate(3);
        let l = Lazy::packed(bad);
        assert!(l.is_empty());
        assert_eq!(l.problem(), Some("test section does not inflate"));
    }

    /// Many rayon tasks reading a packed value at once: no deadlock, one value for all.
    #[test]
    fn first_use_from_parallel_tasks() {
        use rayon::prelude::*;
        let raw: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for threads in [1, 2, 4] {
            let l = Lazy::packed(packed(&raw, raw.len()));
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let firsts: Vec<usize> = pool.install(|| {
                (0..64)
                    .into_par_iter()
                    .map(|_| {
                        assert_eq!(l.len(), raw.len());
                        l.decoded() as *const Vec<u8> as usize
                    })
                    .collect()
            });
            assert!(firsts.iter().all(|&p| p == firsts[0]), "one value kept");
            assert_eq!(*l, raw);
        }
    }

    #[test]
    fn mutation_decodes_first() {
        let raw = vec![3u8; 10];
        let mut l = Lazy::packed(packed(&raw, 10));
        l.push(4);
        assert_eq!(l.len(), 11);
        let plain: Lazy<Vec<u8>> = vec![1, 2].into();
        assert_eq!(plain.peek(), Some(&vec![1, 2]));
    }
}
