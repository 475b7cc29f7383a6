//! Runs every vector in `tests/vectors/` (document + requests + expected verdicts, or expected
//! load errors): natively, and under `wasm-bindgen-test` in Node — there also through the
//! wasm-bindgen API the JS package exports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use include_dir::{include_dir, Dir};
use policy_core::suite::{self, DocumentSource, Expects, TestFile};
use policy_core::Engine;

static VECTORS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/tests/vectors");

/// Checks one file with the same runner as `edge-access policy test`; returns the number of
/// cases checked, or the failures.
fn check_file(name: &str, text: &str) -> Result<usize, Vec<String>> {
    let file =
        TestFile::from_json(text).map_err(|e| vec![format!("{name}: not a test file: {e}")])?;
    let DocumentSource::Inline(document) = &file.document else {
        return Err(vec![format!("{name}: vectors carry their document inline")]);
    };
    let loaded = Engine::from_json(document);
    let cases = match &file.expects {
        Expects::LoadErrors(expected) => {
            let failures = suite::check_load_errors(loaded.as_ref(), expected);
            return if failures.is_empty() {
                Ok(1)
            } else {
                Err(failures
                    .into_iter()
                    .map(|f| format!("{name}: {f}"))
                    .collect())
            };
        }
        Expects::Cases(cases) => cases,
        _ => return Err(vec![format!("{name}: unknown expectations")]),
    };
    let engine = match loaded {
        Ok(engine) => engine,
        Err(errors) => return Err(vec![format!("{name}: document does not load:\n  {errors}")]),
    };
    let mut failures: Vec<String> = suite::check_hosts(&engine, &file.hosts)
        .into_iter()
        .map(|f| format!("{name}: {f}"))
        .collect();
    for case in cases {
        let result = suite::run_case(&engine, case);
        if !result.passed() {
            let trace = result
                .verdict
                .as_ref()
                .map(|v| v.trace.join("\n    "))
                .unwrap_or_default();
            failures.push(format!(
                "{name} / {}: {}\n  trace:\n    {trace}",
                case.name,
                result.failures.join("; ")
            ));
        }
        #[cfg(all(target_arch = "wasm32", feature = "wasm"))]
        if let Some(verdict) = &result.verdict {
            // The same case through the exported JS API.
            let js = policy_core::PolicyEngine::new(wasm_bindgen::JsValue::from_str(document))
                .unwrap_or_else(|_| panic!("{name} / {}: JS API rejects the document", case.name));
            let json = js
                .evaluate_utf8(case.request.as_bytes())
                .unwrap_or_else(|_| panic!("{name} / {}: JS API evaluate failed", case.name));
            let js_verdict: serde_json::Value = serde_json::from_str(&json).unwrap();
            if js_verdict != verdict.to_value() {
                failures.push(format!("{name} / {}: JS API verdict differs", case.name));
            }
        }
    }
    if failures.is_empty() {
        Ok(cases.len())
    } else {
        Err(failures)
    }
}

fn run_all() {
    let mut files = 0;
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = VECTORS
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort_by_key(|f| f.path().to_owned());
    for file in entries {
        files += 1;
        let name = file.path().display().to_string();
        match check_file(&name, file.contents_utf8().expect("vector files are UTF-8")) {
            Ok(n) => cases += n,
            Err(f) => failures.extend(f),
        }
    }
    assert!(
        files >= 40,
        "expected at least 40 vector files, found {files}"
    );
    assert!(
        failures.is_empty(),
        "{} vector failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{files} vector files, {cases} cases passed");
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn vectors() {
    run_all();
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
fn vectors() {
    run_all();
}
