//! Test harness: the router served on 127.0.0.1 over a sled store in a temp dir.
#![allow(dead_code, unreachable_pub)]

use botflow_server::{AppState, ServerConfig, router};
use botflow_storage::{SledStore, Store, StoreOptions};
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
    pub store: Arc<SledStore>,
    pub state: Arc<AppState>,
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
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = test_config(dir.path(), "http://127.0.0.1:9/v21.0");
        let store =
            Arc::new(SledStore::open(dir.path().join("db"), StoreOptions::default()).unwrap());
        botflow_server::startup::register_pages(
            store.as_ref(),
            &[botflow_storage::PageId::from(PAGE_ID)],
            1,
        )
        .unwrap();
        let state = Arc::new(AppState::new(config, store.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            store,
            state,
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

/// An example flow of the repository's `flows/` folder, as JSON.
pub fn example_flow(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../flows")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A webhook delivery with one text message from `psid` to the test Page.
pub fn message_delivery(psid: &str, mid: &str, text: &str) -> String {
    serde_json::json!({"object": "page", "entry": [{"id": PAGE_ID, "time": 1_700_000_000_000u64,
        "messaging": [{"sender": {"id": psid}, "recipient": {"id": PAGE_ID},
                       "timestamp": 1_700_000_000_000u64,
                       "message": {"mid": mid, "text": text}}]}]})
    .to_string()
}
