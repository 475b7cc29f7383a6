//! policy-core behind its stable ABI (`policy-core/ABI.md`): the core Wasm module, the same
//! functions as a WebAssembly component (the WIT world in `abi/wit/policy.wit`), the native C
//! library and header, and the hosts that prove them — wasmtime (Rust, core module and
//! component, in `cargo test`), Python (the `wasmtime` package from PyPI) and C.

use std::path::{Path, PathBuf};

use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::{self, Env};
use crate::size;
use crate::steps::Outcome;

/// Where hosts find the module (`…/policy_core.wasm`).
pub const WASM_ENV: &str = "EDGE_ACCESS_ABI_WASM";

/// `target/policy-core-abi/`: the module, the generated header, the C cases and test binary.
pub fn out_dir(layout: &Layout) -> PathBuf {
    layout.target_dir.join("policy-core-abi")
}

/// The module's path.
pub fn module_path(layout: &Layout) -> PathBuf {
    out_dir(layout).join("policy_core.wasm")
}

/// Where hosts find the component (`…/policy_core.component.wasm`).
pub const COMPONENT_ENV: &str = "EDGE_ACCESS_ABI_COMPONENT";

/// The component's path.
pub fn component_path(layout: &Layout) -> PathBuf {
    out_dir(layout).join("policy_core.component.wasm")
}

/// Builds `policy_core.component.wasm`: the component crate (`abi/component`, wit-bindgen) as a
/// release cdylib for `wasm32-unknown-unknown` (its core module imports nothing, so no WASI
/// adapter), `wasm-opt -O3`, then `wasm-tools component new` and `wasm-tools validate`; checks
/// that the component exports the world of `abi/wit/policy.wit` and reports its size.
///
/// # Errors
///
/// When a build step fails or the component exports something else.
pub fn build_component(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    process::run(env.cargo().args([
        "build",
        "-p",
        "policy-core-component",
        "--lib",
        "--profile",
        "wasm-js",
        "--target",
        "wasm32-unknown-unknown",
    ]))?;
    let built = layout
        .target_dir
        .join("wasm32-unknown-unknown")
        .join("wasm-js")
        .join("policy_core_component.wasm");
    std::fs::create_dir_all(out_dir(layout))
        .map_err(|source| XtaskError::io("create", out_dir(layout), source))?;
    let core = out_dir(layout).join("policy_core_component.core.wasm");
    match env.var("WASM_OPT_BIN") {
        Some(wasm_opt) => process::run(
            env.command(wasm_opt)
                .arg("-O3")
                .arg(&built)
                .arg("-o")
                .arg(&core),
        )?,
        None => {
            std::fs::copy(&built, &core)
                .map_err(|source| XtaskError::io("copy", &built, source))?;
        }
    }
    let component = component_path(layout);
    let wasm_tools = layout.cargo_installed("wasm-tools");
    process::run(
        env.command(&wasm_tools)
            .args(["component", "new"])
            .arg(&core)
            .arg("-o")
            .arg(&component),
    )?;
    process::run(env.command(&wasm_tools).arg("validate").arg(&component))?;
    let wit = process::output(
        env.command(&wasm_tools)
            .args(["component", "wit"])
            .arg(&component),
    )?;
    let world = world_items(&wit);
    let expected = ["export edge-access:policy/engine@1.0.0;"];
    if world != expected {
        return Err(XtaskError::Tool {
            tool: "wasm-tools component wit".into(),
            problem: format!(
                "the component's world should be exactly `{}`, but it is {world:?}",
                expected.join(" ")
            ),
        });
    }
    size::describe(env, &component)
}

/// Builds `policy_core.wasm`: the ABI crate as a release cdylib for `wasm32-unknown-unknown`
/// (no wasm-bindgen, so no imports), then `wasm-opt -O3`; reports its size.
///
/// # Errors
///
/// When cargo, wasm-opt or the copy fail.
pub fn build_module(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    process::run(env.cargo().args([
        "build",
        "-p",
        "policy-core-abi",
        "--lib",
        "--profile",
        "wasm-js",
        "--target",
        "wasm32-unknown-unknown",
    ]))?;
    let built = layout
        .target_dir
        .join("wasm32-unknown-unknown")
        .join("wasm-js")
        .join("policy_core_abi.wasm");
    let module = module_path(layout);
    std::fs::create_dir_all(out_dir(layout))
        .map_err(|source| XtaskError::io("create", out_dir(layout), source))?;
    match env.var("WASM_OPT_BIN") {
        Some(wasm_opt) => process::run(
            env.command(wasm_opt)
                .arg("-O3")
                .arg(&built)
                .arg("-o")
                .arg(&module),
        )?,
        None => {
            std::fs::copy(&built, &module)
                .map_err(|source| XtaskError::io("copy", &built, source))?;
        }
    }
    size::describe(env, &module)
}

/// The imports and exports of the component's own world in `wasm-tools component wit` output:
/// the lines inside `world root { … }`.
fn world_items(wit: &str) -> Vec<&str> {
    wit.lines()
        .skip_while(|line| !line.trim_start().starts_with("world root"))
        .skip(1)
        .map(str::trim)
        .take_while(|line| *line != "}")
        .filter(|line| !line.is_empty())
        .collect()
}

/// The environment for hosts: [`WASM_ENV`] set to the module, [`COMPONENT_ENV`] to the
/// component.
pub fn host_env(env: &Env, layout: &Layout) -> Env {
    let mut env = env.clone();
    env.set(WASM_ENV, module_path(layout));
    env.set(COMPONENT_ENV, component_path(layout));
    env
}

/// Regenerates `abi/include/policy_core.h` with cbindgen into the target directory and fails
/// when the committed header differs (run `cargo xtask abi-header` to update it).
///
/// # Errors
///
/// When cbindgen fails or the header is stale.
pub fn check_header(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let generated = out_dir(layout).join("policy_core.h");
    generate_header(env, layout, &generated)?;
    let committed = committed_header(layout);
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| XtaskError::io("read", path, source))
    };
    if read(&generated)? != read(&committed)? {
        return Err(XtaskError::Tool {
            tool: "cbindgen".into(),
            problem: format!(
                "{} is stale: `cargo xtask abi-header` regenerates it",
                committed.display()
            ),
        });
    }
    Ok("abi/include/policy_core.h is current".into())
}

/// Writes the header cbindgen generates into `abi/include/policy_core.h`.
///
/// # Errors
///
/// When cbindgen fails.
pub fn write_header(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let committed = committed_header(layout);
    generate_header(env, layout, &committed)?;
    Ok(format!("wrote {}", committed.display()))
}

fn committed_header(layout: &Layout) -> PathBuf {
    layout
        .root
        .join("abi")
        .join("include")
        .join("policy_core.h")
}

fn generate_header(env: &Env, layout: &Layout, out: &Path) -> Result<(), XtaskError> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|source| XtaskError::io("create", dir, source))?;
    }
    let abi = layout.root.join("abi");
    process::run(
        env.command(layout.cargo_installed("cbindgen"))
            .arg("--config")
            .arg(abi.join("cbindgen.toml"))
            .arg("--output")
            .arg(out)
            .arg(&abi),
    )
}

/// Builds the native library (debug), writes the vectors as C cases, compiles
/// `abi/hosts/c/test_vectors.c` against the header and library with `-Wall -Wextra -Werror`,
/// and runs it: every case as expected, bad input refused, decisions per second.
///
/// # Errors
///
/// When a build step or the C test fails.
pub fn test_c(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    process::run(
        env.cargo()
            .args(["build", "-p", "policy-core-abi", "--lib"]),
    )?;
    let cases = out_dir(layout).join("c-cases");
    process::run(
        env.cargo()
            .args([
                "run",
                "-q",
                "-p",
                "policy-core-abi",
                "--example",
                "vector_cases",
                "--",
            ])
            .arg(&cases),
    )?;
    let lib_dir = layout.target_dir.join("debug");
    let binary = out_dir(layout).join("test_vectors");
    process::run(
        env.command("cc")
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(layout.root.join("abi").join("include"))
            .arg(
                layout
                    .root
                    .join("abi")
                    .join("hosts")
                    .join("c")
                    .join("test_vectors.c"),
            )
            .arg("-L")
            .arg(&lib_dir)
            .arg("-lpolicy_core_abi")
            .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
            .arg("-o")
            .arg(&binary),
    )?;
    let report = process::output(env.command(&binary).arg(&cases))?;
    let example = embed_example(env, layout, &lib_dir)?;
    Ok(format!("{}; {example}", report.trim()))
}

/// Compiles and runs `abi/hosts/c/embed.c`, the C example of policy-core/README.md: it must
/// print an allowed verdict.
fn embed_example(env: &Env, layout: &Layout, lib_dir: &Path) -> Result<Outcome, XtaskError> {
    let binary = out_dir(layout).join("embed");
    let abi = layout.root.join("abi");
    process::run(
        env.command("cc")
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(abi.join("include"))
            .arg(abi.join("hosts").join("c").join("embed.c"))
            .arg("-L")
            .arg(lib_dir)
            .arg("-lpolicy_core_abi")
            .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
            .arg("-o")
            .arg(&binary),
    )?;
    let printed = process::output(&mut env.command(&binary))?;
    if !printed.contains(r#""outcome":"allow""#) {
        return Err(XtaskError::Tool {
            tool: "abi/hosts/c/embed.c".into(),
            problem: format!("the README example should allow Ada, but printed:\n{printed}"),
        });
    }
    Ok("the README's C example allows Ada".into())
}

/// A virtual environment under the target directory with the Python host installed from the
/// repository (`pip install ./abi/hosts/python`, which pulls `wasmtime` from PyPI); its
/// interpreter.
///
/// # Errors
///
/// When Python or pip fail.
pub fn python_host(env: &Env, layout: &Layout) -> Result<PathBuf, XtaskError> {
    let venv = layout.target_dir.join("py-venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        process::run(env.command("python3").args(["-m", "venv"]).arg(&venv))?;
        // `wheel` lets pip build the local package with the venv's own setuptools.
        process::run(env.command(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "wheel",
        ]))?;
    }
    // The venv's own setuptools builds the package: no download per run.
    process::run(
        env.command(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("--no-build-isolation")
            .arg(python_dir(layout)),
    )?;
    Ok(python)
}

fn python_dir(layout: &Layout) -> PathBuf {
    layout.root.join("abi").join("hosts").join("python")
}

/// The Python host's tests against the module, from the venv of [`python_host`]: every
/// vector, bad input, objects in and out.
///
/// # Errors
///
/// When Python, pip or a test fails.
pub fn test_python(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let python = python_host(env, layout)?;
    // From the target directory, so `import edge_access` is the installed package.
    let env = host_env(env, layout);
    process::run(
        env.command(&python)
            .current_dir(&layout.target_dir)
            .args(["-m", "unittest", "discover", "-s"])
            .arg(python_dir(layout).join("tests")),
    )?;
    Ok("abi/hosts/python: installed with pip, every vector decided".into())
}

#[cfg(test)]
mod tests {
    use super::world_items;

    #[test]
    fn reads_the_components_own_world() {
        let wit = "package root:component;\n\nworld root {\n  import wasi:io/streams@0.2.0;\n  \
                   export edge-access:policy/engine@1.0.0;\n}\npackage edge-access:policy@1.0.0 {\n}\n";
        assert_eq!(
            world_items(wit),
            [
                "import wasi:io/streams@0.2.0;",
                "export edge-access:policy/engine@1.0.0;"
            ]
        );
        assert!(world_items("package x;\n").is_empty());
    }
}
