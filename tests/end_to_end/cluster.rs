//! Two `botflow serve` nodes on one PostgreSQL database (SCALE-OUT.md §4.2): signed webhooks
//! for many subscribers of two Pages sent alternately to both nodes, OTN opt-ins and a text
//! notification through node A, a delay flow so timers fire, and node B killed with SIGKILL
//! mid-stream (restarted) or paused with SIGSTOP (resumed after node A took its shards over), in
//! several rounds. Then: every acknowledged event processed
//! exactly once and in per-subscriber order, no token paid twice, no timer fired twice, the
//! per-Page pace held in every 1-second window (failover included), and no commit under a stale
//! lease (per shard, epochs never go back in commit order). Prints the failover times.

use crate::support::{
    ADMIN_TOKEN, APP_SECRET, BODY_LIMIT, PAGE_ID, ServerProcess, botflow_bin, opt_in_restock,
    wait_until, workspace_root,
};
use botflow_messenger::fake::FakeGraphApi;
use botflow_server::delivery::{envelope, signature, text_message};
use botflow_storage::pg_test::TestDatabase;
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The second Page (its shard, 42, stays with node A; the first Page's, 215, moves to B).
const PAGE_B: &str = "2003";
const TOKEN_A: &str = "e2e-page-token";
const TOKEN_B: &str = "e2e-page-b-token";
const SUBSCRIBERS: usize = 100;
const OPTED_IN: usize = 20;
const DELAYED: usize = 40;
/// Holders of a second opt-in round, notified by a flow.
const FLOW_NOTIFIED: usize = 10;
const RATE: u32 = 40;
const LEASE_MS: u64 = 2_000;
/// Rounds of failure of node b: SIGKILL (then a restart) in even rounds, SIGSTOP (a paused
/// process, like a long GC pause or a netsplit: it resumes believing in its leases) in odd ones.
const KILL_ROUNDS: usize = 4;
const WAIT: Duration = Duration::from_secs(90);

fn write_flows(dir: &Path) {
    for (n, text) in [(1, "r1"), (2, "r2"), (3, "r3")] {
        let flow = json!({"format": 1, "id": format!("step{n}"), "name": format!("Step {n}"),
            "triggers": [{"type": "keyword", "words": [format!("k{n}")]}], "start": "a",
            "blocks": [{"id": "a", "type": "send_message",
                        "messages": [{"type": "text", "text": text}]}]});
        std::fs::write(dir.join(format!("step{n}.json")), flow.to_string()).unwrap();
    }
    let later = json!({"format": 1, "id": "later", "name": "Later",
        "triggers": [{"type": "keyword", "words": ["later"]}], "start": "a",
        "blocks": [
            {"id": "a", "type": "send_message", "messages": [{"type": "text", "text": "before"}],
             "next": "d"},
            {"id": "d", "type": "delay", "duration": "1s", "next": "b"},
            {"id": "b", "type": "send_message", "messages": [{"type": "text", "text": "after"}]}]});
    std::fs::write(dir.join("later.json"), later.to_string()).unwrap();
    for flow in ["restock.json", "restock-notify.json"] {
        std::fs::copy(workspace_root().join("flows").join(flow), dir.join(flow)).unwrap();
    }
}

/// Starts node `id` on the shared database.
async fn start_node(id: &str, dir: &Path, fake: &FakeGraphApi, url: &str) -> ServerProcess {
    let config = dir.join(format!("{id}.toml"));
    std::fs::write(
        &config,
        format!("[[pages]]\nid = \"{PAGE_B}\"\naccess_token = \"{TOKEN_B}\"\n"),
    )
    .unwrap();
    let data = dir.join(format!("data-{id}"));
    let mut command = Command::new(botflow_bin());
    command
        .args(["serve", "--config"])
        .arg(&config)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "RUST_LOG",
            "warn,botflow_runtime::ownership=info,botflow_runtime::dispatcher=info",
        )
        .env("BOTFLOW_LISTEN", "127.0.0.1:0")
        .env("BOTFLOW_DATA_DIR", &data)
        .env("BOTFLOW_DATABASE_URL", url)
        .env("BOTFLOW_NODE_ID", id)
        .env("BOTFLOW_SHARD_LEASE_MS", LEASE_MS.to_string())
        .env("BOTFLOW_SEND_RATE_PER_SECOND", RATE.to_string())
        .env("BOTFLOW_GRAPH_API_URL", fake.base_url())
        .env("BOTFLOW_PAGE_ID", PAGE_ID)
        .env("BOTFLOW_PAGE_ACCESS_TOKEN", TOKEN_A)
        .env("BOTFLOW_APP_SECRET", APP_SECRET)
        .env("BOTFLOW_VERIFY_TOKEN", "e2e-verify")
        .env("BOTFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("BOTFLOW_BODY_LIMIT_BYTES", BODY_LIMIT.to_string())
        .env("BOTFLOW_FLOWS_DIR", dir.join("flows"));
    ServerProcess::spawn(command).await
}

/// Runs `sql` on the test database (on a plain thread: the driver blocks).
async fn query(url: &str, sql: &'static str) -> Vec<postgres::Row> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.query(sql, &[]).unwrap()
    })
    .await
    .unwrap()
}

/// Runs `sql` with one text parameter; the rows' first column as text.
async fn query_args(url: &str, sql: &'static str, arg: &str) -> Vec<String> {
    let (url, arg) = (url.to_owned(), arg.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let rows = client.query(sql, &[&arg]).unwrap();
        rows.iter()
            .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
            .collect()
    })
    .await
    .unwrap()
}

async fn held(node: &ServerProcess) -> f64 {
    node.metric("botflow_shard_leases_held").await
}

/// Sends one signed webhook to `base`; whether it was acknowledged (200).
async fn post(client: &reqwest::Client, base: &str, body: &str) -> bool {
    let sent = client
        .post(format!("{base}/webhook"))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", signature(APP_SECRET, body))
        .body(body.to_owned())
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    matches!(sent, Ok(r) if r.status() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_survive_sigkills_with_each_event_once_in_order_and_paced() {
    let started = Instant::now();
    let database = tokio::task::spawn_blocking(TestDatabase::new)
        .await
        .unwrap();
    let url = database.url().to_owned();
    let fake = FakeGraphApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("flows")).unwrap();
    write_flows(&dir.path().join("flows"));

    let a = start_node("a", dir.path(), &fake, &url).await;
    let b = start_node("b", dir.path(), &fake, &url).await;
    wait_until("the shards shared fairly", WAIT, || async {
        (held(&a).await == 128.0 && held(&b).await == 128.0).then_some(())
    })
    .await;
    let leases = query(
        &url,
        "SELECT count(*) FILTER (WHERE owner = 'a'), count(*) FILTER (WHERE owner = 'b')
         FROM shard_leases",
    )
    .await;
    assert_eq!(
        (leases[0].get::<_, i64>(0), leases[0].get::<_, i64>(1)),
        (128, 128)
    );

    // OTN opt-ins (Page 1001, owned by b) through node a, then a notification through a
    let psids: Vec<String> = (0..OPTED_IN).map(|i| format!("o{i}")).collect();
    let (topic_id, tokens) = opt_in_restock(&a, &fake, &psids).await;
    let (status, counts) = a
        .api_json(
            Method::POST,
            &format!("/api/pages/{PAGE_ID}/topics/{topic_id}/notify"),
            Some(json!({"text": "Back in stock!"})),
        )
        .await;
    assert_eq!(status, 202, "{counts}");
    assert_eq!(counts["queued"], OPTED_IN, "{counts}");
    // new holders, then a flow notification through a, which does not own the Page: b runs
    // each subscriber's flow (journaled runs) and a answers once b's commits counted them all
    let flow_psids: Vec<String> = (0..FLOW_NOTIFIED).map(|i| format!("f{i}")).collect();
    let (_, flow_tokens) = opt_in_restock(&a, &fake, &flow_psids).await;
    let (status, counts) = a
        .api_json(
            Method::POST,
            &format!("/api/pages/{PAGE_ID}/topics/{topic_id}/notify"),
            Some(json!({"flow": "restock-notify"})),
        )
        .await;
    assert_eq!(status, 202, "{counts}");
    assert_eq!(
        (&counts["queued"], &counts["no_token"]),
        (&json!(FLOW_NOTIFIED), &json!(0)),
        "{counts}"
    );
    let tokens: std::collections::BTreeSet<String> = tokens.union(&flow_tokens).cloned().collect();

    // the load: per subscriber k1, k2, k3 (and "later" for some) sent one after the other,
    // alternating nodes; a node that does not answer is replaced by the other (a redelivery)
    let bases = Arc::new(Mutex::new([a.base_url.clone(), b.base_url.clone()]));
    let acknowledged: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let mut subscribers: Vec<(String, String, Vec<&'static str>)> = Vec::new();
    for page in [PAGE_ID, PAGE_B] {
        for i in 0..SUBSCRIBERS {
            let mut words = vec!["k1", "k2", "k3"];
            if i < DELAYED / 2 {
                words.push("later");
            }
            subscribers.push((page.to_owned(), format!("s{page}-{i}"), words));
        }
    }
    let workers: Vec<_> = subscribers
        .chunks(subscribers.len().div_ceil(8))
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let (bases, acknowledged) = (Arc::clone(&bases), Arc::clone(&acknowledged));
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for (page, psid, words) in chunk {
                    for (n, word) in words.iter().enumerate() {
                        let t = crate::support::now_ms();
                        let mid = format!("m-{psid}-{n}");
                        let body =
                            envelope(&page, t, vec![text_message(&page, &psid, &mid, word, t)])
                                .to_string();
                        let mut done = false;
                        for attempt in 0..40 {
                            let base = bases.lock().unwrap()[(n + attempt) % 2].clone();
                            if post(&client, &base, &body).await {
                                done = true;
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        assert!(done, "no node acknowledged {mid}");
                        acknowledged.lock().unwrap().push((
                            page.clone(),
                            psid.clone(),
                            word.to_string(),
                        ));
                    }
                }
            })
        })
        .collect();

    // what the database's sessions wait for during the load (sampled every 50 ms)
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (url, sampling) = (url.clone(), Arc::clone(&sampling));
        tokio::task::spawn_blocking(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut waits: BTreeMap<String, u64> = BTreeMap::new();
            let mut samples = 0u64;
            for _ in 0..4_000 {
                if !sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                samples += 1;
                let rows = client
                    .query(
                        "SELECT wait_event_type || ':' || wait_event, count(*) FROM pg_stat_activity
                         WHERE datname = current_database() AND state = 'active'
                           AND wait_event_type IS NOT NULL AND pid <> pg_backend_pid()
                         GROUP BY 1",
                        &[],
                    )
                    .unwrap();
                for row in rows {
                    *waits.entry(row.get(0)).or_insert(0) += row.get::<_, i64>(1) as u64;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (samples, waits)
        })
    };

    // kill b in several rounds at random moments, restart it
    let mut b = Some(b);
    let mut failovers = Vec::new();
    let mut timeline: Vec<(SystemTime, String)> = Vec::new();
    let mut seed = u64::from(std::process::id());
    for round in 0..KILL_ROUNDS {
        // b holds its share again (Page 1001's shard among it): kill it at a random moment
        wait_until("the shards shared", WAIT, || async {
            (held(&a).await == 128.0 && held(b.as_ref().unwrap()).await == 128.0).then_some(())
        })
        .await;
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let pause = Duration::from_millis(300 + (seed >> 33) % 1_200);
        tokio::time::sleep(pause).await;
        let mut node = b.take().unwrap();
        let paused = round % 2 == 1;
        if paused {
            node.signal("STOP");
        } else {
            node.kill();
        }
        let killed_at = SystemTime::now();
        let what = if paused { "paused" } else { "killed" };
        timeline.push((killed_at, format!("round {round}: b {what}")));
        // a takes over every shard once b's leases expired; then its first send for Page 1001
        wait_until("a holds every shard", WAIT, || async {
            (held(&a).await == 256.0).then_some(())
        })
        .await;
        let takeover = killed_at.elapsed().unwrap_or_default();
        let taken_at = SystemTime::now();
        timeline.push((taken_at, format!("round {round}: a holds every shard")));
        let first_send = wait_until("a send for the first Page after the takeover", WAIT, || {
            let found = fake
                .requests()
                .into_iter()
                .filter(|r| r.query.get("access_token").map(String::as_str) == Some(TOKEN_A))
                .map(|r| r.received_at)
                .find(|at| *at > taken_at);
            async move { found }
        })
        .await;
        let failover = first_send.duration_since(killed_at).unwrap_or_default();
        eprintln!(
            "round {round}: {what} b after {pause:?}; a took its shards over after {takeover:?}; \
             failover (to a's first send for Page {PAGE_ID}): {failover:?}"
        );
        failovers.push(failover);
        if paused {
            // b resumes believing in its leases: its sends stop at the self-fence, its commits
            // fail the fence, its next lease round finds the leases gone
            node.signal("CONT");
            timeline.push((SystemTime::now(), format!("round {round}: b resumed")));
            b = Some(node);
        } else {
            drop(node);
            let restarted = start_node("b", dir.path(), &fake, &url).await;
            timeline.push((SystemTime::now(), format!("round {round}: b restarted")));
            bases.lock().unwrap()[1] = restarted.base_url.clone();
            b = Some(restarted);
        }
    }
    for worker in workers {
        worker.await.unwrap();
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let (samples, waits) = sampler.await.unwrap();
    let stats = query(
        &url,
        "SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database
         WHERE datname = current_database()",
    )
    .await;
    eprintln!(
        "database during the load: {samples} samples of pg_stat_activity, waits (sessions x samples): {waits:?}; \
         commits {}, rollbacks {}, deadlocks {}",
        stats[0].get::<_, i64>(0),
        stats[0].get::<_, i64>(1),
        stats[0].get::<_, i64>(2)
    );
    let b = b.unwrap();
    wait_until("the shards shared again", WAIT, || async {
        (held(&a).await == 128.0 && held(&b).await == 128.0).then_some(())
    })
    .await;

    // quiescence: nothing unprocessed, pending or due
    let deadline = Instant::now() + WAIT;
    loop {
        let rows = query(
            &url,
            "SELECT (SELECT count(*) FROM journal WHERE processed_ms IS NULL),
                    (SELECT count(*) FROM outbox WHERE status = 0),
                    (SELECT count(*) FROM timers)",
        )
        .await;
        let left: (i64, i64, i64) = (rows[0].get(0), rows[0].get(1), rows[0].get(2));
        if left == (0, 0, 0) {
            break;
        }
        if Instant::now() > deadline {
            let detail = query(
                &url,
                "SELECT 'journal ' || page_id || ' ' || psid || ' seq ' || seq FROM journal
                   WHERE processed_ms IS NULL
                 UNION ALL SELECT 'outbox ' || id || ' ' || psid || ' ' || rec::text FROM outbox
                   WHERE status = 0
                 UNION ALL SELECT 'head ' || h.psid || ' ' || h.head_id || ' due ' || h.due_ms
                   FROM outbox_heads h JOIN outbox o ON o.page_id = h.page_id AND o.psid = h.psid
                   WHERE o.status = 0
                 UNION ALL SELECT 'timer ' || psid || ' ' || rec::text FROM timers
                 UNION ALL SELECT 'lease ' || shard || ' ' || coalesce(owner, '-') || ' ' || epoch
                   || ' ' || lease_until FROM shard_leases WHERE shard IN (42, 215)
                 LIMIT 20",
            )
            .await;
            let detail: Vec<String> = detail.iter().map(|r| r.get(0)).collect();
            panic!(
                "not quiescent after {WAIT:?}: (unprocessed, pending, timers) = {left:?}\n{detail:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // events: each acknowledged event processed (once: the journal's dedup) and its answer
    // queued exactly once
    let acknowledged = acknowledged.lock().unwrap().clone();
    let expected = SUBSCRIBERS * 2 * 3 + DELAYED;
    assert_eq!(acknowledged.len(), expected);
    let texts = query(
        &url,
        "SELECT psid, rec #>> '{body,message,text}' FROM outbox ORDER BY id",
    )
    .await;
    let mut queued: HashMap<(String, String), usize> = HashMap::new();
    for row in &texts {
        if let (psid, Some(text)) = (row.get::<_, String>(0), row.get::<_, Option<String>>(1)) {
            *queued.entry((psid, text)).or_insert(0) += 1;
        }
    }
    for (_, psid, word) in &acknowledged {
        let answers: &[&str] = match word.as_str() {
            "k1" => &["r1"],
            "k2" => &["r2"],
            "k3" => &["r3"],
            _ => &["before", "after"],
        };
        for answer in answers {
            let n = queued.get(&(psid.clone(), (*answer).to_owned())).copied();
            assert_eq!(
                n,
                Some(1),
                "{psid} {word}: {answer} queued {n:?} times (timers once)"
            );
        }
    }
    // order: per subscriber the fake got r1, r2, r3 in that order (a repeat around a kill may
    // follow itself, never an older answer after a newer one)
    let mut sent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for message in fake.sent_messages() {
        if let Some(text) = message.message.get("text").and_then(|t| t.as_str()) {
            sent.entry(message.psid).or_default().push(text.to_owned());
        }
    }
    for (page, psid, _) in subscribers.iter().map(|(p, s, w)| (p, s, w)) {
        let got: Vec<&str> = sent
            .get(psid)
            .map(|v| {
                v.iter()
                    .map(String::as_str)
                    .filter(|t| t.starts_with('r'))
                    .collect()
            })
            .unwrap_or_default();
        let mut dedup = got.clone();
        dedup.dedup();
        if dedup != ["r1", "r2", "r3"] {
            let history = query_args(
                &url,
                "SELECT 'journal seq ' || seq || ' ' || event_id || ' processed ' || processed_ms
                   || ' epoch ' || processed_epoch FROM journal WHERE psid = $1
                 UNION ALL SELECT 'outbox ' || id || ' ' || status || ' ' || rec::text
                   FROM outbox WHERE psid = $1",
                psid,
            )
            .await;
            panic!("order for {page}/{psid}: {got:?}\n{history:#?}");
        }
    }
    // tokens: each paid for one message at most once, and all were used
    let mut paid: BTreeMap<String, usize> = BTreeMap::new();
    for message in fake.sent_messages() {
        if let Some(token) = message.token {
            *paid.entry(token).or_insert(0) += 1;
        }
    }
    assert!(
        paid.values().all(|n| *n == 1),
        "a token paid twice: {paid:?}"
    );
    assert_eq!(paid.len(), tokens.len(), "every token paid: {paid:?}");
    // the flow notification: one message to each of its holders, none to the others
    let mut good_news: BTreeMap<String, usize> = BTreeMap::new();
    for message in fake.sent_messages() {
        let text = message.message.get("text").and_then(|t| t.as_str());
        if text.is_some_and(|t| t.starts_with("Good news")) {
            *good_news.entry(message.psid).or_insert(0) += 1;
        }
    }
    let expected_news: BTreeMap<String, usize> =
        (0..FLOW_NOTIFIED).map(|i| (format!("f{i}"), 1)).collect();
    assert_eq!(good_news, expected_news, "the flow notification's messages");
    // pacing: per Page, requests in any sliding 1 s window
    let limit = (f64::from(RATE) * 1.1 + 2.0) as usize;
    for token in [TOKEN_A, TOKEN_B] {
        let mut times: Vec<SystemTime> = fake
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/messages"))
            .filter(|r| r.query.get("access_token").map(String::as_str) == Some(token))
            .map(|r| r.received_at)
            .collect();
        times.sort();
        let (mut start, mut worst, mut worst_at) = (0, 0, 0);
        for end in 0..times.len() {
            while times[end].duration_since(times[start]).unwrap_or_default()
                >= Duration::from_secs(1)
            {
                start += 1;
            }
            if end - start + 1 > worst {
                (worst, worst_at) = (end - start + 1, start);
            }
        }
        if worst > limit {
            let at = times[worst_at];
            let offsets: Vec<i64> = times[worst_at..worst_at + worst]
                .iter()
                .map(|t| t.duration_since(at).unwrap_or_default().as_millis() as i64)
                .collect();
            let around: Vec<(i64, &String)> = timeline
                .iter()
                .map(|(t, what)| {
                    let ms = match t.duration_since(at) {
                        Ok(d) => d.as_millis() as i64,
                        Err(e) => -(e.duration().as_millis() as i64),
                    };
                    (ms, what)
                })
                .collect();
            eprintln!(
                "worst window of {token} (ms from its start): {offsets:?}\ntimeline: {around:?}"
            );
        }
        eprintln!(
            "page token {token}: {} sends, at most {worst} in a 1 s window (limit {limit})",
            times.len()
        );
        assert!(
            worst <= limit,
            "pacing broken for {token}: {worst} sends in 1 s"
        );
    }
    // fencing: per shard, in commit order, the epoch never goes back
    let rows = query(
        &url,
        "SELECT shard, processed_epoch FROM journal WHERE processed_epoch IS NOT NULL
         ORDER BY shard, processed_at, processed_epoch",
    )
    .await;
    let mut last: HashMap<i32, i64> = HashMap::new();
    for row in &rows {
        let (shard, epoch): (i32, i64) = (row.get(0), row.get(1));
        let before = last.insert(shard, epoch).unwrap_or(0);
        assert!(
            epoch >= before,
            "shard {shard}: a commit at epoch {epoch} after one at {before}"
        );
    }
    let epochs = query(
        &url,
        "SELECT max(epoch) FROM shard_leases WHERE shard = 215",
    )
    .await;
    assert!(
        epochs[0].get::<_, i64>(0) >= 2 * KILL_ROUNDS as i64,
        "page 1001's shard changed hands each round"
    );
    eprintln!(
        "failover times: {failovers:?}; whole test {:?}",
        started.elapsed()
    );
    // a graceful stop hands b's leases over at once (a's next round), not after their TTL
    let mut b = b;
    let stopping = Instant::now();
    assert!(b.terminate(), "b did not stop cleanly");
    wait_until(
        "a holds every shard after b's graceful stop",
        WAIT,
        || async { (held(&a).await == 256.0).then_some(()) },
    )
    .await;
    let handover = stopping.elapsed();
    eprintln!("graceful stop of b to a holding every shard: {handover:?}");
    let released = query(&url, "SELECT count(*) FROM shard_leases WHERE owner = 'b'").await;
    assert_eq!(released[0].get::<_, i64>(0), 0);
    drop((a, b));
    tokio::task::spawn_blocking(move || drop(database))
        .await
        .unwrap();
}
