//! The engine this module was built with, for Node: `new Peer(text)`, `prepare(request) →
//! handle`, `decide(handle)`, `decideJson(request)`; the `core` module also has
//! `PeerIdentity`, policy-core deciding for prepared identities.

use wasm_bindgen::prelude::*;

use crate::engines::Peer as _;

macro_rules! peer {
    ($class:ident, $engine:ty) => {
        /// The engine with its prepared requests.
        #[wasm_bindgen]
        pub struct $class {
            engine: $engine,
            prepared: Vec<<$engine as crate::engines::Peer>::Prepared>,
        }

        #[wasm_bindgen]
        impl $class {
            /// Compiles the engine's case text.
            #[wasm_bindgen(constructor)]
            pub fn new(text: &str) -> Result<$class, JsError> {
                Ok($class {
                    engine: <$engine>::compile(text).map_err(|e| JsError::new(&e))?,
                    prepared: Vec::new(),
                })
            }

            /// Prepares a request; returns its handle.
            pub fn prepare(&mut self, request: &str) -> Result<u32, JsError> {
                let prepared = self.engine.prepare(request).map_err(|e| JsError::new(&e))?;
                self.prepared.push(prepared);
                Ok(u32::try_from(self.prepared.len() - 1).unwrap_or(u32::MAX))
            }

            /// Decides a prepared request.
            pub fn decide(&mut self, handle: u32) -> Result<String, JsError> {
                let prepared = self
                    .prepared
                    .get(handle as usize)
                    .ok_or_else(|| JsError::new("no such request"))?;
                self.engine
                    .decide(prepared)
                    .map(String::from)
                    .map_err(|e| JsError::new(&e))
            }

            /// Parses and decides a request.
            #[wasm_bindgen(js_name = decideJson)]
            pub fn decide_json(&mut self, request: &str) -> Result<String, JsError> {
                self.engine
                    .decide_json(request)
                    .map(String::from)
                    .map_err(|e| JsError::new(&e))
            }
        }
    };
}

#[cfg(feature = "core")]
peer!(Peer, crate::engines::Core);
#[cfg(feature = "core")]
peer!(PeerIdentity, crate::engines::CoreIdentity);
#[cfg(all(feature = "cedar", not(feature = "core")))]
peer!(Peer, crate::engines::Cedar);
#[cfg(all(feature = "regorus", not(any(feature = "core", feature = "cedar"))))]
peer!(Peer, crate::engines::Regorus);
