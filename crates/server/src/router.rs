//! The one function that builds the HTTP router, and the table of every route it serves.

use crate::api;
use crate::auth::require_admin_token;
use crate::error::{ApiError, BodyLimit};
use crate::state::AppState;
use crate::{openapi, ops, ui, webhook};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CONNECTION, CONTENT_TYPE};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Router};
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

/// Every (method, path) the router serves, in axum's path syntax (the same as OpenAPI's).
/// A test checks that the router serves each and that `/api/openapi.json` documents each.
pub const ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/healthz"),
    (Method::GET, "/metrics"),
    (Method::GET, "/webhook"),
    (Method::POST, "/webhook"),
    (Method::GET, "/api/openapi.json"),
    (Method::POST, "/api/validate"),
    (Method::GET, "/api/pages"),
    (Method::GET, "/api/pages/{page}/topics"),
    (Method::POST, "/api/pages/{page}/topics"),
    (Method::PATCH, "/api/pages/{page}/topics/{topic}"),
    (Method::DELETE, "/api/pages/{page}/topics/{topic}"),
    (Method::POST, "/api/pages/{page}/topics/{topic}/notify"),
    (Method::GET, "/api/pages/{page}/flows"),
    (Method::GET, "/api/pages/{page}/flows/{flow}"),
    (Method::PUT, "/api/pages/{page}/flows/{flow}"),
    (Method::POST, "/api/pages/{page}/flows/{flow}/publish"),
    (Method::GET, "/api/pages/{page}/flows/{flow}/versions/{n}"),
    (Method::POST, "/api/pages/{page}/flows/{flow}/rollback/{n}"),
    (Method::GET, "/api/pages/{page}/subscribers/{psid}"),
    (Method::POST, "/api/pages/{page}/preview"),
];

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
    let admin = Router::new()
        .route("/validate", post(api::validate::validate_flow))
        .route("/pages", get(api::pages::list))
        .route(
            "/pages/{page}/topics",
            get(api::topics::list).post(api::topics::create),
        )
        .route(
            "/pages/{page}/topics/{topic}",
            patch(api::topics::rename).delete(api::topics::delete),
        )
        .route(
            "/pages/{page}/topics/{topic}/notify",
            post(api::notify::notify),
        )
        .route("/pages/{page}/flows", get(api::flows::list))
        .route(
            "/pages/{page}/flows/{flow}",
            get(api::flows::draft).put(api::flows::save_draft),
        )
        .route(
            "/pages/{page}/flows/{flow}/publish",
            post(api::flows::publish),
        )
        .route(
            "/pages/{page}/flows/{flow}/versions/{n}",
            get(api::flows::version),
        )
        .route(
            "/pages/{page}/flows/{flow}/rollback/{n}",
            post(api::flows::rollback),
        )
        .route(
            "/pages/{page}/subscribers/{psid}",
            get(api::subscribers::show),
        )
        .route("/pages/{page}/preview", post(api::preview::preview_draft))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_admin_token,
        ));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/webhook", get(webhook::handshake).post(webhook::receive))
        .route("/api/openapi.json", get(openapi::document))
        .route("/", get(ui::redirect_root))
        .route("/ui", get(ui::redirect_ui))
        .route("/ui/", get(ui::index))
        .route("/ui/{*path}", get(ui::file))
        .nest("/api", admin)
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
        _ => return Response::from_parts(parts, axum::body::Body::from(text)),
    };
    let mut json = error.into_response();
    if let Some(connection) = parts.headers.get(CONNECTION) {
        json.headers_mut().insert(CONNECTION, connection.clone());
    }
    json
}
