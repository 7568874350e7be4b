//! Looking topic ids up in a store, so validation can report `unknown-topic` without doing I/O.

use crate::ids::TopicId;

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
