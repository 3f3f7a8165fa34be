//! The `sanctum` binary: parse the command line, set up logging, wire the layers, serve.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser as _;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use sanctum::app::LocalCall;
use sanctum::config::{CallArgs, Cli, Command, NewPluginArgs, ServeArgs};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `call` prints its result on stdout (`new-plugin` its report); keep stderr to what went wrong.
    let default_level = if matches!(cli.command, Command::Call(_) | Command::NewPlugin(_)) { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("SANCTUM_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Check(args) => check(args).await,
        Command::Call(args) => call(args).await,
        Command::NewPlugin(args) => new_plugin(&args),
    }
}

/// Write a new plugin crate from the template and say what to run next.
fn new_plugin(args: &NewPluginArgs) -> anyhow::Result<()> {
    let created = sanctum::scaffold::create(&args.dir, &args.name, args.sdk.as_deref())?;
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
async fn check(args: ServeArgs) -> anyhow::Result<()> {
    let app = sanctum::app::build(&args, CancellationToken::new()).await?;
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
        println!("child processes: {}", sanctum::runtime::child_confinement());
        println!("{} tools; {problems} problem(s)", app.registry.health().tool_count);
    }
    if problems > 0 {
        anyhow::bail!("{problems} problem(s) found");
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let app = sanctum::app::build(&args, shutdown.clone()).await?;
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

    tokio::spawn(stop_on_signal(shutdown.clone()));
    sanctum::transport::serve(listener, app.router, shutdown).await.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
