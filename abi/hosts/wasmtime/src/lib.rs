//! The reference host of `policy_core.wasm` (ABI v1, `policy-core/ABI.md`): wasmtime, with
//! fuel per call and a memory ceiling, so a hostile document cannot spin or bloat the host.
//!
//! ```no_run
//! # fn main() -> Result<(), policy_core_wasmtime::HostError> {
//! use policy_core_wasmtime::{Limits, PolicyModule};
//! let wasm = std::fs::read("target/policy-core-abi/policy_core.wasm").unwrap_or_default();
//! let mut module = PolicyModule::new(&wasm, Limits::default())?;
//! let engine = module.compile(br#"{ "team_domain": "https://access.example.com", "identity_providers": [], "apps": [] }"#)?;
//! let verdict = module.decide(engine.expect("the document loads"), br#"{ "app": "wiki.example.com/" }"#)?;
//! assert_eq!(verdict["verdict"]["outcome"], "no_app");
//! # Ok(()) }
//! ```

use std::fmt;

pub mod component;

use serde_json::Value;
use wasmtime::{
    Config, Engine, Instance, Memory, Module, Store, StoreLimits, StoreLimitsBuilder, TypedFunc,
};

/// The ABI version this host speaks.
pub const ABI_VERSION: u32 = 1;

/// What one module instance may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Fuel (roughly, Wasm instructions) per call: a call that needs more is stopped.
    pub fuel_per_call: u64,
    /// The most linear memory the instance may grow to, in bytes.
    pub max_memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            fuel_per_call: 2_000_000_000,
            max_memory_bytes: 256 << 20,
        }
    }
}

/// Why a call did not give an answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum HostError {
    /// The module does not load, or is not ABI v1.
    Module(String),
    /// A call ran out of fuel (a limit, not a bug): the instance must be dropped.
    OutOfFuel,
    /// A call trapped otherwise: a bug in the module (the ABI promises no traps).
    Trap(String),
    /// A result that is not JSON: a bug in the module.
    BadResult(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Module(m) => write!(f, "module: {m}"),
            HostError::OutOfFuel => f.write_str("the call ran out of fuel"),
            HostError::Trap(m) => write!(f, "trap: {m}"),
            HostError::BadResult(m) => write!(f, "result: {m}"),
        }
    }
}

impl std::error::Error for HostError {}

struct Exports {
    alloc: TypedFunc<u32, u32>,
    dealloc: TypedFunc<(u32, u32), ()>,
    compile: TypedFunc<(u32, u32), u32>,
    decide: TypedFunc<(u32, u32, u32), u32>,
    explain: TypedFunc<(u32, u32, u32), u32>,
    result_ptr: TypedFunc<u32, u32>,
    result_len: TypedFunc<u32, u32>,
    result_free: TypedFunc<u32, u32>,
    engine_free: TypedFunc<u32, u32>,
}

/// One instance of the module: its engines live in its memory.
pub struct PolicyModule {
    store: Store<StoreLimits>,
    memory: Memory,
    exports: Exports,
    limits: Limits,
}

impl fmt::Debug for PolicyModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyModule")
            .field("limits", &self.limits)
            .field("memory_bytes", &self.memory_bytes())
            .finish_non_exhaustive()
    }
}

pub(crate) fn trap(error: &wasmtime::Error) -> HostError {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => HostError::OutOfFuel,
        _ => HostError::Trap(format!("{error:#}")),
    }
}

impl PolicyModule {
    /// Instantiates `wasm` (the bytes of `policy_core.wasm`) with `limits`.
    ///
    /// # Errors
    /// [`HostError::Module`] when the module does not compile, has imports, or is not ABI v1.
    pub fn new(wasm: &[u8], limits: Limits) -> Result<PolicyModule, HostError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config).map_err(|e| HostError::Module(format!("{e:#}")))?;
        let module = Module::new(&engine, wasm).map_err(|e| HostError::Module(format!("{e:#}")))?;
        if let Some(import) = module.imports().next() {
            return Err(HostError::Module(format!(
                "the module imports `{}.{}`; ABI v1 has no imports",
                import.module(),
                import.name()
            )));
        }
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.max_memory_bytes)
            .instances(1)
            .build();
        let mut store = Store::new(&engine, store_limits);
        store.limiter(|l| l);
        store
            .set_fuel(limits.fuel_per_call)
            .map_err(|e| HostError::Module(format!("{e:#}")))?;
        let instance = Instance::new(&mut store, &module, &[])
            .map_err(|e| HostError::Module(format!("{e:#}")))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| HostError::Module("no exported memory".into()))?;
        let get = |store: &mut Store<StoreLimits>, name: &str| {
            instance
                .get_func(&mut *store, name)
                .ok_or_else(|| HostError::Module(format!("no export `{name}`")))
        };
        macro_rules! typed {
            ($name:literal) => {
                get(&mut store, $name)?
                    .typed(&store)
                    .map_err(|e| HostError::Module(format!("`{}`: {e:#}", $name)))?
            };
        }
        let version: TypedFunc<(), u32> = typed!("ea_abi_version");
        let exports = Exports {
            alloc: typed!("ea_alloc"),
            dealloc: typed!("ea_dealloc"),
            compile: typed!("ea_compile"),
            decide: typed!("ea_decide"),
            explain: typed!("ea_explain"),
            result_ptr: typed!("ea_result_ptr"),
            result_len: typed!("ea_result_len"),
            result_free: typed!("ea_result_free"),
            engine_free: typed!("ea_engine_free"),
        };
        let got = version.call(&mut store, ()).map_err(|e| trap(&e))?;
        if got != ABI_VERSION {
            return Err(HostError::Module(format!(
                "ABI version {got}, this host speaks {ABI_VERSION}"
            )));
        }
        Ok(PolicyModule {
            store,
            memory,
            exports,
            limits,
        })
    }

    /// The instance's linear memory, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    fn refuel(&mut self) -> Result<(), HostError> {
        self.store
            .set_fuel(self.limits.fuel_per_call)
            .map_err(|e| HostError::Module(format!("{e:#}")))
    }

    /// Copies `bytes` into the instance; returns (pointer, length).
    fn put(&mut self, bytes: &[u8]) -> Result<(u32, u32), HostError> {
        let len =
            u32::try_from(bytes.len()).map_err(|_| HostError::Module("input over 4 GiB".into()))?;
        let ptr = self
            .exports
            .alloc
            .call(&mut self.store, len)
            .map_err(|e| trap(&e))?;
        if ptr == 0 {
            return Err(HostError::Trap("the module is out of memory".into()));
        }
        self.memory
            .write(&mut self.store, ptr as usize, bytes)
            .map_err(|e| HostError::Trap(format!("write: {e}")))?;
        Ok((ptr, len))
    }

    fn take(&mut self, result: u32) -> Result<Value, HostError> {
        if result == 0 {
            return Err(HostError::Trap("no result (out of memory)".into()));
        }
        let ptr = self
            .exports
            .result_ptr
            .call(&mut self.store, result)
            .map_err(|e| trap(&e))?;
        let len = self
            .exports
            .result_len
            .call(&mut self.store, result)
            .map_err(|e| trap(&e))?;
        let mut bytes = vec![0; len as usize];
        self.memory
            .read(&self.store, ptr as usize, &mut bytes)
            .map_err(|e| HostError::BadResult(format!("read: {e}")))?;
        self.exports
            .result_free
            .call(&mut self.store, result)
            .map_err(|e| trap(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| HostError::BadResult(e.to_string()))
    }

    /// Calls an export that takes input bytes, with fresh fuel, and reads its result.
    fn with_input(
        &mut self,
        bytes: &[u8],
        call: impl FnOnce(&mut Self, u32, u32) -> wasmtime::Result<u32>,
    ) -> Result<Value, HostError> {
        self.refuel()?;
        let (ptr, len) = self.put(bytes)?;
        let result = call(self, ptr, len).map_err(|e| trap(&e))?;
        self.exports
            .dealloc
            .call(&mut self.store, (ptr, len))
            .map_err(|e| trap(&e))?;
        self.take(result)
    }

    /// Compiles a document: `Ok(Some(engine))`, or `Ok(None)` with the errors in `report`.
    ///
    /// # Errors
    /// A [`HostError`] when the call did not answer.
    pub fn compile_report(&mut self, document: &[u8]) -> Result<Value, HostError> {
        self.with_input(document, |m, ptr, len| {
            m.exports.compile.call(&mut m.store, (ptr, len))
        })
    }

    /// Compiles a document; the engine handle, or `None` when it does not load.
    ///
    /// # Errors
    /// A [`HostError`] when the call did not answer.
    pub fn compile(&mut self, document: &[u8]) -> Result<Option<u32>, HostError> {
        let report = self.compile_report(document)?;
        Ok(report
            .get("engine")
            .and_then(Value::as_u64)
            .and_then(|h| u32::try_from(h).ok()))
    }

    /// Decides a request (no trace): the result JSON (`ok`, `verdict` or `error`).
    ///
    /// # Errors
    /// A [`HostError`] when the call did not answer.
    pub fn decide(&mut self, engine: u32, request: &[u8]) -> Result<Value, HostError> {
        self.with_input(request, |m, ptr, len| {
            m.exports.decide.call(&mut m.store, (engine, ptr, len))
        })
    }

    /// Decides a request with its trace.
    ///
    /// # Errors
    /// A [`HostError`] when the call did not answer.
    pub fn explain(&mut self, engine: u32, request: &[u8]) -> Result<Value, HostError> {
        self.with_input(request, |m, ptr, len| {
            m.exports.explain.call(&mut m.store, (engine, ptr, len))
        })
    }

    /// Frees an engine; whether it existed.
    ///
    /// # Errors
    /// A [`HostError`] when the call did not answer.
    pub fn free_engine(&mut self, engine: u32) -> Result<bool, HostError> {
        self.refuel()?;
        let freed = self
            .exports
            .engine_free
            .call(&mut self.store, engine)
            .map_err(|e| trap(&e))?;
        Ok(freed == 1)
    }

    /// Calls `ea_decide` with a raw (pointer, length) the host did not allocate — for testing
    /// that the module refuses out-of-range input instead of trapping.
    ///
    /// # Errors
    /// A [`HostError`] when the call did not answer.
    pub fn decide_raw(&mut self, engine: u32, ptr: u32, len: u32) -> Result<Value, HostError> {
        self.refuel()?;
        let result = self
            .exports
            .decide
            .call(&mut self.store, (engine, ptr, len))
            .map_err(|e| trap(&e))?;
        self.take(result)
    }
}
