//! Builders of Messenger webhook deliveries as the platform sends them: used by the demo's
//! printed commands, the end-to-end tests and the load benchmark, so all send the same shapes.

use serde_json::{Value, json};

/// A delivery (`{"object": "page", "entry": [...]}`) of events for one Page in one entry.
pub fn envelope(page: &str, time_ms: u64, events: Vec<Value>) -> Value {
    json!({"object": "page", "entry": [{"id": page, "time": time_ms, "messaging": events}]})
}

/// A text message event from `psid` to `page`.
pub fn text_message(page: &str, psid: &str, mid: &str, text: &str, time_ms: u64) -> Value {
    json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": time_ms,
           "message": {"mid": mid, "text": text}})
}

/// A postback event (a tap on a button) from `psid` to `page`.
pub fn postback(
    page: &str,
    psid: &str,
    mid: &str,
    title: &str,
    payload: &str,
    time_ms: u64,
) -> Value {
    json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": time_ms,
           "postback": {"mid": mid, "title": title, "payload": payload}})
}

/// A quick-reply tap from `psid` to `page`.
pub fn quick_reply(
    page: &str,
    psid: &str,
    mid: &str,
    title: &str,
    payload: &str,
    time_ms: u64,
) -> Value {
    json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": time_ms,
           "message": {"mid": mid, "text": title, "quick_reply": {"payload": payload}}})
}

/// An OTN opt-in ("Notify me" tapped) carrying the request's payload and a one-time token.
pub fn otn_optin(page: &str, psid: &str, payload: &str, token: &str, time_ms: u64) -> Value {
    json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": time_ms,
           "optin": {"type": "one_time_notif_req", "payload": payload,
                     "one_time_notif_token": token}})
}

/// A recurring notification opt-in carrying the request's payload, a recurring token and its
/// frequency (`DAILY`, `WEEKLY`, `MONTHLY`), with no expiry.
pub fn recurring_optin(
    page: &str,
    psid: &str,
    payload: &str,
    token: &str,
    frequency: &str,
    time_ms: u64,
) -> Value {
    json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": time_ms,
           "optin": {"type": "notification_messages", "payload": payload,
                     "notification_messages_token": token,
                     "notification_messages_frequency": frequency,
                     "notification_messages_timezone": "UTC",
                     "user_token_status": "NOT_REFRESHED", "title": "Updates"}})
}

/// The subscriber stopping (`stop`) or resuming the recurring notifications of `token`.
pub fn recurring_status(page: &str, psid: &str, token: &str, stop: bool, time_ms: u64) -> Value {
    let status = if stop {
        "STOP_NOTIFICATIONS"
    } else {
        "RESUME_NOTIFICATIONS"
    };
    json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": time_ms,
           "optin": {"type": "notification_messages", "notification_messages_token": token,
                     "notification_messages_status": status}})
}

/// The `X-Hub-Signature-256` value of a body under the app secret.
pub fn signature(app_secret: &str, body: &str) -> String {
    botflow_messenger::sign_body(app_secret.as_bytes(), body.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use botflow_messenger::{EventKind, parse_webhook};

    #[test]
    fn built_deliveries_parse_as_the_kinds_they_claim() {
        let body = envelope(
            "p",
            1,
            vec![
                text_message("p", "u", "m1", "hi", 1),
                postback("p", "u", "m2", "Go", "bf1:t:x", 2),
                quick_reply("p", "u", "m3", "Blue", "bf1:t:y", 3),
                otn_optin("p", "u", "bf1:o:z", "tok", 4),
            ],
        )
        .to_string();
        let events = parse_webhook(body.as_bytes()).unwrap().into_events();
        assert!(matches!(&events[0].kind, EventKind::Message { text: Some(t), .. } if t == "hi"));
        assert!(matches!(&events[1].kind, EventKind::Postback { .. }));
        assert!(matches!(
            &events[2].kind,
            EventKind::Message { quick_reply_payload: Some(p), .. } if p == "bf1:t:y"
        ));
        assert!(matches!(&events[3].kind, EventKind::OtnOptin { token, .. } if token == "tok"));
        assert_eq!(events[3].dedup_key(), "otn:tok");
    }
}
