//! The admin API over real HTTP with a real sled store: topics, flows and subscribers, with the
//! status codes the issue fixes (400, 401, 404, 409, 422).

use crate::support::{PAGE_ID, TestServer, example_flow};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn topics_path() -> String {
    format!("/api/pages/{PAGE_ID}/topics")
}

async fn create_topic(server: &TestServer, name: &str) -> (StatusCode, Value) {
    server
        .json(server.post(&topics_path()).json(&json!({"name": name})))
        .await
}

#[tokio::test]
async fn topics_are_created_listed_renamed_and_names_stay_unique() {
    let server = TestServer::start().await;
    let (status, topic) = create_topic(&server, "  Red sneakers restock ").await;
    assert_eq!(status, StatusCode::CREATED, "{topic}");
    assert_eq!(topic["name"], "Red sneakers restock");
    assert_eq!(topic["usable_tokens"], 0);
    let id = topic["id"].as_str().unwrap().to_owned();

    let (status, list) = server.json(server.get(&topics_path())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["usable_tokens"], 0);
    assert_eq!(list[0]["used_by"], json!([]));

    let (status, body) = create_topic(&server, "red SNEAKERS restock").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict");

    let (_, other) = create_topic(&server, "Blue boots").await;
    let other_path = format!("{}/{}", topics_path(), other["id"].as_str().unwrap());
    let (status, body) = server
        .json(
            server
                .patch(&other_path)
                .json(&json!({"name": "RED sneakers restock"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, renamed) = server
        .json(
            server
                .patch(&other_path)
                .json(&json!({"name": "Blue boots back"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Blue boots back");
    assert_eq!(renamed["id"], other["id"]);
}

#[tokio::test]
async fn topic_requests_that_break_rules_get_400_404_or_422() {
    let server = TestServer::start().await;
    let (status, body) = create_topic(&server, "   ").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "unprocessable");
    let (status, _) = create_topic(&server, &"x".repeat(66)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = create_topic(&server, &"é".repeat(65)).await;
    assert_eq!(status, StatusCode::CREATED, "65 characters are allowed");

    let (status, body) = server
        .json(server.post(&topics_path()).json(&json!({"title": "x"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, body) = server
        .json(
            server
                .post(&topics_path())
                .header("content-type", "application/json")
                .body("{\"name\": "),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_json");

    let (status, body) = server.json(server.get("/api/pages/404404/topics")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let missing = format!("{}/no-such-topic", topics_path());
    let (status, _) = server
        .json(server.patch(&missing).json(&json!({"name": "x"})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.json(server.delete(&missing)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = server
        .json(server.delete(&format!("{missing}?force=maybe")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
}

#[tokio::test]
async fn publishing_creates_inline_topics_and_versions_are_immutable() {
    let server = TestServer::start().await;
    let flows = format!("/api/pages/{PAGE_ID}/flows");
    let restock = example_flow("restock");

    let (status, draft) = server
        .json(server.put(&format!("{flows}/restock")).json(&restock))
        .await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    assert_eq!(draft["valid"], true, "{draft}");

    let (status, published) = server
        .json(server.post(&format!("{flows}/restock/publish")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{published}");
    assert_eq!(published["version"], 1);
    assert_eq!(
        published["topics_created"][0]["name"],
        "Red sneakers restock"
    );
    let topic_id = published["topics_created"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (_, topics) = server.json(server.get(&topics_path())).await;
    assert_eq!(topics[0]["id"], topic_id.as_str());

    let (status, version) = server
        .json(server.get(&format!("{flows}/restock/versions/1")))
        .await;
    assert_eq!(status, StatusCode::OK, "{version}");
    assert_eq!(version["live"], true);
    assert_eq!(
        version["document"]["blocks"][0]["messages"][1]["topic"],
        json!({"id": topic_id})
    );

    // Publishing the same draft again makes no new version.
    let (status, again) = server
        .json(server.post(&format!("{flows}/restock/publish")))
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["unchanged"], true);
    assert_eq!(again["version"], 1);

    let mut changed = restock.clone();
    changed["name"] = json!("Restock alerts v2");
    server
        .json(server.put(&format!("{flows}/restock")).json(&changed))
        .await;
    let (_, v2) = server
        .json(server.post(&format!("{flows}/restock/publish")))
        .await;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["topics_created"], json!([]), "the topic exists now");

    let (status, rolled) = server
        .json(server.post(&format!("{flows}/restock/rollback/1")))
        .await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    assert_eq!(rolled["version"], 3);
    let (_, v3) = server
        .json(server.get(&format!("{flows}/restock/versions/3")))
        .await;
    assert_eq!(v3["republished_from"], 1);
    assert_eq!(v3["document"]["name"], "Restock alerts");
    let (_, v1) = server
        .json(server.get(&format!("{flows}/restock/versions/1")))
        .await;
    assert_eq!(v1["live"], false);

    let (status, list) = server.json(server.get(&flows)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], "restock");
    assert_eq!(list[0]["active_version"], 3);

    let (status, _) = server
        .json(server.get(&format!("{flows}/restock/versions/9")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .json(server.post(&format!("{flows}/restock/rollback/9")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .json(server.post(&format!("{flows}/nothing/publish")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_draft_with_errors_is_saved_but_not_published() {
    let server = TestServer::start().await;
    let flows = format!("/api/pages/{PAGE_ID}/flows");
    let mut broken = example_flow("restock");
    broken["start"] = json!("nowhere");

    let (status, draft) = server
        .json(server.put(&format!("{flows}/restock")).json(&broken))
        .await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    assert_eq!(draft["valid"], false);
    assert!(draft["errors"].as_u64().unwrap() >= 1);
    assert!(
        draft["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["pointer"] == "/start"),
        "{draft}"
    );

    let (status, body) = server
        .json(server.post(&format!("{flows}/restock/publish")))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_flow");
    assert!(!body["error"]["diagnostics"].as_array().unwrap().is_empty());
    let (_, topics) = server.json(server.get(&topics_path())).await;
    assert_eq!(topics, json!([]), "a refused publish creates no topic");

    let (status, body) = server
        .json(
            server
                .put(&format!("{flows}/other-id"))
                .json(&example_flow("restock")),
        )
        .await;
    // RFC 9110 §9.3.4: a PUT whose representation disagrees with the target is a 409.
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("other-id"),
        "{body}"
    );
}

#[tokio::test]
async fn deleting_a_topic_in_use_needs_force() {
    let server = TestServer::start().await;
    let flows = format!("/api/pages/{PAGE_ID}/flows");
    server
        .json(
            server
                .put(&format!("{flows}/restock"))
                .json(&example_flow("restock")),
        )
        .await;
    let (_, published) = server
        .json(server.post(&format!("{flows}/restock/publish")))
        .await;
    let topic = format!(
        "{}/{}",
        topics_path(),
        published["topics_created"][0]["id"].as_str().unwrap()
    );

    let (_, topics) = server.json(server.get(&topics_path())).await;
    assert_eq!(topics[0]["used_by"], json!(["restock"]), "{topics}");

    let (status, body) = server.json(server.delete(&topic)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restock"),
        "{body}"
    );

    let (status, body) = server
        .json(server.delete(&format!("{topic}?force=true")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["invalidated_tokens"], 0);
    let (_, topics) = server.json(server.get(&topics_path())).await;
    assert_eq!(topics, json!([]));
}

#[tokio::test]
async fn pages_lists_the_served_pages_without_their_tokens() {
    let server = TestServer::start().await;
    let (status, body) = server.json(server.get("/api/pages")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([{"id": PAGE_ID}]));
}

#[tokio::test]
async fn an_unknown_subscriber_is_404() {
    let server = TestServer::start().await;
    let (status, body) = server
        .json(server.get(&format!("/api/pages/{PAGE_ID}/subscribers/nobody")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn validate_checks_topic_ids_against_a_page_when_asked() {
    let server = TestServer::start().await;
    let mut flow = example_flow("restock");
    flow["blocks"][0]["messages"][1]["topic"] = json!({"id": "no-such-topic"});
    let codes = |report: &Value| -> Vec<String> {
        report["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["code"].as_str().unwrap().to_owned())
            .collect()
    };

    let (status, plain) = server.json(server.post("/api/validate").json(&flow)).await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert!(
        !codes(&plain).contains(&"unknown-topic".to_owned()),
        "{plain}"
    );

    let (status, checked) = server
        .json(
            server
                .post(&format!("/api/validate?page={PAGE_ID}"))
                .json(&flow),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert!(
        codes(&checked).contains(&"unknown-topic".to_owned()),
        "{checked}"
    );
    assert_eq!(checked["valid"], false);

    let (_, topic) = create_topic(&server, "Known").await;
    flow["blocks"][0]["messages"][1]["topic"] = json!({"id": topic["id"]});
    let (_, known) = server
        .json(
            server
                .post(&format!("/api/validate?page={PAGE_ID}"))
                .json(&flow),
        )
        .await;
    assert!(
        !codes(&known).contains(&"unknown-topic".to_owned()),
        "{known}"
    );

    let (status, _) = server
        .json(server.post("/api/validate?page=404404").json(&flow))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_saved_draft_is_read_back_with_its_diagnostics() {
    let server = TestServer::start().await;
    let flows = format!("/api/pages/{PAGE_ID}/flows");
    let mut broken = example_flow("restock");
    broken["start"] = json!("nowhere");
    let (status, saved) = server
        .json(server.put(&format!("{flows}/restock")).json(&broken))
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");

    let (status, draft) = server.json(server.get(&format!("{flows}/restock"))).await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    assert_eq!(draft["flow"], "restock");
    assert_eq!(draft["document"], broken);
    assert_eq!(draft["saved_ms"], saved["saved_ms"]);
    assert_eq!(draft["valid"], false);
    assert_eq!(draft["diagnostics"], saved["diagnostics"]);

    let (status, body) = server.json(server.get(&format!("{flows}/nothing"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}

/// Every status the admin API answers to these requests is listed for its route in
/// `/api/openapi.json`, so a generated client knows every answer it can get.
#[tokio::test]
async fn every_status_the_admin_api_answers_is_documented() {
    let server = TestServer::start().await;
    let openapi = server.json_of(server.get("/api/openapi.json")).await;
    assert_eq!(
        openapi,
        botflow_server::openapi(),
        "the served document is the generated one"
    );
    let flows = format!("/api/pages/{PAGE_ID}/flows");
    server
        .json(
            server
                .put(&format!("{flows}/restock"))
                .json(&example_flow("restock")),
        )
        .await;
    let (_, published) = server
        .json(server.post(&format!("{flows}/restock/publish")))
        .await;
    let topic = published["topics_created"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let topic_path = format!("{}/{topic}", topics_path());
    let versions = "/api/pages/{page}/flows/{flow}/versions/{n}";
    let rollback = "/api/pages/{page}/flows/{flow}/rollback/{n}";
    let topic_route = "/api/pages/{page}/topics/{topic}";
    let draft_route = "/api/pages/{page}/flows/{flow}";
    let cases = [
        (
            "get",
            draft_route,
            server.get(&format!("{flows}/restock")),
            200,
        ),
        (
            "get",
            draft_route,
            server.get(&format!("{flows}/nothing")),
            404,
        ),
        (
            "get",
            versions,
            server.get(&format!("{flows}/restock/versions/x")),
            400,
        ),
        (
            "post",
            rollback,
            server.post(&format!("{flows}/restock/rollback/x")),
            400,
        ),
        // Past u32: the document bounds `n` and lists the 400.
        (
            "get",
            versions,
            server.get(&format!("{flows}/restock/versions/4294967296")),
            400,
        ),
        (
            "post",
            rollback,
            server.post(&format!("{flows}/restock/rollback/4294967296")),
            400,
        ),
        (
            "put",
            draft_route,
            server
                .put(&format!("{flows}/other-id"))
                .json(&example_flow("restock")),
            409,
        ),
        (
            "post",
            "/api/pages/{page}/topics",
            server
                .post(&topics_path())
                .json(&json!({"name": "x", "colour": "red"})),
            422,
        ),
        (
            "patch",
            topic_route,
            server
                .patch(&topic_path)
                .json(&json!({"name": "x", "colour": "red"})),
            422,
        ),
        (
            "post",
            "/api/validate",
            server.post("/api/validate").json(&json!([1, 2])),
            200,
        ),
        (
            "delete",
            topic_route,
            server.delete(&format!("{topic_path}?force=yes")),
            400,
        ),
        (
            "delete",
            topic_route,
            server.delete(&format!("{topic_path}?force=true")),
            200,
        ),
        // The topic version 1 uses is gone: republishing it breaks a rule.
        (
            "post",
            rollback,
            server.post(&format!("{flows}/restock/rollback/1")),
            422,
        ),
    ];
    for (method, route, request, expected) in cases {
        let (status, body) = server.json(request).await;
        assert_eq!(status.as_u16(), expected, "{method} {route}: {body}");
        let documented = &openapi["paths"][route][method]["responses"][expected.to_string()];
        assert!(
            documented.is_object(),
            "{method} {route} answers {expected}, which /api/openapi.json does not list"
        );
    }
}

/// Two live flows of a Page may not claim the same trigger, as across files in `botflow
/// validate`: the draft answer shows the conflict, and publishing it is refused.
#[tokio::test]
async fn a_flow_whose_trigger_another_live_flow_claims_is_not_published() {
    let server = TestServer::start().await;
    let flows = format!("/api/pages/{PAGE_ID}/flows");
    server
        .json(
            server
                .put(&format!("{flows}/restock"))
                .json(&example_flow("restock")),
        )
        .await;
    let (status, _) = server
        .json(server.post(&format!("{flows}/restock/publish")))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let rival = json!({
        "format": 1, "id": "rival", "name": "Rival",
        "triggers": [{"type": "keyword", "words": ["sale", " Restock"]}],
        "start": "a",
        "blocks": [{"id": "a", "type": "send_message", "messages": [{"type": "text", "text": "Rival"}]}]
    });
    let (status, draft) = server
        .json(server.put(&format!("{flows}/rival")).json(&rival))
        .await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    assert_eq!(draft["valid"], false, "{draft}");
    let conflict = &draft["diagnostics"][0];
    assert_eq!(conflict["code"], "conflicting-trigger", "{draft}");
    assert_eq!(conflict["pointer"], "/triggers/0/words/1", "{draft}");
    assert!(
        conflict["message"].as_str().unwrap().contains("`restock`"),
        "{draft}"
    );

    let (status, checked) = server
        .json(
            server
                .post(&format!("/api/validate?page={PAGE_ID}"))
                .json(&rival),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(checked["diagnostics"], draft["diagnostics"], "{checked}");

    let (status, body) = server
        .json(server.post(&format!("{flows}/rival/publish")))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_flow");
    assert_eq!(
        body["error"]["diagnostics"][0]["code"], "conflicting-trigger",
        "{body}"
    );
    let (_, version) = server
        .json(server.get(&format!("{flows}/rival/versions/1")))
        .await;
    assert_eq!(
        version["error"]["code"], "not_found",
        "nothing was published"
    );

    // Republishing the flow that holds the trigger is no conflict with itself.
    let (status, body) = server
        .json(server.post(&format!("{flows}/restock/publish")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_admin_request_over_the_timeout_is_a_json_503() {
    let dir = tempfile::tempdir().unwrap();
    let fake = botflow_messenger::fake::FakeGraphApi::start().await;
    let mut config = crate::support::test_config(&dir.path().join("db"), fake.base_url());
    config.admin_timeout_ms = 1;
    config.body_limit_bytes = 16 * 1024 * 1024;
    let running = botflow_server::app::start(config, Vec::new())
        .await
        .unwrap();
    // Checking 5,000 blocks against the Page's topics takes far longer than 1 ms.
    let blocks: Vec<Value> = (0..5_000)
        .map(|i| {
            json!({"id": format!("b{i}"), "type": "send_message", "next": format!("b{}", i + 1),
                        "messages": [{"type": "text", "text": "hello"}]})
        })
        .collect();
    let flow = json!({"format": 1, "id": "big", "name": "Big", "start": "b0", "blocks": blocks});
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/api/validate?page={PAGE_ID}",
            running.local_addr()
        ))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .json(&flow)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("BOTFLOW_ADMIN_TIMEOUT_MS"),
        "{body}"
    );
}

#[tokio::test]
async fn a_topic_ledger_counts_its_opt_ins_and_has_thirty_utc_days() {
    use botflow_storage::{NewToken, PageId, Psid};
    let server = TestServer::start().await;
    let (_, topic) = create_topic(&server, "Restock").await;
    let id = topic["id"].as_str().unwrap().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for n in 1..=2 {
        let token = NewToken {
            topic: id.as_str().into(),
            token: format!("tok-{n}"),
            created_ms: now,
            expires_ms: now + 365 * 86_400_000,
        };
        server
            .store
            .add_token(
                &PageId::from(PAGE_ID),
                &Psid(format!("psid-{n}")),
                token,
                now,
            )
            .unwrap();
    }

    let path = format!("{}/{id}/ledger", topics_path());
    let (status, ledger) = server.json(server.get(&path)).await;
    assert_eq!(status, StatusCode::OK, "{ledger}");
    let counts: Vec<&Value> = [
        "issued",
        "usable",
        "spent",
        "expired",
        "invalidated",
        "delivered_unconfirmed",
    ]
    .iter()
    .map(|field| &ledger[field])
    .collect();
    assert_eq!(
        counts,
        [
            &json!(2),
            &json!(2),
            &json!(0),
            &json!(0),
            &json!(0),
            &json!(0)
        ]
    );
    assert_eq!(ledger["topic"], id.as_str());
    let days = ledger["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let today = &days[29];
    assert_eq!((&today["opt_ins"], &today["sends"]), (&json!(2), &json!(0)));
    let date = today["date"].as_str().unwrap();
    assert_eq!(date.len(), 10, "{date}");
    assert!(days[28]["date"].as_str().unwrap() < date, "{days:?}");

    let (status, error) = server
        .json(server.get(&format!("{}/nope/ledger", topics_path())))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
}
