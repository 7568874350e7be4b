//! Shared helpers: paths of test data and a client pointed at a fake with fast retries.

use botflow_messenger::fake::FakeGraphApi;
use botflow_messenger::{ClientConfig, RetryPolicy, SendClient};
use std::path::PathBuf;
use std::time::Duration;

/// `crates/messenger/test_data/<sub>`.
pub(crate) fn test_data(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(sub)
}

/// A retry policy with small delays so retry tests stay fast.
pub(crate) fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(500),
    }
}

/// A client for `fake` with the given per-attempt timeout and retry policy.
pub(crate) fn client_for(fake: &FakeGraphApi, timeout: Duration, retry: RetryPolicy) -> SendClient {
    SendClient::new(ClientConfig {
        graph_base_url: fake.base_url().to_owned(),
        api_version: botflow_messenger::client::DEFAULT_API_VERSION.to_owned(),
        page_access_token: "page-token".to_owned(),
        timeout,
        retry,
    })
    .unwrap()
}
