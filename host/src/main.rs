//! The `sanctum` binary: parse the command line and the config file, set up logging, wire the
//! layers, serve, and drain on SIGTERM/SIGINT.

use std::io::IsTerminal as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use sanctum::app::LocalCall;
use sanctum::config::{
    ApprovalsArgs, CallArgs, Cli, Command, ConfigError, LogFormat, NewPluginArgs, PluginsArgs, ServeArgs,
};

fn main() -> anyhow::Result<()> {
    let cli = match sanctum::config::parse(std::env::args_os()) {
        Ok(cli) => cli,
        // Usage errors, `--help` and `--version`: clap prints them and picks the exit status.
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => return Err(e.into()),
    };
    init_logging(&cli.command)?;
    let http_threads = match &cli.command {
        Command::Serve(args) => args.http_threads(),
        _ => 1,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(http_threads)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(run(cli));
    // Everything `run` owns has been drained by now. What may still run is a compile on a
    // blocking thread (a large plugin's in the background can take a minute), which a plain drop
    // of the runtime would wait for: a SIGTERM must not.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Check(args) => check(args).await,
        Command::Call(args) => call(args).await,
        Command::NewPlugin(args) => new_plugin(&args),
        Command::Plugins(args) => plugins(&args).await,
        Command::Approvals(args) => approvals(&args).await,
    }
}

/// Logs go to stderr, human-readable (coloured on a terminal) or one JSON object per line.
fn init_logging(command: &Command) -> anyhow::Result<()> {
    let (filter, format) = match command {
        Command::Serve(args) | Command::Check(args) => (
            EnvFilter::try_new(quiet_rmcp(&args.log_level)).with_context(|| {
                format!("invalid log level (--log-level, SANCTUM_LOG or log.level): {:?}", args.log_level)
            })?,
            args.log_format,
        ),
        // `call` prints its result on stdout (`new-plugin` its report); keep stderr to what went wrong.
        Command::Call(_) | Command::NewPlugin(_) | Command::Plugins(_) | Command::Approvals(_) => {
            (EnvFilter::try_from_env("SANCTUM_LOG").unwrap_or_else(|_| EnvFilter::new("warn")), LogFormat::Human)
        }
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).init(),
    }
    Ok(())
}

/// rmcp logs the start and end of every session at `info`, four lines for each of Letta's
/// operations (each a fresh session): under a filter that does not name it, it says only
/// what went wrong.
fn quiet_rmcp(filter: &str) -> String {
    let quieter_already = matches!(filter.trim().to_ascii_lowercase().as_str(), "off" | "error");
    if filter.contains("rmcp") || quieter_already { filter.to_owned() } else { format!("{filter},rmcp=warn") }
}

/// `sanctum plugins list|inspect|approve`: print the report.
async fn plugins(args: &PluginsArgs) -> anyhow::Result<()> {
    let report = sanctum::cli::plugins::run(args).await?;
    #[allow(clippy::print_stdout)]
    {
        print!("{report}");
    }
    Ok(())
}

/// `sanctum approvals list|show|approve|deny`: print the answer; errors exit non-zero.
async fn approvals(args: &ApprovalsArgs) -> anyhow::Result<()> {
    let report = sanctum::cli::approvals::run(args).await?;
    #[allow(clippy::print_stdout)]
    {
        print!("{report}");
    }
    Ok(())
}

/// Write a new plugin crate from the template and say what to run next.
fn new_plugin(args: &NewPluginArgs) -> anyhow::Result<()> {
    let created = sanctum::cli::scaffold::create(&args.dir, &args.name, args.sdk.as_deref(), args.lang)?;
    #[allow(clippy::print_stdout)]
    {
        print!("{}", created.summary());
    }
    Ok(())
}

/// Exit status of `sanctum call` when the tool returned `isError` (as Letta Code's CLI does).
const TOOL_ERROR_EXIT: i32 = 2;

async fn call(args: CallArgs) -> anyhow::Result<()> {
    match sanctum::app::call_file(&args).await? {
        LocalCall::Result { json, is_error } => {
            #[allow(clippy::print_stdout)]
            {
                println!("{}", serde_json::to_string_pretty(&json)?);
            }
            if is_error {
                std::process::exit(TOOL_ERROR_EXIT);
            }
            Ok(())
        }
        LocalCall::ProtocolError(message) => anyhow::bail!("{message}"),
    }
}

/// Load everything as `serve` would, report, and exit non-zero if anything is wrong.
async fn check(mut args: ServeArgs) -> anyhow::Result<()> {
    // A one-off report: nothing to keep in step with, and no admin plane (a running server
    // may hold the socket).
    args.watch = false;
    args.approvals.admin_socket = Some("off".into());
    args.approvals.admin_listen = None;
    // Opening the jobs directory would mark a running server's jobs as lost.
    args.jobs_dir = Some("off".into());
    let mut app = sanctum::app::build(&args).await?;
    // Exiting before the validator's background compile ends would leave it out of the cache.
    let _ = (&mut app.validator_ready).await;
    let mut problems = 0;
    #[allow(clippy::print_stdout)]
    {
        for error in &app.load_errors {
            println!("error: {error}");
            problems += 1;
        }
        for refusal in &app.refusals {
            println!("error: refused {refusal}");
            problems += 1;
        }
        for name in &app.unknown_policy_plugins {
            println!("error: the policy names plugin {name:?}, which is not loaded");
            problems += 1;
        }
        for review in &app.reviews {
            println!("plugin {}", review.plugin);
            for (label, entries) in
                [("granted", &review.granted), ("MISSING", &review.missing), ("unused", &review.unused)]
            {
                for entry in entries {
                    println!("  {label}: {entry}");
                }
            }
            problems += review.missing.len();
        }
        print_access(&app);
        println!("child processes: {}", sanctum::runtime::child_confinement());
        println!("{} tools; {problems} problem(s)", app.registry.health().tool_count);
    }
    if problems > 0 {
        anyhow::bail!("{problems} problem(s) found");
    }
    Ok(())
}

/// The access matrix and its warnings (warnings are not problems: the policy still works).
#[allow(clippy::print_stdout)]
fn print_access(app: &sanctum::app::App) {
    if !app.access_configured {
        println!(
            "access: the policy has no [access] section: every caller may call every tool (add one with \
             default = \"deny\")"
        );
        return;
    }
    println!("access:");
    for row in &app.access_report.rows {
        println!("  {}", row.who);
        for (tool, cell) in &row.cells {
            println!("    {tool}: {cell}");
        }
    }
    for warning in &app.access_report.warnings {
        println!("warning: {warning}");
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let app = sanctum::app::build(&args).await?;
    for error in &app.load_errors {
        tracing::error!(%error, "plugin not loaded");
    }
    for refusal in &app.refusals {
        tracing::error!(%refusal, "refused");
    }
    for name in &app.unknown_policy_plugins {
        tracing::warn!(plugin = %name, "the policy names a plugin that is not loaded");
    }
    for review in &app.reviews {
        if !review.missing.is_empty() {
            tracing::warn!(plugin = %review.plugin, missing = ?review.missing, "plugin needs capabilities the policy does not grant");
        }
        if !review.unused.is_empty() {
            tracing::info!(plugin = %review.plugin, unused = ?review.unused, "granted but not declared as needed");
        }
    }
    tracing::info!(confinement = %sanctum::runtime::child_confinement(), "subprocess confinement");
    let health = app.registry.health();
    tracing::info!(plugins = health.plugins.len(), tools = health.tool_count, "tools ready");

    let address = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("binding {address}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    // The one line on stdout: scripts and tests read the address from it (useful with --port 0).
    #[allow(clippy::print_stdout)]
    {
        println!("sanctum listening on http://{local}");
    }
    tracing::info!(%local, "serving MCP at /mcp (Streamable HTTP) and /sse (legacy SSE)");
    sanctum::app::run(listener, app, sanctum::shutdown::signal()).await.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}
