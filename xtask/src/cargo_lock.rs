//! The few facts xtask needs from `Cargo.lock`: which version of a package is locked.
//!
//! The tools must match the libraries exactly (wasm-bindgen's CLI refuses a module built by a
//! different `wasm-bindgen` crate), so the lock file is the single source of those versions.

use std::path::Path;

use crate::error::XtaskError;

/// The one version of `package` locked in `lock_file`.
///
/// # Errors
///
/// When the file cannot be read, or locks `package` zero times or at several versions.
pub fn locked_version(lock_file: &Path, package: &'static str) -> Result<String, XtaskError> {
    let text = std::fs::read_to_string(lock_file)
        .map_err(|source| XtaskError::io("read", lock_file, source))?;
    let mut versions = versions_of(&text, package);
    versions.sort();
    versions.dedup();
    match versions.as_slice() {
        [version] => Ok(version.clone()),
        [] => Err(XtaskError::Lockfile {
            package,
            problem: "not locked (is it still a dependency?)".into(),
        }),
        several => Err(XtaskError::Lockfile {
            package,
            problem: format!(
                "locked at several versions ({}); the tools can match only one",
                several.join(", ")
            ),
        }),
    }
}

/// Every `version` of a `[[package]]` entry named `package`.
fn versions_of(lock_text: &str, package: &str) -> Vec<String> {
    let mut versions = Vec::new();
    let mut in_package = false;
    for line in lock_text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = false;
        } else if let Some(name) = quoted_value(line, "name") {
            in_package = name == package;
        } else if let Some(version) = quoted_value(line, "version") {
            if in_package {
                versions.push(version.to_owned());
            }
        }
    }
    versions
}

/// `value` from a line `key = "value"`.
fn quoted_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.strip_prefix(key)?
        .trim_start()
        .strip_prefix('=')?
        .trim()
        .strip_prefix('"')?
        .strip_suffix('"')
}

#[cfg(test)]
mod tests {
    use super::versions_of;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [
 "wasm-bindgen-macro",
]

[[package]]
name = "wasm-bindgen-macro"
version = "0.2.130"

[[package]]
name = "worker"
version = "0.8.7"
"#;

    #[test]
    fn finds_the_version_of_exactly_the_named_package() {
        assert_eq!(versions_of(LOCK, "wasm-bindgen"), ["0.2.130"]);
        assert_eq!(versions_of(LOCK, "worker"), ["0.8.7"]);
        assert!(versions_of(LOCK, "wasm").is_empty());
    }

    #[test]
    fn ignores_the_lock_format_version() {
        assert!(versions_of(LOCK, "").is_empty());
    }
}
