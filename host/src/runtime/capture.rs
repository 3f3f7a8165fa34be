//! A guest's stdout and stderr: kept up to the per-call capture cap, and past it discarded
//! while the guest's writes still succeed. Only the sandbox builds one (`sandbox.rs`); what it
//! kept is logged at debug and never reaches a client.
//!
//! wasmtime's `MemoryOutputPipe` refuses a write past its capacity (and traps on one past a
//! permit), so a plugin that prints a lot failed: Rust's `println!` panics, Python raises
//! `BrokenPipeError`. A plugin's stdout is a diagnostics channel, not its result, so too much of
//! it must cost bytes we drop, never the call.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much one write may hand over at once (a permit, not a cap: everything is accepted).
const PERMIT: usize = 64 * 1024;

/// The end of what was discarded, kept apart: a guest's panic report is the last thing it
/// writes, and is quoted back even after a flood.
const TAIL: usize = 4096;

/// One output stream of one call. Clones share the buffer.
#[derive(Debug, Clone)]
pub(crate) struct CappedOutput {
    cap: usize,
    inner: Arc<Mutex<Kept>>,
}

#[derive(Debug, Default)]
struct Kept {
    bytes: BytesMut,
    discarded: u64,
    /// The last [`TAIL`] bytes of those discarded.
    tail: BytesMut,
}

impl CappedOutput {
    pub(crate) fn new(cap: usize) -> Self {
        Self { cap, inner: Arc::default() }
    }

    /// What was kept, and how many bytes past the cap were dropped.
    pub(crate) fn contents(&self) -> (Bytes, u64) {
        let kept = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (kept.bytes.clone().freeze(), kept.discarded)
    }

    /// The last bytes written: everything kept when nothing was discarded, else the end of
    /// what was.
    pub(crate) fn last_written(&self) -> Bytes {
        let kept = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.discarded == 0 { kept.bytes.clone().freeze() } else { kept.tail.clone().freeze() }
    }

    fn keep(&self, bytes: &[u8]) {
        let mut kept = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let room = self.cap.saturating_sub(kept.bytes.len());
        let (taken, dropped) = bytes.split_at(bytes.len().min(room));
        kept.bytes.extend_from_slice(taken);
        if dropped.is_empty() {
            return;
        }
        kept.discarded = kept.discarded.saturating_add(dropped.len() as u64);
        let dropped = &dropped[dropped.len().saturating_sub(TAIL)..];
        let excess = (kept.tail.len() + dropped.len()).saturating_sub(TAIL);
        let _ = kept.tail.split_to(excess);
        kept.tail.extend_from_slice(dropped);
    }
}

#[async_trait::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

#[async_trait::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(PERMIT)
    }
}

impl tokio::io::AsyncWrite for CappedOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.keep(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_past_the_cap_succeed_and_are_counted_not_kept() {
        let output = CappedOutput::new(10);
        let mut stream = output.p2_stream();
        for _ in 0..3 {
            assert!(stream.check_write().is_ok_and(|permit| permit > 0));
            stream.write(Bytes::from_static(b"abcdef")).expect("accepted");
        }
        assert_eq!(output.contents(), (Bytes::from_static(b"abcdefabcd"), 8));
        assert_eq!(output.last_written(), Bytes::from_static(b"efabcdef"));
    }

    #[test]
    fn the_end_of_a_flood_is_kept_for_a_panic_report() {
        let output = CappedOutput::new(16);
        let mut stream = output.p2_stream();
        stream.write(Bytes::from(vec![b'x'; 100_000])).expect("accepted");
        stream.write(Bytes::from_static(b"panicked at src/lib.rs:1:1:\nboom\n")).expect("accepted");
        let last = output.last_written();
        assert_eq!(last.len(), TAIL);
        assert!(last.ends_with(b"panicked at src/lib.rs:1:1:\nboom\n"));
        assert_eq!(output.contents().0.len(), 16);
    }
}
