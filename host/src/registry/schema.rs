//! Tool schemas: admission checks on what a plugin declares, and validation of every call's
//! arguments before a plugin runs.
//!
//! Admission refuses schemas that real clients reject outright: Letta Code fails a whole
//! `tools/list` on one non-object root, and Letta grades a node without a type, an array
//! without `items`, or a `required` name that is not a property as INVALID and drops the tool.

use std::sync::Arc;

use serde_json::{Map, Value};

/// Problems reported per call at most; the first few are enough to fix a call.
const MAX_REPORTED_PROBLEMS: usize = 8;

/// A parsed, checked, compiled schema.
#[derive(Debug, Clone)]
pub(crate) struct CheckedSchema {
    pub(crate) json: Arc<Map<String, Value>>,
    validator: Arc<jsonschema::Validator>,
}

impl CheckedSchema {
    /// Parse `text`, check it is a usable tool schema, and compile it.
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
        let validator = jsonschema::validator_for(&value).map_err(|e| format!("schema does not compile: {e}"))?;
        let Value::Object(json) = value else { unreachable!("checked above") };
        Ok(Self { json: Arc::new(json), validator: Arc::new(validator) })
    }

    /// Every way `instance` violates the schema, as `at <path>: <reason>` lines (empty if valid).
    pub(crate) fn violations(&self, instance: &Value) -> Vec<String> {
        self.validator
            .iter_errors(instance)
            .take(MAX_REPORTED_PROBLEMS)
            .map(|e| {
                let path = e.instance_path().to_string();
                let at = if path.is_empty() { "the arguments".to_owned() } else { path };
                format!("at {at}: {e}")
            })
            .collect()
    }

    /// Property names listed in `required` at the root.
    pub(crate) fn required(&self) -> impl Iterator<Item = &str> {
        self.json.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
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

    fn echo_schema() -> CheckedSchema {
        admit(&json!({
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "repeat": {"type": ["integer", "null"], "minimum": 1, "maximum": 10}
            },
            "required": ["text"],
            "additionalProperties": false
        }))
        .expect("valid schema")
    }

    #[test]
    fn valid_arguments_have_no_violations() {
        assert!(echo_schema().violations(&json!({"text": "hi", "repeat": 2})).is_empty());
        assert!(echo_schema().violations(&json!({"text": "hi", "repeat": null})).is_empty());
    }

    #[test]
    fn each_violation_names_where_it_is() {
        let problems = echo_schema().violations(&json!({"text": 5, "repeat": 99, "extra": true}));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("at /text:")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("at /repeat:") && p.contains("10")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("extra")), "{problems:?}");
        let missing = echo_schema().violations(&json!({}));
        assert!(missing.iter().any(|p| p.contains("\"text\" is a required property")), "{missing:?}");
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

    #[test]
    fn required_lists_root_names() {
        assert_eq!(echo_schema().required().collect::<Vec<_>>(), vec!["text"]);
    }
}
