//! What a snapshot keeps of the process's strings.
//!
//! A heap holds passwords, API keys and tokens as plain `str` objects; a snapshot file is
//! copied to laptops and attached to bug reports. So by default ([`StringPolicy::Names`]) a
//! snapshot keeps the text only of strings that are *names* (used as a dict key or by code as
//! a name, and shaped like an identifier, see [`is_name_like`]); of every other string it keeps
//! the length and a [`Fingerprinter`] fingerprint: a keyed hash whose key is random per process
//! and never written anywhere, so equal strings can be grouped (within a snapshot and across
//! snapshots of the same process) but the text cannot be recovered, not even by trying every
//! short password.

/// Which string contents a snapshot keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StringPolicy {
    /// The first characters of every string (files written before the policies existed).
    #[default]
    All,
    /// Names in full; other strings as length and fingerprint.
    Names,
    /// No string content: strings are counted and sized only.
    None,
}

impl StringPolicy {
    /// The name users write: `"all"`, `"names"` or `"none"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StringPolicy::All => "all",
            StringPolicy::Names => "names",
            StringPolicy::None => "none",
        }
    }

    /// The policy of a user's word, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(StringPolicy::All),
            "names" => Some(StringPolicy::Names),
            "none" => Some(StringPolicy::None),
            _ => None,
        }
    }

    pub(crate) fn code(self) -> u64 {
        match self {
            StringPolicy::All => 0,
            StringPolicy::Names => 1,
            StringPolicy::None => 2,
        }
    }

    pub(crate) fn from_code(c: u64) -> Option<Self> {
        match c {
            0 => Some(StringPolicy::All),
            1 => Some(StringPolicy::Names),
            2 => Some(StringPolicy::None),
            _ => None,
        }
    }
}

/// Longest name kept in full, in bytes.
pub const MAX_NAME: usize = 64;

/// Bits of a fingerprint: enough that distinct strings of a million-string heap almost never
/// share one, few enough to be obviously not the text.
pub const FINGERPRINT_BITS: u32 = 48;

/// Does `s` look like a name: an ASCII identifier (`_private`, `Session`, `__init__`) or a
/// dotted path of them (`os.path`), at most [`MAX_NAME`] bytes, and not like a token?
///
/// Machine-made secrets are often identifier-shaped (`sk_live_4eC39HqLyjWDarjtT1zdp7dc`,
/// `ghp_…`), so a part (between `_` or `.`) of 8 or more characters with two or more digits,
/// or of more than 32 characters, is taken for a token, not a name.
pub fn is_name_like(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_NAME || !s.is_ascii() {
        return false;
    }
    for ident in s.split('.') {
        let b = ident.as_bytes();
        match b.first() {
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
            _ => return false,
        }
        if !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            return false;
        }
        for part in ident.split('_') {
            let digits = part.bytes().filter(u8::is_ascii_digit).count();
            if part.len() > 32 || (part.len() >= 8 && digits >= 2) {
                return false;
            }
        }
    }
    true
}

/// A keyed hash of string contents (SipHash-2-4 with a random 128-bit key, truncated to
/// [`FINGERPRINT_BITS`]). Without the key a fingerprint says nothing about the text; the key
/// lives only in the memory of the process that took the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprinter {
    k0: u64,
    k1: u64,
}

impl Fingerprinter {
    /// A fingerprinter from 16 random bytes.
    pub fn new(key: [u8; 16]) -> Self {
        Fingerprinter {
            k0: u64::from_le_bytes(key[..8].try_into().expect("8 bytes")),
            k1: u64::from_le_bytes(key[8..].try_into().expect("8 bytes")),
        }
    }

    #[allow(deprecated)]
    fn hasher(&self, domain: u8) -> std::hash::SipHasher {
        use std::hash::Hasher;
        // SipHash-2-4 is a keyed pseudo-random function; std keeps it (deprecated only in
        // favour of its unkeyed DefaultHasher).
        let mut h = std::hash::SipHasher::new_with_keys(self.k0, self.k1);
        h.write_u8(domain);
        h
    }

    fn hash(&self, domain: u8, bytes: &[u8]) -> u64 {
        use std::hash::Hasher;
        let mut h = self.hasher(domain);
        h.write(bytes);
        h.finish()
    }

    /// The fingerprint of a string's UTF-8 bytes.
    pub fn fingerprint(&self, bytes: &[u8]) -> u64 {
        self.hash(1, bytes) >> (64 - FINGERPRINT_BITS)
    }

    /// A fingerprint computed piece by piece (for long strings): equal to
    /// [`Fingerprinter::fingerprint`] of the concatenated pieces.
    pub fn start(&self) -> FingerprintState {
        FingerprintState(self.hasher(1))
    }

    /// An identifier of the key, written with the snapshot: two snapshots whose fingerprints
    /// can be compared (same process) have the same one. Reveals nothing about the key.
    pub fn key_id(&self) -> u64 {
        self.hash(0, b"refgraph key id") >> 16
    }
}

/// A fingerprint being computed: feed it bytes with [`FingerprintState::update`].
#[allow(deprecated)]
pub struct FingerprintState(std::hash::SipHasher);

impl FingerprintState {
    /// Hash more bytes of the string.
    pub fn update(&mut self, bytes: &[u8]) {
        std::hash::Hasher::write(&mut self.0, bytes);
    }

    /// The fingerprint of everything hashed.
    pub fn finish(self) -> u64 {
        std::hash::Hasher::finish(&self.0) >> (64 - FINGERPRINT_BITS)
    }
}

/// A fingerprint as printed: `#` and 12 hex digits, never quoted like text.
pub fn format_fingerprint(f: u64) -> String {
    format!("#{f:012x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_not_names() {
        for s in [
            "cfg",
            "_listeners",
            "__init__",
            "Session",
            "os.path",
            "collections.abc",
            "sha256",
            "x86_64",
            "iso8859_15",
            "HTTPBasicAuthHandler",
        ] {
            assert!(is_name_like(s), "{s}");
        }
        for s in [
            "",
            "hunter2-password-xyz",
            "API_KEY=sk-live-0123",
            "Bearer abc",
            "postgres://u:p@h/db",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "3f2a9c",
            "a3f9c2d4e5b6a7c8",
            "naïve",
            "a..b",
            ".a",
            &"x".repeat(65),
        ] {
            assert!(!is_name_like(s), "{s}");
        }
    }

    #[test]
    fn fingerprints_group_equal_strings_and_depend_on_the_key() {
        let a = Fingerprinter::new([7; 16]);
        let b = Fingerprinter::new([8; 16]);
        assert_eq!(a.fingerprint(b"hunter2"), a.fingerprint(b"hunter2"));
        assert_ne!(a.fingerprint(b"hunter2"), a.fingerprint(b"hunter3"));
        assert_ne!(a.fingerprint(b"hunter2"), b.fingerprint(b"hunter2"));
        assert!(a.fingerprint(b"x") < 1 << FINGERPRINT_BITS);
        assert_ne!(a.key_id(), b.key_id());
        let mut st = a.start();
        st.update(b"hun");
        st.update(b"ter2");
        assert_eq!(st.finish(), a.fingerprint(b"hunter2"));
        assert_eq!(format_fingerprint(0xa1b2c3), "#000000a1b2c3");
        for p in [StringPolicy::All, StringPolicy::Names, StringPolicy::None] {
            assert_eq!(StringPolicy::parse(p.as_str()), Some(p));
            assert_eq!(StringPolicy::from_code(p.code()), Some(p));
        }
    }
}
