//! The peers' versions, from Cargo.lock, for the report.
fn main() {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    for (name, var) in [("cedar-policy", "CEDAR_VERSION"), ("regorus", "REGORUS_VERSION")] {
        let needle = format!("name = \"{name}\"\nversion = \"");
        let version = lock
            .find(&needle)
            .map(|at| &lock[at + needle.len()..])
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("?");
        println!("cargo:rustc-env={var}={version}");
    }
    println!("cargo:rerun-if-changed=Cargo.lock");
}
