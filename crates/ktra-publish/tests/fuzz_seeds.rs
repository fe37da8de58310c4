//! The committed seed corpus (`fuzz/corpus/`) is what the generator writes today, and every
//! seed still gets the verdict it was made for (the generator asserts that while writing).

use std::collections::BTreeMap;
use std::path::Path;

#[expect(dead_code, reason = "the example's main is not called from the test")]
#[path = "../examples/fuzz_seeds.rs"]
mod fuzz_seeds;

fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

#[test]
fn committed_corpus_is_up_to_date() {
    let generated = tempfile::tempdir().unwrap();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for dir in fuzz_seeds::write_corpus(generated.path()) {
        let target = dir.file_name().unwrap();
        let expected = read_dir(&dir);
        let found = read_dir(&committed.join(target));
        let expected_names: Vec<&String> = expected.keys().collect();
        let found_names: Vec<&String> = found.keys().collect();
        assert_eq!(
            found_names,
            expected_names,
            "fuzz/corpus/{} differs from the generator: run `make fuzz-seeds`",
            target.display()
        );
        for (name, bytes) in &expected {
            assert!(
                found[name] == *bytes,
                "fuzz/corpus/{}/{name} is stale: run `make fuzz-seeds`",
                target.display()
            );
        }
    }
}
