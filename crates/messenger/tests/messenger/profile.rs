//! `SendClient::fetch_profile` against the fake's User Profile endpoint: the request, the
//! answer, and which failures are retried.

use crate::support::{client_for, fast_retry};
use botflow_messenger::fake::{FakeGraphApi, FakeProfile, Fault};
use botflow_messenger::{Profile, SendError};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn fetches_the_names_the_fake_was_told_with_fields_and_token() {
    let fake = FakeGraphApi::start().await;
    fake.set_profile("1234", FakeProfile::named("Ada", "Lovelace"));
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let profile = client.fetch_profile("1234").await.unwrap();
    assert_eq!(
        profile,
        Profile {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            profile_pic: "https://example.invalid/pic/Ada-Lovelace.jpg".into(),
        }
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/v23.0/1234");
    assert_eq!(
        requests[0].query.get("fields").map(String::as_str),
        Some("first_name,last_name,profile_pic")
    );
    assert_eq!(
        requests[0].query.get("access_token").map(String::as_str),
        Some("page-token")
    );
    assert_eq!(fake.profile_request_count(), 1);
    assert!(fake.sent_messages().is_empty());
}

#[tokio::test]
async fn a_psid_without_its_own_profile_gets_the_default() {
    let fake = FakeGraphApi::start().await;
    fake.set_default_profile(Some(FakeProfile::named("Sam", "Doe")));
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    assert_eq!(client.fetch_profile("42").await.unwrap().first_name, "Sam");
}

#[tokio::test]
async fn an_unknown_psid_is_a_4xx_and_not_retried() {
    let fake = FakeGraphApi::start().await;
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let error = client.fetch_profile("404").await.unwrap_err();
    assert!(matches!(error, SendError::InvalidRequest(_)), "{error:?}");
    assert!(error.is_permanent());
    assert_eq!(error.attempts(), 1);
    assert_eq!(error.detail().unwrap().subcode, Some(33));
    assert_eq!(fake.profile_request_count(), 1);
}

#[tokio::test]
async fn a_refused_token_is_not_retried() {
    let fake = FakeGraphApi::start().await;
    fake.set_default_profile(Some(FakeProfile::named("Sam", "Doe")));
    fake.inject(Fault::Status(403), 5);
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let error = client.fetch_profile("42").await.unwrap_err();
    assert!(matches!(error, SendError::Auth(_)), "{error:?}");
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_until_the_profile_arrives() {
    let fake = FakeGraphApi::start().await;
    fake.set_profile("7", FakeProfile::named("Lin", "Wu"));
    fake.inject(Fault::Status(503), 2);
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let profile = client.fetch_profile("7").await.unwrap();
    assert_eq!(profile.first_name, "Lin");
    assert_eq!(fake.profile_request_count(), 3);
}

#[tokio::test]
async fn server_errors_exhaust_the_attempts() {
    let fake = FakeGraphApi::start().await;
    fake.set_profile("7", FakeProfile::named("Lin", "Wu"));
    fake.inject(Fault::Status(500), 10);
    let client = client_for(&fake, TIMEOUT, fast_retry(3));
    let error = client.fetch_profile("7").await.unwrap_err();
    assert!(matches!(error, SendError::Server(_)), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(error.attempts(), 3);
    assert!(!error.may_have_been_delivered());
}
