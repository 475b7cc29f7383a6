//! The "Embedding" examples of `policy-core/README.md` are copies of code that runs in
//! `cargo xtask test`: each README block equals the region between `README: begin NAME` and
//! `README: end` in its source (indentation removed), so an example cannot drift from its test.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::path::Path;

/// (source relative to the repository, region name, fence info string of its README block).
const EXAMPLES: [(&str, &str, &str); 5] = [
    (
        "abi/hosts/wasmtime/tests/readme.rs",
        "wasmtime",
        "rust,ignore",
    ),
    (
        "abi/hosts/wasmtime/tests/readme.rs",
        "component",
        "rust,ignore",
    ),
    ("abi/hosts/python/tests/test_readme.py", "python", "python"),
    ("abi/hosts/c/embed.c", "c", "c"),
    ("policy-core/js/examples/embed.mjs", "js", "js"),
];

/// The lines between the begin and end markers of `name`, without their common indentation.
fn region(source: &str, name: &str) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let begin = lines
        .iter()
        .position(|l| {
            let l = l.trim();
            l.contains("README: begin") && l.split_whitespace().any(|w| w == name)
        })
        .unwrap_or_else(|| panic!("no `README: begin {name}`"));
    let end = begin
        + lines[begin..]
            .iter()
            .position(|l| l.contains("README: end"))
            .unwrap_or_else(|| panic!("no `README: end` after `README: begin {name}`"));
    let body = &lines[begin + 1..end];
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_embedding_example_is_the_tested_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("policy-core/README.md")).unwrap();
    for (file, name, info) in EXAMPLES {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        let block = format!("```{info}\n{}\n```", region(&source, name));
        assert!(
            readme.contains(&block),
            "policy-core/README.md lacks the `{name}` example of {file}, exactly:\n{block}"
        );
    }
}

#[test]
fn regions_are_cut_at_their_markers() {
    let source = "x\n    // README: begin demo\n    a\n      b\n\n    // README: end\ny";
    assert_eq!(region(source, "demo"), "a\n  b\n");
}
