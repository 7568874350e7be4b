//! Model-based property test on both backends: random token/outbox operations against an
//! in-memory model, with checkpoints and restarts at random points. On sled a restart is a close
//! without a last checkpoint, then a power loss of the log after its last `flush`: the reopened
//! store, rebuilt from sled's last checkpoint plus the log's redo records, must still agree with
//! the model. On PostgreSQL a restart is a new connection to the same schema (a checkpoint is a
//! no-op).

use super::*;
use botflow_storage::log::SimDir;
use botflow_storage::token_rules::{RuleState, TokenRules};
use botflow_storage::{OutboxId, RetentionPolicy, StoreError, TokenMark, TokenSendOutcome};
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};

const PSIDS: u8 = 3;
const TOPICS: u8 = 2;

#[derive(Debug, Clone)]
pub(crate) enum Op {
    AddToken { psid: u8, topic: u8, ttl: u64 },
    Send { psid: u8, topic: u8 },
    Invalidate { pick: usize },
    Advance { ms: u64 },
    Expire,
    Notify { topic: u8 },
    Finish { psid: u8, how: u8 },
    Sweep { limit: usize },
    Checkpoint,
    Restart,
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PSIDS, 0..TOPICS, 1..400u64).prop_map(|(psid, topic, ttl)| Op::AddToken { psid, topic, ttl }),
        3 => (0..PSIDS, 0..TOPICS).prop_map(|(psid, topic)| Op::Send { psid, topic }),
        1 => any::<usize>().prop_map(|pick| Op::Invalidate { pick }),
        2 => (1..150u64).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Expire),
        1 => (0..TOPICS).prop_map(|topic| Op::Notify { topic }),
        2 => (0..PSIDS, 0..3u8).prop_map(|(psid, how)| Op::Finish { psid, how }),
        1 => (1..8usize).prop_map(|limit| Op::Sweep { limit }),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Restart),
    ]
}

#[derive(Debug, Clone)]
struct MMessage {
    token: Option<String>,
    due: u64,
}

#[derive(Debug, Default, Clone)]
struct Model {
    now: u64,
    /// The token rules the store must follow, keyed by (subscriber, topic).
    tokens: TokenRules<(u8, u8)>,
    last_id: u64,
    messages: BTreeMap<u64, MMessage>,
    queues: BTreeMap<u8, VecDeque<u64>>,
}

impl Model {
    /// Takes the oldest usable token; returns (token, expired found).
    fn take(&mut self, psid: u8, topic: u8) -> (Option<String>, u64) {
        self.tokens.take_oldest(&(psid, topic), self.now)
    }

    /// Records a message the store queued (ids come from the store: increasing, with gaps).
    fn queued(&mut self, psid: u8, id: u64, token: Option<String>) {
        assert!(id > self.last_id, "outbox ids must increase");
        self.last_id = id;
        self.messages.insert(
            id,
            MMessage {
                token,
                due: self.now,
            },
        );
        self.queues.entry(psid).or_default().push_back(id);
    }

    fn usable(&self, psid: u8, topic: u8) -> Vec<String> {
        self.tokens.usable(&(psid, topic), self.now)
    }
}

/// The store in `path` with its log in `log`, checkpointing only when told.
fn open_model(path: &Path, log: &SimDir) -> SledStore {
    SledStore::open(
        path,
        StoreOptions {
            flush_every_ms: None,
            cache_capacity_bytes: 16 * 1024 * 1024,
            log_dir: Some(std::sync::Arc::new(log.clone())),
            checkpoint_every_ms: None,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

fn run(backend: Backend, ops: Vec<Op>) -> Result<(), TestCaseError> {
    BACKEND_FOR_TEST.set(backend);
    let location = temp_location();
    let mut log = SimDir::new();
    let open = |log: &SimDir| match &location {
        Guard::Dir(dir) => TestStore::Sled(open_model(dir.path(), log)),
        Guard::Schema(_) => reopen(&location),
    };
    let mut store = open(&log);
    let topics: Vec<TopicId> = (0..TOPICS)
        .map(|i| {
            store
                .create_topic(&page(), &format!("topic {i}"), 0)
                .unwrap()
                .id
        })
        .collect();
    let mut model = Model {
        now: 1_000,
        ..Model::default()
    };
    let body_for = |_: &Psid| json!({"message": {"text": "news"}});
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::AddToken {
                psid: p,
                topic,
                ttl,
            } => {
                let name = format!("tk{step:05}");
                store
                    .add_token(
                        &page(),
                        &psid(p.into()),
                        token(&topics[topic as usize], &name, model.now, model.now + ttl),
                        model.now,
                    )
                    .unwrap();
                model
                    .tokens
                    .add((p, topic), &name, model.now, model.now + ttl);
            }
            Op::Send { psid: p, topic } => {
                let result = store.commit_step(StepCommit {
                    outbound: vec![token_message(&topics[topic as usize])],
                    durable: false,
                    ..bare_commit(&psid(p.into()), Session::default(), model.now)
                });
                let before = model.clone();
                let (expected, _) = model.take(p, topic);
                let got = match result {
                    Ok(committed) => match &committed.token_sends[0] {
                        TokenSendOutcome::Queued { outbox, token } => {
                            model.queued(p, outbox.0, Some(token.clone()));
                            Some(token.clone())
                        }
                        TokenSendOutcome::NoToken { .. } => None,
                        other => panic!("an OTN send paid otherwise: {other:?}"),
                    },
                    // No usable token: the step is refused and nothing is written.
                    Err(StoreError::TokenGone { .. }) => {
                        model = before;
                        None
                    }
                    Err(other) => panic!("unexpected store error {other}"),
                };
                prop_assert_eq!(got, expected);
            }
            Op::Invalidate { pick } => {
                if model.tokens.tokens.is_empty() {
                    continue;
                }
                let i = pick % model.tokens.tokens.len();
                let name = model.tokens.tokens[i].name.clone();
                let marked = store.mark_token(
                    &page(),
                    &name,
                    TokenMark::Invalid {
                        reason: "code 100".into(),
                    },
                    model.now,
                );
                let changed = match marked {
                    // Removed by a retention sweep: only ever a used-up token.
                    Err(StoreError::TokenNotFound { .. }) => {
                        prop_assert!(model.tokens.tokens[i].state != RuleState::Usable);
                        false
                    }
                    other => other.unwrap(),
                };
                let expected = model.tokens.invalidate(&name);
                prop_assert_eq!(changed, expected);
            }
            Op::Advance { ms } => model.now += ms,
            Op::Expire => {
                let n = store.expire_tokens(model.now).unwrap();
                let expected = model.tokens.expire(model.now);
                prop_assert_eq!(n, expected);
            }
            Op::Notify { topic } => {
                let outcome =
                    notify_text(&*store, &topics[topic as usize], &body_for, model.now).unwrap();
                let (mut queued, mut no_token, mut expired) = (0, 0, 0);
                for p in 0..PSIDS {
                    let holder = model.tokens.holds(&(p, topic));
                    if holder {
                        let (taken, e) = model.take(p, topic);
                        expired += e;
                        if taken.is_some() {
                            queued += 1;
                            let last = store
                                .messages_for(&page(), &psid(p.into()))
                                .unwrap()
                                .pop()
                                .unwrap();
                            prop_assert_eq!(&last.token, &taken);
                            model.queued(p, last.id.0, taken);
                        } else {
                            no_token += 1;
                        }
                    }
                }
                prop_assert_eq!(
                    (outcome.queued, outcome.no_token, outcome.expired),
                    (queued, no_token, expired)
                );
            }
            Op::Finish { psid: p, how } => {
                let Some(&id) = model.queues.get(&p).and_then(|q| q.front()) else {
                    continue;
                };
                let now = model.now;
                match how {
                    0 => store.mark_sent(OutboxId(id), "m", now).unwrap(),
                    1 => store
                        .mark_failed(OutboxId(id), "(#100) invalid", now)
                        .unwrap(),
                    _ => {
                        store
                            .mark_retry(OutboxId(id), now + 50, "HTTP 503")
                            .unwrap();
                        if let Some(m) = model.messages.get_mut(&id) {
                            m.due = now + 50
                        }
                        continue;
                    }
                }
                model.queues.entry(p).or_default().pop_front();
                let message = model.messages.get(&id).cloned();
                if let (
                    1,
                    Some(MMessage {
                        token: Some(name), ..
                    }),
                ) = (how, message)
                {
                    model.tokens.invalidate(&name);
                }
            }
            Op::Checkpoint => {
                if let TestStore::Sled(sled) = &store {
                    sled.checkpoint().unwrap();
                }
            }
            Op::Restart => {
                store.flush().unwrap();
                match store {
                    TestStore::Sled(sled) => {
                        sled.close_without_checkpoint();
                        // Everything was synced: a power loss drops nothing the model holds.
                        log = log.crash(|| false);
                    }
                    TestStore::Pg(pg) => drop(pg),
                }
                store = open(&log);
            }
            Op::Sweep { limit } => {
                // A short window, so sweeps meet records of every kind and age.
                let policy = RetentionPolicy {
                    dedup_ms: 100,
                    history_ms: 100,
                };
                store.sweep_retention(model.now, &policy, limit).unwrap();
                for id in model.queues.values().flatten() {
                    let message = store.outbound(OutboxId(*id)).unwrap();
                    prop_assert!(message.is_some_and(|m| m.status.is_pending()));
                }
            }
        }
        // Observable state agrees with the model after every operation.
        for p in 0..PSIDS {
            for (ti, topic) in topics.iter().enumerate() {
                let got: Vec<String> = store
                    .usable_tokens(&page(), &psid(p.into()), topic, model.now)
                    .unwrap()
                    .into_iter()
                    .map(|t| t.token)
                    .collect();
                prop_assert_eq!(got, model.usable(p, ti as u8));
            }
        }
        for summary in store.list_topics(&page(), model.now).unwrap() {
            let ti = topics.iter().position(|t| *t == summary.topic.id).unwrap() as u8;
            let expected: usize = (0..PSIDS).map(|p| model.usable(p, ti).len()).sum();
            prop_assert_eq!(summary.usable_tokens, expected as u64);
        }
        let mut due: Vec<u64> = store
            .due_outbound(model.now, 100)
            .unwrap()
            .iter()
            .map(|m| m.id.0)
            .collect();
        due.sort_unstable();
        let mut expected_due: Vec<u64> = model
            .queues
            .values()
            .filter_map(|q| q.front())
            .filter(|id| model.messages[*id].due <= model.now)
            .copied()
            .collect();
        expected_due.sort_unstable();
        prop_assert_eq!(due, expected_due);
        let problems = store.problems();
        prop_assert!(problems.is_empty(), "after {:?}: {:?}", step, problems);
    }
    Ok(())
}

mod sled_backend {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn tokens_and_outbox_agree_with_the_model(ops in proptest::collection::vec(op(), 1..60)) {
            run(Backend::Sled, ops)?;
        }
    }
}

/// Fewer cases on PostgreSQL: each case is a fresh schema and a few hundred round trips.
mod pg_backend {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn tokens_and_outbox_agree_with_the_model(ops in proptest::collection::vec(op(), 1..60)) {
            run(Backend::Pg, ops)?;
        }
    }
}
