//! End-to-end harness for edge-access: the Entra ID emulator (`entra-emulator`), a demo
//! origin, and the built worker under `wrangler dev` (workerd), all on 127.0.0.1.
//!
//! - [`origin`]: an echo server that shows what the gateway forwarded.
//! - [`stack`]: emulator + origin + `wrangler dev`, for scenarios and `cargo xtask dev`.
//! - [`browser`]: headless Chromium over WebDriver, for the browser sign-in tests.
//! - [`admin_api`]: a client of the management API and the documents its tests store.
//! - [`hosts`]: several host names on one stack, with the team domain as the sign-in hub.
//!
//! Test-only code: none of it ships in the product.

pub mod admin_api;
pub mod browser;
pub mod hosts;
pub mod origin;
pub mod stack;
