//! The server under test: the real `sanctum` binary as a separate process, so its CPU time and
//! memory can be read from `/proc` apart from the client's. Started with `--port 0`; the
//! address comes from the one line it prints on stdout. Logs and audit records go to a file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// The binary cargo built for this benchmark (the bench profile inherits `release`).
pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_sanctum");

/// What the line on stdout starts with (`host/src/main.rs`).
const LISTENING: &str = "sanctum listening on http://";

/// Cold start-up of 20 plugins compiles each of them; allow for a slow machine.
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// How one server is started.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) plugins: PathBuf,
    pub(crate) cache_dir: PathBuf,
    /// `--instance-allocator`; `None` leaves the server's default.
    pub(crate) allocator: Option<&'static str>,
    /// Where stderr (logs, audit records) goes; appended to.
    pub(crate) stderr: PathBuf,
    /// Further arguments (e.g. `--policy`, `--jobs-dir`), after the common ones.
    pub(crate) extra_args: Vec<String>,
}

impl Options {
    /// The arguments after the binary. Everything not listed is the default.
    pub(crate) fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "serve",
            "--port",
            "0",
            "--plugins",
            &self.plugins.display().to_string(),
            // The benchmark is one principal making thousands of calls and up to 64 sessions:
            // the front door's per-principal limits would otherwise be what it measures.
            "--calls-per-minute",
            "0",
            "--max-sessions-per-principal",
            "1024",
            "--pins",
            "off",
            "--cache-dir",
            &self.cache_dir.display().to_string(),
            "--watch",
            "false",
        ]
        .map(str::to_owned)
        .into();
        if let Some(allocator) = self.allocator {
            args.extend(["--instance-allocator".to_owned(), allocator.to_owned()]);
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// A running server.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    /// Held open: a server that writes to a closed stdout would fail.
    _stdout: BufReader<ChildStdout>,
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
    /// When the process was spawned.
    pub(crate) spawned: Instant,
    /// From spawn to the `listening` line.
    pub(crate) listening_after: Duration,
}

impl Server {
    pub(crate) async fn start(options: &Options) -> Result<Self, String> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&options.stderr)
            .map_err(|e| format!("{}: {e}", options.stderr.display()))?;
        let mut command = Command::new(BINARY);
        command.args(options.args()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr).kill_on_drop(true);
        // Only the flags above configure the server: no SANCTUM_* from the caller's shell.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SANCTUM_") {
                command.env_remove(name);
            }
        }
        let spawned = Instant::now();
        let mut child = command.spawn().map_err(|e| format!("spawning {BINARY}: {e}"))?;
        let pid = child.id().ok_or("the server exited at once")?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout pipe")?);
        let read_address = async {
            let mut line = String::new();
            loop {
                line.clear();
                if stdout.read_line(&mut line).await.map_err(|e| format!("reading stdout: {e}"))? == 0 {
                    return Err("the server exited before listening".to_owned());
                }
                if let Some(address) = line.trim().strip_prefix(LISTENING) {
                    return address.parse::<SocketAddr>().map_err(|e| format!("address {address:?}: {e}"));
                }
            }
        };
        let addr = match tokio::time::timeout(START_TIMEOUT, read_address).await {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => return Err(format!("{e}; its stderr: {}", tail(&options.stderr))),
            Err(_) => return Err(format!("no `listening` line within {START_TIMEOUT:?}")),
        };
        let listening_after = spawned.elapsed();
        Ok(Self { child, _stdout: stdout, pid, addr, spawned, listening_after })
    }

    /// SIGTERM and wait for the graceful exit (SIGKILL if it takes too long).
    pub(crate) async fn stop(mut self) {
        let terminated = rustix::process::Pid::from_raw(self.pid as i32)
            .is_some_and(|pid| rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok());
        if !terminated || tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// The last lines of a log file, for an error message.
pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Warning and error lines of a server's log (human format: the level follows the timestamp).
pub(crate) fn log_problems(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter(|l| l.contains("Z  WARN ") || l.contains("Z ERROR ")).map(str::to_owned).collect()
}
