//! Compile time, memory per engine and decisions per second of the policy engine natively (for
//! comparison), as `policy_core.wasm` under wasmtime, and as the component under wasmtime's
//! component model — on the workload of `cargo xtask bench` (`policy-core/examples/workload.rs`).
//! `cargo xtask bench` runs it; it prints one JSON object per host, and never asserts timings.
//!
//! usage: cargo run --release -p policy-core-wasmtime --example measure --
//!        MODULE COMPONENT DOCUMENT REQUEST
#![allow(
    unsafe_code,
    reason = "a counting global allocator measures native memory per engine"
)]
#![allow(
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "it prints its measurements, as ratios of counts"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use policy_core_wasmtime::component::PolicyComponent;
use policy_core_wasmtime::{Limits, PolicyModule};
use serde_json::{json, Value};

/// The system allocator, counting the bytes in use while [`COUNTING`] is on: native memory per
/// engine. Off while decisions are timed, so they pay one relaxed load per allocation, no more.
struct Counting;

/// Signed: memory allocated before counting began may be freed while it counts.
static IN_USE: AtomicIsize = AtomicIsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            IN_USE.fetch_add(signed(layout.size()), Ordering::Relaxed);
        }
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            IN_USE.fetch_sub(signed(layout.size()), Ordering::Relaxed);
        }
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            IN_USE.fetch_add(signed(new_size), Ordering::Relaxed);
            IN_USE.fetch_sub(signed(layout.size()), Ordering::Relaxed);
        }
        // SAFETY: forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Engines compiled (and kept) to measure compile time and memory per engine.
const ENGINES: usize = 10;
/// Decisions per sample, and samples (the median is reported).
const ROUNDS: u32 = 5_000;
const SAMPLES: usize = 5;

type Error = Box<dyn std::error::Error>;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// The median time per call of `call`, over [`SAMPLES`] samples of [`ROUNDS`] calls, after a
/// warm-up.
fn per_decision(mut call: impl FnMut() -> Result<(), Error>) -> Result<Duration, Error> {
    for _ in 0..ROUNDS / 10 {
        call()?;
    }
    let mut samples = Vec::new();
    for _ in 0..SAMPLES {
        let started = Instant::now();
        for _ in 0..ROUNDS {
            call()?;
        }
        samples.push(started.elapsed() / ROUNDS);
    }
    Ok(median(samples))
}

fn report(
    host: &str,
    load: Option<Duration>,
    compile: Duration,
    memory_per_engine: usize,
    decide: Duration,
) -> Value {
    json!({
        "host": host,
        "load_ms": load.map(|d| d.as_secs_f64() * 1e3),
        "compile_ms": compile.as_secs_f64() * 1e3,
        "memory_per_engine_bytes": memory_per_engine,
        "decide_us": decide.as_secs_f64() * 1e6,
        "decisions_per_s": 1.0 / decide.as_secs_f64(),
    })
}

fn native(document: &str, request: &str) -> Result<Value, Error> {
    // Counting from here: what the engines allocate and keep (their temporaries come and go).
    COUNTING.store(true, Ordering::Relaxed);
    let before = IN_USE.load(Ordering::Relaxed);
    let mut times = Vec::new();
    let mut engines = Vec::new();
    for _ in 0..ENGINES {
        let started = Instant::now();
        let engine = policy_core::Engine::from_json(document).map_err(|e| e.to_string())?;
        times.push(started.elapsed());
        engines.push(engine);
    }
    let grown = IN_USE.load(Ordering::Relaxed).saturating_sub(before);
    let memory = usize::try_from(grown).unwrap_or(0) / ENGINES;
    COUNTING.store(false, Ordering::Relaxed);
    let engine = engines.first().ok_or("no engine")?;
    let decide = per_decision(|| {
        let request = policy_core::Request::from_json(request).map_err(|e| e.to_string())?;
        let decision = engine.decide(&request).map_err(|e| e.to_string())?;
        std::hint::black_box(decision.outcome);
        Ok(())
    })?;
    Ok(report(
        "Rust, native (`Engine::decide`, request JSON parsed each time)",
        None,
        median(times),
        memory,
        decide,
    ))
}

fn module(wasm: &[u8], document: &str, request: &str) -> Result<Value, Error> {
    let started = Instant::now();
    let mut host = PolicyModule::new(wasm, Limits::default())?;
    let load = started.elapsed();
    let before = host.memory_bytes();
    let mut times = Vec::new();
    let mut engines = Vec::new();
    for _ in 0..ENGINES {
        let started = Instant::now();
        engines.push(
            host.compile(document.as_bytes())?
                .ok_or("the document does not load")?,
        );
        times.push(started.elapsed());
    }
    let memory = host.memory_bytes().saturating_sub(before) / ENGINES;
    let engine = *engines.first().ok_or("no engine")?;
    let decide = per_decision(|| {
        let verdict = host.decide(engine, request.as_bytes())?;
        if verdict.pointer("/verdict/outcome").and_then(Value::as_str) != Some("allow") {
            return Err(format!("the workload must be allowed: {verdict}").into());
        }
        Ok(())
    })?;
    Ok(report(
        "Rust + wasmtime, `policy_core.wasm` (ABI v1, JSON verdict out)",
        Some(load),
        median(times),
        memory,
        decide,
    ))
}

fn component(wasm: &[u8], document: &str, request: &str) -> Result<Value, Error> {
    let started = Instant::now();
    let mut host = PolicyComponent::new(wasm, Limits::default())?;
    let load = started.elapsed();
    let before = host.memory_bytes();
    let mut times = Vec::new();
    let mut engines = Vec::new();
    for _ in 0..ENGINES {
        let started = Instant::now();
        let engine = host
            .compile(document)?
            .map_err(|problems| format!("the document does not load: {problems:?}"))?;
        times.push(started.elapsed());
        engines.push(engine);
    }
    let memory = host.memory_bytes().saturating_sub(before) / ENGINES;
    let engine = *engines.first().ok_or("no engine")?;
    let decide = per_decision(|| {
        let verdict = host
            .decide(engine, request)?
            .map_err(|e| format!("{e:?}"))?;
        if policy_core_wasmtime::component::outcome_str(verdict.outcome) != "allow" {
            return Err("the workload must be allowed".into());
        }
        Ok(())
    })?;
    Ok(report(
        "Rust + wasmtime, `policy_core.component.wasm` (WIT, typed verdict out)",
        Some(load),
        median(times),
        memory,
        decide,
    ))
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [module_path, component_path, document, request] = args.as_slice() else {
        return Err("usage: measure MODULE COMPONENT DOCUMENT REQUEST".into());
    };
    let document = std::fs::read_to_string(document)?;
    let request = std::fs::read_to_string(request)?;
    println!("{}", native(&document, &request)?);
    println!(
        "{}",
        module(&std::fs::read(module_path)?, &document, &request)?
    );
    println!(
        "{}",
        component(&std::fs::read(component_path)?, &document, &request)?
    );
    Ok(())
}
