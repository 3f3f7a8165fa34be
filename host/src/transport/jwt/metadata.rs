//! RFC 9728 protected-resource metadata (`GET /.well-known/oauth-protected-resource`, and its
//! `/mcp` and `/sse` forms) and the `WWW-Authenticate` challenge that points clients to it.
//!
//! Both name this server by an origin: the configured `resource`'s when there is one (what an
//! operator behind a TLS proxy must set), else `http://` and the request's `Host`, which is
//! client-controlled: it is used only when the allow-list accepts its name and it is a plain
//! `name[:port]` (no quote, slash or space can reach the URL or the header). Owns no token logic.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::JwtVerifier;
use crate::transport::host_check::{AllowedHosts, is_plain_authority};

/// The well-known path of RFC 9728; the resource's path, if any, follows it.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The configured `resource`: this server's canonical URL, and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceUrl {
    /// `scheme://authority`, lower-cased scheme, no trailing slash.
    origin: String,
    /// The URL as configured.
    resource: String,
}

impl ResourceUrl {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|_| "not a valid absolute URL".to_owned())?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            _ => return Err("the scheme must be https (or http)".to_owned()),
        };
        let authority = uri.authority().ok_or("the URL has no host")?;
        if authority.as_str().contains('@') {
            return Err("the URL carries user-info (`user@host`)".to_owned());
        }
        if !is_plain_authority(authority.as_str()) {
            return Err("the host must be a plain name or address, with an optional port".to_owned());
        }
        if uri.query().is_some() || url.contains('#') {
            return Err("a resource identifier has no query or fragment (RFC 8707)".to_owned());
        }
        if url.contains('"') || url.contains('\\') {
            return Err("quotes and backslashes cannot go in a WWW-Authenticate header".to_owned());
        }
        Ok(Self { origin: format!("{scheme}://{authority}"), resource: url.to_owned() })
    }
}

/// Which protected resource a request path belongs to, as a path: `/mcp` for Streamable HTTP,
/// `/sse` for the legacy transport (its `/messages` too), nothing for the rest (`/metrics`).
fn resource_path(path: &str) -> &'static str {
    if path == "/mcp" || path.starts_with("/mcp/") {
        "/mcp"
    } else if path.starts_with("/sse") || path.starts_with("/messages") {
        "/sse"
    } else {
        ""
    }
}

/// The origin to name for a request: the configured one, else `http://` + a plain `Host` (the
/// caller has checked it against the allow-list).
fn origin(verifier: &JwtVerifier, headers: &HeaderMap) -> Option<String> {
    if let Some(resource) = verifier.resource() {
        return Some(resource.origin.clone());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    is_plain_authority(host).then(|| format!("http://{}", host.to_ascii_lowercase()))
}

/// The `WWW-Authenticate` value of a 401 on `path`: `Bearer resource_metadata="…"`, with
/// `error="invalid_token"` when a token was presented and refused (RFC 6750 §3.1).
/// The request reached the auth middleware, so its `Host` already passed the allow-list.
pub(crate) fn challenge(verifier: &JwtVerifier, path: &str, headers: &HeaderMap, presented: bool) -> HeaderValue {
    let mut value = String::from("Bearer");
    if let Some(origin) = origin(verifier, headers) {
        value.push_str(&format!(" resource_metadata=\"{origin}{WELL_KNOWN}{}\"", resource_path(path)));
    }
    if presented {
        value.push_str(if value.len() > "Bearer".len() { ", " } else { " " });
        value.push_str("error=\"invalid_token\"");
    }
    // Built from checked parts only; the fallback is never expected.
    HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// What the metadata routes need.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub(crate) verifier: JwtVerifier,
    pub(crate) hosts: AllowedHosts,
}

/// `GET /.well-known/oauth-protected-resource[/mcp|/sse]`, open without a token: the public
/// description of how to get one. 403 for a `Host` the allow-list refuses when no `resource`
/// is configured (the document would name that host).
pub(crate) async fn serve(State(metadata): State<Metadata>, request: Request) -> Response {
    let headers = request.headers();
    if metadata.verifier.resource().is_none() {
        let allowed = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|host| metadata.hosts.allows(host) && is_plain_authority(host));
        if !allowed {
            return (StatusCode::FORBIDDEN, "host not allowed\n").into_response();
        }
    }
    let Some(origin) = origin(&metadata.verifier, headers) else {
        return (StatusCode::FORBIDDEN, "host not allowed\n").into_response();
    };
    let suffix = request.uri().path().strip_prefix(WELL_KNOWN).unwrap_or_default();
    let resource = match (suffix, metadata.verifier.resource()) {
        ("", Some(configured)) => configured.resource.clone(),
        ("", None) => format!("{origin}/mcp"),
        (suffix, _) => format!("{origin}{suffix}"),
    };
    let document = json!({
        "resource": resource,
        "authorization_servers": [metadata.verifier.issuer()],
        "bearer_methods_supported": ["header"],
    });
    (
        [
            // Public information, fetched by browser-based clients from another origin.
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
            (header::CACHE_CONTROL, HeaderValue::from_static("max-age=300")),
        ],
        axum::Json(document),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_urls_are_plain() {
        let url = ResourceUrl::parse("https://MCP.example.com:8443/mcp").expect("valid");
        assert_eq!(url.origin, "https://MCP.example.com:8443");
        for bad in [
            "ftp://example.com/mcp",
            "https://user@example.com/mcp",
            "https://example.com/mcp?x=1",
            "https://example.com/mcp#f",
            "/mcp",
            "https://example.com/m\"cp",
        ] {
            assert!(ResourceUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_transport_has_its_metadata_path() {
        assert_eq!(resource_path("/mcp"), "/mcp");
        assert_eq!(resource_path("/sse"), "/sse");
        assert_eq!(resource_path("/messages"), "/sse");
        assert_eq!(resource_path("/metrics"), "");
        assert_eq!(resource_path("/mcpx"), "");
    }
}
