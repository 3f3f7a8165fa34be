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
//! - bursts of file events (an editor's save, a copy in chunks) are debounced into one rescan;
//! - any event in the policy's (or pin file's) directory may be a change to it (a Kubernetes
//!   ConfigMap swaps a `..data` symlink, so no event names the file), and whether it is one is
//!   decided by the SHA-256 of the file's contents against the last one applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify::Watcher as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::digest::{ComponentBytes, ComponentDigest};
use crate::ids::PluginName;
use crate::model::Limits;
use crate::policy::Policy;
use crate::registry::Registry;
use crate::runtime::{LoadError, Plugin, Runtime};

/// Quiet time after the last file event before a rescan: long enough to coalesce a burst,
/// short enough that an operator sees the change at once.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Why watching could not start (the server then serves without hot reload).
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path}: {source}")]
pub struct WatchError {
    path: PathBuf,
    source: notify::Error,
}

/// Swap in the same plugin with `policy`'s grants (calls running keep the old grants).
fn regrant(plugin: &mut Arc<Plugin>, policy: &Policy) {
    let grants = policy.grants_for(&plugin.info().name);
    *plugin = Arc::new(plugin.regranted(grants));
}

/// The plugins loaded from one directory, by file, with the policy that grants them.
#[derive(Debug)]
pub struct PluginSet {
    dir: PathBuf,
    policy_path: Option<PathBuf>,
    policy: Policy,
    /// SHA-256 of the policy file as last read (`None`: unreadable or never read), so an event
    /// in its directory that left it as it was changes nothing.
    policy_digest: Option<[u8; 32]>,
    /// Why the policy file on disk is not the one in force; reported until it loads, across
    /// scans that do not re-read it.
    policy_problem: Option<String>,
    limits: Limits,
    loaded: BTreeMap<PathBuf, Arc<Plugin>>,
    /// What went wrong in the last scan, worded for `health`.
    problems: Vec<String>,
}

impl PluginSet {
    pub fn new(dir: PathBuf, policy_path: Option<PathBuf>, policy: Policy, limits: Limits) -> Self {
        let policy_digest = policy_path.as_deref().and_then(file_digest);
        Self {
            dir,
            policy_path,
            policy,
            policy_digest,
            policy_problem: None,
            limits,
            loaded: BTreeMap::new(),
            problems: Vec::new(),
        }
    }

    /// Whether the policy file's contents differ from those last read (a scan with
    /// `policy_changed` is then due).
    pub fn policy_file_changed(&self) -> bool {
        self.policy_path.as_deref().is_some_and(|path| file_digest(path) != self.policy_digest)
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
            // Digest before loading: if the file changes in between, the next event sees a
            // digest that differs and loads again.
            self.policy_digest = file_digest(path);
            match Policy::load(path, self.limits.clone()) {
                Ok(policy) => {
                    self.policy = policy;
                    self.policy_problem = None;
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "the changed policy is invalid; keeping the previous one");
                    self.policy_problem =
                        Some(format!("policy {}: {e:#}; the previous policy stays in force", path.display()));
                }
            }
        }
        problems.extend(self.policy_problem.clone());
        let files = wasm_files(&self.dir);
        self.loaded.retain(|path, loaded| {
            let kept = files.contains(path);
            if !kept {
                tracing::info!(plugin = %loaded.info().name, path = %path.display(), "plugin removed");
            }
            kept
        });
        for path in &files {
            match self.load_file(runtime, path, policy_changed).await {
                Ok(()) => {}
                Err(error) => {
                    // The previous version keeps serving, but under the policy now in force
                    // (and only if that policy still admits its bytes: checked below).
                    let previous = self.loaded.get_mut(path);
                    let kept = previous.is_some();
                    if policy_changed && let Some(loaded) = previous {
                        regrant(loaded, &self.policy);
                    }
                    tracing::error!(error = %error, kept_previous_version = kept, "plugin not loaded");
                    problems.push(if kept {
                        format!("{error}; the previous version keeps serving")
                    } else {
                        error.to_string()
                    });
                    errors.push(error);
                }
            }
        }
        // A policy that now pins other bytes withdraws a version that was admitted before.
        let policy = &self.policy;
        self.loaded.retain(|path, loaded| {
            match pin_refusal(policy, path, loaded.info().name.as_str(), loaded.digest()) {
                None => true,
                Some(error) => {
                    tracing::error!(error = %error, "plugin withdrawn");
                    problems.push(format!("{error}; withdrawn"));
                    errors.push(error);
                    false
                }
            }
        });
        self.problems = problems;
        errors
    }

    /// Load `path` if its bytes changed (re-granting an unchanged one when the policy did).
    /// Identity comes from the file name: the component must call itself by it, and a digest
    /// the policy pins for that name must be the file's.
    async fn load_file(&mut self, runtime: &Runtime, path: &Path, policy_changed: bool) -> Result<(), LoadError> {
        let bytes = ComponentBytes::read(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        if let Some(loaded) = self.loaded.get_mut(path)
            && loaded.digest() == bytes.digest()
        {
            if policy_changed {
                regrant(loaded, &self.policy);
            }
            return Ok(());
        }
        let plugin = load_plugin(runtime, &self.policy, path, bytes).await?;
        self.loaded.insert(path.to_owned(), Arc::new(plugin));
        Ok(())
    }

    /// The plugins to serve, in file-name order. Each is named by its file, so no two share a
    /// name.
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.loaded.values().map(Arc::clone).collect()
    }
}

/// Load the plugin file at `path` (its `bytes`) under `policy`, the one way every command
/// admits a plugin. Identity comes from the file name: the bytes must be the ones the policy
/// pins for that name, if it pins any (checked before compiling: bytes the operator did not
/// approve are never run), and the component must call itself by that name (so a second file
/// cannot take over another plugin's grants by declaring its name). Granted as the policy says.
pub async fn load_plugin(
    runtime: &Runtime,
    policy: &Policy,
    path: &Path,
    bytes: ComponentBytes,
) -> Result<Plugin, LoadError> {
    let id = PluginName::of_file(path).map_err(|reason| LoadError::FileName { path: path.to_owned(), reason })?;
    let digest = bytes.digest();
    if let Some(error) = pin_refusal(policy, path, id.as_str(), digest) {
        return Err(error);
    }
    let plugin = runtime.load_bytes(path, bytes).await?;
    let declared = &plugin.info().name;
    if declared != id.as_str() {
        return Err(LoadError::NameMismatch { path: path.to_owned(), id: id.to_string(), declared: declared.clone() });
    }
    tracing::info!(plugin = %id, version = %plugin.info().version, tools = plugin.info().tools.len(),
        path = %path.display(), sha256 = %digest, "plugin loaded");
    Ok(plugin.with_grants(policy.grants_for(id.as_str())))
}

/// Why `policy` refuses the bytes with `digest` as plugin `id`, if it pins that plugin to others.
fn pin_refusal(policy: &Policy, path: &Path, id: &str, digest: ComponentDigest) -> Option<LoadError> {
    let pinned = policy.pinned_digest(id)?;
    (pinned != digest).then(|| LoadError::DigestMismatch {
        path: path.to_owned(),
        id: id.to_owned(),
        found: digest,
        pinned,
    })
}

/// What a burst of file events touched.
#[derive(Debug, Default, Clone, Copy)]
struct Touched {
    plugins: bool,
    policy: bool,
    pins: bool,
}

/// What file events have touched since the reload task last looked, set by the watcher's
/// callback. Flags rather than a queue of events: nothing can be dropped while the task is busy
/// compiling, and any number of events costs one rescan.
#[derive(Debug, Default)]
struct Dirty {
    plugins: AtomicBool,
    policy: AtomicBool,
    pins: AtomicBool,
    /// Wakes the reload task; a wake-up while it is busy is kept for when it next waits.
    wake: Notify,
}

impl Dirty {
    fn mark(&self, touched: Touched) {
        for (flag, set) in
            [(&self.plugins, touched.plugins), (&self.policy, touched.policy), (&self.pins, touched.pins)]
        {
            if set {
                flag.store(true, Ordering::SeqCst);
            }
        }
        if touched.plugins || touched.policy || touched.pins {
            self.wake.notify_one();
        }
    }

    /// What was touched, clearing it: events from now on mark a later rescan.
    fn take(&self) -> Touched {
        Touched {
            plugins: self.plugins.swap(false, Ordering::SeqCst),
            policy: self.policy.swap(false, Ordering::SeqCst),
            pins: self.pins.swap(false, Ordering::SeqCst),
        }
    }
}

/// The paths events are sorted by.
#[derive(Debug, Clone)]
struct Watched {
    dir: PathBuf,
    policy: Option<PathBuf>,
    pins: Option<PathBuf>,
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
    let dir = absolute(&set.dir);
    let watched = Watched { dir, policy: set.policy_path.as_deref().map(absolute), pins: pins_path.map(absolute) };
    let dirty = Arc::new(Dirty::default());
    let mut watcher = {
        let (watched, dirty) = (watched.clone(), Arc::clone(&dirty));
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                dirty.mark(classify(&event, &watched));
            }
        })
        .map_err(|source| WatchError { path: set.dir.clone(), source })?
    };
    let dir = watched.dir.clone();
    watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
        .map_err(|source| WatchError { path: dir.clone(), source })?;
    // Files are watched through their directories: editors and atomic writers replace the
    // file (a rename), which would end a watch on the file itself.
    for file in watched.policy.iter().chain(watched.pins.iter()) {
        if let Some(parent) = file.parent().filter(|p| *p != dir)
            && let Err(e) = watcher.watch(parent, notify::RecursiveMode::NonRecursive)
        {
            tracing::warn!(path = %parent.display(), error = %e, "cannot watch; changes there need a restart");
        }
    }
    tracing::info!(dir = %dir.display(), "watching for plugin, policy and pin changes");
    let mut pins_digest = watched.pins.as_deref().and_then(file_digest);
    tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = dirty.wake.notified() => {}
            }
            // Debounce: wait until events have been quiet for a while.
            while tokio::time::timeout(DEBOUNCE, dirty.wake.notified()).await.is_ok() {
                if shutdown.is_cancelled() {
                    return;
                }
            }
            let mut touched = dirty.take();
            // An event in the pin file's directory is a change only if its contents changed.
            if touched.pins {
                let digest = watched.pins.as_deref().and_then(file_digest);
                touched.pins = digest != pins_digest;
                pins_digest = digest;
            }
            apply(&mut set, &runtime, &registry, touched).await;
        }
    });
    Ok(())
}

async fn apply(set: &mut PluginSet, runtime: &Runtime, registry: &Registry, touched: Touched) {
    // An event in the policy's directory is a change only if the policy's contents changed.
    let policy_changed = touched.policy && set.policy_file_changed();
    if touched.plugins || policy_changed {
        set.scan(runtime, policy_changed).await;
        let problems = set.problems().to_vec();
        let swap = registry.replace(set.plugins());
        // `health` reports these itself, from the table that refused them.
        for refusal in &swap.refusals {
            tracing::error!(%refusal, "refused");
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

/// What `event` may have changed. The policy and the pin file count as touched by any event in
/// their directory: a ConfigMap-style update swaps a symlink there and never names the file.
fn classify(event: &notify::Event, watched: &Watched) -> Touched {
    let mut touched = Touched::default();
    if event.kind.is_access() {
        return touched;
    }
    let in_dir_of =
        |file: Option<&Path>, path: &Path| file.and_then(Path::parent).is_some_and(|d| path.parent() == Some(d));
    for path in &event.paths {
        if path.parent() == Some(watched.dir.as_path()) && path.extension().is_some_and(|e| e == "wasm") {
            touched.plugins = true;
        }
        touched.policy |= in_dir_of(watched.policy.as_deref(), path);
        touched.pins |= in_dir_of(watched.pins.as_deref(), path);
    }
    touched
}

/// SHA-256 of a file's contents, `None` if it cannot be read (missing counts as a state too).
fn file_digest(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|bytes| Sha256::digest(&bytes).into())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Audit;

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
    }

    fn policy(greeting: &str) -> String {
        format!("[plugins.probe]\nconfig = {{ greeting = \"{greeting}\" }}\n")
    }

    fn greeting(set: &PluginSet) -> Option<String> {
        set.plugins().first().and_then(|p| p.grants().config.get("greeting").cloned())
    }

    #[tokio::test]
    async fn a_kept_previous_version_takes_a_changed_policy_and_only_real_changes_count() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).expect("mkdir");
        std::fs::write(plugins.join("probe.wasm"), fixture("probe.wasm")).expect("write plugin");
        let policy_path = dir.path().join("policy.toml");
        std::fs::write(&policy_path, policy("one")).expect("write policy");
        let limits = Limits::default();
        let runtime = Runtime::new(limits.clone(), Audit::disabled()).expect("runtime");
        let loaded = Policy::load(&policy_path, limits.clone()).expect("policy");
        let mut set = PluginSet::new(plugins.clone(), Some(policy_path.clone()), loaded, limits);
        assert!(set.scan(&runtime, false).await.is_empty());
        assert_eq!(greeting(&set).as_deref(), Some("one"));

        // Another file in the policy's directory is not a policy change.
        std::fs::write(dir.path().join("unrelated"), "x").expect("write");
        assert!(!set.policy_file_changed());

        // The plugin's new file is broken and the policy changes: the old version keeps serving,
        // under the new policy.
        std::fs::write(plugins.join("probe.wasm"), fixture("not_a_plugin.wasm")).expect("break plugin");
        std::fs::write(&policy_path, policy("two")).expect("write policy");
        assert!(set.policy_file_changed());
        assert_eq!(set.scan(&runtime, true).await.len(), 1, "the broken file is reported");
        assert_eq!(greeting(&set).as_deref(), Some("two"));
        assert!(!set.policy_file_changed(), "applied");
    }

    #[test]
    fn any_event_in_the_policy_or_pin_directory_may_be_a_change() {
        let watched = Watched {
            dir: PathBuf::from("/srv/plugins"),
            policy: Some(PathBuf::from("/etc/sanctum/policy.toml")),
            pins: Some(PathBuf::from("/var/lib/sanctum/pins.json")),
        };
        let event = |path: &str| notify::Event::new(notify::EventKind::Any).add_path(PathBuf::from(path));
        // A ConfigMap update: the `..data` symlink is swapped; no event names the file.
        let touched = classify(&event("/etc/sanctum/..data"), &watched);
        assert!(touched.policy && !touched.pins && !touched.plugins);
        let touched = classify(&event("/var/lib/sanctum/.pins.json.1.tmp"), &watched);
        assert!(touched.pins && !touched.policy);
        let touched = classify(&event("/srv/plugins/a.wasm"), &watched);
        assert!(touched.plugins && !touched.policy && !touched.pins);
    }
}
