//! End-to-end harness for edge-access: a Microsoft Entra ID emulator, a demo origin, and the
//! built worker under `wrangler dev` (workerd), all on 127.0.0.1.
//!
//! - [`fixtures`]: the emulated tenant (users, nested groups) from `fixtures/entra.json`.
//! - [`emulator`]: OIDC discovery, JWKS (rotation, faults), RS256 tokens like Entra's, the
//!   browser sign-in (authorize and token endpoints) and Microsoft Graph membership.
//! - [`origin`]: an echo server that shows what the gateway forwarded.
//! - [`stack`]: emulator + origin + `wrangler dev`, for scenarios and `cargo xtask dev`.
//! - [`browser`]: headless Chromium over WebDriver, for the browser sign-in tests.
//! - [`client`]: a plain-HTTP client that returns every status and follows no redirect.
//! - [`urlencoded`]: query strings and form bodies.
//! - [`bench_report`]: what the benchmark runners share when they write BENCHMARKS.md.
//!
//! Test-only code: none of it ships in the product.

pub mod bench_report;
pub mod browser;
pub mod client;
pub mod emulator;
pub mod fixtures;
pub mod origin;
pub mod stack;
pub mod urlencoded;

mod server;
