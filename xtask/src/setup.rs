//! `cargo xtask setup`: install what the builds need, skip what is already there, and
//! describe the tools to every child process through environment variables.
//!
//! Nothing is downloaded outside crates.io, npm and Debian's packages (Chromium and its
//! WebDriver for the browser tests, with apt-get): worker-build fetches wasm-bindgen,
//! wasm-opt and esbuild from GitHub unless `WASM_BINDGEN_BIN`, `WASM_OPT_BIN` and
//! `ESBUILD_BIN` name local binaries (worker-build 0.8.7, `src/binary.rs`: the variable is
//! tried first, then its cache, then the download), so setup provides all three.

use std::path::{Path, PathBuf};

use crate::cargo_lock::locked_version;
use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::{self, Env};
use crate::steps::{Outcome, StepFailure, Steps};

/// Targets: `wasm32-unknown-unknown` for the worker and the JS package, `wasm32v1-none`
/// for the proof that policy-core builds without `std`.
const WASM_TARGETS: [&str; 2] = ["wasm32-unknown-unknown", "wasm32v1-none"];

/// The oldest Node that wrangler 4.86 (the last wrangler 4 that runs on Node 20) accepts.
const MIN_NODE: (u32, u32) = (20, 3);

/// Installs what is missing, then returns the environment for every later child process:
/// what the build needs ([`setup_build`]), then what only the tests and benchmarks need
/// (Chromium and its WebDriver, cargo-fuzz, cbindgen, wasm-tools).
///
/// # Errors
///
/// The first step that fails, with the reason.
pub fn setup(layout: &Layout, steps: &mut Steps) -> Result<Env, StepFailure> {
    let env = setup_build(layout, steps)?;
    steps.run("setup: chromium", || chromium(&env))?;
    steps.run("setup: cargo-fuzz", || cargo_fuzz(&env, layout))?;
    steps.run("setup: cbindgen", || cbindgen(&env, layout))?;
    steps.run("setup: wasm-tools", || wasm_tools(&env, layout))?;
    Ok(env)
}

/// Installs only what building and deploying the worker needs — the wasm targets,
/// wasm-bindgen-cli, worker-build and the npm tools (wrangler, esbuild, wasm-opt) — and returns
/// the environment for the build. No browser, no `apt-get`, nothing outside the checkout,
/// `~/.cargo` and `~/.rustup`: wrangler's `[build]` command (`cargo xtask build-worker`) runs
/// this on an admin's laptop or an ordinary CI deploy job, as any user.
///
/// # Errors
///
/// The first step that fails, with the reason.
pub fn setup_build(layout: &Layout, steps: &mut Steps) -> Result<Env, StepFailure> {
    let mut env = Env::new(&layout.root);
    // Every program started from here acts on this checkout, wherever it runs.
    env.set(workspace_root::ROOT_VAR, &layout.root);
    let mut path = vec![layout.node_modules().join(".bin"), layout.cargo_bin.clone()];
    path.dedup();
    env.prepend_path(&path).map_err(|error| StepFailure {
        step: "setup".into(),
        error,
    })?;

    let lock_file = layout.root.join("Cargo.lock");
    steps.run("setup: rust targets", || rust_targets(&env))?;
    steps.run("setup: wasm-bindgen-cli", || {
        let version = locked_version(&lock_file, "wasm-bindgen")?;
        wasm_bindgen_cli(&env, layout, &version)
    })?;
    steps.run("setup: worker-build", || {
        let version = locked_version(&lock_file, "worker")?;
        worker_build(&env, layout, &version)
    })?;
    steps.run("setup: npm tools", || npm_tools(&env, layout))?;

    let tools = NpmTools::at(&layout.node_modules());
    env.set("WASM_BINDGEN_BIN", layout.cargo_installed("wasm-bindgen"));
    env.set("ESBUILD_BIN", tools.esbuild);
    env.set("WASM_OPT_BIN", tools.wasm_opt);
    env.set("WRANGLER_SEND_METRICS", "false");
    Ok(env)
}

/// `rustup target add` for the wasm targets not installed yet.
fn rust_targets(env: &Env) -> Result<Outcome, XtaskError> {
    let installed = process::output(
        env.command("rustup")
            .args(["target", "list", "--installed"]),
    )?;
    let missing: Vec<&str> = WASM_TARGETS
        .into_iter()
        .filter(|target| !installed.lines().any(|line| line.trim() == *target))
        .collect();
    if missing.is_empty() {
        return Ok(format!("{} already installed", WASM_TARGETS.join(", ")));
    }
    process::run(env.command("rustup").args(["target", "add"]).args(&missing))?;
    Ok(format!("added {}", missing.join(", ")))
}

/// wasm-bindgen's CLI (with `wasm-bindgen-test-runner`) at exactly the locked library version.
fn wasm_bindgen_cli(env: &Env, layout: &Layout, version: &str) -> Result<Outcome, XtaskError> {
    let bindgen = layout.cargo_installed("wasm-bindgen");
    let runner = layout.cargo_installed("wasm-bindgen-test-runner");
    let expected = format!("wasm-bindgen {version}");
    if installed_version(&bindgen).as_deref() == Some(expected.as_str()) && runner.is_file() {
        return Ok(format!("{version} already installed"));
    }
    cargo_install(env, "wasm-bindgen-cli", version)?;
    match installed_version(&bindgen) {
        Some(found) if found == expected => Ok(format!("installed {version}")),
        found => Err(XtaskError::Tool {
            tool: bindgen.display().to_string(),
            problem: format!(
                "reports `{}` after installing {version}; is another cargo home first?",
                found.unwrap_or_default()
            ),
        }),
    }
}

/// worker-build at the version of the locked `worker` crate (worker-build checks that they
/// share a minor version; the same patch version is the combination Cloudflare tests).
fn worker_build(env: &Env, layout: &Layout, version: &str) -> Result<Outcome, XtaskError> {
    let binary = layout.cargo_installed("worker-build");
    if installed_version(&binary).as_deref() == Some(version) {
        return Ok(format!("{version} already installed"));
    }
    cargo_install(env, "worker-build", version)?;
    match installed_version(&binary) {
        Some(found) if found == version => Ok(format!("installed {version}")),
        found => Err(XtaskError::Tool {
            tool: binary.display().to_string(),
            problem: format!(
                "reports `{}` after installing {version}",
                found.unwrap_or_default()
            ),
        }),
    }
}

/// The cargo-fuzz release `cargo xtask fuzz` and `test` drive (its `-s none` builds fuzz
/// targets on stable Rust).
const CARGO_FUZZ: &str = "0.13.2";

/// cargo-fuzz at [`CARGO_FUZZ`], for the fuzz targets in `fuzz/` (about 30 s to 3 min to install,
/// once: CI keeps `~/.cargo`).
fn cargo_fuzz(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let binary = layout.cargo_installed("cargo-fuzz");
    let expected = format!("cargo-fuzz {CARGO_FUZZ}");
    if installed_version(&binary).as_deref() == Some(expected.as_str()) {
        return Ok(format!("{CARGO_FUZZ} already installed"));
    }
    cargo_install(env, "cargo-fuzz", CARGO_FUZZ)?;
    match installed_version(&binary) {
        Some(found) if found == expected => Ok(format!("installed {CARGO_FUZZ}")),
        found => Err(XtaskError::Tool {
            tool: binary.display().to_string(),
            problem: format!(
                "reports `{}` after installing {CARGO_FUZZ}",
                found.unwrap_or_default()
            ),
        }),
    }
}

/// cbindgen, which writes the C header of the policy-core ABI (`abi/include/policy_core.h`).
const CBINDGEN: &str = "0.29.4";

fn cbindgen(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let binary = layout.cargo_installed("cbindgen");
    let expected = format!("cbindgen {CBINDGEN}");
    if installed_version(&binary).as_deref() == Some(expected.as_str()) {
        return Ok(format!("{CBINDGEN} already installed"));
    }
    cargo_install(env, "cbindgen", CBINDGEN)?;
    match installed_version(&binary) {
        Some(found) if found == expected => Ok(format!("installed {CBINDGEN}")),
        found => Err(XtaskError::Tool {
            tool: binary.display().to_string(),
            problem: format!(
                "reports `{}` after installing {CBINDGEN}",
                found.unwrap_or_default()
            ),
        }),
    }
}

/// wasm-tools, which wraps the component build of policy-core into a WebAssembly component
/// (`wasm-tools component new`) and validates it.
const WASM_TOOLS: &str = "1.263.0";

/// Only the subcommands the build uses: `component`, `validate`, `print`, `parse` (the default
/// features add fuzzers, shrinkers and more, and double the install time).
const WASM_TOOLS_FEATURES: &str = "component,validate,print,parse";

fn wasm_tools(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let binary = layout.cargo_installed("wasm-tools");
    let expected = format!("wasm-tools {WASM_TOOLS}");
    if installed_version(&binary).as_deref() == Some(expected.as_str()) {
        return Ok(format!("{WASM_TOOLS} already installed"));
    }
    cargo_install_with(
        env,
        "wasm-tools",
        WASM_TOOLS,
        &["--no-default-features", "--features", WASM_TOOLS_FEATURES],
    )?;
    match installed_version(&binary) {
        Some(found) if found == expected => Ok(format!("installed {WASM_TOOLS}")),
        found => Err(XtaskError::Tool {
            tool: binary.display().to_string(),
            problem: format!(
                "reports `{}` after installing {WASM_TOOLS}",
                found.unwrap_or_default()
            ),
        }),
    }
}

/// `cargo install CRATE --version =VERSION --locked --force` (force: reached only when the
/// installed binary is missing, broken or another version).
///
/// When the registry lacks a version the crate's own lock file names (this happens with
/// mirrors that trail crates.io), the install is retried once without `--locked`, letting
/// cargo pick the newest compatible versions the registry has.
fn cargo_install(env: &Env, krate: &str, version: &str) -> Result<(), XtaskError> {
    cargo_install_with(env, krate, version, &[])
}

/// [`cargo_install`] with more arguments (features).
fn cargo_install_with(
    env: &Env,
    krate: &str,
    version: &str,
    extra: &[&str],
) -> Result<(), XtaskError> {
    let exact = format!("={version}");
    let mut args = vec!["install", krate, "--version", &exact, "--force"];
    args.extend_from_slice(extra);
    match process::run_keeping_stderr(env.cargo().args(&args).arg("--locked")) {
        Ok(()) => Ok(()),
        Err((_, stderr)) if stderr.contains("failed to select a version") => {
            println!(
                "    the registry lacks a version locked by {krate} {version}; \
                 retrying without --locked"
            );
            process::run(env.cargo().args(&args))
        }
        Err((error, _)) => Err(error),
    }
}

/// The first line of `binary --version`, when it runs.
fn installed_version(binary: &Path) -> Option<String> {
    if !binary.is_file() {
        return None;
    }
    let output = process::probe(std::process::Command::new(binary).arg("--version"))?;
    output.lines().next().map(str::to_owned)
}

/// The npm tools pinned by `package-lock.json`, installed with `npm ci` when
/// `node_modules` is missing or was installed from another lock file or Node.
fn npm_tools(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let node = node_version(env)?;
    let lock_path = layout.root.join("package-lock.json");
    let lock =
        std::fs::read(&lock_path).map_err(|source| XtaskError::io("read", &lock_path, source))?;
    let stamp = format!("{:016x} node {node}\n", fnv1a(&lock));
    let stamp_path = layout.node_modules().join(".xtask-lock-hash");
    let tools = NpmTools::at(&layout.node_modules());
    let current = std::fs::read_to_string(&stamp_path).unwrap_or_default();
    if current == stamp && tools.all_present() {
        return Ok("up to date with package-lock.json".into());
    }

    process::run(env.command("npm").args(["ci", "--no-audit", "--no-fund"]))?;
    let versions = tools.check(env)?;
    std::fs::write(&stamp_path, stamp)
        .map_err(|source| XtaskError::io("write", &stamp_path, source))?;
    Ok(format!("installed {versions}"))
}

/// Headless Chromium and its WebDriver, for the browser sign-in tests
/// (`tests/tests/signin_browser.rs`): Debian's own packages, the only browser this machine
/// can install (a test tool's download of its own browser build fails here).
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM_PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];

/// `apt-get install` Debian's `chromium` and `chromium-driver` when `/usr/bin/chromium` or
/// `/usr/bin/chromedriver` is missing (as root, as on the developers' machines and CI).
fn chromium(env: &Env) -> Result<Outcome, XtaskError> {
    let present = || Path::new(CHROMIUM).is_file() && Path::new(CHROMEDRIVER).is_file();
    if present() {
        let version = process::probe(env.command(CHROMEDRIVER).arg("--version"))
            .map(|v| v.split(" (").next().unwrap_or_default().to_owned())
            .unwrap_or_else(|| "chromedriver".into());
        return Ok(format!("{version} already installed"));
    }
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).is_file())
        .collect();
    println!(
        "    {} missing: installing Debian's {} with apt-get (20–60 s)",
        missing.join(" and "),
        CHROMIUM_PACKAGES.join(" and ")
    );
    let apt = |args: &[&str]| {
        let mut command = env.command("apt-get");
        command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null());
        let started = std::time::Instant::now();
        let result = process::run(&mut command);
        println!(
            "    (apt-get {} took {})",
            args.first().copied().unwrap_or_default(),
            crate::steps::seconds(started.elapsed())
        );
        result
    };
    apt(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(CHROMIUM_PACKAGES);
    apt(&install)?;
    if !present() {
        return Err(XtaskError::Tool {
            tool: CHROMIUM.into(),
            problem: format!(
                "still missing (or {CHROMEDRIVER}) after installing {}",
                CHROMIUM_PACKAGES.join(", ")
            ),
        });
    }
    let version = process::output(env.command(CHROMEDRIVER).arg("--version"))?;
    Ok(format!(
        "installed {}",
        version.trim().split(" (").next().unwrap_or_default()
    ))
}

/// Node's version (`v20.20.2` → `20.20.2`), or an error naming the minimum.
fn node_version(env: &Env) -> Result<String, XtaskError> {
    let output = process::output(env.command("node").arg("--version"))?;
    let version = output.trim().trim_start_matches('v').to_owned();
    let mut numbers = version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let found = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    if found < MIN_NODE {
        return Err(XtaskError::Tool {
            tool: "node".into(),
            problem: format!(
                "version `{version}` is too old; wrangler needs Node {}.{} or newer",
                MIN_NODE.0, MIN_NODE.1
            ),
        });
    }
    Ok(version)
}

/// 64-bit FNV-1a: enough to notice that a lock file changed (nobody attacks node_modules
/// through this stamp; npm ci verifies the packages' integrity itself).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The executables of the npm packages worker-build and the tests call directly.
#[derive(Debug)]
struct NpmTools {
    wrangler: PathBuf,
    esbuild: PathBuf,
    /// binaryen's npm package ships wasm-opt compiled to JavaScript + Wasm (a Node script,
    /// about 0.4 s to start), not a native binary; worker-build runs it like one.
    wasm_opt: PathBuf,
}

impl NpmTools {
    fn at(node_modules: &Path) -> Self {
        Self {
            wrangler: node_modules
                .join("wrangler")
                .join("bin")
                .join("wrangler.js"),
            esbuild: node_modules.join("esbuild").join("bin").join("esbuild"),
            wasm_opt: node_modules.join("binaryen").join("bin").join("wasm-opt"),
        }
    }

    fn all_present(&self) -> bool {
        [&self.wrangler, &self.esbuild, &self.wasm_opt]
            .iter()
            .all(|tool| tool.is_file())
    }

    /// Runs each tool once and reports their versions.
    fn check(&self, env: &Env) -> Result<String, XtaskError> {
        let wrangler = process::output(env.command("node").arg(&self.wrangler).arg("--version"))?;
        let esbuild = process::output(env.command(&self.esbuild).arg("--version"))?;
        let wasm_opt = process::output(env.command(&self.wasm_opt).arg("--version"))?;
        Ok(format!(
            "wrangler {}, esbuild {}, {}",
            last_line(&wrangler),
            last_line(&esbuild),
            last_line(&wasm_opt)
        ))
    }
}

fn last_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
