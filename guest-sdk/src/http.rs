//! Outgoing HTTP requests through `wasi:http`, to the origins the operator granted.
//!
//! The host checks every request against the plugin's grants (scheme, host and port), vets the
//! addresses the name resolves to, adds any secret bound to that origin (an API token the plugin
//! never sees) and caps the response. A refused request comes back as [`HttpError`] carrying
//! the host's reason, written to be shown to the model as is.
//!
//! ```no_run
//! use sanctum_guest::http::Request;
//!
//! let response = Request::get("https://api.example.com/v1/status").header("accept", "application/json").send()?;
//! if response.is_success() {
//!     let status: serde_json::Value = response.json()?;
//! }
//! # Ok::<(), sanctum_guest::http::HttpError>(())
//! ```
//!
//! Calls block until the whole response has arrived; a tool is one synchronous call anyway.
//! Off wasm (native unit tests) every request fails with [`HttpError::Unavailable`].

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An HTTP request being built. Redirects are not followed: a 3xx is returned as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The request methods plugins use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Head => "HEAD",
        }
    }
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self { method, url: url.into(), headers: Vec::new(), body: Vec::new() }
    }

    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// `POST url`.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// Add a header (repeatable; names are case-insensitive).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Set a JSON body and `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, HttpError> {
        let body = serde_json::to_vec(value).map_err(|e| HttpError::Request(format!("body is not JSON: {e}")))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Send the request and read the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        imp::send(self)
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Headers in the order received, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, as capped by the operator's response limit.
    pub body: Vec<u8>,
}

impl Response {
    /// Status 200–299.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::Response(format!("status {}: body is not the expected JSON: {e}", self.status)))
    }
}

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The request could not be built (bad URL, header or body).
    Request(String),
    /// The host refused it or the exchange failed; the message includes the host's reason, e.g.
    /// which grant is missing.
    Failed(String),
    /// The response arrived but could not be read or parsed as asked.
    Response(String),
    /// There is no sanctum host (a native unit test).
    Unavailable,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Request(m) => write!(f, "invalid HTTP request: {m}"),
            Self::Failed(m) => write!(f, "HTTP request failed: {m}"),
            Self::Response(m) => write!(f, "unexpected HTTP response: {m}"),
            Self::Unavailable => f.write_str("HTTP is only available inside the sanctum host"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for crate::ToolError {
    fn from(error: HttpError) -> Self {
        crate::ToolError::new(error.to_string())
    }
}

#[cfg(target_family = "wasm")]
mod imp {
    use super::{HttpError, Request, Response};
    use wstd::http::{Body, Client};

    pub(super) fn send(request: Request) -> Result<Response, HttpError> {
        let mut builder = wstd::http::Request::builder().method(request.method.as_str()).uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(Body::from(request.body)).map_err(|e| HttpError::Request(e.to_string()))?;
        wstd::runtime::block_on(async move {
            // `{:#}` keeps the host's reason, which sits at the end of the error chain.
            let mut response = Client::new().send(request).await.map_err(|e| HttpError::Failed(format!("{e:#}")))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let body =
                response.body_mut().contents().await.map_err(|e| HttpError::Response(format!("{e:#}")))?.to_vec();
            Ok(Response { status, headers, body })
        })
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    use super::{HttpError, Request, Response};

    pub(super) fn send(_request: Request) -> Result<Response, HttpError> {
        Err(HttpError::Unavailable)
    }
}
