//! Compiling large components off the serving path, a bounded number at a time.
//!
//! A Python or JavaScript component is 12–18 MB and takes tens of seconds and ~400 MB to
//! compile cold. Compiled where plugins are loaded, one would hold up the server's start (or a
//! hot reload's other plugins) for that long, and several at once would multiply the peak. So a
//! component of at least `min_bytes` that the compile cache does not already hold is handed to
//! this queue: at most `parallel` compile at once (each on a blocking thread), the result waits
//! here until the plugin set loads the file again (the `done` signal asks it to), and the load
//! then takes it instead of compiling. Smaller components compile where they are loaded, as
//! before: they take milliseconds. Owns no policy: the caller decides what to defer.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use wasmtime::component::Component;

use crate::digest::{ComponentBytes, ComponentDigest};
use crate::model::BackgroundCompiles;

/// Finished compiles kept for a load that has not come yet (the file may have been replaced
/// or removed meanwhile); past this the oldest is dropped and would be compiled again.
const MAX_UNCLAIMED: usize = 8;

/// What a finished background compile calls: the plugin set's rescan, which loads it.
#[derive(Clone)]
pub struct OnCompiled(Arc<dyn Fn() + Send + Sync>);

impl OnCompiled {
    pub fn new(call: impl Fn() + Send + Sync + 'static) -> Self {
        Self(Arc::new(call))
    }
}

impl std::fmt::Debug for OnCompiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnCompiled")
    }
}

/// The queue of background compiles and their results. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Background {
    min_bytes: usize,
    on_compiled: OnCompiled,
    permits: Arc<tokio::sync::Semaphore>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    compiling: HashSet<ComponentDigest>,
    /// Finished compiles not yet taken, oldest first (at most [`MAX_UNCLAIMED`]).
    finished: Vec<(ComponentDigest, Result<Component, String>)>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("compiling", &self.compiling.len())
            .field("finished", &self.finished.len())
            .finish()
    }
}

/// What the queue says about one component.
pub(crate) enum Deferral {
    /// Load it now (small, cached, or already compiled here): the bytes come back.
    LoadNow(ComponentBytes),
    /// It is compiling in the background; `on_compiled` is called when it has.
    Compiling,
}

impl Background {
    pub(crate) fn new(settings: BackgroundCompiles, on_compiled: OnCompiled) -> Self {
        Self {
            min_bytes: settings.min_bytes,
            on_compiled,
            permits: Arc::new(tokio::sync::Semaphore::new(settings.parallel.max(1))),
            state: Arc::default(),
        }
    }

    /// Defer `bytes` if they are large and not compiled yet (`cached`: the compile cache holds
    /// them). `compile` runs on a blocking thread once a permit is free; `on_compiled` is
    /// called after.
    pub(crate) fn defer(
        &self,
        bytes: ComponentBytes,
        cached: bool,
        compile: impl FnOnce(Vec<u8>) -> Result<Component, String> + Send + 'static,
    ) -> Deferral {
        let digest = bytes.digest();
        let mut state = self.lock();
        if bytes.len() < self.min_bytes || cached || state.finished.iter().any(|(d, _)| *d == digest) {
            return Deferral::LoadNow(bytes);
        }
        if !state.compiling.insert(digest) {
            return Deferral::Compiling;
        }
        drop(state);
        let (permits, state, on_compiled) =
            (Arc::clone(&self.permits), Arc::clone(&self.state), self.on_compiled.clone());
        tokio::spawn(async move {
            // The semaphore is never closed, so a permit always comes.
            let _permit = permits.acquire_owned().await;
            let result = tokio::task::spawn_blocking(move || compile(bytes.into_bytes()))
                .await
                .unwrap_or_else(|e| Err(format!("the compiler thread failed: {e}")));
            {
                let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                state.compiling.remove(&digest);
                state.finished.push((digest, result));
                if state.finished.len() > MAX_UNCLAIMED {
                    drop(state.finished.remove(0));
                }
            }
            (on_compiled.0)();
        });
        Deferral::Compiling
    }

    /// The finished compile of `digest`, if there is one (taken: it is handed out once).
    pub(crate) fn take(&self, digest: ComponentDigest) -> Option<Result<Component, String>> {
        let mut state = self.lock();
        let at = state.finished.iter().position(|(d, _)| *d == digest)?;
        Some(state.finished.remove(at).1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
