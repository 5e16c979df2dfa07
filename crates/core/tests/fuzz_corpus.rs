//! Replay the fuzzer's corpus on stable Rust: every input must load or fail cleanly, and what
//! loads must analyse and round-trip.

use refgraph_core::snapshot::{analysis, file};

#[test]
fn every_corpus_input_loads_or_fails_cleanly() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/load");
    let mut seen = 0;
    let mut loaded = 0;
    for entry in std::fs::read_dir(dir).expect("the corpus folder") {
        let path = entry.expect("a corpus entry").path();
        let data = std::fs::read(&path).expect("a corpus file");
        seen += 1;
        if let Ok(s) = file::from_bytes(&data) {
            loaded += 1;
            let a = analysis::analyse(&s, &mut |_, _| {});
            assert_eq!(a.retained.len(), s.len());
            let again = file::from_bytes(&file::to_bytes(&s)).expect("round trip");
            assert_eq!(again.sizes, s.sizes, "{}", path.display());
        }
    }
    assert!(seen >= 5, "the corpus has the seeds at least");
    assert!(loaded >= 5, "the seeds load");
}
