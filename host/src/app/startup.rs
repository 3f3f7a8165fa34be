//! The one start-up loader. Every command that runs plugin code (`serve`, `check`, `call`,
//! `plugins list|approve|inspect`) starts its runtime and loads its plugins here, with the
//! limits, containment, compile cache, policy and pins the operator configured, so no command
//! admits a plugin differently from the server.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::plugin_set::{PluginSet, PluginSource};
use crate::audit::Audit;
use crate::config::{AllocatorArg, CallArgs, ContainmentArg, PluginsDirArgs, SandboxArgs, ServeArgs};
use crate::metrics::Metrics;
use crate::model::{BackgroundCompiles, Limits};
use crate::pins::Pins;
use crate::policy::{GrantReview, ReservedPaths};
use crate::runtime::{CacheCounts, InstanceAllocator, LoadError, OnCompiled, ProcessContainment, Runtime, Supervisor};

/// What to start and load: plain values, resolved from a command's arguments.
#[derive(Debug, Clone)]
pub struct Startup {
    pub source: PluginSource,
    pub policy: Option<PathBuf>,
    /// The pin file; `None` serves every definition as it is.
    pub pins: Option<PathBuf>,
    pub limits: Limits,
    pub allocator: InstanceAllocator,
    pub containment: ProcessContainment,
    /// The compile cache; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Where audit records go: a file, `-` for stderr, or `off`.
    pub audit: String,
    /// Where host-supervised jobs are kept (`serve` only), and whether the operator named it.
    pub jobs_dir: Option<(PathBuf, bool)>,
    /// Large components to compile in the background (`serve` only), and what asks for the
    /// rescan that loads each once compiled. `None` compiles everything before going on.
    pub background: Option<(BackgroundCompiles, OnCompiled)>,
    /// Further files of the host's that no directory grant may reach (`serve`: the tokens and
    /// config files, which hold secrets, and the admin socket); the paths above are reserved
    /// too (see [`Startup::reserved`]).
    pub private_files: Vec<(&'static str, PathBuf)>,
}

/// The runtime with its plugins loaded, and what happened while loading them.
#[derive(Debug)]
pub struct Loaded {
    pub runtime: Arc<Runtime>,
    /// The plugins, kept for the watcher to rescan.
    pub set: PluginSet,
    pub pins: Pins,
    /// Plugin files that failed to load (each was skipped; the others serve).
    pub load_errors: Vec<LoadError>,
    /// Per plugin: what it needs against what the policy grants.
    pub reviews: Vec<GrantReview>,
    /// Plugins the policy names that were not loaded (usually a typo).
    pub unknown_policy_plugins: Vec<String>,
    /// What the compile cache did while loading (hits are plugins not compiled again).
    pub compile_cache: CacheCounts,
    /// The jobs supervisor, when jobs are on (`serve` with a usable jobs directory).
    pub jobs: Option<Supervisor>,
}

impl Startup {
    /// What `serve` and `check` load.
    pub fn serve(args: &ServeArgs) -> Self {
        Self {
            source: PluginSource::Dir(args.source.plugins.clone()),
            policy: args.source.policy.clone(),
            pins: args.source.pins_path(),
            cache_dir: args.source.store.cache_dir(),
            audit: args.audit.clone(),
            jobs_dir: args.jobs_dir(),
            private_files: [
                ("tokens file", args.front_door.auth_tokens_file.clone()),
                ("config file", args.source.config.clone()),
                ("admin socket", args.approvals.admin_socket()),
            ]
            .into_iter()
            .filter_map(|(what, path)| Some((what, path?)))
            .collect(),
            ..Self::sandboxed(&args.sandbox)
        }
    }

    /// What `plugins list|approve` load: the server's plugins, policy, pins and limits; no audit.
    pub fn plugins(args: &PluginsDirArgs) -> Self {
        Self {
            source: PluginSource::Dir(args.source.plugins.clone()),
            policy: args.source.policy.clone(),
            pins: args.source.pins_path(),
            cache_dir: args.source.store.cache_dir(),
            ..Self::sandboxed(&args.sandbox)
        }
    }

    /// What `sanctum call` loads: the one file, admitted as `serve` admits it; no pins.
    pub fn call(args: &CallArgs) -> Self {
        Self {
            source: PluginSource::File(args.plugin.clone()),
            policy: args.policy.clone(),
            cache_dir: crate::config::cache_dir(args.cache_dir.as_deref()),
            audit: args.audit.clone(),
            ..Self::sandboxed(&args.sandbox)
        }
    }

    /// What `plugins inspect` needs: a runtime with the default limits, nothing loaded.
    pub fn inspect() -> Self {
        Self::sandboxed(&SandboxArgs::default())
    }

    fn sandboxed(sandbox: &SandboxArgs) -> Self {
        Self {
            source: PluginSource::Dir(PathBuf::from(crate::config::DEFAULT_PLUGINS_DIR)),
            policy: None,
            pins: None,
            limits: sandbox.limits(),
            allocator: match sandbox.instance_allocator {
                AllocatorArg::Pooling => InstanceAllocator::Pooling,
                AllocatorArg::OnDemand => InstanceAllocator::OnDemand,
            },
            containment: match sandbox.process_containment {
                ContainmentArg::Auto => ProcessContainment::Auto,
                ContainmentArg::Subreaper => ProcessContainment::Subreaper,
            },
            cache_dir: None,
            audit: "off".into(),
            jobs_dir: None,
            background: None,
            private_files: Vec::new(),
        }
    }

    /// What the host owns and no plugin may be granted: its plugins, policy, pins, compile
    /// cache, audit log, jobs and further private files.
    fn reserved(&self) -> ReservedPaths {
        let source = match &self.source {
            PluginSource::Dir(dir) => ("plugins directory", dir),
            PluginSource::File(file) => ("plugin file", file),
        };
        // As `open_audit` reads `--audit`: `off` and `-` (stderr) name no file.
        let audit = (!matches!(self.audit.as_str(), "off" | "-")).then(|| PathBuf::from(&self.audit));
        let named = [
            ("audit log", audit.as_ref()),
            ("policy file", self.policy.as_ref()),
            ("pin file", self.pins.as_ref()),
            ("compile cache", self.cache_dir.as_ref()),
            ("jobs directory", self.jobs_dir.as_ref().map(|(dir, _)| dir)),
        ];
        std::iter::once(source)
            .chain(named.into_iter().filter_map(|(what, path)| Some((what, path?))))
            .chain(self.private_files.iter().map(|(what, path)| (*what, path)))
            .fold(ReservedPaths::default(), |reserved, (what, path)| reserved.with(what, path))
    }

    /// The runtime alone, with the compile cache when one is configured (a cache that cannot
    /// be used safely is reported and skipped: plugins are then compiled every time).
    pub fn start_runtime(&self, metrics: &Metrics) -> anyhow::Result<Runtime> {
        if !crate::runtime::choose_process_containment(self.containment) {
            anyhow::bail!(
                "--process-containment {:?} conflicts with the containment already in force",
                self.containment
            );
        }
        let audit = open_audit(&self.audit, metrics.clone())?;
        let mut runtime = Runtime::with_allocator(self.limits.clone(), self.allocator, audit, metrics.clone())
            .context("starting the wasm runtime")?;
        if let Some(dir) = &self.cache_dir
            && let Err(e) = runtime.enable_compile_cache(dir)
        {
            tracing::warn!(error = %e, "compile cache off");
        }
        Ok(runtime)
    }

    /// Start the runtime and load every plugin, the pins and the policy's review of them.
    pub async fn load(self, metrics: &Metrics) -> anyhow::Result<Loaded> {
        // The policy first: a server whose policy is invalid should not start a runtime.
        let mut set = PluginSet::open(self.source.clone(), self.policy.clone(), self.limits.clone(), self.reserved())?;
        let mut runtime = self.start_runtime(metrics)?;
        let jobs = self.open_jobs(&runtime, metrics)?;
        if let Some(jobs) = &jobs {
            runtime.enable_jobs(jobs.clone());
        }
        if let Some((settings, on_compiled)) = &self.background {
            runtime.enable_background_compiles(*settings, on_compiled.clone());
        }
        let runtime = Arc::new(runtime);
        let load_errors = set.scan(&runtime, false).await;
        let plugins = set.plugins();
        let reviews = plugins.iter().map(|p| GrantReview::new(p.info(), p.grants())).collect();
        let unknown_policy_plugins = set
            .policy()
            .plugin_names()
            .filter(|name| !plugins.iter().any(|p| p.info().name == *name))
            .map(str::to_owned)
            .collect();
        let pins = match &self.pins {
            Some(path) => Pins::load(path)?,
            None => Pins::disabled(),
        };
        let compile_cache = runtime.compile_cache_counts();
        tracing::info!(
            hits = compile_cache.hits,
            misses = compile_cache.misses,
            rejected = compile_cache.rejected,
            "compile cache"
        );
        Ok(Loaded { runtime, set, pins, load_errors, reviews, unknown_policy_plugins, compile_cache, jobs })
    }

    /// The jobs supervisor over the configured directory. A directory the operator named must
    /// work; the default one only warns and leaves jobs off.
    fn open_jobs(&self, runtime: &Runtime, metrics: &Metrics) -> anyhow::Result<Option<Supervisor>> {
        let Some((dir, named)) = &self.jobs_dir else { return Ok(None) };
        match Supervisor::open(dir, runtime.audit().clone(), metrics.clone()) {
            Ok(jobs) => {
                tracing::info!(dir = %dir.display(), "jobs directory");
                Ok(Some(jobs))
            }
            Err(e) if *named => Err(anyhow::anyhow!("the jobs directory {}: {e}", dir.display())),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "jobs are off (set --jobs-dir)");
                Ok(None)
            }
        }
    }
}

/// `-` is stderr, `off` disables auditing, anything else is a file appended to.
fn open_audit(target: &str, metrics: Metrics) -> anyhow::Result<Audit> {
    Ok(match target {
        "off" => Audit::disabled(metrics),
        "-" => Audit::to_writer(std::io::stderr(), metrics),
        path => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the audit log {path}"))?;
            Audit::to_writer(file, metrics)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn serve_reserves_every_path_the_host_owns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name);
        let mut args = ServeArgs::for_plugins(path("plugins"));
        args.source.policy = Some(path("policy.toml"));
        args.source.store.pins = Some(path("pins.json").display().to_string());
        args.source.store.cache_dir = Some(path("cache").display().to_string());
        args.audit = path("audit.log").display().to_string();
        args.jobs_dir = Some(path("jobs").display().to_string());
        args.front_door.auth_tokens_file = Some(path("tokens.toml"));
        args.source.config = Some(path("sanctum.toml"));
        args.approvals.admin_socket = Some(path("run/admin.sock").display().to_string());
        let reserved = Startup::serve(&args).reserved();
        for (name, what) in [
            ("plugins", "plugins directory"),
            ("policy.toml", "policy file"),
            ("pins.json", "pin file"),
            ("cache", "compile cache"),
            ("audit.log", "audit log"),
            ("jobs", "jobs directory"),
            ("tokens.toml", "tokens file"),
            ("sanctum.toml", "config file"),
            ("run/admin.sock", "admin socket"),
        ] {
            let inside = path(name).join("sub");
            let why = reserved.conflict(&inside).unwrap_or_else(|| panic!("{name} is not reserved"));
            assert!(why.contains(what), "{name}: {why}");
        }
        assert_eq!(reserved.conflict(&path("elsewhere")), None);
        let socket_dir = reserved.conflict(&path("run")).expect("the admin socket's directory holds it");
        assert!(socket_dir.contains("admin socket"), "{socket_dir}");
        let stderr = ServeArgs { audit: "-".into(), ..ServeArgs::for_plugins(path("plugins")) };
        assert_eq!(Startup::serve(&stderr).reserved().conflict(Path::new("/-")), None, "`-` is stderr, not a file");
    }
}
