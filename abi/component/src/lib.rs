//! policy-core as a WebAssembly component: the world `edge-access:policy/policy` of
//! `abi/wit/policy.wit`, the same functions as ABI v1 (`policy-core/ABI.md`) with typed answers.
//!
//! Built for `wasm32-unknown-unknown` (so the core module imports nothing) and wrapped with
//! `wasm-tools component new`; `cargo xtask test` does both and the wasmtime host
//! (`abi/hosts/wasmtime`, `tests/component.rs`) decides every vector with it.

#![allow(
    unsafe_code,
    reason = "the exports wit-bindgen generates are unsafe canonical-ABI glue"
)]

wit_bindgen::generate!({
    path: "../wit",
    world: "policy",
});

use exports::edge_access::policy::engine::{
    DecidingPolicy, Guest, GuestPolicyEngine, Outcome, PolicyEngine, Problem, RequestError,
    Verdict, Warning,
};
use policy_core::{Decision, Engine, LoadErrors, Request};

/// The ABI version these functions follow.
const ABI_VERSION: u32 = 1;

struct Component;

impl Guest for Component {
    type PolicyEngine = Compiled;

    fn abi_version() -> u32 {
        ABI_VERSION
    }
}

/// A compiled document behind the `policy-engine` resource.
struct Compiled(Engine);

fn problems(errors: &LoadErrors, source: &str) -> Vec<Problem> {
    errors
        .errors()
        .iter()
        .map(|e| {
            let (line, column) = e.position(source).unzip();
            // Positions past 4 Gi lines or columns cannot be told: absent rather than wrong.
            let at = |n: Option<usize>| n.and_then(|n| u32::try_from(n).ok());
            Problem {
                path: e.path.clone(),
                line: at(line),
                column: at(column),
                kind: e.kind().into(),
                message: e.message.clone(),
            }
        })
        .collect()
}

fn outcome(outcome: policy_core::Outcome) -> Outcome {
    match outcome {
        policy_core::Outcome::Allow => Outcome::Allow,
        policy_core::Outcome::Bypass => Outcome::Bypass,
        policy_core::Outcome::ServiceAuth => Outcome::ServiceAuth,
        policy_core::Outcome::Block => Outcome::Block,
        policy_core::Outcome::DefaultDeny => Outcome::DefaultDeny,
        policy_core::Outcome::LoginRequired => Outcome::LoginRequired,
        policy_core::Outcome::NoApp => Outcome::NoApp,
        policy_core::Outcome::InvalidPath => Outcome::InvalidPath,
    }
}

fn verdict(decision: &Decision<'_>) -> Verdict {
    Verdict {
        outcome: outcome(decision.outcome),
        app: decision.app.map(|a| a.id().to_owned()),
        policy: decision.policy.map(|p| DecidingPolicy {
            id: p.id.map(str::to_owned),
            name: p.name.to_owned(),
            precedence: p.precedence,
        }),
        session_duration: decision.session.map(|s| s.as_str().to_owned()),
        trace: Vec::new(),
    }
}

impl Compiled {
    fn evaluate(&self, request: &str, trace: bool) -> Result<Verdict, RequestError> {
        let parsed = Request::from_json(request)
            .map_err(|e| RequestError::Invalid(problems(&e, request)))?;
        let stopped = |e: policy_core::EvalError| RequestError::Evaluation(e.to_string());
        if trace {
            let v = self.0.evaluate(&parsed).map_err(stopped)?;
            Ok(Verdict {
                outcome: outcome(v.outcome),
                app: v.app,
                policy: v.policy.map(|(id, name, precedence)| DecidingPolicy {
                    id,
                    name,
                    precedence,
                }),
                session_duration: v.session_duration.map(|s| s.as_str().to_owned()),
                trace: v.trace,
            })
        } else {
            let decision = self.0.decide(&parsed).map_err(stopped)?;
            Ok(verdict(&decision))
        }
    }
}

impl GuestPolicyEngine for Compiled {
    fn compile(document: String) -> Result<PolicyEngine, Vec<Problem>> {
        Engine::from_json(&document)
            .map(|engine| PolicyEngine::new(Compiled(engine)))
            .map_err(|errors| problems(&errors, &document))
    }

    fn warnings(&self) -> Vec<Warning> {
        self.0
            .warnings()
            .iter()
            .map(|w| Warning {
                path: w.path.clone(),
                message: w.message.clone(),
            })
            .collect()
    }

    fn decide(&self, request: String) -> Result<Verdict, RequestError> {
        self.evaluate(&request, false)
    }

    fn explain(&self, request: String) -> Result<Verdict, RequestError> {
        self.evaluate(&request, true)
    }
}

export!(Component);
