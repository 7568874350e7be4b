//! The server crate's integration tests: one binary whose modules are the suites, each running
//! the router over real HTTP on 127.0.0.1 with a real sled store in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod admin_api;
mod document;
mod pipeline;
mod poisoned_log;
mod postgres;
mod retention;
mod support;
mod ui;
mod webhook_and_ops;
