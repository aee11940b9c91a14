//! Compiles `proto/bulkhead/v1/*.proto` with protox (pure Rust, no system protoc) and hands the
//! descriptor set to tonic-prost-build. The descriptor set is also kept for server reflection.

use std::path::PathBuf;

use prost::Message;

const FILES: &[&str] = &[
    "bulkhead/v1/common.proto",
    "bulkhead/v1/admin.proto",
    "bulkhead/v1/keys.proto",
    "bulkhead/v1/collections.proto",
    "bulkhead/v1/records.proto",
    "bulkhead/v1/audit.proto",
    "bulkhead/v1/cache.proto",
    "bulkhead/v1/memory.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for f in FILES {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let descriptors = protox::compile(FILES, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("bulkhead_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
