//! The admin API under `/api`: one module per resource, each handler a thin translation of
//! HTTP to storage and runtime calls.

pub(crate) mod conflicts;
pub(crate) mod flows;
pub(crate) mod notify;
pub(crate) mod pages;
pub(crate) mod preview;
pub(crate) mod subscribers;
pub(crate) mod topics;
pub(crate) mod validate;

use serde::Deserialize;

/// Path of routes under one Page.
#[derive(Debug, Deserialize)]
pub(crate) struct PagePath {
    pub(crate) page: String,
}

/// Path of routes under one topic.
#[derive(Debug, Deserialize)]
pub(crate) struct TopicPath {
    pub(crate) page: String,
    pub(crate) topic: String,
}

/// Path of routes under one flow.
#[derive(Debug, Deserialize)]
pub(crate) struct FlowPath {
    pub(crate) page: String,
    pub(crate) flow: String,
}

/// Path of routes under one published version of a flow.
#[derive(Debug, Deserialize)]
pub(crate) struct VersionPath {
    pub(crate) page: String,
    pub(crate) flow: String,
    pub(crate) n: u32,
}

/// Path of the subscriber view.
#[derive(Debug, Deserialize)]
pub(crate) struct SubscriberPath {
    pub(crate) page: String,
    pub(crate) psid: String,
}
