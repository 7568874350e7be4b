//! Helpers shared by the end-to-end suites: locating and running the real binary.

use std::path::PathBuf;

/// Path of the `botflow` binary that `cargo test --workspace` builds next to this test binary.
pub(crate) fn botflow_bin() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("botflow{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not built: run `cargo test --workspace` or `cargo build -p botflow-cli`",
        bin.display()
    );
    bin
}

/// Root of the workspace (for `flows/` and `tests/conversations/`).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

// ---- a running `botflow serve` (used by the http, otn_story and crash suites) ----

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The test Page served by every spawned server.
pub(crate) const PAGE_ID: &str = "1001";
/// The app secret webhooks are signed with.
pub(crate) const APP_SECRET: &str = "e2e-app-secret";
/// The admin bearer token.
pub(crate) const ADMIN_TOKEN: &str = "e2e-admin-token";
/// The body limit configured for spawned servers.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// Polls `check` until it returns `Some`, panicking with `what` after `timeout`.
pub(crate) async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `botflow serve` child process on a free port of 127.0.0.1 with its own data dir.
pub(crate) struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base_url: String,
    /// Everything the process printed on stdout so far.
    pub(crate) stdout: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

impl ServerProcess {
    /// Starts `botflow serve` on `data_dir` with the Send API pointed at `graph_url`, publishing
    /// `flows_dir` when given, and waits until `/healthz` answers.
    pub(crate) async fn start(data_dir: &Path, graph_url: &str, flows_dir: Option<&Path>) -> Self {
        Self::start_with_env(data_dir, graph_url, flows_dir, &[]).await
    }

    /// Like [`ServerProcess::start`], with extra environment variables.
    pub(crate) async fn start_with_env(
        data_dir: &Path,
        graph_url: &str,
        flows_dir: Option<&Path>,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(botflow_bin());
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("BOTFLOW_LISTEN", "127.0.0.1:0")
            .env("BOTFLOW_DATA_DIR", data_dir)
            .env("BOTFLOW_GRAPH_API_URL", graph_url)
            .env("BOTFLOW_PAGE_ID", PAGE_ID)
            .env("BOTFLOW_PAGE_ACCESS_TOKEN", "e2e-page-token")
            .env("BOTFLOW_APP_SECRET", APP_SECRET)
            .env("BOTFLOW_VERIFY_TOKEN", "e2e-verify")
            .env("BOTFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("BOTFLOW_BODY_LIMIT_BYTES", BODY_LIMIT.to_string());
        if let Some(dir) = flows_dir {
            command.env("BOTFLOW_FLOWS_DIR", dir);
        }
        command.envs(extra_env.iter().copied());
        Self::spawn(command).await
    }

    /// Spawns a prepared `botflow serve` command and waits for its "listening on" line and `/healthz`.
    pub(crate) async fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn botflow serve");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let reader = BufReader::new(child.stdout.take().expect("piped stdout"));
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = address_tx.send(url.trim().to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let base_url = match address_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "botflow serve printed no \"listening on\" line; stdout: {:?}, exit: {:?}",
                    stdout.lock().unwrap(),
                    child.wait()
                );
            }
        };
        let server = Self {
            child,
            base_url,
            stdout,
            client: reqwest::Client::new(),
        };
        let health = format!("{}/healthz", server.base_url);
        let client = server.client.clone();
        wait_until("/healthz", Duration::from_secs(30), || {
            let request = client.get(&health).send();
            async move { request.await.ok().filter(|r| r.status().is_success()) }
        })
        .await;
        server
    }

    /// An admin API request with the bearer token.
    pub(crate) fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// Sends an admin API request and returns its status and JSON body.
    pub(crate) async fn api_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self.api(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin API request");
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = match text.is_empty() {
            true => serde_json::Value::Null,
            false => serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        };
        (status, body)
    }

    /// POSTs a webhook body with the given signature header (or none).
    pub(crate) async fn webhook_with(
        &self,
        body: &str,
        signature: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut request = self
            .client
            .post(format!("{}/webhook", self.base_url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        request.send().await
    }

    /// POSTs a webhook body signed with the app secret.
    pub(crate) async fn webhook(&self, body: &str) -> reqwest::Response {
        let signature = botflow_server::delivery::signature(APP_SECRET, body);
        self.webhook_with(body, Some(&signature))
            .await
            .expect("webhook request")
    }

    /// The value of one sample on `/metrics` (full name with labels); 0 when absent.
    pub(crate) async fn metric(&self, sample: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([format!("-{signal}").as_str(), &pid])
            .status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "kill -{signal} {pid} failed"
        );
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns whether it exited successfully.
    pub(crate) fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "botflow did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An example flow of `flows/` as JSON.
pub(crate) fn example_flow(name: &str) -> serde_json::Value {
    let path = workspace_root().join("flows").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The first message the fake accepted that `matches`, waiting up to 30 s for it.
pub(crate) async fn sent_matching(
    fake: &botflow_messenger::fake::FakeGraphApi,
    what: &str,
    matches: impl Fn(&botflow_messenger::fake::SentMessage) -> bool,
) -> botflow_messenger::fake::SentMessage {
    wait_until(what, Duration::from_secs(30), || {
        let found = fake.sent_messages().into_iter().find(|m| matches(m));
        async move { found }
    })
    .await
}

/// Milliseconds since the Unix epoch, for webhook timestamps.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A signed-ready webhook body: `psid` types the restock flow's keyword.
pub(crate) fn restock_message(psid: &str, mid: &str) -> String {
    use botflow_server::delivery::{envelope, text_message};
    let t = now_ms();
    envelope(
        PAGE_ID,
        t,
        vec![text_message(PAGE_ID, psid, mid, "restock", t)],
    )
    .to_string()
}

/// Each of `psids` starts the example restock flow (`flows/`) and taps "Notify me" with a token
/// the fake issued; returns the topic's id and the tokens, once every opt-in is stored.
pub(crate) async fn opt_in_restock(
    server: &ServerProcess,
    fake: &botflow_messenger::fake::FakeGraphApi,
    psids: &[String],
) -> (String, std::collections::BTreeSet<String>) {
    use botflow_server::delivery::{envelope, otn_optin};
    use serde_json::{Value, json};
    const WAIT: Duration = Duration::from_secs(60);
    let mut tokens = std::collections::BTreeSet::new();
    for (i, psid) in psids.iter().enumerate() {
        let status = server
            .webhook(&restock_message(psid, &format!("m-in-{psid}-{i}")))
            .await
            .status();
        assert_eq!(status, 200);
        let request = wait_until("the OTN request", WAIT, || {
            let found = fake.sent_messages().into_iter().find(|m| {
                &m.psid == psid
                    && m.message.pointer("/attachment/payload/template_type")
                        == Some(&json!("one_time_notif_req"))
            });
            async move { found }
        })
        .await;
        let payload = request
            .message
            .pointer("/attachment/payload/payload")
            .unwrap();
        let token = fake.issue_otn_token(psid);
        let t = now_ms();
        let optin = envelope(
            PAGE_ID,
            t,
            vec![otn_optin(
                PAGE_ID,
                psid,
                payload.as_str().unwrap(),
                &token,
                t,
            )],
        );
        assert_eq!(server.webhook(&optin.to_string()).await.status(), 200);
        tokens.insert(token);
    }
    let topics_path = format!("/api/pages/{PAGE_ID}/topics");
    let (_, topics) = server
        .api_json(reqwest::Method::GET, &topics_path, None)
        .await;
    let topic_id = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Red sneakers restock")
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .unwrap();
    wait_until("every opt-in stored", WAIT, || async {
        let (_, topics) = server
            .api_json(reqwest::Method::GET, &topics_path, None)
            .await;
        let usable = topics
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == topic_id.as_str())
            .map(|t| t["usable_tokens"].clone());
        (usable == Some(Value::from(psids.len()))).then_some(())
    })
    .await;
    (topic_id, tokens)
}
