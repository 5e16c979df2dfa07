//! Fuzz the snapshot loader: any bytes must give a snapshot or an error, never a panic, a hang
//! or a huge allocation. Under `cfg(fuzzing)` the loader skips its checksums so that mutated
//! inputs reach the section parsers. What loads is analysed and written back, and must load
//! again to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refgraph_core::snapshot::{analysis, file};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = file::from_bytes(data) {
        let a = analysis::analyse(&s, &mut |_, _| {});
        assert_eq!(a.retained.len(), s.len());
        let _ = analysis::type_stats(&s, Some(&a));
        let again = file::from_bytes(&file::to_bytes(&s)).expect("a saved snapshot loads");
        assert_eq!(again.len(), s.len());
        assert_eq!(again.sizes, s.sizes);
    }
});
