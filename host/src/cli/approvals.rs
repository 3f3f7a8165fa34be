//! `sanctum approvals list|show|approve|deny`: a client of a running server's admin plane,
//! over its Unix socket (default) or its admin HTTP listener (`--admin-url`, with the token in
//! `SANCTUM_ADMIN_TOKEN`). Returns what to print (text, or the server's JSON with `--json`);
//! every failure is an error with a sentence for the operator, so the command exits non-zero.
//! Owns the client side only: it loads no plugin and decides nothing itself.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::admin::api::{ApprovalList, DenyBody, ErrorBody};
use crate::approvals::{ApprovalState, ApprovalView};
use crate::config::{ApprovalsArgs, ApprovalsCommand, admin_socket};

/// The whole exchange: the server answers from memory, so only a stuck server takes longer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read: a full book of the largest arguments, with room to spare.
const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// Arguments longer than this are cut in `list` (`show` prints them whole).
const LIST_ARGUMENTS_CHARS: usize = 160;
/// The variable holding the admin token for `--admin-url` (never a flag: the process list is
/// public).
pub const ADMIN_TOKEN_VAR: &str = "SANCTUM_ADMIN_TOKEN";

/// Where the admin plane is.
enum Target {
    Socket(PathBuf),
    Http { authority: String, prefix: String, token: String },
}

/// Run the command and return what to print.
pub async fn run(args: &ApprovalsArgs) -> anyhow::Result<String> {
    let id_path = |id: &str, action: &str| -> anyhow::Result<String> {
        // Ids are `TAG-N`; anything else cannot name an entry and must not reach the URL.
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            bail!("{id:?} is not an approval id (like K7QD-3; see `sanctum approvals list`)");
        }
        Ok(format!("/approvals/{id}{action}"))
    };
    let (method, path, body) = match &args.command {
        ApprovalsCommand::List => (Method::GET, "/approvals".to_owned(), None),
        ApprovalsCommand::Show { id } => (Method::GET, id_path(id, "")?, None),
        ApprovalsCommand::Approve { id } => (Method::POST, id_path(id, "/approve")?, None),
        ApprovalsCommand::Deny { id, reason } => {
            (Method::POST, id_path(id, "/deny")?, Some(serde_json::to_vec(&DenyBody { reason: reason.clone() })?))
        }
    };
    let target = target(args)?;
    let (status, answer) = tokio::time::timeout(TIMEOUT, exchange(&target, method, &path, body))
        .await
        .map_err(|_| anyhow!("the server did not answer within {} s", TIMEOUT.as_secs()))??;
    if !status.is_success() {
        let message = serde_json::from_slice::<ErrorBody>(&answer)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&answer).trim().to_owned());
        bail!("{message} ({status})");
    }
    if args.admin.json {
        let value: Value = serde_json::from_slice(&answer).context("the server's answer is not JSON")?;
        return Ok(format!("{}\n", serde_json::to_string_pretty(&value)?));
    }
    Ok(match &args.command {
        ApprovalsCommand::List => {
            let list: ApprovalList = serde_json::from_slice(&answer).context("reading the server's answer")?;
            list_text(&list.approvals)
        }
        ApprovalsCommand::Show { .. } => show_text(&parse_view(&answer)?),
        ApprovalsCommand::Approve { .. } => {
            let view = parse_view(&answer)?;
            format!("approved {} ({}): it runs now, once, with the arguments shown\n", view.id, who_what(&view))
        }
        ApprovalsCommand::Deny { .. } => {
            let view = parse_view(&answer)?;
            let reason = view.reason.as_deref().unwrap_or_default();
            format!("denied {} ({}); the caller is told: {reason}\n", view.id, who_what(&view))
        }
    })
}

fn target(args: &ApprovalsArgs) -> anyhow::Result<Target> {
    let Some(url) = &args.admin.admin_url else {
        let path = admin_socket(args.admin.admin_socket.as_deref())
            .ok_or_else(|| anyhow!("the admin socket is `off`; give --admin-socket PATH or --admin-url URL"))?;
        return Ok(Target::Socket(path));
    };
    let uri: http::Uri = url.parse().with_context(|| format!("--admin-url {url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--admin-url must be http://HOST:PORT (the admin listener speaks plain HTTP; keep it on loopback)");
    }
    let authority = uri.authority().ok_or_else(|| anyhow!("--admin-url {url:?} names no host"))?.to_string();
    if authority.contains('@') {
        bail!("--admin-url must not carry credentials; put the token in {ADMIN_TOKEN_VAR}");
    }
    let token = std::env::var(ADMIN_TOKEN_VAR)
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow!("--admin-url needs an admin token in {ADMIN_TOKEN_VAR}"))?;
    Ok(Target::Http { authority, prefix: uri.path().trim_end_matches('/').to_owned(), token })
}

/// One request, one answer (status and body).
async fn exchange(
    target: &Target,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let builder = Request::builder().method(method).header(header::ACCEPT, "application/json");
    let builder = match &body {
        Some(_) => builder.header(header::CONTENT_TYPE, "application/json"),
        None => builder,
    };
    let body = Full::new(Bytes::from(body.unwrap_or_default()));
    match target {
        Target::Socket(socket) => {
            let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => anyhow!(
                    "cannot reach the admin socket: is sanctum serving? looked at {} (see --admin-socket)",
                    socket.display()
                ),
                std::io::ErrorKind::PermissionDenied => anyhow!(
                    "permission denied on the admin socket {}: run as the server's user or root",
                    socket.display()
                ),
                _ => anyhow!("cannot connect to the admin socket {}: {e}", socket.display()),
            })?;
            let request = builder.uri(path).header(header::HOST, "localhost").body(body)?;
            send(stream, request).await
        }
        Target::Http { authority, prefix, token } => {
            let stream = tokio::net::TcpStream::connect(authority.as_str())
                .await
                .with_context(|| format!("cannot connect to the admin listener at {authority}: is sanctum serving?"))?;
            let request = builder
                .uri(format!("{prefix}{path}"))
                .header(header::HOST, authority.as_str())
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(body)?;
            send(stream, request).await
        }
    }
}

async fn send<S>(stream: S, request: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("talking to the admin plane")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "admin connection ended with an error");
        }
    });
    let response = sender.send_request(request).await.context("sending the request to the admin plane")?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow!("reading the admin plane's answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}

fn parse_view(answer: &[u8]) -> anyhow::Result<ApprovalView> {
    serde_json::from_slice(answer).context("reading the server's answer")
}

fn who_what(view: &ApprovalView) -> String {
    format!("{} for {}", view.tool, view.principal.as_deref().unwrap_or("anonymous"))
}

fn list_text(views: &[ApprovalView]) -> String {
    if views.is_empty() {
        return "no calls are waiting for approval\n".into();
    }
    let mut out = String::new();
    for view in views {
        let arguments = view.arguments.as_ref().map(crate::approvals::canonical_json).unwrap_or_default();
        let arguments = if arguments.chars().count() > LIST_ARGUMENTS_CHARS {
            format!("{}…", arguments.chars().take(LIST_ARGUMENTS_CHARS).collect::<String>())
        } else {
            arguments
        };
        out.push_str(&format!(
            "{}  {}  {}  {}\n    rule: {}\n    arguments: {arguments}\n",
            view.id,
            who_what(view),
            view.agent_id.as_deref().map(|a| format!("agent {a}")).unwrap_or_else(|| "no agent id".into()),
            expiry(view),
            view.rule,
        ));
    }
    out.push_str(&format!("{} waiting; `sanctum approvals approve ID` or `deny ID --reason TEXT`\n", views.len()));
    out
}

fn show_text(view: &ApprovalView) -> String {
    let mut out = format!("id:         {}\nstate:      {}", view.id, view.state);
    if view.state == ApprovalState::Pending {
        out.push_str(&format!(" ({})", expiry(view)));
    }
    out.push_str(&format!(
        "\ntool:       {}\nprincipal:  {}\nagent:      {}\nrule:       {}\n",
        view.tool,
        view.principal.as_deref().unwrap_or("anonymous"),
        view.agent_id.as_deref().map(|a| format!("{a} (asserted by the client)")).unwrap_or_else(|| "-".into()),
        view.rule,
    ));
    for (label, value) in [("decided by", &view.decided_by), ("reason", &view.reason), ("outcome", &view.outcome)] {
        if let Some(value) = value {
            out.push_str(&format!("{:<11} {value}\n", format!("{label}:")));
        }
    }
    out.push_str(&format!("arguments:  sha256 {}\n", view.arguments_sha256));
    match &view.arguments {
        Some(arguments) => {
            out.push_str(&serde_json::to_string_pretty(arguments).unwrap_or_default());
            out.push('\n');
        }
        None => out.push_str("(no longer held: only their hash is kept)\n"),
    }
    out
}

fn expiry(view: &ApprovalView) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let left = (view.deadline_at - now).max(0.0);
    format!("expires in {} s", left.round())
}
