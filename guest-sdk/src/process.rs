//! Run commands the operator granted to this plugin.
//!
//! A plugin names a command from the operator's policy (`[plugins.<name>.commands.<command>]`)
//! and passes arguments; the operator fixed the program, its leading arguments, which further
//! arguments are allowed, the environment and the limits. No shell is involved: each argument
//! reaches the program as one literal argv element, so `; rm -rf /` is just text.
//!
//! ```no_run
//! let out = sanctum_guest::process::run("deploy", &["web", "v1.2.3"], None)?;
//! if out.success() {
//!     sanctum_guest::log::info("deployed");
//! }
//! # Ok::<(), sanctum_guest::process::RunError>(())
//! ```

/// What a finished (or stopped) command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit status; `None` when the process was killed (including on timeout).
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The operator's output cap cut stdout (or stderr).
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// The command ran past its time limit and was killed.
    pub timed_out: bool,
}

impl Output {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Why a command did not run. The message is written to be shown to the model as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// The policy grants no command of that name to this plugin.
    NotGranted(String),
    /// An argument or the input was refused by the grant.
    ArgumentRefused(String),
    /// The command could not be started, or was cancelled.
    Failed(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotGranted(m) | Self::ArgumentRefused(m) | Self::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RunError {}

impl From<RunError> for crate::ToolError {
    fn from(error: RunError) -> Self {
        crate::ToolError::new(error.to_string())
    }
}

/// Run the granted `command` with `args`, optionally writing `stdin` to it.
pub fn run(command: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, RunError> {
    imp::run(command, args, stdin)
}

#[cfg(target_family = "wasm")]
mod imp {
    use super::{Output, RunError};
    use crate::__bindings::sanctum::plugin::process as wit;

    pub(super) fn run(command: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, RunError> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        match wit::run(command, &args, stdin) {
            Ok(o) => Ok(Output {
                status: o.status,
                stdout: o.stdout,
                stderr: o.stderr,
                stdout_truncated: o.stdout_truncated,
                stderr_truncated: o.stderr_truncated,
                timed_out: o.timed_out,
            }),
            Err(wit::RunError::NotGranted(m)) => Err(RunError::NotGranted(m)),
            Err(wit::RunError::ArgumentRefused(m)) => Err(RunError::ArgumentRefused(m)),
            Err(wit::RunError::Failed(m)) => Err(RunError::Failed(m)),
        }
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    use super::{Output, RunError};

    /// Off wasm there is no host to grant commands; tools that need one report it.
    pub(super) fn run(command: &str, _args: &[&str], _stdin: Option<&[u8]>) -> Result<Output, RunError> {
        Err(RunError::NotGranted(format!("command {command:?}: no sanctum host outside a component")))
    }
}
