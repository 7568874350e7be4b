//! Topics in a flow: looking topic ids up in a store, so validation can report `unknown-topic`
//! without doing I/O, and walking every topic reference of a document.

use crate::ids::TopicId;
use crate::model::{BlockKind, FlowDocument, Message, TopicRef};

/// Answers whether a topic id exists for the Page a flow belongs to; the storage crate
/// implements it over its topic table. A closure `Fn(&TopicId) -> bool` also works.
///
/// ```
/// use botflow_flow::{TopicId, TopicLookup, check_text_with_topics};
///
/// struct Topics(Vec<TopicId>);
/// impl TopicLookup for Topics {
///     fn topic_exists(&self, id: &TopicId) -> bool {
///         self.0.contains(id)
///     }
/// }
///
/// let flow = r#"{"format": 1, "id": "f", "name": "F", "start": "a", "blocks": [{"id": "a",
///     "type": "send_message", "messages": [{"type": "otn_request", "topic": {"id": "t9"}, "title": "Notify me"}]}]}"#;
/// let report = check_text_with_topics(flow, &Topics(vec![TopicId::from("t1")]));
/// assert_eq!(report.diagnostics[0].code, "unknown-topic");
/// assert_eq!(report.diagnostics[0].pointer, "/blocks/0/messages/0/topic/id");
/// ```
pub trait TopicLookup {
    /// Whether a topic with this id exists.
    fn topic_exists(&self, id: &TopicId) -> bool;
}

impl<F: Fn(&TopicId) -> bool> TopicLookup for F {
    fn topic_exists(&self, id: &TopicId) -> bool {
        self(id)
    }
}

/// Calls `f` with every topic reference of a document (OTN requests in `send_message` blocks and
/// `otn_send` blocks), in document order, with its JSON Pointer. Storage resolves names to ids
/// with it at publish; the CLI does the same against a server's topic list to tell whether a
/// publish would change anything.
pub fn visit_topic_refs(doc: &mut FlowDocument, f: &mut dyn FnMut(&mut TopicRef, String)) {
    fn in_message(
        message: &mut Message,
        pointer: String,
        f: &mut dyn FnMut(&mut TopicRef, String),
    ) {
        let topic = match message {
            Message::OtnRequest(request) => request.topic.as_mut(),
            Message::RecurringRequest(request) => request.topic.as_mut(),
            _ => None,
        };
        if let Some(topic) = topic {
            f(topic, format!("{pointer}/topic"));
        }
    }
    for (b, block) in doc.blocks.iter_mut().enumerate() {
        match &mut block.kind {
            BlockKind::SendMessage { messages } => {
                for (m, message) in messages.iter_mut().enumerate() {
                    in_message(message, format!("/blocks/{b}/messages/{m}"), f);
                }
            }
            BlockKind::OtnSend(send) => {
                f(&mut send.topic, format!("/blocks/{b}/topic"));
                in_message(&mut send.message, format!("/blocks/{b}/message"), f);
            }
            _ => {}
        }
    }
}
