//! Flows: drafts, publish with inline topics, versions, rollback, active flows.

use super::*;
use botflow_flow::{FlowId, TopicRef};
use botflow_storage::{DraftSource, DraftState, StoreError};

fn topic_of(doc: &FlowDocument) -> TopicRef {
    match &doc.blocks[0].kind {
        botflow_flow::BlockKind::SendMessage { messages } => match &messages[0] {
            botflow_flow::Message::OtnRequest(request) => request.topic.clone().unwrap(),
            other => panic!("unexpected message {other:?}"),
        },
        other => panic!("unexpected block {other:?}"),
    }
}

fn a_draft_is_saved_only_if_it_parses_and_keeps_its_diagnostics() {
    let (_dir, store) = temp_store();
    let err = store
        .save_draft(&page(), DraftSource::Text("{ not json".into()), 1)
        .unwrap_err();
    assert!(matches!(err, StoreError::FlowParse { ref diagnostics } if !diagnostics.is_empty()));
    assert!(store.list_flows(&page()).unwrap().is_empty());

    // Parses, but the start block does not exist: saved with its error, not publishable.
    let mut broken = plain_flow("broken", "hi");
    broken.start = "missing".into();
    let draft = store
        .save_draft(&page(), DraftSource::Document(broken), 2)
        .unwrap();
    assert!(
        draft.diagnostics.iter().any(|d| d.is_error()),
        "{:?}",
        draft.diagnostics
    );
    let listed = store.list_flows(&page()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].latest_version, None);
    assert!(matches!(listed[0].draft, DraftState::Unpublished { errors, .. } if errors > 0));
    match store.publish(&page(), &FlowId::from("broken"), 3) {
        Err(StoreError::FlowInvalid { flow, diagnostics }) => {
            assert_eq!(flow.as_str(), "broken");
            assert!(diagnostics.iter().any(|d| d.is_error()));
        }
        other => panic!("expected FlowInvalid, got {other:?}"),
    }
    assert!(matches!(
        store.publish(&page(), &FlowId::from("nothing"), 3),
        Err(StoreError::FlowNotFound { .. })
    ));
}

fn publishing_creates_named_topics_once_and_stores_ids() {
    let (_dir, store) = temp_store();
    let text = serde_json::to_string(&otn_flow("a", json!({"name": "Restock"}))).unwrap();
    store
        .save_draft(&page(), DraftSource::Text(text), 1)
        .unwrap();
    let published = store.publish(&page(), &FlowId::from("a"), 2).unwrap();
    assert_eq!(published.version, 1);
    assert_eq!(published.created_topics.len(), 1);
    let topic = published.created_topics[0].clone();
    assert_eq!(topic.name, "Restock");

    let stored = store
        .flow_version(&page(), &FlowId::from("a"), 1)
        .unwrap()
        .unwrap();
    assert_eq!(
        topic_of(&stored.document),
        TopicRef::by_id(topic.id.clone())
    );
    assert_eq!(topic_of(&stored.source), TopicRef::by_name("Restock"));

    // Another flow naming the same topic in another case reuses it.
    let second = store
        .publish_document(&page(), otn_flow("b", json!({"name": " restock "})), 3)
        .unwrap();
    assert!(second.created_topics.is_empty());
    let stored = store
        .flow_version(&page(), &FlowId::from("b"), 1)
        .unwrap()
        .unwrap();
    assert_eq!(topic_of(&stored.document), TopicRef::by_id(topic.id));
    assert_eq!(store.list_topics(&page(), 3).unwrap().len(), 1);
}

fn an_unknown_topic_id_fails_the_whole_publish() {
    let (_dir, store) = temp_store();
    // Two requests: one by a new name, one by an unknown id. Nothing may be created.
    let mut doc = otn_flow("a", json!({"name": "Fresh"}));
    let mut second = doc.blocks[0].clone();
    if let botflow_flow::BlockKind::SendMessage { messages } = &mut second.kind {
        if let botflow_flow::Message::OtnRequest(request) = &mut messages[0] {
            request.topic = Some(TopicRef::by_id("no-such-topic"));
        }
    }
    if let botflow_flow::BlockKind::SendMessage { messages } = &mut doc.blocks[0].kind {
        messages.push(match &second.kind {
            botflow_flow::BlockKind::SendMessage { messages } => messages[0].clone(),
            _ => unreachable!(),
        });
    }
    match store.publish_document(&page(), doc, 1) {
        Err(StoreError::FlowInvalid { diagnostics, .. }) => {
            let unknown: Vec<&str> = diagnostics
                .iter()
                .filter(|d| d.code == "unknown-topic")
                .map(|d| d.pointer.as_str())
                .collect();
            assert_eq!(unknown, vec!["/blocks/0/messages/1/topic/id"]);
        }
        other => panic!("expected FlowInvalid with unknown-topic, got {other:?}"),
    }
    // The saved draft carries the same diagnostic.
    let draft = store.draft(&page(), &FlowId::from("a")).unwrap().unwrap();
    assert!(draft.diagnostics.iter().any(|d| d.code == "unknown-topic"));
    assert!(store.list_topics(&page(), 1).unwrap().is_empty());
    assert_eq!(
        store.active_version(&page(), &FlowId::from("a")).unwrap(),
        None
    );
}

fn versions_are_immutable_and_rollback_republishes() {
    let (_dir, store) = temp_store();
    let flow = FlowId::from("greet");
    let v1 = store
        .publish_document(&page(), plain_flow("greet", "one"), 1)
        .unwrap();
    assert_eq!((v1.version, v1.unchanged), (1, false));
    let same = store
        .publish_document(&page(), plain_flow("greet", "one"), 2)
        .unwrap();
    assert_eq!((same.version, same.unchanged), (1, true));
    let v2 = store
        .publish_document(&page(), plain_flow("greet", "two"), 3)
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(store.active_version(&page(), &flow).unwrap(), Some(2));

    let back = store.rollback(&page(), &flow, 1, 4).unwrap();
    assert_eq!(back.version, 3);
    let v3 = store.flow_version(&page(), &flow, 3).unwrap().unwrap();
    let v1_stored = store.flow_version(&page(), &flow, 1).unwrap().unwrap();
    assert_eq!(v3.document, v1_stored.document);
    assert_eq!(v3.republished_from, Some(1));
    assert_eq!(store.active_version(&page(), &flow).unwrap(), Some(3));
    // Version 2 is untouched.
    let v2_stored = store.flow_version(&page(), &flow, 2).unwrap().unwrap();
    assert_eq!(v2_stored.source, plain_flow("greet", "two"));
    assert_eq!(store.flow_versions(&page(), &flow).unwrap().len(), 3);
    assert!(matches!(
        store.rollback(&page(), &flow, 9, 5),
        Err(StoreError::VersionNotFound { version: 9, .. })
    ));

    let listed = store.list_flows(&page()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].latest_version, Some(3));
    assert_eq!(listed[0].active_version, Some(3));
    // The draft is still "two", which differs from the active content.
    assert!(matches!(
        listed[0].draft,
        DraftState::Unpublished { errors: 0, .. }
    ));
}

fn active_flows_are_listed_and_cached() {
    let (_dir, store) = temp_store();
    store
        .publish_document(&page(), plain_flow("a", "x"), 1)
        .unwrap();
    store
        .publish_document(&page(), plain_flow("b", "y"), 1)
        .unwrap();
    store
        .publish_document(&page(), plain_flow("b", "z"), 2)
        .unwrap();
    let active = store.active_flows(&page()).unwrap().flows;
    let versions: Vec<(String, u32)> = active
        .iter()
        .map(|a| (a.flow.to_string(), a.version))
        .collect();
    assert_eq!(versions, vec![("a".into(), 1), ("b".into(), 2)]);
    assert_eq!(active[1].valid.document(), &plain_flow("b", "z"));
    let again = store
        .valid_flow(&page(), &FlowId::from("b"), 2)
        .unwrap()
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&again, &active[1].valid));
    // Old versions stay runnable for subscribers who started on them.
    let old = store
        .valid_flow(&page(), &FlowId::from("b"), 1)
        .unwrap()
        .unwrap();
    assert_eq!(old.document(), &plain_flow("b", "y"));
}

fn republishing_after_a_forced_topic_delete_creates_the_topic_again() {
    let (_dir, store) = temp_store();
    let flow = FlowId::from("promo");
    let first = store
        .publish_document(
            &page(),
            otn_flow("promo", json!({"name": "Promo drops"})),
            1,
        )
        .unwrap();
    let old_topic = first.created_topics[0].id.clone();
    store.delete_topic(&page(), &old_topic, true, 2).unwrap();

    // Same source, but the name no longer resolves to a live topic: a new version with a new topic.
    let again = store.publish(&page(), &flow, 3).unwrap();
    assert_eq!((again.version, again.unchanged), (2, false));
    assert_eq!(again.created_topics.len(), 1);
    let new_topic = again.created_topics[0].id.clone();
    assert_ne!(new_topic, old_topic);
    let stored = store.flow_version(&page(), &flow, 2).unwrap().unwrap();
    assert_eq!(
        topic_of(&stored.document),
        TopicRef::by_id(new_topic.clone())
    );
    let listed = store.list_topics(&page(), 3).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].topic.id, new_topic);

    // Publishing the unchanged draft once more, or after a rollback to identical content, is a no-op.
    let same = store.publish(&page(), &flow, 4).unwrap();
    assert_eq!((same.version, same.unchanged), (2, true));
}

/// Rewrites the stored record of version `version` of `flow` (any Page) through `change`, as an
/// older release's store, or a damaged disk, may hold it.
fn rewrite_version(store: &SledStore, flow: &str, version: u32, change: impl Fn(&[u8]) -> Vec<u8>) {
    let versions = store.raw_db().open_tree("versions").unwrap();
    let mut rewritten = 0;
    for item in versions.iter() {
        let (key, value) = item.unwrap();
        let record: Value = serde_json::from_slice(&value[1..]).unwrap();
        if record["flow"] == flow && record["version"] == version {
            versions.insert(key, change(&value)).unwrap();
            rewritten += 1;
        }
    }
    assert_eq!(rewritten, 1, "version {version} of {flow} not found");
}

#[test]
fn a_live_version_that_todays_rules_reject_still_runs_and_a_fix_publishes() {
    let (_dir, store) = temp_sled();
    store
        .publish_document(&page(), plain_flow("old", "x"), 1)
        .unwrap();
    store
        .publish_document(&page(), plain_flow("other", "y"), 1)
        .unwrap();
    // A block id over 100 characters was allowed when this version was published.
    let long_id = "b".repeat(101);
    rewrite_version(&store, "old", 1, |bytes| {
        let mut record: Value = serde_json::from_slice(&bytes[1..]).unwrap();
        for doc in ["document", "source"] {
            record[doc]["blocks"][0]["next"] = json!(long_id);
            record[doc]["blocks"]
                .as_array_mut()
                .unwrap()
                .push(json!({"id": long_id, "type": "send_message", "messages": [{"type": "text", "text": "more"}]}));
        }
        let mut out = vec![bytes[0]];
        out.extend(serde_json::to_vec(&record).unwrap());
        out
    });
    let reopened_doc: FlowDocument = {
        let stored = store
            .flow_version(&page(), &FlowId::from("old"), 1)
            .unwrap()
            .unwrap();
        assert!(
            botflow_flow::validate(&stored.document)
                .iter()
                .any(|d| d.is_error()),
            "today's rules must reject the stored version for this test to mean anything"
        );
        stored.document
    };
    let active = store.active_flows(&page()).unwrap();
    assert!(active.broken.is_empty(), "{:?}", active.broken);
    let flows: Vec<&str> = active.flows.iter().map(|a| a.flow.as_str()).collect();
    assert_eq!(flows, ["old", "other"]);
    assert_eq!(active.flows[0].valid.document(), &reopened_doc);
    assert!(
        store
            .valid_flow(&page(), &FlowId::from("old"), 1)
            .unwrap()
            .is_some()
    );

    // Publishing a fix works (it replaced a 500 before).
    let fixed = store
        .publish_document(&page(), plain_flow("old", "fixed"), 2)
        .unwrap();
    assert_eq!((fixed.version, fixed.unchanged), (2, false));
}

#[test]
fn an_unreadable_live_version_breaks_only_its_flow() {
    let (_dir, store) = temp_sled();
    store
        .publish_document(&page(), plain_flow("bad", "x"), 1)
        .unwrap();
    store
        .publish_document(&page(), plain_flow("good", "y"), 1)
        .unwrap();
    rewrite_version(&store, "bad", 1, |bytes| {
        let mut out = vec![bytes[0]];
        out.extend_from_slice(b"{ not json");
        out
    });
    let active = store.active_flows(&page()).unwrap();
    let running: Vec<&str> = active.flows.iter().map(|a| a.flow.as_str()).collect();
    assert_eq!(running, ["good"]);
    assert_eq!(active.broken.len(), 1);
    assert_eq!(active.broken[0].flow.as_str(), "bad");
    assert!(
        active.broken[0].reason.contains("cannot be read"),
        "{}",
        active.broken[0].reason
    );

    let listed = store.list_flows(&page()).unwrap();
    let broken: Vec<(&str, bool)> = listed
        .iter()
        .map(|f| (f.id.as_str(), f.broken.is_some()))
        .collect();
    assert_eq!(broken, [("bad", true), ("good", false)]);
    // Another flow of the Page still publishes, and the broken one can be replaced.
    store
        .publish_document(&page(), plain_flow("good", "z"), 2)
        .unwrap();
    let replaced = store
        .publish_document(&page(), plain_flow("bad", "new"), 2)
        .unwrap();
    assert_eq!(replaced.version, 2);
    assert!(store.active_flows(&page()).unwrap().broken.is_empty());
}

fn publish_and_rollback_refuse_a_trigger_another_live_flow_claims() {
    let (_dir, store) = temp_store();
    store
        .publish_document(&page(), plain_flow("first", "x"), 1)
        .unwrap();
    // `second` claims the keyword "first" as well.
    let mut second = plain_flow("second", "y");
    second.triggers = plain_flow("first", "y").triggers;
    match store.publish_document(&page(), second, 2) {
        Err(StoreError::FlowInvalid { flow, diagnostics }) => {
            assert_eq!(flow.as_str(), "second");
            assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
            assert_eq!(diagnostics[0].code, "conflicting-trigger");
            assert_eq!(diagnostics[0].pointer, "/triggers/0/words/0");
        }
        other => panic!("expected a conflicting-trigger refusal, got {other:?}"),
    }
    assert_eq!(
        store
            .active_version(&page(), &FlowId::from("second"))
            .unwrap(),
        None
    );

    // A rollback to a version whose trigger another flow took since is refused too.
    store
        .publish_document(&page(), plain_flow("second", "y"), 3)
        .unwrap();
    let mut moved = plain_flow("second", "y");
    moved.triggers = plain_flow("elsewhere", "y").triggers;
    store.publish_document(&page(), moved, 4).unwrap();
    let mut taker = plain_flow("third", "t");
    taker.triggers = plain_flow("second", "t").triggers;
    store.publish_document(&page(), taker, 5).unwrap();
    let refused = store.rollback(&page(), &FlowId::from("second"), 1, 6);
    assert!(
        matches!(refused, Err(StoreError::FlowInvalid { ref diagnostics, .. }) if diagnostics[0].code == "conflicting-trigger"),
        "{refused:?}"
    );
}

fn concurrent_publishes_cannot_both_claim_a_trigger() {
    for round in 0..20 {
        let (_dir, store) = temp_store();
        let store = std::sync::Arc::new(store);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let handles: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|id| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut flow = plain_flow(id, "x");
                    flow.triggers = plain_flow("shared", "x").triggers;
                    barrier.wait();
                    store.publish_document(&page(), flow, 1).is_ok()
                })
            })
            .collect();
        let published: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            published.iter().filter(|ok| **ok).count(),
            1,
            "round {round}: exactly one of two concurrent publishes claims the keyword: {published:?}"
        );
        assert_eq!(store.active_flows(&page()).unwrap().flows.len(), 1);
    }
}

on_both_backends!(
    a_draft_is_saved_only_if_it_parses_and_keeps_its_diagnostics,
    publishing_creates_named_topics_once_and_stores_ids,
    an_unknown_topic_id_fails_the_whole_publish,
    versions_are_immutable_and_rollback_republishes,
    active_flows_are_listed_and_cached,
    republishing_after_a_forced_topic_delete_creates_the_topic_again,
    publish_and_rollback_refuse_a_trigger_another_live_flow_claims,
    concurrent_publishes_cannot_both_claim_a_trigger,
);
