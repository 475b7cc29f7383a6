//! File sizes as the limits count them: raw and gzip-compressed.

use std::path::Path;

use crate::error::XtaskError;
use crate::process::{self, Env};

/// `name: 412.0 KiB, 150.3 KiB gzip` for `file`; gzip at level 9 through Node's zlib
/// (Node is already required, a `gzip` binary is not).
///
/// # Errors
///
/// When the file cannot be read or Node fails.
pub fn describe(env: &Env, file: &Path) -> Result<String, XtaskError> {
    let raw = std::fs::metadata(file)
        .map_err(|source| XtaskError::io("read the size of", file, source))?
        .len();
    let gzip = gzip_bytes(env, file)?;
    let name = file
        .file_name()
        .unwrap_or(file.as_os_str())
        .to_string_lossy();
    Ok(format!("{name}: {}, {} gzip", kib(raw), kib(gzip)))
}

/// The size of `file` compressed by gzip at level 9, through Node's zlib.
///
/// # Errors
///
/// When Node fails.
pub fn gzip_bytes(env: &Env, file: &Path) -> Result<u64, XtaskError> {
    let script = "const fs = require('node:fs'); const zlib = require('node:zlib');\
                  process.stdout.write(String(zlib.gzipSync(fs.readFileSync(process.argv[1]), \
                  { level: 9 }).length));";
    let gzip = process::output(env.command("node").arg("-e").arg(script).arg(file))?;
    gzip.trim().parse().map_err(|_| XtaskError::Tool {
        tool: "node".into(),
        problem: format!("printed `{}` instead of a gzip size", gzip.trim()),
    })
}

/// DESIGN.md's budget for policy-core's Wasm in the JS package: 100 KB (10^5 bytes) gzip.
pub const POLICY_CORE_WASM_GZIP_LIMIT: u64 = 100_000;

/// Fails when `file` (policy-core's Wasm) is over [`POLICY_CORE_WASM_GZIP_LIMIT`] gzipped.
///
/// # Errors
///
/// When it is over, or Node fails.
pub fn check_policy_core_budget(env: &Env, file: &Path) -> Result<String, XtaskError> {
    let gzip = gzip_bytes(env, file)?;
    if gzip > POLICY_CORE_WASM_GZIP_LIMIT {
        return Err(XtaskError::Tool {
            tool: "size".into(),
            problem: format!(
                "{} is {gzip} bytes gzipped, over the budget of {POLICY_CORE_WASM_GZIP_LIMIT}",
                file.display()
            ),
        });
    }
    Ok(format!(
        "{gzip} bytes gzip, within {POLICY_CORE_WASM_GZIP_LIMIT}"
    ))
}

#[expect(
    clippy::cast_precision_loss,
    reason = "file sizes far below 2^52 bytes, printed to one decimal"
)]
pub fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}
