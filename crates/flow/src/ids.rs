//! Newtypes for the identifiers that appear in a flow document.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
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
    };
}

string_id!(
    /// Identifier of a flow, unique per Page (e.g. `"restock"`); at most 100 characters.
    FlowId
);
string_id!(
    /// Identifier of a block, unique within one flow (e.g. `"welcome"`); at most 100 characters.
    BlockId
);
string_id!(
    /// Identifier of an OTN topic, unique per Page (a UUID assigned by the store).
    TopicId
);
string_id!(
    /// Name of a subscriber field that templates and conditions read (e.g. `"email"`).
    FieldName
);
