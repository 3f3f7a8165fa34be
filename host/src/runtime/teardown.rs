//! A finished call's sandbox, held until its answer has gone.
//!
//! Returning a store's memories and tables to the pool (resetting every page the guest dirtied)
//! is part of each call's cost, but not of its answer: the worker sends the reply first and then
//! drops the [`Teardown`], before it takes the next call, so no sandbox ever outlives the
//! worker's turn and none is reused. Owns only that hand-over; it never touches the guest.

use std::time::Instant;

use wasmtime::Store;

use super::sandbox::CallState;
use crate::metrics::{CallPhase, Metrics};

/// The store of a call whose result has been taken; dropping it tears the sandbox down.
#[must_use = "dropping a Teardown is what frees the call's sandbox; drop it after replying"]
pub struct Teardown(Option<(Store<CallState>, Metrics)>);

impl Teardown {
    pub(super) fn new(store: Store<CallState>, metrics: Metrics) -> Self {
        Self(Some((store, metrics)))
    }

    /// For a call whose sandbox was never built.
    pub(super) fn nothing() -> Self {
        Self(None)
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some((store, metrics)) = self.0.take() {
            let started = Instant::now();
            drop(store);
            metrics.call_phase(CallPhase::Teardown, started.elapsed());
        }
    }
}

impl std::fmt::Debug for Teardown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teardown").field("pending", &self.0.is_some()).finish()
    }
}
