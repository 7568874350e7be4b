//! Tests of the stores through the `Store` trait: one suite, two backends.
//!
//! A test body listed in a file's `on_both_backends!` runs twice, as `sled_backend::<name>` (a
//! sled database in a temp dir) and `pg_backend::<name>` (a fresh schema in PostgreSQL: the
//! database of `BOTFLOW_TEST_DATABASE_URL`, or one throwaway cluster per test binary started
//! from the installed server binaries; see `botflow_storage::pg_test`). `cargo test -p
//! botflow-storage --test store pg_backend` runs the PostgreSQL half.
//!
//! Tests that close the store and open it again use [`temp_location`] and [`reopen`] (sled
//! reopens its directory, PostgreSQL connects to the schema again).
//!
//! Tests still marked `#[test]` are sled-only, by nature:
//! - `crash.rs`: a child process writing through sled SIGKILLed at random moments, also at points
//!   inside checkpoints; `power_loss.rs`: the same writer in-process, its log cut while syncs
//!   hang; `differential.rs`: the overlay's answers against sled's;
//! - `journal.rs`: the event log (`HotLog`) — concurrent appends sharing `fdatasync`s, power
//!   loss of the log directory, a failed `fdatasync`, segment deletion, moving an older
//!   release's sled journal into the log, a damaged index entry (`raw_db`);
//! - `flows.rs`: the two tests that rewrite a stored version record (`raw_db`);
//! - `ledger.rs` and `retention.rs`: building the ledger and the retention index at open for a
//!   database written by an older release, the sweep's index backlog
//!   (`SledStore::retention_backlog`), the version cache's capacity (sled `StoreOptions`).
//!
//! `postgres.rs` holds what only the PostgreSQL backend has (migrations, connection errors,
//! async callers, racing connections, statements outliving a migration) and `tls.rs` its TLS
//! (a throwaway cluster with `ssl = on` and a certificate made by the test); `model.rs` and
//! `token_race.rs` run their proptests on both (fewer cases on PostgreSQL; the model's
//! checkpoints and power-loss restarts are sled's, a restart on PostgreSQL reconnects).
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Emits `sled_backend::<name>` and `pg_backend::<name>` tests running the body `<name>` (a
/// plain `fn()` of the file) on each backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sled_backend {
            $( #[test] fn $name() { crate::run_on(crate::Backend::Sled, super::$name) } )*
        }
        mod pg_backend {
            $( #[test] fn $name() { crate::run_on(crate::Backend::Pg, super::$name) } )*
        }
    };
}

mod crash;
mod differential;
mod flows;
mod journal;
mod leases;
mod ledger;
mod model;
mod notifications;
mod outbox;
mod outcomes;
mod postgres;
mod power_loss;
mod recurring;
mod retention;
mod tls;
mod token_race;
mod tokens;
mod topics;

use botflow_flow::{FlowDocument, TopicId, parse_flow};
use botflow_storage::PgStore;
use botflow_storage::pg_test::TestSchema;
use botflow_storage::{
    NewOutbound, NewToken, OutboundKind, PageId, Psid, Session, SledStore, StepCommit, Store,
    StoreOptions,
};
use serde_json::{Value, json};
use std::path::Path;
use tempfile::TempDir;

/// A fresh store in its own temp dir (the dir lives as long as the returned guard).
/// The backend a shared test body runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sled,
    Pg,
}

thread_local! {
    /// The backend [`temp_store`] opens on this test thread.
    pub(crate) static BACKEND_FOR_TEST: std::cell::Cell<Backend> =
        const { std::cell::Cell::new(Backend::Sled) };
}

/// Runs a test body with [`temp_store`] giving stores of `backend`.
pub(crate) fn run_on(backend: Backend, body: fn()) {
    BACKEND_FOR_TEST.set(backend);
    body();
}

/// What keeps a test store's data alive: its temp dir or its schema (dropped at the end).
pub(crate) enum Guard {
    Dir(TempDir),
    Schema(TestSchema),
}

/// A store of either backend, used through `Store`.
pub(crate) enum TestStore {
    Sled(SledStore),
    Pg(PgStore),
}

impl std::ops::Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Sled(store) => store,
            Self::Pg(store) => store,
        }
    }
}

/// A fresh store of the backend the running test body is on.
pub(crate) fn temp_store() -> (Guard, TestStore) {
    match BACKEND_FOR_TEST.get() {
        Backend::Sled => {
            let dir = tempfile::tempdir().unwrap();
            let store = open(dir.path());
            (Guard::Dir(dir), TestStore::Sled(store))
        }
        Backend::Pg => {
            let schema = TestSchema::new();
            let store = schema.store();
            (Guard::Schema(schema), TestStore::Pg(store))
        }
    }
}

/// Where a store of the running test body's backend lives (a temp dir or a new schema), for
/// tests that close the store and open it again ([`reopen`]).
pub(crate) fn temp_location() -> Guard {
    match BACKEND_FOR_TEST.get() {
        Backend::Sled => Guard::Dir(tempfile::tempdir().unwrap()),
        Backend::Pg => Guard::Schema(TestSchema::new()),
    }
}

/// Opens (again) the store at `location`: sled reopens its directory, PostgreSQL connects to
/// its schema again.
pub(crate) fn reopen(location: &Guard) -> TestStore {
    match location {
        Guard::Dir(dir) => TestStore::Sled(open(dir.path())),
        Guard::Schema(schema) => TestStore::Pg(schema.store()),
    }
}

/// A sled store in a temp dir (for the sled-only tests).
pub(crate) fn temp_sled() -> (TempDir, SledStore) {
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
        notification_run: None,
    }
}

/// Asserts the store's indexes agree with its records.
/// A store whose backend cross-checks its own records.
pub(crate) trait Checked {
    /// What the backend's integrity check finds, one line per problem.
    fn problems(&self) -> Vec<String>;
}

impl Checked for SledStore {
    fn problems(&self) -> Vec<String> {
        let found = self.verify_integrity().unwrap();
        found.iter().map(|p| format!("{p:?}")).collect()
    }
}

impl Checked for TestStore {
    fn problems(&self) -> Vec<String> {
        match self {
            Self::Sled(store) => store.problems(),
            Self::Pg(store) => store.verify_integrity().unwrap(),
        }
    }
}

/// The backend's own cross-checks find nothing wrong.
pub(crate) fn assert_consistent(store: &impl Checked) {
    let problems = store.problems();
    assert!(problems.is_empty(), "integrity problems: {problems:#?}");
}

fn example_flows_validate_so_the_helpers_are_meaningful() {
    let doc = otn_flow("f", json!({"name": "Restock"}));
    assert!(botflow_flow::validate(&doc).iter().all(|d| !d.is_error()));
    let doc = plain_flow("g", "hi");
    assert!(botflow_flow::validate(&doc).iter().all(|d| !d.is_error()));
    // And the store accepts them.
    let (_dir, store) = temp_store();
    assert_eq!(store.publish_document(&page(), doc, 1).unwrap().version, 1);
}

on_both_backends!(example_flows_validate_so_the_helpers_are_meaningful);
