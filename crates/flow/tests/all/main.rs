//! Integration tests of the flow crate, in one test binary: data-driven fixtures, the JSON
//! Schema, the example flows and property tests.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod examples;
mod fixtures;
mod long_chains;
mod properties;
mod schema;
mod support;
