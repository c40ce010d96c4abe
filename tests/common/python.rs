//! Python with packages from PyPI, for tests that check Sinergi against the tools agencies use
//! (`cryptography`, PyJWT, grpcio on its default limits). Each test binary keeps its own
//! virtual environment under `target/`, created on first use; tests of one binary take turns
//! installing into it.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

static INSTALLING: Mutex<()> = Mutex::new(());

/// The interpreter of the virtual environment `name`, with `packages` installed.
pub fn python(name: &str, packages: &[&str]) -> PathBuf {
    let _turn = INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
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
        .args(packages));
    python
}

/// Runs `command` to success and returns its standard output.
pub fn run(command: &mut Command) -> String {
    let output = command.output();
    stdout_of(command, output)
}

/// Like [`run`], awaited, for a child that calls a server running on the test's own runtime.
pub async fn run_awaited(command: &mut tokio::process::Command) -> String {
    let output = command.output().await;
    stdout_of(command, output)
}

fn stdout_of(
    command: &dyn std::fmt::Debug,
    output: std::io::Result<std::process::Output>,
) -> String {
    let output = output.unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}
