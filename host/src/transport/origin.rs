//! `Host` and `Origin` validation, one middleware for every MCP route (`/mcp`, `/sse`,
//! `/messages`): the DNS-rebinding and cross-site defence.
//!
//! `Host` must be a loopback name or one of `--allowed-hosts` (403 otherwise). `Origin`, which
//! only browsers send, must be absent, the server's own loopback origin (`http://localhost:PORT`,
//! `http://127.0.0.1:PORT`, `http://[::1]:PORT` as in the `Host` header), or one of
//! `--allowed-origins` (403 otherwise). Knows nothing about tokens or sessions.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::LOOPBACK_HOSTS;
use super::host_check::AllowedHosts;

/// The accepted `Host` names and `Origin` values.
#[derive(Debug, Clone)]
pub(crate) struct Fences {
    pub(crate) hosts: AllowedHosts,
    /// Exact origins (`scheme://host[:port]`, lowercase); `scheme://host:*` accepts any port.
    origins: Arc<Vec<String>>,
}

impl Fences {
    pub(crate) fn new(hosts: AllowedHosts, origins: &[String]) -> Self {
        let origins = origins.iter().map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase()).collect();
        Self { hosts, origins: Arc::new(origins) }
    }

    fn allows_origin(&self, origin: &str, host_header: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        let host_header = host_header.to_ascii_lowercase();
        // Same origin as the request on a loopback name: a page served by this very server.
        if origin == format!("http://{host_header}")
            && LOOPBACK_HOSTS.contains(&super::host_check::host_name(&host_header))
        {
            return true;
        }
        self.origins.iter().any(|allowed| match allowed.strip_suffix(":*") {
            Some(prefix) => origin
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port)),
            None => *allowed == origin,
        })
    }
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) async fn require_allowed_host_and_origin(
    State(fences): State<Fences>,
    request: Request,
    next: Next,
) -> Response {
    let Some(host) = request.headers().get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return (StatusCode::FORBIDDEN, "Host header required\n").into_response();
    };
    if !fences.hosts.allows(host) {
        return (StatusCode::FORBIDDEN, "Host not allowed\n").into_response();
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|origin| fences.allows_origin(origin, host));
        if !allowed {
            tracing::info!(origin = ?origin, "refused a request from a foreign Origin");
            return (StatusCode::FORBIDDEN, "Origin not allowed\n").into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_loopback_and_listed_origins_pass() {
        let hosts = AllowedHosts::new(vec!["localhost".into(), "127.0.0.1".into(), "::1".into(), "sanctum".into()]);
        let fences = Fences::new(hosts, &["https://app.example.com".into(), "http://tools.example.com:*".into()]);
        assert!(fences.allows_origin("http://127.0.0.1:8000", "127.0.0.1:8000"));
        assert!(fences.allows_origin("http://localhost:8000", "localhost:8000"));
        assert!(fences.allows_origin("http://[::1]:8000", "[::1]:8000"));
        assert!(!fences.allows_origin("http://localhost:9999", "localhost:8000"), "another local port");
        assert!(!fences.allows_origin("http://sanctum:8000", "sanctum:8000"), "same origin, not loopback");
        assert!(!fences.allows_origin("http://evil.example.com", "127.0.0.1:8000"));
        assert!(!fences.allows_origin("null", "127.0.0.1:8000"));
        assert!(fences.allows_origin("https://app.example.com", "sanctum:8000"));
        assert!(fences.allows_origin("https://APP.example.com", "sanctum:8000"));
        assert!(fences.allows_origin("http://tools.example.com:3000", "sanctum:8000"));
        assert!(fences.allows_origin("http://tools.example.com", "sanctum:8000"));
        assert!(!fences.allows_origin("http://tools.example.com.evil.io", "sanctum:8000"));
    }
}
