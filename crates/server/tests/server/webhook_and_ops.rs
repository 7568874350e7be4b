//! The router over real HTTP on 127.0.0.1 with a real sled store in a temp dir: webhook
//! authentication and durability rules, admin API authentication, JSON errors and operations.

use crate::support::{TestServer, message_delivery};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn healthz_metrics_and_openapi_need_no_token() {
    let server = TestServer::start().await;
    let health = server.get("/healthz").send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "ok", "database": "sled"})
    );

    let metrics = server.get("/metrics").send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("# TYPE botflow_events_received_total counter"),
        "{text}"
    );

    let openapi = server.get("/api/openapi.json").send().await.unwrap();
    assert_eq!(openapi.status(), StatusCode::OK);
    assert_eq!(openapi.json::<Value>().await.unwrap()["openapi"], "3.1.0");
}

/// Every operation of the generated document is served (the router and the document are built
/// from the same list, so this guards the nesting and the path syntax).
#[tokio::test]
async fn every_documented_operation_is_served() {
    let server = TestServer::start().await;
    let document = botflow_server::openapi();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 14, "{paths:?}");
    for (path, item) in paths {
        let path = path
            .replace("{page}", crate::support::PAGE_ID)
            .replace("{topic}", "t")
            .replace("{flow}", "f")
            .replace("{n}", "1")
            .replace("{psid}", "u");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = server.request(method.clone(), &path).send().await.unwrap();
            // 404 with code "not_found" is allowed for unknown ids; a missing route answers the
            // fallback's "no route for" message, and a missing method 405.
            assert_ne!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let body = response.text().await.unwrap();
            assert!(!body.contains("no route for"), "{method} {path}: {body}");
        }
    }
}

/// A handshake query that cannot be read (a parameter given twice) is the documented 400, in
/// the JSON error shape.
#[tokio::test]
async fn a_repeated_handshake_parameter_is_a_400() {
    let server = TestServer::start().await;
    let response = server
        .get("/webhook?hub.mode=subscribe&hub.mode=subscribe&hub.verify_token=v&hub.challenge=c")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    let documented = &botflow_server::openapi()["paths"]["/webhook"]["get"]["responses"]["400"];
    assert!(documented.is_object());
}

/// A 405 says which methods the route serves (`Allow`), in the JSON error shape.
#[tokio::test]
async fn method_not_allowed_keeps_the_allow_header() {
    let server = TestServer::start().await;
    let response = server
        .request(reqwest::Method::DELETE, "/healthz")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET"), "{allow}");
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn admin_api_requires_the_bearer_token() {
    let server = TestServer::start().await;
    let flow = json!({"format": 1, "id": "f", "name": "F", "start": "a",
                      "blocks": [{"id": "a", "type": "send_message", "messages": []}]});
    let missing = server
        .post_unauthenticated("/api/validate")
        .json(&flow)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );

    let wrong = server
        .post_unauthenticated("/api/validate")
        .bearer_auth("not-the-token")
        .json(&flow)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let ok = server
        .post("/api/validate")
        .json(&flow)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let report: Value = ok.json().await.unwrap();
    assert!(report["diagnostics"].is_array(), "{report}");
    assert_eq!(report["valid"], report["errors"] == 0);
}

#[tokio::test]
async fn validate_reports_diagnostics_and_refuses_non_json() {
    let server = TestServer::start().await;
    let not_json = server
        .post("/api/validate")
        .header("content-type", "application/json")
        .body("{ nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let body: Value = not_json.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{body}"
    );

    // A document with an unknown block type is a validation finding, not an HTTP error.
    let odd = json!({"format": 1, "id": "f", "name": "F", "start": "a",
                     "blocks": [{"id": "a", "type": "teleport"}]});
    let report: Value = server
        .post("/api/validate")
        .json(&odd)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["valid"], false, "{report}");
    assert!(report["errors"].as_u64().unwrap() >= 1, "{report}");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let server = TestServer::start().await;
    let missing = server.get("/nope").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );

    let wrong_method = server
        .request(reqwest::Method::DELETE, "/healthz")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong_method.json::<Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );
}

#[tokio::test]
async fn webhook_handshake_echoes_the_challenge_only_with_the_verify_token() {
    let server = TestServer::start().await;
    let ok = server
        .get("/webhook?hub.mode=subscribe&hub.verify_token=test-verify&hub.challenge=12345")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), "12345");

    let wrong = server
        .get("/webhook?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=12345")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"]["code"],
        "forbidden"
    );
}

#[tokio::test]
async fn webhook_with_bad_or_missing_signature_is_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let body = message_delivery("u1", "m-1", "hello");

    let unsigned = server.webhook_raw(&body, None).await;
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        unsigned.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );

    let wrong_secret = botflow_messenger::sign_body(b"another-secret", body.as_bytes());
    let forged = server.webhook_raw(&body, Some(&wrong_secret)).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // A correct signature of a different body does not carry over.
    let other = server.sign(&message_delivery("u1", "m-2", "hello"));
    let replayed = server.webhook_raw(&body, Some(&other)).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(server.journaled_events(), 0);
    assert!(
        server
            .metric("botflow_webhook_rejected_total{reason=\"bad_signature\"}")
            .await
            >= 3.0
    );
}

#[tokio::test]
async fn malformed_and_oversized_webhooks_are_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let malformed = "{\"object\": \"page\", \"entry\": ";
    let response = server
        .webhook_raw(malformed, Some(&server.sign(malformed)))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "bad_json"
    );

    let not_envelope = "[1, 2, 3]";
    let response = server
        .webhook_raw(not_envelope, Some(&server.sign(not_envelope)))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let padding = "x".repeat(crate::support::BODY_LIMIT + 1);
    let oversized = message_delivery("u1", "m-big", &padding);
    let response = server
        .webhook_raw(&oversized, Some(&server.sign(&oversized)))
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");

    assert_eq!(server.journaled_events(), 0);
    assert_eq!(
        server
            .metric("botflow_webhook_rejected_total{reason=\"too_large\"}")
            .await,
        1.0,
        "an oversized delivery is counted as rejected"
    );
    assert_eq!(
        server
            .metric("botflow_webhook_rejected_total{reason=\"malformed\"}")
            .await,
        2.0
    );
}

#[tokio::test]
async fn a_signed_delivery_is_journaled_once_and_a_redelivery_is_a_duplicate() {
    let server = TestServer::start().await;
    let body = message_delivery("u1", "m-1", "hello");

    let first = server.webhook(&body).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        json!({"received": 1, "duplicates": 0, "ignored": 0})
    );
    let again = server.webhook(&body).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({"received": 0, "duplicates": 1, "ignored": 0})
    );
    assert_eq!(server.metric("botflow_events_received_total").await, 1.0);
    assert_eq!(server.metric("botflow_events_duplicate_total").await, 1.0);
    // The 200 came after the journal's append was made durable by an fdatasync of the log.
    let appends = server.metric("botflow_log_appends_total").await;
    let syncs = server.metric("botflow_log_fdatasyncs_total").await;
    assert!(
        appends >= 1.0 && syncs >= 1.0,
        "{appends} appends, {syncs} syncs"
    );
    assert!(syncs <= appends, "a sync covers one or more appends");
    assert!(
        server.metric("botflow_log_fdatasync_seconds_total").await > 0.0,
        "the time spent in fdatasync is counted"
    );
    assert!(server.metric("botflow_log_written_bytes_total").await > 0.0);
}

#[tokio::test]
async fn events_for_pages_not_served_are_ignored() {
    let server = TestServer::start().await;
    let body = json!({"object": "page", "entry": [{"id": "999", "time": 1, "messaging": [
        {"sender": {"id": "u1"}, "recipient": {"id": "999"}, "timestamp": 1,
         "message": {"mid": "m-x", "text": "hi"}}]}]})
    .to_string();
    let response = server.webhook(&body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"received": 0, "duplicates": 0, "ignored": 1})
    );
    assert_eq!(server.journaled_events(), 0);
}

#[tokio::test]
async fn a_batch_mixing_pages_and_kinds_is_journaled_per_event() {
    let server = TestServer::start().await;
    let page = crate::support::PAGE_ID;
    let body = json!({"object": "page", "entry": [
        {"id": page, "time": 1, "messaging": [
            {"sender": {"id": "u1"}, "recipient": {"id": page}, "timestamp": 1,
             "message": {"mid": "m-a", "text": "hi"}},
            {"sender": {"id": page}, "recipient": {"id": "u1"}, "timestamp": 2,
             "message": {"mid": "m-echo", "is_echo": true, "text": "hello from the Page"}},
            {"sender": {"id": "u2"}, "recipient": {"id": page}, "timestamp": 3,
             "read": {"watermark": 3}}]},
        {"id": "999", "time": 1, "messaging": [
            {"sender": {"id": "u3"}, "recipient": {"id": "999"}, "timestamp": 4,
             "message": {"mid": "m-b", "text": "hi"}}]}]})
    .to_string();
    let response = server.webhook(&body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"received": 3, "duplicates": 0, "ignored": 1})
    );
    // The same batch again: every event of the served Page is recognised.
    let again = server.webhook(&body).await;
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({"received": 0, "duplicates": 3, "ignored": 1})
    );
}

#[tokio::test]
async fn a_handshake_without_subscribe_mode_is_refused() {
    let server = TestServer::start().await;
    let response = server
        .get("/webhook?hub.mode=unsubscribe&hub.verify_token=test-verify&hub.challenge=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let missing = server.get("/webhook").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
}
