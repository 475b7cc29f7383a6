//! Rebuilds the tests when a file under `policies/` is added or removed (`include_dir!` alone
//! only notices changes to the files it already embedded).
fn main() {
    println!("cargo:rerun-if-changed=policies");
}
