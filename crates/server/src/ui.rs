//! The builder web UI at `/ui/` (the bundle embedded by `botflow-ui`), the `/` redirect to it,
//! and the security headers every answer carries.

use axum::extract::{Path, Request};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use botflow_ui::Asset;

/// Same-origin only: scripts, styles, images and API calls come from this server. React Flow
/// positions nodes with inline `style` attributes, hence `'unsafe-inline'` for styles alone.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// `GET /`: 308 to the builder.
pub(crate) async fn redirect_root() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(LOCATION, HeaderValue::from_static("/ui/"))],
    )
        .into_response()
}

/// `GET /ui`: 308 to `/ui/`, so relative asset paths resolve.
pub(crate) async fn redirect_ui() -> Response {
    redirect_root().await
}

/// `GET /ui/`: the single page (its routes live after `#`).
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve(botflow_ui::index(), &headers)
}

/// `GET /ui/{*path}`: a bundle file; unknown paths get the JSON 404 of the API.
pub(crate) async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(botflow_ui::asset(&path), &headers)
}

fn serve(asset: Option<Asset>, headers: &HeaderMap) -> Response {
    let Some(asset) = asset else {
        return crate::error::ApiError::NotFound("no such file in the builder UI".to_owned())
            .into_response();
    };
    let cache = match asset.immutable {
        true => "public, max-age=31536000, immutable",
        false => "no-cache",
    };
    let etag = HeaderValue::from_static(asset.etag);
    let matches = headers
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == asset.etag || tag.trim() == "*")
        });
    let common = [
        (ETAG, etag),
        (CACHE_CONTROL, HeaderValue::from_static(cache)),
    ];
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(CONTENT_TYPE, HeaderValue::from_static(asset.content_type))],
        asset.bytes,
    )
        .into_response()
}

/// Adds the security headers to every answer: a same-origin Content-Security-Policy,
/// `X-Content-Type-Options: nosniff`, no framing and no referrer leaving the origin.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}
