//! The edge-access policy engine behind a stable ABI, for hosts without JavaScript: a core Wasm
//! module (`policy_core.wasm`, no imports) and the same functions as a native C library
//! (`libpolicy_core_abi`, header `include/policy_core.h`).
//!
//! JSON goes in and JSON comes out; engines and results are `u32` handles. Nothing a host
//! passes in — bytes that are not UTF-8 or not JSON, an unknown handle, a null pointer, on Wasm
//! a range outside memory — makes a call trap: every problem is an error result. A trap is a
//! bug. The contract is written down in `policy-core/ABI.md`.
//!
//! Design choice: results are handles to byte buffers the module owns (`ea_result_ptr`,
//! `ea_result_len`, `ea_result_free`) rather than out-parameters, so a Wasm host needs no
//! scratch memory of its own and a C host needs no struct layout.
#![expect(
    unsafe_code,
    reason = "a C ABI takes raw pointers and exports unmangled symbols; each use says why it is sound"
)]

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use policy_core::{Decision, Engine, LoadErrors, Request, Verdict};
use serde_json::{json, Value};

/// The ABI version [`ea_abi_version`] answers. It changes only when a function's meaning or a
/// JSON shape changes incompatibly; fields may be added to results within a version.
pub const EA_ABI_VERSION: u32 = 1;

/// Engines and results, by handle. Handles are never 0 and not reused while the counter has
/// not wrapped around.
#[derive(Default)]
struct State {
    next: u32,
    engines: HashMap<u32, Engine>,
    results: HashMap<u32, Box<[u8]>>,
}

impl State {
    fn handle(&mut self) -> u32 {
        loop {
            self.next = self.next.wrapping_add(1);
            let h = self.next;
            if h != 0 && !self.engines.contains_key(&h) && !self.results.contains_key(&h) {
                return h;
            }
        }
    }

    fn result(&mut self, value: &Value) -> u32 {
        let bytes = serde_json::to_vec(value)
            .unwrap_or_default()
            .into_boxed_slice();
        let h = self.handle();
        self.results.insert(h, bytes);
        h
    }
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// The state; a poisoned lock (a panic elsewhere, itself a bug) still serves.
fn state() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut guard = state();
    f(guard.get_or_insert_with(State::default))
}

/// The input bytes at (`ptr`, `len`), or why they cannot be read.
///
/// # Safety
/// Outside Wasm, (`ptr`, `len`) must be a readable range (or `len` 0).
unsafe fn input<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], &'static str> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err("null pointer with a non-zero length");
    }
    #[cfg(target_arch = "wasm32")]
    {
        let memory = core::arch::wasm32::memory_size(0).saturating_mul(65536);
        let end = (ptr as usize).checked_add(len);
        if end.is_none_or(|end| end > memory) {
            return Err("range outside linear memory");
        }
    }
    // SAFETY: the caller promises (and on Wasm we checked) that the range is readable.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

fn text(bytes: &[u8]) -> Result<&str, &'static str> {
    std::str::from_utf8(bytes).map_err(|_| "not UTF-8")
}

fn load_errors(errors: &LoadErrors, source: &str) -> Value {
    Value::Array(
        errors
            .errors()
            .iter()
            .map(|e| {
                let (line, column) = e.position(source).unzip();
                json!({ "path": e.path, "line": line, "column": column,
                        "kind": e.kind(), "message": e.message })
            })
            .collect(),
    )
}

fn failure(kind: &str, message: &str) -> Value {
    json!({ "ok": false, "error": { "kind": kind, "message": message } })
}

fn decision_json(d: &Decision<'_>) -> Value {
    json!({
        "outcome": d.outcome.as_str(),
        "app": d.app.map(policy_core::App::id),
        "policy": d.policy.map(|p| json!({ "id": p.id, "name": p.name, "precedence": p.precedence })),
        "session_duration": d.session.map(policy_core::SessionDuration::as_str),
    })
}

fn verdict_json(v: &Verdict) -> Value {
    v.to_value()
}

/// The ABI version (see [`EA_ABI_VERSION`]).
#[unsafe(no_mangle)]
pub extern "C" fn ea_abi_version() -> u32 {
    EA_ABI_VERSION
}

/// Allocates `len` bytes (at least one) for the host to write input into; null when memory is
/// exhausted. Free with [`ea_dealloc`] and the same length.
#[unsafe(no_mangle)]
pub extern "C" fn ea_alloc(len: usize) -> *mut u8 {
    match std::alloc::Layout::from_size_align(len.max(1), 1) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { std::alloc::alloc(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Frees what [`ea_alloc`] returned; `len` must be the length asked for. Null is ignored.
///
/// # Safety
/// `ptr` must come from [`ea_alloc`] with this `len`, and not be freed twice.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ea_dealloc(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    if let Ok(layout) = std::alloc::Layout::from_size_align(len.max(1), 1) {
        // SAFETY: the caller passes back what ea_alloc returned for this length.
        unsafe { std::alloc::dealloc(ptr, layout) }
    }
}

/// Compiles a configuration document (JSON bytes). Returns a result handle whose JSON is
/// `{"ok": true, "engine": <handle>, "warnings": [...]}` or `{"ok": false, "errors": [...]}`
/// (each error with `path`, `line`, `column`, `kind`, `message`). 0 only when even the result
/// could not be stored.
///
/// # Safety
/// Outside Wasm, (`ptr`, `len`) must be a readable range (or `len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ea_compile(ptr: *const u8, len: usize) -> u32 {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { input(ptr, len) };
    let source = bytes.and_then(text);
    let value = match source {
        Err(why) => json!({ "ok": false, "errors": [{ "path": "", "line": null, "column": null,
                                                      "kind": "syntax", "message": why }] }),
        Ok(source) => match Engine::from_json(source) {
            Err(errors) => json!({ "ok": false, "errors": load_errors(&errors, source) }),
            Ok(engine) => {
                let warnings: Vec<Value> = engine
                    .warnings()
                    .iter()
                    .map(|w| json!({ "path": w.path, "message": w.message }))
                    .collect();
                return with_state(|s| {
                    let h = s.handle();
                    s.engines.insert(h, engine);
                    s.result(&json!({ "ok": true, "engine": h, "warnings": warnings }))
                });
            }
        },
    };
    with_state(|s| s.result(&value))
}

/// How [`ea_decide`] and [`ea_explain`] differ.
#[derive(Clone, Copy)]
enum Mode {
    Decide,
    Explain,
}

/// # Safety
/// Outside Wasm, (`ptr`, `len`) must be a readable range (or `len` 0).
unsafe fn evaluate(engine: u32, ptr: *const u8, len: usize, mode: Mode) -> u32 {
    // SAFETY: forwarded from the caller.
    let request = unsafe { input(ptr, len) }.and_then(text);
    with_state(|s| {
        let value = match (s.engines.get(&engine), request) {
            (None, _) => failure("unknown_engine", "no engine has this handle"),
            (Some(_), Err(why)) => failure("request", why),
            (Some(engine), Ok(text)) => match Request::from_json(text) {
                Err(errors) => json!({ "ok": false, "error": {
                    "kind": "request", "message": "the request does not load",
                    "errors": load_errors(&errors, text) } }),
                Ok(request) => match mode {
                    Mode::Decide => match engine.decide(&request) {
                        Ok(d) => json!({ "ok": true, "verdict": decision_json(&d) }),
                        Err(e) => failure("evaluation", &e.to_string()),
                    },
                    Mode::Explain => match engine.evaluate(&request) {
                        Ok(v) => json!({ "ok": true, "verdict": verdict_json(&v) }),
                        Err(e) => failure("evaluation", &e.to_string()),
                    },
                },
            },
        };
        s.result(&value)
    })
}

/// Decides a request (JSON bytes) with an engine, without a trace: the fast path. The result's
/// JSON is `{"ok": true, "verdict": {outcome, app, policy, session_duration}}` or
/// `{"ok": false, "error": {kind, message, errors?}}` (`kind`: `unknown_engine`, `request`,
/// `evaluation`).
///
/// # Safety
/// Outside Wasm, (`ptr`, `len`) must be a readable range (or `len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ea_decide(engine: u32, ptr: *const u8, len: usize) -> u32 {
    // SAFETY: forwarded from the caller.
    unsafe { evaluate(engine, ptr, len, Mode::Decide) }
}

/// As [`ea_decide`], with the verdict's `trace`: the steps a person reads.
///
/// # Safety
/// Outside Wasm, (`ptr`, `len`) must be a readable range (or `len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ea_explain(engine: u32, ptr: *const u8, len: usize) -> u32 {
    // SAFETY: forwarded from the caller.
    unsafe { evaluate(engine, ptr, len, Mode::Explain) }
}

/// Where a result's JSON bytes are (valid until [`ea_result_free`]); null for an unknown handle.
#[unsafe(no_mangle)]
pub extern "C" fn ea_result_ptr(result: u32) -> *const u8 {
    with_state(|s| {
        s.results
            .get(&result)
            .map_or(std::ptr::null(), |b| b.as_ptr())
    })
}

/// How many bytes a result's JSON has; 0 for an unknown handle.
#[unsafe(no_mangle)]
pub extern "C" fn ea_result_len(result: u32) -> usize {
    with_state(|s| s.results.get(&result).map_or(0, |b| b.len()))
}

/// Frees a result. Returns 1 when it existed, 0 otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn ea_result_free(result: u32) -> u32 {
    with_state(|s| u32::from(s.results.remove(&result).is_some()))
}

/// Frees an engine. Returns 1 when it existed, 0 otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn ea_engine_free(engine: u32) -> u32 {
    with_state(|s| u32::from(s.engines.remove(&engine).is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(result: u32) -> Value {
        let (ptr, len) = (ea_result_ptr(result), ea_result_len(result));
        // SAFETY: the module's own buffer, alive until freed below.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec();
        assert_eq!(ea_result_free(result), 1);
        serde_json::from_slice(&bytes).unwrap()
    }

    const DOCUMENT: &str = r#"{ "team_domain": "https://access.example.com",
      "identity_providers": [{ "id": "entra", "name": "Entra", "type": "azureAD",
        "config": { "client_id": "c", "directory_id": "72f988bf-86f1-41af-91ab-2d7cd011db47" } }],
      "apps": [{ "id": "wiki", "name": "Wiki", "domain": "wiki.example.com", "aud": "a",
        "policies": [{ "id": "staff", "name": "Staff", "decision": "allow",
                       "include": [{ "email_domain": { "domain": "example.com" } }] }] }] }"#;

    #[test]
    fn compile_decide_explain_free() {
        assert_eq!(ea_abi_version(), 1);
        let compiled = call(unsafe { ea_compile(DOCUMENT.as_ptr(), DOCUMENT.len()) });
        assert_eq!(compiled["ok"], true, "{compiled}");
        let engine = u32::try_from(compiled["engine"].as_u64().unwrap()).unwrap();
        let request =
            r#"{ "app": "wiki.example.com/", "identity": { "email": "ada@example.com" } }"#;
        let decided = call(unsafe { ea_decide(engine, request.as_ptr(), request.len()) });
        assert_eq!(decided["verdict"]["outcome"], "allow", "{decided}");
        assert_eq!(decided["verdict"]["policy"]["id"], "staff");
        assert!(decided["verdict"].get("trace").is_none());
        let explained = call(unsafe { ea_explain(engine, request.as_ptr(), request.len()) });
        assert!(explained["verdict"]["trace"].as_array().unwrap().len() >= 2);
        assert_eq!(ea_engine_free(engine), 1);
        assert_eq!(ea_engine_free(engine), 0);
        let gone = call(unsafe { ea_decide(engine, request.as_ptr(), request.len()) });
        assert_eq!(gone["error"]["kind"], "unknown_engine");
    }

    #[test]
    fn bad_input_is_an_error_result_never_a_crash() {
        let bad = call(unsafe { ea_compile([0xff, 0xfe].as_ptr(), 2) });
        assert_eq!(bad["ok"], false);
        assert_eq!(bad["errors"][0]["message"], "not UTF-8");
        let null = call(unsafe { ea_compile(std::ptr::null(), 10) });
        assert_eq!(
            null["errors"][0]["message"],
            "null pointer with a non-zero length"
        );
        let empty = call(unsafe { ea_compile(std::ptr::null(), 0) });
        assert_eq!(empty["errors"][0]["kind"], "syntax");
        let typo = r#"{"team_domain": "https://a.example.com", "apps": [{"id": 1}]}"#;
        let errors = call(unsafe { ea_compile(typo.as_ptr(), typo.len()) });
        assert!(errors["errors"].as_array().unwrap().len() >= 2, "{errors}");
        assert_eq!(errors["errors"][0]["line"], 1);
        let compiled = call(unsafe { ea_compile(DOCUMENT.as_ptr(), DOCUMENT.len()) });
        let engine = u32::try_from(compiled["engine"].as_u64().unwrap()).unwrap();
        let request = r#"{ "app": "wiki.example.com/", "ip": "999.1.1.1" }"#;
        let refused = call(unsafe { ea_decide(engine, request.as_ptr(), request.len()) });
        assert_eq!(refused["error"]["kind"], "request");
        assert_eq!(refused["error"]["errors"][0]["path"], "ip");
        assert_eq!(ea_result_len(0), 0);
        assert!(ea_result_ptr(12_345_678).is_null());
        assert_eq!(ea_result_free(12_345_678), 0);
        let buffer = ea_alloc(0);
        assert!(!buffer.is_null());
        unsafe { ea_dealloc(buffer, 0) };
        unsafe { ea_dealloc(std::ptr::null_mut(), 5) };
    }
}
