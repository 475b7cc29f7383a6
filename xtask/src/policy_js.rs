//! policy-core for JavaScript: the npm package `@edge-access/policy-core` (built, packed and
//! tested), its JS API tests and its JS benchmark.
//!
//! The package is assembled in `target/policy-core-js/` from the hand-written files in
//! `policy-core/js/package/` (entry points, the object API, the TypeScript types, its README),
//! the JSON Schemas in `policy-core/schema/`, and wasm-bindgen's `--target web` output in
//! `wasm/`: one glue module that instantiates the Wasm from bytes (Node reads the file),
//! from a URL (browsers, bundlers) or from an imported `WebAssembly.Module` (Workers).

use std::path::{Path, PathBuf};

use crate::cargo_lock::locked_version;
use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::{self, Env};
use crate::size;
use crate::steps::Outcome;

/// Tells the JS tests and benchmark where the package is (the folder `npm pack` packs), so
/// they do not depend on the target directory's location.
pub const PACKAGE_ENV: &str = "POLICY_CORE_JS";

/// Tells the JS tests where `npm pack` put the package's tarball.
pub const TARBALL_ENV: &str = "POLICY_CORE_TARBALL";

/// The npm package's name, as `npm pack` spells its tarball: `edge-access-policy-core-…`.
const TARBALL_STEM: &str = "edge-access-policy-core";

/// What wasm-bindgen's `--target web` writes that the package ships.
const GLUE: &str = "policy_core.js";
const MODULE: &str = "policy_core_bg.wasm";

/// Builds the package folder `target/policy-core-js/`: a cdylib of policy-core with the
/// `wasm` feature (profile `wasm-js`: release, optimised for size, then `wasm-opt -O3`),
/// wasm-bindgen `--target web`, and the package's own files. Reports the `.wasm` size.
///
/// # Errors
///
/// When cargo or wasm-bindgen fail, a file cannot be copied, or `package.json` names another
/// version than policy-core's.
pub fn build_package(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    process::run(env.cargo().args([
        "rustc",
        "-p",
        "policy-core",
        "--lib",
        "--profile",
        "wasm-js",
        "--target",
        "wasm32-unknown-unknown",
        "--features",
        "wasm",
        "--crate-type",
        "cdylib",
    ]))?;
    let wasm = layout
        .target_dir
        .join("wasm32-unknown-unknown")
        .join("wasm-js")
        .join("policy_core.wasm");
    let bindgen_dir = layout.target_dir.join("policy-core-js-bindgen");
    process::run(
        env.command(layout.cargo_installed("wasm-bindgen"))
            .args(["--target", "web", "--out-dir"])
            .arg(&bindgen_dir)
            .arg(&wasm),
    )?;
    // wasm-opt -O3 after opt-level "s": smaller than either alone, and faster than -Os. The
    // producers and target-features sections are metadata no host reads.
    let module = bindgen_dir.join(MODULE);
    if let Some(wasm_opt) = env.var("WASM_OPT_BIN") {
        process::run(
            env.command(wasm_opt)
                .args([
                    "-O3",
                    "--strip-debug",
                    "--strip-producers",
                    "--strip-target-features",
                ])
                .arg(&module)
                .arg("-o")
                .arg(&module),
        )?;
    }

    let package = layout.policy_core_package_dir();
    check_version(layout)?;
    remove_dir(&package)?;
    copy_tree(&layout.policy_core_js_dir().join("package"), &package)?;
    let wasm_dir = package.join("wasm");
    create_dir(&wasm_dir)?;
    copy_file(&bindgen_dir.join(GLUE), &wasm_dir.join(GLUE))?;
    copy_file(&module, &wasm_dir.join(MODULE))?;
    copy_tree(
        &layout.root.join("policy-core").join("schema"),
        &package.join("schema"),
    )?;
    size::describe(env, &wasm_dir.join(MODULE))
}

/// `npm pack` of the package folder into the target directory; reports the tarball's size.
///
/// # Errors
///
/// When npm fails or the tarball is not where npm names it.
pub fn pack(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let tarball = tarball(layout)?;
    let mut command = env.command("npm");
    command
        .args(["pack", "--silent", "--pack-destination"])
        .arg(&layout.target_dir)
        .current_dir(layout.policy_core_package_dir());
    println!("    $ {}", process::describe(&command));
    let name = process::output(&mut command)?;
    let packed = layout.target_dir.join(name.trim());
    if packed != tarball {
        return Err(XtaskError::Tool {
            tool: "npm pack".into(),
            problem: format!(
                "wrote `{}`, expected `{}`",
                packed.display(),
                tarball.display()
            ),
        });
    }
    let files = count_files(&layout.policy_core_package_dir())?;
    let bytes = std::fs::metadata(&tarball)
        .map_err(|source| XtaskError::io("read the size of", &tarball, source))?
        .len();
    #[expect(
        clippy::cast_precision_loss,
        reason = "a tarball far below 2^52 bytes, printed to one decimal"
    )]
    let kib = bytes as f64 / 1024.0;
    Ok(format!(
        "{}: {kib:.1} KiB packed, {files} files",
        tarball
            .file_name()
            .unwrap_or(tarball.as_os_str())
            .to_string_lossy()
    ))
}

/// The environment for the JS files: [`PACKAGE_ENV`] set to the package folder and
/// [`TARBALL_ENV`] to its packed tarball.
pub fn package_env(env: &Env, layout: &Layout) -> Env {
    let mut env = env.clone();
    env.set(PACKAGE_ENV, layout.policy_core_package_dir());
    if let Ok(tarball) = tarball(layout) {
        env.set(TARBALL_ENV, tarball);
    }
    env
}

/// `node --test` over `policy-core/js/*.test.mjs` (explicit files: what a directory argument
/// means changed between Node 20 and 22).
///
/// # Errors
///
/// When a test fails or the folder cannot be read.
pub fn test(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let tests = test_files(layout)?;
    if tests.is_empty() {
        let note = format!(
            "no JS tests yet (no *.test.mjs in {})",
            layout.policy_core_js_dir().display()
        );
        println!("    {note}");
        return Ok(note);
    }
    process::run(
        package_env(env, layout)
            .command("node")
            .arg("--test")
            .args(&tests),
    )?;
    Ok(match tests.len() {
        1 => "1 test file".to_owned(),
        count => format!("{count} test files"),
    })
}

/// The JS benchmark, `policy-core/js/bench.mjs`, when there is one.
pub fn bench_file(layout: &Layout) -> Option<PathBuf> {
    Some(layout.policy_core_js_dir().join("bench.mjs")).filter(|file| file.is_file())
}

/// The workloads `bench.mjs` reads, as `examples/workload.rs` prints them:
/// `target/bench-workload-{realistic,large}.json`.
///
/// # Errors
///
/// When the example fails or a file cannot be written.
pub fn write_workloads(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let mut written = Vec::new();
    for workload in ["realistic", "large"] {
        let mut command = env.cargo();
        command
            .args([
                "run",
                "--quiet",
                "-p",
                "policy-core",
                "--example",
                "workload",
            ])
            .args(["--", workload]);
        println!("    $ {}", process::describe(&command));
        let json = process::output(&mut command)?;
        let file = layout
            .target_dir
            .join(format!("bench-workload-{workload}.json"));
        std::fs::write(&file, json).map_err(|source| XtaskError::io("write", &file, source))?;
        written.push(file.display().to_string());
    }
    Ok(written.join(", "))
}

/// `target/edge-access-policy-core-VERSION.tgz`, VERSION being policy-core's.
fn tarball(layout: &Layout) -> Result<PathBuf, XtaskError> {
    let version = locked_version(&layout.root.join("Cargo.lock"), "policy-core")?;
    Ok(layout
        .target_dir
        .join(format!("{TARBALL_STEM}-{version}.tgz")))
}

/// The package's `package.json` must carry policy-core's version: one release, one number.
fn check_version(layout: &Layout) -> Result<(), XtaskError> {
    let version = locked_version(&layout.root.join("Cargo.lock"), "policy-core")?;
    let manifest = layout
        .policy_core_js_dir()
        .join("package")
        .join("package.json");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|source| XtaskError::io("read", &manifest, source))?;
    let expected = format!("\"version\": \"{version}\"");
    if text.contains(&expected) {
        Ok(())
    } else {
        Err(XtaskError::Tool {
            tool: manifest.display().to_string(),
            problem: format!("must say {expected}, policy-core's version"),
        })
    }
}

fn test_files(layout: &Layout) -> Result<Vec<PathBuf>, XtaskError> {
    let dir = layout.policy_core_js_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(XtaskError::io("list", &dir, source)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| XtaskError::io("list", &dir, source))?
            .path();
        let is_test = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.ends_with(".test.mjs"));
        if is_test && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn remove_dir(dir: &Path) -> Result<(), XtaskError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(XtaskError::io("remove", dir, source)),
    }
}

fn create_dir(dir: &Path) -> Result<(), XtaskError> {
    std::fs::create_dir_all(dir).map_err(|source| XtaskError::io("create", dir, source))
}

fn copy_file(from: &Path, to: &Path) -> Result<(), XtaskError> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|source| XtaskError::io("copy", from, source))
}

/// Copies the files under `from` into `to`, keeping the folder structure.
fn copy_tree(from: &Path, to: &Path) -> Result<(), XtaskError> {
    create_dir(to)?;
    let entries = std::fs::read_dir(from).map_err(|source| XtaskError::io("list", from, source))?;
    for entry in entries {
        let path = entry
            .map_err(|source| XtaskError::io("list", from, source))?
            .path();
        let target = to.join(path.file_name().unwrap_or(path.as_os_str()));
        if path.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            copy_file(&path, &target)?;
        }
    }
    Ok(())
}

fn count_files(dir: &Path) -> Result<usize, XtaskError> {
    let entries = std::fs::read_dir(dir).map_err(|source| XtaskError::io("list", dir, source))?;
    let mut count = 0;
    for entry in entries {
        let path = entry
            .map_err(|source| XtaskError::io("list", dir, source))?
            .path();
        count += if path.is_dir() {
            count_files(&path)?
        } else {
            1
        };
    }
    Ok(count)
}
