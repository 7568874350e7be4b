//! Golden tests: every `test_data/err/*.json` fixture with its expected diagnostics in the
//! `.expected` file beside it, and every `test_data/ok/*.json` fixture free of any diagnostic.

use crate::support::{compare_with_file, json_files, test_data};
use botflow_flow::{
    FlowDocument, Severity, TopicId, check_text, check_text_with_topics, check_trigger_conflicts,
    codes, parse_flow, render_human,
};
use std::collections::BTreeSet;

/// The only caller of the validator in this suite: the diagnostics of `text` as the CLI prints them.
fn check(file: &str, text: &str) -> String {
    let report = check_text(text);
    let mut out = String::new();
    for diagnostic in &report.diagnostics {
        out.push_str(&render_human(file, diagnostic));
        out.push('\n');
    }
    out
}

#[test]
fn err_fixtures_report_exactly_the_expected_diagnostics() {
    let mut stale = Vec::new();
    let mut codes_seen = BTreeSet::new();
    let files = json_files(&test_data().join("err"));
    assert!(files.len() >= 30, "fixtures missing: {}", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let actual = check(&name, &text);
        assert!(
            actual.contains("error[") || actual.contains("warning["),
            "{name} has no problem:\n{actual}"
        );
        for diagnostic in check_text(&text).diagnostics {
            codes_seen.insert(diagnostic.code);
        }
        if let Some(problem) =
            compare_with_file(&path.with_extension("expected"), &actual, "UPDATE_EXPECT")
        {
            stale.push(problem);
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n\n"));
    // Every code has a fixture, except the ones that need several files or a store.
    let elsewhere = [
        codes::UNKNOWN_TOPIC,
        codes::CONFLICTING_TRIGGER,
        codes::DUPLICATE_FLOW_ID,
    ];
    for (code, _, _) in codes::ALL {
        assert!(
            codes_seen.contains(*code) || elsewhere.contains(code),
            "no fixture reports `{code}`"
        );
    }
}

#[test]
fn ok_fixtures_have_no_diagnostics_and_parse() {
    let files = json_files(&test_data().join("ok"));
    assert!(!files.is_empty());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(check(&name, &text), "", "{name}");
        let document = parse_flow(&text).unwrap();
        assert_eq!(botflow_flow::validate(&document), [], "{name}");
    }
}

#[test]
fn every_code_has_the_severity_of_the_table() {
    for path in json_files(&test_data().join("err")) {
        let text = std::fs::read_to_string(&path).unwrap();
        for diagnostic in check_text(&text).diagnostics {
            assert_eq!(
                codes::severity_of(&diagnostic.code),
                Some(diagnostic.severity),
                "{}: {}",
                path.display(),
                diagnostic.code
            );
        }
    }
}

#[test]
fn unknown_topic_ids_are_reported_when_checked_against_a_store() {
    let text = r#"{"format": 1, "id": "f", "name": "F", "start": "a", "triggers": [{"type": "get_started"}],
      "blocks": [{"id": "a", "type": "send_message", "messages": [
        {"type": "otn_request", "topic": {"id": "known"}, "title": "Notify me"},
        {"type": "otn_request", "topic": {"id": "gone"}, "title": "Notify me too"},
        {"type": "otn_request", "topic": {"name": "New topic"}, "title": "And me"}]}]}"#;
    let store = |id: &TopicId| id.as_str() == "known";
    let report = check_text_with_topics(text, &store);
    let found: Vec<_> = report
        .diagnostics
        .iter()
        .map(|d| (d.code.as_str(), d.pointer.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [(
            codes::UNKNOWN_TOPIC,
            "/blocks/0/messages/1/topic/id",
            "no topic has id `gone`"
        )]
    );
    // Without a store, topic ids are not checked.
    assert!(check_text(text).diagnostics.is_empty());
}

fn document(id: &str, triggers: &str) -> FlowDocument {
    let text = format!(
        r#"{{"format": 1, "id": "{id}", "name": "N", "start": "a", "triggers": {triggers},
           "blocks": [{{"id": "a", "type": "send_message", "messages": [{{"type": "text", "text": "x"}}]}}]}}"#
    );
    parse_flow(&text).unwrap()
}

#[test]
fn trigger_conflicts_name_both_files() {
    let first = document(
        "restock",
        r#"[{"type": "keyword", "words": ["Restock", "sale"]}, {"type": "get_started"}]"#,
    );
    let second = document(
        "promo",
        r#"[{"type": "keyword", "words": ["promo", " restock "]}, {"type": "get_started"}, {"type": "referral", "ref": "ad"}]"#,
    );
    let third = document("restock", r#"[{"type": "referral", "ref": "ad"}]"#);
    let found: Vec<String> = check_trigger_conflicts([
        ("flows/a.json", &first),
        ("flows/b.json", &second),
        ("flows/c.json", &third),
    ])
    .into_iter()
    .map(|d| {
        assert_eq!(d.diagnostic.severity, Severity::Error);
        render_human(&d.file, &d.diagnostic)
    })
    .collect();
    assert_eq!(
        found,
        [
            "flows/b.json:/triggers/0/words/1: error[conflicting-trigger]: keyword \"restock\" is also a trigger of flow `restock` in flows/a.json\n  = hint: each trigger may start only one flow",
            "flows/b.json:/triggers/1: error[conflicting-trigger]: the get_started trigger is also a trigger of flow `restock` in flows/a.json\n  = hint: each trigger may start only one flow",
            "flows/c.json:/id: error[duplicate-flow-id]: flow id `restock` is also used by flows/a.json",
            "flows/c.json:/triggers/0/ref: error[conflicting-trigger]: referral \"ad\" is also a trigger of flow `promo` in flows/b.json\n  = hint: each trigger may start only one flow",
        ]
    );
}

#[test]
fn parse_errors_carry_line_and_column() {
    let err = parse_flow("{\n  \"format\": 1,\n  \"id\": ,\n}").unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].code, codes::INVALID_JSON);
    let at = err[0].location.unwrap();
    assert_eq!((at.line, at.column), (3, 9));
}

#[test]
fn an_error_at_the_end_of_a_line_has_a_column_from_1() {
    // serde_json says "line 2 column 0" for an end of input right after a newline.
    let err = parse_flow("{\"format\": 1,\n").unwrap_err();
    let at = err[0].location.unwrap();
    assert_eq!((at.line, at.column), (2, 1));
}

#[test]
fn bytes_that_are_not_utf8_are_invalid_json_with_their_place() {
    let report = botflow_flow::check_bytes(b"{\"format\": 1,\n  \"id\": \"caf\xe9\"}");
    assert_eq!(report.document, None);
    assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
    let diagnostic = &report.diagnostics[0];
    assert_eq!(diagnostic.code, codes::INVALID_JSON);
    assert_eq!(
        diagnostic.message,
        "the text is not UTF-8 (byte 0xe9 is not valid here)"
    );
    let at = diagnostic.location.unwrap();
    assert_eq!((at.line, at.column), (2, 13));
}

#[test]
fn a_byte_order_mark_is_named() {
    let report = botflow_flow::check_bytes(b"\xef\xbb\xbf{\"format\": 1}");
    assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
    assert_eq!(report.diagnostics[0].code, codes::INVALID_JSON);
    assert!(
        report.diagnostics[0].message.contains("byte order mark"),
        "{}",
        report.diagnostics[0].message
    );
    let at = report.diagnostics[0].location.unwrap();
    assert_eq!((at.line, at.column), (1, 1));
}

#[test]
fn utf8_bytes_are_checked_like_text() {
    let text = r#"{"format": 1, "id": "x", "name": "X", "start": "a", "blocks": []}"#;
    assert_eq!(
        botflow_flow::check_bytes(text.as_bytes()),
        botflow_flow::check_text(text)
    );
}

#[test]
fn readme_lists_every_code_with_its_severity() {
    let readme =
        std::fs::read_to_string(crate::support::workspace_root().join("README.md")).unwrap();
    for (code, severity, _) in codes::ALL {
        let row = format!("| `{code}` | {severity} |");
        assert!(readme.contains(&row), "README.md lacks the row {row}");
    }
}
