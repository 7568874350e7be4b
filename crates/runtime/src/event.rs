//! The inbound events the step function understands, independent of Messenger's wire format.

use botflow_flow::{FlowId, TopicId};
use serde::{Deserialize, Serialize};

/// The postback payload of the Page's "Get Started" button, as botflow configures it.
pub const GET_STARTED_PAYLOAD: &str = "GET_STARTED";

/// One thing that happened to a subscriber: something they did, a timer, or a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundEvent {
    /// A typed text message.
    Text {
        /// The text.
        text: String,
    },
    /// A message with an attachment and no text (image, file, location...).
    Attachment {
        /// The attachment's URL (empty when Messenger gives none).
        url: String,
    },
    /// A tap on a quick reply.
    QuickReply {
        /// The quick reply's payload.
        payload: String,
        /// The quick reply's title, as sent back in the message text.
        text: String,
    },
    /// A tap on a postback button.
    Postback {
        /// The button's payload.
        payload: String,
        /// The button's title.
        title: String,
    },
    /// A tap on "Notify me" of an OTN request.
    Optin {
        /// The request's payload.
        payload: String,
        /// The one-time token that pays for one message.
        token: String,
    },
    /// A recurring notification opt-in (`notification_messages`), without stop/resume.
    RecurringOptin {
        /// The request's payload (where the flow continues, and the topic).
        payload: String,
        /// The `notification_messages_token`.
        token: String,
        /// The frequency Messenger reports; `None` (absent or unknown): the request's own.
        frequency: Option<botflow_flow::Frequency>,
        /// `notification_messages_timezone`, as sent.
        timezone: Option<String>,
        /// From `token_expiry_timestamp`; `None`: no expiry.
        expires_ms: Option<u64>,
    },
    /// The subscriber stopped (`stopped`) or resumed the recurring notifications of a token.
    RecurringStatus {
        /// The `notification_messages_token`.
        token: String,
        /// True for stop, false for resume.
        stopped: bool,
    },
    /// An m.me link or ad referral.
    Referral {
        /// The referral's `ref` parameter.
        ref_param: String,
    },
    /// A tap on the "Get Started" button of a new conversation, with the referral it carried.
    GetStarted {
        /// The `ref` of an m.me link that opened the conversation, if any.
        ref_param: Option<String>,
    },
    /// A pending timer of the session is due.
    TimerFired {
        /// The timer's id in [`botflow_storage::Session::timers`].
        timer_id: u64,
    },
    /// A topic notification for this subscriber (sent by the Page, not the subscriber).
    Notify {
        /// The topic whose token pays.
        topic: TopicId,
        /// What to send.
        content: NotifyContent,
    },
}

/// What a topic notification sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyContent {
    /// One text message, paid for by one token of the topic.
    Text(String),
    /// Runs this flow (its `otn_send` blocks spend the tokens).
    Flow(FlowId),
}

impl InboundEvent {
    /// Whether the subscriber did this (it opens the 24-hour window); timers and notifications do not.
    pub fn is_user_interaction(&self) -> bool {
        !matches!(self, Self::TimerFired { .. } | Self::Notify { .. })
    }

    /// A short description for logs and transcripts.
    pub fn describe(&self) -> String {
        match self {
            Self::Text { text } => format!("text {text:?}"),
            Self::Attachment { url } => format!("attachment {url}"),
            Self::QuickReply { text, .. } => format!("quick reply {text:?}"),
            Self::Postback { title, .. } => format!("postback {title:?}"),
            Self::Optin { .. } => "opt-in".to_owned(),
            Self::RecurringOptin { .. } => "recurring opt-in".to_owned(),
            Self::RecurringStatus { stopped: true, .. } => "recurring stop".to_owned(),
            Self::RecurringStatus { stopped: false, .. } => "recurring resume".to_owned(),
            Self::Referral { ref_param } => format!("referral {ref_param:?}"),
            Self::GetStarted { .. } => "get started".to_owned(),
            Self::TimerFired { timer_id } => format!("timer {timer_id}"),
            Self::Notify { topic, .. } => format!("notification for topic {topic}"),
        }
    }
}
