//! Bundles the configuration file into the worker: `EDGE_ACCESS_CONFIG_FILE` (a path, relative
//! to the workspace root) when set, else `edge-access.json` at the workspace root when it
//! exists. Without either, the bundled document is empty and the gateway reads storage or the
//! `EDGE_ACCESS_CONFIG` var.
//!
//! A missing file is not watched: cargo counts a missing `rerun-if-changed` path as changed
//! on every build, which would rebuild the worker each time. `cargo xtask build-worker`
//! names `edge-access.json` in `EDGE_ACCESS_CONFIG_FILE` when it exists, so creating the
//! file later is seen there through the variable.

use std::path::PathBuf;

fn main() -> Result<(), String> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest.parent().map(PathBuf::from).unwrap_or(manifest);
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    println!("cargo:rerun-if-env-changed=EDGE_ACCESS_CONFIG_FILE");
    let (path, named) = match std::env::var("EDGE_ACCESS_CONFIG_FILE") {
        Ok(path) if !path.trim().is_empty() => (root.join(path.trim()), true),
        _ => (root.join("edge-access.json"), false),
    };
    println!("cargo:rerun-if-changed=build.rs");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => {
            println!("cargo:rerun-if-changed={}", path.display());
            text
        }
        Err(e) if named || e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!(
                "the configuration file `{}` cannot be read: {e}",
                path.display()
            ))
        }
        Err(_) => String::new(),
    };
    std::fs::write(out.join("bundled-config.json"), text).map_err(|e| e.to_string())
}
