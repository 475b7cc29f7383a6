//! `policy_core.wasm` under wasmtime decides every project vector exactly as the native engine
//! does, and nothing a host passes makes it trap.
//!
//! Needs the module: `cargo xtask test` builds it first (into
//! `target/policy-core-abi/policy_core.wasm`, or where `EDGE_ACCESS_ABI_WASM` says). Without it
//! the tests say SKIPPED, unless `EDGE_ACCESS_REQUIRE_E2E=1` (as in `cargo xtask test`) makes
//! them fail.
#![expect(
    clippy::panic,
    clippy::print_stderr,
    reason = "test code: a failure panics; it reports on stderr"
)]

use std::path::PathBuf;

use include_dir::{include_dir, Dir};
use policy_core::suite::{DocumentSource, Expects, TestFile};
use policy_core::{Engine, Request};
use policy_core_wasmtime::{HostError, Limits, PolicyModule};

static VECTORS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../../policy-core/tests/vectors");

fn module_bytes() -> Option<Vec<u8>> {
    let path = std::env::var_os("EDGE_ACCESS_ABI_WASM").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../target/policy-core-abi/policy_core.wasm")
        },
        PathBuf::from,
    );
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if std::env::var("EDGE_ACCESS_REQUIRE_E2E").as_deref() == Ok("1") => {
            panic!("{}: {e} (cargo xtask test builds it)", path.display())
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: {}: {e}; run `cargo xtask test` to build it",
                path.display()
            );
            None
        }
    }
}

#[test]
fn every_vector_decides_as_native() {
    let Some(wasm) = module_bytes() else { return };
    let mut module = PolicyModule::new(&wasm, Limits::default()).unwrap();
    let mut cases = 0;
    for file in VECTORS.files() {
        let name = file.path().display().to_string();
        let test = TestFile::from_json(file.contents_utf8().unwrap()).unwrap();
        let DocumentSource::Inline(document) = &test.document else {
            panic!("{name}")
        };
        let native = Engine::from_json(document);
        let report = module.compile_report(document.as_bytes()).unwrap();
        match (&test.expects, &native) {
            (Expects::LoadErrors(_), Err(errors)) => {
                assert_eq!(report["ok"], false, "{name}");
                let wasm_errors: Vec<(String, String)> = report["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        (
                            e["path"].as_str().unwrap().into(),
                            e["message"].as_str().unwrap().into(),
                        )
                    })
                    .collect();
                let native_errors: Vec<(String, String)> = errors
                    .errors()
                    .iter()
                    .map(|e| (e.path.clone(), e.message.clone()))
                    .collect();
                assert_eq!(wasm_errors, native_errors, "{name}");
                cases += 1;
            }
            (Expects::Cases(list), Ok(engine)) => {
                let handle = u32::try_from(report["engine"].as_u64().expect(&name)).unwrap();
                for case in list {
                    let wasm = module.explain(handle, case.request.as_bytes()).unwrap();
                    let fast = module.decide(handle, case.request.as_bytes()).unwrap();
                    match Request::from_json(&case.request) {
                        Ok(request) => {
                            let verdict = engine.evaluate(&request).unwrap().to_value();
                            assert_eq!(wasm["verdict"], verdict, "{name} / {}", case.name);
                            assert_eq!(
                                fast["verdict"]["outcome"], verdict["outcome"],
                                "{name} / {}",
                                case.name
                            );
                            assert_eq!(
                                fast["verdict"]["policy"], verdict["policy"],
                                "{name} / {}",
                                case.name
                            );
                        }
                        Err(errors) => {
                            assert_eq!(wasm["error"]["kind"], "request", "{name} / {}", case.name);
                            assert_eq!(
                                wasm["error"]["errors"][0]["path"],
                                errors.errors()[0].path.as_str(),
                                "{name} / {}",
                                case.name
                            );
                        }
                    }
                    cases += 1;
                }
                assert!(module.free_engine(handle).unwrap());
            }
            _ => panic!("{name}: native and test file disagree"),
        }
    }
    assert!(cases >= 400, "{cases} cases");
    eprintln!("{cases} vector cases decided alike in wasmtime and natively");
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() & 0xff) as u8).collect()
    }
}

#[test]
fn nothing_a_host_passes_makes_it_trap() {
    let Some(wasm) = module_bytes() else { return };
    let mut module = PolicyModule::new(&wasm, Limits::default()).unwrap();
    let document = VECTORS
        .get_file("selector_email.json")
        .unwrap()
        .contents_utf8()
        .unwrap();
    let test = TestFile::from_json(document).unwrap();
    let DocumentSource::Inline(document) = &test.document else {
        panic!()
    };
    let engine = module.compile(document.as_bytes()).unwrap().unwrap();
    let mut random = Bytes(0x9e37_79b9_7f4a_7c15);
    for round in 0..2_000 {
        let len = (random.next() % 300) as usize;
        let mut input = random.take(len);
        if round % 3 == 0 {
            // Mostly-JSON garbage reaches deeper into the parsers.
            input = format!(
                r#"{{"app": "wiki.example.com/{}", "identity": {{"groups": ["{}"]}}}}"#,
                String::from_utf8_lossy(&input),
                String::from_utf8_lossy(&random.take(8))
            )
            .into_bytes();
        }
        let compiled = module.compile_report(&input).unwrap();
        assert!(compiled["ok"].is_boolean(), "round {round}");
        let decided = module.decide(engine, &input).unwrap();
        assert!(decided["ok"].is_boolean(), "round {round}");
        let unknown = module.decide(engine ^ 0x5a5a, &input).unwrap();
        assert_eq!(unknown["error"]["kind"], "unknown_engine");
    }
    // Ranges the host never allocated: refused, not read.
    let memory = u32::try_from(module.memory_bytes()).unwrap();
    for (ptr, len) in [
        (0, 10),
        (memory - 4, 100),
        (memory, 1),
        (u32::MAX - 2, 8),
        (8, u32::MAX),
    ] {
        let refused = module.decide_raw(engine, ptr, len).unwrap();
        assert_eq!(refused["ok"], false, "({ptr}, {len}): {refused}");
    }
    // Still serving.
    let ok = module
        .decide(engine, br#"{"app": "wiki.example.com/"}"#)
        .unwrap();
    assert_eq!(ok["ok"], true);
}

#[test]
fn a_hostile_document_runs_out_of_fuel_not_the_host() {
    let Some(wasm) = module_bytes() else { return };
    let limits = Limits {
        fuel_per_call: 2_000_000,
        ..Limits::default()
    };
    let mut module = PolicyModule::new(&wasm, limits).unwrap();
    let apps: Vec<String> = (0..5_000)
        .map(|i| format!(r#"{{"id": "a{i}", "name": "A", "domain": "a{i}.example.com", "aud": "x{i}", "policies": []}}"#))
        .collect();
    let document = format!(
        r#"{{"team_domain": "https://access.example.com", "identity_providers": [], "apps": [{}]}}"#,
        apps.join(",")
    );
    match module.compile_report(document.as_bytes()) {
        Err(HostError::OutOfFuel) => {}
        other => panic!("expected out of fuel, got {other:?}"),
    }
    // A fresh instance with the default limits compiles it.
    let mut module = PolicyModule::new(&wasm, Limits::default()).unwrap();
    assert!(module.compile(document.as_bytes()).unwrap().is_some());
}
