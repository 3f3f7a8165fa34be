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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A queue whose every compile is `work` (a stand-in for the compiler: it returns an error,
    /// which the queue keeps like any result), and a count of finished compiles.
    fn queue(parallel: usize) -> (Background, Arc<AtomicUsize>, Arc<tokio::sync::Notify>) {
        let (finished, signal) = (Arc::new(AtomicUsize::new(0)), Arc::new(tokio::sync::Notify::new()));
        let on_compiled = OnCompiled::new({
            let (finished, signal) = (Arc::clone(&finished), Arc::clone(&signal));
            move || {
                finished.fetch_add(1, Ordering::SeqCst);
                signal.notify_one();
            }
        });
        (Background::new(BackgroundCompiles { min_bytes: 0, parallel }, on_compiled), finished, signal)
    }

    async fn until_finished(finished: &AtomicUsize, signal: &tokio::sync::Notify, count: usize) {
        while finished.load(Ordering::SeqCst) < count {
            let _ = tokio::time::timeout(Duration::from_millis(100), signal.notified()).await;
        }
    }

    fn component(n: u8) -> ComponentBytes {
        ComponentBytes::new(vec![n; 16])
    }

    #[tokio::test]
    async fn no_more_than_the_bound_compile_at_once() {
        for parallel in [1, 2] {
            let (background, finished, signal) = queue(parallel);
            let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            for n in 0..5 {
                let (running, most) = (Arc::clone(&running), Arc::clone(&most));
                let work = move |_: Vec<u8>| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Err("stand-in".to_owned())
                };
                assert!(matches!(background.defer(component(n), false, work), Deferral::Compiling));
            }
            until_finished(&finished, &signal, 5).await;
            assert_eq!(most.load(Ordering::SeqCst), parallel, "at most {parallel} at once");
        }
    }

    #[tokio::test]
    async fn a_component_already_compiling_is_queued_once_and_small_or_cached_ones_load_now() {
        let (background, finished, signal) = queue(1);
        let compiles = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let compiles = Arc::clone(&compiles);
            let work = move |_: Vec<u8>| {
                compiles.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(30));
                Err("stand-in".to_owned())
            };
            assert!(matches!(background.defer(component(1), false, work), Deferral::Compiling));
        }
        until_finished(&finished, &signal, 1).await;
        assert_eq!(compiles.load(Ordering::SeqCst), 1);
        // Finished and not yet taken: the load takes it rather than queueing it again.
        let never = |_: Vec<u8>| -> Result<Component, String> { unreachable!("not compiled again") };
        assert!(matches!(background.defer(component(1), false, never), Deferral::LoadNow(_)));
        assert!(background.take(component(1).digest()).is_some_and(|r| r.is_err()));
        assert!(background.take(component(1).digest()).is_none(), "handed out once");
        assert!(matches!(background.defer(component(2), true, never), Deferral::LoadNow(_)), "cached");
        let small = Background::new(BackgroundCompiles { min_bytes: 17, parallel: 1 }, OnCompiled::new(|| {}));
        assert!(matches!(small.defer(component(3), false, never), Deferral::LoadNow(_)), "under the size");
    }

    #[tokio::test]
    async fn unclaimed_results_are_bounded_and_the_oldest_go_first() {
        let (background, finished, signal) = queue(1);
        let count = MAX_UNCLAIMED + 3;
        for n in 0..count {
            let work = |_: Vec<u8>| Err("stand-in".to_owned());
            let _ = background.defer(component(u8::try_from(n).expect("small")), false, work);
        }
        until_finished(&finished, &signal, count).await;
        assert_eq!(background.lock().finished.len(), MAX_UNCLAIMED);
        assert!(background.take(component(0).digest()).is_none(), "the oldest was dropped");
        assert!(background.take(component(u8::try_from(count - 1).expect("small")).digest()).is_some());
    }
}
