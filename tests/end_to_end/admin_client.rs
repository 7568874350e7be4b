//! The CLI's admin API client (`botflow push`, `topics`, `flows`, `notify`) run as a CI job would:
//! the real binary against the real `botflow serve` (and `serve --demo`) on 127.0.0.1.

use crate::support::{
    ADMIN_TOKEN, PAGE_ID, ServerProcess, botflow_bin, now_ms, wait_until, workspace_root,
};
use botflow_messenger::fake::FakeGraphApi;
use botflow_server::delivery::{envelope, otn_optin, text_message};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// What a run of the binary printed and returned.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The only caller of the binary in this suite: `botflow ARGS` against `server` with the admin
/// token in the environment, as a CI job sets it; `env` adds or overrides variables.
fn botflow(server: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
    let out = Command::new(botflow_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BOTFLOW_SERVER", server)
        .env("BOTFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A copy of the example flows in a fresh folder, to edit.
fn example_flows() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).unwrap();
    for name in ["lead-capture.json", "restock-notify.json", "restock.json"] {
        std::fs::copy(workspace_root().join("flows").join(name), flows.join(name)).unwrap();
    }
    (dir, flows)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// The flow list of the test Page: id → (live version, draft state).
async fn flow_states(server: &ServerProcess) -> Vec<(String, Value, String)> {
    let (status, flows) = server
        .api_json(Method::GET, &format!("/api/pages/{PAGE_ID}/flows"), None)
        .await;
    assert_eq!(status, 200, "{flows}");
    flows
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["active_version"].clone(),
                f["draft"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn line_of<'a>(run: &'a Run, flow: &str) -> &'a str {
    let marker = format!("({flow}): ");
    run.stdout
        .lines()
        .find(|line| line.contains(&marker))
        .unwrap_or_else(|| panic!("no line for {flow} in:\n{}{}", run.stdout, run.stderr))
        .split(&marker)
        .nth(1)
        .unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_publishes_to_an_empty_server_then_only_what_changed() {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), fake.base_url(), None).await;
    let url = server.base_url.clone();
    let (_dir, flows) = example_flows();
    let flows_arg = path_str(&flows);

    // An empty server: all three are published, the topic they name is created once.
    let run = botflow(&url, &[], &["push", flows_arg, "--publish"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(line_of(&run, "lead-capture"), "published v1");
    assert_eq!(
        line_of(&run, "restock-notify"),
        "published v1, created topic \"Red sneakers restock\""
    );
    assert_eq!(line_of(&run, "restock"), "published v1");
    assert!(
        run.stdout.ends_with(&format!(
            "pushed 3 flows to Page {PAGE_ID} on {url}: 3 published\n"
        )),
        "{}",
        run.stdout
    );
    let live_v1 = vec![
        ("lead-capture".to_owned(), json!(1), "published".to_owned()),
        ("restock".to_owned(), json!(1), "published".to_owned()),
        (
            "restock-notify".to_owned(),
            json!(1),
            "published".to_owned(),
        ),
    ];
    assert_eq!(flow_states(&server).await, live_v1);

    // Again: nothing changed, no new version.
    let run = botflow(&url, &[], &["push", flows_arg, "--publish"]);
    assert_eq!(run.code, 0, "{run:?}");
    for flow in ["lead-capture", "restock-notify", "restock"] {
        assert_eq!(line_of(&run, flow), "unchanged");
    }
    assert_eq!(flow_states(&server).await, live_v1);

    // A dry run of a change says what would happen and changes nothing, not even the draft.
    let restock = flows.join("restock.json");
    edit(
        &restock,
        "Blue and white are in stock.",
        "Blue, white and green are in stock.",
    );
    let topics_before = server
        .api_json(Method::GET, &format!("/api/pages/{PAGE_ID}/topics"), None)
        .await;
    let run = botflow(&url, &[], &["push", flows_arg, "--publish", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(line_of(&run, "restock"), "would publish v2");
    assert_eq!(line_of(&run, "lead-capture"), "unchanged");
    assert!(
        run.stdout
            .contains("dry run: nothing was saved or published")
    );
    assert_eq!(flow_states(&server).await, live_v1);
    let topics_after = server
        .api_json(Method::GET, &format!("/api/pages/{PAGE_ID}/topics"), None)
        .await;
    assert_eq!(topics_before, topics_after);

    // Without --publish the change is only a draft.
    let run = botflow(&url, &[], &["push", path_str(&restock)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(line_of(&run, "restock"), "draft saved (live v1)");
    let states = flow_states(&server).await;
    assert_eq!(
        states[1],
        ("restock".to_owned(), json!(1), "unpublished".to_owned())
    );

    // The change publishes exactly one new version.
    let run = botflow(
        &url,
        &[],
        &["push", flows_arg, "--publish", "--format", "json"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], true);
    let statuses: Vec<(&str, &str)> = report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["flow"].as_str().unwrap(), f["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("lead-capture", "unchanged"),
            ("restock-notify", "unchanged"),
            ("restock", "published")
        ]
    );
    assert_eq!(report["flows"][2]["version"], 2);
    let states = flow_states(&server).await;
    assert_eq!(
        states[1],
        ("restock".to_owned(), json!(2), "published".to_owned())
    );
    assert_eq!(states[0].1, json!(1));
    assert_eq!(states[2].1, json!(1));

    // flows: versions, rollback, pull; a pulled file pushes back as unchanged.
    let run = botflow(&url, &[], &["flows", "rollback", "restock", "1"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "restock: published v3 with the content of v1\n");
    let run = botflow(&url, &[], &["flows", "versions", "restock"]);
    assert_eq!(run.code, 0, "{run:?}");
    let rows: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(rows.len(), 4, "{}", run.stdout);
    assert!(
        rows[3].starts_with("v3 ") && rows[3].ends_with("live  rollback to v1"),
        "{}",
        run.stdout
    );
    let pulled = tempfile::tempdir().unwrap();
    let pulled_file = pulled.path().join("restock.json");
    let run = botflow(
        &url,
        &[],
        &["flows", "pull", "restock", "-o", path_str(&pulled_file)],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let source: Value =
        serde_json::from_str(&std::fs::read_to_string(&pulled_file).unwrap()).unwrap();
    assert_eq!(
        source["blocks"][2]["messages"][0]["text"],
        "Blue and white are in stock."
    );
    let run = botflow(&url, &[], &["push", path_str(&pulled_file), "--publish"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(line_of(&run, "restock"), "unchanged");
    let run = botflow(&url, &[], &["flows", "list"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("restock ") && l.contains(" v3 ")),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_blocks_every_publish_unless_keep_going() {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), fake.base_url(), None).await;
    let url = server.base_url.clone();
    let (_dir, flows) = example_flows();
    std::fs::write(
        flows.join("broken.json"),
        r#"{"format": 1, "id": "broken", "name": "Broken", "start": "hi",
  "blocks": [{"id": "hi", "type": "send_message", "messages": [{"type": "text", "text": "Hi"}], "next": "gone"}]}"#,
    )
    .unwrap();

    let run = botflow(&url, &[], &["push", path_str(&flows), "--publish"]);
    assert_eq!(run.code, 1, "{run:?}");
    let broken = flows.join("broken.json");
    assert!(
        run.stdout.contains(&format!(
            "{}:/blocks/0/next: error[dangling-target]: ",
            broken.display()
        )),
        "{}",
        run.stdout
    );
    assert_eq!(line_of(&run, "broken"), "1 error, not published");
    assert_eq!(
        line_of(&run, "restock"),
        "draft saved, not published (not published yet)"
    );
    assert!(
        run.stdout
            .contains("nothing published because a file has errors")
    );
    let states = flow_states(&server).await;
    assert_eq!(states.len(), 4, "drafts are saved: {states:?}");
    assert!(
        states.iter().all(|(_, live, _)| live.is_null()),
        "{states:?}"
    );

    // --keep-going publishes the three good ones; the exit code still reports the broken one.
    let run = botflow(
        &url,
        &[],
        &["push", path_str(&flows), "--publish", "--keep-going"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(line_of(&run, "restock"), "published v1");
    let live: Vec<(String, Value)> = flow_states(&server)
        .await
        .into_iter()
        .map(|(id, live, _)| (id, live))
        .collect();
    assert_eq!(
        live,
        [
            ("broken".to_owned(), Value::Null),
            ("lead-capture".to_owned(), json!(1)),
            ("restock".to_owned(), json!(1)),
            ("restock-notify".to_owned(), json!(1)),
        ]
    );

    // A file that is not JSON is reported like `validate` does and never sent.
    std::fs::write(flows.join("broken.json"), "{oops").unwrap();
    let run = botflow(&url, &[], &["push", path_str(&broken), "--dry-run"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("{}:1:2: error[invalid-json]", broken.display())),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_commands_round_trip() {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let flows = workspace_root().join("flows");
    let server = ServerProcess::start(data.path(), fake.base_url(), Some(&flows)).await;
    let url = server.base_url.clone();

    let run = botflow(&url, &[], &["topics", "add", "Summer sale"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("created topic \"Summer sale\" (id "),
        "{}",
        run.stdout
    );
    let run = botflow(&url, &[], &["topics", "add", " summer SALE "]);
    assert_eq!(run.code, 1, "a taken name is refused: {run:?}");
    assert!(run.stderr.contains("is taken"), "{}", run.stderr);

    let run = botflow(&url, &[], &["topics", "list"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "ID", "WAITING", "OPT-INS", "USED", "BY"]
    );
    assert!(
        lines[1].starts_with("Red sneakers restock  ")
            && lines[1].ends_with("  0                restock, restock-notify"),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with("Summer sale  ") && lines[2].ends_with(" -"),
        "{}",
        run.stdout
    );

    let run = botflow(
        &url,
        &[],
        &["topics", "rename", "summer sale", "Winter sale"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .starts_with("renamed topic \"Summer sale\" to \"Winter sale\""),
        "{}",
        run.stdout
    );
    let run = botflow(&url, &[], &["topics", "list", "--format", "json"]);
    let topics: Value = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = topics
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Red sneakers restock", "Weekly deals", "Winter sale"]
    );
    let winter_id = topics[2]["id"].as_str().unwrap();

    let run = botflow(&url, &[], &["topics", "delete", winter_id]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("deleted topic \"Winter sale\""),
        "{}",
        run.stdout
    );
    let run = botflow(&url, &[], &["topics", "delete", "Winter sale"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("has no topic with id or name \"Winter sale\""),
        "{}",
        run.stderr
    );

    // A topic used by live flows: refused unless forced.
    let run = botflow(&url, &[], &["topics", "delete", "Red sneakers restock"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    let run = botflow(
        &url,
        &[],
        &["topics", "delete", "Red sneakers restock", "--force"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let run = botflow(&url, &[], &["topics", "delete", "Weekly deals", "--force"]);
    assert_eq!(
        run.code, 0,
        "the weekly-deals example's recurring topic: {run:?}"
    );
    let run = botflow(&url, &[], &["topics", "list"]);
    assert_eq!(run.stdout, "no topics\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_prints_the_id_and_counts_and_notifications_show_progress() {
    const PSID: &str = "6660001";
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let flows = workspace_root().join("flows");
    let server = ServerProcess::start(data.path(), fake.base_url(), Some(&flows)).await;
    let url = server.base_url.clone();

    // One subscriber opts in to the restock topic.
    let t0 = now_ms();
    let hello = envelope(
        PAGE_ID,
        t0,
        vec![text_message(PAGE_ID, PSID, "m-cli-1", "restock", t0)],
    );
    assert_eq!(server.webhook(&hello.to_string()).await.status(), 200);
    let payload = wait_until("the OTN request", WAIT, || {
        let found = fake.sent_messages().into_iter().find_map(|m| {
            let payload = m.message.pointer("/attachment/payload/payload")?;
            Some(payload.as_str()?.to_owned())
        });
        async move { found }
    })
    .await;
    let token = fake.issue_otn_token(PSID);
    let t1 = now_ms();
    let optin = envelope(
        PAGE_ID,
        t1,
        vec![otn_optin(PAGE_ID, PSID, &payload, &token, t1)],
    );
    assert_eq!(server.webhook(&optin.to_string()).await.status(), 200);
    wait_until("the opt-in to be listed", WAIT, || {
        let run = botflow(&url, &[], &["topics", "list", "--format", "json"]);
        let waiting = serde_json::from_str::<Value>(&run.stdout)
            .ok()
            .map(|t| t[0]["usable_tokens"].clone());
        async move { (waiting == Some(json!(1))).then_some(()) }
    })
    .await;

    let run = botflow(
        &url,
        &[],
        &[
            "notify",
            "red sneakers restock",
            "--text",
            "They are back!",
            "--wait",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let id: u64 = run
        .stdout
        .strip_prefix("notification ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id: {run:?}"));
    assert_eq!(
        run.stdout,
        format!(
            "notification {id} of topic \"Red sneakers restock\": 1 message queued, 0 without a usable opt-in, 0 expired\n\
             notification {id} done: 1/1 sent\n"
        )
    );
    let run = botflow(&url, &[], &["notifications", "show", &id.to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("  state        done\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("  sent         1\n"), "{}", run.stdout);
    let run = botflow(&url, &[], &["notifications", "cancel", &id.to_string()]);
    assert_eq!(
        run.code, 1,
        "a done notification cannot be cancelled: {run:?}"
    );
    assert!(run.stderr.contains("done already"), "{}", run.stderr);
    // The token is spent: a second notification queues nothing.
    let run = botflow(
        &url,
        &[],
        &[
            "notify",
            "Red sneakers restock",
            "--text",
            "Again!",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let counts: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(counts["queued"], 0, "{counts}");
    let run = botflow(
        &url,
        &[],
        &[
            "notifications",
            "list",
            "--topic",
            "Red sneakers restock",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let listed: Value = serde_json::from_str(&run.stdout).unwrap();
    let states: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["state"])
        .collect();
    assert_eq!(
        states,
        [&json!("done"), &json!("done")],
        "newest first: {listed}"
    );
    assert_eq!(listed[1]["id"], id, "{listed}");

    let run = botflow(&url, &[], &["notify", "Blue restock", "--text", "x"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("its topics: \"Red sneakers restock\""),
        "{}",
        run.stderr
    );
    let run = botflow(&url, &[], &["notify", "Red sneakers restock"]);
    assert_eq!(run.code, 2, "--text or --flow is required: {run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_problems_exit_2_with_a_clear_message() {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), fake.base_url(), None).await;
    let url = server.base_url.clone();
    let flows = workspace_root().join("flows");
    let flows_arg = path_str(&flows);

    let run = botflow(
        &url,
        &[("BOTFLOW_ADMIN_TOKEN", "not-the-token")],
        &["push", flows_arg, "--publish"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains(&format!("the server at {url} refused the admin token")),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("not-the-token"),
        "the token is never printed: {}",
        run.stderr
    );
    assert!(flow_states(&server).await.is_empty(), "nothing was saved");

    let run = botflow(&url, &[("BOTFLOW_ADMIN_TOKEN", "")], &["topics", "list"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("no admin token: pass --token TOKEN or set BOTFLOW_ADMIN_TOKEN"),
        "{}",
        run.stderr
    );

    let run = botflow(&url, &[], &["flows", "list", "--page", "42"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "server {url} does not serve Page 42 (it serves: {PAGE_ID})"
        )),
        "{}",
        run.stderr
    );

    // A port nobody listens on: the server this test started, stopped.
    drop(server);
    let run = botflow(&url, &[], &["topics", "list"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("cannot reach the server at {url}")),
        "{}",
        run.stderr
    );

    let run = botflow(&url, &[], &["push", "no/such/folder"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("no/such/folder"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_against_the_demo_reports_every_example_flow_unchanged() {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(botflow_bin());
    command
        .args(["serve", "--demo"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("BOTFLOW_LISTEN", "127.0.0.1:0")
        .env("BOTFLOW_DATA_DIR", data.path())
        .current_dir(workspace_root());
    let server = ServerProcess::spawn(command).await;
    let token = [(
        "BOTFLOW_ADMIN_TOKEN",
        botflow_server::config::DEMO_ADMIN_TOKEN,
    )];

    let run = botflow(&server.base_url, &token, &["push", "flows/", "--publish"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "flows/lead-capture.json (lead-capture): unchanged\n\
             flows/restock-notify.json (restock-notify): unchanged\n\
             flows/restock.json (restock): unchanged\n\
             flows/weekly-deals.json (weekly-deals): unchanged\n\
             pushed 4 flows to Page {} on {}: 4 unchanged\n",
            botflow_server::config::DEMO_PAGE_ID,
            server.base_url
        )
    );
}
