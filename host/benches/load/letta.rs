//! The path Letta takes: a fresh session per operation. Letta 0.16 connects, sends
//! `initialize` and `notifications/initialized`, lists the tools or calls one, and closes, for
//! every operation, one operation at a time. So what such an operation costs is mostly session
//! set-up, tear-down and the tool list, not the sandbox.
//!
//! Two servers: the echo plugin alone (7 tools with `health`) and the bundled plugins (30+).
//! Against each, on legacy SSE and on Streamable HTTP with its handshake, at c = 1:
//! - operations of growing size: a bare session (connect, `initialize`, `initialized`, close),
//!   then with `tools/list`, with one `echo__echo` call, and with both (the Letta operation);
//! - a `tools/list` inside one warm session (the list alone), and a stateless 2026-07-28 one;
//! - set-up and tear-down apart: [`BATCH`] sessions opened with the server's CPU read before and
//!   after, then all closed and read again.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::load::{self, Caller, Charged, Outcome, Timing};
use crate::mcp::{Client, Transport};
use crate::procfs::CpuSample;
use crate::report::{LOAD_HEADERS, Report, load_columns, us};
use crate::server::{self, Options, Server};

/// The transports Letta uses: legacy SSE (its default for `mcp_servers` of type `sse`) and
/// Streamable HTTP with the handshake.
const TRANSPORTS: [Transport; 2] = [Transport::LegacySse, Transport::Session];
/// Sessions per set-up / tear-down batch.
const BATCH: usize = 200;
/// Let the server finish what a batch's last close started before reading its CPU.
const SETTLE: Duration = Duration::from_millis(300);
const ECHO_TOOL: &str = "echo__echo";
const ECHO_ARGUMENTS: &str = r#"{"text":"hello from letta"}"#;
const ECHO_TEXT: &str = "hello from letta";

/// What one operation does after `initialize` and before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Bare,
    List,
    Echo,
    /// What Letta does to call a tool.
    ListAndEcho,
    /// `tools/list` in a session that stays open (not a fresh-session operation); stateless,
    /// a `tools/list` on a kept connection.
    WarmList,
}

impl Operation {
    const ALL: [Self; 5] = [Self::Bare, Self::List, Self::Echo, Self::ListAndEcho, Self::WarmList];

    fn label(self) -> &'static str {
        match self {
            Self::Bare => "session: connect + initialize + close",
            Self::List => "session + tools/list",
            Self::Echo => "session + echo call",
            Self::ListAndEcho => "session + tools/list + echo call (Letta op)",
            Self::WarmList => "tools/list alone, on a warm connection and session (if any)",
        }
    }
}

/// One client doing one kind of operation over and over.
struct LettaClient {
    addr: SocketAddr,
    transport: Transport,
    operation: Operation,
    tools: usize,
    /// Only for [`Operation::WarmList`].
    warm: Option<Client>,
}

impl Caller for LettaClient {
    async fn call(&mut self) -> Result<(), String> {
        if let Some(client) = &mut self.warm {
            return check_list(&client.list_tools().await?, self.tools);
        }
        let mut client = Client::connect(self.addr, self.transport).await?;
        if matches!(self.operation, Operation::List | Operation::ListAndEcho) {
            check_list(&client.list_tools().await?, self.tools)?;
        }
        if matches!(self.operation, Operation::Echo | Operation::ListAndEcho) {
            check_echo(&client.call(ECHO_TOOL, ECHO_ARGUMENTS).await?)?;
        }
        client.close().await;
        Ok(())
    }
}

fn check_list(result: &Value, tools: usize) -> Result<(), String> {
    let listed = result.get("tools").and_then(Value::as_array).map_or(0, Vec::len);
    if listed == tools { Ok(()) } else { Err(format!("tools/list: {listed} tools, expected {tools}")) }
}

fn check_echo(result: &Value) -> Result<(), String> {
    let text = result.pointer("/content/0/text").and_then(Value::as_str);
    if result.get("isError") != Some(&Value::Bool(true)) && text == Some(ECHO_TEXT) {
        Ok(())
    } else {
        Err(format!("echo__echo: unexpected result {result}"))
    }
}

/// One measured operation kind.
struct Row {
    server: String,
    transport: Transport,
    operation: Operation,
    outcome: Outcome,
}

/// Set-up and tear-down CPU per session, from one batch.
struct Batch {
    server: String,
    transport: Transport,
    set_up: Option<Duration>,
    tear_down: Option<Duration>,
    coarse: bool,
    error: Option<String>,
}

/// Measure both servers and report. Returns how many operations failed.
pub(crate) async fn section(report: &mut Report, repo: &Path, scratch: &Path, timing: Timing) -> Result<usize, String> {
    let echo_only = scratch.join("plugins-echo");
    std::fs::create_dir_all(&echo_only).map_err(|e| e.to_string())?;
    std::fs::copy(repo.join("plugins/echo.wasm"), echo_only.join("echo.wasm"))
        .map_err(|e| format!("echo.wasm: {e}"))?;
    let servers = [("echo plugin", echo_only), ("bundled plugins", repo.join("plugins"))];

    let mut rows = Vec::new();
    let mut batches = Vec::new();
    let mut failures = 0;
    for (index, (label, plugins)) in servers.iter().enumerate() {
        let options = Options {
            plugins: plugins.clone(),
            cache_dir: scratch.join(format!("cache-letta-{index}")),
            allocator: None,
            stderr: scratch.join(format!("server-letta-{index}.log")),
            extra_args: vec!["--jobs-dir".to_owned(), "off".to_owned()],
        };
        let server = Server::start(&options).await?;
        let tools = match count_tools(server.addr).await {
            Ok(tools) => tools,
            Err(e) => {
                server.stop().await;
                return Err(format!("{label}: {e}"));
            }
        };
        // The first call waits for the argument validator's compile, which start-up leaves to
        // the background: not a cost of any operation measured here.
        if let Err(e) = warm_up(server.addr).await {
            server.stop().await;
            return Err(format!("{label}: warming up: {e}"));
        }
        let name = format!("{label} ({tools} tools)");
        for transport in TRANSPORTS {
            for operation in Operation::ALL {
                eprintln!("load bench: letta {name} {} {}", transport.label(), operation.label());
                let outcome = measure(&server, transport, operation, tools, timing).await;
                failures += outcome.errors;
                rows.push(Row { server: name.clone(), transport, operation, outcome });
            }
            let batch = batch(&server, transport, &name).await;
            failures += usize::from(batch.error.is_some());
            batches.push(batch);
        }
        // A 2026-07-28 client has no session: each list stands alone (on a kept connection).
        let (transport, operation) = (Transport::Stateless, Operation::WarmList);
        eprintln!("load bench: letta {name} {} {}", transport.label(), operation.label());
        let outcome = measure(&server, transport, operation, tools, timing).await;
        failures += outcome.errors;
        rows.push(Row { server: name.clone(), transport, operation, outcome });
        server.stop().await;
        for problem in server::log_problems(&options.stderr).iter().take(3) {
            report.say(&format!("Server log ({name}): `{problem}`"));
        }
    }

    report.say("## The Letta pattern: a fresh session per operation");
    report.say(&format!(
        "Each operation opens new connections and a new session (legacy SSE: `GET /sse` and a connection for \
         the POSTs; Streamable HTTP: `initialize` then `Mcp-Session-Id`), sends `notifications/initialized`, \
         does its work, and closes (dropping the stream; `DELETE /mcp`). One client, operations one after \
         another, as Letta does; `echo__echo` with `{ECHO_ARGUMENTS}`; every list is counted and every \
         result checked. Server CPU: all server threads over the window ÷ operations completed in it."
    ));
    let mut headers = vec!["server", "transport", "operation"];
    headers.extend(LOAD_HEADERS);
    headers.extend(["server CPU µs/op", "client CPU µs/op"]);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let o = &row.outcome;
            let mut cells =
                vec![row.server.clone(), row.transport.label().to_owned(), row.operation.label().to_owned()];
            cells.extend(load_columns(o));
            cells.push(us(o.per_call(o.cpu), o.cpu.is_some_and(|c| c.coarse)));
            cells.push(us(o.per_call(o.client_cpu), o.client_cpu.is_some_and(|c| c.coarse)));
            cells
        })
        .collect();
    report.table(&headers, &table);
    for row in rows.iter().filter(|r| r.outcome.errors > 0) {
        for error in &row.outcome.error_samples {
            report.say(&format!(
                "- error, {} {} {}: {error}",
                row.server,
                row.transport.label(),
                row.operation.label()
            ));
        }
    }

    report.say(&format!(
        "### Session set-up and tear-down, apart\n\n{BATCH} sessions opened one after another (connect, \
         `initialize`, `initialized`) with the server's CPU read before and after, then all closed and, after \
         {} ms for the server to finish, read again.",
        SETTLE.as_millis()
    ));
    let table: Vec<Vec<String>> = batches
        .iter()
        .map(|b| {
            vec![
                b.server.clone(),
                b.transport.label().to_owned(),
                us(b.set_up, b.coarse),
                us(b.tear_down, b.coarse),
                b.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    report.table(&["server", "transport", "set-up CPU µs/session", "tear-down CPU µs/session", "error"], &table);
    Ok(failures)
}

async fn warm_up(addr: SocketAddr) -> Result<(), String> {
    let mut client = Client::connect(addr, Transport::Session).await?;
    let result = client.call(ECHO_TOOL, ECHO_ARGUMENTS).await;
    client.close().await;
    check_echo(&result?)
}

/// How many tools a fresh session is listed.
async fn count_tools(addr: SocketAddr) -> Result<usize, String> {
    let mut client = Client::connect(addr, Transport::Session).await?;
    let listed = client.list_tools().await;
    client.close().await;
    Ok(listed?.get("tools").and_then(Value::as_array).map_or(0, Vec::len))
}

async fn measure(server: &Server, transport: Transport, operation: Operation, tools: usize, timing: Timing) -> Outcome {
    let warm = if operation == Operation::WarmList {
        match Client::connect(server.addr, transport).await {
            Ok(client) => Some(client),
            Err(e) => return Outcome::failed(vec![format!("connecting: {e}")]),
        }
    } else {
        None
    };
    let client = LettaClient { addr: server.addr, transport, operation, tools, warm };
    let (mut clients, outcome, _) = load::run(vec![client], timing, Charged::Process(server.pid), async || ()).await;
    if let Some(warm) = clients.pop().and_then(|c| c.warm) {
        warm.close().await;
    }
    outcome
}

async fn batch(server: &Server, transport: Transport, name: &str) -> Batch {
    let mut result =
        Batch { server: name.to_owned(), transport, set_up: None, tear_down: None, coarse: false, error: None };
    tokio::time::sleep(SETTLE).await;
    let Ok(before) = CpuSample::take(server.pid) else {
        result.error = Some("cannot read the server's CPU".to_owned());
        return result;
    };
    let mut clients = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        match Client::connect(server.addr, transport).await {
            Ok(client) => clients.push(client),
            Err(e) => {
                result.error = Some(format!("connecting: {e}"));
                break;
            }
        }
    }
    let opened = CpuSample::take(server.pid).ok();
    let count = clients.len().max(1) as u32;
    for client in clients {
        client.close().await;
    }
    tokio::time::sleep(SETTLE).await;
    let closed = CpuSample::take(server.pid).ok();
    if let (Some(opened), Some(closed)) = (opened, closed) {
        let set_up = opened.since(&before);
        let tear_down = closed.since(&opened);
        result.coarse = set_up.coarse || tear_down.coarse;
        result.set_up = Some(set_up.cpu / count);
        result.tear_down = Some(tear_down.cpu / count);
    }
    result
}
