//! Where a call's time goes inside the server: `GET /metrics` before and after a cell, and the
//! mean of each phase of the `sanctum_call_phase_seconds{phase}` histogram over the cell
//! (Δsum ÷ Δcount). Absent metric (an older server) → `None`, never a failure.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;

use crate::http::{self, Conn};

const METRIC: &str = "sanctum_call_phase_seconds";

/// The phases in the order a call passes them; `handler` (the MCP layer's whole handling of
/// `tools/call`) contains the others but `teardown`, which the worker does after answering.
pub(crate) const PHASES: [&str; 7] = ["handler", "validate", "queue", "instantiate", "guest", "finish", "teardown"];

/// Sum and count of each phase at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot(BTreeMap<String, (f64, f64)>);

impl Snapshot {
    pub(crate) async fn scrape(addr: SocketAddr) -> Result<Self, String> {
        let mut conn = Conn::open(addr).await?;
        let response = conn.send(conn.request(Method::GET, "/metrics"), Bytes::new()).await?;
        let status = response.status();
        let body = http::read_body(response).await?;
        if status != 200 {
            return Err(format!("GET /metrics: HTTP {status}"));
        }
        Ok(Self::parse(&String::from_utf8_lossy(&body)))
    }

    /// Sum the `_sum` and `_count` series of each phase over any other labels.
    fn parse(text: &str) -> Self {
        let mut phases = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(METRIC) else { continue };
            let (is_sum, rest) = if let Some(rest) = rest.strip_prefix("_sum{") {
                (true, rest)
            } else if let Some(rest) = rest.strip_prefix("_count{") {
                (false, rest)
            } else {
                continue;
            };
            let Some((labels, value)) = rest.split_once('}') else { continue };
            let Some(phase) = labels.split(',').find_map(|l| l.strip_prefix("phase=\"")?.strip_suffix('"')) else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else { continue };
            let entry: &mut (f64, f64) = phases.entry(phase.to_owned()).or_default();
            if is_sum {
                entry.0 += value;
            } else {
                entry.1 += value;
            }
        }
        Self(phases)
    }

    /// Mean duration of `phase` over the calls between `earlier` and `self`.
    pub(crate) fn mean_since(&self, earlier: &Self, phase: &str) -> Option<Duration> {
        let (sum, count) = self.0.get(phase)?;
        let (sum0, count0) = earlier.0.get(phase).copied().unwrap_or_default();
        let calls = count - count0;
        (calls > 0.0).then(|| Duration::from_secs_f64(((sum - sum0) / calls).max(0.0)))
    }
}
