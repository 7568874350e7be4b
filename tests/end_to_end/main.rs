//! End-to-end tests: one test binary whose modules are the suites.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod admin_client;
mod architecture;
mod cluster;
mod crash;
mod hangup;
mod http;
mod notifications;
mod otn_story;
mod recurring_story;
mod simulate;
mod support;
mod validate;
