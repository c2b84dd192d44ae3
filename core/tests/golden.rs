//! Golden-script tests: every `scripts/*.script` runs through the simulator and its trace must
//! equal the committed `scripts/*.golden`. Set `UPDATE_GOLDENFILES=1` to regenerate them after
//! an intended change, and read the diff.
//!
//! A script is commands (`cluster`, `put n2 user123=Alice`, `crash n5`, `partition n2 | n4`,
//! `skew n1 -50`, `join n6`, `leave n3`, `run 1000`, `stored user123`, `status`, …; the
//! interpreter is `ringstore_core::sim::script`) and its trace reads like the protocol
//! (`200ms  n2 -> n1 HintedPut user123=Alice ts=200 hint-for=n5`). The data-path scripts use the
//! oracle membership, so their traces show the data path only; the others run gossip. The page's
//! lessons are these same files, with narration (`docs/LESSONS.md`).
//!
//! A trace shows part of what happened; `event_log_hashes/scripts.golden` pins the rest: the
//! hash and length of each script's whole event log (every message, timer and storage event).
//! A change meant to leave behaviour alone (a refactoring, a file split, a rename) must leave
//! it as it is. After an intended change in behaviour, `UPDATE_GOLDENFILES=1` regenerates it
//! too; the seed sweep keeps the same kind of file for its seeds
//! (`seed_sweep::event_log_hashes_are_unchanged`).

mod support;

use ringstore_core::sim::script::{run_script, run_script_logged};
use std::path::Path;

#[test]
fn golden_scripts_match_their_traces() {
    let update = std::env::var_os("UPDATE_GOLDENFILES").is_some();
    let scripts = script_paths();
    assert!(
        scripts.len() >= 6,
        "expected the golden scenarios, found {scripts:?}"
    );
    let mut failures = Vec::new();
    for script in &scripts {
        let text = std::fs::read_to_string(script).expect("read script");
        let trace = match run_script(&text) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{}: {e}", script.display()));
                continue;
            }
        };
        let golden = script.with_extension("golden");
        if update {
            std::fs::write(&golden, &trace).expect("write golden");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != trace {
            let first = expected
                .lines()
                .zip(trace.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(expected.lines().count().min(trace.lines().count()));
            failures.push(format!(
                "{} differs from {} at line {}:\n  expected: {:?}\n  got:      {:?}\n(UPDATE_GOLDENFILES=1 regenerates; then read the diff)",
                script.display(),
                golden.display(),
                first + 1,
                expected.lines().nth(first).unwrap_or("<end>"),
                trace.lines().nth(first).unwrap_or("<end>"),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The script files in `tests/scripts`, sorted.
fn script_paths() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    let mut scripts: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/scripts")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "script"))
        .collect();
    scripts.sort();
    scripts
}

#[test]
fn event_log_hashes_are_unchanged() {
    let mut table = String::from(
        "# The hash and length of each golden script's event log (tests/golden.rs).\n\
         # A change that keeps behaviour keeps these; UPDATE_GOLDENFILES=1 regenerates them.\n",
    );
    for script in script_paths() {
        let text = std::fs::read_to_string(&script).expect("read script");
        let run = run_script_logged(&text).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        let name = script.file_stem().expect("a name").to_string_lossy();
        table.push_str(&format!(
            "{name} events={} hash={:016x}\n",
            run.log_events, run.log_hash
        ));
    }
    support::check_hash_table("scripts.golden", &table, "a golden script's event log");
}

#[test]
fn the_same_script_gives_the_same_trace() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/hinted_handoff.script"),
    )
    .expect("script");
    assert_eq!(run_script(&text).unwrap(), run_script(&text).unwrap());
}

#[test]
fn every_golden_script_is_a_lesson_with_its_narration() {
    let mut checked = 0;
    for path in script_paths() {
        let text = std::fs::read_to_string(&path).expect("read script");
        let lesson = ringstore_core::sim::script::parse_lesson(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!lesson.title.is_empty(), "{}: no title", path.display());
        assert!(!lesson.section.is_empty(), "{}: section", path.display());
        assert!(lesson.steps.len() >= 3, "{}: steps", path.display());
        let last = &lesson.steps[lesson.steps.len() - 1].say;
        assert!(
            last.contains("You can now say"),
            "{}: the last step says what the student can now say",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 12, "{checked}");
}
