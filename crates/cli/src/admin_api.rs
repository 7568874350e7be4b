//! The admin API's answers as the CLI reads them (the server's handlers in
//! `crates/server/src/api/` write them; `crates/server/src/openapi.json` documents them).
//! Only the fields the CLI uses are read; unknown fields are ignored so a newer server works.

use botflow_flow::{Diagnostic, FlowDocument};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"error": {"code", "message", "diagnostics"?}}`: every failure answer of the API.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    /// The error.
    pub(crate) error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDetail {
    /// Stable code, e.g. `conflict`, `invalid_flow`.
    pub(crate) code: String,
    /// What went wrong, for people.
    pub(crate) message: String,
    /// Validation problems of a flow that cannot be saved or published.
    #[serde(default)]
    pub(crate) diagnostics: Vec<Diagnostic>,
}

/// One Page of `GET /api/pages`.
#[derive(Debug, Deserialize)]
pub(crate) struct PageView {
    /// The Page id.
    pub(crate) id: String,
}

/// A topic of `GET .../topics` (also the answer of create and rename).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct TopicView {
    /// Id (stable across renames).
    pub(crate) id: String,
    /// Name.
    pub(crate) name: String,
    /// Opt-ins waiting to be used.
    pub(crate) usable_tokens: u64,
    /// When it was created.
    pub(crate) created_ms: u64,
    /// Flows whose live version uses it.
    #[serde(default)]
    pub(crate) used_by: Vec<String>,
}

#[cfg(test)]
impl TopicView {
    /// A topic with no opt-ins and no users, for tests.
    pub(crate) fn named(id: &str, name: &str) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            usable_tokens: 0,
            created_ms: 0,
            used_by: Vec::new(),
        }
    }
}

/// The answer of `DELETE .../topics/{topic}`.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct DeletedView {
    /// The deleted topic.
    pub(crate) deleted: TopicView,
    /// Unused opt-ins that were invalidated.
    pub(crate) invalidated_tokens: u64,
}

/// The answer of `POST .../topics/{topic}/notify`.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct NotifyReport {
    /// The notification's id.
    pub(crate) id: u64,
    /// The topic id.
    pub(crate) topic: String,
    /// Messages queued, one token each.
    pub(crate) queued: u64,
    /// Holders who had no usable token left.
    pub(crate) no_token: u64,
    /// Tokens found expired.
    pub(crate) expired: u64,
    /// Messages queued paid for by recurring tokens (not spent).
    #[serde(default)]
    pub(crate) recurring_queued: u64,
    /// Recurring holders whose token paid less than a period ago.
    #[serde(default)]
    pub(crate) recurring_not_due: u64,
    /// Recurring holders who stopped the notifications.
    #[serde(default)]
    pub(crate) recurring_stopped: u64,
    /// Recurring tokens found past their expiry.
    #[serde(default)]
    pub(crate) recurring_expired: u64,
}

/// A topic notification (`GET .../notifications/{id}`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct NotificationView {
    /// Its id.
    pub(crate) id: u64,
    /// The topic id.
    pub(crate) topic: String,
    /// `text` or `flow`.
    pub(crate) content: String,
    /// The flow it runs, for `flow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) flow: Option<String>,
    /// `queued`, `sending`, `done` or `cancelled`.
    pub(crate) state: String,
    /// Its counts.
    pub(crate) totals: NotificationTotals,
    /// A flow notification's runs (absent for a text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) runs: Option<NotificationRuns>,
    /// When it was created (Unix ms).
    pub(crate) created_ms: u64,
    /// When its first message started sending.
    pub(crate) started_ms: Option<u64>,
    /// When it became done or cancelled.
    pub(crate) finished_ms: Option<u64>,
    /// Time left at the Page's pace (ms), while running.
    pub(crate) eta_ms: Option<u64>,
    /// The Page's pace (sends per second).
    pub(crate) rate_per_sec: u64,
}

/// A flow notification's runs, one per subscriber reached.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
pub(crate) struct NotificationRuns {
    /// Runs journaled; null while they are being journaled.
    pub(crate) expected: Option<u64>,
    /// Runs committed.
    pub(crate) done: u64,
    /// Of `done`, runs that failed.
    pub(crate) failed: u64,
}

impl NotificationRuns {
    /// `40/60` (`40/…` before the count is known), then ` (2 failed)`.
    pub(crate) fn describe(&self) -> String {
        let expected = self
            .expected
            .map_or_else(|| "…".to_owned(), |n| n.to_string());
        match self.failed {
            0 => format!("{}/{expected}", self.done),
            failed => format!("{}/{expected} ({failed} failed)", self.done),
        }
    }

    /// Whether runs are still to commit.
    pub(crate) fn under_way(&self) -> bool {
        self.expected.is_none_or(|n| self.done < n)
    }
}

impl NotificationView {
    /// Whether it can still change.
    pub(crate) fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "queued" | "sending")
    }
}

/// The counts of a notification.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct NotificationTotals {
    pub(crate) queued: u64,
    /// Of `queued`, the messages paid for by recurring tokens.
    #[serde(default)]
    pub(crate) recurring: u64,
    pub(crate) pending: u64,
    pub(crate) sent: u64,
    pub(crate) failed: u64,
    pub(crate) refused: u64,
    pub(crate) unconfirmed: u64,
    pub(crate) no_token: u64,
    pub(crate) expired: u64,
    pub(crate) cancelled: u64,
}

/// The answer of `POST .../notifications/{id}/cancel`.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct CancelView {
    /// The notification after the cancel.
    pub(crate) notification: NotificationView,
    /// Messages removed unsent.
    pub(crate) removed: u64,
    /// Tokens usable again.
    pub(crate) tokens_restored: u64,
}

/// The diagnostics of a draft save (`PUT .../flows/{flow}`) or of `POST /api/validate`.
#[derive(Debug, Deserialize)]
pub(crate) struct ValidationReport {
    /// Every problem found, errors and warnings.
    pub(crate) diagnostics: Vec<Diagnostic>,
}

/// A topic created inline by a publish.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct CreatedTopic {
    /// Its id.
    pub(crate) id: String,
    /// Its name.
    pub(crate) name: String,
}

/// The answer of publish and rollback.
#[derive(Debug, Deserialize)]
pub(crate) struct PublishView {
    /// The live version after the call.
    pub(crate) version: u32,
    /// Whether it equals the version that was live before (nothing new was published).
    pub(crate) unchanged: bool,
    /// Topics the publish created because the flow named them.
    #[serde(default)]
    pub(crate) topics_created: Vec<CreatedTopic>,
}

/// `GET .../flows/{flow}/versions/{n}`: a published version.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct VersionView {
    /// Its number.
    pub(crate) version: u32,
    /// Whether new runs start on it.
    pub(crate) live: bool,
    /// When it was published.
    pub(crate) published_ms: u64,
    /// The version whose content a rollback republished.
    pub(crate) republished_from: Option<u32>,
    /// The document as it runs (topic references by id).
    pub(crate) document: Value,
    /// The document as it was written (topics by name where it named them).
    pub(crate) source: Value,
}

impl VersionView {
    /// The running document as a flow, to compare with a file.
    pub(crate) fn running_document(&self) -> Result<FlowDocument, serde_json::Error> {
        FlowDocument::deserialize(&self.document)
    }
}
