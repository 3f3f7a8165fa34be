//! The admin plane end to end: the real server (built and run as `main` runs it) with its admin
//! socket and admin HTTP listener, calls held in its approvals book, and the real `sanctum
//! approvals` binary deciding them; the refusals (tokens, browsers, other users, paths that are
//! not ours) and the shutdown.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use sanctum::admin::{AdminError, AdminPlane, AdminSettings};
use sanctum::approvals::{ApprovalError, ApprovalRequest, Approvals, Pending, Verdict};
use sanctum::config::ServeArgs;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::{plugins_dir, sanctum_cli, shared_compile_cache};

const MCP_TOKEN: &str = "mcp-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";

/// A running server with both admin listeners.
struct Server {
    approvals: Approvals,
    socket: PathBuf,
    http: SocketAddr,
    mcp: SocketAddr,
    trigger: CancellationToken,
    served: JoinHandle<std::io::Result<()>>,
    dir: tempfile::TempDir,
}

impl Server {
    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// `sanctum approvals ARGS` against the socket.
    async fn cli(&self, args: &[&str]) -> Output {
        let socket = self.socket.display().to_string();
        run_cli(args, &[("SANCTUM_ADMIN_SOCKET", &socket)], None).await
    }

    /// `sanctum approvals ARGS --admin-url …` with `token`.
    async fn cli_http(&self, args: &[&str], token: &str) -> Output {
        let url = format!("http://{}", self.http);
        run_cli(args, &[("SANCTUM_ADMIN_URL", &url), ("SANCTUM_ADMIN_TOKEN", token)], None).await
    }
}

fn args_for(dir: &Path) -> ServeArgs {
    let mut args = ServeArgs::for_plugins(dir);
    args.source.store.cache_dir = Some(shared_compile_cache().display().to_string());
    args.audit = dir.join("audit.jsonl").display().to_string();
    args.front_door.auth_token = Some(MCP_TOKEN.into());
    args.approvals.admin_socket = Some(dir.join("admin").join("admin.sock").display().to_string());
    args.approvals.admin_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    args.approvals.admin_tokens =
        Some(toml::from_str(&format!("[[token]]\nprincipal = \"ops\"\nvalue = \"{ADMIN_TOKEN}\"\n")).expect("tokens"));
    args
}

async fn start() -> Server {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let args = args_for(dir.path());
    let app = sanctum::app::build(&args).await.expect("app builds");
    let approvals = app.approvals.clone();
    let socket = app.admin.socket_path().expect("a socket").to_owned();
    let http = app.admin.http_addr().expect("an admin listener");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mcp = listener.local_addr().expect("address");
    let trigger = CancellationToken::new();
    let served = tokio::spawn(sanctum::app::run(listener, app, trigger.clone().cancelled_owned()));
    Server { approvals, socket, http, mcp, trigger, served, dir }
}

async fn run_cli(args: &[&str], env: &[(&str, &str)], uid: Option<u32>) -> Output {
    let mut command = sanctum_cli();
    for variable in ["SANCTUM_ADMIN_SOCKET", "SANCTUM_ADMIN_URL", "SANCTUM_ADMIN_TOKEN", "SANCTUM_CONFIG"] {
        command.env_remove(variable);
    }
    command.arg("approvals").args(args).envs(env.iter().copied());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    tokio::process::Command::from(command).output().await.expect("runs sanctum")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn request(n: usize) -> ApprovalRequest {
    ApprovalRequest {
        principal: Some("letta".into()),
        agent_id: Some(format!("agent-{n}")),
        tool: "echo__echo".into(),
        arguments: json!({"text": format!("deploy number {n}")}),
        rule: "echo needs a human".into(),
    }
}

fn metrics() -> sanctum::metrics::Metrics {
    sanctum::metrics::Metrics::new()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_list_show_approve_and_deny_over_the_socket_and_http() {
    let server = start().await;
    assert_eq!(mode(&server.socket), 0o600, "the socket is the user's alone");
    assert_eq!(mode(server.socket.parent().expect("dir")), 0o700, "in a private directory");

    let first = server.approvals.submit(request(1)).expect("held");
    let second = server.approvals.submit(request(2)).expect("held");
    let (id1, id2) = (first.id().to_owned(), second.id().to_owned());
    let first = tokio::spawn(first.verdict());
    let second = tokio::spawn(second.verdict());

    let listed = server.cli(&["list"]).await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    assert!(text.contains(&id1) && text.contains(&id2) && text.contains("echo__echo for letta"), "{text}");
    assert!(text.contains(r#"{"text":"deploy number 1"}"#), "arguments shown: {text}");
    let json: Value = serde_json::from_slice(&server.cli(&["list", "--json"]).await.stdout).expect("JSON");
    assert_eq!(json["approvals"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["approvals"][0]["arguments"], json!({"text": "deploy number 1"}));

    let shown = server.cli(&["show", &id2]).await;
    assert!(stdout(&shown).contains("\"text\": \"deploy number 2\"") && stdout(&shown).contains("agent-2"));

    let approved = server.cli(&["approve", &id1]).await;
    assert!(approved.status.success(), "{}", stderr(&approved));
    assert!(stdout(&approved).starts_with(&format!("approved {id1}")), "{}", stdout(&approved));
    let Verdict::Approved { by, call } = first.await.expect("joins") else { panic!("approved") };
    assert_eq!(by, format!("unix:uid={}", my_uid()));
    assert_eq!(call.arguments(), &json!({"text": "deploy number 1"}), "exactly what was shown");
    server.approvals.ran(&call, "ok");

    let denied = server.cli_http(&["deny", &id2, "--reason", "not on a Friday"], ADMIN_TOKEN).await;
    assert!(denied.status.success(), "{}", stderr(&denied));
    let Verdict::Denied { by, reason } = second.await.expect("joins") else { panic!("denied") };
    assert_eq!((by.as_str(), reason.as_str()), ("token:ops", "not on a Friday"));

    // Decided once only; an unknown id is an error too; both exit non-zero with a sentence.
    let again = server.cli(&["deny", &id1, "--reason", "late"]).await;
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains(&format!("approval {id1} was already decided (ran by unix:uid=")),
        "{}",
        stderr(&again)
    );
    let unknown = server.cli(&["approve", "ZZZZ-1"]).await;
    assert!(!unknown.status.success() && stderr(&unknown).contains("unknown or already gone; nothing ran"));
    let empty = server.cli_http(&["list"], ADMIN_TOKEN).await;
    assert_eq!(stdout(&empty), "no calls are waiting for approval\n");

    let steps: Vec<(String, String)> = server
        .audit()
        .into_iter()
        .filter(|r| r["event"] == "approval")
        .map(|r| (r["id"].as_str().unwrap_or_default().to_owned(), r["step"].as_str().unwrap_or_default().to_owned()))
        .collect();
    for expected in [(&id1, "requested"), (&id1, "approved"), (&id1, "ran"), (&id2, "requested"), (&id2, "denied")] {
        assert!(steps.contains(&(expected.0.clone(), expected.1.to_owned())), "{expected:?} in {steps:?}");
    }
    let audit = std::fs::read_to_string(server.dir.path().join("audit.jsonl")).expect("audit");
    assert!(!audit.contains("deploy number"), "argument values never reach the audit log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_wants_an_admin_token_and_no_browser() {
    let server = start().await;
    let pending = server.approvals.submit(request(1)).expect("held");
    let url = format!("http://{}/approvals/{}/approve", server.http, pending.id());
    let client = reqwest::Client::new();
    let post = |token: Option<&str>| {
        let request = client.post(&url);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    assert_eq!(post(None).send().await.expect("answer").status(), 401, "no token");
    assert_eq!(post(Some("wrong-token-0123456789abcdef")).send().await.expect("answer").status(), 401);
    assert_eq!(post(Some(MCP_TOKEN)).send().await.expect("answer").status(), 401, "an MCP token is not an admin token");
    let in_query = client.post(format!("{url}?token={ADMIN_TOKEN}")).send().await.expect("answer");
    assert_eq!(in_query.status(), 400, "tokens never in the URL");
    let browser = post(Some(ADMIN_TOKEN)).header("origin", "http://evil.example").send().await.expect("answer");
    assert_eq!(browser.status(), 403);
    let too_big = client
        .post(format!("http://{}/approvals/{}/deny", server.http, pending.id()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"reason": "x".repeat(64 * 1024)}))
        .send()
        .await
        .expect("answer");
    assert_eq!(too_big.status(), 400, "bodies are capped");
    assert_eq!(server.approvals.list().len(), 1, "nothing above decided anything");
    let wrong = server.cli_http(&["approve", pending.id()], MCP_TOKEN).await;
    assert!(!wrong.status.success() && stderr(&wrong).contains("401"), "{}", stderr(&wrong));
    // Nothing on the MCP listener decides anything: the admin routes do not exist there.
    let on_mcp = client
        .post(format!("http://{}/approvals/{}/approve", server.mcp, pending.id()))
        .bearer_auth(MCP_TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(on_mcp.status(), 404);
    assert_eq!(server.approvals.list().len(), 1, "nothing above decided anything");
    let right = post(Some(ADMIN_TOKEN)).send().await.expect("answer");
    assert_eq!(right.status(), 200);
    assert!(matches!(pending.verdict().await, Verdict::Approved { .. }));
    let gone = run_cli(&["list"], &[("SANCTUM_ADMIN_SOCKET", "/nonexistent/sanctum/admin.sock")], None).await;
    assert!(!gone.status.success());
    assert!(
        stderr(&gone).contains("is sanctum serving? looked at /nonexistent/sanctum/admin.sock"),
        "{}",
        stderr(&gone)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_is_refused_by_the_directory_and_by_the_peer_check() {
    if my_uid() != 0 {
        eprintln!("skipped: needs root to run the CLI as another user");
        return;
    }
    let binary = Path::new(env!("CARGO_BIN_EXE_sanctum"));
    let reachable = binary.ancestors().skip(1).all(|dir| mode(dir) & 0o001 != 0) && mode(binary) & 0o001 != 0;
    if !reachable {
        eprintln!("skipped: the sanctum binary is not reachable by another user");
        return;
    }
    let server = start().await;
    let _held = server.approvals.submit(request(1)).expect("held");
    let socket = server.socket.display().to_string();
    std::fs::set_permissions(server.dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let refused = run_cli(&["list"], &[("SANCTUM_ADMIN_SOCKET", &socket)], Some(65534)).await;
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("permission denied on the admin socket"), "{}", stderr(&refused));
    // An operator loosens the directory and the socket: the peer check still refuses.
    std::fs::set_permissions(server.socket.parent().expect("dir"), std::fs::Permissions::from_mode(0o711))
        .expect("chmod");
    std::fs::set_permissions(&server.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let refused =
        run_cli(&["approve", &server.approvals.list()[0].id], &[("SANCTUM_ADMIN_SOCKET", &socket)], Some(65534)).await;
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("uid 65534 may not use this server's admin socket"), "{}", stderr(&refused));
    assert_eq!(server.approvals.list().len(), 1, "still pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_approvals_are_listed_and_each_decided() {
    let server = start().await;
    let held: Vec<Pending> = (0..20).map(|n| server.approvals.submit(request(n)).expect("held")).collect();
    let ids: Vec<String> = held.iter().map(|p| p.id().to_owned()).collect();
    let waiters: Vec<JoinHandle<Verdict>> = held.into_iter().map(|p| tokio::spawn(p.verdict())).collect();
    let listed: Value = serde_json::from_slice(&server.cli(&["list", "--json"]).await.stdout).expect("JSON");
    let listed: Vec<&str> =
        listed["approvals"].as_array().expect("list").iter().filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>(), "all twenty, oldest first");
    let decisions = ids.iter().enumerate().map(|(n, id)| {
        let server = &server;
        async move {
            let output = if n % 2 == 0 {
                server.cli(&["approve", id]).await
            } else {
                server.cli_http(&["deny", id, "--reason", &format!("no {n}")], ADMIN_TOKEN).await
            };
            assert!(output.status.success(), "{id}: {}", stderr(&output));
        }
    });
    futures::future::join_all(decisions).await;
    for (n, waiter) in waiters.into_iter().enumerate() {
        match waiter.await.expect("joins") {
            Verdict::Approved { call, .. } if n % 2 == 0 => {
                assert_eq!(call.arguments(), &json!({"text": format!("deploy number {n}")}));
            }
            Verdict::Denied { reason, .. } if n % 2 == 1 => assert_eq!(reason, format!("no {n}")),
            other => panic!("call {n}: {other:?}"),
        }
    }
    assert!(server.approvals.list().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_expires_what_waits_and_removes_the_socket() {
    let server = start().await;
    let waiters: Vec<JoinHandle<Verdict>> =
        (0..3).map(|n| tokio::spawn(server.approvals.submit(request(n)).expect("held").verdict())).collect();
    server.trigger.cancel();
    for waiter in waiters {
        let Verdict::Expired { reason } = waiter.await.expect("joins") else { panic!("expired") };
        assert_eq!(reason, "the server is shutting down");
    }
    assert_eq!(server.approvals.submit(request(9)).map(|_| ()), Err(ApprovalError::Closed));
    tokio::time::timeout(Duration::from_secs(30), server.served).await.expect("stops").expect("joins").expect("serves");
    assert!(!server.socket.exists(), "the socket is removed on exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_what_it_cannot_serve_safely() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let refusal = |configure: &dyn Fn(&mut ServeArgs)| {
        let mut args = args_for(dir.path());
        configure(&mut args);
        async move { sanctum::app::build(&args).await.map(|_| ()).expect_err("refused").to_string() }
    };
    let private = dir.path().join("private");
    std::fs::create_dir(&private).expect("mkdir");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let not_socket = private.join("file.sock");
    std::fs::write(&not_socket, "x").expect("write");
    let error = refusal(&|args| args.approvals.admin_socket = Some(not_socket.display().to_string())).await;
    assert!(error.contains("exists and is not a socket"), "{error}");
    let open_dir = dir.path().join("open");
    std::fs::create_dir(&open_dir).expect("mkdir");
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let error =
        refusal(&|args| args.approvals.admin_socket = Some(open_dir.join("a.sock").display().to_string())).await;
    assert!(error.contains("is open to other users (mode 755)"), "{error}");
    let error = refusal(&|args| args.approvals.admin_tokens = None).await;
    assert!(error.contains("needs admin tokens"), "{error}");
    let error = refusal(&|args| args.front_door.auth_token = Some(ADMIN_TOKEN.into())).await;
    assert!(error.contains("an admin token ([[admin.token]]) equals an MCP token"), "{error}");

    // A live socket belongs to another server; a stale one is replaced.
    let path = private.join("admin.sock");
    let live = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let socket = path.display().to_string();
    let error = refusal(&|args| args.approvals.admin_socket = Some(socket.clone())).await;
    assert!(error.contains("another server is serving on it"), "{error}");
    drop(live);
    // At the default path (not chosen by the operator), a second server runs without a socket.
    let book = || Approvals::new(Default::default(), sanctum::audit::Audit::disabled(metrics()), metrics());
    let at = |socket_is_default| AdminSettings { socket: Some(path.clone()), socket_is_default, ..Default::default() };
    let stop = CancellationToken::new();
    let first = AdminPlane::start(at(true), book(), stop.clone()).await.expect("serves");
    let second = AdminPlane::start(at(true), book(), stop.clone()).await.expect("serves without a socket");
    assert_eq!((first.socket_path(), second.socket_path()), (Some(path.as_path()), None));
    let chosen = AdminPlane::start(at(false), book(), stop.clone()).await.map(|_| ()).expect_err("refused");
    assert!(matches!(chosen, AdminError::InUse { .. }), "{chosen}");
    stop.cancel();
    first.stopped().await;
    assert!(!path.exists(), "removed when serving ends");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists(), "a stale socket, left behind");
    let mut args = args_for(dir.path());
    args.approvals.admin_socket = Some(socket.clone());
    args.approvals.admin_listen = None;
    let app = sanctum::app::build(&args).await.expect("a stale socket is replaced");
    assert_eq!(app.admin.socket_path(), Some(path.as_path()));
}

/// A receiver for one webhook POST: the body it got, or `None` if nothing came in time.
async fn receive_one(listener: tokio::net::TcpListener, wait: Duration) -> Option<Value> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut stream, _) = tokio::time::timeout(wait, listener.accept()).await.ok()?.ok()?;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer).await.ok()?;
        received.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await.ok()?;
                return serde_json::from_str(body).ok();
            }
        }
        if read == 0 {
            return None;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_gets_a_summary_without_values_through_the_egress_checks() {
    for allowed in [true, false] {
        let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = receiver.local_addr().expect("address").port();
        let dir = plugins_dir(&["echo.wasm"], &[]);
        let mut args = args_for(dir.path());
        args.approvals.admin_listen = None;
        args.approvals.notify_url = Some(format!("http://127.0.0.1:{port}/hook?key=s3cret"));
        if allowed {
            args.approvals.notify_allowed_ranges = vec!["127.0.0.0/8".parse().expect("range")];
        }
        let app = sanctum::app::build(&args).await.expect("app builds");
        let pending = app.approvals.submit(request(7)).expect("held");
        let got = receive_one(receiver, Duration::from_secs(if allowed { 10 } else { 1 })).await;
        if !allowed {
            assert!(got.is_none(), "loopback is refused unless the operator allowed it: {got:?}");
            continue;
        }
        let got = got.expect("a notice");
        assert_eq!(got["event"], "approval_requested");
        assert_eq!(got["id"], pending.id());
        assert_eq!((got["tool"].as_str(), got["principal"].as_str()), (Some("echo__echo"), Some("letta")));
        assert_eq!(got["rule"], "echo needs a human");
        assert!(got["deadline_at"].as_f64().is_some());
        assert!(!got.to_string().contains("deploy number"), "no argument values: {got}");
    }
}
