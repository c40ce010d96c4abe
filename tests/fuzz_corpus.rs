//! The fuzz targets' properties (`fuzz/src/lib.rs`) over the committed corpus and every crash
//! input found so far, on the stable toolchain: a fixed crash that comes back fails here, on
//! every machine, whether or not a nightly toolchain runs libFuzzer (`fuzz/run.sh`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

#[path = "../fuzz/src/lib.rs"]
mod targets;

#[test]
fn every_committed_fuzz_input_keeps_its_target_s_properties() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failures = Vec::new();
    for (name, target) in targets::TARGETS {
        let mut replayed = 0;
        for kind in ["corpus", "artifacts"] {
            let Ok(inputs) = std::fs::read_dir(fuzz.join(kind).join(name)) else {
                continue;
            };
            for input in inputs {
                let path = input.expect("a directory entry").path();
                let data = std::fs::read(&path).expect("a committed input");
                if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                    failures.push(path.display().to_string());
                }
                replayed += 1;
            }
        }
        assert!(
            replayed > 0,
            "no committed inputs for the fuzz target {name}"
        );
    }
    assert!(failures.is_empty(), "properties broken by {failures:#?}");
}
