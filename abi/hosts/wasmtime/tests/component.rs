//! `policy_core.component.wasm` (the WIT world `edge-access:policy/policy`) under wasmtime's
//! component model decides every project vector exactly as the native engine does.
//!
//! Needs the component: `cargo xtask test` builds it first (into
//! `target/policy-core-abi/policy_core.component.wasm`, or where `EDGE_ACCESS_ABI_COMPONENT`
//! says). Without it the tests say SKIPPED, unless `EDGE_ACCESS_REQUIRE_E2E=1` (as in
//! `cargo xtask test`) makes them fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "a test fails by panicking, and says SKIPPED on stderr"
)]

use std::path::PathBuf;

use include_dir::{include_dir, Dir};
use policy_core::suite::{DocumentSource, Expects, TestFile};
use policy_core::{Engine, Request};
use policy_core_wasmtime::component::{verdict_json, PolicyComponent, RequestError};
use policy_core_wasmtime::{HostError, Limits};

static VECTORS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../../policy-core/tests/vectors");

fn component_bytes() -> Option<Vec<u8>> {
    let path = std::env::var_os("EDGE_ACCESS_ABI_COMPONENT").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../target/policy-core-abi/policy_core.component.wasm")
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
    let Some(wasm) = component_bytes() else {
        return;
    };
    let mut host = PolicyComponent::new(&wasm, Limits::default()).unwrap();
    let mut cases = 0;
    for file in VECTORS.files() {
        let name = file.path().display().to_string();
        let test = TestFile::from_json(file.contents_utf8().unwrap()).unwrap();
        let DocumentSource::Inline(document) = &test.document else {
            panic!("{name}")
        };
        let native = Engine::from_json(document);
        let compiled = host.compile(document).unwrap();
        match (&test.expects, &native, compiled) {
            (Expects::LoadErrors(_), Err(errors), Err(problems)) => {
                let component: Vec<(String, String, String, Option<u32>)> = problems
                    .into_iter()
                    .map(|p| (p.path, p.kind, p.message, p.line))
                    .collect();
                let native: Vec<(String, String, String, Option<u32>)> = errors
                    .errors()
                    .iter()
                    .map(|e| {
                        let line = e
                            .position(document)
                            .and_then(|(line, _)| u32::try_from(line).ok());
                        (e.path.clone(), e.kind().into(), e.message.clone(), line)
                    })
                    .collect();
                assert_eq!(component, native, "{name}");
                cases += 1;
            }
            (Expects::Cases(list), Ok(engine), Ok(handle)) => {
                let warnings: Vec<(String, String)> = host
                    .warnings(handle)
                    .unwrap()
                    .into_iter()
                    .map(|w| (w.path, w.message))
                    .collect();
                let native_warnings: Vec<(String, String)> = engine
                    .warnings()
                    .iter()
                    .map(|w| (w.path.clone(), w.message.clone()))
                    .collect();
                assert_eq!(warnings, native_warnings, "{name}");
                for case in list {
                    let at = format!("{name} / {}", case.name);
                    let explained = host.explain(handle, &case.request).unwrap();
                    let decided = host.decide(handle, &case.request).unwrap();
                    match (Request::from_json(&case.request), explained, decided) {
                        (Ok(request), Ok(explained), Ok(decided)) => {
                            let native = engine.evaluate(&request).unwrap().to_value();
                            assert_eq!(verdict_json(&explained), native, "{at}");
                            let mut fast = verdict_json(&decided);
                            assert_eq!(fast["trace"], serde_json::json!([]), "{at}");
                            fast["trace"] = native["trace"].clone();
                            assert_eq!(fast, native, "{at}");
                        }
                        (
                            Err(errors),
                            Err(RequestError::Invalid(explained)),
                            Err(RequestError::Invalid(decided)),
                        ) => {
                            assert_eq!(explained[0].path, errors.errors()[0].path, "{at}");
                            assert_eq!(decided.len(), errors.errors().len(), "{at}");
                        }
                        (native, explained, decided) => panic!(
                            "{at}: native {:?}, component {explained:?} / {decided:?}",
                            native.is_ok()
                        ),
                    }
                    cases += 1;
                }
                host.free(handle).unwrap();
            }
            (_, native, compiled) => panic!(
                "{name}: test file, native ({}) and component ({}) disagree",
                native.is_ok(),
                compiled.is_ok()
            ),
        }
    }
    assert!(cases >= 400, "{cases} cases");
    eprintln!("{cases} vector cases decided alike by the component and natively");
}

#[test]
fn bad_requests_are_errors_and_the_instance_keeps_serving() {
    let Some(wasm) = component_bytes() else {
        return;
    };
    let mut host = PolicyComponent::new(&wasm, Limits::default()).unwrap();
    let Err(problems) = host
        .compile(r#"{"team_domain": "https://a.example.com", "apps": [{"id": 1}]}"#)
        .unwrap()
    else {
        panic!("a document with a wrong type loaded")
    };
    assert!(problems.len() >= 2, "{problems:?}");
    assert_eq!(problems[0].line, Some(1));
    let document = r#"{ "team_domain": "https://access.example.com", "identity_providers": [],
        "apps": [{ "id": "wiki", "name": "Wiki", "domain": "wiki.example.com", "aud": "a",
          "policies": [{ "name": "Staff", "decision": "allow",
                         "include": [{ "email_domain": { "domain": "example.com" } }] }] }] }"#;
    let engine = host.compile(document).unwrap().unwrap();
    for request in [
        "",
        "{",
        "[]",
        r#"{"app": 7}"#,
        r#"{"app": "wiki.example.com/", "ip": "999.1.1.1"}"#,
    ] {
        match host.decide(engine, request).unwrap() {
            Err(RequestError::Invalid(problems)) => assert!(!problems.is_empty(), "{request}"),
            other => panic!("{request}: {other:?}"),
        }
    }
    let allowed = host
        .decide(
            engine,
            r#"{"app": "wiki.example.com/", "identity": {"email": "ada@example.com"}}"#,
        )
        .unwrap()
        .unwrap();
    assert_eq!(verdict_json(&allowed)["outcome"], "allow");
    host.free(engine).unwrap();
    // A freed engine is gone: using it again is refused, not undefined.
    assert!(host.decide(engine, "{}").is_err());
}

#[test]
fn a_hostile_document_runs_out_of_fuel_not_the_host() {
    let Some(wasm) = component_bytes() else {
        return;
    };
    let limits = Limits {
        fuel_per_call: 2_000_000,
        ..Limits::default()
    };
    let mut host = PolicyComponent::new(&wasm, limits).unwrap();
    let apps: Vec<String> = (0..5_000)
        .map(|i| format!(r#"{{"id": "a{i}", "name": "A", "domain": "a{i}.example.com", "aud": "x{i}", "policies": []}}"#))
        .collect();
    let document = format!(
        r#"{{"team_domain": "https://access.example.com", "identity_providers": [], "apps": [{}]}}"#,
        apps.join(",")
    );
    match host.compile(&document) {
        Err(HostError::OutOfFuel) => {}
        other => panic!("expected out of fuel, got {other:?}"),
    }
    let mut host = PolicyComponent::new(&wasm, Limits::default()).unwrap();
    assert!(host.compile(&document).unwrap().is_ok());
}
