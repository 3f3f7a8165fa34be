//! A `sanctum serve` process of the real binary, and the address it printed: for the tests that
//! need what only the binary does (signals, exit codes, crashes, stderr).

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// How long the binary may take to print its address (a cold compile cache included).
const STARTUP: Duration = Duration::from_secs(60);

pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Running {
    /// Spawn `command` (whose stderr the caller has chosen) and wait for its first stdout line.
    pub async fn start(mut command: Command) -> Self {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).kill_on_drop(true);
        let mut child = command.spawn().expect("spawn sanctum");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(STARTUP, BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("sanctum prints its address in time")
            .expect("read stdout");
        let addr = line
            .trim()
            .strip_prefix("sanctum listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("an address");
        Self { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    pub fn terminate(&self) {
        let pid = self.pid().to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(status.success());
    }

    /// Wait for the exit (at most `limit`) and return its status and everything on stderr,
    /// which the command must have piped.
    pub async fn exit_within(mut self, limit: Duration) -> (ExitStatus, String) {
        let mut stderr = self.child.stderr.take().expect("stderr is piped");
        let reader = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("sanctum did not exit within {limit:?}"))
            .expect("wait");
        (status, reader.await.expect("stderr reader"))
    }
}
