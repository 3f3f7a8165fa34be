//! The MCP layer: an rmcp [`ServerHandler`] over the tool registry.
//!
//! Owns tool listing, calls (with cancellation), the notifications a call produces, telling
//! clients when the tool list changes (`notifications/tools/list_changed`: to every handshake
//! session, whatever its transport, and on 2026-07-28 `subscriptions/listen` streams), the
//! per-session log level, and — in [`outcome`] — the rule deciding JSON-RPC error versus
//! `isError` result. It knows no HTTP and no wasmtime: transports hand it sessions, and it
//! hands the registry validated-at-the-gate calls.

// MCP logging is deprecated by 2026-07-28 (SEP-2577) but is how every handshake-era client,
// Letta included, receives a plugin's log messages; we keep serving it.
#![allow(deprecated)]

mod list_changed;
mod listing;
mod notify;
mod outcome;

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult, LoggingLevel, PaginatedRequestParams,
    ProtocolVersion, RequestId, ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscriptionFilter, Tool,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio::sync::mpsc;

use crate::access::Listed;
use crate::metrics::{CallPhase, Metrics};
use crate::model::CallContext;
use crate::principal::Principal;
use crate::registry::{CallError, Completed, Registry};
pub use listing::ListingEra;
use listing::{CallerKey, Listings};
use notify::{Forwarder, Forwarding};

/// Which transport a handler instance serves; it bounds the protocol versions offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `/mcp`: handshake-era sessions and stateless 2026-07-28 requests.
    StreamableHttp,
    /// `/sse` + `/messages`: a 2024-11-05 transport, so only handshake-era versions, which
    /// makes clients that probe `server/discover` fall back to `initialize`.
    LegacySse,
}

/// The MCP server. Cheap to clone; [`McpServer::session`] makes one per client session.
#[derive(Debug, Clone)]
pub struct McpServer {
    shared: Arc<Shared>,
    transport: Transport,
    /// Set by `logging/setLevel` for this session.
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
}

#[derive(Debug)]
struct Shared {
    registry: Arc<Registry>,
    /// Each caller's listing, rendered once per registry generation.
    listings: Listings,
    /// Every tool, unfiltered: what `get_tool` answers (rmcp's header checks), per generation.
    all_tools: Mutex<(u64, Arc<Vec<Tool>>)>,
    /// Handshake sessions (both transports), told when their tool list changes.
    sessions: list_changed::Sessions,
    metrics: Metrics,
}

impl Shared {
    /// What the anonymous caller without groups or agent is listed (everything, without `[access]`).
    #[cfg(test)]
    fn tools(&self) -> Arc<Vec<Tool>> {
        let key = CallerKey::of(&rmcp::model::Extensions::new());
        self.listings.get(&self.registry, &key).tools
    }

    fn all_tools(&self) -> Arc<Vec<Tool>> {
        let generation = self.registry.generation();
        let mut cached = self.all_tools.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cached.0 != generation || cached.1.is_empty() {
            let tools = self.registry.tools().map(|t| listing::render_tool(&t, Listed::Open)).collect();
            *cached = (generation, Arc::new(tools));
        }
        Arc::clone(&cached.1)
    }
}

impl McpServer {
    /// The server over `registry`. Must be called within a tokio runtime: it starts the task
    /// that tells sessions about tool list changes. Handler times go to `metrics`.
    pub fn new(registry: Arc<Registry>, metrics: Metrics) -> Self {
        let shared = Arc::new(Shared {
            listings: Listings::default(),
            all_tools: Mutex::new((0, Arc::new(Vec::new()))),
            sessions: list_changed::Sessions::default(),
            registry,
            metrics,
        });
        list_changed::start(&shared);
        Self { shared, transport: Transport::StreamableHttp, log_level: Arc::new(Mutex::new(None)) }
    }

    /// A handler for one new session on `transport`, with its own log level.
    pub fn session(&self, transport: Transport) -> Self {
        Self { shared: Arc::clone(&self.shared), transport, log_level: Arc::new(Mutex::new(None)) }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.shared.registry
    }

    /// The whole JSON-RPC response to a plain `tools/list` request `id` of `era` by the caller
    /// of `parts`, for a transport to send as it is: Letta lists the tools in every fresh
    /// session, so the list is serialized once per registry generation, era and tool set and
    /// only copied here. Exactly what [`ServerHandler::list_tools`] answers through rmcp (a
    /// test holds the two equal); for a handshake session only once its handshake is done.
    pub fn tools_list_response(&self, parts: &http::request::Parts, id: &RequestId, era: ListingEra) -> String {
        let listing = self.shared.listings.get(&self.shared.registry, &CallerKey::of_parts(parts));
        let result = listing.result(era);
        let id = serde_json::to_string(id).unwrap_or_default();
        let mut response = String::with_capacity(result.len() + id.len() + 40);
        response.push_str(r#"{"jsonrpc":"2.0","id":"#);
        response.push_str(&id);
        response.push_str(r#","result":"#);
        response.push_str(&result);
        response.push('}');
        response
    }

    fn forwarding(&self, ctx: &RequestContext<RoleServer>, tool: &str) -> Forwarding {
        let stateless = ctx.protocol_version().is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        let min_log_level = if stateless {
            ctx.meta.log_level()
        } else {
            Some(self.log_level.lock().map(|l| l.unwrap_or(LoggingLevel::Info)).unwrap_or(LoggingLevel::Info))
        };
        Forwarding {
            peer: ctx.peer.clone(),
            progress_token: ctx.meta.get_progress_token(),
            min_log_level,
            logger: tool.to_owned(),
        }
    }
}

/// The MCP result a client would get for `outcome` (for `sanctum call`, which has no client).
pub fn render_outcome(outcome: Result<Completed, CallError>) -> Result<rmcp::model::CallToolResult, ErrorData> {
    outcome::render(outcome)
}

/// Letta sends `X-Agent-Id` on every request: recorded, and matched by agent rules (which are
/// exactly as strong as the principal whose client sends it).
fn agent_id(ctx: &RequestContext<RoleServer>) -> Option<String> {
    listing::agent_id(&ctx.extensions.get::<http::request::Parts>()?.headers)
}

/// The principal the transport authenticated (absent only for calls that did not come over HTTP).
fn principal(ctx: &RequestContext<RoleServer>) -> Option<Principal> {
    ctx.extensions.get::<http::request::Parts>()?.extensions.get::<Principal>().cloned()
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        // listChanged: plugins are hot-reloaded; every session is told (see `list_changed`).
        let capabilities =
            ServerCapabilities::builder().enable_tools().enable_tool_list_changed().enable_logging().build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "sanctum serves tools from sandboxed WebAssembly plugins. Tool names are <plugin>__<tool>; \
                 `health` reports the loaded plugins.",
            )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        match self.transport {
            Transport::StreamableHttp => Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS),
            Transport::LegacySse => Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25)),
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let listing = self.shared.listings.get(&self.shared.registry, &CallerKey::from_request(&ctx));
        // One page: Letta's clients never follow `nextCursor`.
        Ok(ListToolsResult::with_all_items(listing.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.shared.all_tools().iter().find(|t| t.name == name).cloned()
    }

    async fn on_initialized(&self, ctx: NotificationContext<RoleServer>) {
        let key = CallerKey::of(&ctx.extensions);
        let fingerprint = self.shared.listings.get(&self.shared.registry, &key).fingerprint;
        self.shared.sessions.add(ctx.peer, key, fingerprint);
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        list_changed::accepted(requested)
    }

    async fn listen(&self, ctx: SubscriptionContext) -> Result<(), ErrorData> {
        list_changed::listen(self.shared.registry.subscribe(), ctx).await;
        Ok(())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut level) = self.log_level.lock() {
            *level = Some(request.level);
        }
        Ok(())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = std::time::Instant::now();
        let name = request.name.as_ref();
        let principal = principal(&ctx);
        if let Some(principal) = &principal
            && let Err(retry_after) = principal.take_call()
        {
            tracing::info!(principal = %principal.name(), tool = %name, "tool call rate limited");
            return Ok(CallToolResponse::from(outcome::rate_limited(retry_after)));
        }
        // Cancelled by `notifications/cancelled`, a closed 2026 stream, or this future being
        // dropped; the worker then interrupts the guest within one epoch tick.
        let cancel = ctx.ct.child_token();
        let _cancel_if_dropped = cancel.clone().drop_guard();
        let (events, reports) = mpsc::channel(notify::EVENT_BUFFER);
        let forwarder = Forwarder::start(reports, self.forwarding(&ctx, name));
        let call = CallContext {
            cancel,
            events: Some(events),
            agent_id: agent_id(&ctx),
            groups: principal.as_ref().map_or_else(|| Arc::from([]), |p| Arc::clone(p.groups())),
            principal: principal.map(|p| p.name().to_owned()),
        };
        let outcome = self.shared.registry.call(name, request.arguments, call).await;
        forwarder.flush().await;
        let response = outcome::render(outcome).map(CallToolResponse::from);
        self.shared.metrics.call_phase(CallPhase::Handler, started.elapsed());
        response
    }
}

#[cfg(test)]
mod tests;
