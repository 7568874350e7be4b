//! The one place that lists the routes: each handler with its `#[utoipa::path]` documentation,
//! served by [`router`] and documented by [`crate::openapi::openapi`].

use crate::api;
use crate::auth::require_admin_token;
use crate::error::{ApiError, BodyLimit};
use crate::state::AppState;
use crate::{openapi, ops, ui, webhook};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{ALLOW, CONNECTION, CONTENT_TYPE};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use std::sync::Arc;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The public routes: operations endpoints, the webhook and this document.
fn public_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::metrics))
        .routes(routes!(webhook::handshake, webhook::receive))
        .routes(routes!(openapi::document))
}

/// The admin routes, nested under `/api` and served only with the bearer token; the document
/// says so for each of them (security and 401), since the check is a layer.
fn admin_routes() -> OpenApiRouter<Arc<AppState>> {
    let mut admin = OpenApiRouter::default()
        .routes(routes!(api::validate::validate_flow))
        .routes(routes!(api::pages::list))
        .routes(routes!(api::topics::list, api::topics::create))
        .routes(routes!(api::topics::rename, api::topics::delete))
        .routes(routes!(api::ledger::ledger))
        .routes(routes!(api::notify::notify))
        .routes(routes!(api::notifications::list))
        .routes(routes!(api::notifications::show))
        .routes(routes!(api::notifications::cancel))
        .routes(routes!(api::flows::list))
        .routes(routes!(api::flows::draft, api::flows::save_draft))
        .routes(routes!(api::flows::publish))
        .routes(routes!(api::flows::version))
        .routes(routes!(api::flows::rollback))
        .routes(routes!(api::subscribers::show))
        .routes(routes!(api::preview::preview_draft));
    openapi::document_bearer_auth(admin.get_openapi_mut());
    admin
}

/// Every route with its documentation, without state or layers: what [`router`] serves and
/// what [`openapi::openapi`] documents. A route is added here with `routes!(handler)` and a
/// `#[utoipa::path]` on the handler, never with a bare `.route`, so it cannot go undocumented.
pub(crate) fn documented_routes() -> OpenApiRouter<Arc<AppState>> {
    public_routes().nest("/api", admin_routes())
}

/// The routes of the builder UI's files and the `/` redirect to it: served, but not part of the
/// documented HTTP interface (`/api/openapi.json`).
pub const UI_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/"),
    (Method::GET, "/ui"),
    (Method::GET, "/ui/"),
    (Method::GET, "/ui/{*path}"),
];

/// Builds the router: `/healthz`, `/metrics`, `/webhook`, and the bearer-protected `/api`,
/// with body limit, JSON errors and request tracing applied to every route.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.body_limit_bytes;
    let admin = admin_routes()
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_admin_token,
        ))
        // A request stuck behind a slow disk answers 503 instead of holding the client forever.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(state.config.admin_timeout_ms),
        ));
    let (routes, _document) = public_routes().nest("/api", admin).split_for_parts();
    routes
        .route("/", get(ui::redirect_root))
        .route("/ui", get(ui::redirect_ui))
        .route("/ui/", get(ui::index))
        .route("/ui/{*path}", get(ui::file))
        .fallback(unknown_route)
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(middleware::from_fn_with_state(state.clone(), json_errors))
        .layer(Extension(BodyLimit(limit)))
        .layer(middleware::from_fn(ui::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

/// Turns the plain-text error answers of axum and tower-http (bad path or query parameters,
/// 405, 413) into the API's JSON error shape, so clients only ever see one error format.
async fn json_errors(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let is_webhook = request.uri().path() == "/webhook";
    let mut response = next.run(request).await;
    let status = response.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        if is_webhook {
            state.metrics.webhook_too_large.inc();
        }
        // The rest of the body was not read: the connection cannot carry another request.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let error = match status {
        StatusCode::BAD_REQUEST => ApiError::BadRequest(text),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit_bytes: state.config.body_limit_bytes,
        },
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed(format!("{method} is not allowed on this route"))
        }
        StatusCode::NOT_FOUND => ApiError::NotFound("not found".to_owned()),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(text),
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(format!(
            "the request did not finish within {} ms (BOTFLOW_ADMIN_TIMEOUT_MS); it may still take effect",
            state.config.admin_timeout_ms
        )),
        _ => return Response::from_parts(parts, axum::body::Body::from(text)),
    };
    let mut json = error.into_response();
    // Keep what the plain answer said about the connection and, for a 405, the allowed methods.
    for name in [CONNECTION, ALLOW] {
        if let Some(value) = parts.headers.get(&name) {
            json.headers_mut().insert(name, value.clone());
        }
    }
    json
}
