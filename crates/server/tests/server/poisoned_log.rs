//! The server over a simulated event log. A failed `fdatasync`: the webhook answers 500
//! (Messenger redelivers), the server reports the fatal error so `botflow serve` exits, and a
//! restart recovers. A hanging `fdatasync`: nothing is acknowledged and nothing is sent until it
//! returns. An event and its step's commit share one `fdatasync`.

use crate::support::{APP_SECRET, PAGE_ID, message_delivery, test_config};
use botflow_messenger::fake::{FakeGraphApi, Fault};
use botflow_server::metrics::ServerMetrics;
use botflow_server::{AppState, app, router, startup};
use botflow_storage::log::{HotLog, LogDir, LogOptions, SimDir};
use botflow_storage::{SledStore, Store, StoreOptions};
use reqwest::StatusCode;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn open_store(path: &Path, log: &SimDir) -> Arc<dyn Store> {
    open_store_with(path, log, StoreOptions::default())
}

fn open_store_with(path: &Path, log: &SimDir, options: StoreOptions) -> Arc<dyn Store> {
    let store = SledStore::open(
        path,
        StoreOptions {
            flush_every_ms: None,
            log_dir: Some(Arc::new(log.clone())),
            ..options
        },
    )
    .unwrap();
    startup::register_pages(&store, &[PAGE_ID.into()], 1).unwrap();
    Arc::new(store)
}

/// The router over `store`, served on 127.0.0.1 until `stop` is sent; returns its state, base
/// URL, the stop sender and the serving task.
async fn serve(
    store: Arc<dyn Store>,
    data_dir: &Path,
    fake: &FakeGraphApi,
) -> (
    Arc<AppState>,
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let config = test_config(data_dir, fake.base_url());
    let metrics = Arc::new(ServerMetrics::default());
    let runtime = Arc::new(
        app::start_runtime(&config, store.clone(), &metrics)
            .await
            .unwrap(),
    );
    let state = Arc::new(AppState::new(config, store, runtime, metrics));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let routes = router(state.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, routes)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    (state, url, stop, task)
}

async fn deliver(url: &str, body: &str) -> StatusCode {
    let signature = botflow_messenger::sign_body(APP_SECRET.as_bytes(), body.as_bytes());
    reqwest::Client::new()
        .post(format!("{url}/webhook"))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fdatasync_answers_500_reports_a_fatal_error_and_a_restart_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraphApi::start().await;
    let sim = SimDir::new();
    let store = open_store(dir.path(), &sim);
    let (state, url, stop, task) = serve(store.clone(), dir.path(), &fake).await;

    assert_eq!(
        deliver(&url, &message_delivery("7", "m-1", "hello")).await,
        StatusCode::OK
    );
    sim.fail_next_syncs(1);
    let failed = message_delivery("7", "m-2", "again");
    assert_eq!(
        deliver(&url, &failed).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let error = state.fatal_error().await;
    assert!(error.contains("fdatasync"), "{error}");
    // Never retried: the next delivery fails too, and no sync is attempted for it.
    let attempts = sim.sync_attempts();
    assert_eq!(
        deliver(&url, &message_delivery("8", "m-3", "later")).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(sim.sync_attempts(), attempts);
    // What `botflow serve` does next: stop, then exit.
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    // The runtime stops, and its last flush reports that nothing more can be made durable.
    let shutdown = state.runtime.shutdown().await.unwrap_err().to_string();
    assert!(shutdown.contains("fdatasync"), "{shutdown}");
    drop(state);
    drop(store);

    // The restart recovers from what is on disk: the acknowledged event is there (processed or
    // not), Messenger's redeliveries of the refused events are journaled as new.
    let recovered = sim.crash(|| false);
    let store = open_store(dir.path(), &recovered);
    let (_state, url, _stop, _task) = serve(store, dir.path(), &fake).await;
    assert_eq!(deliver(&url, &failed).await, StatusCode::OK);
    assert_eq!(
        deliver(&url, &message_delivery("8", "m-3", "later")).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_fdatasync_hangs_nothing_is_acknowledged_and_nothing_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraphApi::start().await;
    let sim = SimDir::new();
    let store = open_store(dir.path(), &sim);
    let restock = botflow_flow::parse_flow(&crate::support::example_flow_text("restock")).unwrap();
    store.publish_document(&PAGE_ID.into(), restock, 1).unwrap();
    // An event journaled (synced) before the server starts: the runtime picks it up at start,
    // steps it and queues the flow's reply, all while the log cannot sync.
    let body = message_delivery("7", "m-1", "restock");
    let webhook = botflow_messenger::parse_webhook(body.as_bytes()).unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let record =
        botflow_server::ingest::journal_record(&webhook.entries[0].messaging[0], now_ms).unwrap();
    store.journal_append_batch(&[record]).unwrap();
    sim.hold_syncs(true);
    let (_state, url, _stop, _task) = serve(store.clone(), dir.path(), &fake).await;
    let acknowledged = tokio::spawn({
        let url = url.clone();
        async move { deliver(&url, &message_delivery("8", "m-2", "restock")).await }
    });
    // Long enough for the step, its commit and the dispatcher to have run many times over.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let (answered_early, sent_early) = (acknowledged.is_finished(), fake.sent_messages());
    // Released before asserting: a failed assertion must not leave threads waiting forever.
    sim.hold_syncs(false);
    assert!(
        !answered_early,
        "a webhook was acknowledged before its fdatasync"
    );
    assert!(
        sent_early.is_empty(),
        "a message left before the commit that queued it was durable: {sent_early:?}"
    );
    assert_eq!(acknowledged.await.unwrap(), StatusCode::OK);
    crate::support::eventually("both subscribers' first replies", || async {
        let sent = fake.sent_messages();
        let to = |psid: &str| sent.iter().any(|m| m.psid == psid);
        (to("7") && to("8")).then_some(())
    })
    .await;
}

/// The records a power loss now would leave in the log.
fn records_on_disk(sim: &SimDir) -> Vec<(u64, Vec<u8>)> {
    let dir: Arc<dyn LogDir> = Arc::new(sim.crash(|| false));
    HotLog::open(dir, LogOptions::default()).unwrap().1.records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_and_its_step_become_durable_by_one_fdatasync() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraphApi::start().await;
    // The reply's send is held, so no send outcome is logged while the test counts syncs.
    fake.inject(Fault::Delay(Duration::from_secs(2)), 1);
    let sim = SimDir::new();
    // An event left alone would wait 10 s for its sync: only its step's commit can start the
    // sync sooner. No checkpoints (they wait for the log too).
    let options = StoreOptions {
        event_sync_wait: Duration::from_secs(10),
        checkpoint_every_ms: None,
        ..StoreOptions::default()
    };
    let store = open_store_with(dir.path(), &sim, options);
    let restock = botflow_flow::parse_flow(&crate::support::example_flow_text("restock")).unwrap();
    store.publish_document(&PAGE_ID.into(), restock, 1).unwrap();
    let (_state, url, _stop, _task) = serve(store.clone(), dir.path(), &fake).await;
    let syncs = sim.syncs();
    let before = records_on_disk(&sim).len();

    let started = Instant::now();
    let status = deliver(&url, &message_delivery("7", "m-1", "restock")).await;
    let (answered_in, synced) = (started.elapsed(), sim.syncs());
    let on_disk = records_on_disk(&sim);
    assert_eq!(status, StatusCode::OK);
    assert!(
        answered_in < Duration::from_secs(5),
        "the event waited for its own sync ({answered_in:?}): its step's commit did not start it"
    );
    assert_eq!(synced, syncs + 1, "one fdatasync before the 200");
    // Durable by that one sync: the event's record and the commit that processed it (a redo
    // record naming the event).
    let new = &on_disk[before..];
    let names = |kind: u8| {
        new.iter()
            .any(|(_, r)| r.first() == Some(&kind) && r.windows(3).any(|w| w == b"m-1"))
    };
    assert!(names(1), "the event's record is not on disk");
    assert!(names(2), "the step's commit is not on disk with its event");
    crate::support::eventually("the reply", || async {
        (!fake.sent_messages().is_empty()).then_some(())
    })
    .await;
}
