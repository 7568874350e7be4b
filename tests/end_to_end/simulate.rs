//! `botflow simulate`: every example flow's conversation script passes through the real binary,
//! and a failed expectation or bad input gives the documented exit codes.

use crate::support::{botflow_bin, workspace_root};
use std::path::Path;
use std::process::{Command, Output};

fn simulate(flow: &Path, script: &Path) -> Output {
    Command::new(botflow_bin())
        .arg("simulate")
        .arg(flow)
        .arg("--script")
        .arg(script)
        .output()
        .unwrap()
}

#[test]
fn every_example_flow_has_a_passing_conversation_script() {
    let root = workspace_root();
    let mut flows: Vec<_> = std::fs::read_dir(root.join("flows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    flows.sort();
    assert!(!flows.is_empty(), "no example flows in flows/");
    for flow in flows {
        let script = root
            .join("tests/conversations")
            .join(flow.file_name().unwrap());
        assert!(
            script.exists(),
            "{} has no conversation script at {}",
            flow.display(),
            script.display()
        );
        let out = simulate(&flow, &script);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}:\n{stdout}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("expect: ok"),
            "{} checks nothing:\n{stdout}",
            script.display()
        );
        assert!(
            stdout.contains("bot"),
            "{} shows no bot message:\n{stdout}",
            script.display()
        );
    }
}

#[test]
fn a_failed_expectation_exits_1_and_names_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("wrong.json");
    std::fs::write(
        &script,
        r#"{"fields": {"first_name": "Ada"}, "steps": [
            {"user": "restock"},
            {"expect": ["Hello there"]}
        ]}"#,
    )
    .unwrap();
    let out = simulate(&workspace_root().join("flows/restock.json"), &script);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAILED: expect messages"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("step 2:"), "{stderr}");
    assert!(
        stderr.contains("Hi Ada! The red sneakers are sold out."),
        "{stderr}"
    );
}

#[test]
fn bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let flow = workspace_root().join("flows/restock.json");
    let bad_script = dir.path().join("bad.json");
    std::fs::write(&bad_script, r#"{"steps": [{"shout": "hi"}]}"#).unwrap();
    let out = simulate(&flow, &bad_script);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid conversation script"));

    let script = dir.path().join("ok.json");
    std::fs::write(&script, r#"{"steps": []}"#).unwrap();
    let bad_flow = dir.path().join("flow.json");
    std::fs::write(
        &bad_flow,
        r#"{"format": 1, "id": "f", "name": "F", "start": "nowhere", "blocks": []}"#,
    )
    .unwrap();
    let out = simulate(&bad_flow, &script);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a valid flow"));

    let out = simulate(&dir.path().join("missing.json"), &script);
    assert_eq!(out.status.code(), Some(2));
}
