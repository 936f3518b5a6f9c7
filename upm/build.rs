//! Builds the LD_PRELOAD shim (`../shim`, a cdylib) with a nested `cargo build --release` into
//! OUT_DIR, so `upm` can embed it (`include_bytes!`) and write it out into a target root at run
//! time: copying the `upm` binary into an LFS chroot stays the whole set-up.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let shim = manifest_dir.join("../shim");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    for p in [
        "../shim/src",
        "../shim/Cargo.toml",
        "../rootstep/src",
        "../rootstep/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={p}");
    }
    let target_dir = out.join("shim-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--manifest-path")
        .arg(shim.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--lib");
    // The shim is built for the same target as upm (a cross build passes --target).
    let target = std::env::var("TARGET").unwrap();
    let host = std::env::var("HOST").unwrap();
    if target != host {
        cmd.arg("--target").arg(&target);
    }
    if std::env::var_os("CARGO_NET_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    // Under `cargo clippy` the wrapper would only check the shim, making no library; the outer
    // build's flags and profile settings are not the shim's.
    for var in [
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    let status = cmd.status().expect("cargo runs to build the shim");
    assert!(status.success(), "building the shim (../shim) failed");
    let mut built = target_dir.clone();
    if target != host {
        built.push(&target);
    }
    built.push("release/libupm_shim.so");
    copy(&built, &out.join("libupm_shim.so"));
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", from.display(), to.display()));
}
