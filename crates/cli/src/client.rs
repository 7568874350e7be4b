//! The connection to a running server's admin API (`--server`, `--token`, `--page`), the HTTP
//! calls of every client command, and [`ClientError`], their one error type with its exit code.
//!
//! Exit codes: 0 done, 1 the server refused the content (a flow with errors, a name taken, a
//! topic or flow it does not know), 2 usage, authentication, I/O or connection errors.

use crate::admin_api::{ErrorBody, PageView};
use botflow_flow::Diagnostic;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use std::process::ExitCode;
use std::time::Duration;

/// The server's address when neither `--server` nor `BOTFLOW_SERVER` is given (`serve`'s default).
const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
/// How long to wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take (publishing waits for a disk flush on a busy server).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the admin API is and how to use it; shared by `push`, `topics`, `flows` and `notify`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConnectionArgs {
    /// Base URL of the botflow server.
    #[arg(long, env = "BOTFLOW_SERVER", value_name = "URL", default_value = DEFAULT_SERVER, global = true)]
    server: String,
    /// Bearer token of the admin API (the server's BOTFLOW_ADMIN_TOKEN); never printed.
    #[arg(
        long,
        env = "BOTFLOW_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        global = true
    )]
    token: Option<AdminToken>,
    /// The Page to work on; optional when the server serves exactly one.
    #[arg(long, env = "BOTFLOW_PAGE_ID", value_name = "ID", global = true)]
    page: Option<String>,
}

/// The admin bearer token: kept out of `Debug` output, error messages and logs.
#[derive(Clone)]
pub(crate) struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl std::str::FromStr for AdminToken {
    type Err = std::convert::Infallible;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        Ok(Self(token.trim().to_owned()))
    }
}

/// Why a client command could not do its work.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The command line or the files named on it cannot be used.
    #[error("{0}")]
    Usage(String),
    /// No token was given.
    #[error(
        "no admin token: pass --token TOKEN or set BOTFLOW_ADMIN_TOKEN (the server's admin token)"
    )]
    NoToken,
    /// `--server` is not an http(s) URL.
    #[error("--server {url:?} is not an http(s) URL: {reason}")]
    BadServerUrl { url: String, reason: String },
    /// No TCP connection, a timeout, or a connection lost mid-request.
    #[error(
        "cannot reach the server at {server}: {detail} (is `botflow serve` running there? set --server or BOTFLOW_SERVER)"
    )]
    Unreachable { server: String, detail: String },
    /// The server refused the token (401).
    #[error(
        "the server at {server} refused the admin token ({message}); check --token or BOTFLOW_ADMIN_TOKEN"
    )]
    Unauthorized { server: String, message: String },
    /// `--page` names a Page the server does not serve.
    #[error("server {server} does not serve Page {page} (it serves: {served})")]
    PageNotServed {
        server: String,
        page: String,
        served: String,
    },
    /// No `--page`, and the server serves none or several.
    #[error("server {server} serves {served}: choose one with --page ID or BOTFLOW_PAGE_ID")]
    PageNeeded { server: String, served: String },
    /// The server refused what was sent (404 unknown topic or flow, 409 conflict, 422 invalid).
    #[error("{message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The API's stable error code, e.g. `conflict`.
        code: String,
        /// The server's explanation.
        message: String,
        /// Validation problems, when the refusal is about a flow.
        diagnostics: Vec<Diagnostic>,
    },
    /// Any other failure answer (400, 5xx, ...).
    #[error("the server at {server} answered {status}: {message}")]
    Server {
        server: String,
        status: u16,
        message: String,
    },
    /// An answer that is not what a botflow server sends.
    #[error("unexpected answer from {url}: {detail} (is this a botflow server?)")]
    Protocol { url: String, detail: String },
    /// A local file could not be read or written, or stdout could not be written.
    #[error("{0}")]
    Io(String),
}

impl ClientError {
    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Self::Refused { .. } => ExitCode::from(1),
            _ => ExitCode::from(2),
        }
    }
}

impl From<std::io::Error> for ClientError {
    fn from(err: std::io::Error) -> Self {
        Self::Io(format!("cannot write the output: {err}"))
    }
}

/// Runs a client command on a small tokio runtime; prints its error (if any) on stderr and
/// returns the exit code.
pub(crate) fn run_command(
    command: impl std::future::Future<Output = Result<ExitCode, ClientError>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    }
}

/// A request body.
pub(crate) enum Body<'a> {
    /// No body.
    Empty,
    /// A JSON value.
    Json(&'a serde_json::Value),
    /// JSON text sent as it is (a flow file, so the server sees exactly what was written).
    JsonBytes(&'a [u8]),
}

/// An admin API client bound to one server and one Page.
pub(crate) struct AdminClient {
    http: reqwest::Client,
    server: Url,
    token: AdminToken,
    page: String,
}

impl AdminClient {
    /// Checks the arguments, then asks the server which Pages it serves: this proves it is
    /// reachable and accepts the token, and picks the Page (the given one, or the only one).
    pub(crate) async fn connect(args: &ConnectionArgs) -> Result<Self, ClientError> {
        let token = args.token.clone().filter(|t| !t.0.is_empty());
        let token = token.ok_or(ClientError::NoToken)?;
        let server = parse_server_url(&args.server)?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("botflow-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ClientError::Io(format!("cannot set up the HTTP client: {err}")))?;
        let mut client = Self {
            http,
            server,
            token,
            page: String::new(),
        };
        let pages: Vec<PageView> = client
            .request(Method::GET, &["pages"], &[], Body::Empty)
            .await
            .map_err(|err| match err {
                // Every botflow server this CLI knows answers `GET /api/pages`.
                ClientError::Refused { message, .. } => ClientError::Protocol {
                    url: format!("{}/api/pages", client.server_name()),
                    detail: format!("{message} (a botflow server older than this CLI?)"),
                },
                other => other,
            })?;
        let served = || match pages.is_empty() {
            true => "no Page".to_owned(),
            false => pages
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        client.page = match (&args.page, pages.as_slice()) {
            (Some(page), _) if pages.iter().any(|p| &p.id == page) => page.clone(),
            (Some(page), _) => {
                return Err(ClientError::PageNotServed {
                    server: client.server_name(),
                    page: page.clone(),
                    served: served(),
                });
            }
            (None, [only]) => only.id.clone(),
            (None, _) => {
                return Err(ClientError::PageNeeded {
                    server: client.server_name(),
                    served: match pages.len() {
                        0 => "no Page".to_owned(),
                        _ => format!("several Pages ({})", served()),
                    },
                });
            }
        };
        Ok(client)
    }

    /// The Page every call is about.
    pub(crate) fn page(&self) -> &str {
        &self.page
    }

    /// The server's base URL as given (without a trailing slash).
    pub(crate) fn server_name(&self) -> String {
        self.server.as_str().trim_end_matches('/').to_owned()
    }

    /// A call under `/api/pages/{page}/`, e.g. `["topics", id]`; each segment is percent-encoded.
    pub(crate) async fn page_request<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<T, ClientError> {
        let mut path = vec!["pages", self.page.as_str()];
        path.extend_from_slice(segments);
        self.request(method, &path, query, body).await
    }

    /// A call under `/api/`; answers are classified into [`ClientError`]s.
    pub(crate) async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<T, ClientError> {
        let mut url = self.server.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::BadServerUrl {
                url: self.server_name(),
                reason: "it cannot have a path".to_owned(),
            })?
            .pop_if_empty()
            .push("api")
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self
            .http
            .request(method, url.clone())
            .bearer_auth(&self.token.0);
        request = match body {
            Body::Empty => request,
            Body::Json(value) => request.json(value),
            Body::JsonBytes(bytes) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.to_vec()),
        };
        let response = request.send().await.map_err(|err| self.unreachable(&err))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.unreachable(&err))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|err| ClientError::Protocol {
                url: url.to_string(),
                detail: format!("{status} with a body that does not parse: {err}"),
            });
        }
        let error = serde_json::from_slice::<ErrorBody>(&bytes).ok();
        let message = match &error {
            Some(body) => body.error.message.clone(),
            None => String::from_utf8_lossy(&bytes)
                .trim()
                .chars()
                .take(200)
                .collect(),
        };
        match status {
            StatusCode::UNAUTHORIZED => Err(ClientError::Unauthorized {
                server: self.server_name(),
                message,
            }),
            StatusCode::NOT_FOUND | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
                if error.is_some() =>
            {
                let error = error.map(|body| body.error);
                Err(ClientError::Refused {
                    status: status.as_u16(),
                    code: error.as_ref().map(|e| e.code.clone()).unwrap_or_default(),
                    message,
                    diagnostics: error.map(|e| e.diagnostics).unwrap_or_default(),
                })
            }
            StatusCode::NOT_FOUND => Err(ClientError::Protocol {
                url: url.to_string(),
                detail: format!("404 without an API error body: {message}"),
            }),
            _ => Err(ClientError::Server {
                server: self.server_name(),
                status: status.as_u16(),
                message,
            }),
        }
    }

    fn unreachable(&self, err: &reqwest::Error) -> ClientError {
        // reqwest's own message is generic ("error sending request"); the cause is at the end of
        // the chain ("Connection refused (os error 111)").
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            detail = cause.to_string();
            source = cause.source();
        }
        if err.is_timeout() {
            detail = format!("no answer in time ({detail})");
        }
        ClientError::Unreachable {
            server: self.server_name(),
            detail,
        }
    }
}

/// Parses `--server`: an http(s) URL, with a path prefix allowed (a server behind a proxy).
fn parse_server_url(text: &str) -> Result<Url, ClientError> {
    let bad = |reason: String| ClientError::BadServerUrl {
        url: text.to_owned(),
        reason,
    };
    let url = Url::parse(text.trim()).map_err(|err| bad(err.to_string()))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        "http" | "https" => Err(bad("it has no host".to_owned())),
        other => Err(bad(format!(
            "the scheme is {other:?}; use http://HOST:PORT or https://HOST"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_must_be_http_with_a_host() {
        assert!(parse_server_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_server_url("https://bots.example.com/botflow/").is_ok());
        let err = parse_server_url("127.0.0.1:8080").unwrap_err().to_string();
        assert!(err.contains("not an http(s) URL"), "{err}");
        let err = parse_server_url("ftp://example.com")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"ftp\""), "{err}");
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let token: AdminToken = "s3cret-admin".parse().unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn only_refusals_of_content_exit_with_1() {
        let refused = ClientError::Refused {
            status: 409,
            code: "conflict".into(),
            message: "taken".into(),
            diagnostics: Vec::new(),
        };
        assert_eq!(refused.exit_code(), ExitCode::from(1));
        assert_eq!(ClientError::NoToken.exit_code(), ExitCode::from(2));
        let unauthorized = ClientError::Unauthorized {
            server: "http://x".into(),
            message: "wrong bearer token".into(),
        };
        assert_eq!(unauthorized.exit_code(), ExitCode::from(2));
    }
}
