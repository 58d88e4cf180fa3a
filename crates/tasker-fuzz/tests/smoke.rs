//! The fuzz smoke run (SPEC §15): every harness over every file of its
//! committed corpus (`fuzz/corpus/<target>/`), then over seeded mutants of
//! them. A panic is a bug; the failing input is printed so that it can be
//! added to the corpus once fixed. `TASKER_FUZZ_MUTANTS` sets how many
//! mutants per target (a longer local run: 100000); the default keeps CI
//! at a few seconds.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use tasker_fuzz::mutate::mutate;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let inputs: Vec<_> = files
        .into_iter()
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect();
    assert!(
        inputs.len() >= 5,
        "{target}: a corpus of {} files",
        inputs.len()
    );
    inputs
}

fn mutants() -> usize {
    std::env::var("TASKER_FUZZ_MUTANTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000)
}

fn run(target: &str, harness: fn(&[u8])) {
    let inputs = corpus(target);
    for (name, input) in &inputs {
        if catch_unwind(AssertUnwindSafe(|| harness(input))).is_err() {
            panic!("{target}: corpus file {name} panics");
        }
    }
    let mut rng = fastrand::Rng::with_seed(0x7461_736b);
    for i in 0..mutants() {
        let (_, seed) = &inputs[i % inputs.len()];
        let input = mutate(seed, &mut rng);
        if catch_unwind(AssertUnwindSafe(|| harness(&input))).is_err() {
            panic!(
                "{target}: mutant {i} panics; input (lossy): {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

#[test]
fn template_source_survives_its_corpus_and_mutants() {
    run("template_source", tasker_fuzz::template_source);
}

#[test]
fn task_request_survives_its_corpus_and_mutants() {
    run("task_request", tasker_fuzz::task_request);
}

#[test]
fn outcome_expansion_survives_its_corpus_and_mutants() {
    run("outcome_expansion", tasker_fuzz::outcome_expansion);
}
