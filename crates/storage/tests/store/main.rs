//! Tests of the sled store through the `Store` trait, each on a real database in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash;
mod differential;
mod flows;
mod journal;
mod ledger;
mod model;
mod notifications;
mod outbox;
mod outcomes;
mod power_loss;
mod recurring;
mod retention;
mod token_race;
mod tokens;
mod topics;

use botflow_flow::{FlowDocument, TopicId, parse_flow};
use botflow_storage::{
    NewOutbound, NewToken, OutboundKind, PageId, Psid, Session, SledStore, StepCommit, Store,
    StoreOptions,
};
use serde_json::{Value, json};
use std::path::Path;
use tempfile::TempDir;

/// A fresh store in its own temp dir (the dir lives as long as the returned guard).
pub(crate) fn temp_store() -> (TempDir, SledStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    (dir, store)
}

/// Opens the store in `path` with test options (no background fsync thread noise).
pub(crate) fn open(path: &Path) -> SledStore {
    SledStore::open(
        path,
        StoreOptions {
            flush_every_ms: None,
            cache_capacity_bytes: 16 * 1024 * 1024,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// A text notification of `topic` at `now_ms`: its record, then its messages.
pub(crate) fn notify_text(
    store: &dyn Store,
    topic: &TopicId,
    body_for: botflow_storage::BodyFor<'_>,
    now_ms: u64,
) -> botflow_storage::StoreResult<botflow_storage::NotifyOutcome> {
    let content = botflow_storage::NotificationContent::Text;
    let notification = store.create_notification(&page(), topic, &content, now_ms)?;
    let outcome = store.notify_topic(&page(), topic, notification.id, body_for, now_ms)?;
    store.close_notification_queuing(&page(), notification.id, now_ms)?;
    Ok(outcome)
}

pub(crate) fn page() -> PageId {
    PageId::from("page-1")
}

pub(crate) fn psid(n: u32) -> Psid {
    Psid(format!("psid-{n}"))
}

/// A valid flow whose only OTN request refers to `topic` (`{"id": ..}` or `{"name": ..}`).
pub(crate) fn otn_flow(id: &str, topic: serde_json::Value) -> FlowDocument {
    let text = json!({
        "format": 1,
        "id": id,
        "name": format!("Flow {id}"),
        "triggers": [{"type": "keyword", "words": [id]}],
        "start": "ask",
        "blocks": [
            {"id": "ask", "type": "send_message", "messages": [
                {"type": "otn_request", "topic": topic, "title": "Tell me", "on_optin": "thanks"}
            ]},
            {"id": "thanks", "type": "send_message", "messages": [{"type": "text", "text": "ok"}]}
        ]
    })
    .to_string();
    parse_flow(&text).unwrap()
}

/// A valid flow without topics.
pub(crate) fn plain_flow(id: &str, text: &str) -> FlowDocument {
    let text = json!({
        "format": 1,
        "id": id,
        "name": format!("Flow {id}"),
        "triggers": [{"type": "keyword", "words": [id]}],
        "start": "hello",
        "blocks": [
            {"id": "hello", "type": "send_message", "messages": [{"type": "text", "text": text}]}
        ]
    })
    .to_string();
    parse_flow(&text).unwrap()
}

pub(crate) fn token(topic: &TopicId, value: &str, created_ms: u64, expires_ms: u64) -> NewToken {
    NewToken {
        topic: topic.clone(),
        token: value.to_owned(),
        created_ms,
        expires_ms,
    }
}

pub(crate) fn text_message(n: u64) -> NewOutbound {
    NewOutbound {
        body: json!({"message": {"text": format!("m{n}")}}),
        kind: OutboundKind::Normal,
    }
}

pub(crate) fn token_message(topic: &TopicId) -> NewOutbound {
    NewOutbound {
        body: json!({"message": {"text": "back in stock"}}),
        kind: OutboundKind::OtnToken {
            topic: topic.clone(),
        },
    }
}

/// A step commit for `psid` without event, tokens or messages.
pub(crate) fn bare_commit(psid: &Psid, session: Session, now_ms: u64) -> StepCommit {
    StepCommit {
        page: page(),
        psid: psid.clone(),
        event: None,
        session,
        outbound: Vec::new(),
        tokens_added: Vec::new(),
        now_ms,
        durable: true,
    }
}

/// Asserts the store's indexes agree with its records.
pub(crate) fn assert_consistent(store: &SledStore) {
    let problems = store.verify_integrity().unwrap();
    assert!(problems.is_empty(), "integrity problems: {problems:#?}");
}

#[test]
fn example_flows_validate_so_the_helpers_are_meaningful() {
    let doc = otn_flow("f", json!({"name": "Restock"}));
    assert!(botflow_flow::validate(&doc).iter().all(|d| !d.is_error()));
    let doc = plain_flow("g", "hi");
    assert!(botflow_flow::validate(&doc).iter().all(|d| !d.is_error()));
    // And the store accepts them.
    let (_dir, store) = temp_store();
    assert_eq!(store.publish_document(&page(), doc, 1).unwrap().version, 1);
}
