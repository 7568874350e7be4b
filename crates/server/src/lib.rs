//! The botflow HTTP server: the Messenger webhook, the admin API under `/api`, `/healthz`,
//! Prometheus `/metrics` and the OpenAPI document at `/api/openapi.json`.
//!
//! Handlers only translate HTTP to storage and runtime calls. Entry points:
//! - [`ServerConfig::load`] reads `botflow.toml` and `BOTFLOW_*` variables;
//! - [`router`] builds the axum router over an [`AppState`].
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod api;
pub mod app;
mod auth;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod error;
pub mod ingest;
pub mod metrics;
pub mod openapi;
mod ops;
pub mod router;
pub mod startup;
pub mod state;
mod webhook;

pub use config::{ConfigError, PageConfig, ServerConfig};
pub use error::{ApiError, ApiJson};
pub use ingest::IngestOutcome;
pub use router::{ROUTES, router};
pub use state::AppState;
