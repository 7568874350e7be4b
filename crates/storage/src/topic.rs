//! OTN topics: records, name rules (trimmed, case-insensitive, 1..=65 characters).

use crate::error::StoreError;
use botflow_flow::{FlowId, TopicId};
use serde::{Deserialize, Serialize};

/// Longest topic name, in characters after trimming (Messenger's OTN title limit).
pub const MAX_TOPIC_NAME_CHARS: usize = botflow_messenger::limits::MAX_NOTIFICATION_TITLE_CHARS;

/// An OTN topic of a Page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// Id (a UUID v4), stable across renames.
    pub id: TopicId,
    /// Name as entered, trimmed.
    pub name: String,
    /// When it was created.
    pub created_ms: u64,
}

/// A topic with the number of opt-in tokens waiting to be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSummary {
    /// The topic.
    pub topic: Topic,
    /// Tokens that are neither used, invalid nor expired at the time asked.
    pub usable_tokens: u64,
    /// The flows whose active version refers to the topic by id, by flow id.
    pub used_by: Vec<FlowId>,
}

/// What a topic deletion removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedTopic {
    /// The deleted topic.
    pub topic: Topic,
    /// Unused tokens of the topic that were invalidated.
    pub invalidated_tokens: u64,
}

/// Trims a topic name and checks its length; returns the trimmed name.
pub fn clean_topic_name(name: &str) -> Result<String, StoreError> {
    let trimmed = name.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err(StoreError::InvalidTopicName {
            name: name.to_owned(),
            reason: "the name is empty".into(),
        });
    }
    if chars > MAX_TOPIC_NAME_CHARS {
        return Err(StoreError::InvalidTopicName {
            name: name.to_owned(),
            reason: format!(
                "the name has {chars} characters, at most {MAX_TOPIC_NAME_CHARS} are allowed"
            ),
        });
    }
    if let Some(bad) = trimmed.chars().find(|c| c.is_control()) {
        return Err(StoreError::InvalidTopicName {
            name: name.to_owned(),
            reason: format!(
                "the name contains the control character U+{:04X}; use printable characters only",
                u32::from(bad)
            ),
        });
    }
    Ok(trimmed.to_owned())
}

/// The form under which names are compared for uniqueness: trimmed and lowercased.
pub fn topic_name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused() {
        for name in ["Blue\u{0}x", "a\nb", "tab\there"] {
            let err = clean_topic_name(name).unwrap_err();
            assert!(
                err.to_string().contains("control character"),
                "{name:?}: {err}"
            );
        }
        assert_eq!(clean_topic_name(" Blue é ").unwrap(), "Blue é");
    }

    #[test]
    fn names_are_trimmed_and_length_checked() {
        assert_eq!(clean_topic_name("  Restock ").unwrap(), "Restock");
        assert!(matches!(
            clean_topic_name("   "),
            Err(StoreError::InvalidTopicName { .. })
        ));
        let long = "é".repeat(65);
        assert_eq!(clean_topic_name(&long).unwrap(), long);
        assert!(clean_topic_name(&"x".repeat(66)).is_err());
    }

    #[test]
    fn name_keys_ignore_case_and_spaces() {
        assert_eq!(
            topic_name_key(" Red Sneakers "),
            topic_name_key("red sneakers")
        );
        assert_ne!(
            topic_name_key("red sneakers"),
            topic_name_key("red  sneakers")
        );
    }
}
