//! The audit trail: one JSON object per line for every tool call, every capability use or
//! denial, and every step of a call held for approval. A leaf module: any layer may record,
//! none depends on how records are stored.
//!
//! Records name who (agent id when known), what (plugin, tool, capability and target), how it
//! ended and how long it took. They never contain argument values, command arguments, output or
//! secrets: the audit log is often shipped to places the tools' data should not go.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Where audit records go. Cloning shares the sink.
#[derive(Clone)]
pub struct Audit {
    sink: Option<Arc<Mutex<Box<dyn Write + Send>>>>,
    /// Every capability use already passes through here, so denials are counted here too
    /// (even with the audit log off) and the runtime needs no metrics of its own.
    metrics: crate::metrics::Metrics,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("enabled", &self.sink.is_some()).finish()
    }
}

/// How a capability use ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CapabilityOutcome {
    /// Refused by policy; `rule` says which check refused it.
    Denied { rule: String },
    /// A command ran. `ended`: `exited` (with `status`), `signaled` (`signal`), `timeout`,
    /// `cancelled`, or `abandoned` (the call itself ended first). `descendants_killed`: processes
    /// it left behind that the host killed when the run ended (when the mechanism can count them).
    Ran {
        ended: &'static str,
        status: Option<i32>,
        signal: Option<i32>,
        timed_out: bool,
        descendants_killed: Option<u32>,
    },
    /// An HTTP request got a response with this status.
    Responded { status: u16 },
    /// Allowed, but it could not be carried out.
    Failed { reason: String },
}

/// One audit record.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditRecord<'a> {
    ToolCall {
        /// The authenticated principal (its bearer token's name; `anonymous` without tokens).
        principal: Option<&'a str>,
        /// From the client's `X-Agent-Id` header: asserted by the client, not verified.
        agent_id: Option<&'a str>,
        plugin: &'a str,
        /// SHA-256 of the plugin's component: which exact code ran.
        plugin_sha256: &'a str,
        tool: &'a str,
        outcome: &'a str,
        duration_ms: f64,
    },
    /// An access decision on a call (only when the policy has an `[access]` section).
    Access {
        principal: &'a str,
        groups: &'a [&'a str],
        /// From `X-Agent-Id`: asserted by the principal's client.
        agent_id: Option<&'a str>,
        tool: &'a str,
        /// `allow`, `deny` or `approve`.
        decision: &'a str,
        /// The deciding rule; absent when the policy's default decided.
        rule: Option<&'a str>,
        rule_index: Option<usize>,
        by_default: bool,
        /// Every rule that matched, as `#N name`.
        matched: &'a [String],
        /// SHA-256 of the arguments as the plugin would receive them (never the values).
        arguments_sha256: &'a str,
    },
    Capability {
        plugin: &'a str,
        plugin_sha256: &'a str,
        tool: &'a str,
        kind: &'a str,
        target: &'a str,
        #[serde(flatten)]
        outcome: CapabilityOutcome,
        duration_ms: f64,
    },
    /// One step of a host-supervised job (`runtime/jobs/`): `started`, `failed` (could not
    /// start), `refused` (the grant or its arguments), `finished` (exited, or died of a signal),
    /// `timed_out`, `cancelled`, `shutdown`, or `lost` (found running after a restart).
    /// Never the arguments' values.
    Job {
        plugin: &'a str,
        plugin_sha256: &'a str,
        /// The tool whose call started (or tried to start) the job; for `cancelled`, the one
        /// whose call cancelled it (with that version's `plugin_sha256` and agent).
        tool: &'a str,
        /// From the client's `X-Agent-Id` header: asserted by the client, not verified.
        agent_id: Option<&'a str>,
        /// Absent when no job was made.
        job: Option<&'a str>,
        command: &'a str,
        step: &'a str,
        exit_status: Option<i32>,
        signal: Option<i32>,
        reason: Option<&'a str>,
        duration_ms: Option<f64>,
        descendants_killed: Option<u32>,
    },
    /// One step of a call held for an operator's approval (`approvals.rs`): `requested`,
    /// `approved`, `denied`, `expired`, `abandoned` (the caller left; nothing ran) or `ran`.
    /// The arguments appear only as the SHA-256 of their canonical JSON, which ties the record
    /// to what the operator saw without copying the values.
    Approval {
        id: &'a str,
        step: &'a str,
        principal: Option<&'a str>,
        /// From the client's `X-Agent-Id` header: asserted by the client, not verified.
        agent_id: Option<&'a str>,
        tool: &'a str,
        /// The access rule that asked for approval.
        rule: &'a str,
        /// The operator who decided (`unix:uid=1000`, `token:ops`).
        by: Option<&'a str>,
        /// Why it was denied, expired or abandoned.
        reason: Option<&'a str>,
        arguments_sha256: &'a str,
        /// How the approved call ended (`ran` only).
        outcome: Option<&'a str>,
    },
}

impl Audit {
    /// An audit trail that records nothing.
    pub fn disabled(metrics: crate::metrics::Metrics) -> Self {
        Self { sink: None, metrics }
    }

    /// Append records to `writer` (a file, stderr, or a buffer in tests).
    pub fn to_writer(writer: impl Write + Send + 'static, metrics: crate::metrics::Metrics) -> Self {
        Self { sink: Some(Arc::new(Mutex::new(Box::new(writer)))), metrics }
    }

    /// Write one record. A failing sink is reported in the log, never to the caller: auditing
    /// must not change what a call does.
    pub fn record(&self, record: &AuditRecord<'_>) {
        if let AuditRecord::Capability { kind, outcome: CapabilityOutcome::Denied { .. }, .. } = record {
            self.metrics.capability_denied(kind);
        }
        if let AuditRecord::Job { step: "refused", .. } = record {
            self.metrics.capability_denied("job");
        }
        let Some(sink) = &self.sink else { return };
        #[derive(Serialize)]
        struct Stamped<'r, 'a> {
            ts: String,
            #[serde(flatten)]
            record: &'r AuditRecord<'a>,
        }
        let mut line = match serde_json::to_vec(&Stamped { ts: timestamp(), record }) {
            Ok(line) => line,
            Err(e) => return tracing::error!(error = %e, "audit record does not serialize"),
        };
        line.push(b'\n');
        let Ok(mut sink) = sink.lock() else { return };
        // One `write` per record: the sink is usually unbuffered stderr, and a record split
        // across writes could interleave with a log line.
        if let Err(e) = sink.write_all(&line).and_then(|()| sink.flush()) {
            tracing::error!(error = %e, "cannot write the audit record");
        }
    }
}

/// Seconds since the Unix epoch with millisecond precision: sortable, and no date crate needed.
fn timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", now.as_secs(), now.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn records_are_json_lines_with_flattened_outcomes() {
        let buffer = Buffer::default();
        let audit = Audit::to_writer(buffer.clone(), crate::metrics::Metrics::new());
        audit.record(&AuditRecord::Capability {
            plugin: "p",
            plugin_sha256: "00",
            tool: "t",
            kind: "command",
            target: "deploy",
            outcome: CapabilityOutcome::Denied { rule: "no such command grant".into() },
            duration_ms: 0.5,
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf8");
        let value: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(value["event"], "capability");
        assert_eq!(value["result"], "denied");
        assert_eq!(value["rule"], "no such command grant");
        assert_eq!(value["target"], "deploy");
        assert_eq!(value["plugin_sha256"], "00");
        assert!(value["ts"].as_str().is_some_and(|ts| ts.contains('.')));
    }

    #[test]
    fn denials_are_counted_even_with_the_log_off() {
        let metrics = crate::metrics::Metrics::new();
        let audit = Audit::disabled(metrics.clone());
        let record = |outcome| AuditRecord::Capability {
            plugin: "p",
            plugin_sha256: "00",
            tool: "t",
            kind: "http",
            target: "example.com",
            outcome,
            duration_ms: 0.1,
        };
        audit.record(&record(CapabilityOutcome::Denied { rule: "no http grant".into() }));
        audit.record(&record(CapabilityOutcome::Responded { status: 200 }));
        let text = metrics.encode();
        assert!(text.contains(r#"sanctum_capability_denials_total{kind="http"} 1"#), "{text}");
    }
}
