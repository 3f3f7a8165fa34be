//! sanctum's argument validator, run by the host in a sandbox of its own with a deadline and a
//! memory cap: a plugin's schema can make validation arbitrarily costly, and only code the host
//! can interrupt may evaluate it. Patterns use the linear-time `regex` engine (a pattern that
//! needs backtracking does not compile); the host's admission check uses the same options.

// The component ABI glue `wit_bindgen` generates is unsafe code; this crate writes none itself.
#![allow(unsafe_code)]

// The world is the host's; generated code lives here only.
#[allow(unsafe_code, unreachable_pub, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ world: "validator", path: "../../host/src/runtime/validator.wit" });
}

use std::cell::RefCell;

use bindings::exports::sanctum::validator::schemas::Guest;

/// The same limits as the host's admission check (`registry/schema.rs`).
const PATTERN_SIZE_LIMIT: usize = 256 << 10;
const PATTERN_DFA_SIZE_LIMIT: usize = 1 << 20;

/// The longest problem message returned: reasons quote the offending value, which can be as
/// large as the arguments.
const MAX_PROBLEM_BYTES: usize = 300;

thread_local! {
    static SCHEMAS: RefCell<Vec<Option<jsonschema::Validator>>> = const { RefCell::new(Vec::new()) };
}

fn options() -> jsonschema::ValidationOptions<'static> {
    jsonschema::options().with_pattern_options(
        jsonschema::PatternOptions::regex().size_limit(PATTERN_SIZE_LIMIT).dfa_size_limit(PATTERN_DFA_SIZE_LIMIT),
    )
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_PROBLEM_BYTES {
        let mut end = MAX_PROBLEM_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

struct Validator;

impl Guest for Validator {
    fn compile(schema: String) -> Result<u32, String> {
        let value: serde_json::Value = serde_json::from_str(&schema).map_err(|e| format!("not JSON: {e}"))?;
        let validator = options().build(&value).map_err(|e| cut(e.to_string()))?;
        SCHEMAS.with(|schemas| {
            let mut schemas = schemas.borrow_mut();
            schemas.push(Some(validator));
            u32::try_from(schemas.len() - 1).map_err(|_| "too many schemas".to_owned())
        })
    }

    fn validate(handle: u32, instance: String, max_problems: u32) -> Result<(), Vec<String>> {
        let value: serde_json::Value =
            serde_json::from_str(&instance).map_err(|e| vec![format!("not valid JSON: {e}")])?;
        SCHEMAS.with(|schemas| {
            let schemas = schemas.borrow();
            let Some(Some(validator)) = schemas.get(handle as usize) else {
                return Err(vec![format!("no compiled schema {handle}")]);
            };
            if validator.is_valid(&value) {
                return Ok(());
            }
            let problems: Vec<String> = validator
                .iter_errors(&value)
                .take(max_problems as usize)
                .map(|error| {
                    let path = error.instance_path().to_string();
                    let at = if path.is_empty() { "the arguments".to_owned() } else { path };
                    cut(format!("at {at}: {error}"))
                })
                .collect();
            if problems.is_empty() { Ok(()) } else { Err(problems) }
        })
    }

    fn forget(handle: u32) {
        SCHEMAS.with(|schemas| {
            if let Some(slot) = schemas.borrow_mut().get_mut(handle as usize) {
                *slot = None;
            }
        });
    }
}

bindings::export!(Validator with_types_in bindings);
