//! `botflow validate` and `botflow schema` run as a CI job would: the real binary on real folders.

use crate::support::{botflow_bin, workspace_root};
use std::path::Path;
use std::process::Command;

/// What a run of the binary printed and returned.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The only caller of the binary in this suite: runs `botflow ARGS` in `dir`.
fn botflow(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(botflow_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const GOOD: &str = r#"{"format": 1, "id": "hello", "name": "Hello", "triggers": [{"type": "keyword", "words": ["hello"]}],
  "start": "hi", "blocks": [{"id": "hi", "type": "send_message", "messages": [{"type": "text", "text": "Hi!"}]}]}"#;

const BROKEN: &str = r#"{
  "format": 1, "id": "broken", "name": "Broken", "start": "welcome",
  "blocks": [
    {"id": "welcome", "type": "send_message", "messages": [
      {"type": "text", "text": "Hi", "buttons": [{"title": "A title far too long for Messenger", "next": "colours"}]},
      {"type": "otn_request", "topic": {"name": "Restock"}, "title": ""}
    ], "next": "later"},
    {"id": "later", "type": "delay", "duration": "25h", "next": "remind"},
    {"id": "remind", "type": "send_mesage", "messages": []}
  ]
}
"#;

#[test]
fn example_flows_are_all_valid() {
    let run = botflow(
        &workspace_root(),
        &["validate", "flows/", "--deny-warnings"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "checked 4 files: all valid\n");
}

#[test]
fn broken_flow_gets_every_problem_with_its_pointer_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "flows/broken.json", BROKEN);
    write(dir.path(), "flows/good.json", GOOD);
    let run = botflow(dir.path(), &["validate", "flows"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "\
flows/broken.json:/blocks/0/messages/0/buttons/0/next: error[dangling-target]: block `colours` does not exist
  = hint: point it at the id of an existing block
flows/broken.json:/blocks/0/messages/0/buttons/0/title: error[button-title-too-long]: button title has 34 characters; Messenger allows at most 20
flows/broken.json:/blocks/0/messages/1/title: error[otn-title-empty]: OTN request title is empty
  = hint: the title is what the subscriber sees above \"Notify me\"
flows/broken.json:/blocks/2/type: error[unknown-block-type]: unknown block type `send_mesage`
  = hint: did you mean `send_message`?
checked 2 files: 4 errors, 0 warnings
"
    );
}

#[test]
fn json_format_is_one_array_of_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "broken.json", BROKEN);
    write(
        dir.path(),
        "syntax.json",
        "{\n  \"format\": 1,\n  oops\n}\n",
    );
    let run = botflow(
        dir.path(),
        &["validate", "--format", "json", "broken.json", "syntax.json"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let all: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 5);
    for entry in all {
        for field in ["file", "pointer", "code", "severity", "message"] {
            assert!(entry.get(field).is_some(), "`{field}` missing in {entry}");
        }
    }
    assert_eq!(all[1]["pointer"], "/blocks/0/messages/0/buttons/0/title");
    assert_eq!(all[1]["code"], "button-title-too-long");
    assert_eq!(all[1]["severity"], "error");
    let syntax = &all[4];
    assert_eq!(syntax["file"], "syntax.json");
    assert_eq!(syntax["code"], "invalid-json");
    assert_eq!(
        syntax["location"],
        serde_json::json!({"line": 3, "column": 3})
    );
}

#[test]
fn warnings_fail_only_with_deny_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let with_orphan = GOOD.replace(
        r#"]}]}"#,
        r#"]}, {"id": "orphan", "type": "action", "actions": []}]}"#,
    );
    write(dir.path(), "orphan.json", &with_orphan);
    let run = botflow(dir.path(), &["validate", "orphan.json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        run.stdout,
        "\
orphan.json:/blocks/1: warning[unreachable-block]: block `orphan` cannot be reached from the start block
  = hint: connect it to the flow, or delete it
checked 1 file: 0 errors, 1 warning
"
    );
    let denied = botflow(dir.path(), &["validate", "--deny-warnings", "orphan.json"]);
    assert_eq!(denied.code, 1);
}

#[test]
fn trigger_conflicts_across_a_folder_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "flows/a/hello.json", GOOD);
    let other = GOOD
        .replace("\"id\": \"hello\"", "\"id\": \"other\"")
        .replace("[\"hello\"]", "[\"HELLO \"]");
    write(dir.path(), "flows/b/other.json", &other);
    write(dir.path(), "flows/notes.txt", "not a flow");
    let run = botflow(dir.path(), &["validate", "flows"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        "\
flows/b/other.json:/triggers/0/words/0: error[conflicting-trigger]: keyword \"hello\" is also a trigger of flow `hello` in flows/a/hello.json
  = hint: each trigger may start only one flow
checked 2 files: 1 error, 0 warnings
"
    );
}

#[test]
fn missing_paths_and_bad_usage_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "good.json", GOOD);
    let missing = botflow(dir.path(), &["validate", "good.json", "nope.json"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("cannot read nope.json"),
        "{}",
        missing.stderr
    );
    assert_eq!(missing.stdout, "");
    let empty = tempfile::tempdir().unwrap();
    let no_flows = botflow(empty.path(), &["validate", "."]);
    assert_eq!(no_flows.code, 2);
    assert!(
        no_flows.stderr.contains("no *.json files"),
        "{}",
        no_flows.stderr
    );
    assert_eq!(botflow(dir.path(), &["validate"]).code, 2);
    assert_eq!(
        botflow(dir.path(), &["validate", "--format", "xml", "good.json"]).code,
        2
    );
}

#[test]
fn a_file_that_is_not_utf8_is_a_problem_of_that_file_not_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "flows/good.json", GOOD);
    std::fs::write(
        dir.path().join("flows/latin1.json"),
        b"{\"name\": \"caf\xe9\"}",
    )
    .unwrap();
    let run = botflow(dir.path(), &["validate", "flows"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.stdout,
        "flows/latin1.json:1:14: error[invalid-json]: the text is not UTF-8 (byte 0xe9 is not valid here)\n\
         checked 2 files: 1 error, 0 warnings\n"
    );
}

/// `botflow validate ... | head` is how people peek at a long report: when the reader stops
/// early, botflow exits with the report's code and prints no "Broken pipe" error.
#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 unreachable blocks: a report far larger than a pipe's buffer.
    let blocks: Vec<String> = (0..3_000)
        .map(|i| format!(r#"{{"id": "b{i}", "type": "send_message", "messages": [{{"type": "text", "text": "x"}}]}}"#))
        .collect();
    let flow = format!(
        r#"{{"format": 1, "id": "big", "name": "Big", "start": "b0", "blocks": [{}]}}"#,
        blocks.join(",")
    );
    write(dir.path(), "big.json", &flow);
    let script = format!(
        "'{}' validate --format json big.json 2>stderr.txt | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}",
        botflow_bin().display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = std::fs::read_to_string(dir.path().join("stderr.txt")).unwrap();
    assert_eq!(stderr, "", "nothing on stderr");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "warnings only: exit 0"
    );
}

#[test]
fn openapi_prints_the_stored_document() {
    let run = botflow(&workspace_root(), &["openapi"]);
    assert_eq!(run.code, 0);
    let stored = std::fs::read_to_string(workspace_root().join("schemas/openapi.json")).unwrap();
    assert_eq!(run.stdout, stored);
    let document: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
}

#[test]
fn schema_prints_the_stored_schema() {
    let run = botflow(&workspace_root(), &["schema"]);
    assert_eq!(run.code, 0);
    let stored =
        std::fs::read_to_string(workspace_root().join("schemas/flow.schema.json")).unwrap();
    assert_eq!(run.stdout, stored);
}
