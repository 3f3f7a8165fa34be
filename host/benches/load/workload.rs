//! What is called and what must come back: the two tools of the `bench` fixture plugin, their
//! arguments, and the check every reply gets. A benchmark that counted error replies as calls
//! would measure nothing, so each result is compared with the expected one in full.

use serde_json::Value;

use crate::summary::{self, Args, Record, Status};

/// The fixture's plugin name, a placeholder the start-up test patches (`bench01`, ...).
pub(crate) const PLUGIN: &str = "bench00";

/// One tool with its arguments and expected result.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    /// The plugin that serves it.
    pub(crate) plugin: &'static str,
    /// The tool within the plugin (`echo`, `summarize`); the native CLIs take this name.
    pub(crate) tool: &'static str,
    /// The arguments, serialized once.
    pub(crate) arguments: String,
    /// What the tool returns: the text for `echo`, the structured content for `summarize`.
    pub(crate) expected: Value,
}

impl Workload {
    pub(crate) fn echo() -> Self {
        Self::echo_of(PLUGIN)
    }

    /// `echo` of another plugin with the same tool (the Python and JS twins).
    pub(crate) fn echo_of(plugin: &'static str) -> Self {
        Self { plugin, tool: "echo", arguments: r#"{"text":"hello"}"#.to_owned(), expected: Value::from("hello") }
    }

    /// ~30 records, ~3.5 KB of arguments; the result is a few KB.
    pub(crate) fn summarize() -> Self {
        let args = records();
        let arguments = serde_json::to_string(&args).expect("arguments serialize");
        let expected = serde_json::to_value(summary::summarize(args)).expect("summary serializes");
        Self { plugin: PLUGIN, tool: "summarize", arguments, expected }
    }

    /// The name MCP clients call: `<plugin>__<tool>`.
    pub(crate) fn mcp_name(&self) -> String {
        format!("{}__{}", self.plugin, self.tool)
    }

    /// Check a `tools/call` result: not an error, and the expected content.
    pub(crate) fn check_mcp(&self, result: &Value) -> Result<(), String> {
        if result.get("isError") != Some(&Value::Bool(false)) {
            return Err(format!("not a success: {}", clip(result)));
        }
        let got = if self.tool == "echo" {
            result.pointer("/content/0/text").cloned().unwrap_or(Value::Null)
        } else {
            result.get("structuredContent").cloned().unwrap_or(Value::Null)
        };
        self.check_value(&got)
    }

    /// Check what a native CLI printed: the same value the plugin returns.
    pub(crate) fn check_value(&self, got: &Value) -> Result<(), String> {
        if json_eq(got, &self.expected) {
            Ok(())
        } else {
            Err(format!("unexpected result for {}: {}", self.tool, clip(got)))
        }
    }
}

/// Deterministic service records: 30 services of 5 teams, fractional CPU times, 1-4 tags each.
fn records() -> Args {
    const TEAMS: [&str; 5] = ["payments", "search", "identity", "storage", "edge"];
    const TAGS: [&str; 6] = ["prod", "eu-west-1", "canary", "batch", "latency-critical", "on-call"];
    let records = (0..30u32)
        .map(|i| Record {
            name: format!("service-{i:02}-{}", ["api", "worker", "cron"][(i % 3) as usize]),
            team: TEAMS[(i % 5) as usize].to_owned(),
            // Fractional (never integers), so every twin's JSON carries them as floats.
            cpu_ms: f64::from((i * 7919 + 13) % 5000) + 0.25 + f64::from(i % 4) * 0.125,
            status: match i % 7 {
                0 => Status::Down,
                1 | 4 => Status::Degraded,
                _ => Status::Ok,
            },
            tags: (0..1 + i % 4).map(|k| TAGS[((i + k * 5) % 6) as usize].to_owned()).collect(),
        })
        .collect();
    Args { records }
}

/// JSON equality with numbers compared as floats to 1e-9 relative: serde_json's default float
/// parsing may be one unit in the last place off, and a result crosses several parsers
/// (plugin, host, client) on its way here.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A value shortened for an error message.
fn clip(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 300 {
        let mut end = 300;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}
