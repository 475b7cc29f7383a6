//! Rebuilds the vector tests when a vector file is added or removed (`include_dir!` alone only
//! notices changes to files it already embedded).
fn main() {
    println!("cargo:rerun-if-changed=tests/vectors");
}
