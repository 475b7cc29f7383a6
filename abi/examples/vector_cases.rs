//! Writes the project's policy vectors as plain files for hosts that do not parse JSON test
//! files themselves (the C ABI test): `doc<N>.json` and `cases.tsv`, one line per case,
//! `N \t outcome \t policy \t request` (`policy`: `-` not checked, `null` none, else the deciding
//! policy's id or name). Cases that expect a request error, and documents that must not load,
//! are left out: the C test checks those shapes on its own.
//!
//! usage: cargo run -p policy-core-abi --example vector_cases -- OUT_DIR
#![allow(clippy::print_stderr, reason = "it reports on stderr")]

use std::fmt::Write as _;
use std::path::Path;

use policy_core::suite::{DocumentSource, Expect, Expects, TestFile};

fn main() -> Result<(), String> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: vector_cases OUT_DIR")?;
    let out = Path::new(&out);
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy-core/tests/vectors");
    let mut files: Vec<_> = std::fs::read_dir(&vectors)
        .map_err(|e| format!("{}: {e}", vectors.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut lines = String::new();
    let (mut documents, mut cases) = (0usize, 0usize);
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let test = TestFile::from_json(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let (DocumentSource::Inline(document), Expects::Cases(list)) =
            (&test.document, &test.expects)
        else {
            continue;
        };
        std::fs::write(out.join(format!("doc{documents}.json")), document)
            .map_err(|e| e.to_string())?;
        for case in list {
            let Expect::Verdict {
                outcome, policy, ..
            } = &case.expect
            else {
                continue;
            };
            let policy = match policy {
                None => "-".to_owned(),
                Some(None) => "null".to_owned(),
                Some(Some(p)) => p.clone(),
            };
            let request = case.request.replace(['\n', '\t'], " ");
            let _ = writeln!(lines, "{documents}\t{outcome}\t{policy}\t{request}");
            cases += 1;
        }
        documents += 1;
    }
    std::fs::write(out.join("cases.tsv"), lines).map_err(|e| e.to_string())?;
    eprintln!(
        "{cases} cases over {documents} documents in {}",
        out.display()
    );
    Ok(())
}
