//! Runs every vector in `tests/vectors/` (document + requests + expected verdicts, or expected
//! load errors): natively, and under `wasm-bindgen-test` in Node — there also through the
//! wasm-bindgen API the JS package exports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use include_dir::{include_dir, Dir};
use policy_core::{Engine, Request};
use serde_json::Value;

static VECTORS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/tests/vectors");

/// Checks one file; returns the number of cases checked, or the failures.
fn check_file(name: &str, text: &str) -> Result<usize, Vec<String>> {
    let file: Value =
        serde_json::from_str(text).map_err(|e| vec![format!("{name}: bad JSON: {e}")])?;
    let document = serde_json::to_string(&file["document"]).unwrap();
    let mut failures = Vec::new();
    if let Some(expected) = file.get("expect_load_errors") {
        match Engine::from_json(&document) {
            Ok(_) => failures.push(format!("{name}: document loaded, expected errors")),
            Err(errors) => {
                for e in expected.as_array().expect("expect_load_errors is an array") {
                    let (path, contains) =
                        (e["path"].as_str().unwrap(), e["contains"].as_str().unwrap());
                    let found = errors
                        .errors()
                        .iter()
                        .any(|got| got.path == path && got.message.contains(contains));
                    if !found {
                        failures.push(format!(
                            "{name}: expected error at `{path}` containing `{contains}`, got:\n  {}",
                            errors.to_string().replace('\n', "\n  ")
                        ));
                    }
                }
            }
        }
        return if failures.is_empty() {
            Ok(1)
        } else {
            Err(failures)
        };
    }
    let engine = match Engine::from_json(&document) {
        Ok(engine) => engine,
        Err(errors) => return Err(vec![format!("{name}: document does not load:\n  {errors}")]),
    };
    let cases = file["cases"].as_array().expect("cases is an array");
    for case in cases {
        let case_name = format!("{name} / {}", case["name"].as_str().unwrap_or("?"));
        let request_text = serde_json::to_string(&case["request"]).unwrap();
        if let Some(expected) = case.get("expect_request_error") {
            let (path, contains) = (
                expected["path"].as_str().unwrap(),
                expected["contains"].as_str().unwrap(),
            );
            match Request::from_json(&request_text) {
                Ok(_) => failures.push(format!("{case_name}: request loaded, expected an error")),
                Err(errors) => {
                    if !errors
                        .errors()
                        .iter()
                        .any(|e| e.path == path && e.message.contains(contains))
                    {
                        failures.push(format!(
                            "{case_name}: expected request error at `{path}` containing `{contains}`, got: {errors}"
                        ));
                    }
                }
            }
            continue;
        }
        let request = match Request::from_json(&request_text) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{case_name}: request does not load: {e}"));
                continue;
            }
        };
        let verdict = match engine.evaluate(&request) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{case_name}: evaluation error: {e}"));
                continue;
            }
        };
        // The fast path must agree with the traced one.
        let decision = engine.decide(&request).unwrap();
        if decision.outcome != verdict.outcome {
            failures.push(format!("{case_name}: decide() and evaluate() disagree"));
        }
        let got = verdict.to_value();
        let expect = &case["expect"];
        let mut mismatch = Vec::new();
        if got["outcome"] != expect["outcome"] {
            mismatch.push(format!(
                "outcome {} (expected {})",
                got["outcome"], expect["outcome"]
            ));
        }
        let got_policy = match &got["policy"] {
            Value::Null => Value::Null,
            p if !p["id"].is_null() => p["id"].clone(),
            p => p["name"].clone(),
        };
        if expect.get("policy").is_some() && got_policy != expect["policy"] {
            mismatch.push(format!(
                "policy {got_policy} (expected {})",
                expect["policy"]
            ));
        }
        if let Some(d) = expect.get("session_duration") {
            if &got["session_duration"] != d {
                mismatch.push(format!(
                    "session_duration {} (expected {d})",
                    got["session_duration"]
                ));
            }
        }
        if let Some(needles) = expect.get("trace_contains").and_then(Value::as_array) {
            let trace = got["trace"].to_string();
            for n in needles {
                if !trace.contains(n.as_str().unwrap()) {
                    mismatch.push(format!("trace lacks {n}"));
                }
            }
        }
        if !mismatch.is_empty() {
            failures.push(format!(
                "{case_name}: {}\n  trace: {}",
                mismatch.join("; "),
                got["trace"]
            ));
        }
        #[cfg(all(target_arch = "wasm32", feature = "wasm"))]
        {
            // The same case through the exported JS API.
            let js = policy_core::PolicyEngine::new(&document)
                .unwrap_or_else(|_| panic!("{case_name}: JS API rejects the document"));
            let json = js
                .evaluate(&request_text)
                .unwrap_or_else(|_| panic!("{case_name}: JS API evaluate failed"));
            let js_verdict: Value = serde_json::from_str(&json).unwrap();
            if js_verdict != got {
                failures.push(format!("{case_name}: JS API verdict differs"));
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
