//! Tool-call round trip through the whole stack, per transport: the real server in-process on
//! 127.0.0.1:0 with the bundled plugins, and rmcp's client calling `echo__echo` sequentially.
//!
//! Run: `cargo bench -p sanctum --bench roundtrip` (optionally `-- CALLS`). Prints a Markdown
//! table of median, p99 and calls per second at concurrency 1.

#![allow(clippy::print_stdout, unreachable_pub)]

#[path = "../tests/all/support/sse_client.rs"]
mod sse_client;

use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, Implementation, InitializeRequestParams, ProtocolVersion,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use sanctum::config::ServeArgs;
use tokio_util::sync::CancellationToken;

const WARM_UP: usize = 100;

fn client_info() -> InitializeRequestParams {
    InitializeRequestParams::new(ClientCapabilities::default(), Implementation::new("sanctum-bench", "0"))
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
}

async fn connect(base: &str, path: &str) -> RunningService<RoleClient, InitializeRequestParams> {
    match path {
        "Streamable HTTP, handshake session" => {
            client_info().serve(StreamableHttpClientTransport::from_uri(format!("{base}/mcp"))).await.expect("connect")
        }
        "Streamable HTTP, stateless 2026-07-28" => {
            let mode = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
            let transport = StreamableHttpClientTransport::from_uri(format!("{base}/mcp"));
            client_info().serve_with_lifecycle(transport, mode).await.expect("connect")
        }
        _ => client_info().serve(sse_client::connect(&format!("{base}/sse")).await).await.expect("connect"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::main]
async fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let shutdown = CancellationToken::new();
    let app = sanctum::app::build(&ServeArgs::for_plugins(plugins), shutdown.clone()).await.expect("app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(sanctum::transport::serve(listener, app.router, shutdown.clone()));

    println!("| transport | calls | median | p99 | calls/s |");
    println!("|---|---|---|---|---|");
    for path in ["Legacy SSE", "Streamable HTTP, handshake session", "Streamable HTTP, stateless 2026-07-28"] {
        let client = connect(&base, path).await;
        let mut args = serde_json::Map::new();
        args.insert("text".into(), "hello".into());
        let request = CallToolRequestParams::new("echo__echo").with_arguments(args);
        for _ in 0..WARM_UP {
            client.call_tool(request.clone()).await.expect("call");
        }
        let mut samples = Vec::with_capacity(calls);
        let started = Instant::now();
        for _ in 0..calls {
            let t = Instant::now();
            let result = client.call_tool(request.clone()).await.expect("call");
            samples.push(t.elapsed());
            assert_eq!(result.is_error, Some(false));
        }
        let total = started.elapsed();
        samples.sort_unstable();
        println!(
            "| {path} | {calls} | {:.3} ms | {:.3} ms | {:.0} |",
            percentile(&samples, 0.5).as_secs_f64() * 1e3,
            percentile(&samples, 0.99).as_secs_f64() * 1e3,
            calls as f64 / total.as_secs_f64()
        );
        let _ = client.cancel().await;
    }
    shutdown.cancel();
}
