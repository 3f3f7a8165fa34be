//! Clients that stop reading cost the server a bounded amount of memory. The real binary (so its
//! resident memory can be read from /proc) serves several legacy SSE sessions whose readers
//! never read, each flooded with calls returning 1 MiB and with `tools/list`; its RSS must stay
//! under N × (the per-session bound + one result) + a fixed slack, with no panic in its log,
//! while it keeps serving others. Their connections are closed once writing to them stalls.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::support::plugins_dir;

const SESSIONS: usize = 8;
/// The per-session bound (`transport::outbox::OUTPUT_LIMIT`) plus the one message that is
/// always accepted into an empty queue and one being written.
const PER_SESSION_BOUND: u64 = (4 + 2 + 2) << 20;
/// Allocator slack, the worker's pooled instance memory, buffers of calls in flight.
const SLACK: u64 = 96 << 20;

struct Server {
    child: Child,
    addr: String,
    /// Everything the server logged, read as it comes (a full pipe would block its logging).
    log: Arc<std::sync::Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let dir = plugins_dir(&["hostile.wasm", "echo.wasm"], &[]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_sanctum"))
            .args(["serve", "--port", "0", "--calls-per-minute", "0", "--audit", "off", "--pins", "off"])
            .args(["--cache-dir", "off", "--watch", "false", "--plugins"])
            .arg(dir.path())
            .env_remove("SANCTUM_POLICY")
            .env("SANCTUM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sanctum");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
        let addr = line.trim().rsplit("http://").next().expect("address").to_owned();
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().expect("lock");
                if log.len() < (4 << 20) {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        Self { child, addr, log, _dir: dir }
    }

    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        kib.unwrap_or(0) * 1024
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POST `body` until the session is gone (404) or `until`; returns how many were accepted.
async fn flood(http: reqwest::Client, url: String, body: Value, until: Instant, next_id: Arc<AtomicU64>) -> u64 {
    let mut accepted = 0;
    while Instant::now() < until {
        let mut body = body.clone();
        body["id"] = json!(next_id.fetch_add(1, Ordering::Relaxed));
        let Ok(response) = http.post(&url).json(&body).send().await else { break };
        match response.status().as_u16() {
            202 => accepted += 1,
            404 => break,
            503 => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("unexpected status {other}"),
        }
    }
    accepted
}

#[tokio::test]
async fn stalled_readers_cost_at_most_their_bound_and_their_connections_are_closed() {
    let server = Server::start();
    let http = reqwest::Client::new();
    // Warm up: the first calls size the worker's pools.
    let probe = crate::support::sse_client::connect(&server.url("/sse")).await;
    use rmcp::ServiceExt as _;
    let client = crate::support::Recorder::default().serve(probe).await.expect("handshake");
    for _ in 0..3 {
        client.call_tool(crate::support::call("hostile__flood", json!({"kib": 1024}))).await.expect("call");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = server.rss();

    let mut sockets = Vec::new();
    let mut floods = Vec::new();
    let until = Instant::now() + Duration::from_secs(12);
    let ids = Arc::new(AtomicU64::new(10));
    for _ in 0..SESSIONS {
        let (socket, path) =
            crate::support::stalled::stalled_sse_session(server.addr.parse().expect("addr"), None).await;
        let url = server.url(&path);
        sockets.push(socket);
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "stalled", "version": "0"}}});
        assert_eq!(http.post(&url).json(&init).send().await.expect("POST").status(), 202);
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(http.post(&url).json(&initialized).send().await.expect("POST").status(), 202);
        let big = json!({"jsonrpc": "2.0", "method": "tools/call",
                         "params": {"name": "hostile__flood", "arguments": {"kib": 1024}}});
        let list = json!({"jsonrpc": "2.0", "method": "tools/list"});
        for body in [big.clone(), big, list] {
            floods.push(tokio::spawn(flood(http.clone(), url.clone(), body, until, Arc::clone(&ids))));
        }
    }
    let mut peak = baseline;
    while floods.iter().any(|f| !f.is_finished()) {
        peak = peak.max(server.rss());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut accepted = 0;
    for flood in floods {
        accepted += flood.await.expect("flood task");
    }
    let bound = SESSIONS as u64 * PER_SESSION_BOUND + SLACK;
    eprintln!(
        "stalled readers: {SESSIONS} sessions, {accepted} requests accepted; RSS baseline {} MiB, peak {} MiB \
         (+{} MiB; bound +{} MiB)",
        baseline >> 20,
        peak >> 20,
        (peak - baseline) >> 20,
        bound >> 20
    );
    assert!(accepted > SESSIONS as u64, "the floods were accepted before the sessions filled up");
    assert!(peak - baseline < bound, "RSS grew by {} MiB", (peak - baseline) >> 20);

    // Everyone else is still served.
    let result = client.call_tool(crate::support::call("echo__echo", json!({"text": "still here"}))).await;
    assert_eq!(crate::support::text(&result.expect("call")), "still here");

    // The stalled connections are closed once their writes stall; reading what is left of
    // each then ends (an open connection would keep sending keep-alives forever).
    tokio::time::sleep(sanctum::transport::WRITE_STALL_TIMEOUT + Duration::from_secs(2)).await;
    for mut socket in sockets {
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut rest)).await;
        assert!(ended.is_ok(), "a stalled connection was left open");
    }
    drop(client);
    let log = server.log.lock().expect("lock").clone();
    assert!(!log.contains("panicked"), "a panic on the response path:\n{log}");
}
