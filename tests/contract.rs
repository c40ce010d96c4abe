//! The contract, checked with the tool API reviewers use: `buf lint` (PyPI's `buf-bin`, in a
//! virtual environment under `target/`) passes over `proto/` with the rules of
//! `proto/buf.yaml`, and refuses a contract that breaks one of them.

mod common;

use std::path::Path;
use std::process::Command;

use common::python::{python, run};

const PACKAGES: [&str; 1] = ["buf-bin==1.75.0"];

fn buf() -> std::path::PathBuf {
    python("contract-venv", &PACKAGES).with_file_name("buf")
}

fn contract() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/proto"))
}

#[test]
fn the_contract_passes_buf_lint() {
    run(Command::new(buf()).arg("lint").current_dir(contract()));
}

#[test]
fn buf_lint_refuses_what_breaks_its_rules() {
    let scratch = tempfile::tempdir().expect("a scratch copy of the contract");
    copy_tree(contract(), scratch.path());
    let common = scratch.path().join("sinergi/v1/common.proto");
    let mut text = std::fs::read_to_string(&common).expect("common.proto");
    // An enum whose zero value is not `…_UNSPECIFIED`, as STANDARD forbids.
    text.push_str("\nenum Colour {\n  RED = 0;\n}\n");
    std::fs::write(&common, text).expect("the broken copy");
    let output = Command::new(buf())
        .arg("lint")
        .current_dir(scratch.path())
        .output()
        .expect("buf runs");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("common.proto"), "{said}");
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("a directory") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            std::fs::create_dir_all(&target).expect("a directory");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copy");
        }
    }
}
