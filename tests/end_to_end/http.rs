//! The real `botflow serve` over HTTP: webhooks with a bad signature, a malformed body or an
//! oversized body are refused with nothing stored; a redelivered event is answered once; the
//! server starts with a flows folder and stops cleanly on SIGTERM.

use crate::support::{BODY_LIMIT, PAGE_ID, ServerProcess, now_ms, wait_until, workspace_root};
use botflow_messenger::fake::FakeGraphApi;
use botflow_server::delivery::{envelope, signature, text_message};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn message(psid: &str, mid: &str, text: &str) -> String {
    let t = now_ms();
    envelope(PAGE_ID, t, vec![text_message(PAGE_ID, psid, mid, text, t)]).to_string()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_webhooks_store_nothing() {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let flows = workspace_root().join("flows");
    let server = ServerProcess::start(data.path(), fake.base_url(), Some(&flows)).await;
    let psid = "7770001";

    // Each of these would start the restock flow if it were accepted.
    let body = message(psid, "m-rejected-1", "restock");
    let unsigned = server.webhook_with(&body, None).await.unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(error_code(unsigned).await, "unauthorized");
    let forged = signature("not-the-app-secret", &body);
    let forged = server.webhook_with(&body, Some(&forged)).await.unwrap();
    assert_eq!(forged.status(), 401);

    let malformed = "{\"object\": \"page\", \"entry\": [{\"id\": ";
    let response = server
        .webhook_with(
            malformed,
            Some(&signature(crate::support::APP_SECRET, malformed)),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "bad_json");

    let oversized = message(
        psid,
        "m-rejected-2",
        &format!("restock {}", "x".repeat(BODY_LIMIT)),
    );
    let response = server.webhook(&oversized).await;
    assert_eq!(response.status(), 413);
    assert_eq!(error_code(response).await, "payload_too_large");

    assert_eq!(server.metric("botflow_events_received_total").await, 0.0);
    let (status, _) = server
        .api_json(
            Method::GET,
            &format!("/api/pages/{PAGE_ID}/subscribers/{psid}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "no session was created by a refused webhook");

    // The same message, properly signed, is accepted and answered by the flow; nothing from the
    // refused requests shows up before it.
    assert_eq!(
        server
            .webhook(&message(psid, "m-accepted", "restock"))
            .await
            .status(),
        200
    );
    fake.wait_for_requests(1, WAIT).await.unwrap();
    wait_until("the restock flow's two messages", WAIT, || {
        let count = fake
            .sent_messages()
            .iter()
            .filter(|m| m.psid == psid)
            .count();
        async move { (count >= 2).then_some(()) }
    })
    .await;
    assert_eq!(server.metric("botflow_events_received_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_is_answered_once() {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let flows = workspace_root().join("flows");
    let server = ServerProcess::start(data.path(), fake.base_url(), Some(&flows)).await;
    let psid = "7770002";

    let first = message(psid, "m-dup-1", "restock");
    for _ in 0..2 {
        let response = server.webhook(&first).await;
        assert_eq!(response.status(), 200, "a redelivery is acknowledged too");
    }
    // A later, different event of the same subscriber: events of one subscriber are processed
    // in order, so once its answers arrive any answer to the duplicate would have arrived too.
    assert_eq!(
        server
            .webhook(&message(psid, "m-dup-2", "restock"))
            .await
            .status(),
        200
    );
    wait_until("answers to both distinct messages", WAIT, || {
        let count = fake
            .sent_messages()
            .iter()
            .filter(|m| m.psid == psid)
            .count();
        async move { (count >= 4).then_some(()) }
    })
    .await;
    wait_until("an empty outbound queue", WAIT, || async {
        (server.metric("botflow_outbox_pending").await == 0.0).then_some(())
    })
    .await;
    let sent = fake
        .sent_messages()
        .iter()
        .filter(|m| m.psid == psid)
        .count();
    assert_eq!(
        sent, 4,
        "two messages per distinct event, none for the redelivery"
    );
    assert_eq!(server.metric("botflow_events_received_total").await, 2.0);
    assert_eq!(server.metric("botflow_events_duplicate_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_dir_is_published_at_start_and_sigterm_stops_cleanly() {
    let fake = FakeGraphApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let flows = workspace_root().join("flows");
    let mut server = ServerProcess::start(data.path(), fake.base_url(), Some(&flows)).await;
    let (status, list) = server
        .api_json(Method::GET, &format!("/api/pages/{PAGE_ID}/flows"), None)
        .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["active_version"] == 1)
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"restock") && ids.contains(&"lead-capture"),
        "{list}"
    );
    assert!(server.terminate(), "botflow serve exits 0 on SIGTERM");

    // A restart publishes the same files again without making new versions.
    let server = ServerProcess::start(data.path(), fake.base_url(), Some(&flows)).await;
    let (_, list) = server
        .api_json(Method::GET, &format!("/api/pages/{PAGE_ID}/flows"), None)
        .await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|f| f["latest_version"] == 1),
        "{list}"
    );
}

#[test]
fn a_missing_required_setting_stops_start_up_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::support::botflow_bin())
        .arg("serve")
        .env_clear()
        .env("BOTFLOW_DATA_DIR", data.path())
        .env("BOTFLOW_PAGE_ID", PAGE_ID)
        .env("BOTFLOW_PAGE_ACCESS_TOKEN", "t")
        .env("BOTFLOW_APP_SECRET", "s")
        .env("BOTFLOW_VERIFY_TOKEN", "v")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("BOTFLOW_ADMIN_TOKEN"), "{stderr}");
}

/// One printed `curl` command: method, URL, headers and body, as a shell would pass them.
struct Curl {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn parse_curl(line: &str) -> Curl {
    let mut curl = Curl {
        method: Method::GET,
        url: String::new(),
        headers: Vec::new(),
        body: None,
    };
    let mut rest = line.trim().strip_prefix("curl").unwrap().trim_start();
    while !rest.is_empty() {
        let (word, after) = if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted.find('\'').expect("closing quote");
            (&quoted[..end], quoted[end + 1..].trim_start())
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            (&rest[..end], rest[end..].trim_start())
        };
        rest = after;
        match word {
            "-sS" => {}
            "-X" | "-H" | "-d" => {
                let (value, after) = match rest.strip_prefix('\'') {
                    Some(quoted) => {
                        let end = quoted.find('\'').expect("closing quote");
                        (&quoted[..end], quoted[end + 1..].trim_start())
                    }
                    None => {
                        let end = rest.find(' ').unwrap_or(rest.len());
                        (&rest[..end], rest[end..].trim_start())
                    }
                };
                rest = after;
                match word {
                    "-X" => curl.method = Method::from_bytes(value.as_bytes()).unwrap(),
                    "-H" => {
                        let (name, value) = value.split_once(": ").unwrap();
                        curl.headers.push((name.to_owned(), value.to_owned()));
                    }
                    _ => curl.body = Some(value.to_owned()),
                }
            }
            url => curl.url = url.to_owned(),
        }
    }
    curl
}

async fn run_curl(curl: &Curl) -> (reqwest::StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(curl.method.clone(), &curl.url);
    for (name, value) in &curl.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &curl.body {
        request = request.body(body.clone());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The README's first command: `botflow serve --demo` with no settings at all prints a walkthrough
/// whose commands, run as printed, play the OTN story against the built-in fake Graph API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_walkthrough_works_as_printed() {
    let cwd = tempfile::tempdir().unwrap(); // no ./flows here: the embedded examples are used
    let mut command = std::process::Command::new(crate::support::botflow_bin());
    command
        .args(["serve", "--demo"])
        .current_dir(cwd.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TMPDIR", cwd.path())
        .env("BOTFLOW_LISTEN", "127.0.0.1:0");
    let mut server = ServerProcess::spawn(command).await;
    let stdout = server.stdout.clone();
    let printed = |needle: &'static str| {
        let stdout = stdout.clone();
        move || {
            let found = stdout
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(needle))
                .count();
            async move { (found > 0).then_some(found) }
        }
    };
    wait_until("the walkthrough", WAIT, printed("Stop with Ctrl-C")).await;
    let commands: Vec<Curl> = stdout
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.starts_with("curl "))
        .map(|line| parse_curl(line))
        .collect();
    assert_eq!(
        commands.len(),
        6,
        "six commands: {:?}",
        stdout.lock().unwrap()
    );

    // The builder link opens the UI, and its token (after `#`, kept by the browser) opens the API.
    let link = stdout
        .lock()
        .unwrap()
        .iter()
        .find_map(|line| {
            line.split("Open the builder (flows, OTN topics, preview): ")
                .nth(1)
        })
        .map(str::to_owned)
        .expect("the demo prints the builder link");
    let (ui_url, token) = link.split_once("#token=").unwrap();
    assert!(ui_url.ends_with("/ui/"), "{link}");
    let ui = reqwest::get(ui_url).await.unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("<div id=\"root\"></div>"));
    let pages = reqwest::Client::new()
        .get(ui_url.replace("/ui/", "/api/pages"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(pages.status(), 200);

    let (status, first) = run_curl(&commands[0]).await;
    assert_eq!(
        (status.as_u16(), &first["received"]),
        (200, &Value::from(1)),
        "{first}"
    );
    let (status, again) = run_curl(&commands[0]).await;
    assert_eq!(
        (status.as_u16(), &again["duplicates"]),
        (200, &Value::from(1)),
        "{again}"
    );
    wait_until(
        "the OTN request printed",
        WAIT,
        printed("[one_time_notif_req] Tell me when red sneakers are back"),
    )
    .await;
    let (status, _) = run_curl(&commands[1]).await;
    assert_eq!(status, 200);
    wait_until(
        "the opt-in answer printed",
        WAIT,
        printed("Done: one message when they are back."),
    )
    .await;
    let (status, topics) = run_curl(&commands[2]).await;
    assert_eq!(status, 200);
    let topic = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Red sneakers restock")
        .unwrap();
    assert_eq!(topic["usable_tokens"], 1, "{topics}");
    // The first message ran at once; the subscriber's name arrives from the fake User Profile API
    // in the background.
    wait_until("the demo subscriber's name fetched", WAIT, || {
        let command = &commands[5];
        async move {
            let (_, subscriber) = run_curl(command).await;
            (subscriber["session"]["fields"]["first_name"] == "Ada").then_some(())
        }
    })
    .await;
    let (status, counts) = run_curl(&commands[3]).await;
    assert_eq!(
        (status.as_u16(), counts["queued"].as_u64()),
        (202, Some(1)),
        "{counts}"
    );
    let sent = wait_until(
        "the notification printed",
        WAIT,
        printed("(token): Good news Ada: the red sneakers are back in stock!"),
    )
    .await;
    assert_eq!(sent, 1);
    let (status, counts) = run_curl(&commands[4]).await;
    assert_eq!(
        (status.as_u16(), counts["queued"].as_u64()),
        (202, Some(0)),
        "{counts}"
    );
    let (status, subscriber) = run_curl(&commands[5]).await;
    assert_eq!(status, 200, "{subscriber}");
    assert!(server.terminate(), "the demo stops cleanly on SIGTERM");
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "the demo database is removed at exit: {left:?}"
    );
}

/// `--config FILE`: settings come from the TOML file, and the environment wins over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_configures_the_server_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("botflow.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:1\"\n\
             data_dir = {:?}\n\
             graph_api_url = \"http://127.0.0.1:9/v23.0\"\n\
             app_secret = \"file-secret\"\n\
             verify_token = \"file-verify\"\n\
             admin_token = \"file-admin\"\n\
             [[pages]]\nid = \"2002\"\naccess_token = \"t2\"\n\
             [[pages]]\nid = \"3003\"\naccess_token = \"t3\"\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let mut command = std::process::Command::new(crate::support::botflow_bin());
    command
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("BOTFLOW_LISTEN", "127.0.0.1:0");
    let server = ServerProcess::spawn(command).await;
    let client = reqwest::Client::new();
    for page in ["2002", "3003"] {
        let response = client
            .get(format!("{}/api/pages/{page}/topics", server.base_url))
            .bearer_auth("file-admin")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "page {page} from the file is served"
        );
    }
    let handshake = client
        .get(format!(
            "{}/webhook?hub.mode=subscribe&hub.verify_token=file-verify&hub.challenge=42",
            server.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(handshake.text().await.unwrap(), "42");
    let unknown = client
        .get(format!("{}/api/pages/{PAGE_ID}/topics", server.base_url))
        .bearer_auth("file-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404, "only the file's Pages are served");
}

/// SIGTERM right after the "listening on" line stops the server gracefully (exit 0, "botflow
/// stopped" logged), and logs written to a pipe or a file (systemd, docker, `2> log`) carry no
/// terminal colour codes.
#[test]
fn sigterm_right_after_start_is_graceful_and_piped_logs_are_plain() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(crate::support::botflow_bin())
        .args(["serve", "--demo"])
        .current_dir(data.path())
        .env_clear()
        .env("RUST_LOG", "info")
        .env("BOTFLOW_LISTEN", "127.0.0.1:0")
        .env("BOTFLOW_DATA_DIR", data.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (listening_tx, listening_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = listening_tx.send(());
            }
        }
    });
    let started = listening_rx.recv_timeout(WAIT);
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        started.is_ok(),
        "no \"listening on\" line; stderr: {stderr}"
    );
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("botflow listening"), "{stderr}");
    assert!(stderr.contains("botflow stopped"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in piped logs: {stderr:?}"
    );
}
