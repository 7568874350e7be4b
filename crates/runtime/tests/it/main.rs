//! The runtime's integration tests, one binary whose modules are the suites: golden
//! conversations, step behaviour, the OTN story, the scheduler and dispatcher, the crash test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    dead_code,
    unreachable_pub
)]

mod containment;
mod conversations;
mod crash;
mod limits;
mod otn_story;
mod profile;
mod retention;
mod runtime;
mod step;
mod support;
