//! Plugins at run time: watches `plugins/`, the policy and the pin file, and applies every
//! change to the registry (rescanning the [`PluginSet`], reloading the pins). The same task
//! loads a large plugin once its background compile is done ([`Reloads::rescan`]), with or
//! without file watching, and keeps `/readyz` told how many plugins present at start-up are
//! still compiling.
//!
//! Rules:
//! - bursts of file events (an editor's save, a copy in chunks) are debounced into one rescan;
//! - a changed plugin is compiled off the worker (the compile cache makes repeats cheap);
//! - any event in the policy's (or pin file's) directory may be a change to it (a Kubernetes
//!   ConfigMap swaps a `..data` symlink, so no event names the file), and whether it is one is
//!   decided by the SHA-256 of the file's contents against the last one applied.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify::Watcher as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::plugin_set::{PluginSet, file_digest};
use crate::registry::Registry;
use crate::runtime::{OnCompiled, Runtime};
use crate::shutdown::Readiness;

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

/// The reload task's inbox, made before the first scan so that background compiles started by
/// it can ask for the rescan that loads them. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Reloads(Arc<Dirty>);

impl Reloads {
    /// What a finished background compile calls: rescan the plugins.
    pub fn rescan(&self) -> OnCompiled {
        let dirty = Arc::clone(&self.0);
        OnCompiled::new(move || dirty.mark(Touched { plugins: true, ..Touched::default() }))
    }
}

/// The paths events are sorted by.
#[derive(Debug, Clone)]
struct Watched {
    dir: PathBuf,
    policy: Option<PathBuf>,
    pins: Option<PathBuf>,
}

/// What the reload task works on.
pub(crate) struct ReloadTask {
    pub(crate) set: PluginSet,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) pins_path: Option<PathBuf>,
    pub(crate) readiness: Readiness,
    pub(crate) reloads: Reloads,
}

/// Apply every change `task.reloads` is told of to the registry until `shutdown`, and, with
/// `watch_files`, watch the plugins directory, the policy and the pin file for changes. The task
/// runs either way (background compiles need it); only the file watching can fail, and is then
/// off.
pub(crate) fn start(task: ReloadTask, watch_files: bool, shutdown: CancellationToken) -> Result<(), WatchError> {
    let ReloadTask { mut set, runtime, registry, pins_path, readiness, reloads } = task;
    let watched = Watched {
        dir: absolute(set.source().dir()),
        policy: set.policy_path().map(absolute),
        pins: pins_path.as_deref().map(absolute),
    };
    let dirty = Arc::clone(&reloads.0);
    let (watcher, refused) = match watch_files.then(|| watch_files_of(&watched, &dirty)).transpose() {
        Ok(watcher) => (watcher, None),
        Err(e) => (None, Some(e)),
    };
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
            readiness.set_loading(set.still_starting());
        }
    });
    refused.map_or(Ok(()), Err)
}

/// A watcher of the plugins directory and the policy's and pin file's directories, marking
/// `dirty` on every event there.
fn watch_files_of(watched: &Watched, dirty: &Arc<Dirty>) -> Result<notify::RecommendedWatcher, WatchError> {
    let dir = watched.dir.clone();
    let mut watcher = {
        let (watched, dirty) = (watched.clone(), Arc::clone(dirty));
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                dirty.mark(classify(&event, &watched));
            }
        })
        .map_err(|source| WatchError { path: dir.clone(), source })?
    };
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
    Ok(watcher)
}

async fn apply(set: &mut PluginSet, runtime: &Runtime, registry: &Registry, touched: Touched) {
    // An event in the policy's directory is a change only if the policy's contents changed.
    let policy_changed = touched.policy && set.policy_file_changed();
    if touched.plugins || policy_changed {
        set.scan(runtime, policy_changed).await;
        let problems = set.problems().to_vec();
        if policy_changed {
            // Before the new tools: for a moment the old tools may run under the new rules,
            // never new tools under the old ones.
            registry.set_access(std::sync::Arc::clone(set.policy().access()));
        }
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

/// Event paths are absolute; compare like with like.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

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
