//! The Helm chart, checked without a cluster: rendered and linted with every values file in
//! `helm/sinergi/ci/` (by Helm's own Go library, through PyPI's `helm-python-sdk`), each manifest
//! validated strictly against the Kubernetes API schemas (`kubernetes-validate`), each
//! rendered configuration accepted by `sinergi config`; every values file in
//! `helm/tests/invalid/` refused by the chart's schema. The Python packages are installed in a
//! virtual environment under `target/` on first run.

use std::{path::Path, process::Command};

const PACKAGES: [&str; 2] = ["helm-python-sdk==0.2.2", "kubernetes-validate==1.37.0"];

fn run(command: &mut Command) -> std::process::Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn the_helm_chart_renders_validates_and_refuses_bad_values() {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chart-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    }
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PACKAGES));
    let checked = run(Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/tests/check_chart.py"))
        .arg(env!("CARGO_BIN_EXE_sinergi")));
    println!("{}", String::from_utf8_lossy(&checked.stdout));
}
