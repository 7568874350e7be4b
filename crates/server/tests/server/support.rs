//! Test harness: the router served on 127.0.0.1 over a sled store in a temp dir.
#![allow(dead_code, unreachable_pub)]

use botflow_messenger::fake::FakeGraphApi;
use botflow_server::app::RunningServer;
use botflow_server::{AppState, ServerConfig};
use botflow_storage::Store;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

pub const PAGE_ID: &str = "1001";
pub const APP_SECRET: &str = "test-secret";
pub const ADMIN_TOKEN: &str = "test-admin";
pub const BODY_LIMIT: usize = 64 * 1024;

pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub state: Arc<AppState>,
    pub fake: FakeGraphApi,
    pub running: RunningServer,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// The configuration every test server uses, with `graph_api_url` pointing where asked.
pub fn test_config(data_dir: &Path, graph_api_url: &str) -> ServerConfig {
    let env: HashMap<&str, String> = HashMap::from([
        ("BOTFLOW_LISTEN", "127.0.0.1:0".to_owned()),
        ("BOTFLOW_DATA_DIR", data_dir.display().to_string()),
        ("BOTFLOW_GRAPH_API_URL", graph_api_url.to_owned()),
        ("BOTFLOW_PAGE_ID", PAGE_ID.to_owned()),
        ("BOTFLOW_PAGE_ACCESS_TOKEN", "page-token".to_owned()),
        ("BOTFLOW_APP_SECRET", APP_SECRET.to_owned()),
        ("BOTFLOW_VERIFY_TOKEN", "test-verify".to_owned()),
        ("BOTFLOW_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("BOTFLOW_BODY_LIMIT_BYTES", BODY_LIMIT.to_string()),
    ]);
    ServerConfig::from_sources(None, |name| env.get(name).cloned(), false).unwrap()
}

impl TestServer {
    /// The whole server (store, runtime, HTTP) on a temp dir, sending to a fresh fake Graph API.
    pub async fn start() -> Self {
        Self::start_with_flows(Vec::new()).await
    }

    /// Like [`TestServer::start`], publishing flows (origin, JSON text) at start-up.
    pub async fn start_with_flows(flows: Vec<(String, String)>) -> Self {
        Self::start_configured(flows, |_| {}).await
    }

    /// Like [`TestServer::start_with_flows`], with `adjust` applied to the test configuration.
    pub async fn start_configured(
        flows: Vec<(String, String)>,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeGraphApi::start().await;
        let mut config = test_config(&dir.path().join("db"), fake.base_url());
        adjust(&mut config);
        let running = botflow_server::app::start(config, flows).await.unwrap();
        let state = running.state().clone();
        Self {
            addr: running.local_addr(),
            store: state.store.clone(),
            state,
            fake,
            running,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::PUT, path)
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::DELETE, path)
    }

    /// Sends a request and returns its status and JSON body.
    pub async fn json(
        &self,
        request: reqwest::RequestBuilder,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body =
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"));
        (status, body)
    }

    pub fn post_unauthenticated(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn sign(&self, body: &str) -> String {
        botflow_messenger::sign_body(APP_SECRET.as_bytes(), body.as_bytes())
    }

    pub async fn webhook(&self, body: &str) -> reqwest::Response {
        self.webhook_raw(body, Some(&self.sign(body))).await
    }

    pub async fn webhook_raw(&self, body: &str, signature: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/webhook"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        request.send().await.unwrap()
    }

    pub async fn json_of(&self, request: reqwest::RequestBuilder) -> serde_json::Value {
        self.json(request).await.1
    }

    /// Events in the journal that the runtime has not processed yet.
    pub fn journaled_events(&self) -> usize {
        self.store.unprocessed_events().unwrap().len()
    }

    /// The value of one sample on `/metrics` (by its full name with labels); 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self
            .get("/metrics")
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
}

/// An example flow of the repository's `flows/` folder, as JSON text.
pub fn example_flow_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../flows")
        .join(format!("{name}.json"));
    std::fs::read_to_string(path).unwrap()
}

/// An example flow of the repository's `flows/` folder, as JSON.
pub fn example_flow(name: &str) -> serde_json::Value {
    serde_json::from_str(&example_flow_text(name)).unwrap()
}

/// Polls `check` every 10 ms until it returns `Some`, panicking after 20 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A webhook delivery with one text message from `psid` to the test Page.
pub fn message_delivery(psid: &str, mid: &str, text: &str) -> String {
    serde_json::json!({"object": "page", "entry": [{"id": PAGE_ID, "time": 1_700_000_000_000u64,
        "messaging": [{"sender": {"id": psid}, "recipient": {"id": PAGE_ID},
                       "timestamp": 1_700_000_000_000u64,
                       "message": {"mid": mid, "text": text}}]}]})
    .to_string()
}
