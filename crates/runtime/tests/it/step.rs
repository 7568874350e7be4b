//! Step-function behaviour the conversation scripts cannot express: republished and retired
//! versions, payload routing, the wire shape of queued messages, determinism.

use crate::support::wire;
use botflow_flow::{FlowDocument, ValidFlow};
use botflow_runtime::payload::{OptinPayload, Payload};
use botflow_runtime::{
    Effect, InboundEvent, PublishedFlows, StepContext, StepError, StepOutcome, step,
};
use botflow_storage::{
    OutboundKind, PageId, Psid, RecurringChange, RecurringOptin, Session, WaitKind,
};
use serde_json::{Value, json};
use std::sync::Arc;

fn flow(text: &str, tapped: &str) -> Arc<ValidFlow> {
    let doc: FlowDocument = serde_json::from_value(json!({
        "format": 1, "id": "menu", "name": "Menu",
        "triggers": [{"type": "keyword", "words": ["menu"]}],
        "start": "ask",
        "blocks": [
            {"id": "ask", "type": "send_message", "messages": [
                {"type": "text", "text": text, "buttons": [{"title": "Go", "next": "done"}]}]},
            {"id": "done", "type": "send_message", "messages": [{"type": "text", "text": tapped}]}
        ]
    }))
    .unwrap();
    Arc::new(ValidFlow::new(doc).unwrap())
}

fn ctx(flows: PublishedFlows) -> StepContext {
    StepContext::new(
        PageId::from("page-1"),
        Psid::from("user-1"),
        Arc::new(flows),
    )
}

fn texts(outcome: &StepOutcome) -> Vec<String> {
    outcome
        .outbound
        .iter()
        .map(|m| {
            let body = wire(m);
            let message = &body["message"];
            message["text"]
                .as_str()
                .or(message["attachment"]["payload"]["text"].as_str())
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

fn button_payload(outcome: &StepOutcome) -> String {
    wire(&outcome.outbound[0])["message"]["attachment"]["payload"]["buttons"][0]["payload"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_tap_on_an_old_message_continues_in_the_version_that_sent_it() {
    let mut flows = PublishedFlows::new();
    flows.insert_active(1, flow("v1 question", "v1 answer"));
    let started = step(
        &ctx(flows.clone()),
        &Session::default(),
        &InboundEvent::Text {
            text: "menu".into(),
        },
        1_000,
    );
    let payload = button_payload(&started);
    assert_eq!(payload, "bf1:t:menu:1:ask:b0.0");

    // The flow is republished as version 2; the subscriber taps the button of version 1.
    flows.insert_active(2, flow("v2 question", "v2 answer"));
    let tap = InboundEvent::Postback {
        payload: payload.clone(),
        title: "Go".into(),
    };
    let tapped = step(&ctx(flows.clone()), &started.session, &tap, 2_000);
    assert_eq!(texts(&tapped), ["v1 answer"]);

    // A new start uses the active version 2.
    let fresh = step(
        &ctx(flows),
        &Session::default(),
        &InboundEvent::Text {
            text: "menu".into(),
        },
        3_000,
    );
    assert_eq!(texts(&fresh), ["v2 question"]);
    assert_eq!(button_payload(&fresh), "bf1:t:menu:2:ask:b0.0");
}

#[test]
fn a_retired_version_drops_the_wait_and_routes_the_event_afresh() {
    let mut flows = PublishedFlows::new();
    flows.insert_active(1, flow("v1 question", "v1 answer"));
    let started = step(
        &ctx(flows),
        &Session::default(),
        &InboundEvent::Text {
            text: "menu".into(),
        },
        1_000,
    );
    assert_eq!(
        started.session.waiting.as_ref().unwrap().kind,
        WaitKind::Tap
    );

    let mut only_v2 = PublishedFlows::new();
    only_v2.insert_active(2, flow("v2 question", "v2 answer"));
    let outcome = step(
        &ctx(only_v2),
        &started.session,
        &InboundEvent::Text {
            text: "menu".into(),
        },
        2_000,
    );
    assert!(
        outcome
            .effects
            .contains(&Effect::Error(StepError::VersionRetired {
                flow: "menu".into(),
                version: 1
            }))
    );
    assert_eq!(
        texts(&outcome),
        ["v2 question"],
        "the keyword starts the active version"
    );
    assert_eq!(outcome.session.waiting.unwrap().version, 2);
    assert!(
        outcome
            .session
            .last_error
            .unwrap()
            .contains("version 1 is retired")
    );
}

#[test]
fn queued_messages_have_the_send_api_shape() {
    let mut flows = PublishedFlows::new();
    flows.insert_active(1, flow("Hello", "Bye"));
    let outcome = step(
        &ctx(flows),
        &Session::default(),
        &InboundEvent::Text {
            text: " MENU ".into(),
        },
        5,
    );
    assert_eq!(outcome.outbound.len(), 1);
    assert_eq!(outcome.outbound[0].kind, OutboundKind::Normal);
    let expected = json!({
        "recipient": {"id": "user-1"},
        "messaging_type": "RESPONSE",
        "message": {"attachment": {"type": "template", "payload": {
            "template_type": "button", "text": "Hello",
            "buttons": [{"type": "postback", "title": "Go", "payload": "bf1:t:menu:1:ask:b0.0"}]}}}
    });
    assert_eq!(wire(&outcome.outbound[0]), expected);
    assert_eq!(outcome.session.last_interaction_ms, Some(5));
}

fn otn_flow() -> Arc<ValidFlow> {
    let doc: FlowDocument = serde_json::from_value(json!({
        "format": 1, "id": "ask", "name": "Ask",
        "triggers": [{"type": "keyword", "words": ["ask"]}],
        "start": "req",
        "blocks": [
            {"id": "req", "type": "send_message", "messages": [
                {"type": "otn_request", "topic": {"id": "t-1"}, "title": "Notify me?", "on_optin": "ok"}]},
            {"id": "ok", "type": "otn_send", "topic": {"id": "t-1"},
             "message": {"type": "text", "text": "Paid by the token"}}
        ]
    }))
    .unwrap();
    Arc::new(ValidFlow::new(doc).unwrap())
}

#[test]
fn an_optin_stores_the_token_and_its_branch_can_spend_it() {
    let mut flows = PublishedFlows::new();
    flows.insert_active(4, otn_flow());
    let context = ctx(flows);
    let asked = step(
        &context,
        &Session::default(),
        &InboundEvent::Text { text: "ask".into() },
        1_000,
    );
    let body = &wire(&asked.outbound[0]);
    assert_eq!(
        body["message"]["attachment"]["payload"]["template_type"],
        "one_time_notif_req"
    );
    let payload = body["message"]["attachment"]["payload"]["payload"]
        .as_str()
        .unwrap();
    assert_eq!(
        Payload::decode(payload),
        Some(Payload::Optin(OptinPayload {
            page: "page-1".into(),
            flow: "ask".into(),
            version: 4,
            block: "req".into(),
            message: 0,
            topic: "t-1".into(),
        }))
    );
    let optin = InboundEvent::Optin {
        payload: payload.to_owned(),
        token: "tok-9".into(),
    };
    let opted = step(&context, &asked.session, &optin, 2_000);
    assert!(
        matches!(&opted.effects[0], Effect::TokenStored { topic, token, expires_ms }
        if topic.as_str() == "t-1" && token == "tok-9" && *expires_ms == 2_000 + botflow_runtime::TOKEN_LIFETIME_MS)
    );
    assert_eq!(opted.outbound.len(), 1);
    assert_eq!(
        opted.outbound[0].kind,
        OutboundKind::OtnToken {
            topic: "t-1".into()
        }
    );
    assert!(wire(&opted.outbound[0]).get("messaging_type").is_none());

    // The same payload from another Page's subscriber is refused.
    let mut other = context.clone();
    other.page = PageId::from("page-2");
    let refused = step(&other, &asked.session, &optin, 2_000);
    assert!(refused.outbound.is_empty());
    assert!(matches!(
        refused.effects[..],
        [Effect::Error(StepError::WrongPage { .. })]
    ));
}

#[test]
fn a_recurring_request_asks_and_its_optin_stores_the_token_then_continues() {
    let doc: FlowDocument = serde_json::from_value(json!({
        "format": 1, "id": "deals", "name": "Deals",
        "triggers": [{"type": "keyword", "words": ["deals"]}],
        "start": "req",
        "blocks": [
            {"id": "req", "type": "send_message", "messages": [
                {"type": "recurring_request", "topic": {"id": "t-2"}, "title": "Deals",
                 "frequency": "daily", "image_url": "https://x.test/d.png", "on_optin": "ok"}]},
            {"id": "ok", "type": "send_message", "messages": [{"type": "text", "text": "Subscribed"}]}
        ]
    }))
    .unwrap();
    let mut flows = PublishedFlows::new();
    flows.insert_active(2, Arc::new(ValidFlow::new(doc).unwrap()));
    let context = ctx(flows);
    let asked = step(
        &context,
        &Session::default(),
        &InboundEvent::Text {
            text: "deals".into(),
        },
        1_000,
    );
    let template = &wire(&asked.outbound[0])["message"]["attachment"]["payload"];
    assert_eq!(template["template_type"], "notification_messages");
    assert_eq!(template["notification_messages_frequency"], "DAILY");
    assert_eq!(template["image_url"], "https://x.test/d.png");
    assert_eq!(template["title"], "Deals");
    let payload = template["payload"].as_str().unwrap().to_owned();
    assert!(
        matches!(Payload::decode(&payload), Some(Payload::Optin(o)) if o.topic.as_str() == "t-2")
    );

    // Messenger's frequency is absent: the request's own (daily) is stored.
    let optin = InboundEvent::RecurringOptin {
        payload,
        token: "rt-1".into(),
        frequency: None,
        timezone: Some("Europe/Paris".into()),
        expires_ms: None,
    };
    let opted = step(&context, &asked.session, &optin, 2_000);
    assert_eq!(
        opted.effects.first(),
        Some(&Effect::Recurring(RecurringChange::Optin(RecurringOptin {
            topic: "t-2".into(),
            token: "rt-1".into(),
            frequency: botflow_flow::Frequency::Daily,
            timezone: Some("Europe/Paris".into()),
            expires_ms: None,
            created_ms: 2_000,
        })))
    );
    assert_eq!(texts(&opted), vec!["Subscribed"]);

    // Stop and resume touch no flow: only the change for the store.
    let stop = InboundEvent::RecurringStatus {
        token: "rt-1".into(),
        stopped: true,
    };
    let stopped = step(&context, &opted.session, &stop, 3_000);
    assert!(stopped.outbound.is_empty());
    assert_eq!(
        stopped.effects,
        vec![Effect::Recurring(RecurringChange::Stop {
            token: "rt-1".into()
        })]
    );
}

#[test]
fn steps_are_deterministic_and_timers_fire_by_id() {
    let doc: FlowDocument = serde_json::from_value(json!({
        "format": 1, "id": "d", "name": "D", "triggers": [{"type": "keyword", "words": ["go"]}],
        "start": "wait",
        "blocks": [
            {"id": "wait", "type": "delay", "duration": "90s", "next": "say"},
            {"id": "say", "type": "send_message", "messages": [{"type": "text", "text": "later"}]}
        ]
    }))
    .unwrap();
    let mut flows = PublishedFlows::new();
    flows.insert_active(1, Arc::new(ValidFlow::new(doc).unwrap()));
    let context = ctx(flows);
    let go = InboundEvent::Text { text: "go".into() };
    let a = step(&context, &Session::default(), &go, 10_000);
    let b = step(&context, &Session::default(), &go, 10_000);
    assert_eq!(a, b);
    let timer = a.session.timers[0].clone();
    assert_eq!(timer.due_ms, 100_000);

    let stale = step(
        &context,
        &a.session,
        &InboundEvent::TimerFired {
            timer_id: timer.id + 1,
        },
        100_000,
    );
    assert!(stale.outbound.is_empty());
    assert_eq!(stale.session.timers, a.session.timers);

    let fired = step(
        &context,
        &a.session,
        &InboundEvent::TimerFired { timer_id: timer.id },
        100_000,
    );
    assert_eq!(texts(&fired), ["later"]);
    assert_eq!(
        wire(&fired.outbound[0])["messaging_type"],
        Value::from("UPDATE")
    );
    assert!(fired.session.timers.is_empty());
    assert_eq!(fired.session.flow, None);
    assert_eq!(
        fired.session.last_interaction_ms,
        Some(10_000),
        "a timer is not an interaction"
    );
}

mod properties {
    use super::*;
    use botflow_runtime::NotifyContent;
    use proptest::prelude::*;

    fn example_flows() -> Arc<PublishedFlows> {
        let mut flows = PublishedFlows::new();
        for file in ["restock", "lead-capture", "restock-notify"] {
            let text = crate::support::workspace_file(&format!("flows/{file}.json"));
            let report = botflow_flow::check_text(&text);
            let flow = ValidFlow::new(report.document.unwrap()).unwrap();
            flows.insert_active(1, Arc::new(flow));
        }
        Arc::new(flows)
    }

    fn event() -> impl Strategy<Value = InboundEvent> {
        prop_oneof![
            prop::sample::select(vec![
                "restock",
                "quote",
                "blue",
                "Other colours",
                "ada@example.com",
                "1500",
                "hello",
                ""
            ])
            .prop_map(|t| InboundEvent::Text { text: t.to_owned() }),
            Just(InboundEvent::GetStarted { ref_param: None }),
            Just(InboundEvent::Referral {
                ref_param: "spring-ad".into()
            }),
            Just(InboundEvent::Postback {
                payload: "bf1:t:restock:1:welcome:b0.0".into(),
                title: "Other colours".into()
            }),
            Just(InboundEvent::QuickReply {
                payload: "bf1:t:restock:1:colours:q0.0".into(),
                text: "Blue".into()
            }),
            Just(InboundEvent::Postback {
                payload: "bf1:t:restock:9:welcome:b0.0".into(),
                title: "Old".into()
            }),
            Just(InboundEvent::Optin {
                payload: "bf1:o:page-1:restock:1:welcome:1:name%3Ared sneakers restock".into(),
                token: "tok".into()
            }),
            Just(InboundEvent::Notify {
                topic: "name:red sneakers restock".into(),
                content: NotifyContent::Flow("restock-notify".into())
            }),
            (0u64..3).prop_map(|i| InboundEvent::TimerFired { timer_id: i }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Any sequence of events keeps the session consistent, and every step is deterministic.
        #[test]
        fn random_conversations_keep_sessions_consistent(events in prop::collection::vec((event(), 0u64..100_000_000), 1..25)) {
            let mut context = StepContext::new(PageId::from("page-1"), Psid::from("u"), example_flows());
            context.step_budget = 50;
            let mut session = Session::default();
            let mut now = 1_000_000u64;
            for (event, gap) in events {
                now += gap;
                // Fire a real timer now and then instead of the random id.
                let event = match (&event, session.timers.first()) {
                    (InboundEvent::TimerFired { timer_id: 0 }, Some(t)) => InboundEvent::TimerFired { timer_id: t.id },
                    _ => event,
                };
                let outcome = step(&context, &session, &event, now);
                prop_assert_eq!(&outcome, &step(&context, &session, &event, now));
                let s = &outcome.session;
                if let Some(w) = &s.waiting {
                    prop_assert!(s.flow.is_some(), "waiting without a running flow: {:?}", s);
                    prop_assert!(context.flows.contains(&w.flow, w.version));
                }
                for effect in &outcome.effects {
                    if let Effect::TimerSet { due_ms, .. } = effect {
                        prop_assert!(*due_ms >= now, "timer set in the past: {:?}", effect);
                    }
                }
                let ids: std::collections::BTreeSet<_> = s.timers.iter().map(|t| t.id).collect();
                prop_assert_eq!(ids.len(), s.timers.len(), "timer ids unique");
                prop_assert!(outcome.outbound.len() <= 50 * 3, "bounded by the step budget");
                if event.is_user_interaction() {
                    prop_assert_eq!(s.last_interaction_ms, Some(now));
                }
                for m in &outcome.outbound {
                    prop_assert!(wire(m).pointer("/recipient/id").is_some());
                }
                session = outcome.session;
            }
        }
    }
}

#[test]
fn messages_messenger_would_refuse_once_rendered_are_not_queued_and_the_run_goes_on() {
    let doc: FlowDocument = serde_json::from_value(json!({
        "format": 1, "id": "render", "name": "Render",
        "triggers": [{"type": "keyword", "words": ["go"]}],
        "start": "empty",
        "blocks": [
            {"id": "empty", "type": "send_message",
             "messages": [{"type": "text", "text": "{{missing}}"}], "next": "long"},
            {"id": "long", "type": "send_message",
             "messages": [{"type": "text", "text": "{{long}}",
                           "buttons": [{"title": "Site", "url": "https://x.test"}]}],
             "next": "paid"},
            {"id": "paid", "type": "otn_send", "topic": {"id": "t-1"},
             "message": {"type": "text", "text": "{{missing}}"}, "next": "after"},
            {"id": "after", "type": "send_message", "messages": [{"type": "text", "text": "after"}]}
        ]
    }))
    .unwrap();
    let mut flows = PublishedFlows::new();
    flows.insert_active(1, Arc::new(ValidFlow::new(doc).unwrap()));
    let mut context = ctx(flows);
    context.usable_tokens.insert("t-1".into(), 1);
    let mut session = Session::default();
    session.fields.insert("long".into(), "é".repeat(641));
    let outcome = step(
        &context,
        &session,
        &InboundEvent::Text { text: "go".into() },
        1,
    );
    assert_eq!(texts(&outcome), ["after"]);
    let refused: Vec<String> = outcome
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Error(error @ StepError::MessageRefused { .. }) => Some(error.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused,
        [
            "message of block `empty` not sent, Messenger would refuse it: message.text is empty",
            "message of block `long` not sent, Messenger would refuse it: \
             message.attachment.payload.text has 641 characters, at most 640 allowed",
            "message of block `paid` not sent, Messenger would refuse it: message.text is empty",
        ]
    );
    assert!(
        !outcome
            .effects
            .iter()
            .any(|e| matches!(e, Effect::TokenSpent { .. })),
        "a refused token send spends no token"
    );
    assert_eq!(
        outcome.session.last_error.as_deref(),
        Some(refused[2].as_str())
    );
}

/// A flow whose `otn_send` of topic `t-1` runs twice (`first`, then `second`), each falling
/// back to `none` without a token.
fn two_paid_sends() -> PublishedFlows {
    let doc: FlowDocument = serde_json::from_value(json!({
        "format": 1, "id": "deals", "name": "Deals",
        "triggers": [{"type": "keyword", "words": ["deals"]}],
        "start": "first",
        "blocks": [
            {"id": "first", "type": "otn_send", "topic": {"id": "t-1"},
             "message": {"type": "text", "text": "first"}, "next": "second", "on_no_token": "none"},
            {"id": "second", "type": "otn_send", "topic": {"id": "t-1"},
             "message": {"type": "text", "text": "second"}, "on_no_token": "none"},
            {"id": "none", "type": "send_message", "messages": [{"type": "text", "text": "none"}]}
        ]
    }))
    .unwrap();
    let mut flows = PublishedFlows::new();
    flows.insert_active(1, Arc::new(ValidFlow::new(doc).unwrap()));
    flows
}

#[test]
fn otn_send_pays_with_an_otn_token_first_then_once_with_a_recurring_token_that_may_pay() {
    let kinds = |outcome: &StepOutcome| -> Vec<OutboundKind> {
        outcome.outbound.iter().map(|m| m.kind.clone()).collect()
    };
    let otn = OutboundKind::OtnToken {
        topic: "t-1".into(),
    };
    let recurring = OutboundKind::RecurringToken {
        topic: "t-1".into(),
    };
    let event = InboundEvent::Text {
        text: "deals".into(),
    };

    // One OTN token and a recurring token that may pay: the OTN token pays first, the
    // recurring token the second send.
    let mut context = ctx(two_paid_sends());
    context.usable_tokens.insert("t-1".into(), 1);
    context.recurring_ready.insert("t-1".into());
    let outcome = step(&context, &Session::default(), &event, 1);
    assert_eq!(texts(&outcome), ["first", "second"]);
    assert_eq!(kinds(&outcome), [otn.clone(), recurring.clone()]);
    assert!(outcome.effects.contains(&Effect::RecurringPaid {
        topic: "t-1".into()
    }));
    let body = wire(&outcome.outbound[1]);
    assert!(body.get("messaging_type").is_none(), "{body}");

    // Recurring only: it pays once per step; the second send takes `on_no_token`.
    context.usable_tokens.clear();
    let outcome = step(&context, &Session::default(), &event, 1);
    assert_eq!(texts(&outcome), ["first", "none"]);
    assert_eq!(kinds(&outcome)[0], recurring);
    assert!(outcome.effects.contains(&Effect::NoToken {
        topic: "t-1".into()
    }));

    // Neither kind may pay (the recurring token is not due, stopped or expired: not ready).
    context.recurring_ready.clear();
    let outcome = step(&context, &Session::default(), &event, 1);
    assert_eq!(texts(&outcome), ["none"]);
    assert_eq!(kinds(&outcome), [OutboundKind::Normal]);
}
