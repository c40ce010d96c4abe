//! Compiles the data contract in `proto/` with protox (pure Rust, so no system `protoc` is needed)
//! and writes the encoded descriptor set that server reflection publishes.

use std::{env, fs, io, path::PathBuf};

const PROTO_ROOT: &str = "proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    // `sqlx::migrate!` embeds the migrations when the crate compiles, but a new or edited
    // migration alone would not make Cargo compile it again: a build after adding one kept the
    // old schema.
    println!("cargo:rerun-if-changed=migrations");
    let protos = proto_files(&PathBuf::from(PROTO_ROOT).join("sinergi/v1"))?;

    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(&protos)?;
    let descriptors = compiler.file_descriptor_set();

    // Encoded by protox itself: the typed descriptors drop the options they do not declare,
    // such as the `google.api.http` bindings the HTTP door is routed by.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("sinergi_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    // Servers and clients are generated apart because they decode differently: bytes that are
    // not a valid protobuf request are the caller's fault (INVALID_ARGUMENT, from the server's
    // own codec), while a response the client cannot decode stays the INTERNAL error prost's
    // codec reports.
    let servers = tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .codec_path("crate::grpc::codec::RequestCodec")
        .service_generator();
    let clients = tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .service_generator();
    let mut config = prost_build::Config::new();
    config
        .out_dir(&out_dir)
        .service_generator(Box::new(Both(servers, clients)));
    config.compile_fds(descriptors)?;
    Ok(())
}

/// Two service generators writing into the same generated module.
struct Both(
    Box<dyn prost_build::ServiceGenerator>,
    Box<dyn prost_build::ServiceGenerator>,
);

impl prost_build::ServiceGenerator for Both {
    fn generate(&mut self, service: prost_build::Service, buf: &mut String) {
        self.0.generate(service.clone(), buf);
        self.1.generate(service, buf);
    }

    fn finalize(&mut self, buf: &mut String) {
        self.0.finalize(buf);
        self.1.finalize(buf);
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        self.0.finalize_package(package, buf);
        self.1.finalize_package(package, buf);
    }
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
