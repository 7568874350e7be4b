//! Newtypes for the Messenger identifiers that appear in webhook events: the one definition of
//! Page ids, PSIDs and event dedup keys, which storage and the runtime use too.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// Page-scoped id of a person (PSID): the `sender.id` of an inbound event.
    Psid
);
string_id!(
    /// Id of a Facebook Page: the `recipient.id` of an inbound event and the entry id.
    PageId
);
string_id!(
    /// Dedup key of an inbound webhook event (see `MessagingEvent::dedup_key`): the message mid,
    /// the opt-in token, or a hash of the event.
    EventId
);
