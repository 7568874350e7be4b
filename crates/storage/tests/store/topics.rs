//! Topics: name rules, listing with usable token counts, rename, delete.

use super::*;
use botflow_storage::{StoreError, TokenAdded, TokenState};

fn names_are_unique_per_page_ignoring_case_and_spaces() {
    let (_dir, store) = temp_store();
    let first = store.create_topic(&page(), "  Red Sneakers ", 10).unwrap();
    assert_eq!(first.name, "Red Sneakers");
    assert_eq!(first.created_ms, 10);
    assert!(
        uuid::Uuid::parse_str(first.id.as_str()).is_ok(),
        "{}",
        first.id
    );

    match store.create_topic(&page(), "red sneakers", 11) {
        Err(StoreError::TopicNameTaken { existing_id, .. }) => assert_eq!(existing_id, first.id),
        other => panic!("expected TopicNameTaken, got {other:?}"),
    }
    // Another Page may use the name.
    store
        .create_topic(&PageId::from("page-2"), "Red Sneakers", 12)
        .unwrap();
    assert!(matches!(
        store.create_topic(&page(), "   ", 13),
        Err(StoreError::InvalidTopicName { .. })
    ));
    assert!(matches!(
        store.create_topic(&page(), &"x".repeat(66), 13),
        Err(StoreError::InvalidTopicName { .. })
    ));
    let found = store.find_topic_by_name(&page(), "RED SNEAKERS").unwrap();
    assert_eq!(found, Some(first.clone()));
    assert_eq!(store.get_topic(&page(), &first.id).unwrap(), Some(first));
}

fn rename_keeps_id_and_checks_the_name() {
    let (_dir, store) = temp_store();
    let a = store.create_topic(&page(), "Alpha", 1).unwrap();
    let b = store.create_topic(&page(), "Beta", 1).unwrap();
    let renamed = store.rename_topic(&page(), &a.id, "ALPHA ").unwrap();
    assert_eq!(
        (renamed.id.clone(), renamed.name.as_str()),
        (a.id.clone(), "ALPHA")
    );
    assert!(matches!(
        store.rename_topic(&page(), &a.id, "beta"),
        Err(StoreError::TopicNameTaken { existing_id, .. }) if existing_id == b.id
    ));
    store.rename_topic(&page(), &a.id, "Gamma").unwrap();
    // The old name is free again; the new one is taken.
    store.create_topic(&page(), "alpha", 2).unwrap();
    assert!(store.create_topic(&page(), "gamma", 2).is_err());
    assert!(matches!(
        store.rename_topic(&page(), &TopicId::from("nope"), "X"),
        Err(StoreError::TopicNotFound { .. })
    ));
}

fn list_counts_only_unused_unexpired_tokens() {
    let (_dir, store) = temp_store();
    let shoes = store.create_topic(&page(), "Shoes", 1).unwrap();
    let hats = store.create_topic(&page(), "hats", 1).unwrap();
    let add = |p: u32, t: &TopicId, v: &str, expires: u64| {
        store
            .add_token(&page(), &psid(p), token(t, v, 100, expires), 100)
            .unwrap()
    };
    assert_eq!(add(1, &shoes.id, "s1", 10_000), TokenAdded::New);
    assert_eq!(add(1, &shoes.id, "s1", 10_000), TokenAdded::Duplicate);
    add(2, &shoes.id, "s2", 500);
    add(3, &shoes.id, "s3", 10_000);
    add(1, &hats.id, "h1", 10_000);

    let counts = |now| {
        store
            .list_topics(&page(), now)
            .unwrap()
            .into_iter()
            .map(|s| (s.topic.name, s.usable_tokens))
            .collect::<Vec<_>>()
    };
    // Sorted by name ignoring case.
    assert_eq!(counts(200), vec![("hats".into(), 1), ("Shoes".into(), 3)]);
    // s2 expires at 500: not counted from then on, before any sweep.
    assert_eq!(counts(500), vec![("hats".into(), 1), ("Shoes".into(), 2)]);
    assert_eq!(store.expire_tokens(600).unwrap(), 1);
    assert_eq!(counts(600), vec![("hats".into(), 1), ("Shoes".into(), 2)]);
    // Spending one removes it from the count.
    let committed = store
        .commit_step(StepCommit {
            outbound: vec![token_message(&shoes.id)],
            ..bare_commit(&psid(3), Session::default(), 700)
        })
        .unwrap();
    assert_eq!(committed.outbox_ids.len(), 1);
    assert_eq!(counts(700), vec![("hats".into(), 1), ("Shoes".into(), 1)]);
    assert_consistent(&store);
}

fn delete_is_refused_while_an_active_flow_uses_the_topic_unless_forced() {
    let (_dir, store) = temp_store();
    let published = store
        .publish_document(&page(), otn_flow("restock", json!({"name": "Restock"})), 1)
        .unwrap();
    let topic = published.created_topics[0].clone();
    store
        .add_token(&page(), &psid(1), token(&topic.id, "t1", 1, 1_000), 1)
        .unwrap();
    store
        .add_token(&page(), &psid(2), token(&topic.id, "t2", 1, 1_000), 1)
        .unwrap();

    match store.delete_topic(&page(), &topic.id, false, 5) {
        Err(StoreError::TopicInUse { flows, .. }) => {
            assert_eq!(flows, vec![botflow_flow::FlowId::from("restock")]);
        }
        other => panic!("expected TopicInUse, got {other:?}"),
    }
    let deleted = store.delete_topic(&page(), &topic.id, true, 5).unwrap();
    assert_eq!(deleted.invalidated_tokens, 2);
    assert!(store.get_topic(&page(), &topic.id).unwrap().is_none());
    assert!(store.list_topics(&page(), 5).unwrap().is_empty());
    let t1 = store.get_token(&page(), "t1").unwrap().unwrap();
    assert!(
        matches!(t1.state, TokenState::Invalid { .. }),
        "{:?}",
        t1.state
    );
    assert!(
        store
            .usable_tokens(&page(), &psid(1), &topic.id, 5)
            .unwrap()
            .is_empty()
    );
    // New opt-ins for the deleted topic are stored as invalid; the name can be reused.
    assert_eq!(
        store
            .add_token(&page(), &psid(1), token(&topic.id, "t3", 6, 1_000), 6)
            .unwrap(),
        TokenAdded::TopicMissing
    );
    let again = store.create_topic(&page(), "restock", 7).unwrap();
    assert_ne!(again.id, topic.id);
    assert_consistent(&store);
}

fn delete_is_allowed_once_the_flow_no_longer_uses_the_topic() {
    let (_dir, store) = temp_store();
    let published = store
        .publish_document(&page(), otn_flow("restock", json!({"name": "Restock"})), 1)
        .unwrap();
    let topic = published.created_topics[0].id.clone();
    assert!(store.delete_topic(&page(), &topic, false, 2).is_err());
    store
        .publish_document(&page(), plain_flow("restock", "no more OTN"), 3)
        .unwrap();
    let deleted = store.delete_topic(&page(), &topic, false, 4).unwrap();
    assert_eq!(deleted.topic.name, "Restock");
    assert!(matches!(
        store.delete_topic(&page(), &topic, false, 4),
        Err(StoreError::TopicNotFound { .. })
    ));
}

fn topics_survive_a_reopen() {
    let dir = temp_location();
    let created = {
        let store = reopen(&dir);
        store.create_topic(&page(), "Durable", 1).unwrap()
    };
    let store = reopen(&dir);
    assert_eq!(
        store.get_topic(&page(), &created.id).unwrap(),
        Some(created)
    );
}

on_both_backends!(
    topics_survive_a_reopen,
    names_are_unique_per_page_ignoring_case_and_spaces,
    rename_keeps_id_and_checks_the_name,
    list_counts_only_unused_unexpired_tokens,
    delete_is_refused_while_an_active_flow_uses_the_topic_unless_forced,
    delete_is_allowed_once_the_flow_no_longer_uses_the_topic,
);
