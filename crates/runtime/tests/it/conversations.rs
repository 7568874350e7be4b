//! Golden conversation tests: every folder under `test_data/conversations/` holds flow files,
//! a `script.json` and the expected `transcript.txt`. The script's own expectations must hold
//! and the transcript must match; `UPDATE_EXPECT=1 cargo test` rewrites stale transcripts.

use botflow_flow::{ValidFlow, check_text};
use botflow_runtime::simulate::{Script, run_script};
use std::path::{Path, PathBuf};

fn load_flow(path: &Path) -> ValidFlow {
    let report = check_text(&std::fs::read_to_string(path).unwrap());
    let errors: Vec<_> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    ValidFlow::new(report.document.unwrap()).unwrap()
}

/// Runs one case folder and returns a description of what differs, if anything.
fn check(case: &Path) -> Option<String> {
    let mut flows = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(case)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("script.json"))
        .collect();
    files.sort();
    for file in &files {
        flows.push(load_flow(file));
    }
    let script: Script =
        serde_json::from_str(&std::fs::read_to_string(case.join("script.json")).unwrap()).unwrap();
    let report = run_script(&flows, &script);
    let golden = case.join("transcript.txt");
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    let mut problems = String::new();
    if !report.passed() {
        problems.push_str(&format!(
            "script expectations failed: {:#?}\n",
            report.failures
        ));
    }
    if report.transcript != expected {
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&golden, &report.transcript).unwrap();
        } else {
            problems.push_str(&format!(
                "transcript differs from {} (UPDATE_EXPECT=1 rewrites it):\n{}",
                golden.display(),
                report.transcript
            ));
        }
    }
    (!problems.is_empty()).then(|| format!("== {}\n{problems}", case.display()))
}

#[test]
fn conversations_match_their_golden_transcripts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/conversations");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let names: Vec<_> = cases
        .iter()
        .map(|c| c.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for kind in botflow_flow::BLOCK_TYPES {
        assert!(
            names.iter().any(|n| n == kind)
                || (kind == "otn_send" && names.iter().any(|n| n == "otn")),
            "no conversation case for block kind {kind}"
        );
    }
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
