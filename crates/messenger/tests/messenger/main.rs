//! Integration tests of the messenger crate, one binary: webhook fixtures, request golden files,
//! property tests of the parser, and the client against the fake Graph API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_retry;
mod fake_rules;
mod parse_props;
mod profile;
mod send_golden;
mod support;
mod webhook_fixtures;
