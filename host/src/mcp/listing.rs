//! Per-caller tool listings: each caller (principal, groups, agent) sees only the tools the
//! access rules could let it call, and a tool that needs an operator's approval says so.
//!
//! Listings are rendered once per registry generation and caller, and reused: `tools/list` runs
//! on every Letta operation, while reloads and policy changes are rare. The cache is bounded in
//! callers and starts over at each generation, so no listing outlives a reload, a pin change
//! or a policy change. A plain `tools/list` of either protocol era is answered with the
//! listing's serialized bytes for that era (see [`Listing::result`]), so listing costs a copy,
//! not a render; callers listed the same tools share those bytes, so they are bounded by the
//! distinct tool sets the access rules give, not by the number of callers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::RoleServer;
use rmcp::model::{ListToolsResult, MetaObject, ServerResult, Tool, ToolAnnotations};
use rmcp::service::RequestContext;

use crate::access::{Caller, Listed};
use crate::principal::{ANONYMOUS, Principal};
use crate::registry::{Registry, ToolSpec};

/// Callers whose listings are kept per generation; past it the cache starts over (a client
/// inventing agent ids costs renders, never memory).
const MAX_CACHED_CALLERS: usize = 1024;

/// Longest agent id kept; it is client-asserted text headed for logs and rules.
const MAX_AGENT_ID: usize = 128;

/// Who is asking, as far as listings and access rules can tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CallerKey {
    pub(crate) principal: Arc<str>,
    pub(crate) groups: Arc<[Arc<str>]>,
    pub(crate) agent: Option<Arc<str>>,
}

impl CallerKey {
    /// The caller of a request: the transport's principal (anonymous when the request did not
    /// come over HTTP) and the `X-Agent-Id` header.
    pub(crate) fn of(extensions: &rmcp::model::Extensions) -> Self {
        match extensions.get::<http::request::Parts>() {
            Some(parts) => Self::of_parts(parts),
            None => Self { principal: Arc::from(ANONYMOUS), groups: Arc::from([]), agent: None },
        }
    }

    /// The caller of an HTTP request the transport has not handed to rmcp.
    pub(crate) fn of_parts(parts: &http::request::Parts) -> Self {
        let principal = parts.extensions.get::<Principal>();
        Self {
            principal: principal.map_or_else(|| Arc::from(ANONYMOUS), |p| Arc::from(p.name())),
            groups: principal.map_or_else(|| Arc::from([]), |p| Arc::clone(p.groups())),
            agent: agent_id(&parts.headers).map(Arc::from),
        }
    }

    pub(crate) fn from_request(ctx: &RequestContext<RoleServer>) -> Self {
        Self::of(&ctx.extensions)
    }

    pub(crate) fn caller(&self) -> Caller<'_> {
        Caller { principal: &self.principal, groups: &self.groups, agent: self.agent.as_deref() }
    }
}

/// Letta sends `X-Agent-Id` on every request: printable ASCII, bounded, or nothing. Letta Code
/// over SSE sends a configured header twice, comma-joined (`a, a`): one value repeated is that
/// value; different values are kept as sent, which names no agent a rule can list.
pub(crate) fn agent_id(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get("x-agent-id")?.to_str().ok()?;
    let mut parts = value.split(',').map(str::trim);
    let first = parts.next().unwrap_or_default();
    let value = if !first.is_empty() && parts.all(|p| p == first) { first } else { value };
    let clean: String = value.chars().filter(|c| c.is_ascii_graphic()).take(MAX_AGENT_ID).collect();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_id_sent_twice_is_one_agent_and_two_agents_are_none_of_them() {
        let of = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("x-agent-id", value.parse().expect("header"));
            agent_id(&headers)
        };
        assert_eq!(of("ops-agent").as_deref(), Some("ops-agent"));
        assert_eq!(of("ops-agent, ops-agent").as_deref(), Some("ops-agent"));
        assert_eq!(of("ops-agent, support-agent").as_deref(), Some("ops-agent,support-agent"));
        assert_eq!(of("  "), None);
        assert_eq!(of(&"a".repeat(500)).map(|a| a.len()), Some(MAX_AGENT_ID));
    }

    #[tokio::test]
    async fn callers_listed_the_same_tools_share_one_rendered_and_serialized_list() {
        let (registry, _, _) = crate::registry::tests::echo_registry(crate::pins::Pins::disabled()).await;
        let listings = Listings::default();
        let caller =
            |agent: &str| CallerKey { principal: Arc::from("p"), groups: Arc::from([]), agent: Some(Arc::from(agent)) };
        let first = listings.get(&registry, &caller("invented-1")).result(ListingEra::Handshake);
        for i in 2..100 {
            let again = listings.get(&registry, &caller(&format!("invented-{i}"))).result(ListingEra::Handshake);
            assert!(Arc::ptr_eq(&first, &again), "caller {i} got its own copy");
        }
        assert_eq!(listings.cache.lock().expect("lock").by_set.len(), 1);
        let result: serde_json::Value = serde_json::from_str(&first).expect("JSON");
        assert!(result["tools"].as_array().is_some_and(|t| !t.is_empty()), "{result}");
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_its_bound_of_callers() {
        let (registry, _, _) = crate::registry::tests::echo_registry(crate::pins::Pins::disabled()).await;
        let listings = Listings::default();
        for i in 0..=MAX_CACHED_CALLERS + 10 {
            let key = CallerKey {
                principal: Arc::from("p"),
                groups: Arc::from([]),
                agent: Some(Arc::from(format!("agent-{i}"))),
            };
            let listing = listings.get(&registry, &key);
            assert!(!listing.tools.is_empty());
            let cache = listings.cache.lock().expect("lock");
            assert!(cache.by_caller.len() <= MAX_CACHED_CALLERS, "{} callers cached", cache.by_caller.len());
            assert!(cache.by_set.len() <= cache.by_caller.len(), "rendered lists outnumber callers");
        }
    }
}

/// The protocol eras whose `tools/list` results differ in shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingEra {
    /// 2024-11-05 … 2025-11-25, in a session opened by `initialize`.
    Handshake,
    /// 2026-07-28, stateless, with per-request metadata.
    Stateless,
}

/// One caller's rendered listing.
#[derive(Debug, Clone)]
pub(crate) struct Listing {
    pub(crate) tools: Arc<Vec<Tool>>,
    /// Equal for two listings exactly when a client would see the same tools.
    pub(crate) fingerprint: u64,
    /// The `tools/list` result per era, serialized on first use and shared by every later
    /// request listed the same tools in this generation.
    results: Results,
}

impl Listing {
    /// The serialized `result` of a `tools/list` of `era`: exactly what rmcp's handler would
    /// send (the same shaping for the era, then serialized), built once.
    pub(crate) fn result(&self, era: ListingEra) -> Arc<str> {
        let (cell, shape): (_, fn(&mut ServerResult)) = match era {
            ListingEra::Handshake => (&self.results.handshake, |result| {
                result.strip_result_type_for_legacy_peer();
                result.strip_non_object_output_for_legacy_peer();
            }),
            ListingEra::Stateless => (&self.results.stateless, ServerResult::fill_missing_cache_hints),
        };
        let result = cell.get_or_init(|| {
            let mut result = ServerResult::ListToolsResult(ListToolsResult::with_all_items(self.tools.to_vec()));
            shape(&mut result);
            // Plain data with string keys: serializing it cannot fail.
            Arc::from(serde_json::to_string(&result).unwrap_or_default())
        });
        Arc::clone(result)
    }
}

/// A listing's serialized results, one per era.
#[derive(Debug, Clone, Default)]
struct Results {
    handshake: Arc<OnceLock<Arc<str>>>,
    stateless: Arc<OnceLock<Arc<str>>>,
}

#[derive(Debug, Default)]
pub(crate) struct Listings {
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    generation: u64,
    by_caller: HashMap<CallerKey, Listing>,
    /// The rendered and serialized list per distinct set of listed tools, shared by every
    /// caller seeing that set: its memory grows with the sets the operator's rules can produce
    /// (a handful), not with callers (agent ids are the client's to invent). Keyed by the exact
    /// set, not a hash.
    by_set: HashMap<Vec<(Arc<str>, Listed)>, Rendered>,
}

/// One set of listed tools, rendered; shared by every caller listed that set.
#[derive(Debug, Clone)]
struct Rendered {
    tools: Arc<Vec<Tool>>,
    results: Results,
}

impl Listings {
    /// `key`'s listing of the registry's current generation.
    pub(crate) fn get(&self, registry: &Registry, key: &CallerKey) -> Listing {
        // Read the generation before the tools: a change in between is then seen next time.
        let generation = registry.generation();
        {
            let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.generation != generation {
                cache.generation = generation;
                cache.by_caller.clear();
                cache.by_set.clear();
            }
            if let Some(listing) = cache.by_caller.get(key) {
                return listing.clone();
            }
        }
        let (tools, fingerprint) = registry.tools_for(&key.caller());
        let set: Vec<(Arc<str>, Listed)> =
            tools.iter().map(|(spec, listed)| (Arc::from(spec.name.as_str()), *listed)).collect();
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = cache.generation == generation;
        if current && cache.by_caller.len() >= MAX_CACHED_CALLERS {
            cache.by_caller.clear();
            cache.by_set.clear();
        }
        let rendered = match cache.by_set.get(&set).filter(|_| current) {
            Some(rendered) => rendered.clone(),
            None => {
                let rendered = Rendered {
                    tools: Arc::new(tools.iter().map(|(spec, listed)| render_tool(spec, *listed)).collect()),
                    results: Results::default(),
                };
                if current {
                    cache.by_set.insert(set, rendered.clone());
                }
                rendered
            }
        };
        let listing = Listing { tools: rendered.tools, fingerprint, results: rendered.results };
        if current {
            cache.by_caller.insert(key.clone(), listing.clone());
        }
        listing
    }
}

/// A tool as MCP lists it. A tool needing approval says so where models read (the description)
/// and where programs read (`_meta["sanctum/approval"]`: `always` or `conditional`).
pub(crate) fn render_tool(spec: &ToolSpec, listed: Listed) -> Tool {
    let a = spec.annotations;
    let mut annotations = ToolAnnotations::new();
    annotations.read_only_hint = a.read_only;
    annotations.destructive_hint = a.destructive;
    annotations.idempotent_hint = a.idempotent;
    annotations.open_world_hint = a.open_world;
    let (note, approval) = match listed {
        Listed::Open => (None, None),
        Listed::Approval => (
            Some("Every call waits for an operator's approval before it runs; the result comes once a person decides."),
            Some("always"),
        ),
        Listed::SometimesApproval => (
            Some("Some calls (depending on their arguments) wait for an operator's approval before they run."),
            Some("conditional"),
        ),
    };
    let description = match note {
        Some(note) => format!("{}\n\n{note}", spec.description),
        None => spec.description.clone(),
    };
    let mut tool = Tool::new(spec.name.as_str().to_owned(), description, Arc::clone(&spec.input_schema))
        .with_annotations(annotations);
    if let Some(title) = &spec.title {
        tool = tool.with_title(title.clone());
    }
    if let Some(schema) = &spec.output_schema {
        tool = tool.with_raw_output_schema(Arc::clone(schema));
    }
    if let Some(approval) = approval {
        let mut meta = serde_json::Map::new();
        meta.insert("sanctum/approval".into(), approval.into());
        tool.meta = Some(MetaObject(meta));
    }
    tool
}
