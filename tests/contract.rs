//! The contract, checked with the tool API reviewers use: `buf lint` (PyPI's `buf-bin`, in a
//! virtual environment under `target/`) passes over `proto/` with the rules of
//! `proto/buf.yaml`, and refuses a contract that breaks one of them; and the OpenAPI document
//! generated from it is valid OpenAPI 3.1 (`openapi-spec-validator`), a broken one refused.

mod common;

use std::path::Path;
use std::process::Command;

use common::python::{python, run};

const PACKAGES: [&str; 1] = ["buf-bin==1.75.0"];

fn buf() -> std::path::PathBuf {
    python("contract-venv", &PACKAGES).with_file_name("buf")
}

const OPENAPI_PACKAGES: [&str; 1] = ["openapi-spec-validator==0.7.1"];

fn openapi_validator() -> std::path::PathBuf {
    python("openapi-venv", &OPENAPI_PACKAGES).with_file_name("openapi-spec-validator")
}

fn openapi_document() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
}

#[test]
fn the_openapi_document_is_valid_openapi_3_1() {
    run(Command::new(openapi_validator()).arg(openapi_document()));
}

#[test]
fn the_openapi_validator_refuses_a_broken_document() {
    let text = std::fs::read_to_string(openapi_document()).expect("docs/openapi.json");
    let mut document: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    // A parameter in the body, as OpenAPI 2 had them and 3.1 does not.
    document["paths"]["/v1/coverage"]["get"]["parameters"][0]["in"] = "body".into();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let broken = scratch.path().join("openapi.json");
    std::fs::write(&broken, document.to_string()).expect("the broken copy");
    let output = Command::new(openapi_validator())
        .arg(&broken)
        .output()
        .expect("the validator runs");
    assert!(!output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("'body' is not one of"), "{said}");
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
