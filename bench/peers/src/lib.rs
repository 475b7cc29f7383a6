//! policy-core, Cedar and regorus on the same decisions: the translation of edge-access
//! documents and requests into the peers' languages, the engines behind one interface, and
//! (in Wasm) that interface for Node. The runner is `src/main.rs`; README.md says how to run it.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark runner reports on the terminal"
)]

pub mod engines;
pub mod translate;

#[cfg(target_arch = "wasm32")]
mod wasm;
