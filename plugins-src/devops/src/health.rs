//! The live health check: one GET of the app's health URL through the granted HTTP origin.

use sanctum_guest::http::Request;
use schemars::JsonSchema;
use serde::Serialize;

/// How much of the health endpoint's body is reported.
const MAX_BODY_CHARS: usize = 500;

/// What the health endpoint said, or why it could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct Health {
    /// The URL checked.
    pub(crate) url: String,
    /// True when the endpoint answered with a 2xx status.
    pub(crate) healthy: bool,
    /// The HTTP status, if the endpoint answered.
    pub(crate) status: Option<u16>,
    /// The start of the response body, or the reason there was none (e.g. a missing grant).
    pub(crate) detail: String,
}

pub(crate) fn check(url: &str) -> Health {
    match Request::get(url).header("accept", "application/json, text/plain").send() {
        Ok(response) => Health {
            url: url.to_owned(),
            healthy: response.is_success(),
            status: Some(response.status),
            detail: response.text().chars().take(MAX_BODY_CHARS).collect(),
        },
        Err(e) => Health { url: url.to_owned(), healthy: false, status: None, detail: e.to_string() },
    }
}
