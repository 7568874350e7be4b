//! The Messenger Platform's limits and durations, defined once: the Send API checks, the
//! dispatcher's 24-hour rule, token lifetimes and the fake Graph API all use these. (The flow
//! crate, which may depend on no botflow crate, keeps copies for validation; a runtime test
//! asserts they are equal.)

use std::time::Duration;

/// Longest text message, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Longest text of a button template, in characters.
pub const MAX_BUTTON_TEXT_CHARS: usize = 640;
/// Most buttons on a button template.
pub const MAX_BUTTONS: usize = 3;
/// Longest button or quick-reply title, in characters.
pub const MAX_BUTTON_TITLE_CHARS: usize = 20;
/// Most quick replies on one message.
pub const MAX_QUICK_REPLIES: usize = 13;
/// Longest postback or quick-reply payload, in characters.
pub const MAX_PAYLOAD_CHARS: usize = 1000;
/// Longest title of a one-time-notification or recurring-notification request, in characters.
pub const MAX_NOTIFICATION_TITLE_CHARS: usize = 65;
/// The standard messaging window: a normal message may be sent up to 24 hours after the
/// subscriber's last interaction.
pub const MESSAGING_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// How long a one-time notification token stays usable after the opt-in (one year).
pub const OTN_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Meta's current cap on recurring notifications (since September 2025): at most one message
/// per recurring token every 48 hours, whatever the token's frequency.
pub const RECURRING_SEND_INTERVAL: Duration = Duration::from_secs(48 * 3600);
