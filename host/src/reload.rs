//! Plugins at run time: the set of loaded plugins, kept in step with `plugins/`, the policy
//! and the pin file while the server runs.
//!
//! Like `app.rs`, this is wiring that sees several layers: it loads with the runtime, grants
//! with the policy, and swaps the result into the registry. Rules:
//! - a file whose bytes (SHA-256) did not change is never reloaded; a changed one is compiled
//!   off the worker (on a blocking thread; the compile cache makes repeats cheap) and swapped in
//!   whole, while calls already running finish on the version they started with;
//! - a file that fails to load leaves the previous version of its plugin serving, and is
//!   reported (log and `health`) until it loads;
//! - bursts of file events (an editor's save, a copy in chunks) are debounced into one rescan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::policy::Policy;
use crate::registry::Registry;
use crate::runtime::{Limits, LoadError, Plugin, Runtime};

/// Quiet time after the last file event before a rescan: long enough to coalesce a burst,
/// short enough that an operator sees the change at once.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// File events buffered for the reload task. Any one event triggers a full rescan, so events
/// beyond this are dropped harmlessly.
const EVENT_BUFFER: usize = 256;

/// Why watching could not start (the server then serves without hot reload).
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path}: {source}")]
pub struct WatchError {
    path: PathBuf,
    source: notify::Error,
}

#[derive(Debug)]
struct Loaded {
    digest: [u8; 32],
    plugin: Arc<Plugin>,
}

/// The plugins loaded from one directory, by file, with the policy that grants them.
#[derive(Debug)]
pub struct PluginSet {
    dir: PathBuf,
    policy_path: Option<PathBuf>,
    policy: Policy,
    limits: Limits,
    loaded: BTreeMap<PathBuf, Loaded>,
    /// What went wrong in the last scan, worded for `health`.
    problems: Vec<String>,
}

impl PluginSet {
    pub fn new(dir: PathBuf, policy_path: Option<PathBuf>, policy: Policy, limits: Limits) -> Self {
        Self { dir, policy_path, policy, limits, loaded: BTreeMap::new(), problems: Vec::new() }
    }

    /// What went wrong in the last scan (failed files, an invalid policy), for `health`.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Bring the set in line with the directory: load new and changed files, drop removed ones,
    /// keep the previous version of any plugin whose new file fails. With `policy_changed`,
    /// re-read the policy first and re-grant every plugin. Returns the files that failed.
    pub async fn scan(&mut self, runtime: &Runtime, policy_changed: bool) -> Vec<LoadError> {
        let mut problems = Vec::new();
        let mut errors = Vec::new();
        if policy_changed && let Some(path) = &self.policy_path {
            match Policy::load(path, self.limits.clone()) {
                Ok(policy) => self.policy = policy,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "the changed policy is invalid; keeping the previous one");
                    problems.push(format!("policy {}: {e:#}; the previous policy stays in force", path.display()));
                }
            }
        }
        let files = wasm_files(&self.dir);
        self.loaded.retain(|path, loaded| {
            let kept = files.contains(path);
            if !kept {
                tracing::info!(plugin = %loaded.plugin.info().name, path = %path.display(), "plugin removed");
            }
            kept
        });
        for path in &files {
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(source) => {
                    let error = LoadError::Read { path: path.clone(), source };
                    problems.push(error.to_string());
                    errors.push(error);
                    continue;
                }
            };
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            if let Some(loaded) = self.loaded.get_mut(path)
                && loaded.digest == digest
            {
                if policy_changed {
                    let grants = self.policy.grants_for(&loaded.plugin.info().name);
                    loaded.plugin = Arc::new(loaded.plugin.regranted(grants));
                }
                continue;
            }
            match runtime.load_bytes(path, bytes).await {
                Ok(plugin) => {
                    let grants = self.policy.grants_for(&plugin.info().name);
                    let plugin = plugin.with_grants(grants);
                    tracing::info!(plugin = %plugin.info().name, version = %plugin.info().version,
                        tools = plugin.info().tools.len(), path = %path.display(), "plugin loaded");
                    self.loaded.insert(path.clone(), Loaded { digest, plugin: Arc::new(plugin) });
                }
                Err(e) => {
                    let kept = self.loaded.contains_key(path);
                    tracing::error!(error = %e, kept_previous_version = kept, "plugin not loaded");
                    problems.push(if kept {
                        format!("{e}; the previous version keeps serving")
                    } else {
                        e.to_string()
                    });
                    errors.push(e);
                }
            }
        }
        self.problems = problems;
        errors
    }

    /// The plugins to serve, in file-name order; a second plugin with a name already taken is
    /// reported and left out.
    pub fn plugins(&self) -> (Vec<Arc<Plugin>>, Vec<LoadError>) {
        let mut served: Vec<Arc<Plugin>> = Vec::new();
        let mut duplicates = Vec::new();
        for (path, loaded) in &self.loaded {
            let name = &loaded.plugin.info().name;
            if served.iter().any(|p| p.info().name == *name) {
                duplicates.push(LoadError::Duplicate { path: path.clone(), name: name.clone() });
            } else {
                served.push(Arc::clone(&loaded.plugin));
            }
        }
        (served, duplicates)
    }
}

/// What a burst of file events touched.
#[derive(Debug, Default, Clone, Copy)]
struct Touched {
    plugins: bool,
    policy: bool,
    pins: bool,
}

/// Watch the plugins directory, the policy and the pin file, and apply every change to
/// `registry` until `shutdown`. Fails (before spawning anything) if nothing can be watched.
pub fn watch(
    mut set: PluginSet,
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    pins_path: Option<&Path>,
    shutdown: CancellationToken,
) -> Result<(), WatchError> {
    let (events, mut received) = mpsc::channel::<notify::Event>(EVENT_BUFFER);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let _ = events.try_send(event);
        }
    })
    .map_err(|source| WatchError { path: set.dir.clone(), source })?;
    let dir = absolute(&set.dir);
    watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
        .map_err(|source| WatchError { path: dir.clone(), source })?;
    // Files are watched through their directories: editors and atomic writers replace the
    // file (a rename), which would end a watch on the file itself.
    let policy = set.policy_path.as_deref().map(absolute);
    let pins = pins_path.map(absolute);
    for file in policy.iter().chain(pins.iter()) {
        if let Some(parent) = file.parent().filter(|p| *p != dir)
            && let Err(e) = watcher.watch(parent, notify::RecursiveMode::NonRecursive)
        {
            tracing::warn!(path = %parent.display(), error = %e, "cannot watch; changes there need a restart");
        }
    }
    tracing::info!(dir = %dir.display(), "watching for plugin, policy and pin changes");
    tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => return,
                event = received.recv() => match event { Some(event) => event, None => return },
            };
            let mut touched = Touched::default();
            classify(&first, &dir, policy.as_deref(), pins.as_deref(), &mut touched);
            loop {
                match tokio::time::timeout(DEBOUNCE, received.recv()).await {
                    Ok(Some(event)) => classify(&event, &dir, policy.as_deref(), pins.as_deref(), &mut touched),
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            apply(&mut set, &runtime, &registry, touched).await;
        }
    });
    Ok(())
}

async fn apply(set: &mut PluginSet, runtime: &Runtime, registry: &Registry, touched: Touched) {
    if touched.plugins || touched.policy {
        set.scan(runtime, touched.policy).await;
        let mut problems = set.problems().to_vec();
        let (plugins, duplicates) = set.plugins();
        problems.extend(duplicates.iter().map(ToString::to_string));
        let swap = registry.replace(plugins);
        for refusal in &swap.refusals {
            tracing::error!(%refusal, "refused");
            problems.push(format!("refused {refusal}"));
        }
        registry.set_problems(problems);
        tracing::info!(listing_changed = swap.listing_changed, "plugins rescanned");
    }
    if touched.pins {
        match registry.reload_pins() {
            Ok(swap) => tracing::info!(listing_changed = swap.listing_changed, "pin file reloaded"),
            Err(e) => tracing::error!(error = %e, "cannot read the changed pin file; keeping the previous pins"),
        }
    }
}

fn classify(event: &notify::Event, dir: &Path, policy: Option<&Path>, pins: Option<&Path>, touched: &mut Touched) {
    if event.kind.is_access() {
        return;
    }
    for path in &event.paths {
        if path.parent() == Some(dir) && path.extension().is_some_and(|e| e == "wasm") {
            touched.plugins = true;
        }
        if Some(path.as_path()) == policy {
            touched.policy = true;
        }
        if Some(path.as_path()) == pins {
            touched.pins = true;
        }
    }
}

/// Event paths are absolute; compare like with like.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Every `*.wasm` directly in `dir`, in file-name order.
pub fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read the plugins directory; serving no plugins");
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    files.sort();
    files
}
