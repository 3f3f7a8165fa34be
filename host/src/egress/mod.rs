//! The host's own outgoing HTTP, vetted like a plugin's: a leaf any layer may use (the front
//! door fetches its JWKS through it; the runtime's `wasi:http` hook shares its address check and
//! TLS configuration).
//!
//! Every request resolves the name once, refuses it if *any* resolved address is non-public
//! ([`refusal`], unless the operator allowed that range), and connects to a vetted address, so a
//! second DNS answer can never steer the connection elsewhere. `https` is verified against the
//! name in the URL with the webpki roots (no system store, no proxy environment). Redirects are
//! returned to the caller, never followed. The whole exchange, connection to last body byte, has
//! one deadline, and the body is capped in bytes.
//!
//! Owns outgoing connections only; it must not import any layer (it is a leaf), and it never
//! logs: the caller knows what a request carried and what may be said about it.

mod address;

pub use address::refusal;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Longest URL accepted: what a URL could reasonably need, so error texts and headers stay small.
const MAX_URL_BYTES: usize = 2048;

/// What one request may cost and where it may go.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The whole exchange: resolution, connection, TLS, request, headers and body. A server
    /// that trickles its answer cannot hold the caller longer than this.
    pub timeout: Duration,
    /// Largest response body read; a larger one is an error, not a truncation (a truncated
    /// document would parse as something else, or not at all, later).
    pub max_response_bytes: usize,
    /// Non-public ranges the operator allowed for this destination (an internal identity
    /// provider, a webhook receiver on the host). Empty: public addresses only.
    pub allowed_ranges: Vec<ipnet::IpNet>,
}

/// A response, read whole (within [`Limits::max_response_bytes`]).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a request got no response. Texts name the host, never the path or query (a webhook URL
/// can carry a secret there).
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("the URL is not usable: {0}")]
    Url(&'static str),
    #[error("{host} resolves to {reason}; allow its range if it is meant to be reached")]
    Refused { host: String, reason: &'static str },
    #[error("resolving {host}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("connecting to {host}")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no TLS client configuration could be built")]
    TlsConfig,
    #[error("TLS with {host}")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange with {host}")]
    Http {
        host: String,
        #[source]
        source: hyper::Error,
    },
    #[error("encoding the request body")]
    Body(#[source] serde_json::Error),
    #[error("the response from {host} is larger than {limit} bytes")]
    TooLarge { host: String, limit: usize },
    #[error("no complete answer from {host} within {timeout:?}")]
    Timeout { host: String, timeout: Duration },
}

/// A vetted HTTP/1.1 client: each call opens one connection and closes it after the answer.
#[derive(Debug, Clone)]
pub struct Client {
    limits: Limits,
}

impl Client {
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// `GET url`, asking for JSON.
    pub async fn get(&self, url: &str) -> Result<Response, EgressError> {
        self.send(Method::GET, url, None).await
    }

    /// `POST url` with `body` as JSON.
    pub async fn post_json<T: serde::Serialize + ?Sized>(&self, url: &str, body: &T) -> Result<Response, EgressError> {
        let body = serde_json::to_vec(body).map_err(EgressError::Body)?;
        self.send(Method::POST, url, Some(Bytes::from(body))).await
    }

    async fn send(&self, method: Method, url: &str, body: Option<Bytes>) -> Result<Response, EgressError> {
        let target = Target::parse(url)?;
        let timeout = self.limits.timeout;
        match tokio::time::timeout(timeout, self.exchange(&target, method, body)).await {
            Ok(result) => result,
            Err(_) => Err(EgressError::Timeout { host: target.host, timeout }),
        }
    }

    async fn exchange(&self, target: &Target, method: Method, body: Option<Bytes>) -> Result<Response, EgressError> {
        let addresses = resolve(target).await?;
        for address in &addresses {
            if let Some(reason) = refusal(address.ip(), &self.limits.allowed_ranges) {
                return Err(EgressError::Refused { host: target.host.clone(), reason });
            }
        }
        let stream = connect(target, &addresses).await?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(target.path_and_query.as_str())
            .header(header::HOST, target.host_header())
            .header(header::USER_AGENT, concat!("sanctum/", env!("CARGO_PKG_VERSION")))
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|_| EgressError::Url("the URL does not make a valid request"))?;
        if target.https {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|_| EgressError::Url("the host is not a valid TLS server name"))?;
            let tls = tokio_rustls::TlsConnector::from(tls_client_config().ok_or(EgressError::TlsConfig)?)
                .connect(name, stream)
                .await
                .map_err(|source| EgressError::Tls { host: target.host.clone(), source })?;
            self.http1(target, TokioIo::new(tls), request).await
        } else {
            self.http1(target, TokioIo::new(stream), request).await
        }
    }

    async fn http1<T>(
        &self,
        target: &Target,
        io: TokioIo<T>,
        request: http::Request<Full<Bytes>>,
    ) -> Result<Response, EgressError>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let http = |source| EgressError::Http { host: target.host.clone(), source };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(http)?;
        // The connection task lives at most as long as the whole exchange may.
        let deadline = self.limits.timeout;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(deadline, connection).await;
        });
        let response = sender.send_request(request).await.map_err(http)?;
        let (parts, incoming) = response.into_parts();
        let limit = self.limits.max_response_bytes;
        let too_large = || EgressError::TooLarge { host: target.host.clone(), limit };
        let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        let body = Limited::new(incoming, limit).collect().await.map_err(|e| match e.downcast::<hyper::Error>() {
            Ok(source) => http(*source),
            Err(_) => too_large(),
        })?;
        Ok(Response { status: parts.status, headers: parts.headers, body: body.to_bytes() })
    }
}

/// One client TLS configuration for the process (the root store is built once): ring, the
/// safe default protocol versions, the webpki roots. `None` if it cannot be built.
pub fn tls_client_config() -> Option<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            let config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .ok()?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            Some(Arc::new(config))
        })
        .clone()
}

/// Where a request goes, read from its URL once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    https: bool,
    /// Lower case, IPv6 without brackets.
    host: String,
    port: u16,
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, EgressError> {
        if url.len() > MAX_URL_BYTES {
            return Err(EgressError::Url("longer than 2048 bytes"));
        }
        let uri: http::Uri = url.parse().map_err(|_| EgressError::Url("not a valid absolute URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(EgressError::Url("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or(EgressError::Url("the URL has no host"))?;
        // `user@host` is refused rather than stripped: it would reach the destination and any
        // log as part of what the target seems to be.
        if authority.as_str().contains('@') {
            return Err(EgressError::Url("the URL carries user-info (`user@host`)"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if host.is_empty() {
            return Err(EgressError::Url("the URL has no host"));
        }
        Ok(Self {
            https,
            host,
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        })
    }

    /// The Host header: the name from the URL, with the port unless it is the scheme's default.
    fn host_header(&self) -> HeaderValue {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let default = if self.https { 443 } else { 80 };
        let text = if self.port == default { host } else { format!("{host}:{}", self.port) };
        // The host came out of a parsed URI, so it is valid header text.
        HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

async fn resolve(target: &Target) -> Result<Vec<SocketAddr>, EgressError> {
    if let Ok(ip) = target.host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|source| EgressError::Resolve { host: target.host.clone(), source })?
        .collect();
    if addresses.is_empty() { Err(EgressError::NoAddress { host: target.host.clone() }) } else { Ok(addresses) }
}

/// Connect to the first vetted address that answers; the name is never resolved again.
async fn connect(target: &Target, addresses: &[SocketAddr]) -> Result<TcpStream, EgressError> {
    let mut last = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(EgressError::Connect { host: target.host.clone(), source: last })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn client(allowed: &[&str], max: usize) -> Client {
        Client::new(Limits {
            timeout: Duration::from_secs(2),
            max_response_bytes: max,
            allowed_ranges: allowed.iter().map(|r| r.parse().expect("cidr")).collect(),
        })
    }

    /// A one-shot HTTP server on loopback: answers the first request with `response` and hands
    /// back what it received.
    async fn serve_once(response: &'static [u8]) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut received = Vec::new();
            let mut buffer = [0u8; 4096];
            // Read until the end of the headers, then whatever body arrived with them.
            while !received.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buffer).await.expect("read");
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buffer[..n]);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), socket.read(&mut buffer)).await {
                received.extend_from_slice(&buffer[..n]);
            }
            let _ = socket.write_all(response).await;
            received
        });
        (url, task)
    }

    #[test]
    fn urls_are_read_strictly() {
        let target = Target::parse("https://IdP.Example.com/jwks?x=1").expect("valid");
        assert_eq!((target.host.as_str(), target.port, target.https), ("idp.example.com", 443, true));
        assert_eq!(target.path_and_query, "/jwks?x=1");
        assert_eq!(Target::parse("http://[::1]:8080/").expect("valid").host_header(), "[::1]:8080");
        for bad in ["ftp://example.com/", "https://user@example.com/", "/relative", "https://", "not a url"] {
            assert!(matches!(Target::parse(bad), Err(EgressError::Url(_))), "{bad} is refused");
        }
        assert!(Target::parse(&format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES))).is_err());
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_its_range_is_allowed() {
        let (url, _server) = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
        let refused = client(&[], 1024).get(&url).await;
        assert!(matches!(refused, Err(EgressError::Refused { .. })), "{refused:?}");
        let response = client(&["127.0.0.1/32"], 1024).get(&url).await.expect("allowed");
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(&response.body[..], b"{}");
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        let result = client(&[], 1024).get("http://localhost:9/").await;
        assert!(matches!(result, Err(EgressError::Refused { .. })), "{result:?}");
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let (url, _server) =
            serve_once(b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\n\r\n").await;
        let response = client(&["127.0.0.1/32"], 1024).get(&url).await.expect("answered");
        assert_eq!(response.status, StatusCode::FOUND);
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_errors_declared_or_not() {
        let (url, _server) = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n").await;
        let declared = client(&["127.0.0.1/32"], 10).get(&url).await;
        assert!(matches!(declared, Err(EgressError::TooLarge { limit: 10, .. })), "{declared:?}");
        let (url, _server) = serve_once(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n20\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n0\r\n\r\n",
        )
        .await;
        let chunked = client(&["127.0.0.1/32"], 10).get(&url).await;
        assert!(matches!(chunked, Err(EgressError::TooLarge { .. })), "{chunked:?}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://127.0.0.1:{}/", listener.local_addr().expect("addr").port());
        let _held = tokio::spawn(async move {
            let accepted = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(accepted);
        });
        let mut client = client(&["127.0.0.1/32"], 1024);
        client.limits.timeout = Duration::from_millis(300);
        let result = client.get(&url).await;
        assert!(matches!(result, Err(EgressError::Timeout { .. })), "{result:?}");
    }

    #[tokio::test]
    async fn post_json_sends_the_body_with_its_type() {
        let (url, server) = serve_once(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        let response = client(&["127.0.0.1/32"], 1024)
            .post_json(&format!("{url}/hook"), &serde_json::json!({"approve": "x"}))
            .await
            .expect("answered");
        assert_eq!(response.status, StatusCode::NO_CONTENT);
        let received = String::from_utf8(server.await.expect("server")).expect("utf-8");
        assert!(received.starts_with("POST /hook HTTP/1.1\r\n"), "{received}");
        assert!(received.to_ascii_lowercase().contains("content-type: application/json"), "{received}");
        assert!(received.ends_with(r#"{"approve":"x"}"#), "{received}");
    }
}
