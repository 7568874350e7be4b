//! The builder UI over real HTTP: `/` redirects to `/ui/`, the embedded bundle is served with
//! security headers, ETags and 304s, and the preview endpoint plays a draft without storing it.

use crate::support::{PAGE_ID, TestServer, example_flow, example_flow_text};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use serde_json::{Value, json};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn root_and_ui_without_slash_redirect_to_the_builder() {
    let server = TestServer::start().await;
    for path in ["/", "/ui"] {
        let response = no_redirects().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(response.headers()[LOCATION], "/ui/", "{path}");
    }
}

#[tokio::test]
async fn index_and_assets_carry_security_headers_etags_and_answer_304() {
    let server = TestServer::start().await;
    let index = server.get("/ui/").send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    let headers = index.headers().clone();
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers[CACHE_CONTROL], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self';"),
        "{csp}"
    );
    let html = index.text().await.unwrap();
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        script.starts_with("/ui/assets/") && script.ends_with(".js"),
        "{script}"
    );

    let asset = server.get(&script).send().await.unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(
        asset.headers()[CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        asset.headers()[CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    let etag = asset.headers()[ETAG].to_str().unwrap().to_owned();
    assert!(asset.bytes().await.unwrap().len() > 1000);

    let again = server
        .get(&script)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[ETAG], etag.as_str());
    assert!(again.bytes().await.unwrap().is_empty());

    let stale = server
        .get(&script)
        .header(IF_NONE_MATCH, "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);

    let missing = server.get("/ui/assets/nope.js").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
    let hidden = server.get("/ui/source-hash.txt").send().await.unwrap();
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);

    // The API answers carry the headers too.
    let api = server.get("/healthz").send().await.unwrap();
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn ui_files_need_no_token_but_the_api_still_does() {
    let server = TestServer::start().await;
    let ui = no_redirects().get(server.url("/ui/")).send().await.unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    let api = no_redirects()
        .get(server.url("/api/pages"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

fn preview_path() -> String {
    format!("/api/pages/{PAGE_ID}/preview")
}

#[tokio::test]
async fn preview_plays_the_draft_step_by_step_and_stores_nothing() {
    let server = TestServer::start().await;
    let restock = example_flow("restock");
    let first = server
        .json_of(server.post(&preview_path()).json(&json!({
            "document": restock, "session": null, "input": {"user": "restock"}
        })))
        .await;
    let turns = first["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0]["input"], "user: restock");
    let messages = turns[0]["messages"].as_array().unwrap();
    assert_eq!(
        messages[0]["text"],
        "Hi Preview! The red sneakers are sold out."
    );
    assert_eq!(messages[0]["buttons"][0]["title"], "Other colours");
    assert_eq!(messages[1]["kind"], "otn_request");
    assert_eq!(messages[1]["text"], "Tell me when red sneakers are back");
    assert_eq!(messages[1]["not_delivered"], Value::Null);
    assert_eq!(first["session"], json!({"steps": [{"user": "restock"}]}));

    let second = server
        .json_of(server.post(&preview_path()).json(&json!({
            "document": restock, "session": first["session"], "input": {"optin": true}
        })))
        .await;
    let turns = second["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(
        turns[1]["messages"][0]["text"],
        "Done: one message when they are back."
    );
    assert_eq!(second["session"]["steps"].as_array().unwrap().len(), 2);

    // Nothing was stored or sent: no draft, no topic, no message to the Graph API.
    let flows = server
        .json_of(server.get(&format!("/api/pages/{PAGE_ID}/flows")))
        .await;
    assert_eq!(flows, json!([]));
    let topics = server
        .json_of(server.get(&format!("/api/pages/{PAGE_ID}/topics")))
        .await;
    assert_eq!(topics, json!([]));
    assert!(server.fake.requests().is_empty());
}

#[tokio::test]
async fn preview_refuses_a_draft_with_errors_and_a_step_that_is_no_input() {
    let server = TestServer::start_with_flows(vec![(
        "restock.json".to_owned(),
        example_flow_text("restock"),
    )])
    .await;
    let mut broken = example_flow("restock");
    broken["blocks"][0]["messages"][1]["title"] = json!("");
    let refused = server
        .post(&preview_path())
        .json(&json!({"document": broken, "input": {"user": "restock"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_flow");
    assert_eq!(
        body["error"]["diagnostics"][0]["pointer"],
        "/blocks/0/messages/1/title"
    );

    let expect = server
        .post(&preview_path())
        .json(&json!({"document": example_flow("restock"),
                      "session": {"steps": [{"expect": ["x"]}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = expect.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("preview step 0"),
        "{body}"
    );
}
