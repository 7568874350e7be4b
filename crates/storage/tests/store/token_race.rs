//! The branch a step takes and what its commit records agree, whatever changes tokens between
//! the step's read of the counts and its commit (text notifications, expiry, topic deletes,
//! other opt-ins): an interleaving proptest over those changes.

use super::*;
use botflow_storage::{Session, StoreError, TokenSendOutcome};
use proptest::prelude::*;

/// What may happen to the subscriber's tokens between a step's read and its commit.
#[derive(Debug, Clone)]
enum Interference {
    /// A text notification to the topic (spends one token per holder).
    NotifyText,
    /// Time passes (tokens with a short life expire).
    Advance(u64),
    /// The topic is deleted with `force` (its unused tokens stop counting).
    DeleteTopic,
    /// The subscriber opts in again (a new token).
    OptIn,
}

fn interference() -> impl Strategy<Value = Interference> {
    prop_oneof![
        3 => Just(Interference::NotifyText),
        2 => (1u64..2_000).prop_map(Interference::Advance),
        1 => Just(Interference::DeleteTopic),
        2 => Just(Interference::OptIn),
    ]
}

/// The subscriber's usable tokens of `topic`, as the runtime reads them before a step.
fn usable(store: &dyn Store, p: &Psid, topic: &TopicId, now: u64) -> u64 {
    store
        .usable_token_counts(&page(), p, now)
        .unwrap()
        .get(topic)
        .copied()
        .unwrap_or(0)
}

/// An `otn_send` step as the runtime makes it: `next` with a token message when the counts it
/// read show a token, `on_no_token` without one.
fn step_commit(p: &Psid, topic: &TopicId, has_token: bool, now: u64) -> StepCommit {
    let mut session = Session::default();
    let branch = if has_token { "next" } else { "on_no_token" };
    session.tags.insert(format!("took-{branch}-at-{now}"));
    StepCommit {
        outbound: if has_token {
            vec![token_message(topic)]
        } else {
            Vec::new()
        },
        ..bare_commit(p, session, now)
    }
}

/// One interleaving on `backend`.
fn race(
    backend: Backend,
    start_tokens: usize,
    rounds: Vec<Vec<Interference>>,
) -> Result<(), TestCaseError> {
    BACKEND_FOR_TEST.set(backend);
    let (_dir, store) = temp_store();
    let p = psid(1);
    let other = psid(2);
    let mut topic = store.create_topic(&page(), "Restock", 1).unwrap().id;
    let mut now = 10;
    let mut minted = 0;
    let mut mint = |store: &dyn Store, who: &Psid, topic: &TopicId, now: u64| {
        minted += 1;
        // Every other token is short-lived, so time passing expires some.
        let life = if minted % 2 == 0 { 1_500 } else { 1_000_000 };
        store
            .add_token(
                &page(),
                who,
                token(topic, &format!("t{minted}"), now, now + life),
                now,
            )
            .unwrap();
    };
    for _ in 0..start_tokens {
        mint(&*store, &p, &topic, now);
    }
    mint(&*store, &other, &topic, now);
    let mut paid_sends = 0;

    for interferences in rounds {
        let seen = usable(&*store, &p, &topic, now) > 0;
        for change in interferences {
            match change {
                Interference::NotifyText => {
                    let body = |_: &Psid| serde_json::json!({"message": {"text": "news"}});
                    // A topic deleted meanwhile is simply not notified.
                    let _ = notify_text(&*store, &topic, &body, now);
                }
                Interference::Advance(ms) => now += ms,
                Interference::DeleteTopic => {
                    let _ = store.delete_topic(&page(), &topic, true, now);
                    topic = store
                        .create_topic(&page(), &format!("Restock {now}"), now)
                        .unwrap()
                        .id;
                }
                Interference::OptIn => mint(&*store, &p, &topic, now),
            }
        }
        let before = store.messages_for(&page(), &p).unwrap().len();
        match store.commit_step(step_commit(&p, &topic, seen, now)) {
            Ok(committed) => {
                // The branch that assumed a token got one: never a queued-without-token send.
                let all_paid = committed
                    .token_sends
                    .iter()
                    .all(|s| matches!(s, TokenSendOutcome::Queued { .. }));
                prop_assert!(all_paid, "a send queued without a token");
                prop_assert_eq!(committed.token_sends.len(), usize::from(seen));
                paid_sends += committed.token_sends.len();
            }
            Err(StoreError::TokenGone { .. }) => {
                prop_assert!(seen, "only a step that assumed a token can lose it");
                // Nothing was written: no message, and the session kept its previous branch.
                prop_assert_eq!(store.messages_for(&page(), &p).unwrap().len(), before);
                let session = store.load_session(&page(), &p).unwrap().unwrap_or_default();
                let suffix = format!("-at-{now}");
                let written = session.tags.iter().any(|t| t.ends_with(&suffix));
                prop_assert!(!written, "the refused step wrote its session");
                // Stepping again on the counts as they are now commits the other branch.
                let again = usable(&*store, &p, &topic, now) > 0;
                prop_assert!(!again);
                let committed = store
                    .commit_step(step_commit(&p, &topic, again, now))
                    .unwrap();
                prop_assert!(committed.token_sends.is_empty());
            }
            Err(other) => return Err(TestCaseError::fail(format!("store error {other}"))),
        }
        now += 1;
    }
    // Every send the steps paid for holds its own token, spent by exactly that message.
    let sends: Vec<String> = store
        .messages_for(&page(), &p)
        .unwrap()
        .into_iter()
        .filter_map(|m| m.token)
        .collect();
    let mut distinct = sends.clone();
    distinct.sort();
    distinct.dedup();
    prop_assert_eq!(
        distinct.len(),
        sends.len(),
        "a token paid twice: {:?}",
        sends
    );
    prop_assert!(sends.len() >= paid_sends);
    assert_consistent(&store);
    Ok(())
}

mod sled_backend {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn a_step_commits_the_branch_it_took_or_nothing(
            start_tokens in 0usize..3,
            rounds in prop::collection::vec(prop::collection::vec(interference(), 0..3), 1..6),
        ) {
            race(Backend::Sled, start_tokens, rounds)?;
        }
    }
}

/// Fewer cases on PostgreSQL: each case is a fresh schema.
mod pg_backend {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn a_step_commits_the_branch_it_took_or_nothing(
            start_tokens in 0usize..3,
            rounds in prop::collection::vec(prop::collection::vec(interference(), 0..3), 1..6),
        ) {
            race(Backend::Pg, start_tokens, rounds)?;
        }
    }
}
