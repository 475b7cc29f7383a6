//! The deploy dry run as an admin's machine runs it: as an ordinary user, with no browser
//! installed. `cargo xtask test` runs as root on CI; a build step that quietly needs root
//! (`apt-get`) or Chromium would pass there and fail on a laptop. So, when this runs as root,
//! a copy of the checkout owned by `nobody` runs `cargo xtask deploy --dry-run` as `nobody`,
//! in a private mount namespace where the Rust toolchain is mounted read-only and Chromium and
//! its WebDriver are hidden (`unshare -m`, `setpriv`). Run by anyone else, the ordinary dry run
//! already is the unprivileged one.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::{self, Env};
use crate::steps::Outcome;

/// The unprivileged user and group (Debian's).
const USER: &str = "nobody";
const GROUP: &str = "nogroup";

/// Programs that must not be reachable: the build must not need them.
const HIDDEN: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromedriver"];

/// `cargo xtask deploy --dry-run --document <document>` as `nobody` on a copy of the checkout;
/// `document` is relative to the checkout.
///
/// # Errors
///
/// When the copy cannot be made or the dry run fails as `nobody`.
pub fn deploy_dry_run(env: &Env, layout: &Layout, document: &Path) -> Result<Outcome, XtaskError> {
    if document.is_absolute() {
        return Err(XtaskError::Tool {
            tool: "unprivileged dry run".into(),
            problem: format!("`{}` must be relative to the checkout", document.display()),
        });
    }
    if process::output(Command::new("id").arg("-u"))?.trim() != "0" {
        return Ok("not root: the ordinary dry run already ran unprivileged".into());
    }
    let base = layout.target_dir.join("xtask").join("unprivileged");
    let home = base.join("home");
    let checkout = home.join("checkout");
    std::fs::create_dir_all(&checkout)
        .map_err(|source| XtaskError::io("create", &checkout, source))?;

    // The working tree as it is (tracked and new files, not what .gitignore names), and the
    // npm tools, which `npm ci` would otherwise fetch again.
    // A copy left by an earlier run keeps its build (`target/`), nothing else: a file since
    // removed from the checkout must not linger in the copy.
    let copy = format!(
        "find {checkout} -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {{}} + \
         && git ls-files -z --cached --others --exclude-standard \
         | tar --null --ignore-failed-read -cf - -T - | tar -xf - -C {checkout} \
         && rm -rf {checkout}/node_modules && cp -a node_modules {checkout}/ \
         && chown -R {USER}:{GROUP} {home}",
        checkout = quote(&checkout),
        home = quote(&home),
    );
    process::run(
        env.command("sh")
            .arg("-c")
            .arg(copy)
            .current_dir(&layout.root),
    )?;

    let rustup = tool_home(env, "RUSTUP_HOME", ".rustup")?;
    let cargo = tool_home(env, "CARGO_HOME", ".cargo")?;
    let (rustup_mount, cargo_mount) = (base.join("rustup"), base.join("cargo"));
    for dir in [&rustup_mount, &cargo_mount] {
        std::fs::create_dir_all(dir).map_err(|source| XtaskError::io("create", dir, source))?;
    }
    let mut script = format!(
        "set -e\n\
         mount --bind {rustup} {rustup_mount}\n\
         mount --bind {cargo} {cargo_mount}\n\
         mount -o remount,bind,ro {cargo_mount}\n",
        rustup = quote(&rustup),
        cargo = quote(&cargo),
        rustup_mount = quote(&rustup_mount),
        cargo_mount = quote(&cargo_mount),
    );
    for program in HIDDEN {
        script.push_str(&format!(
            "if [ -e {program} ]; then mount --bind /dev/null {program}; fi\n"
        ));
    }
    script.push_str(&format!(
        "cd {checkout}\n\
         exec setpriv --reuid={USER} --regid={GROUP} --clear-groups env -i HOME={home} \
         PATH={cargo_mount}/bin:/usr/local/bin:/usr/bin:/bin RUSTUP_HOME={rustup_mount} \
         CARGO_HOME={cargo_mount} cargo xtask deploy --dry-run --document {document}\n",
        checkout = quote(&checkout),
        home = quote(&home),
        cargo_mount = quote(&cargo_mount),
        rustup_mount = quote(&rustup_mount),
        document = quote(document),
    ));
    process::run(env.command("unshare").args(["-m", "sh", "-c"]).arg(script))?;
    Ok(format!(
        "passed as `{USER}` without {}",
        HIDDEN.join(" or ")
    ))
}

/// Where rustup or cargo keep their files: the variable, else `~/<default>`.
fn tool_home(env: &Env, var: &str, default: &str) -> Result<PathBuf, XtaskError> {
    if let Some(dir) = env.var(var) {
        return Ok(PathBuf::from(dir));
    }
    let home = env.var("HOME").ok_or_else(|| XtaskError::Tool {
        tool: "unprivileged dry run".into(),
        problem: format!("neither {var} nor HOME is set"),
    })?;
    Ok(PathBuf::from(home).join(default))
}

/// `path` single-quoted for `sh`.
fn quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::quote;
    use std::path::Path;

    /// The step alone, outside `cargo xtask test` (which runs it after the worker's build):
    /// `cargo test -p xtask -- --ignored unprivileged`.
    #[test]
    #[ignore = "builds the worker as another user for minutes; cargo xtask test runs it"]
    fn unprivileged_dry_run() {
        let layout = crate::layout::Layout::discover().expect("the checkout");
        let mut steps = crate::steps::Steps::new();
        let env = crate::setup::setup_build(&layout, &mut steps).expect("the build tools");
        let outcome =
            super::deploy_dry_run(&env, &layout, &Path::new("examples").join("config.json"));
        assert!(outcome.is_ok(), "{outcome:?}");
    }

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(quote(Path::new("/a b/c")), "'/a b/c'");
        assert_eq!(quote(Path::new("/it's")), r"'/it'\''s'");
    }
}
