//! Tool schemas: admission checks on what a plugin declares. Validating calls against them is
//! the runtime's (in a sandbox, under a deadline: see `runtime::validator`).
//!
//! Admission refuses schemas that real clients reject outright: Letta Code fails a whole
//! `tools/list` on one non-object root, and Letta grades a node without a type, an array
//! without `items`, or a `required` name that is not a property as INVALID and drops the tool.
//! It also compiles the schema the way the validator will, so a schema the validator cannot
//! use — above all a `pattern` that needs backtracking (look-around, backreferences), which
//! the linear-time engine refuses — is refused when the plugin loads, naming where it is.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::model::SchemaSource;

/// The validator's pattern limits (`plugins-src/validator/`): the same engine, the same limits.
const PATTERN_SIZE_LIMIT: usize = 256 << 10;
const PATTERN_DFA_SIZE_LIMIT: usize = 1 << 20;

/// A parsed, checked schema, ready for the validator.
#[derive(Debug, Clone)]
pub(crate) struct CheckedSchema {
    pub(crate) json: Arc<Map<String, Value>>,
    pub(crate) source: SchemaSource,
}

impl CheckedSchema {
    /// Parse `text`, check it is a usable tool schema, and that it compiles as the validator
    /// will compile it.
    pub(crate) fn admit(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("schema is not valid JSON: {e}"))?;
        let Value::Object(object) = &value else {
            return Err("schema must be a JSON object".into());
        };
        if object.get("type") != Some(&Value::String("object".into())) {
            return Err("schema root must have \"type\": \"object\"".into());
        }
        let mut problems = Vec::new();
        lint_node(&value, "#", &mut problems);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let patterns =
            jsonschema::PatternOptions::regex().size_limit(PATTERN_SIZE_LIMIT).dfa_size_limit(PATTERN_DFA_SIZE_LIMIT);
        if let Err(e) = jsonschema::options().with_pattern_options(patterns).build(&value) {
            let mut reason = format!("schema does not compile: {e}");
            let location = e.schema_path().to_string();
            if location.contains("pattern") || location.contains("patternProperties") {
                reason.push_str(&format!(
                    " (at {location}; sanctum evaluates patterns with a linear-time engine, which refuses \
                     look-around and backreferences)"
                ));
            }
            return Err(reason);
        }
        let Value::Object(json) = value else { unreachable!("checked above") };
        Ok(Self { json: Arc::new(json), source: SchemaSource::new(text) })
    }
}

/// Walk the schema the way Letta's grader does and record what would make it INVALID.
fn lint_node(node: &Value, at: &str, problems: &mut Vec<String>) {
    let Value::Object(map) = node else {
        if !matches!(node, Value::Bool(_)) {
            problems.push(format!("{at}: a schema must be an object"));
        }
        return;
    };
    let combinator = ["anyOf", "oneOf", "allOf", "$ref", "enum", "const"].iter().any(|k| map.contains_key(*k));
    let has_shape = map.contains_key("properties") || map.contains_key("items");
    if !map.contains_key("type") && !combinator && !has_shape {
        problems.push(format!("{at}: every schema node needs a \"type\""));
    }
    let is_array = match map.get("type") {
        Some(Value::String(t)) => t == "array",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "array"),
        _ => false,
    };
    if is_array && !map.contains_key("items") {
        problems.push(format!("{at}: an array needs \"items\""));
    }
    let properties = map.get("properties").and_then(Value::as_object);
    if let Some(required) = map.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !properties.is_some_and(|p| p.contains_key(name)) {
                problems.push(format!("{at}: \"required\" names {name:?}, which is not a property"));
            }
        }
    }
    for (name, child) in properties.into_iter().flatten() {
        lint_node(child, &format!("{at}/properties/{name}"), problems);
    }
    if let Some(items) = map.get("items") {
        lint_node(items, &format!("{at}/items"), problems);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for (i, child) in map.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
            lint_node(child, &format!("{at}/{key}/{i}"), problems);
        }
    }
    for key in ["$defs", "definitions"] {
        for (name, child) in map.get(key).and_then(Value::as_object).into_iter().flatten() {
            lint_node(child, &format!("{at}/{key}/{name}"), problems);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn admit(schema: &Value) -> Result<CheckedSchema, String> {
        CheckedSchema::admit(&schema.to_string())
    }

    #[test]
    fn patterns_that_need_backtracking_are_refused_naming_where_they_are() {
        for pattern in ["(?=a)a", "(a)\\1", "(?<!x)y"] {
            let error = admit(&json!({"type": "object", "properties": {"a": {"type": "string", "pattern": pattern}}}))
                .expect_err(pattern);
            assert!(
                error.contains("linear-time engine") && error.contains("/properties/a/pattern"),
                "{pattern}: {error}"
            );
        }
        let keyed = admit(&json!({"type": "object", "patternProperties": {"(?=x)": {"type": "string"}}}))
            .expect_err("a look-ahead key");
        assert!(keyed.contains("linear-time engine"), "{keyed}");
        // What the linear engine matches fine is admitted, however it would backtrack elsewhere.
        assert!(
            admit(&json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}})).is_ok()
        );
    }

    #[test]
    fn schemas_clients_reject_are_refused() {
        assert!(CheckedSchema::admit("not json").is_err());
        assert!(admit(&json!(["object"])).is_err());
        assert!(admit(&json!({"type": "string"})).expect_err("refused").contains("root"));
        let untyped =
            admit(&json!({"type": "object", "properties": {"a": {"description": "x"}}})).expect_err("refused");
        assert!(untyped.contains("#/properties/a") && untyped.contains("type"), "{untyped}");
        let no_items = admit(&json!({"type": "object", "properties": {"a": {"type": "array"}}})).expect_err("refused");
        assert!(no_items.contains("items"), "{no_items}");
        let ghost = admit(&json!({"type": "object", "properties": {}, "required": ["a"]})).expect_err("refused");
        assert!(ghost.contains("\"a\""), "{ghost}");
        assert!(admit(&json!({"type": "object", "properties": {"a": {"type": "nonsense"}}})).is_err());
    }
}
