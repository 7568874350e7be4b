//! The botflow HTTP server: the Messenger webhook, the admin API under `/api`, `/healthz`,
//! Prometheus `/metrics`, the OpenAPI document at `/api/openapi.json` and the builder UI at `/ui/`.
//!
//! Handlers only translate HTTP to storage and runtime calls. Entry points:
//! - [`ServerConfig::load`] reads `botflow.toml` and `BOTFLOW_*` variables (environment wins);
//! - [`app::start`] opens the sled store, publishes start-up flows, starts the runtime and serves
//!   HTTP; [`app::RunningServer::shutdown`] stops it gracefully;
//! - [`router`] builds the axum router over an [`AppState`] (store, runtime, metrics).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = botflow_server::ServerConfig::load(None, true)?; // --demo defaults
//! let server = botflow_server::app::start(config, Vec::new()).await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! A webhook POST is answered 200 only after every event of the delivery is in the durable
//! journal ([`AppState::ingest`]); the runtime then processes each subscriber's events in order.
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
mod order;
pub mod router;
pub mod startup;
pub mod state;
pub mod ui;
mod webhook;

pub use app::{RunningServer, ServeError};
pub use config::{ConfigError, MissingSetting, MissingSettings, PageConfig, ServerConfig};
pub use error::{ApiError, ApiJson};
pub use ingest::IngestOutcome;
pub use openapi::{openapi, openapi_text};
pub use router::{UI_ROUTES, router};
pub use state::AppState;
