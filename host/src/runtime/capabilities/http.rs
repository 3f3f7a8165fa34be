//! Outgoing HTTP (`wasi:http/outgoing-handler`), sent by the host itself after vetting.
//!
//! For every request: the scheme, host and port must match a grant exactly; the host resolves
//! the name and refuses the request if *any* resolved address is non-public (unless the grant
//! allows that range); the connection goes to a vetted address, with TLS verified against the
//! original name. Redirects are not followed by the host: a plugin that follows one makes a
//! new request, vetted the same way. No proxy environment is read. Connect and first-byte time
//! are limited, and the response body is capped. A granted secret is added here, after the
//! plugin built the request, so the plugin never sees it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::Scheme;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::audit::{AuditRecord, CapabilityOutcome};
use crate::model::{HttpGrant, SecretPlace};
use crate::runtime::sandbox::CallScope;

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendResult = Result<(http::Response<WasiBody>, IoFuture), Error>;

/// The per-call hooks wasi-http calls for every outgoing request.
pub(crate) struct EgressHooks {
    pub(crate) scope: Arc<CallScope>,
}

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _response_errors: IoFuture,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let site = Arc::clone(&self.scope);
        Box::new(async move {
            let started = Instant::now();
            let request_uri = request.uri().clone();
            let target = Target::of(request.uri());
            let result = send(&site, request, target.as_ref()).await;
            let outcome = match &result {
                Ok((response, _)) => CapabilityOutcome::Responded { status: response.status().as_u16() },
                Err(Refused::Denied(rule)) => CapabilityOutcome::Denied { rule: rule.clone() },
                Err(Refused::Failed(error)) => CapabilityOutcome::Failed { reason: error.to_string() },
            };
            let label = requested(&request_uri);
            if let CapabilityOutcome::Denied { rule } = &outcome {
                // wasi-http can only tell the guest "denied"; the host names the rule in its log
                // and appends it to the call's tool error.
                tracing::warn!(plugin = %site.plugin, target = %label, %rule, "http request denied");
                site.record_denial(format!("HTTP request to {label} denied: {rule}"));
            }
            site.audit.record(&AuditRecord::Capability {
                plugin: &site.plugin,
                plugin_sha256: &site.plugin_sha256,
                tool: &site.tool,
                kind: "http",
                target: &label,
                outcome,
                duration_ms: started.elapsed().as_secs_f64() * 1e3,
            });
            result.map_err(|refused| match refused {
                Refused::Denied(_) => Error::HttpRequestDenied,
                Refused::Failed(error) => error,
            })
        })
    }
}

enum Refused {
    /// Policy said no; the string is the rule, for the audit record.
    Denied(String),
    Failed(Error),
}

/// What the plugin asked for, as it wrote it: `scheme://authority`, for the audit trail and the
/// denial message (the operator sees exactly what was requested, not what it was read as). Cut
/// to a bounded length: it is the plugin's text.
fn requested(uri: &http::Uri) -> String {
    const MAX: usize = 300;
    let mut text = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        (None, Some(authority)) => authority.to_string(),
        _ => "(no authority)".to_owned(),
    };
    crate::runtime::truncate_utf8(&mut text, MAX);
    text
}

/// Where a request is going: only these three parts decide whether it is granted.
struct Target {
    scheme: String,
    host: String,
    port: u16,
}

impl Target {
    fn of(uri: &http::Uri) -> Result<Self, String> {
        let scheme = uri.scheme().ok_or("the URL has no scheme")?;
        let default_port = if *scheme == Scheme::HTTPS {
            443
        } else if *scheme == Scheme::HTTP {
            80
        } else {
            return Err(format!("scheme {scheme} is not http or https"));
        };
        let host = uri.host().ok_or("the URL has no host")?;
        // `user@host`: refused rather than stripped. The user-info would otherwise reach the
        // destination in the Host header and in what a plugin or a log believes the target is.
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err("the URL carries user-info (`user@host`); send credentials through a granted secret".into());
        }
        Ok(Self {
            scheme: scheme.as_str().to_owned(),
            host: host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(default_port),
        })
    }

    fn label(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    /// The Host header for this target: exactly the granted name, with the port unless it is
    /// the scheme's default (whatever spelling of the authority the plugin used).
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default { host } else { format!("{host}:{}", self.port) }
    }
}

async fn send(
    site: &CallScope,
    mut request: http::Request<WasiBody>,
    target: Result<&Target, &String>,
) -> Result<(http::Response<WasiBody>, IoFuture), Refused> {
    let target = target.map_err(|e| Refused::Denied(e.clone()))?;
    let grant = site
        .grants
        .http
        .iter()
        .find(|g| g.scheme == target.scheme && g.host == target.host && g.port == target.port)
        .ok_or_else(|| Refused::Denied(format!("no http grant for {}", target.label())))?;
    let remaining = site.remaining_budget();
    let timeout = grant.timeout.min(remaining);
    let addresses = resolve(target, timeout).await?;
    for address in &addresses {
        if let Some(reason) = crate::egress::refusal(address.ip(), &grant.allowed_ranges) {
            return Err(Refused::Denied(format!("{} resolves to {reason}", target.host)));
        }
    }
    let stream = connect(&addresses, timeout).await?;
    inject_secret(grant, &mut request)?;
    let host = http::HeaderValue::try_from(target.host_header()).map_err(|_| failed(Error::HttpRequestUriInvalid))?;
    request.headers_mut().insert(http::header::HOST, host);
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    *request.uri_mut() =
        http::Uri::builder().path_and_query(path).build().map_err(|_| failed(Error::HttpRequestUriInvalid))?;

    let response = if target.scheme == "https" {
        let tls = tls_connect(&target.host, stream).await?;
        exchange(TokioIo::new(tls), request, timeout, remaining).await?
    } else {
        exchange(TokioIo::new(stream), request, timeout, remaining).await?
    };
    let limit = grant.max_response_bytes;
    let response = response.map(|body| {
        Limited::new(body, limit)
            .map_err(move |e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    Error::HttpResponseBodySize(Some(limit as u64))
                } else {
                    Error::InternalError(Some(e.to_string()))
                }
            })
            .boxed_unsync()
    });
    Ok((response, Box::new(async { Ok(()) })))
}

fn failed(error: Error) -> Refused {
    Refused::Failed(error)
}

async fn resolve(target: &Target, timeout: Duration) -> Result<Vec<SocketAddr>, Refused> {
    if let Ok(ip) = target.host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    match tokio::time::timeout(timeout, lookup).await {
        Err(_) => Err(failed(Error::DnsTimeout)),
        Ok(Err(_)) => Err(failed(Error::DnsError { rcode: Some("name not resolved".into()), info_code: None })),
        Ok(Ok(addresses)) => {
            let addresses: Vec<SocketAddr> = addresses.collect();
            if addresses.is_empty() { Err(failed(Error::DestinationNotFound)) } else { Ok(addresses) }
        }
    }
}

/// Connect to the first vetted address that answers. The name is never resolved again, so a
/// DNS answer cannot change between the check and the connection.
async fn connect(addresses: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Refused> {
    let mut last = Error::ConnectionRefused;
    for address in addresses {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(_)) => last = Error::ConnectionRefused,
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    Err(failed(last))
}

/// The process's one client TLS configuration (ring, webpki roots), shared with the host's own
/// outgoing requests.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Refused> {
    crate::egress::tls_client_config().ok_or_else(|| failed(Error::TlsProtocolError))
}

async fn tls_connect(host: &str, stream: TcpStream) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Refused> {
    let name =
        rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| failed(Error::HttpRequestUriInvalid))?;
    tokio_rustls::TlsConnector::from(tls_config()?)
        .connect(name, stream)
        .await
        .map_err(|_| failed(Error::TlsCertificateError))
}

async fn exchange<T>(
    io: TokioIo<T>,
    request: http::Request<WasiBody>,
    first_byte: Duration,
    remaining: Duration,
) -> Result<http::Response<Incoming>, Refused>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = tokio::time::timeout(first_byte, hyper::client::conn::http1::handshake(io))
        .await
        .map_err(|_| failed(Error::ConnectionTimeout))?
        .map_err(|e| failed(Error::from(e)))?;
    // The connection lives at most as long as the call may.
    tokio::spawn(async move {
        let _ = tokio::time::timeout(remaining, connection).await;
    });
    tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| failed(Error::ConnectionReadTimeout))?
        .map_err(|e| failed(Error::from(e)))
}

fn inject_secret(grant: &HttpGrant, request: &mut http::Request<WasiBody>) -> Result<(), Refused> {
    let Some(secret) = &grant.secret else { return Ok(()) };
    match &secret.place {
        SecretPlace::Header { name, template } => {
            let value = template.replace("{secret}", &secret.value);
            let name = http::HeaderName::try_from(name.as_str()).map_err(|_| failed(Error::ConfigurationError))?;
            let mut value = http::HeaderValue::try_from(value).map_err(|_| failed(Error::ConfigurationError))?;
            value.set_sensitive(true);
            request.headers_mut().insert(name, value);
        }
        SecretPlace::PathPrefix { template } => {
            let prefix = template.replace("{secret}", &secret.value);
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let joined = format!("{}{}", prefix.trim_end_matches('/'), path);
            let mut parts = request.uri().clone().into_parts();
            parts.path_and_query = Some(joined.parse().map_err(|_| failed(Error::HttpRequestUriInvalid))?);
            *request.uri_mut() = http::Uri::from_parts(parts).map_err(|_| failed(Error::HttpRequestUriInvalid))?;
        }
    }
    Ok(())
}
