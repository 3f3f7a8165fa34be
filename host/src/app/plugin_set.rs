//! The set of loaded plugins: one directory (or, for `sanctum call`, one file), the policy that
//! grants them, and the one way every command admits a plugin ([`load_plugin`]). Start-up scans
//! it once; the watcher ([`super::watch`]) rescans it on every change.
//!
//! Wiring, like the rest of `app`: it loads with the runtime and grants with the policy. Rules:
//! - a file whose bytes (SHA-256) did not change is never reloaded; a changed one is compiled
//!   and swapped in whole, while calls already running finish on the version they started with;
//! - a file that fails to load leaves the previous version of its plugin serving, and is
//!   reported (log and `health`) until it loads;
//! - a policy change re-grants every plugin, and withdraws a version whose bytes the new policy
//!   no longer pins.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::digest::{ComponentBytes, ComponentDigest};
use crate::ids::PluginName;
use crate::model::Limits;
use crate::policy::{Policy, PolicyError, ReservedPaths};
use crate::runtime::{LoadError, Loading, Plugin, Runtime};

/// Where a set's plugins come from.
#[derive(Debug, Clone)]
pub enum PluginSource {
    /// Every `*.wasm` directly in this directory (what `serve` loads).
    Dir(PathBuf),
    /// This one file (what `sanctum call` loads), admitted by the same rules.
    File(PathBuf),
}

impl PluginSource {
    /// The directory the plugins are in (what the watcher watches).
    pub fn dir(&self) -> &Path {
        match self {
            Self::Dir(dir) => dir,
            Self::File(file) => file.parent().unwrap_or_else(|| Path::new(".")),
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        match self {
            Self::Dir(dir) => wasm_files(dir),
            Self::File(file) => vec![file.clone()],
        }
    }
}

/// Swap in the same plugin with `policy`'s grants (calls running keep the old grants).
fn regrant(plugin: &mut Arc<Plugin>, policy: &Policy) {
    let grants = policy.grants_for(&plugin.info().name);
    *plugin = Arc::new(plugin.regranted(grants));
}

/// The plugins loaded from one directory, by file, with the policy that grants them.
#[derive(Debug)]
pub struct PluginSet {
    source: PluginSource,
    policy_path: Option<PathBuf>,
    policy: Policy,
    /// The host's own paths, which no directory grant of any policy version may reach.
    reserved: ReservedPaths,
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
    /// Files compiling in the background as of the last scan.
    compiling: BTreeSet<PathBuf>,
    /// Files that were compiling at the first scan and have not loaded or failed since: the
    /// server is not ready until none is left (see `Readiness`).
    starting: Option<BTreeSet<PathBuf>>,
}

impl PluginSet {
    /// An empty set over `source`, granted by the policy at `policy_path` (deny-all without one).
    pub fn open(
        source: PluginSource,
        policy_path: Option<PathBuf>,
        limits: Limits,
        reserved: ReservedPaths,
    ) -> Result<Self, PolicyError> {
        // Digest before loading, as `scan` does: a change in between differs from the digest,
        // so the watcher's next event loads it.
        let policy_digest = policy_path.as_deref().and_then(file_digest);
        let policy = match &policy_path {
            Some(path) => Policy::load(path, limits.clone(), &reserved)?,
            None => Policy::deny_all(limits.clone()),
        };
        Ok(Self {
            source,
            policy_path,
            policy,
            reserved,
            policy_digest,
            policy_problem: None,
            limits,
            loaded: BTreeMap::new(),
            problems: Vec::new(),
            compiling: BTreeSet::new(),
            starting: None,
        })
    }

    /// Plugins present at start-up that are still compiling in the background.
    pub fn still_starting(&self) -> usize {
        self.starting.as_ref().map_or(0, BTreeSet::len)
    }

    /// Files compiling in the background now.
    #[cfg(test)]
    fn compiling(&self) -> impl Iterator<Item = &Path> {
        self.compiling.iter().map(PathBuf::as_path)
    }

    /// Where the plugins come from.
    pub fn source(&self) -> &PluginSource {
        &self.source
    }

    /// The policy file, if there is one.
    pub fn policy_path(&self) -> Option<&Path> {
        self.policy_path.as_deref()
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
            match Policy::load(path, self.limits.clone(), &self.reserved) {
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
        let files = self.source.files();
        self.loaded.retain(|path, loaded| {
            let kept = files.contains(path);
            if !kept {
                tracing::info!(plugin = %loaded.info().name, path = %path.display(), "plugin removed");
            }
            kept
        });
        let mut compiling = BTreeSet::new();
        for path in &files {
            match self.load_file(runtime, path, policy_changed).await {
                Ok(FileState::Ready) => {}
                Ok(FileState::Compiling { size }) => {
                    let kept = self.keep_previous(path, policy_changed);
                    let mib = size as f64 / f64::from(1 << 20);
                    if !self.compiling.contains(path) {
                        tracing::info!(path = %path.display(), size_mib = format!("{mib:.1}"), kept_previous_version = kept,
                            "compiling a large plugin in the background; it is served once compiled");
                    }
                    problems.push(format!(
                        "{}: compiling in the background ({mib:.1} MiB); served once compiled{}",
                        path.display(),
                        if kept { ", the previous version meanwhile" } else { "" }
                    ));
                    compiling.insert(path.clone());
                }
                Err(error) => {
                    let kept = self.keep_previous(path, policy_changed);
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
        match &mut self.starting {
            None => self.starting = Some(compiling.clone()),
            Some(starting) => starting.retain(|path| compiling.contains(path)),
        }
        self.compiling = compiling;
        errors
    }

    /// Whether a previous version of `path` keeps serving while its new file does not load (yet):
    /// under the policy now in force, and only if that policy still admits its bytes (checked
    /// at the end of the scan).
    fn keep_previous(&mut self, path: &Path, policy_changed: bool) -> bool {
        let Some(loaded) = self.loaded.get_mut(path) else { return false };
        if policy_changed {
            regrant(loaded, &self.policy);
        }
        true
    }

    /// Load `path` if its bytes changed (re-granting an unchanged one when the policy did).
    /// Identity comes from the file name: the component must call itself by it, and a digest
    /// the policy pins for that name must be the file's.
    async fn load_file(
        &mut self,
        runtime: &Runtime,
        path: &Path,
        policy_changed: bool,
    ) -> Result<FileState, LoadError> {
        let bytes = ComponentBytes::read(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        if let Some(loaded) = self.loaded.get_mut(path)
            && loaded.digest() == bytes.digest()
        {
            if policy_changed {
                regrant(loaded, &self.policy);
            }
            return Ok(FileState::Ready);
        }
        let size = bytes.len();
        let Some(plugin) = load_plugin(runtime, &self.policy, path, bytes).await? else {
            return Ok(FileState::Compiling { size });
        };
        self.loaded.insert(path.to_owned(), Arc::new(plugin));
        Ok(FileState::Ready)
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
/// `Ok(None)`: the runtime compiles it in the background (`serve` only) and asks for a rescan
/// when it has.
pub async fn load_plugin(
    runtime: &Runtime,
    policy: &Policy,
    path: &Path,
    bytes: ComponentBytes,
) -> Result<Option<Plugin>, LoadError> {
    let id = PluginName::of_file(path).map_err(|reason| LoadError::FileName { path: path.to_owned(), reason })?;
    let digest = bytes.digest();
    if let Some(error) = pin_refusal(policy, path, id.as_str(), digest) {
        return Err(error);
    }
    let plugin = match runtime.load_or_defer(path, bytes).await? {
        Loading::Loaded(plugin) => *plugin,
        Loading::Compiling => return Ok(None),
    };
    let declared = &plugin.info().name;
    if declared != id.as_str() {
        return Err(LoadError::NameMismatch { path: path.to_owned(), id: id.to_string(), declared: declared.clone() });
    }
    tracing::info!(plugin = %id, version = %plugin.info().version, tools = plugin.info().tools.len(),
        path = %path.display(), sha256 = %digest, "plugin loaded");
    Ok(Some(plugin.with_grants(policy.grants_for(id.as_str()))))
}

/// What loading one file came to.
enum FileState {
    /// Loaded, or unchanged.
    Ready,
    /// Compiling in the background.
    Compiling { size: usize },
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

/// SHA-256 of a file's contents, `None` if it cannot be read (missing counts as a state too).
pub(super) fn file_digest(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|bytes| Sha256::digest(&bytes).into())
}

/// Every `*.wasm` directly in `dir`, in file-name order.
fn wasm_files(dir: &Path) -> Vec<PathBuf> {
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
        let metrics = crate::metrics::Metrics::new();
        let runtime = Runtime::new(limits.clone(), Audit::disabled(metrics.clone()), metrics).expect("runtime");
        let mut set = PluginSet::open(
            PluginSource::Dir(plugins.clone()),
            Some(policy_path.clone()),
            limits,
            ReservedPaths::default(),
        )
        .expect("policy");
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

    #[tokio::test]
    async fn a_policy_granting_a_reserved_path_is_refused_at_start_and_on_reload() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins = dir.path().join("plugins");
        let data = dir.path().join("data");
        std::fs::create_dir(&plugins).expect("mkdir");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::write(plugins.join("probe.wasm"), fixture("probe.wasm")).expect("write plugin");
        let policy_path = dir.path().join("policy.toml");
        let granting =
            |host: &Path| format!("[plugins.probe]\ndirectories = [{{ host = {host:?}, guest = \"/d\" }}]\n");
        let reserved = || ReservedPaths::default().with("plugins directory", &plugins);
        let open = || {
            PluginSet::open(
                PluginSource::Dir(plugins.clone()),
                Some(policy_path.clone()),
                Limits::default(),
                reserved(),
            )
        };

        for refused in [&plugins, dir.path()] {
            std::fs::write(&policy_path, granting(refused)).expect("write policy");
            let error = open().expect_err("a grant reaching the plugins directory").to_string();
            assert!(
                error.starts_with("plugins.probe.directories[0]:") && error.contains("plugins directory"),
                "{error}"
            );
        }

        std::fs::write(&policy_path, granting(&data)).expect("write policy");
        let mut set = open().expect("a sibling directory may be granted");
        let metrics = crate::metrics::Metrics::new();
        let runtime = Runtime::new(Limits::default(), Audit::disabled(metrics.clone()), metrics).expect("runtime");
        assert!(set.scan(&runtime, false).await.is_empty());
        std::fs::write(&policy_path, granting(&plugins)).expect("write policy");
        set.scan(&runtime, true).await;
        assert!(set.problems().iter().any(|p| p.contains("plugins directory")), "{:?}", set.problems());
        let plugins_now = set.plugins();
        let granted = &plugins_now[0].grants().directories;
        assert_eq!(granted.len(), 1);
        assert_eq!(granted[0].host, data, "the previous policy stays in force");
    }

    /// A set whose every component compiles in the background (`min_bytes` 0), and the signal
    /// its finished compiles give.
    fn background_set(plugins: &Path) -> (PluginSet, Runtime, Arc<tokio::sync::Notify>) {
        let limits = Limits::default();
        let metrics = crate::metrics::Metrics::new();
        let mut runtime = Runtime::new(limits.clone(), Audit::disabled(metrics.clone()), metrics).expect("runtime");
        let compiled = Arc::new(tokio::sync::Notify::new());
        let on_compiled = crate::runtime::OnCompiled::new({
            let compiled = Arc::clone(&compiled);
            move || compiled.notify_one()
        });
        runtime.enable_background_compiles(crate::model::BackgroundCompiles { min_bytes: 0, parallel: 1 }, on_compiled);
        let set = PluginSet::open(PluginSource::Dir(plugins.to_owned()), None, limits, ReservedPaths::default())
            .expect("no policy");
        (set, runtime, compiled)
    }

    #[tokio::test]
    async fn a_large_component_compiles_in_the_background_and_loads_on_the_rescan_it_asks_for() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("probe.wasm"), fixture("probe.wasm")).expect("write plugin");
        let (mut set, runtime, compiled) = background_set(dir.path());

        // The first scan does not wait for the compile: nothing serves yet, and it says why.
        assert!(set.scan(&runtime, false).await.is_empty(), "compiling is not a failure");
        assert!(set.plugins().is_empty());
        assert_eq!(set.still_starting(), 1);
        assert!(set.problems().iter().any(|p| p.contains("compiling in the background")), "{:?}", set.problems());
        // A scan before the compile ends queues nothing twice.
        assert!(set.scan(&runtime, false).await.is_empty());

        tokio::time::timeout(std::time::Duration::from_secs(60), compiled.notified()).await.expect("compiled");
        assert!(set.scan(&runtime, false).await.is_empty());
        assert_eq!(set.plugins().len(), 1, "loaded from the finished compile");
        assert_eq!((set.still_starting(), set.compiling().count()), (0, 0));
        assert!(set.problems().is_empty(), "{:?}", set.problems());
    }

    #[tokio::test]
    async fn a_background_compile_that_fails_is_reported_by_the_rescan_and_readiness_stops_waiting() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("broken.wasm"), fixture("not_a_plugin.wasm")).expect("write plugin");
        std::fs::write(dir.path().join("probe.wasm"), fixture("probe.wasm")).expect("write plugin");
        let (mut set, runtime, compiled) = background_set(dir.path());
        assert!(set.scan(&runtime, false).await.is_empty());
        assert_eq!(set.still_starting(), 2);
        // One compile at a time; each asks for a rescan, which loads what has finished.
        let mut errors = Vec::new();
        while set.still_starting() > 0 {
            tokio::time::timeout(std::time::Duration::from_secs(60), compiled.notified()).await.expect("compiled");
            errors.extend(set.scan(&runtime, false).await);
        }
        assert!(
            errors.iter().any(|e| matches!(e, LoadError::Compile { .. } | LoadError::WrongWorld { .. })),
            "the broken file fails as it would have in place: {errors:?}"
        );
        assert_eq!(set.plugins().len(), 1);
        assert_eq!(set.still_starting(), 0, "a failed plugin is not waited for");
    }
}
