//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/*`) and every saved crash
//! (`fuzz/regressions/<target>/*`) through `purser_core::fuzzing` on stable Rust, so CI checks
//! in seconds that no input the fuzzer ever kept panics or breaks an invariant. A missing or
//! empty corpus directory fails the test: it cannot pass by finding nothing.

use purser_core::fuzzing::TARGETS;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.expect("readable dir entry").path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Runs every file of `dir` through `f`; returns how many ran and the failures (file: panic).
fn replay(f: fn(&[u8]), dir: &Path) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let list = files(dir);
    for path in &list {
        let data = std::fs::read(path).expect("readable corpus file");
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| f(&data))) {
            let why = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            failures.push(format!("{}: {why}", path.display()));
        }
    }
    (list.len(), failures)
}

#[test]
fn every_target_has_a_corpus_and_it_replays_clean() {
    let corpus = fuzz_dir().join("corpus");
    let mut failures = Vec::new();
    for (name, f) in TARGETS {
        let (n, mut bad) = replay(*f, &corpus.join(name));
        assert!(n > 0, "fuzz/corpus/{name} is missing or empty");
        println!("{name}: {n} corpus inputs");
        failures.append(&mut bad);
    }
    let dirs: Vec<String> = files_and_dirs(&corpus);
    for d in dirs {
        assert!(TARGETS.iter().any(|(n, _)| *n == d), "fuzz/corpus/{d} has no target in purser_core::fuzzing::TARGETS");
    }
    assert!(failures.is_empty(), "{} corpus inputs fail:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_saved_crash_stays_fixed() {
    let regressions = fuzz_dir().join("regressions");
    let mut failures = Vec::new();
    for d in files_and_dirs(&regressions) {
        let f = TARGETS.iter().find(|(n, _)| *n == d).unwrap_or_else(|| panic!("fuzz/regressions/{d} has no target")).1;
        let (n, mut bad) = replay(f, &regressions.join(&d));
        assert!(n > 0, "fuzz/regressions/{d} is empty");
        println!("{d}: {n} regressions");
        failures.append(&mut bad);
    }
    assert!(failures.is_empty(), "saved crashes fail again:\n{}", failures.join("\n"));
}

fn files_and_dirs(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}
