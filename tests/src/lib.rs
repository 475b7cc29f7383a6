//! End-to-end harness for edge-access: a Microsoft Entra ID emulator, a demo origin, and the
//! built worker under `wrangler dev` (workerd), all on 127.0.0.1.
//!
//! - [`fixtures`]: the emulated tenant (users, nested groups) from `fixtures/entra.json`.
//!
//! Test-only code: none of it ships in the product.

pub mod fixtures;
