//! Memory per engine and decisions per second of `policy_core.wasm` under wasmtime.
//!
//! usage: cargo run --release -p policy-core-wasmtime --example measure -- MODULE DOCUMENT REQUEST
//! (e.g. target/policy-core-abi/policy_core.wasm examples/dev-config.json examples/request.json)
#![allow(clippy::print_stdout, reason = "it prints its measurements")]

use std::time::Instant;

use policy_core_wasmtime::{Limits, PolicyModule};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [module, document, request] = args.as_slice() else {
        return Err("usage: measure MODULE DOCUMENT REQUEST".into());
    };
    let wasm = std::fs::read(module)?;
    let document = std::fs::read(document)?;
    let request = std::fs::read(request)?;
    let mut host = PolicyModule::new(&wasm, Limits::default())?;
    let empty = host.memory_bytes();
    let engines = 20;
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..engines {
        handles.push(
            host.compile(&document)?
                .ok_or("the document does not load")?,
        );
    }
    let compile = started.elapsed() / engines;
    let per_engine = (host.memory_bytes() - empty) / engines as usize;
    let engine = *handles.first().ok_or("no engine")?;
    let rounds = 20_000u32;
    let started = Instant::now();
    for _ in 0..rounds {
        host.decide(engine, &request)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "wasmtime: {} KiB per engine ({} bytes of document), compile {:.2} ms, {:.0} decisions/s (JSON request in, JSON verdict out)",
        per_engine / 1024,
        document.len(),
        compile.as_secs_f64() * 1000.0,
        f64::from(rounds) / seconds
    );
    Ok(())
}
