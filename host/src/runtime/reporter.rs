//! The host side of the `host` WIT interface: log, progress and cancellation checks from a
//! running guest, capped and forwarded as [`CallEvent`]s to whoever started the call.
//!
//! A guest can call these in a tight loop, so nothing here may block or grow without bound:
//! events go through a bounded channel with `try_send`, and each call has a quota.

use tokio::sync::mpsc;

use super::bindings::{host, types};
use super::redact::Redactor;
use super::sandbox::CallState;
use crate::model::{CallEvent, Limits, LogLevel};

/// Forwards one call's events within its quota. Events beyond the quota or a full channel are
/// dropped and counted; the guest is never slowed down or failed for reporting too much.
#[derive(Debug)]
pub(crate) struct Reporter {
    plugin: String,
    sink: Option<mpsc::Sender<CallEvent>>,
    max_message_bytes: usize,
    remaining: u32,
    dropped: u32,
    last_progress: Option<f64>,
    redactor: Redactor,
}

impl Reporter {
    pub(crate) fn new(
        plugin: &str,
        sink: Option<mpsc::Sender<CallEvent>>,
        limits: &Limits,
        redactor: Redactor,
    ) -> Self {
        Self {
            plugin: plugin.to_owned(),
            sink,
            max_message_bytes: limits.max_message_bytes,
            remaining: limits.max_events_per_call,
            dropped: 0,
            last_progress: None,
            redactor,
        }
    }

    /// Events dropped so far (quota, full channel, or invalid progress).
    pub(crate) fn dropped(&self) -> u32 {
        self.dropped
    }

    fn log(&mut self, level: LogLevel, mut message: String) {
        self.redactor.text(&mut message);
        super::truncate_utf8(&mut message, self.max_message_bytes);
        // Guest log text may echo arguments, so it stays at debug in the host's own log.
        tracing::debug!(plugin = %self.plugin, ?level, %message, "plugin log");
        self.emit(CallEvent::Log { level, message });
    }

    fn progress(&mut self, progress: f64, total: Option<f64>, message: Option<String>) {
        // MCP requires progress to increase; a report that goes backwards or is not a finite
        // number would confuse clients, so it is dropped rather than forwarded.
        let increases = self.last_progress.is_none_or(|last| progress > last);
        let finite = progress.is_finite() && total.is_none_or(f64::is_finite);
        if !(increases && finite) {
            self.dropped += 1;
            return;
        }
        self.last_progress = Some(progress);
        let message = message.map(|mut m| {
            self.redactor.text(&mut m);
            super::truncate_utf8(&mut m, self.max_message_bytes);
            m
        });
        self.emit(CallEvent::Progress { progress, total, message });
    }

    fn emit(&mut self, event: CallEvent) {
        let Some(sink) = &self.sink else { return };
        if self.remaining == 0 || sink.try_send(event).is_err() {
            self.dropped += 1;
            return;
        }
        self.remaining -= 1;
    }
}

impl types::Host for CallState {}

impl host::Host for CallState {
    fn log(&mut self, level: types::LogLevel, message: String) {
        let level = match level {
            types::LogLevel::Debug => LogLevel::Debug,
            types::LogLevel::Info => LogLevel::Info,
            types::LogLevel::Warning => LogLevel::Warning,
            types::LogLevel::Error => LogLevel::Error,
        };
        self.reporter.log(level, message);
    }

    fn progress(&mut self, progress: f64, total: Option<f64>, message: Option<String>) {
        self.reporter.progress(progress, total, message);
    }

    fn is_cancelled(&mut self) -> bool {
        self.cancel.is_cancelled()
    }

    fn agent_id(&mut self) -> Option<String> {
        self.scope.agent_id.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter(capacity: usize, quota: u32) -> (Reporter, mpsc::Receiver<CallEvent>) {
        let (tx, rx) = mpsc::channel(capacity);
        let limits = Limits { max_events_per_call: quota, max_message_bytes: 8, ..Limits::default() };
        (Reporter::new("p", Some(tx), &limits, Redactor::default()), rx)
    }

    #[test]
    fn progress_that_does_not_increase_is_dropped() {
        let (mut r, mut rx) = reporter(16, 100);
        r.progress(1.0, Some(3.0), None);
        r.progress(1.0, Some(3.0), None);
        r.progress(f64::NAN, None, None);
        r.progress(2.0, None, Some("x".into()));
        assert_eq!(r.dropped(), 2);
        assert!(matches!(rx.try_recv(), Ok(CallEvent::Progress { progress, .. }) if progress == 1.0));
        assert!(matches!(rx.try_recv(), Ok(CallEvent::Progress { progress, .. }) if progress == 2.0));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn events_beyond_the_quota_or_channel_are_dropped_not_blocking() {
        let (mut r, mut rx) = reporter(2, 100);
        for _ in 0..5 {
            r.log(LogLevel::Info, "hello".into());
        }
        assert_eq!(r.dropped(), 3);
        let (mut r, _rx2) = reporter(100, 1);
        r.log(LogLevel::Info, "a".into());
        r.log(LogLevel::Info, "b".into());
        assert_eq!(r.dropped(), 1);
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let (mut r, mut rx) = reporter(4, 10);
        r.log(LogLevel::Warning, "ééééééé".into());
        match rx.try_recv() {
            Ok(CallEvent::Log { message, .. }) => {
                assert!(message.len() <= 8 && message.starts_with("éé"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
