//! The JavaScript API under `@edge-access/policy-core`: compile a document once, evaluate many
//! requests, JSON text in and out.
//!
//! The package's JavaScript layer (`policy-core/js/package/lib/engine.js`) turns objects into
//! JSON text and verdicts back into objects. A document or request that does not load throws an
//! `Error` whose message is a JSON array of `{ "path", "message" }`, which that layer turns into
//! a `PolicyError`; an evaluation stopped by a work limit throws an `Error` with the reason
//! (text, never starting with `[`). Every entry point here takes a `JsValue` and
//! checks that it is a string, so a caller that passes anything else gets a `TypeError`, never
//! a trap inside the glue's string copy (`memory access out of bounds`), which would leave the
//! instance unusable.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsError, JsValue};

use crate::error::LoadErrors;
use crate::{Engine, Request};

#[wasm_bindgen]
extern "C" {
    /// JavaScript's `TypeError`: wrong input is a type error, as for built-in functions.
    #[wasm_bindgen(js_name = TypeError)]
    type TypeError;

    #[wasm_bindgen(constructor, js_class = "TypeError")]
    fn new(message: &str) -> TypeError;
}

/// A parsed request (see [`PolicyEngine::prepare_utf8`]).
#[wasm_bindgen]
#[derive(Debug)]
pub struct PolicyRequest {
    request: Request,
}

/// A compiled configuration document.
#[wasm_bindgen]
#[derive(Debug)]
pub struct PolicyEngine {
    engine: Engine,
}

#[wasm_bindgen]
impl PolicyEngine {
    /// Compiles `document` (JSON text). Throws an `Error` listing every problem with its path
    /// (as JSON, see the module docs), or a `TypeError` when `document` is not a string.
    #[wasm_bindgen(constructor)]
    pub fn new(document: JsValue) -> Result<PolicyEngine, JsValue> {
        let text = json_text(&document, "the document")?;
        Engine::from_json(&text)
            .map(|engine| PolicyEngine { engine })
            .map_err(|e| problems_error(&e))
    }

    /// Decides a prepared request; returns the outcome.
    #[wasm_bindgen(js_name = decideRequest)]
    pub fn decide_request(&self, request: &PolicyRequest) -> Result<String, JsValue> {
        let decision = self
            .engine
            .decide(&request.request)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(decision.outcome.as_str().to_string())
    }

    /// Evaluates `request` (JSON as UTF-8 bytes) and returns the verdict as JSON text. Throws
    /// an `Error` when the request does not load or a work limit is hit. The request comes as
    /// bytes because copying what `TextEncoder` wrote into Wasm memory is far cheaper than the
    /// glue's copy of a string (a JavaScript loop over its characters); the package's
    /// `evaluate`, `decide` and `prepare` take objects or text and encode them.
    #[wasm_bindgen(js_name = evaluateUtf8)]
    pub fn evaluate_utf8(&self, request: &[u8]) -> Result<String, JsValue> {
        let request = parse_request_utf8(request)?;
        let verdict = self
            .engine
            .evaluate(&request)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(verdict.to_json())
    }

    /// Evaluates `request` (JSON as UTF-8 bytes) and returns only the outcome (`allow`,
    /// `block`, …), without building a trace: the fast path.
    #[wasm_bindgen(js_name = decideUtf8)]
    pub fn decide_utf8(&self, request: &[u8]) -> Result<String, JsValue> {
        let request = parse_request_utf8(request)?;
        let decision = self
            .engine
            .decide(&request)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(decision.outcome.as_str().to_string())
    }

    /// Parses `request` (JSON as UTF-8 bytes) once, for [`PolicyEngine::decide_request`] (a
    /// host that decides the same request against several engines, or measures the decision
    /// alone).
    #[wasm_bindgen(js_name = prepareUtf8)]
    pub fn prepare_utf8(&self, request: &[u8]) -> Result<PolicyRequest, JsValue> {
        parse_request_utf8(request).map(|request| PolicyRequest { request })
    }

    /// The document's warnings (risky but valid configuration) as a JSON array of
    /// `{ "path", "message" }`.
    pub fn warnings(&self) -> String {
        let list = self
            .engine
            .warnings()
            .iter()
            .map(|w| {
                let mut entry = Map::new();
                entry.insert("path".into(), Value::String(w.path.clone()));
                entry.insert("message".into(), Value::String(w.message.clone()));
                Value::Object(entry)
            })
            .collect();
        Value::Array(list).to_string()
    }
}

fn parse_request_utf8(request: &[u8]) -> Result<Request, JsValue> {
    let text = core::str::from_utf8(request)
        .map_err(|_| JsValue::from(TypeError::new("the request must be UTF-8 text")))?;
    Request::from_json(text).map_err(|e| problems_error(&e))
}

/// `value` as a Rust string, or a `TypeError` naming what it is instead.
fn json_text(value: &JsValue, what: &str) -> Result<String, JsValue> {
    value.as_string().ok_or_else(|| {
        let found = if value.is_null() {
            String::from("null")
        } else {
            value
                .js_typeof()
                .as_string()
                .unwrap_or_else(|| String::from("something else"))
        };
        TypeError::new(&format!(
            "{what} must be JSON text (a string), found {found}"
        ))
        .into()
    })
}

/// The problems as the message of an `Error`: a JSON array of `{ "path", "message" }`, which
/// the package's JS layer parses into a `PolicyError`.
fn problems_error(errors: &LoadErrors) -> JsValue {
    let list: Vec<Value> = errors
        .errors()
        .iter()
        .map(|e| {
            let mut entry = Map::new();
            entry.insert("path".into(), Value::String(e.path.clone()));
            entry.insert("message".into(), Value::String(e.message.clone()));
            Value::Object(entry)
        })
        .collect();
    JsError::new(&Value::Array(list).to_string()).into()
}
