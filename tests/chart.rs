//! The Helm chart, checked without a cluster: rendered and linted with every values file in
//! `helm/sinergi/ci/` (by Helm's own Go library, through PyPI's `helm-python-sdk`), each manifest
//! validated strictly against the Kubernetes API schemas (`kubernetes-validate`), each
//! rendered configuration accepted by `sinergi config`; every values file in
//! `helm/tests/invalid/` refused by the chart's schema. The Python packages are installed in a
//! virtual environment under `target/` on first run.

mod common;

use std::{path::Path, process::Command};

use common::python::{python, run};

const PACKAGES: [&str; 2] = ["helm-python-sdk==0.2.2", "kubernetes-validate==1.37.0"];

#[test]
fn the_helm_chart_renders_validates_and_refuses_bad_values() {
    let python = python("chart-venv", &PACKAGES);
    let checked = run(Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/tests/check_chart.py"))
        .arg(env!("CARGO_BIN_EXE_sinergi")));
    println!("{checked}");
}
