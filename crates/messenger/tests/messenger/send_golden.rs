//! Send API request JSON compared with golden files in `test_data/requests/` (rewrite with
//! `UPDATE_EXPECT=1`), serde round trips for the outbox, and the limits checked before sending.

use crate::support::test_data;
use botflow_messenger::send::{MAX_TEXT_CHARS, RETIRED_MESSAGE_TAGS};
use botflow_messenger::webhook::RecurringFrequency;
use botflow_messenger::{Button, LimitError, OutgoingMessage, QuickReply, SendRequest};
use expect_test::expect_file;

fn text(text: &str) -> OutgoingMessage {
    OutgoingMessage::Text { text: text.into() }
}

fn postback(title: &str, payload: &str) -> Button {
    Button::Postback {
        title: title.into(),
        payload: payload.into(),
    }
}

fn quick_reply(title: &str, payload: &str) -> QuickReply {
    QuickReply {
        title: title.into(),
        payload: payload.into(),
    }
}

/// One request of every kind the runtime sends, named after its golden file.
fn cases() -> Vec<(&'static str, SendRequest)> {
    vec![
        (
            "text_response",
            SendRequest::response(
                "7300000000000001",
                text("Hi Ada! The red sneakers are sold out."),
            ),
        ),
        (
            "text_update",
            SendRequest::update("7300000000000001", text("Your order shipped.")),
        ),
        (
            "text_tagged",
            SendRequest::tagged(
                "7300000000000001",
                "HUMAN_AGENT",
                text("An agent replies: yes."),
            ),
        ),
        (
            "button_template",
            SendRequest::response(
                "7300000000000001",
                OutgoingMessage::TextWithButtons {
                    text: "What next?".into(),
                    buttons: vec![
                        postback("Other colours", "bf1:restock:3:welcome:b0"),
                        Button::WebUrl {
                            title: "Shop".into(),
                            url: "https://shop.example.com/red".into(),
                        },
                    ],
                    quick_replies: vec![],
                },
            ),
        ),
        (
            "button_template_quick_replies",
            SendRequest::response(
                "7300000000000001",
                OutgoingMessage::TextWithButtons {
                    text: "Which size?".into(),
                    buttons: vec![postback("Size guide", "bf1:restock:3:size:b0")],
                    quick_replies: vec![quick_reply("42", "bf1:restock:3:size:q0")],
                },
            ),
        ),
        (
            "quick_replies",
            SendRequest::response(
                "7300000000000001",
                OutgoingMessage::TextWithQuickReplies {
                    text: "Blue and white are in stock.".into(),
                    quick_replies: vec![
                        quick_reply("Blue", "bf1:restock:3:colours:q0"),
                        quick_reply("White", "bf1:restock:3:colours:q1"),
                    ],
                },
            ),
        ),
        (
            "image",
            SendRequest::response(
                "7300000000000001",
                OutgoingMessage::Image {
                    url: "https://cdn.example.com/red.jpg".into(),
                },
            ),
        ),
        (
            "file",
            SendRequest::update(
                "7300000000000001",
                OutgoingMessage::File {
                    url: "https://cdn.example.com/catalogue.pdf".into(),
                },
            ),
        ),
        (
            "otn_request",
            SendRequest::response(
                "7300000000000001",
                OutgoingMessage::OtnRequest {
                    title: "Tell me when red sneakers are back".into(),
                    payload: "bf1:otn:topic-red-sneakers:restock:3:welcome".into(),
                },
            ),
        ),
        (
            "otn_token_send",
            SendRequest::to_otn_token("6714980495293374123", text("Red sneakers are back!")),
        ),
        (
            "recurring_request",
            SendRequest::response(
                "7300000000000001",
                OutgoingMessage::RecurringRequest {
                    title: "Weekly deals".into(),
                    payload: "bf1:rn:topic-deals".into(),
                    frequency: RecurringFrequency::Weekly,
                    image_url: Some("https://cdn.example.com/deals.png".into()),
                    timezone: Some("Europe/Paris".into()),
                },
            ),
        ),
        (
            "recurring_token_send",
            SendRequest::to_notification_token("AQKx6Uo0aG0wzYm1VbgQ", text("This week: 20% off.")),
        ),
    ]
}

#[test]
fn request_json_matches_golden_files() {
    for (name, request) in cases() {
        request
            .check_limits()
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let json = serde_json::to_string_pretty(&request.to_json()).unwrap() + "\n";
        expect_file![test_data("requests").join(format!("{name}.json"))].assert_eq(&json);
    }
}

#[test]
fn requests_round_trip_through_serde_for_the_outbox() {
    for (name, request) in cases() {
        let stored = serde_json::to_string(&request).unwrap();
        let restored: SendRequest = serde_json::from_str(&stored).unwrap();
        assert_eq!(restored, request, "{name}");
        assert_eq!(restored.to_json(), request.to_json(), "{name}");
    }
}

#[test]
fn wire_json_reads_back_into_the_same_request() {
    for (name, request) in cases() {
        let read = SendRequest::from_json(&request.to_json())
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(read, request, "{name}");
    }
    let error = SendRequest::from_json(&serde_json::json!({"recipient": {"id": "u"}})).unwrap_err();
    assert_eq!(error.field, "message");
}

fn limit_error(message: OutgoingMessage) -> LimitError {
    SendRequest::response("psid", message)
        .check_limits()
        .unwrap_err()
}

#[test]
fn text_length_limit_is_inclusive_and_counts_characters() {
    let at_limit = "é".repeat(MAX_TEXT_CHARS);
    assert_eq!(
        SendRequest::response("psid", text(&at_limit)).check_limits(),
        Ok(())
    );
    assert_eq!(
        limit_error(text(&"a".repeat(MAX_TEXT_CHARS + 1))),
        LimitError::TooLong {
            field: "message.text".into(),
            chars: 2001,
            max: 2000
        }
    );
    assert_eq!(
        limit_error(text("  ")),
        LimitError::Empty {
            field: "message.text".into()
        }
    );
}

#[test]
fn button_template_limits() {
    let buttons = |count: usize| {
        (0..count)
            .map(|i| postback("Go", &format!("p{i}")))
            .collect::<Vec<_>>()
    };
    let template = |text: &str, buttons: Vec<Button>| OutgoingMessage::TextWithButtons {
        text: text.into(),
        buttons,
        quick_replies: vec![],
    };
    assert!(matches!(
        limit_error(template("ok", buttons(0))),
        LimitError::Count {
            count: 0,
            min: 1,
            max: 3,
            ..
        }
    ));
    assert!(matches!(
        limit_error(template("ok", buttons(4))),
        LimitError::Count { count: 4, .. }
    ));
    assert_eq!(
        limit_error(template(&"x".repeat(641), buttons(1))),
        LimitError::TooLong {
            field: "message.attachment.payload.text".into(),
            chars: 641,
            max: 640
        }
    );
    assert_eq!(
        limit_error(template(
            "ok",
            vec![
                postback("ok", "p"),
                postback("This title is far too long", "p")
            ]
        )),
        LimitError::TooLong {
            field: "message.attachment.payload.buttons[1].title".into(),
            chars: 26,
            max: 20
        }
    );
    assert_eq!(
        limit_error(template("ok", vec![postback("ok", &"p".repeat(1001))])),
        LimitError::TooLong {
            field: "message.attachment.payload.buttons[0].payload".into(),
            chars: 1001,
            max: 1000
        }
    );
    assert!(matches!(
        limit_error(template(
            "ok",
            vec![Button::WebUrl {
                title: "Shop".into(),
                url: "javascript:alert(1)".into()
            }]
        )),
        LimitError::NotHttpUrl { .. }
    ));
}

#[test]
fn quick_reply_limits() {
    let replies = |count: usize| {
        (0..count)
            .map(|i| quick_reply("Go", &format!("p{i}")))
            .collect::<Vec<_>>()
    };
    let message = |quick_replies| OutgoingMessage::TextWithQuickReplies {
        text: "Pick".into(),
        quick_replies,
    };
    assert_eq!(
        SendRequest::response("psid", message(replies(13))).check_limits(),
        Ok(())
    );
    assert!(matches!(
        limit_error(message(replies(14))),
        LimitError::Count {
            count: 14,
            max: 13,
            ..
        }
    ));
    assert!(matches!(
        limit_error(message(vec![quick_reply(&"t".repeat(21), "p")])),
        LimitError::TooLong { max: 20, .. }
    ));
}

#[test]
fn notification_request_and_recipient_rules() {
    let otn = |title: &str| OutgoingMessage::OtnRequest {
        title: title.into(),
        payload: "p".into(),
    };
    assert_eq!(
        SendRequest::response("psid", otn(&"t".repeat(65))).check_limits(),
        Ok(())
    );
    assert!(matches!(
        limit_error(otn(&"t".repeat(66))),
        LimitError::TooLong { max: 65, .. }
    ));
    assert!(matches!(limit_error(otn("")), LimitError::Empty { .. }));
    assert_eq!(
        SendRequest::to_otn_token("tok", otn("Notify me")).check_limits(),
        Err(LimitError::RequestToToken)
    );
    let mut untyped = SendRequest::response("psid", text("hi"));
    untyped.messaging_type = None;
    assert_eq!(
        untyped.check_limits(),
        Err(LimitError::MissingMessagingType)
    );
    assert!(matches!(
        SendRequest::response("", text("hi")).check_limits(),
        Err(LimitError::Empty { .. })
    ));
    for tag in RETIRED_MESSAGE_TAGS {
        assert_eq!(
            SendRequest::tagged("psid", *tag, text("hi")).check_limits(),
            Err(LimitError::RetiredTag((*tag).to_owned()))
        );
    }
    assert!(matches!(
        limit_error(OutgoingMessage::Image {
            url: "ftp://x/y.png".into()
        }),
        LimitError::NotHttpUrl { .. }
    ));
}
