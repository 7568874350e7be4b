//! OTN tokens: add, oldest-first take in the step commit, marks, expiry, notifications.

use super::*;
use botflow_storage::{
    OutboundStatus, StoreError, TokenAdded, TokenMark, TokenSendOutcome, TokenState,
};

fn topic(store: &dyn Store, name: &str) -> TopicId {
    store.create_topic(&page(), name, 1).unwrap().id
}

fn a_token_send_takes_the_oldest_usable_token_in_the_same_commit() {
    let (_dir, store) = temp_store();
    let t = topic(&*store, "Restock");
    let p = psid(1);
    // Created out of order; "young" expires last, "old" first but still usable at 1_000.
    store
        .add_token(&page(), &p, token(&t, "young", 300, 90_000), 300)
        .unwrap();
    store
        .add_token(&page(), &p, token(&t, "old", 100, 5_000), 300)
        .unwrap();
    store
        .add_token(&page(), &p, token(&t, "stale", 50, 900), 300)
        .unwrap();
    let usable: Vec<String> = store
        .usable_tokens(&page(), &p, &t, 1_000)
        .unwrap()
        .into_iter()
        .map(|t| t.token)
        .collect();
    assert_eq!(usable, vec!["old", "young"]);
    assert_eq!(
        store
            .usable_token_counts(&page(), &p, 1_000)
            .unwrap()
            .get(&t),
        Some(&2)
    );

    let committed = store
        .commit_step(StepCommit {
            outbound: vec![text_message(1), token_message(&t)],
            ..bare_commit(&p, Session::default(), 1_000)
        })
        .unwrap();
    assert_eq!(committed.outbox_ids.len(), 2);
    let paid = committed.outbox_ids[1];
    assert_eq!(
        committed.token_sends,
        vec![TokenSendOutcome::Queued {
            outbox: paid,
            token: "old".into()
        }]
    );
    let message = store.outbound(paid).unwrap().unwrap();
    assert_eq!(message.token.as_deref(), Some("old"));
    let old = store.get_token(&page(), "old").unwrap().unwrap();
    assert!(
        matches!(old.state, TokenState::Spent { outbox: Some(id), at_ms: 1_000 } if id == paid)
    );
    // "stale" was found expired on the way.
    let stale = store.get_token(&page(), "stale").unwrap().unwrap();
    assert!(
        matches!(stale.state, TokenState::Expired { .. }),
        "{:?}",
        stale.state
    );

    // A step with two token sends but one token left is refused whole: nothing is written.
    let refused = store.commit_step(StepCommit {
        outbound: vec![token_message(&t), token_message(&t)],
        ..bare_commit(&p, Session::default(), 2_000)
    });
    assert!(
        matches!(&refused, Err(StoreError::TokenGone { topic, .. }) if topic == &t),
        "{refused:?}"
    );
    assert_eq!(store.messages_for(&page(), &p).unwrap().len(), 2);
    assert_eq!(
        store.topic_holders(&page(), &t, 2_000).unwrap(),
        vec![p.clone()]
    );

    // The next send takes "young"; then there is none left.
    let committed = store
        .commit_step(StepCommit {
            outbound: vec![token_message(&t)],
            ..bare_commit(&p, Session::default(), 2_000)
        })
        .unwrap();
    assert_eq!(committed.outbox_ids.len(), 1);
    assert!(
        matches!(&committed.token_sends[0], TokenSendOutcome::Queued { token, .. } if token == "young")
    );
    assert!(store.topic_holders(&page(), &t, 2_000).unwrap().is_empty());
    assert_eq!(store.messages_for(&page(), &p).unwrap().len(), 3);
    assert_consistent(&store);
}

fn an_opt_in_and_a_send_in_one_step_use_the_new_token() {
    let (_dir, store) = temp_store();
    let t = topic(&*store, "Restock");
    let committed = store
        .commit_step(StepCommit {
            tokens_added: vec![token(&t, "fresh", 10, 10_000), token(&t, "gone", 10, 5)],
            outbound: vec![token_message(&t)],
            ..bare_commit(&psid(1), Session::default(), 10)
        })
        .unwrap();
    assert_eq!(
        committed.token_adds,
        vec![TokenAdded::New, TokenAdded::Expired]
    );
    assert!(
        matches!(&committed.token_sends[0], TokenSendOutcome::Queued { token, .. } if token == "fresh")
    );
    assert_consistent(&store);
}

fn marks_and_expiry_remove_tokens_from_use() {
    let (_dir, store) = temp_store();
    let t = topic(&*store, "T");
    for (i, value) in ["a", "b", "c"].iter().enumerate() {
        store
            .add_token(
                &page(),
                &psid(i as u32),
                token(&t, value, 1, 100 + i as u64 * 100),
                1,
            )
            .unwrap();
    }
    assert!(
        store
            .mark_token(
                &page(),
                "a",
                TokenMark::Invalid {
                    reason: "code 100".into()
                },
                5
            )
            .unwrap()
    );
    // Marking again changes nothing.
    assert!(!store.mark_token(&page(), "a", TokenMark::Spent, 6).unwrap());
    assert!(store.mark_token(&page(), "b", TokenMark::Spent, 6).unwrap());
    assert!(matches!(
        store.mark_token(&page(), "zzz", TokenMark::Spent, 6),
        Err(StoreError::TokenNotFound { .. })
    ));
    let holders = store.topic_holders(&page(), &t, 6).unwrap();
    assert_eq!(holders, vec![psid(2)]);
    assert_eq!(store.list_topics(&page(), 6).unwrap()[0].usable_tokens, 1);
    // "c" expires at 300.
    assert_eq!(store.expire_tokens(299).unwrap(), 0);
    assert_eq!(store.expire_tokens(300).unwrap(), 1);
    assert_eq!(store.expire_tokens(300).unwrap(), 0);
    let c = store.get_token(&page(), "c").unwrap().unwrap();
    assert_eq!(c.state, TokenState::Expired { at_ms: 300 });
    assert_eq!(store.list_topics(&page(), 300).unwrap()[0].usable_tokens, 0);
    assert_consistent(&store);
}

fn a_notification_queues_one_message_per_holder_and_spends_one_token_each() {
    let (_dir, store) = temp_store();
    let t = topic(&*store, "Restock");
    let other = topic(&*store, "Other");
    store
        .add_token(&page(), &psid(1), token(&t, "p1-a", 1, 10_000), 1)
        .unwrap();
    store
        .add_token(&page(), &psid(1), token(&t, "p1-b", 2, 10_000), 2)
        .unwrap();
    store
        .add_token(&page(), &psid(2), token(&t, "p2", 1, 10_000), 1)
        .unwrap();
    store
        .add_token(&page(), &psid(3), token(&t, "p3-expiring", 1, 50), 1)
        .unwrap();
    store
        .add_token(&page(), &psid(4), token(&other, "p4", 1, 10_000), 1)
        .unwrap();

    let body_for = |p: &Psid| json!({"message": {"text": format!("hi {p}")}});
    let outcome = notify_text(&*store, &t, &body_for, 100).unwrap();
    assert_eq!(
        (outcome.queued, outcome.no_token, outcome.expired),
        (2, 1, 1)
    );
    let first = store.messages_for(&page(), &psid(1)).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].token.as_deref(), Some("p1-a"));
    assert_eq!(first[0].body, json!({"message": {"text": "hi psid-1"}}));
    assert!(store.messages_for(&page(), &psid(4)).unwrap().is_empty());

    // A second notification reaches only the subscriber who had two tokens.
    let outcome = notify_text(&*store, &t, &body_for, 200).unwrap();
    assert_eq!(
        (outcome.queued, outcome.no_token, outcome.expired),
        (1, 0, 0)
    );
    let outcome = notify_text(&*store, &t, &body_for, 300).unwrap();
    assert_eq!(outcome.queued, 0);
    assert!(matches!(
        notify_text(&*store, &TopicId::from("nope"), &body_for, 300),
        Err(StoreError::TopicNotFound { .. })
    ));
    assert_eq!(store.outbox_stats().unwrap().pending, 3);
    assert_consistent(&store);
}

fn a_permanent_failure_of_a_token_send_invalidates_the_token() {
    let (_dir, store) = temp_store();
    let t = topic(&*store, "Restock");
    store
        .add_token(&page(), &psid(1), token(&t, "tok", 1, 10_000), 1)
        .unwrap();
    let id = store
        .commit_step(StepCommit {
            outbound: vec![token_message(&t)],
            ..bare_commit(&psid(1), Session::default(), 5)
        })
        .unwrap()
        .outbox_ids[0];
    store.mark_failed(id, "(#100) token is invalid", 9).unwrap();
    let tok = store.get_token(&page(), "tok").unwrap().unwrap();
    assert!(
        matches!(tok.state, TokenState::Invalid { ref reason, at_ms: 9 } if reason.contains("#100"))
    );
    let message = store.outbound(id).unwrap().unwrap();
    assert!(matches!(
        message.status,
        OutboundStatus::Failed { at_ms: 9, .. }
    ));
    assert_consistent(&store);
}

on_both_backends!(
    a_notification_queues_one_message_per_holder_and_spends_one_token_each,
    a_token_send_takes_the_oldest_usable_token_in_the_same_commit,
    an_opt_in_and_a_send_in_one_step_use_the_new_token,
    marks_and_expiry_remove_tokens_from_use,
    a_permanent_failure_of_a_token_send_invalidates_the_token,
);
