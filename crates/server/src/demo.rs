//! The walkthrough `botflow serve --demo` prints: exact `curl` commands, webhook bodies signed
//! with the demo app secret, that play the One-Time Notification story against the running server.

use crate::delivery::{envelope, otn_optin, signature, text_message};
use botflow_flow::{BlockKind, Message, TopicRef, Trigger};
use botflow_messenger::fake::{FakeGraphApi, FakeOptions, FakeProfile};
use botflow_runtime::payload::OptinPayload;
use botflow_storage::{NewToken, PageId, Store, StoreResult};
use std::fmt::Write as _;

/// PSID of the demo subscriber.
pub const DEMO_PSID: &str = "2000000000000001";
/// First and last name the demo fake's User Profile endpoint gives the demo subscriber.
pub const DEMO_NAME: (&str, &str) = ("Ada", "Lovelace");

/// Everything the printed commands need; all known once the demo flows are published.
#[derive(Debug, Clone)]
pub struct DemoWalkthrough {
    /// `http://host:port` of the server.
    pub base_url: String,
    /// The demo Page id.
    pub page: String,
    /// The app secret the webhook bodies are signed with.
    pub app_secret: String,
    /// The admin bearer token.
    pub admin_token: String,
    /// The OTN topic the restock flow's request opts in to (created inline at publish).
    pub topic_id: String,
    /// The topic's name.
    pub topic_name: String,
    /// The opt-in payload the OTN request carries (what Messenger echoes back on "Notify me").
    pub optin_payload: String,
    /// A one-time token the fake Graph API knows, as Messenger would issue it.
    pub otn_token: String,
    /// What the subscriber types to start the flow (its first keyword).
    pub trigger_text: String,
    /// An active flow whose `otn_send` pays with the topic: the notification runs it (it greets
    /// the subscriber by name); `None` notifies with a plain text.
    pub notify_flow: Option<String>,
    /// Timestamp (ms) put in the events.
    pub now_ms: u64,
    /// The id of [`DEMO_CROWD_TOPIC`], which [`DEMO_CROWD`] subscribers wait on.
    pub crowd_topic_id: String,
}

/// The demo topic that many subscribers wait on, so a notification can be watched running.
pub const DEMO_CROWD_TOPIC: &str = "Weekend sale";
/// How many subscribers wait on [`DEMO_CROWD_TOPIC`] when the demo starts.
pub const DEMO_CROWD: usize = 300;

/// The [`DEMO_CROWD`] subscribers of the demo and a one-time token the demo fake issued to
/// each, as (PSID, token).
pub fn crowd_tokens(fake: &FakeGraphApi) -> Vec<(String, String)> {
    (0..DEMO_CROWD)
        .map(|i| {
            let psid = format!("20000000090{i:05}");
            let token = fake.issue_otn_token(&psid);
            (psid, token)
        })
        .collect()
}

/// Seeds the crowd (from [`crowd_tokens`]), each holding one usable opt-in on
/// [`DEMO_CROWD_TOPIC`] (created when missing), so a notification of that topic runs for
/// several seconds at the demo's pace. Returns the topic's id.
pub fn seed_crowd(
    store: &dyn Store,
    page: &PageId,
    crowd: &[(String, String)],
    now_ms: u64,
) -> StoreResult<String> {
    let topic = match store.find_topic_by_name(page, DEMO_CROWD_TOPIC)? {
        Some(topic) => topic,
        None => store.create_topic(page, DEMO_CROWD_TOPIC, now_ms)?,
    };
    for (psid, token) in crowd {
        let token = NewToken {
            topic: topic.id.clone(),
            token: token.clone(),
            created_ms: now_ms,
            expires_ms: now_ms + botflow_runtime::TOKEN_LIFETIME_MS,
        };
        store.add_token(page, &botflow_storage::Psid(psid.clone()), token, now_ms)?;
    }
    Ok(topic.id.0)
}

/// Starts the in-process fake Graph API that prints every message the bot sends; its User
/// Profile endpoint knows the demo subscriber as [`DEMO_NAME`].
pub async fn start_printing_fake() -> std::io::Result<FakeGraphApi> {
    let fake = FakeGraphApi::try_start(FakeOptions {
        printing: true,
        ..FakeOptions::default()
    })
    .await?;
    fake.set_profile(DEMO_PSID, FakeProfile::named(DEMO_NAME.0, DEMO_NAME.1));
    Ok(fake)
}

/// The first OTN request of an active flow with a keyword trigger: where the walkthrough's
/// opt-in comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoRequest {
    /// The keyword that starts the flow.
    pub trigger_text: String,
    /// The topic's id.
    pub topic_id: String,
    /// The topic's name.
    pub topic_name: String,
    /// The payload Messenger echoes on opt-in.
    pub optin_payload: String,
    /// An active flow with an `otn_send` block paying with the topic, if any.
    pub notify_flow: Option<String>,
}

/// The first active flow with an `otn_send` block that pays with `topic`.
fn find_notify_flow(store: &dyn Store, page: &PageId, topic: &str) -> StoreResult<Option<String>> {
    for active in store.active_flows(page)?.flows {
        let pays_with_topic = active.valid.document().blocks.iter().any(|block| {
            matches!(&block.kind, BlockKind::OtnSend(send)
                if matches!(&send.topic, TopicRef::Id(id) if id.id.0 == topic))
        });
        if pays_with_topic {
            return Ok(Some(active.flow.0.clone()));
        }
    }
    Ok(None)
}

/// Finds the OTN request the walkthrough uses among the Page's active flows.
pub fn find_demo_request(store: &dyn Store, page: &PageId) -> StoreResult<Option<DemoRequest>> {
    for active in store.active_flows(page)?.flows {
        let document = active.valid.document();
        let Some(trigger_text) = document.triggers.iter().find_map(|trigger| match trigger {
            Trigger::Keyword { words, .. } => words.first().cloned(),
            _ => None,
        }) else {
            continue;
        };
        for block in &document.blocks {
            let BlockKind::SendMessage { messages } = &block.kind else {
                continue;
            };
            for (index, message) in messages.iter().enumerate() {
                let Message::OtnRequest(request) = message else {
                    continue;
                };
                let Some(TopicRef::Id(topic)) = &request.topic else {
                    continue;
                };
                let Some(stored) = store.get_topic(page, &topic.id)? else {
                    continue;
                };
                let payload = OptinPayload {
                    page: page.clone(),
                    flow: active.flow.clone(),
                    version: active.version,
                    block: block.id.clone(),
                    message: index,
                    topic: topic.id.clone(),
                };
                let Ok(optin_payload) = payload.encode() else {
                    continue;
                };
                let notify_flow = find_notify_flow(store, page, &topic.id.0)?;
                return Ok(Some(DemoRequest {
                    trigger_text,
                    topic_id: topic.id.0.clone(),
                    topic_name: stored.name,
                    optin_payload,
                    notify_flow,
                }));
            }
        }
    }
    Ok(None)
}

/// The link that opens the builder UI logged in: the token after `#` stays in the browser (it is
/// never sent to the server or written to its logs); the UI keeps it in `sessionStorage`.
pub fn builder_link(base_url: &str, admin_token: &str) -> String {
    format!("{base_url}/ui/#token={admin_token}")
}

impl DemoWalkthrough {
    /// The walkthrough text: numbered steps, each with a runnable command.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let webhook = format!("{}/webhook", self.base_url);
        let auth = format!("Authorization: Bearer {}", self.admin_token);
        let topic_url = format!(
            "{}/api/pages/{}/topics/{}",
            self.base_url, self.page, self.topic_id
        );
        let message = envelope(
            &self.page,
            self.now_ms,
            vec![text_message(
                &self.page,
                DEMO_PSID,
                &format!("m_demo_{}", self.now_ms),
                &self.trigger_text,
                self.now_ms,
            )],
        )
        .to_string();
        let optin = envelope(
            &self.page,
            self.now_ms + 1,
            vec![otn_optin(
                &self.page,
                DEMO_PSID,
                &self.optin_payload,
                &self.otn_token,
                self.now_ms + 1,
            )],
        )
        .to_string();
        let notify = match &self.notify_flow {
            Some(flow) => serde_json::json!({ "flow": flow }),
            None => serde_json::json!({"text": "The red sneakers are back in stock!"}),
        }
        .to_string();

        let _ = writeln!(
            out,
            "botflow demo: the example flows are published on Page {}; every message the bot sends\n\
             is printed by the in-process fake Graph API.\n\n\
             Open the builder (flows, OTN topics, preview): {}\n\n\
             Or walk through the OTN story with curl:\n",
            self.page,
            builder_link(&self.base_url, &self.admin_token)
        );
        let _ = writeln!(
            out,
            "# 1. The subscriber writes {:?}: the flow answers with an OTN request for topic {:?}.",
            self.trigger_text, self.topic_name
        );
        let _ = writeln!(out, "{}", signed_post(&webhook, &message, &self.app_secret));
        let _ = writeln!(
            out,
            "#    (Run it twice: a redelivery is answered {{\"duplicates\":1}} and not processed again.)\n"
        );
        let _ = writeln!(
            out,
            "# 2. They tap \"Notify me\": Messenger sends an opt-in with a one-time token."
        );
        let _ = writeln!(out, "{}\n", signed_post(&webhook, &optin, &self.app_secret));
        let _ = writeln!(out, "# 3. The topic now has one opt-in waiting to be used.");
        let _ = writeln!(
            out,
            "curl -sS -H '{auth}' {}/api/pages/{}/topics\n",
            self.base_url, self.page
        );
        let _ = writeln!(
            out,
            "# 4. Notify everyone waiting on the topic: exactly one message goes out, paid by the token."
        );
        if let Some(flow) = &self.notify_flow {
            let _ = writeln!(
                out,
                "#    The flow {flow:?} greets the subscriber by the name the User Profile API gave."
            );
        }
        let _ = writeln!(
            out,
            "curl -sS -X POST -H '{auth}' -H 'Content-Type: application/json' {topic_url}/notify -d '{notify}'\n"
        );
        let _ = writeln!(
            out,
            "# 5. Notify again: the token is spent, so nothing is sent."
        );
        let _ = writeln!(
            out,
            "curl -sS -X POST -H '{auth}' -H 'Content-Type: application/json' {topic_url}/notify -d '{notify}'\n"
        );
        let _ = writeln!(
            out,
            "# 6. The subscriber's session, fields, tags and tokens."
        );
        let _ = writeln!(
            out,
            "curl -sS -H '{auth}' {}/api/pages/{}/subscribers/{DEMO_PSID}\n",
            self.base_url, self.page
        );
        let _ = writeln!(
            out,
            "# 7. {DEMO_CROWD} subscribers wait on topic {DEMO_CROWD_TOPIC:?} (id {}): notify them from the\n\
             #    builder's OTN Topics page and watch the progress bar (or Cancel), or with\n\
             #    `botflow notify {DEMO_CROWD_TOPIC:?} --text \"Sale!\" --wait` (BOTFLOW_SERVER={}, BOTFLOW_ADMIN_TOKEN=...).\n",
            self.crowd_topic_id, self.base_url
        );
        let _ = writeln!(
            out,
            "Also: {0}/metrics, {0}/healthz, {0}/api/openapi.json. Stop with Ctrl-C.",
            self.base_url
        );
        out
    }
}

fn signed_post(url: &str, body: &str, app_secret: &str) -> String {
    format!(
        "curl -sS -X POST {url} -H 'Content-Type: application/json' -H 'X-Hub-Signature-256: {}' -d '{body}'",
        signature(app_secret, body)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walkthrough() -> DemoWalkthrough {
        DemoWalkthrough {
            base_url: "http://127.0.0.1:8080".into(),
            page: "100".into(),
            app_secret: "s3cret".into(),
            admin_token: "adm".into(),
            topic_id: "t-1".into(),
            topic_name: "Red sneakers restock".into(),
            optin_payload: "bf1:o:100:restock:1:welcome:1:t-1".into(),
            otn_token: "tok-1".into(),
            trigger_text: "restock".into(),
            notify_flow: Some("restock-notify".into()),
            now_ms: 1_700_000_000_000,
            crowd_topic_id: "t-2".into(),
        }
    }

    /// The body and signature of every signed `curl` line, as a shell would pass them.
    fn signed_requests(text: &str) -> Vec<(String, String)> {
        text.lines()
            .filter(|line| line.contains("X-Hub-Signature-256"))
            .map(|line| {
                let signature = line
                    .split("X-Hub-Signature-256: ")
                    .nth(1)
                    .and_then(|rest| rest.split('\'').next())
                    .unwrap()
                    .to_owned();
                let body = line
                    .split(" -d '")
                    .nth(1)
                    .unwrap()
                    .trim_end_matches('\'')
                    .to_owned();
                (body, signature)
            })
            .collect()
    }

    #[test]
    fn printed_webhooks_verify_under_the_app_secret_and_parse() {
        let text = walkthrough().render();
        let requests = signed_requests(&text);
        assert_eq!(requests.len(), 2, "{text}");
        for (body, signature) in &requests {
            botflow_messenger::verify_signature(b"s3cret", body.as_bytes(), Some(signature))
                .unwrap();
            let events = botflow_messenger::parse_webhook(body.as_bytes())
                .unwrap()
                .into_events();
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].sender.as_str(), DEMO_PSID);
        }
        assert!(requests[1].0.contains("bf1:o:100:restock:1:welcome:1:t-1"));
        assert!(requests[1].0.contains("tok-1"));
    }

    #[test]
    fn admin_commands_carry_the_token_and_the_topic() {
        let text = walkthrough().render();
        assert_eq!(
            text.matches("/api/pages/100/topics/t-1/notify").count(),
            2,
            "{text}"
        );
        assert!(text.contains("Authorization: Bearer adm"));
        assert!(text.contains(
            "Open the builder (flows, OTN topics, preview): http://127.0.0.1:8080/ui/#token=adm\n"
        ));
        assert!(text.contains("/api/pages/100/subscribers/2000000000000001"));
        assert_eq!(text.matches(r#"-d '{"flow":"restock-notify"}'"#).count(), 2);
    }
}
