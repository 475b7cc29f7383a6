//! Every regression input (`regressions/<target>/`, crashes fuzzing found) and every seed
//! (generated, and `seeds/<target>/`) runs through its target natively, so a fixed crash stays
//! fixed and the oracles hold on the project's own vectors.

use std::collections::BTreeSet;

use edge_access_fuzz::{files_in, fuzz_dir, repository_root, run_caught, seeds, TARGETS};

fn target(name: &str) -> edge_access_fuzz::Target {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, run)| *run)
        .unwrap_or_else(|| panic!("no target `{name}`"))
}

#[test]
fn regression_inputs_pass() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, run) in TARGETS {
        for file in files_in(&fuzz_dir().join("regressions").join(name)) {
            count += 1;
            let data = std::fs::read(&file).unwrap();
            if let Err(message) = run_caught(*run, &data) {
                failures.push(format!("{}: {message}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{count} regression inputs pass");
}

#[test]
fn seeds_pass() {
    let mut all = seeds::generated(&repository_root()).unwrap();
    all.extend(seeds::committed(&fuzz_dir()).unwrap());
    let mut failures = Vec::new();
    for seed in &all {
        if let Err(message) = run_caught(target(seed.target), &seed.data) {
            failures.push(format!("{} / {}: {message}", seed.target, seed.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every target starts from something.
    let seeded: BTreeSet<&str> = all.iter().map(|s| s.target).collect();
    for (name, _) in TARGETS {
        assert!(seeded.contains(name), "no seeds for `{name}`");
    }
}

/// The folders under `regressions/` and `seeds/` and the files in `fuzz_targets/` all name
/// targets, so an input is never silently skipped for a misspelt folder.
#[test]
fn every_folder_names_a_target() {
    let names: BTreeSet<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    for folder in ["regressions", "seeds"] {
        for entry in std::fs::read_dir(fuzz_dir().join(folder)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() {
                assert!(
                    names.contains(name.as_str()),
                    "{folder}/{name} is not a target"
                );
            }
        }
    }
    let files: BTreeSet<String> = files_in(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|f| f.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let expected: BTreeSet<String> = names.iter().map(|n| (*n).to_owned()).collect();
    assert_eq!(files, expected, "fuzz_targets/ and TARGETS differ");
}

/// The replay catches what a target reports.
#[test]
fn a_failing_input_is_reported() {
    fn fails(data: &[u8]) {
        assert!(data != b"boom", "found it");
    }
    assert!(run_caught(fails, b"fine").is_ok());
    assert_eq!(run_caught(fails, b"boom").unwrap_err(), "found it");
}
