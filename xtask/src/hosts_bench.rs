//! The "policy-core in every runtime" part of `cargo xtask bench`: the workload of the
//! policy-core benchmark decided natively (Rust), by the C ABI, by `policy_core.wasm` under
//! wasmtime and from Python, and by the component under wasmtime's component model; module
//! sizes; the project's policy vectors run as `edge-access policy test` natively and in Wasm
//! (Node). Writes the section of BENCHMARKS.md; asserts no timing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::abi;
use crate::error::XtaskError;
use crate::fuzz;
use crate::layout::Layout;
use crate::policy_js;
use crate::process::{self, Env};
use crate::size;
use crate::steps::{StepFailure, Steps};

/// The section of BENCHMARKS.md this writes.
const HEADING: &str = "## policy-core in every runtime";

/// What one host measured (one JSON object printed by its measure program).
#[derive(Debug, Clone, PartialEq)]
struct Host {
    name: String,
    load_ms: Option<f64>,
    compile_ms: f64,
    memory_per_engine_bytes: f64,
    decide_us: f64,
    decisions_per_s: f64,
}

impl Host {
    fn parse(line: &str) -> Result<Host, XtaskError> {
        let number = |key: &str| {
            field(line, key)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| XtaskError::Tool {
                    tool: "measure".into(),
                    problem: format!("no number `{key}` in `{line}`"),
                })
        };
        Ok(Host {
            name: field(line, "host").unwrap_or_default().to_owned(),
            load_ms: field(line, "load_ms").and_then(|v| v.parse().ok()),
            compile_ms: number("compile_ms")?,
            memory_per_engine_bytes: number("memory_per_engine_bytes")?,
            decide_us: number("decide_us")?,
            decisions_per_s: number("decisions_per_s")?,
        })
    }
}

/// The value of `"key"` in a flat JSON object printed by a measure program: a string's text,
/// or a number's (or `null`'s) spelling. Enough for those objects (no escapes, no nesting).
fn field<'a>(object: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let rest = object.get(object.find(&quoted)? + quoted.len()..)?;
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    if let Some(text) = rest.strip_prefix('"') {
        return text.get(..text.find('"')?);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest.get(..end).map(str::trim)
}

/// The workload as two files, for hosts that read files: `(document, request)`.
fn workload_files(env: &Env, layout: &Layout) -> Result<(PathBuf, PathBuf), XtaskError> {
    let dir = abi::out_dir(layout).join("bench");
    std::fs::create_dir_all(&dir).map_err(|source| XtaskError::io("create", &dir, source))?;
    let mut files = Vec::new();
    for part in ["document", "request"] {
        let json = process::output(
            env.cargo()
                .args(["run", "--quiet", "-p", "policy-core", "--example"])
                .args(["workload", "--"])
                .arg(format!("realistic-{part}")),
        )?;
        let file = dir.join(format!("{part}.json"));
        std::fs::write(&file, json).map_err(|source| XtaskError::io("write", &file, source))?;
        files.push(file);
    }
    let request = files.pop().unwrap_or_default();
    let document = files.pop().unwrap_or_default();
    Ok((document, request))
}

/// Native Rust, the core module and the component under wasmtime (one program, release).
fn measure_wasmtime(
    env: &Env,
    layout: &Layout,
    (document, request): (&Path, &Path),
) -> Result<Vec<Host>, XtaskError> {
    let output = process::output(
        env.cargo()
            .args(["run", "--quiet", "--release", "-p", "policy-core-wasmtime"])
            .args(["--example", "measure", "--"])
            .arg(abi::module_path(layout))
            .arg(abi::component_path(layout))
            .arg(document)
            .arg(request),
    )?;
    output.lines().map(Host::parse).collect()
}

/// The native library (release) from C: `abi/hosts/c/measure.c`.
fn measure_c(
    env: &Env,
    layout: &Layout,
    (document, request): (&Path, &Path),
) -> Result<Host, XtaskError> {
    process::run(
        env.cargo()
            .args(["build", "--release", "-p", "policy-core-abi", "--lib"]),
    )?;
    let lib_dir = layout.target_dir.join("release");
    let binary = abi::out_dir(layout).join("measure_c");
    let root = &layout.root;
    process::run(
        env.command("cc")
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(root.join("abi").join("include"))
            .arg(root.join("abi").join("hosts").join("c").join("measure.c"))
            .arg("-L")
            .arg(&lib_dir)
            .arg("-lpolicy_core_abi")
            .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
            .arg("-o")
            .arg(&binary),
    )?;
    // `cargo xtask` runs under `cargo run`, whose LD_LIBRARY_PATH names target/debug: the
    // loader would take the debug library from there before the rpath's release one.
    Host::parse(
        process::output(
            env.command(&binary)
                .env_remove("LD_LIBRARY_PATH")
                .arg(document)
                .arg(request),
        )?
        .trim(),
    )
}

/// `policy_core.wasm` from Python: `abi/hosts/python/measure.py` in the host's venv.
fn measure_python(
    env: &Env,
    layout: &Layout,
    (document, request): (&Path, &Path),
) -> Result<Host, XtaskError> {
    let python = abi::python_host(env, layout)?;
    let script = layout
        .root
        .join("abi")
        .join("hosts")
        .join("python")
        .join("measure.py");
    let output = process::output(
        abi::host_env(env, layout)
            .command(&python)
            .current_dir(&layout.target_dir)
            .arg(script)
            .arg(document)
            .arg(request),
    )?;
    Host::parse(output.trim())
}

/// `edge-access policy test policy-core/tests/vectors --format json`, release build: cases and
/// the command's own `seconds` (median of 7), and its wall time with process start.
fn policy_test_native(env: &Env, layout: &Layout) -> Result<(f64, f64, f64), XtaskError> {
    process::run(env.cargo().args([
        "build",
        "--release",
        "-p",
        "edge-access",
        "--bin",
        "edge-access",
    ]))?;
    let binary = layout.target_dir.join("release").join("edge-access");
    let vectors = layout
        .root
        .join("policy-core")
        .join("tests")
        .join("vectors");
    let mut inside = Vec::new();
    let mut wall = Vec::new();
    let mut cases = 0.0;
    for _ in 0..7 {
        let started = Instant::now();
        let report = process::output(
            env.command(&binary)
                .args(["policy", "test"])
                .arg(&vectors)
                .args(["--format", "json"]),
        )?;
        wall.push(started.elapsed().as_secs_f64() * 1e3);
        let passed: f64 = top_level_number(&report, "passed")?;
        let failed: f64 = top_level_number(&report, "failed")?;
        if failed > 0.0 {
            return Err(XtaskError::Tool {
                tool: "edge-access policy test".into(),
                problem: format!("{failed} vector cases failed"),
            });
        }
        cases = passed;
        inside.push(top_level_number(&report, "seconds")? * 1e3);
    }
    Ok((cases, median(&mut inside), median(&mut wall)))
}

/// A top-level number of `policy test --format json` (pretty-printed: the line
/// `  "passed": 502,`, indented by two spaces exactly).
fn top_level_number(report: &str, key: &str) -> Result<f64, XtaskError> {
    let prefix = format!("  \"{key}\":");
    report
        .lines()
        .find(|line| line.starts_with(&prefix))
        .and_then(|line| field(line, key))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| XtaskError::Tool {
            tool: "edge-access policy test".into(),
            problem: format!("no `{key}` in its JSON report"),
        })
}

/// `node policy-core/js/suite-bench.mjs`: cases, one pass's time (median of 7) and the whole
/// command's wall time (Node's start, the package's load and 8 passes).
fn policy_test_wasm(env: &Env, layout: &Layout) -> Result<(f64, f64, f64), XtaskError> {
    let script = layout.policy_core_js_dir().join("suite-bench.mjs");
    let started = Instant::now();
    let output = process::output(
        policy_js::package_env(env, layout)
            .command("node")
            .arg(script),
    )?;
    let wall = started.elapsed().as_secs_f64() * 1e3;
    let line = output.trim();
    if !line.contains("\"failures\":[]") {
        return Err(XtaskError::Tool {
            tool: "suite-bench.mjs".into(),
            problem: format!("vector cases failed in Wasm: {line}"),
        });
    }
    let number = |key: &str| {
        field(line, key)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| XtaskError::Tool {
                tool: "suite-bench.mjs".into(),
                problem: format!("no `{key}` in `{line}`"),
            })
    };
    Ok((number("cases")?, number("pass_ms")?, wall))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Runs every measurement (after `bench` built the JS package) and writes the section.
///
/// # Errors
///
/// The step that failed.
pub fn bench(env: &Env, layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    let mut files = (PathBuf::new(), PathBuf::new());
    steps.run("policy-core hosts: workload files", || {
        files = workload_files(env, layout)?;
        Ok(format!("{}, {}", files.0.display(), files.1.display()))
    })?;
    let mut sizes = Vec::new();
    steps.run("policy-core ABI module (policy_core.wasm)", || {
        let size = abi::build_module(env, layout)?;
        sizes.push(size.clone());
        Ok(size)
    })?;
    steps.run("policy-core component (policy_core.component.wasm)", || {
        let size = abi::build_component(env, layout)?;
        sizes.push(size.clone());
        Ok(size)
    })?;
    steps.run("policy-core npm pack", || {
        let packed = policy_js::pack(env, layout)?;
        sizes.push(packed.clone());
        Ok(packed)
    })?;
    let js_wasm = layout
        .policy_core_package_dir()
        .join("wasm")
        .join("policy_core_bg.wasm");
    sizes.push(size::describe(env, &js_wasm).map_err(|error| StepFailure {
        step: "policy-core hosts: sizes".into(),
        error,
    })?);
    let workload = (files.0.as_path(), files.1.as_path());
    let mut hosts = Vec::new();
    steps.run("policy-core hosts: Rust native and wasmtime", || {
        hosts.extend(measure_wasmtime(env, layout, workload)?);
        Ok(summary(&hosts))
    })?;
    steps.run("policy-core hosts: C", || {
        hosts.push(measure_c(env, layout, workload)?);
        Ok(summary(hosts.get(hosts.len() - 1..).unwrap_or_default()))
    })?;
    steps.run("policy-core hosts: Python", || {
        hosts.push(measure_python(env, layout, workload)?);
        Ok(summary(hosts.get(hosts.len() - 1..).unwrap_or_default()))
    })?;
    let mut native = (0.0, 0.0, 0.0);
    steps.run("policy test over the vectors, native", || {
        native = policy_test_native(env, layout)?;
        Ok(format!("{} cases in {:.1} ms", native.0, native.1))
    })?;
    let mut wasm = (0.0, 0.0, 0.0);
    steps.run("policy test over the vectors, Wasm in Node", || {
        wasm = policy_test_wasm(env, layout)?;
        Ok(format!("{} cases in {:.1} ms", wasm.0, wasm.1))
    })?;
    steps.run("policy-core hosts: BENCHMARKS.md", || {
        let report = layout.root.join("BENCHMARKS.md");
        let text = section(env, &hosts, &sizes, native, wasm);
        fuzz::write_section(&report, &text)?;
        Ok(format!("wrote `{HEADING}` in {}", report.display()))
    })
}

fn summary(hosts: &[Host]) -> String {
    hosts
        .iter()
        .map(|h| format!("{:.2} µs/decision", h.decide_us))
        .collect::<Vec<_>>()
        .join(", ")
}

fn section(
    env: &Env,
    hosts: &[Host],
    sizes: &[String],
    native: (f64, f64, f64),
    wasm: (f64, f64, f64),
) -> String {
    let probe = |program: &str, args: &[&str]| {
        process::probe(env.command(program).args(args))
            .and_then(|text| text.lines().next().map(str::to_owned))
            .unwrap_or_else(|| "?".into())
    };
    let mut text = format!(
        "{HEADING}\n\n\
         Command: `cargo xtask bench` (`xtask/src/hosts_bench.rs`): \
         `cargo run --release -p policy-core-wasmtime --example measure -- MODULE COMPONENT \
         DOCUMENT REQUEST` (native Rust, `policy_core.wasm` and `policy_core.component.wasm` \
         under wasmtime), `abi/hosts/c/measure.c` against the release `libpolicy_core_abi`, \
         `python abi/hosts/python/measure.py DOCUMENT REQUEST` (wasmtime from PyPI), then \
         `edge-access policy test policy-core/tests/vectors --format json` (release) and \
         `node policy-core/js/suite-bench.mjs`. Run on {date}: {cpu}, {cores} cores shared with \
         other builds (load average {load} at the end), {rustc}, {python}, Node {node}, the \
         tree at commit {commit}. One run; compare within the table.\n\n\
         Workload: the realistic document and request of the policy-core benchmark above \
         (`policy-core/examples/workload.rs`: 50 apps, 24 policies on the measured one, a \
         10,000-group directory, a user with 150 groups, allowed by the 21st policy). A decision \
         is the host's whole call: the request as JSON text in, the verdict out without a trace \
         (as JSON text for the ABI, as typed values for the component, as a `dict` in Python, as \
         a struct natively). Compile is the realistic document, median of 10; memory per engine \
         is what 10 compiled engines add, divided by 10 (the Wasm hosts: linear memory, which \
         grows in 64 KiB pages and never shrinks; native Rust: bytes allocated; C: glibc's heap \
         in use); load is compiling the Wasm to machine code and instantiating it. Decisions: \
         median of 5 samples after a warm-up.\n\n\
         | host | load | compile the realistic document | memory per engine | µs per decision | \
         decisions/s | vs native Rust |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        date = fuzz::utc(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ),
        cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into()),
        cores = std::thread::available_parallelism().map_or(0, usize::from),
        load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "?".into()),
        rustc = probe("rustc", &["--version"]),
        python = probe("python3", &["--version"]),
        node = probe("node", &["--version"]),
        commit = probe("git", &["rev-parse", "--short", "HEAD"]),
    );
    let native_us = hosts.first().map_or(0.0, |h| h.decide_us);
    for host in hosts {
        let ratio = if native_us > 0.0 {
            host.decide_us / native_us
        } else {
            0.0
        };
        let _ = writeln!(
            text,
            "| {} | {} | {:.1} ms | {} | {:.2} µs | {:.0} | {ratio:.2}× |",
            host.name,
            host.load_ms
                .map_or_else(|| "—".to_owned(), |ms| format!("{ms:.0} ms")),
            host.compile_ms,
            mib(host.memory_per_engine_bytes),
            host.decide_us,
            host.decisions_per_s,
        );
    }
    text.push_str(
        "\nReading the table: every host runs the same engine, so the differences are the \
         crossing. The ABI copies the request in, and the verdict comes back as JSON that the \
         module writes and the host parses; the component's verdict crosses as typed values \
         (lifted by the canonical ABI), which is why it is the faster Wasm host. The C host calls \
         the same functions natively, so its cost over native Rust is the verdict's JSON. \
         Python pays wasmtime-py's per-call cost on the seven calls of a decision (allocate, \
         write, decide, free the input, read the result's pointer and length, free it) and \
         `json.loads`. Wasm memory per engine is linear memory grown by the allocator (whole \
         pages, slack included), so it reads about twice the native heap.\n",
    );
    let _ = write!(
        text,
        "\nSizes (raw, gzip -9): {}.\n\n\
         ### `edge-access policy test` over the project's vectors\n\n\
         The {cases} cases of the {files} vector files in `policy-core/tests/vectors/` (a file \
         whose document must not load counts as one case): natively, `edge-access policy test \
         … --format json` (release build; its own `seconds`, median of 7 runs); in Wasm, the \
         same checks (outcome, deciding policy, session, trace) through the npm package in Node \
         (`policy-core/js/suite-bench.mjs`; one pass, median of 7, after one more).\n\n\
         | runner | one pass over the vectors | cases/s | whole command, wall clock |\n\
         |---|---:|---:|---:|\n\
         | native (`edge-access policy test`) | {:.1} ms | {:.0} | {:.0} ms (median of 7) |\n\
         | Wasm in Node 20 (`@edge-access/policy-core`) | {:.1} ms | {:.0} | {:.0} ms (Node's start, the package's load, 8 passes) |\n",
        sizes.join("; "),
        native.1,
        per_second(native.0, native.1),
        native.2,
        wasm.1,
        per_second(wasm.0, wasm.1),
        wasm.2,
        cases = native.0,
        files = std::fs::read_dir(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("policy-core")
                .join("tests")
                .join("vectors")
        )
        .map_or(0, |dir| dir.filter_map(Result::ok).count()),
    );
    text
}

fn per_second(cases: f64, ms: f64) -> f64 {
    if ms > 0.0 {
        cases / ms * 1e3
    } else {
        0.0
    }
}

fn mib(bytes: f64) -> String {
    if bytes >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
    } else {
        format!("{:.0} KiB", bytes / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{field, Host};

    #[test]
    fn reads_the_measure_programs_objects() {
        let rust = r#"{"host":"Rust, native","load_ms":null,"compile_ms":5.5,"memory_per_engine_bytes":1024,"decide_us":17.25,"decisions_per_s":57971.0}"#;
        let python = r#"{"host": "Python", "load_ms": 80.1, "compile_ms": 20, "memory_per_engine_bytes": 65536, "decide_us": 90.5, "decisions_per_s": 11049}"#;
        let parsed = Host::parse(rust).unwrap_or_else(|e| unreachable_host(&e.to_string()));
        assert_eq!(parsed.name, "Rust, native");
        assert_eq!(parsed.load_ms, None);
        assert!((parsed.decide_us - 17.25).abs() < 1e-9);
        let parsed = Host::parse(python).unwrap_or_else(|e| unreachable_host(&e.to_string()));
        assert_eq!(parsed.load_ms, Some(80.1));
        assert!((parsed.compile_ms - 20.0).abs() < 1e-9);
        assert_eq!(field(r#"{"a": 1}"#, "b"), None);
        assert!(Host::parse(r#"{"host": "x"}"#).is_err());
        let report = "{\n  \"files\": [{\n    \"passed\": true\n  }],\n  \"passed\": 502,\n  \"seconds\": 0.05\n}";
        assert_eq!(super::top_level_number(report, "passed").ok(), Some(502.0));
        assert_eq!(super::top_level_number(report, "seconds").ok(), Some(0.05));
    }

    fn unreachable_host(why: &str) -> Host {
        panic!("{why}")
    }
}
