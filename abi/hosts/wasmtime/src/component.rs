//! The component host: `policy_core.component.wasm`, the world `edge-access:policy/policy` of
//! `abi/wit/policy.wit`, through wasmtime's component model, with the same fuel and memory
//! limits as [`crate::PolicyModule`].
//!
//! ```no_run
//! # fn main() -> Result<(), policy_core_wasmtime::HostError> {
//! use policy_core_wasmtime::{component::PolicyComponent, Limits};
//! let wasm = std::fs::read("target/policy-core-abi/policy_core.component.wasm").unwrap_or_default();
//! let mut host = PolicyComponent::new(&wasm, Limits::default())?;
//! let document = r#"{ "team_domain": "https://access.example.com", "identity_providers": [], "apps": [] }"#;
//! let Ok(engine) = host.compile(document)? else { return Ok(()) };
//! let verdict = host.decide(engine, r#"{ "app": "wiki.example.com/" }"#)?;
//! assert!(matches!(verdict, Ok(v) if v.outcome == policy_core_wasmtime::component::Outcome::NoApp));
//! # Ok(()) }
//! ```

use serde_json::{json, Value};
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Config, Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder};

use crate::{trap, HostError, Limits, ABI_VERSION};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "policy",
    });
}

pub use bindings::exports::edge_access::policy::engine::{
    DecidingPolicy, Outcome, Problem, RequestError, Verdict, Warning,
};

/// The store's limits, and how much linear memory the component has grown to.
struct Tracked {
    limits: StoreLimits,
    memory_bytes: usize,
}

impl ResourceLimiter for Tracked {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_bytes = self.memory_bytes - current.min(self.memory_bytes) + desired;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }
}

/// A compiled document inside a [`PolicyComponent`] (the WIT resource `policy-engine`).
#[derive(Debug, Clone, Copy)]
pub struct EngineHandle(ResourceAny);

/// One instance of the component: its engines live in its memory.
pub struct PolicyComponent {
    store: Store<Tracked>,
    bindings: bindings::Policy,
    limits: Limits,
}

impl std::fmt::Debug for PolicyComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyComponent")
            .field("limits", &self.limits)
            .field("memory_bytes", &self.memory_bytes())
            .finish_non_exhaustive()
    }
}

impl PolicyComponent {
    /// Instantiates `wasm` (the bytes of `policy_core.component.wasm`) with `limits`.
    ///
    /// # Errors
    /// [`HostError::Module`] when the component does not compile, does not export the world
    /// `edge-access:policy/policy@1`, or is not ABI v1.
    pub fn new(wasm: &[u8], limits: Limits) -> Result<PolicyComponent, HostError> {
        let module = |e: wasmtime::Error| HostError::Module(format!("{e:#}"));
        let mut config = Config::new();
        config.consume_fuel(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(module)?;
        let component = Component::new(&engine, wasm).map_err(module)?;
        // The world has no imports: an empty linker is all it may use.
        let linker = Linker::new(&engine);
        let tracked = Tracked {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.max_memory_bytes)
                .instances(4)
                .build(),
            memory_bytes: 0,
        };
        let mut store = Store::new(&engine, tracked);
        store.limiter(|t| t);
        store.set_fuel(limits.fuel_per_call).map_err(module)?;
        let bindings =
            bindings::Policy::instantiate(&mut store, &component, &linker).map_err(module)?;
        let version = bindings
            .edge_access_policy_engine()
            .call_abi_version(&mut store)
            .map_err(|e| trap(&e))?;
        if version != ABI_VERSION {
            return Err(HostError::Module(format!(
                "ABI version {version}, this host speaks {ABI_VERSION}"
            )));
        }
        Ok(PolicyComponent {
            store,
            bindings,
            limits,
        })
    }

    /// The linear memory the component has grown to, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.store.data().memory_bytes
    }

    fn refuel(&mut self) -> Result<(), HostError> {
        self.store
            .set_fuel(self.limits.fuel_per_call)
            .map_err(|e| HostError::Module(format!("{e:#}")))
    }

    /// Compiles a document: the engine, or every problem that stops it from loading.
    ///
    /// # Errors
    /// A [`HostError`] when the call did not answer (out of fuel: drop this instance).
    pub fn compile(
        &mut self,
        document: &str,
    ) -> Result<Result<EngineHandle, Vec<Problem>>, HostError> {
        self.refuel()?;
        let compiled = self
            .bindings
            .edge_access_policy_engine()
            .policy_engine()
            .call_compile(&mut self.store, document)
            .map_err(|e| trap(&e))?;
        Ok(compiled.map(EngineHandle))
    }

    /// What is risky in an engine's document.
    ///
    /// # Errors
    /// A [`HostError`] when the call did not answer.
    pub fn warnings(&mut self, engine: EngineHandle) -> Result<Vec<Warning>, HostError> {
        self.refuel()?;
        self.bindings
            .edge_access_policy_engine()
            .policy_engine()
            .call_warnings(&mut self.store, engine.0)
            .map_err(|e| trap(&e))
    }

    /// Decides a request without a trace.
    ///
    /// # Errors
    /// A [`HostError`] when the call did not answer.
    pub fn decide(
        &mut self,
        engine: EngineHandle,
        request: &str,
    ) -> Result<Result<Verdict, RequestError>, HostError> {
        self.refuel()?;
        self.bindings
            .edge_access_policy_engine()
            .policy_engine()
            .call_decide(&mut self.store, engine.0, request)
            .map_err(|e| trap(&e))
    }

    /// Decides a request with its trace.
    ///
    /// # Errors
    /// A [`HostError`] when the call did not answer.
    pub fn explain(
        &mut self,
        engine: EngineHandle,
        request: &str,
    ) -> Result<Result<Verdict, RequestError>, HostError> {
        self.refuel()?;
        self.bindings
            .edge_access_policy_engine()
            .policy_engine()
            .call_explain(&mut self.store, engine.0, request)
            .map_err(|e| trap(&e))
    }

    /// Frees an engine inside the component.
    ///
    /// # Errors
    /// A [`HostError`] when the call did not answer, or the engine was freed already.
    pub fn free(&mut self, engine: EngineHandle) -> Result<(), HostError> {
        self.refuel()?;
        engine
            .0
            .resource_drop(&mut self.store)
            .map_err(|e| trap(&e))
    }
}

/// The contract's spelling of an outcome (`service_auth`, …), as in the verdict JSON.
pub fn outcome_str(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Allow => "allow",
        Outcome::Bypass => "bypass",
        Outcome::ServiceAuth => "service_auth",
        Outcome::Block => "block",
        Outcome::DefaultDeny => "default_deny",
        Outcome::LoginRequired => "login_required",
        Outcome::NoApp => "no_app",
        Outcome::InvalidPath => "invalid_path",
    }
}

/// A verdict as the verdict JSON of `policy-core/README.md` (what `ea_explain` answers).
pub fn verdict_json(verdict: &Verdict) -> Value {
    json!({
        "outcome": outcome_str(verdict.outcome),
        "app": verdict.app,
        "policy": verdict.policy.as_ref().map(|p| json!({
            "id": p.id, "name": p.name, "precedence": p.precedence })),
        "session_duration": verdict.session_duration,
        "trace": verdict.trace,
    })
}
