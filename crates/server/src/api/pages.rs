//! The Pages this server serves (from its configuration), for the builder's Page switcher and
//! the CLI's default Page.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A Page as the API shows it. The access token is never shown.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Page)]
pub(crate) struct PageView {
    /// The Page id, as in `/api/pages/{page}/…`.
    id: String,
}

/// `GET /api/pages`: the Pages this server serves, in configuration order.
#[utoipa::path(
    get,
    path = "/pages",
    operation_id = "listPages",
    tag = "pages",
    responses((status = 200, description = "Pages in configuration order.", body = Vec<PageView>, links(
        ("topics" = (operation_id = "listTopics", parameters(("page" = "$response.body#/0/id")), description = "The first Page's topics.")),
        ("flows" = (operation_id = "listFlows", parameters(("page" = "$response.body#/0/id")), description = "The first Page's flows.")),
    )))
)]
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Json<Vec<PageView>> {
    Json(
        state
            .config
            .pages
            .iter()
            .map(|page| PageView {
                id: page.id.clone(),
            })
            .collect(),
    )
}
