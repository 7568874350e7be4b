//! Crash test: a child process (this test binary, re-executed) writes through the store and
//! acknowledges each durable write on stdout; the parent SIGKILLs it at random moments, reopens
//! the database and checks that every acknowledged write is there and the invariants hold. In
//! four rounds of five the child also ends itself at a point inside a checkpoint (after a tree
//! is copied into sled, after the copy is synced, after the checkpoint mark, after log segments
//! are deleted).

use super::*;
use botflow_storage::{
    Appended, EventId, NewJournalEvent, OutboundStatus, OutboxId, Outcome, StoreError,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DIR_VAR: &str = "BOTFLOW_STORAGE_CRASH_DIR";
const ROUND_VAR: &str = "BOTFLOW_STORAGE_CRASH_ROUND";
const ROUNDS: u64 = 24;
const SUBSCRIBERS: u64 = 6;
const TOPIC_NAME: &str = "Crash topic";
/// Children that ended themselves at a kill point inside a checkpoint.
static SELF_ENDED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A small deterministic generator (xorshift64*), so the test needs no extra dependency.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub(crate) fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    nanos | 1
}

fn crash_topic(store: &SledStore) -> TopicId {
    match store.create_topic(&page(), TOPIC_NAME, 1) {
        Ok(topic) => topic.id,
        Err(StoreError::TopicNameTaken { existing_id, .. }) => existing_id,
        Err(err) => panic!("cannot create the topic: {err}"),
    }
}

fn counter_of(session: &Session) -> u64 {
    session
        .fields
        .get("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The writer run by the child process; does nothing unless the parent set the env vars.
#[test]
#[ignore = "run by crash::store_survives_sigkill_at_random_moments in a child process"]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_VAR).unwrap().parse().unwrap();
    // Frequent checkpoints and small log segments, so kills land inside checkpoints and
    // segment deletions too.
    let store = SledStore::open(
        Path::new(&dir),
        StoreOptions {
            flush_every_ms: None,
            cache_capacity_bytes: 16 * 1024 * 1024,
            checkpoint_every_ms: Some(5),
            log_segment_bytes: 16 * 1024,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    println!("READY");
    // Bounded: the parent kills the child long before this ends.
    write_round(&store, round, 200_000, &mut |line| println!("{line}"));
}

/// The writes of one round (`steps` random operations), each acknowledged through `ack` once
/// it is durable: `J event`, `C psid n event token queued`, `S id`, `B ids` (a batch that is
/// all or nothing), `N queued`.
pub(crate) fn write_round(store: &SledStore, round: u64, steps: u64, ack: &mut dyn FnMut(String)) {
    let topic = crash_topic(store);
    let mut rng = Rng(seed());
    let mut journaled: Vec<(Psid, EventId)> = Vec::new();
    for i in 0..steps {
        let now = 1_000 + round * 1_000_000 + i;
        match rng.below(10) {
            0..=2 => {
                let events: Vec<NewJournalEvent> = (0..1 + rng.below(3))
                    .map(|k| {
                        let p = psid(rng.below(SUBSCRIBERS) as u32);
                        NewJournalEvent {
                            page: page(),
                            event: EventId(format!("r{round}-e{i}-{k}")),
                            psid: p,
                            payload: json!({"i": i, "k": k}),
                            received_ms: now,
                        }
                    })
                    .collect();
                store.journal_append_batch(&events).unwrap();
                for e in events {
                    ack(format!("J {}", e.event));
                    journaled.push((e.psid, e.event));
                }
            }
            3..=7 => {
                // One step: the next journaled event if any, else a timer-like step.
                let (p, event) = if journaled.is_empty() {
                    (psid(rng.below(SUBSCRIBERS) as u32), None)
                } else {
                    let (p, e) = journaled.remove(0);
                    (p, Some(e))
                };
                let mut session = store.load_session(&page(), &p).unwrap().unwrap_or_default();
                let n = counter_of(&session) + 1;
                session.fields.insert("n".into(), n.to_string());
                let mut tokens_added = Vec::new();
                if rng.below(3) == 0 {
                    tokens_added.push(token(&topic, &format!("r{round}-t{i}"), now, now + 500));
                }
                let mut outbound = vec![NewOutbound {
                    body: json!({"n": n}),
                    kind: OutboundKind::Normal,
                }];
                if rng.below(3) == 0 {
                    outbound.push(NewOutbound {
                        body: json!({"n": n, "otn": true}),
                        kind: OutboundKind::OtnToken {
                            topic: topic.clone(),
                        },
                    });
                }
                let committed = match store.commit_step(StepCommit {
                    page: page(),
                    psid: p.clone(),
                    event: event.clone(),
                    session,
                    outbound,
                    tokens_added: tokens_added.clone(),
                    now_ms: now,
                    durable: true,
                    notification_run: None,
                }) {
                    Ok(committed) => committed,
                    // A token send without a usable token: the step is refused, nothing is
                    // written and its event waits for the next step.
                    Err(StoreError::TokenGone { .. }) => {
                        if let Some(event) = event {
                            journaled.insert(0, (p, event));
                        }
                        continue;
                    }
                    Err(err) => panic!("step commit failed: {err}"),
                };
                let event = event.map(|e| e.0).unwrap_or_else(|| "-".into());
                let token = tokens_added
                    .first()
                    .map_or("-".to_owned(), |t| t.token.clone());
                ack(format!(
                    "C {p} {n} {event} {token} {}",
                    committed.outbox_ids.len()
                ));
            }
            8 if rng.below(2) == 0 => {
                if let Some(head) = store.due_outbound(now, 1).unwrap().first() {
                    store
                        .mark_sent(head.id, &format!("m.{}", head.id), now)
                        .unwrap();
                    ack(format!("S {}", head.id));
                }
            }
            8 => {
                // Batched outcomes: durable on return only when a token send is among them;
                // otherwise all-or-nothing after a crash.
                let heads = store.due_outbound(now, 1 + rng.below(4) as usize).unwrap();
                let outcomes: Vec<Outcome> = heads
                    .iter()
                    .map(|m| Outcome::Sent {
                        id: m.id,
                        message_id: format!("m.{}", m.id),
                        at_ms: now,
                    })
                    .collect();
                let results = store.mark_outcomes(&outcomes).unwrap();
                assert!(results.iter().all(Result::is_ok), "{results:?}");
                let ids: Vec<String> = heads.iter().map(|m| m.id.0.to_string()).collect();
                if heads.iter().any(|m| m.token.is_some()) {
                    for id in &ids {
                        ack(format!("S {id}"));
                    }
                } else if !ids.is_empty() {
                    ack(format!("B {}", ids.join(",")));
                }
            }
            _ => {
                let body_for = |p: &Psid| json!({"notify": p.as_str()});
                let outcome = notify_text(store, &topic, &body_for, now).unwrap();
                ack(format!("N {}", outcome.queued));
                if rng.below(4) == 0 {
                    store.expire_tokens(now).unwrap();
                }
            }
        }
    }
}

/// What the child acknowledged in one round.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    journaled: Vec<String>,
    /// psid → (n, event, token) of each acknowledged commit.
    commits: BTreeMap<String, Vec<(u64, String, String)>>,
    sent: Vec<u64>,
    /// Non-durable batches of sent marks: each must be wholly there or wholly absent.
    batches: Vec<Vec<u64>>,
    pub(crate) lines: usize,
}

pub(crate) fn parse_acks(lines: &[String]) -> Acks {
    let mut acks = Acks::default();
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["J", event] => acks.journaled.push((*event).to_owned()),
            ["C", p, n, event, token, _queued] => acks
                .commits
                .entry((*p).to_owned())
                .or_default()
                .push((n.parse().unwrap(), (*event).to_owned(), (*token).to_owned())),
            ["S", id] => acks.sent.push(id.parse().unwrap()),
            ["B", ids] => acks
                .batches
                .push(ids.split(',').map(|id| id.parse().unwrap()).collect()),
            _ => continue,
        }
        acks.lines += 1;
    }
    acks
}

/// Where a child may end itself inside a checkpoint (`BOTFLOW_KILL_AT`), one per round in
/// turn; "" kills it only from outside.
const KILL_POINTS: [&str; 5] = [
    "",
    "checkpoint-tree",
    "checkpoint-synced",
    "checkpoint-marked",
    "checkpoint-truncated",
];

/// Runs one child until a random moment after it is ready (or until it ends itself at this
/// round's kill point), kills it, returns its ack lines.
fn run_child(dir: &Path, round: u64, rng: &mut Rng) -> Vec<String> {
    let kill_at = KILL_POINTS[round as usize % KILL_POINTS.len()];
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::crash_child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir)
        .env(ROUND_VAR, round.to_string())
        .env("BOTFLOW_KILL_AT", kill_at)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lines.lock().unwrap().iter().any(|l| l.ends_with("READY")) {
        assert!(Instant::now() < deadline, "child did not start");
        if let Some(status) = child.try_wait().unwrap() {
            // A checkpoint at open may reach the kill point before the child is ready.
            assert_eq!(status.code(), Some(86), "child exited early: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // The random moment of the crash: somewhere in the next 0..120 ms of writing; a child with
    // a kill point gets up to a second to reach it.
    let wait = if kill_at.is_empty() {
        rng.below(120)
    } else {
        1_000
    };
    let kill = Instant::now() + Duration::from_millis(wait);
    while Instant::now() < kill && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    if status.code() == Some(86) {
        SELF_ENDED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    reader.join().unwrap();
    Arc::try_unwrap(lines).unwrap().into_inner().unwrap()
}

pub(crate) fn check_round(store: &SledStore, acks: &Acks, round: u64) {
    // Every acknowledged journal append is still there (a redelivery is a duplicate).
    for event in &acks.journaled {
        let outcome = store
            .journal_append_batch(&[NewJournalEvent {
                page: page(),
                event: EventId(event.clone()),
                psid: psid(0),
                payload: json!({}),
                received_ms: 0,
            }])
            .unwrap();
        assert_eq!(
            outcome,
            vec![Appended::Duplicate],
            "round {round}: journaled {event} lost"
        );
    }
    let unprocessed: BTreeSet<String> = store
        .unprocessed_events()
        .unwrap()
        .into_iter()
        .map(|e| e.event.0)
        .collect();
    for (p, commits) in &acks.commits {
        let p = Psid(p.clone());
        let session = store
            .load_session(&page(), &p)
            .unwrap()
            .expect("acknowledged session lost");
        let stored_n = counter_of(&session);
        let messages = store.messages_for(&page(), &p).unwrap();
        let queued_ns: BTreeSet<u64> = messages
            .iter()
            .filter(|m| m.body.get("otn").is_none() && m.body.get("notify").is_none())
            .filter_map(|m| m.body["n"].as_u64())
            .collect();
        for (n, event, token) in commits {
            assert!(
                stored_n >= *n,
                "round {round}: {p} session n {stored_n} < acknowledged {n}"
            );
            assert!(
                queued_ns.contains(n),
                "round {round}: message {n} of {p} lost"
            );
            if event != "-" {
                assert!(
                    !unprocessed.contains(event),
                    "round {round}: processed {event} came back"
                );
            }
            if token != "-" {
                assert!(
                    store.get_token(&page(), token).unwrap().is_some(),
                    "token {token} lost"
                );
            }
        }
    }
    // No message without its session change: every queued step message is at or below the
    // subscriber's stored counter.
    for p in store.list_subscribers(&page()).unwrap() {
        let n = counter_of(&store.load_session(&page(), &p).unwrap().unwrap());
        for m in store.messages_for(&page(), &p).unwrap() {
            if let Some(queued) = m.body.get("n").and_then(|v| v.as_u64()) {
                assert!(
                    queued <= n,
                    "round {round}: message {queued} of {p} without its session (n {n})"
                );
            }
        }
    }
    for id in &acks.sent {
        let message = store.outbound(OutboxId(*id)).unwrap().unwrap();
        assert!(
            matches!(message.status, OutboundStatus::Sent { .. }),
            "round {round}: {message:?}"
        );
    }
    for batch in &acks.batches {
        let sent: Vec<bool> = batch
            .iter()
            .map(|id| {
                let message = store.outbound(OutboxId(*id)).unwrap().unwrap();
                matches!(message.status, OutboundStatus::Sent { .. })
            })
            .collect();
        assert!(
            sent.iter().all(|s| *s) || sent.iter().all(|s| !*s),
            "round {round}: batch {batch:?} partly recorded: {sent:?}"
        );
    }
    // Indexes agree with records: no token both usable and spent, one token per message,
    // queues match pending messages, unprocessed events have their dedup records.
    assert_consistent(store);
}

#[test]
fn store_survives_sigkill_at_random_moments() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed());
    let mut total_acks = 0;
    for round in 0..ROUNDS {
        let lines = run_child(dir.path(), round, &mut rng);
        let acks = parse_acks(&lines);
        total_acks += acks.lines;
        let store = open(dir.path());
        check_round(&store, &acks, round);
    }
    assert!(
        total_acks > ROUNDS as usize,
        "children acknowledged only {total_acks} writes"
    );
    let self_ended = SELF_ENDED.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        self_ended >= ROUNDS as usize / 4,
        "only {self_ended} children reached their kill point inside a checkpoint"
    );
    eprintln!(
        "crash test: {ROUNDS} rounds, {total_acks} acknowledged writes, {self_ended} ended inside a checkpoint, {:?}",
        started.elapsed()
    );
}
