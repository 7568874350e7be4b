//! The admin API under `/api`: one module per resource, each handler a thin translation of
//! HTTP to storage and runtime calls, documented by its `#[utoipa::path]` annotation.

pub(crate) mod conflicts;
pub(crate) mod flows;
pub(crate) mod ledger;
pub(crate) mod notifications;
pub(crate) mod notify;
pub(crate) mod pages;
pub(crate) mod preview;
pub(crate) mod subscribers;
pub(crate) mod topics;
pub(crate) mod validate;

use serde::Deserialize;
use utoipa::IntoParams;

/// Path of routes under one Page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct PagePath {
    /// Page id (one of `GET /api/pages`).
    pub(crate) page: String,
}

/// Path of routes under one topic.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TopicPath {
    /// Page id (one of `GET /api/pages`).
    pub(crate) page: String,
    /// Topic id (the `id` a topic create answers).
    pub(crate) topic: String,
}

/// Path of routes under one flow.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct FlowPath {
    /// Page id (one of `GET /api/pages`).
    pub(crate) page: String,
    /// Flow id (the document's `id`).
    pub(crate) flow: String,
}

/// Path of routes under one published version of a flow.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct VersionPath {
    /// Page id (one of `GET /api/pages`).
    pub(crate) page: String,
    /// Flow id (the document's `id`).
    pub(crate) flow: String,
    /// Published version number, from 1; a number past 4294967295 is a 400.
    #[param(value_type = u64, minimum = 1, maximum = 4294967295_u64)]
    pub(crate) n: u32,
}

/// Path of the subscriber view.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct SubscriberPath {
    /// Page id (one of `GET /api/pages`).
    pub(crate) page: String,
    /// Page-scoped id of the subscriber.
    pub(crate) psid: String,
}
