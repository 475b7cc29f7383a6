//! The worker's release build through worker-build (`cargo xtask build-worker`, also the
//! `[build]` command in wrangler.toml, so `wrangler dev` and `wrangler deploy` build it too).

use std::path::Path;
use std::time::SystemTime;

use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::{self, Env};
use crate::size;
use crate::steps::Outcome;

/// Whether a build may be skipped when nothing changed since the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// Always run worker-build (`cargo xtask test`, `build-worker --force`).
    Always,
    /// Skip when no file of the repository changed since the last successful build: `cargo
    /// xtask dev` builds before starting wrangler, and wrangler runs the `[build]` command
    /// again at start; the second run should not redo wasm-bindgen and wasm-opt.
    WhenChanged,
}

/// Builds `worker/build/index.js` + `index_bg.wasm` and reports their sizes.
///
/// # Errors
///
/// When worker-build fails or its output is missing afterwards.
pub fn build(env: &Env, layout: &Layout, rebuild: Rebuild) -> Result<Outcome, XtaskError> {
    let out_dir = layout.worker_build_dir();
    let entry = out_dir.join("index.js");
    let wasm = out_dir.join("index_bg.wasm");
    let stamp = layout.xtask_dir().join("worker-build.stamp");

    if rebuild == Rebuild::WhenChanged && entry.is_file() && wasm.is_file() {
        if let Ok(built) = std::fs::metadata(&stamp).and_then(|meta| meta.modified()) {
            let newest = newest_input(&layout.root, &out_dir)?;
            if newest.is_some_and(|newest| newest < built) {
                return Ok(format!("up to date, {}", size::describe(env, &wasm)?));
            }
        }
    }

    let mut command = env.command(layout.cargo_installed("worker-build"));
    command.arg("--release").current_dir(layout.worker_dir());
    process::run(&mut command)?;
    for output in [&entry, &wasm] {
        if !output.is_file() {
            return Err(XtaskError::Tool {
                tool: "worker-build".into(),
                problem: format!("did not write `{}`", output.display()),
            });
        }
    }

    let xtask_dir = layout.xtask_dir();
    std::fs::create_dir_all(&xtask_dir)
        .map_err(|source| XtaskError::io("create", &xtask_dir, source))?;
    std::fs::write(&stamp, "the last successful worker build\n")
        .map_err(|source| XtaskError::io("write", &stamp, source))?;
    size::describe(env, &wasm)
}

/// Directories that are outputs, caches or history rather than inputs of the build.
const NOT_INPUTS: [&str; 4] = [".git", "target", "node_modules", ".wrangler"];

/// The latest modification time of any file under `dir` that can affect the build. Errs on
/// the side of rebuilding: every file counts, except under [`NOT_INPUTS`] and `out_dir`, and
/// so does every directory (removing a file changes its directory's time).
fn newest_input(dir: &Path, out_dir: &Path) -> Result<Option<SystemTime>, XtaskError> {
    let mut newest: Option<SystemTime> = None;
    let entries = std::fs::read_dir(dir).map_err(|source| XtaskError::io("list", dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| XtaskError::io("list", dir, source))?;
        let path = entry.path();
        let meta = entry
            .metadata()
            .map_err(|source| XtaskError::io("inspect", &path, source))?;
        if meta.is_dir() {
            let skipped =
                path == out_dir || NOT_INPUTS.iter().any(|name| entry.file_name() == *name);
            if skipped {
                continue;
            }
            newest = newest.max(newest_input(&path, out_dir)?);
        }
        newest = newest.max(meta.modified().ok());
    }
    Ok(newest)
}
