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

#[test]
fn preview_turns_carry_the_bots_messages_buttons_and_the_otn_request() {
    use botflow_runtime::simulate::{OptinTarget, ScriptStep, preview};
    let restock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows/restock.json");
    let flows = vec![load_flow(&restock)];
    let steps = vec![
        ScriptStep::User("restock".to_owned()),
        ScriptStep::Optin(OptinTarget::Latest(true)),
        ScriptStep::Tap("Other colours".to_owned()),
        ScriptStep::Tap("Nothing like this".to_owned()),
    ];
    let fields = [("first_name".to_owned(), "Ada".to_owned())].into();
    let turns = preview(&flows, fields, &steps);
    assert_eq!(turns.len(), 4);
    assert_eq!(turns[0].input, "user: restock");
    let first: Vec<(&str, &str)> = turns[0]
        .messages
        .iter()
        .map(|m| (m.summary.kind, m.summary.text.as_str()))
        .collect();
    assert_eq!(
        first,
        [
            ("text", "Hi Ada! The red sneakers are sold out."),
            ("otn_request", "Tell me when red sneakers are back"),
        ]
    );
    assert_eq!(
        turns[0].messages[0].summary.buttons[0].title,
        "Other colours"
    );
    assert!(
        turns[0]
            .notes
            .iter()
            .any(|n| n.contains("flow `restock` v1 started"))
    );
    assert_eq!(
        turns[1].messages[0].summary.text,
        "Done: one message when they are back."
    );
    assert!(turns[1].notes.iter().any(|n| n.starts_with("token ")));
    assert_eq!(turns[2].messages[0].summary.quick_replies[0].0, "Blue");
    assert!(turns[3].messages.is_empty());
    assert!(
        turns[3].notes[0].contains("no button or quick reply titled"),
        "{:?}",
        turns[3]
    );
    // The same steps give the same turns: a preview is a pure replay.
    let again = preview(
        &flows,
        [("first_name".to_owned(), "Ada".to_owned())].into(),
        &steps,
    );
    assert_eq!(again, turns);
}
