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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use wasmtime::component::Component;

use crate::digest::{ComponentBytes, ComponentDigest};
use crate::model::BackgroundCompiles;

/// Finished compiles kept for a load that has not come yet (the file may have been replaced
/// or removed meanwhile); past this the oldest is dropped and would be compiled again.
const MAX_UNCLAIMED: usize = 8;

/// The queue of background compiles and their results. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Background {
    settings: BackgroundCompiles,
    permits: Arc<tokio::sync::Semaphore>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    compiling: HashSet<ComponentDigest>,
    finished: HashMap<ComponentDigest, Result<Component, String>>,
    /// `finished`'s keys, oldest first.
    order: VecDeque<ComponentDigest>,
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
    /// It is compiling in the background; `done` will be called when it has.
    Compiling,
}

impl Background {
    pub(crate) fn new(settings: BackgroundCompiles) -> Self {
        let parallel = settings.parallel.max(1);
        Self {
            settings: BackgroundCompiles { parallel, ..settings },
            permits: Arc::new(tokio::sync::Semaphore::new(parallel)),
            state: Arc::default(),
        }
    }

    /// Defer `bytes` if they are large and not compiled yet (`cached`: the compile cache holds
    /// them). `compile` runs on a blocking thread once a permit is free; `done` is called after.
    pub(crate) fn defer(
        &self,
        bytes: ComponentBytes,
        cached: bool,
        compile: impl FnOnce(Vec<u8>) -> Result<Component, String> + Send + 'static,
        done: Arc<dyn Fn() + Send + Sync>,
    ) -> Deferral {
        let digest = bytes.digest();
        let mut state = self.lock();
        if bytes.len() < self.settings.min_bytes || cached || state.finished.contains_key(&digest) {
            return Deferral::LoadNow(bytes);
        }
        if !state.compiling.insert(digest) {
            return Deferral::Compiling;
        }
        drop(state);
        let (permits, state) = (Arc::clone(&self.permits), Arc::clone(&self.state));
        tokio::spawn(async move {
            // The semaphore is never closed, so a permit always comes.
            let _permit = permits.acquire_owned().await;
            let result = tokio::task::spawn_blocking(move || compile(bytes.into_bytes()))
                .await
                .unwrap_or_else(|e| Err(format!("the compiler thread failed: {e}")));
            {
                let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                state.compiling.remove(&digest);
                state.finished.insert(digest, result);
                state.order.push_back(digest);
                while state.order.len() > MAX_UNCLAIMED {
                    if let Some(oldest) = state.order.pop_front() {
                        state.finished.remove(&oldest);
                    }
                }
            }
            done();
        });
        Deferral::Compiling
    }

    /// The finished compile of `digest`, if there is one (taken: it is handed out once).
    pub(crate) fn take(&self, digest: ComponentDigest) -> Option<Result<Component, String>> {
        let mut state = self.lock();
        let result = state.finished.remove(&digest)?;
        state.order.retain(|d| *d != digest);
        Some(result)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
