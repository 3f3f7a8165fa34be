//! Configuration: the command line ([`args`]) and the `--config` file ([`file`]), merged once
//! ([`parse`]) into plain values the wiring reads. Start-up only; it imports only leaves
//! (`model`) and the front door's settings types, never a layer that runs anything.

mod args;
mod file;

pub use args::*;
pub use file::{FileConfig, SettingsError, load as load_file, parse as parse_file};

use clap::{CommandFactory as _, FromArgMatches as _};

/// Parse `argv` and fill in from the config file whatever no flag or variable set: the one
/// place settings are merged, for every subcommand that reads the file.
pub fn parse<I, T>(argv: I) -> Result<Cli, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(argv)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    let Some((_, sub)) = matches.subcommand() else { return Ok(cli) };
    match &mut cli.command {
        Command::Serve(args) | Command::Check(args) => file::apply(args, sub)?,
        Command::Plugins(PluginsArgs { command: PluginsCommand::List(dir) | PluginsCommand::Approve { dir, .. } }) => {
            if let Some((_, leaf)) = sub.subcommand() {
                file::apply_shared(&mut dir.source, &mut dir.sandbox, leaf)?;
            }
        }
        // The CLI finds the server's admin socket where the server's own file put it.
        Command::Approvals(approvals) => {
            let admin = &mut approvals.admin;
            if let (None, Some(config)) = (&admin.admin_socket, &admin.config) {
                admin.admin_socket = file::admin_socket(config)?;
            }
        }
        Command::Call(_) | Command::NewPlugin(_) | Command::Plugins(_) => {}
    }
    Ok(cli)
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad flags, or `--help`/`--version` (clap prints those itself: see [`clap::Error::exit`]).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    #[error(transparent)]
    File(#[from] SettingsError),
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::PathBuf;

    use super::*;

    fn config_file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sanctum.toml");
        std::fs::write(
            &path,
            "[plugins]\ndir = \"wasm\"\npolicy = \"policy.toml\"\n[limits]\ncall_timeout_ms = 1234\n\
             [server]\nport = 9100\n",
        )
        .expect("write");
        (dir, path)
    }

    fn parsed(argv: &[&str]) -> Cli {
        parse(std::iter::once("sanctum").chain(argv.iter().copied())).expect("parses")
    }

    #[test]
    fn serve_and_plugins_read_the_file_alike_relative_to_itself() {
        let (dir, path) = config_file();
        let path = path.to_str().expect("utf-8");
        let Command::Serve(serve) = parsed(&["serve", "--config", path]).command else { panic!("serve") };
        let Command::Plugins(PluginsArgs { command: PluginsCommand::List(list) }) =
            parsed(&["plugins", "list", "--config", path]).command
        else {
            panic!("plugins list")
        };
        for (source, sandbox) in [(&serve.source, &serve.sandbox), (&list.source, &list.sandbox)] {
            assert_eq!(source.plugins, dir.path().join("wasm"));
            assert_eq!(source.policy, Some(dir.path().join("policy.toml")), "so the default pin file is the server's");
            assert_eq!(source.pins_path(), Some(dir.path().join("policy.pins.json")));
            assert_eq!(sandbox.call_timeout_ms, 1234, "plugins load with the limits serve uses");
        }
        assert_eq!(serve.port, 9100);
    }

    #[test]
    fn a_flag_wins_over_the_file_and_the_file_over_the_default() {
        let (_dir, path) = config_file();
        let path = path.to_str().expect("utf-8");
        let Command::Plugins(PluginsArgs { command: PluginsCommand::Approve { dir, .. } }) =
            parsed(&["plugins", "approve", "echo", "--config", path, "--plugins", "elsewhere"]).command
        else {
            panic!("plugins approve")
        };
        assert_eq!(dir.source.plugins, PathBuf::from("elsewhere"));
        let Command::Serve(serve) = parsed(&["serve", "--config", path, "--call-timeout-ms", "5"]).command else {
            panic!("serve")
        };
        assert_eq!(serve.sandbox.call_timeout_ms, 5);
        assert_eq!(serve.sandbox.memory_limit_mib, crate::model::DEFAULT_MEMORY_LIMIT_MIB);
        let Command::Serve(plain) = parsed(&["serve"]).command else { panic!("serve") };
        assert_eq!(plain.source.plugins, PathBuf::from(DEFAULT_PLUGINS_DIR));
        assert_eq!(plain.queue_capacity, DEFAULT_QUEUE_CAPACITY);
    }

    #[test]
    fn the_test_constructor_and_clap_agree_on_every_default() {
        let Command::Serve(parsed) =
            parsed(&["serve", "--port", "0", "--audit", "off", "--cache-dir", "off", "--admin-socket", "off"]).command
        else {
            panic!("serve")
        };
        let built = ServeArgs::for_plugins(DEFAULT_PLUGINS_DIR);
        assert_eq!(format!("{:?}", parsed.sandbox), format!("{:?}", built.sandbox));
        assert_eq!(format!("{:?}", parsed.front_door), format!("{:?}", built.front_door));
        assert_eq!(format!("{:?}", parsed.approvals), format!("{:?}", built.approvals));
        assert_eq!(
            (parsed.queue_capacity, parsed.shutdown_grace_ms, parsed.source.plugins),
            (built.queue_capacity, built.shutdown_grace_ms, built.source.plugins)
        );
    }

    #[test]
    fn approvals_settings_merge_like_the_others() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sanctum.toml");
        std::fs::write(
            &path,
            "[approvals]\ntimeout_secs = 30\nmax_pending = 7\nadmin_socket = \"run/admin.sock\"\n\
             admin_listen = \"9001\"\nnotify_url = \"https://hooks.example.com/x\"\n\
             [[admin.token]]\nprincipal = \"ops\"\nvalue = \"admin-token-0123456789\"\n",
        )
        .expect("write");
        let path = path.to_str().expect("utf-8");
        let Command::Serve(serve) = parsed(&["serve", "--config", path, "--max-pending-approvals", "9"]).command else {
            panic!("serve")
        };
        let approvals = &serve.approvals;
        assert_eq!((approvals.approval_timeout_secs, approvals.max_pending_approvals), (30, 9));
        assert_eq!(approvals.admin_socket(), Some(dir.path().join("run/admin.sock")));
        assert_eq!(approvals.admin_listen, Some(SocketAddr::from(([127, 0, 0, 1], 9001))));
        assert_eq!(approvals.notify_url.as_deref(), Some("https://hooks.example.com/x"));
        assert_eq!(approvals.admin_tokens.as_ref().map(|a| a.tokens.len()), Some(1));
        let Command::Approvals(cli) = parsed(&["approvals", "list", "--config", path, "--json"]).command else {
            panic!("approvals")
        };
        assert_eq!(cli.admin.admin_socket, Some(dir.path().join("run/admin.sock").display().to_string()));
        assert!(cli.admin.json);
        let Command::Serve(plain) = parsed(&["serve"]).command else { panic!("serve") };
        assert_eq!(plain.approvals.admin_socket(), Some(default_admin_socket()), "served by default");
        assert!(plain.approvals.admin_listen.is_none(), "no admin HTTP unless asked");
        let Command::Approvals(deny) = parsed(&["approvals", "deny", "K7QD-1", "--reason", "no"]).command else {
            panic!("approvals")
        };
        assert!(
            matches!(deny.command, ApprovalsCommand::Deny { ref id, ref reason } if id == "K7QD-1" && reason == "no")
        );
    }
}
