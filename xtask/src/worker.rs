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
    let config_file = bundled_config_file(env, &layout.root);
    let inputs = inputs(env, &layout.root, &out_dir)?;
    // What the modification times cannot tell: which file is bundled, and which files
    // there are (a deleted input leaves no newer time behind).
    let stamp_text = format!(
        "the last successful worker build, bundling {}, inputs {:016x}\n",
        config_file.as_deref().unwrap_or("no configuration file"),
        inputs.names,
    );

    let same_inputs = std::fs::read_to_string(&stamp).is_ok_and(|text| text == stamp_text);
    if rebuild == Rebuild::WhenChanged && same_inputs && entry.is_file() && wasm.is_file() {
        if let Ok(built) = std::fs::metadata(&stamp).and_then(|meta| meta.modified()) {
            if inputs.newest.is_some_and(|newest| newest < built) {
                return Ok(format!("up to date, {}", size::describe(env, &wasm)?));
            }
        }
    }

    let mut command = env.command(layout.cargo_installed("worker-build"));
    command.arg("--release").current_dir(layout.worker_dir());
    if let Some(file) = &config_file {
        command.env(CONFIG_FILE_VAR, file);
    }
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
    std::fs::write(&stamp, stamp_text).map_err(|source| XtaskError::io("write", &stamp, source))?;
    size::describe(env, &wasm)
}

/// The gateway's phase-profile build (the `phase-profile` feature: requests with
/// `X-Edge-Access-Profile` answer a profile of their phases, `worker/src/profile.rs`) into
/// `target/phase-profile/build`, for the gateway benchmark only. Always rebuilt: cargo
/// recompiles only what the feature changes.
///
/// # Errors
///
/// When worker-build fails or its output is missing afterwards.
pub fn build_phase_profile(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let out_dir = phase_profile_dir(layout);
    let mut command = env.command(layout.cargo_installed("worker-build"));
    command
        .arg("--release")
        .arg("--out-dir")
        .arg(&out_dir)
        .args(["--features", "phase-profile"])
        .current_dir(layout.worker_dir());
    if let Some(file) = bundled_config_file(env, &layout.root) {
        command.env(CONFIG_FILE_VAR, file);
    }
    process::run(&mut command)?;
    let wasm = out_dir.join("index_bg.wasm");
    for output in [out_dir.join("index.js"), wasm.clone()] {
        if !output.is_file() {
            return Err(XtaskError::Tool {
                tool: "worker-build".into(),
                problem: format!("did not write `{}`", output.display()),
            });
        }
    }
    size::describe(env, &wasm)
}

/// Where [`build_phase_profile`] writes.
pub fn phase_profile_dir(layout: &Layout) -> std::path::PathBuf {
    layout.target_dir.join("phase-profile").join("build")
}

/// Names the configuration file the worker bundles (`worker/build.rs`), relative to the
/// checkout.
pub const CONFIG_FILE_VAR: &str = "EDGE_ACCESS_CONFIG_FILE";

/// The configuration file at the checkout's root the worker bundles when no other is named.
const DEFAULT_CONFIG_FILE: &str = "edge-access.json";

/// The file the worker's build bundles, relative to the checkout: the one
/// [`CONFIG_FILE_VAR`] names, else [`DEFAULT_CONFIG_FILE`] when it exists. The build passes
/// it in the variable either way: `worker/build.rs` watches only a file that exists, so a
/// default file created after a build is seen through the variable's change.
pub fn bundled_config_file(env: &Env, root: &Path) -> Option<String> {
    match env.var(CONFIG_FILE_VAR) {
        Some(path) if !path.to_string_lossy().trim().is_empty() => {
            Some(path.to_string_lossy().trim().to_owned())
        }
        _ => root
            .join(DEFAULT_CONFIG_FILE)
            .is_file()
            .then(|| DEFAULT_CONFIG_FILE.to_owned()),
    }
}

/// Directories that are outputs, caches or history rather than inputs of the build.
const NOT_INPUTS: [&str; 4] = [".git", "target", "node_modules", ".wrangler"];

/// The files that can affect the build.
struct Inputs {
    /// The latest modification time among them.
    newest: Option<SystemTime>,
    /// A hash of their names (0 outside git, where directory times stand for it).
    names: u64,
}

/// The files that can affect the build. In a git checkout, those git tracks or would track
/// (`git ls-files --cached --others --exclude-standard`): what other steps write and
/// `.gitignore` names (Python's build directory, fuzz corpora) does not count, so a build
/// stays current through the test run. Outside git, every file and directory outside
/// [`NOT_INPUTS`] and `out_dir` counts.
fn inputs(env: &Env, root: &Path, out_dir: &Path) -> Result<Inputs, XtaskError> {
    use std::hash::{Hash, Hasher};

    let listed = process::probe(env.command("git").args([
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ]));
    let Some(listed) = listed else {
        return Ok(Inputs {
            newest: newest_under(root, out_dir)?,
            names: 0,
        });
    };
    let mut newest: Option<SystemTime> = None;
    let mut names = std::collections::hash_map::DefaultHasher::new();
    for name in listed.split('\0').filter(|name| !name.is_empty()) {
        // A tracked file deleted from the work tree is listed but gone: left out of the
        // names, it changes them.
        if let Ok(modified) = std::fs::metadata(root.join(name)).and_then(|meta| meta.modified()) {
            newest = newest.max(Some(modified));
            name.hash(&mut names);
        }
    }
    Ok(Inputs {
        newest,
        names: names.finish(),
    })
}

/// The newest time without git: every file under `dir` except under [`NOT_INPUTS`] and
/// `out_dir`, and every directory.
fn newest_under(dir: &Path, out_dir: &Path) -> Result<Option<SystemTime>, XtaskError> {
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
            newest = newest.max(newest_under(&path, out_dir)?);
        }
        newest = newest.max(meta.modified().ok());
    }
    Ok(newest)
}
