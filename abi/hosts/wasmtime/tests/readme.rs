//! The examples of `policy-core/README.md` ("Embedding") for Rust + wasmtime run here: the
//! README's blocks are the regions between `// README: begin …` and `// README: end` below
//! (`abi/tests/readme.rs` checks that they match). They use `examples/config.json` and
//! `examples/request.json`, which Ada's request is allowed by.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test fails by panicking; the examples print as the README shows"
)]

use std::path::{Path, PathBuf};

type Error = Box<dyn std::error::Error>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// The built file at `var` (or under `target/policy-core-abi/`), or `None` with a note.
fn built(var: &str, name: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map_or_else(
        || root().join("target/policy-core-abi").join(name),
        PathBuf::from,
    );
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("EDGE_ACCESS_REQUIRE_E2E").as_deref() != Ok("1"),
        "{} is missing (cargo xtask test builds it)",
        path.display()
    );
    eprintln!(
        "SKIPPED: {} is missing; run `cargo xtask test`",
        path.display()
    );
    None
}

#[test]
fn core_module_example() -> Result<(), Error> {
    let Some(wasm_path) = built("EDGE_ACCESS_ABI_WASM", "policy_core.wasm") else {
        return Ok(());
    };
    let root = root();
    let (config, request) = (
        root.join("examples/config.json"),
        root.join("examples/request.json"),
    );
    // README: begin wasmtime
    use policy_core_wasmtime::{Limits, PolicyModule};

    let wasm = std::fs::read(&wasm_path)?; // the bytes of policy_core.wasm

    // Each call may run 50 million Wasm instructions and grow memory to 64 MiB: a hostile
    // document stops with HostError::OutOfFuel instead of spinning the host.
    let limits = Limits {
        fuel_per_call: 50_000_000,
        max_memory_bytes: 64 << 20,
    };
    let mut module = PolicyModule::new(&wasm, limits)?;
    let report = module.compile_report(&std::fs::read(&config)?)?;
    let Some(engine) = report["engine"].as_u64() else {
        // Every problem, with its JSON path, line and column.
        return Err(format!("the document does not load: {}", report["errors"]).into());
    };
    let engine = u32::try_from(engine)?;
    let result = module.decide(engine, &std::fs::read(&request)?)?;
    // {"ok": true, "verdict": {"outcome": "allow", "app": "admin", "policy": {…}, …}}
    let verdict = &result["verdict"];
    println!("{} by {}", verdict["outcome"], verdict["policy"]["id"]);
    module.free_engine(engine)?;
    // README: end
    assert_eq!(verdict["outcome"], "allow");
    assert_eq!(verdict["policy"]["id"], "engineers");
    Ok(())
}

#[test]
fn component_example() -> Result<(), Error> {
    let Some(component_path) = built("EDGE_ACCESS_ABI_COMPONENT", "policy_core.component.wasm")
    else {
        return Ok(());
    };
    let root = root();
    let document = std::fs::read_to_string(root.join("examples/config.json"))?;
    let request = std::fs::read_to_string(root.join("examples/request.json"))?;
    // README: begin component
    use policy_core_wasmtime::component::{Outcome, PolicyComponent};
    use policy_core_wasmtime::Limits;

    let wasm = std::fs::read(&component_path)?; // policy_core.component.wasm
    let mut host = PolicyComponent::new(&wasm, Limits::default())?;
    let engine = host
        .compile(&document)?
        .map_err(|problems| format!("the document does not load: {problems:?}"))?;
    match host.decide(engine, &request)? {
        Ok(verdict) if verdict.outcome == Outcome::Allow => {
            let policy = verdict.policy.and_then(|p| p.id);
            println!("allowed by {policy:?} for {:?}", verdict.session_duration);
        }
        Ok(verdict) => println!("refused: {:?}", verdict.outcome),
        Err(error) => println!("the request does not load: {error:?}"),
    }
    host.free(engine)?;
    // README: end
    let verdict = {
        let engine = host.compile(&document)?.map_err(|p| format!("{p:?}"))?;
        host.decide(engine, &request)?
            .map_err(|e| format!("{e:?}"))?
    };
    assert_eq!(verdict.outcome, Outcome::Allow);
    assert_eq!(
        verdict.policy.and_then(|p| p.id).as_deref(),
        Some("engineers")
    );
    Ok(())
}
