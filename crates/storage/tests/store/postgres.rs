//! What only the PostgreSQL backend has: migrations under the advisory lock, a database newer
//! than the release, connection errors that say whether a retry may help, calls from async
//! code (Tokio workers of both runtime flavors), and true concurrency (several connections) keeping a token to one message.

use super::*;
use botflow_storage::pg_test::{TestSchema, shared_url};
use botflow_storage::{EventId, StoreError, TokenSendOutcome};
use std::sync::Arc;

#[test]
fn nodes_starting_together_migrate_once_and_a_second_run_applies_nothing() {
    let schema = TestSchema::new();
    let options = schema.options();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let options = options.clone();
            std::thread::spawn(move || PgStore::migrate_with(&options).unwrap())
        })
        .collect();
    let applied: Vec<Vec<(i32, &str)>> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    let total: usize = applied.iter().map(Vec::len).sum();
    assert_eq!(
        total,
        PgStore::schema_version() as usize,
        "each migration applied exactly once across the racing nodes: {applied:?}"
    );
    assert!(PgStore::migrate_with(&options).unwrap().is_empty());
    // and the store works on the migrated schema
    let store = schema.store();
    assert!(store.ensure_page(&page(), 1).unwrap());
}

#[test]
fn a_database_migrated_by_a_newer_release_is_refused() {
    let schema = TestSchema::new();
    drop(schema.store());
    let mut client = ::postgres::Client::connect(&shared_url(), ::postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "INSERT INTO {}.schema_migrations (version, name) VALUES (999, 'future')",
            schema.name()
        ))
        .unwrap();
    let err = PgStore::connect_with(&schema.options()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::UnsupportedDatabaseFormat { found: 999, .. }
        ),
        "{err}"
    );
}

#[test]
fn connection_problems_say_what_and_whether_a_retry_may_help() {
    let bad = PgStore::connect("mysql://somewhere").unwrap_err();
    assert!(!bad.is_transient(), "{bad}");
    assert!(bad.to_string().contains("database URL"), "{bad}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down =
        PgStore::connect(&format!("postgres://botflow@127.0.0.1:{port}/botflow")).unwrap_err();
    assert!(down.is_transient(), "nothing listens there: {down}");
    assert!(down.to_string().contains("connecting"), "{down}");

    let schema = TestSchema::new();
    let mut options = schema.options();
    options.schema = Some("Bad-Name".into());
    let err = PgStore::connect_with(&options).unwrap_err();
    assert!(err.to_string().contains("schema name"), "{err}");
}

#[test]
fn async_callers_get_an_answer_never_a_driver_panic() {
    let schema = TestSchema::new();
    let store = Arc::new(schema.store());
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let on_worker = Arc::clone(&store);
    let pages = multi.block_on(async move {
        on_worker.ensure_page(&page(), 1).unwrap();
        on_worker.list_pages().unwrap()
    });
    assert_eq!(pages, vec![page()]);

    let single = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let on_single = Arc::clone(&store);
    let topic = single.block_on(async move {
        // on the runtime's only thread, and on its blocking pool
        let topic = on_single.create_topic(&page(), "Restock", 2).unwrap();
        let again = Arc::clone(&on_single);
        let found = tokio::task::spawn_blocking(move || again.list_topics(&page(), 3).unwrap())
            .await
            .unwrap();
        assert_eq!(found[0].topic.id, topic.id);
        topic
    });
    assert_eq!(store.get_topic(&page(), &topic.id).unwrap(), Some(topic));
    // the store, dropped inside a runtime, closes its connections without a panic
    multi.block_on(async move { drop(store) });
}

#[test]
fn racing_connections_never_spend_a_token_twice() {
    let schema = TestSchema::new();
    let store = Arc::new(schema.store());
    let topic = store.create_topic(&page(), "Restock", 1).unwrap().id;
    let p = psid(1);
    for n in 0..5 {
        store
            .add_token(
                &page(),
                &p,
                token(&topic, &format!("t{n}"), 2 + n, 1_000_000),
                10,
            )
            .unwrap();
    }
    // eight "nodes" each try to send three token messages to the same subscriber at once
    let racers: Vec<_> = (0..8u64)
        .map(|n| {
            let store = Arc::clone(&store);
            let (topic, p) = (topic.clone(), p.clone());
            std::thread::spawn(move || {
                let mut paid = Vec::new();
                for round in 0..3 {
                    let mut session = Session::default();
                    session.tags.insert(format!("racer-{n}-{round}"));
                    let commit = StepCommit {
                        outbound: vec![token_message(&topic)],
                        ..bare_commit(&p, session, 100)
                    };
                    match store.commit_step(commit) {
                        Ok(done) => {
                            paid.extend(done.token_sends.into_iter().filter_map(|s| match s {
                                TokenSendOutcome::Queued { token, .. } => Some(token),
                                _ => None,
                            }))
                        }
                        Err(StoreError::TokenGone { .. }) => {}
                        Err(other) => panic!("racer {n}: {other}"),
                    }
                }
                paid
            })
        })
        .collect();
    let mut paid: Vec<String> = racers.into_iter().flat_map(|r| r.join().unwrap()).collect();
    paid.sort();
    assert_eq!(
        paid,
        ["t0", "t1", "t2", "t3", "t4"],
        "each token paid exactly once"
    );
    let queued = store.messages_for(&page(), &p).unwrap();
    assert_eq!(queued.len(), 5);
    assert_consistent(&TestStore::Pg(Arc::into_inner(store).unwrap()));
}

#[test]
fn schemas_are_isolated_from_each_other() {
    let (a, b) = (TestSchema::new(), TestSchema::new());
    let (first, second) = (a.store(), b.store());
    first.ensure_page(&page(), 1).unwrap();
    assert!(second.list_pages().unwrap().is_empty());
}

#[test]
fn prepared_statements_outlive_a_migration_that_changes_their_table() {
    let schema = TestSchema::new();
    let store = schema.store();
    let topic = store.create_topic(&page(), "Restock", 1).unwrap();
    // read and write once, so both statement kinds are prepared on the pooled connection
    assert_eq!(
        store.get_topic(&page(), &topic.id).unwrap(),
        Some(topic.clone())
    );
    store.rename_topic(&page(), &topic.id, "Restocked").unwrap();
    // what a later migration may do: a column's type changes under the prepared statements
    let mut client = ::postgres::Client::connect(&shared_url(), ::postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "ALTER TABLE {}.topics ALTER COLUMN name TYPE varchar(200)",
            schema.name()
        ))
        .unwrap();
    let found = store.get_topic(&page(), &topic.id).unwrap().unwrap();
    assert_eq!(found.name, "Restocked");
    assert_eq!(
        store.rename_topic(&page(), &topic.id, "Back").unwrap().name,
        "Back"
    );
    assert_eq!(store.database_errors(), 0);
}

#[test]
fn durable_calls_and_a_flush_survive_a_crash_of_the_server() {
    // a cluster of this test's own, since it is crashed (`pg_ctl stop -m immediate`)
    let mut cluster = botflow_storage::pg_test::TestCluster::start();
    let schema = TestSchema::on(&cluster.url());
    let store = schema.store();
    let (durable, flushed) = (psid(1), psid(2));
    let mut session = Session::default();
    session.tags.insert("kept".into());
    store
        .commit_step(bare_commit(&durable, session.clone(), 10))
        .unwrap();
    let appended = store
        .journal_append(
            &page(),
            &EventId::from("m-1"),
            &durable,
            &serde_json::json!({}),
            12,
        )
        .unwrap();
    assert!(matches!(appended, botflow_storage::Appended::New { .. }));
    store
        .commit_step(StepCommit {
            durable: false,
            ..bare_commit(&flushed, session.clone(), 11)
        })
        .unwrap();
    // not durable by itself (asynchronous commit): the flush makes it so
    store.flush().unwrap();

    cluster.stop();
    let err = store.load_session(&page(), &durable).unwrap_err();
    assert!(err.is_transient(), "the server is down: {err}");
    cluster.restart();

    // the same store reconnects by itself and finds everything acknowledged
    assert_eq!(
        store.load_session(&page(), &durable).unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        store.load_session(&page(), &flushed).unwrap(),
        Some(session)
    );
    let events = store.unprocessed_events().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, EventId::from("m-1"));
    assert!(store.database_errors() >= 1);
}
