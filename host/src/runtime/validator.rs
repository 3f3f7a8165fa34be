//! Validating arguments and structured results against plugin-declared JSON Schemas, in a
//! sandbox the host can stop.
//!
//! A schema is the plugin's code as much as its `call` is: combined patterns, applicators and
//! references can make one validation take minutes. So validation does not run natively: it
//! runs in sanctum's own validator component (`plugins-src/validator/`, embedded in the binary)
//! on the worker, under a deadline ([`VALIDATION_BUDGET`]) and a memory cap, like a plugin call.
//! A validation that runs out of either is answered with a clear error; nothing is left running.
//!
//! One instance is kept between calls, holding the schemas it has compiled (keyed by the
//! [`SchemaSource`]'s digest); it is rebuilt after any failure and when it holds too many.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OnceCell};
use wasmtime::Store;
use wasmtime::component::Component;

use super::Runtime;
use super::sandbox::{self, CallSite, CallState};
use crate::digest::ComponentDigest;
use crate::model::CallContext;
use crate::model::CallFailure;
use crate::model::PluginGrants;
use crate::model::{Limits, SchemaSource};

#[allow(missing_docs, missing_debug_implementations, unreachable_pub, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        world: "validator",
        path: "src/runtime/validator.wit",
        exports: { default: async },
    });
}

/// The validator component, built reproducibly by `plugins-src/build.sh`.
static VALIDATOR_WASM: &[u8] = include_bytes!("../../assets/validator.wasm");

/// Longest one validation (or one schema's compilation) may take on the worker.
pub const VALIDATION_BUDGET: Duration = Duration::from_secs(1);

/// Memory the validator instance may hold: its compiled schemas and one instance being checked
/// (arguments are at most 1 MiB of JSON).
const VALIDATOR_MEMORY_BYTES: usize = 256 << 20;

/// Compiled schemas kept before the instance is rebuilt empty (reloads leave old ones behind).
const MAX_COMPILED: usize = 512;

/// Problems reported per validation at most; the first few are enough to fix a call.
pub const MAX_REPORTED_PROBLEMS: u32 = 8;

/// Why a value was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationError {
    /// It violates the schema: one line per problem.
    Invalid(Vec<String>),
    /// The schema could not be evaluated within its budget (time or memory).
    TooCostly(String),
    /// The schema cannot be used at all (it does not compile in the validator).
    Unusable(String),
}

/// The validator of one runtime: compiled on first use, then one live instance at a time.
pub(crate) struct Validator {
    pre: OnceCell<bindings::ValidatorPre<CallState>>,
    live: Mutex<Option<Live>>,
    digest: ComponentDigest,
}

struct Live {
    store: Store<CallState>,
    instance: bindings::Validator,
    handles: HashMap<[u8; 32], u32>,
}

impl Validator {
    pub(crate) fn new() -> Self {
        Self { pre: OnceCell::new(), live: Mutex::new(None), digest: ComponentDigest::of(VALIDATOR_WASM) }
    }

    /// Check `json` against `schema` under the budget.
    pub(crate) async fn validate(
        &self,
        runtime: &Runtime,
        schema: &SchemaSource,
        json: &str,
    ) -> Result<(), ValidationError> {
        let mut live = self.live.lock().await;
        if live.as_ref().is_some_and(|l| l.handles.len() >= MAX_COMPILED) {
            *live = None;
        }
        if live.is_none() {
            *live = Some(self.start(runtime).await.map_err(ValidationError::Unusable)?);
        }
        let Some(current) = live.as_mut() else { unreachable!("started above") };
        let outcome = current.validate(schema, json).await;
        if matches!(outcome, Err(ValidationError::TooCostly(_))) {
            // The instance trapped: it cannot be entered again.
            *live = None;
        }
        outcome
    }

    /// The validator compiled and type-checked (once).
    pub(crate) async fn prepare(&self, runtime: &Runtime) -> Result<&bindings::ValidatorPre<CallState>, String> {
        self.pre
            .get_or_try_init(|| async {
                let component = compile(runtime).await?;
                let instance_pre = runtime.linker.instantiate_pre(&component).map_err(|e| format!("{e:#}"))?;
                bindings::ValidatorPre::new(instance_pre).map_err(|e| format!("{e:#}"))
            })
            .await
    }

    async fn start(&self, runtime: &Runtime) -> Result<Live, String> {
        let pre = self.prepare(runtime).await?;
        let grants = Arc::new(PluginGrants {
            limits: Limits { memory_bytes: VALIDATOR_MEMORY_BYTES, ..runtime.limits.clone() },
            ..PluginGrants::default()
        });
        let site = CallSite {
            plugin: "sanctum-validator",
            digest: self.digest,
            tool: "validate",
            grants: &grants,
            audit: &runtime.audit,
            jobs: None,
        };
        let mut store = sandbox::new_store(&runtime.engine, &site, VALIDATION_BUDGET, CallContext::default())
            .map_err(|e| e.to_string())?;
        let instance =
            sandbox::run_guarded(&mut store, VALIDATION_BUDGET, async |store| pre.instantiate_async(&mut *store).await)
                .await
                .map_err(|e| format!("the validator did not start: {e}"))?;
        Ok(Live { store, instance, handles: HashMap::new() })
    }
}

impl Live {
    async fn validate(&mut self, schema: &SchemaSource, json: &str) -> Result<(), ValidationError> {
        let handle = match self.handles.get(schema.key()) {
            Some(handle) => *handle,
            None => {
                let handle =
                    self.run(async |store, instance| instance.call_compile(store, schema.text()).await).await?;
                let handle = handle.map_err(ValidationError::Unusable)?;
                self.handles.insert(*schema.key(), handle);
                handle
            }
        };
        self.run(async |store, instance| instance.call_validate(store, handle, json, MAX_REPORTED_PROBLEMS).await)
            .await?
            .map_err(ValidationError::Invalid)
    }

    /// Run one export of the instance with a fresh budget; a trap means the budget ran out.
    async fn run<R>(
        &mut self,
        call: impl AsyncFnOnce(
            &mut Store<CallState>,
            &bindings::exports::sanctum::validator::schemas::Guest,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, ValidationError> {
        sandbox::rearm_deadline(&mut self.store, VALIDATION_BUDGET);
        let instance = &self.instance;
        sandbox::run_guarded(&mut self.store, VALIDATION_BUDGET, async |store| {
            call(store, instance.sanctum_validator_schemas()).await
        })
        .await
        .map_err(|failure| {
            ValidationError::TooCostly(match failure {
                CallFailure::Timeout(budget) => format!("it took longer than {} ms", budget.as_millis()),
                CallFailure::MemoryLimit(limit) => format!("it needed more than {} MiB of memory", limit >> 20),
                other => other.to_string(),
            })
        })
    }
}

/// The validator's component: from the compile cache when the runtime has one, else compiled
/// (on a blocking thread, as plugins are).
async fn compile(runtime: &Runtime) -> Result<Component, String> {
    let engine = runtime.engine.clone();
    let cache = runtime.cache.clone();
    let digest = runtime.validator.digest;
    tokio::task::spawn_blocking(move || match cache {
        Some(cache) => cache.component(&engine, VALIDATOR_WASM, digest, "sanctum-validator"),
        None => Component::new(&engine, VALIDATOR_WASM),
    })
    .await
    .map_err(|e| format!("the compiler thread failed: {e}"))?
    .map_err(|e| format!("the validator does not compile: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Audit;
    use serde_json::json;

    fn runtime() -> Runtime {
        let metrics = crate::metrics::Metrics::new();
        Runtime::new(Limits::default(), Audit::disabled(metrics.clone()), metrics).expect("runtime")
    }

    fn echo() -> SchemaSource {
        SchemaSource::new(
            &json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "pattern": "^[a-z ]*$"},
                    "repeat": {"type": ["integer", "null"], "minimum": 1, "maximum": 10}
                },
                "required": ["text"],
                "additionalProperties": false
            })
            .to_string(),
        )
    }

    #[tokio::test]
    async fn arguments_are_checked_and_each_problem_names_where_it_is() {
        let runtime = runtime();
        let started = std::time::Instant::now();
        assert_eq!(runtime.validate(&echo(), r#"{"text": "hi", "repeat": 2}"#).await, Ok(()));
        eprintln!("first validation (compiles the validator): {:?}", started.elapsed());
        let schema = echo();
        let started = std::time::Instant::now();
        for _ in 0..100 {
            assert_eq!(runtime.validate(&schema, r#"{"text": "hi", "repeat": null}"#).await, Ok(()));
        }
        eprintln!("one validation: {:?}", started.elapsed() / 100);
        let Err(ValidationError::Invalid(problems)) =
            runtime.validate(&schema, r#"{"text": "HI", "repeat": 99, "extra": true}"#).await
        else {
            panic!("invalid")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("at /text:")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("at /repeat:") && p.contains("10")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("extra")), "{problems:?}");
        let Err(ValidationError::Invalid(missing)) = runtime.validate(&schema, "{}").await else { panic!("invalid") };
        assert!(missing.iter().any(|p| p.contains("\"text\" is a required property")), "{missing:?}");
        let Err(ValidationError::Invalid(long)) =
            runtime.validate(&schema, &json!({"text": "X".repeat(100_000)}).to_string()).await
        else {
            panic!("invalid")
        };
        assert!(long[0].len() < 400, "a problem quoting the value is cut: {} bytes", long[0].len());
    }

    /// A chain of references whose every level tries two alternatives that fail only at the
    /// bottom: 2^40 evaluations of the pattern for one string, from a schema under 3 KB.
    fn exponential() -> SchemaSource {
        let mut defs = serde_json::Map::new();
        for level in 0..40 {
            let next = json!({"$ref": format!("#/$defs/l{}", level + 1)});
            defs.insert(format!("l{level}"), json!({"anyOf": [next.clone(), {"allOf": [next]}]}));
        }
        defs.insert("l40".into(), json!({"type": "string", "pattern": "^(a|b)*c$"}));
        SchemaSource::new(
            &json!({"type": "object", "properties": {"s": {"$ref": "#/$defs/l0"}}, "$defs": defs}).to_string(),
        )
    }

    #[tokio::test]
    async fn a_schema_too_costly_to_evaluate_is_stopped_at_its_budget_and_the_next_validation_works() {
        let runtime = runtime();
        assert_eq!(runtime.validate(&echo(), r#"{"text": "warm"}"#).await, Ok(()), "the validator is compiled");
        let started = std::time::Instant::now();
        let outcome = runtime.validate(&exponential(), &json!({"s": "ab".repeat(200)}).to_string()).await;
        let elapsed = started.elapsed();
        assert!(matches!(&outcome, Err(ValidationError::TooCostly(why)) if why.contains("longer than")), "{outcome:?}");
        assert!(elapsed < VALIDATION_BUDGET * 4, "stopped near its budget, took {elapsed:?}");
        assert_eq!(runtime.validate(&echo(), r#"{"text": "fine"}"#).await, Ok(()));
    }

    #[tokio::test]
    async fn a_schema_the_validator_cannot_compile_is_unusable() {
        let runtime = runtime();
        let backtracking =
            SchemaSource::new(r#"{"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=a)a"}}}"#);
        let outcome = runtime.validate(&backtracking, r#"{"a": "a"}"#).await;
        assert!(matches!(outcome, Err(ValidationError::Unusable(_))), "{outcome:?}");
        assert_eq!(runtime.validate(&echo(), r#"{"text": "fine"}"#).await, Ok(()));
    }
}
