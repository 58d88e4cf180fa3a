//! Compiles every `.proto` file of `proto/tasker/v1` with protox (pure Rust,
//! so no `protoc` is needed), writes the descriptor set for server
//! reflection, and generates the prost messages and tonic clients and
//! servers from that same descriptor set.

use std::error::Error;
use std::path::{Path, PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let package_dir = root.join("tasker/v1");
    println!("cargo:rerun-if-changed={}", package_dir.display());

    // Every file in the directory, so a new service (e.g. analytics.proto)
    // joins the build without editing this script; sorted for a stable
    // descriptor set.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&package_dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|ext| ext == "proto"));
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let descriptors = protox::compile(&files, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("tasker_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Ordered maps compare and print deterministically, like the
        // `BTreeMap`s of tasker-types they mirror.
        .btree_map(".")
        .compile_fds(descriptors)?;
    Ok(())
}
