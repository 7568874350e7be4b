//! Looking topic ids up in a store, so validation can report `unknown-topic` without doing I/O.

use crate::ids::TopicId;

/// Answers whether a topic id exists for the Page a flow belongs to; the storage crate
/// implements it over its topic table.
pub trait TopicLookup {
    /// Whether a topic with this id exists.
    fn topic_exists(&self, id: &TopicId) -> bool;
}

impl<F: Fn(&TopicId) -> bool> TopicLookup for F {
    fn topic_exists(&self, id: &TopicId) -> bool {
        self(id)
    }
}
