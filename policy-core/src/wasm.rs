//! The JavaScript API: compile a document once, evaluate many requests, JSON in and out.

use alloc::string::{String, ToString};

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsError;

use crate::{Engine, Request};

/// A parsed request (see [`PolicyEngine::prepare`]).
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
    /// Compiles `document` (JSON text). Throws an `Error` listing every problem with its path.
    #[wasm_bindgen(constructor)]
    pub fn new(document: &str) -> Result<PolicyEngine, JsError> {
        Engine::from_json(document)
            .map(|engine| PolicyEngine { engine })
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Evaluates `request` (JSON text) and returns the verdict as JSON text. Throws an `Error`
    /// when the request does not load or a work limit is hit.
    pub fn evaluate(&self, request: &str) -> Result<String, JsError> {
        let request = Request::from_json(request).map_err(|e| JsError::new(&e.to_string()))?;
        let verdict = self
            .engine
            .evaluate(&request)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(verdict.to_json())
    }

    /// Evaluates `request` and returns only the outcome (`allow`, `block`, …), without building
    /// a trace: the fast path.
    pub fn decide(&self, request: &str) -> Result<String, JsError> {
        let request = Request::from_json(request).map_err(|e| JsError::new(&e.to_string()))?;
        let decision = self
            .engine
            .decide(&request)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(decision.outcome.as_str().to_string())
    }

    /// Parses `request` once, for [`PolicyEngine::decide_request`] (a host that decides the
    /// same request against several engines, or measures the decision alone).
    pub fn prepare(&self, request: &str) -> Result<PolicyRequest, JsError> {
        Request::from_json(request)
            .map(|request| PolicyRequest { request })
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Decides a prepared request; returns the outcome.
    #[wasm_bindgen(js_name = decideRequest)]
    pub fn decide_request(&self, request: &PolicyRequest) -> Result<String, JsError> {
        let decision = self
            .engine
            .decide(&request.request)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(decision.outcome.as_str().to_string())
    }

    /// The document's warnings (risky but valid configuration), one per line.
    pub fn warnings(&self) -> String {
        let mut out = String::new();
        for w in self.engine.warnings() {
            out.push_str(&w.to_string());
            out.push('\n');
        }
        out
    }
}
