//! Compiles the data contract in `proto/` with protox (pure Rust, so no system `protoc` is needed)
//! and writes the encoded descriptor set that server reflection publishes.

use std::{env, fs, io, path::PathBuf};

use prost::Message;

const PROTO_ROOT: &str = "proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    // `sqlx::migrate!` embeds the migrations when the crate compiles, but a new or edited
    // migration alone would not make Cargo compile it again: a build after adding one kept the
    // old schema.
    println!("cargo:rerun-if-changed=migrations");
    let protos = proto_files(&PathBuf::from(PROTO_ROOT).join("sinergi/v1"))?;

    let descriptors = protox::Compiler::new([PROTO_ROOT])?
        .include_source_info(true)
        .include_imports(true)
        .open_files(&protos)?
        .file_descriptor_set();

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("sinergi_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}

/// Every `.proto` file of the package, relative to the proto root, in a stable order.
fn proto_files(dir: &PathBuf) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            let relative = path
                .strip_prefix(PROTO_ROOT)
                .map_err(io::Error::other)?
                .to_string_lossy()
                .into_owned();
            files.push(relative);
        }
    }
    files.sort();
    Ok(files)
}
