//! Differential test of the two read paths: the same random operations run against a store that
//! checkpoints after every operation (every read served by sled, as before the overlay existed)
//! and one that never checkpoints (every write still in the overlay, every read merged). Each
//! answer and the observable state after each operation must be equal.

use super::*;
use crate::model::{Op, op};
use botflow_storage::{OutboxId, RetentionPolicy, TokenMark};
use proptest::prelude::*;

/// A store in `path` that checkpoints only when told.
fn open_manual(path: &Path) -> SledStore {
    SledStore::open(
        path,
        StoreOptions {
            flush_every_ms: None,
            cache_capacity_bytes: 16 * 1024 * 1024,
            checkpoint_every_ms: None,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// Runs one operation; its answer as text (errors included).
fn apply(store: &SledStore, topics: &[TopicId], step: usize, now: &mut u64, op: &Op) -> String {
    let t = |i: u8| &topics[i as usize];
    match *op {
        Op::AddToken {
            psid: p,
            topic,
            ttl,
        } => format!(
            "{:?}",
            store.add_token(
                &page(),
                &psid(p.into()),
                token(t(topic), &format!("tk{step:05}"), *now, *now + ttl),
                *now,
            )
        ),
        Op::Send { psid: p, topic } => format!(
            "{:?}",
            store.commit_step(StepCommit {
                outbound: vec![token_message(t(topic)), text_message(step as u64)],
                durable: false,
                ..bare_commit(&psid(p.into()), Session::default(), *now)
            })
        ),
        Op::Invalidate { pick } => format!(
            "{:?}",
            store.mark_token(
                &page(),
                &format!("tk{:05}", pick % (step + 1)),
                TokenMark::Invalid {
                    reason: "code 100".into(),
                },
                *now,
            )
        ),
        Op::Advance { ms } => {
            *now += ms;
            String::new()
        }
        Op::Expire => format!("{:?}", store.expire_tokens(*now)),
        Op::Notify { topic } => {
            let body_for = |_: &Psid| json!({"message": {"text": "news"}});
            format!("{:?}", notify_text(store, t(topic), &body_for, *now))
        }
        Op::Finish { psid: p, how } => {
            let Some(head) = store
                .messages_for(&page(), &psid(p.into()))
                .unwrap()
                .into_iter()
                .find(|m| m.status.is_pending())
            else {
                return "none".into();
            };
            let id: OutboxId = head.id;
            format!(
                "{:?}",
                match how {
                    0 => store.mark_sent(id, "m", *now),
                    1 => store.mark_failed(id, "(#100) invalid", *now),
                    _ => store.mark_retry(id, *now + 50, "HTTP 503"),
                }
            )
        }
        Op::Sweep { limit } => format!(
            "{:?}",
            store.sweep_retention(
                *now,
                &RetentionPolicy {
                    dedup_ms: 100,
                    history_ms: 100,
                },
                limit,
            )
        ),
        Op::Checkpoint | Op::Restart => String::new(),
    }
}

/// Everything observable about the subscribers and topics the operations touch.
fn observe(store: &SledStore, topics: &[TopicId], now: u64) -> String {
    let mut out = String::new();
    for p in 0..3u32 {
        let p = psid(p);
        for topic in topics {
            out += &format!(
                "{:?}\n",
                store.usable_tokens(&page(), &p, topic, now).unwrap()
            );
        }
        out += &format!("{:?}\n", store.messages_for(&page(), &p).unwrap());
        out += &format!("{:?}\n", store.load_session(&page(), &p).unwrap());
    }
    out += &format!("{:?}\n", store.list_topics(&page(), now).unwrap());
    out += &format!("{:?}\n", store.due_outbound(now, 100).unwrap());
    for topic in topics {
        out += &format!("{:?}\n", store.topic_ledger(&page(), topic, now).unwrap());
    }
    out
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (in_sled, in_memory) = (open_manual(dir_a.path()), open_manual(dir_b.path()));
    let topics = |store: &SledStore| -> Vec<TopicId> {
        (0..2)
            .map(|i| {
                store
                    .create_topic(&page(), &format!("topic {i}"), 0)
                    .unwrap()
                    .id
            })
            .collect()
    };
    let (topics_a, topics_b) = (topics(&in_sled), topics(&in_memory));
    let (mut now_a, mut now_b) = (1_000, 1_000);
    for (step, op) in ops.iter().enumerate() {
        let a = apply(&in_sled, &topics_a, step, &mut now_a, op);
        in_sled.checkpoint().unwrap();
        let b = apply(&in_memory, &topics_b, step, &mut now_b, op);
        // Topic ids are random per store: compare with them named alike.
        let same = |text: String, ids: &[TopicId]| {
            ids.iter().enumerate().fold(text, |text, (i, id)| {
                text.replace(id.as_str(), &format!("topic#{i}"))
            })
        };
        prop_assert_eq!(same(a, &topics_a), same(b, &topics_b), "answer to {:?}", op);
        prop_assert_eq!(
            same(observe(&in_sled, &topics_a, now_a), &topics_a),
            same(observe(&in_memory, &topics_b, now_b), &topics_b),
            "state after {:?}",
            op
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_overlay_answers_like_sled(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
