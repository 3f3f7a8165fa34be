//! JSON Schemas from Rust types, normalised so MCP clients accept them strictly.
//!
//! schemars writes a correct schema; Letta (which grades every tool for OpenAI's strict mode and
//! skips the ones it calls invalid) and Letta Code (which drops a whole server over one bad
//! schema) want a narrower shape. [`normalize`] bridges the two without changing what the schema
//! accepts, except where noted on the function. Nothing here talks to the host.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// The normalised input schema of `T`, and the doc comment of `T` (its root `description`),
/// which a tool may use as its own description.
pub(crate) fn input_schema_and_description<T: JsonSchema>() -> (Value, Option<String>) {
    let mut schema =
        SchemaSettings::draft2020_12().for_deserialize().into_generator().into_root_schema_for::<T>().to_value();
    let description = schema.as_object_mut().and_then(|root| root.remove("description")).and_then(|d| match d {
        Value::String(s) if !s.trim().is_empty() => Some(s),
        _ => None,
    });
    normalize(&mut schema);
    (schema, description)
}

/// The normalised input schema of `T`: what [`Tool::input_schema`](crate::Tool::input_schema)
/// returns by default.
///
/// ```
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// /// Greet someone.
/// struct Args {
///     /// Who to greet.
///     name: String,
///     /// How many times; once if absent.
///     times: Option<u8>,
/// }
///
/// let schema = sanctum_guest::schema::input_schema::<Args>();
/// assert_eq!(schema["additionalProperties"], false);
/// assert_eq!(schema["required"], serde_json::json!(["name"]));
/// assert_eq!(schema["properties"]["name"]["description"], "Who to greet.");
/// ```
pub fn input_schema<T: JsonSchema>() -> Value {
    input_schema_and_description::<T>().0
}

/// The normalised schema of a structured result type, for
/// [`Tool::output_schema`](crate::Tool::output_schema). Built for serialization, so it describes
/// what `serde_json::to_value(&result)` produces.
pub fn output_schema<T: JsonSchema>() -> Value {
    let mut schema =
        SchemaSettings::draft2020_12().for_serialize().into_generator().into_root_schema_for::<T>().to_value();
    normalize(&mut schema);
    schema
}

/// Rewrite a schema into the shape strict clients accept:
///
/// - `$ref`s into `$defs` are inlined (recursive types keep theirs), and `$schema` and the root
///   `title` (the Rust type's name) are dropped;
/// - every object schema without `additionalProperties` gets `additionalProperties: false`;
/// - every optional property also accepts `null`: strict mode makes clients send optional
///   arguments as explicit nulls, and [`prepare_args`] treats a null there as absent;
/// - a required property whose schema allows an empty object (an object with no required
///   properties) becomes optional with `"default": {}`, which [`prepare_args`] fills in, since
///   Letta refuses such a property outright. The Rust type sees no difference.
pub fn normalize(schema: &mut Value) {
    let Some(root) = schema.as_object_mut() else { return };
    root.remove("$schema");
    root.remove("title");
    let defs = match root.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    let mut kept = Map::new();
    inline_refs(schema, &defs, &mut Vec::new(), &mut kept);
    tighten(schema);
    for def in kept.values_mut() {
        tighten(def);
    }
    if let Some(root) = schema.as_object_mut().filter(|_| !kept.is_empty()) {
        root.insert("$defs".into(), Value::Object(kept));
    }
}

/// Replace `{"$ref": "#/$defs/X", ...siblings}` by the definition of X merged with the siblings
/// (schemars puts a field's doc comment beside its `$ref`). `stack` holds the definitions being
/// inlined, so a recursive type keeps its `$ref` and its definition lands in `kept`.
fn inline_refs(node: &mut Value, defs: &Map<String, Value>, stack: &mut Vec<String>, kept: &mut Map<String, Value>) {
    match node {
        Value::Object(map) => {
            let target =
                map.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")).map(str::to_owned);
            if let Some(name) = target.filter(|name| defs.contains_key(name)) {
                if stack.contains(&name) {
                    if !kept.contains_key(&name) {
                        kept.insert(name.clone(), Value::Null);
                        let mut def = defs[&name].clone();
                        inline_refs(&mut def, defs, stack, kept);
                        kept.insert(name, def);
                    }
                    return;
                }
                map.remove("$ref");
                let mut def = defs[&name].clone();
                stack.push(name);
                inline_refs(&mut def, defs, stack, kept);
                stack.pop();
                if let Value::Object(def) = def {
                    for (key, value) in def {
                        // The use site's own keywords (its description) win over the type's.
                        if key != "title" {
                            map.entry(key).or_insert(value);
                        }
                    }
                }
                return;
            }
            for value in map.values_mut() {
                inline_refs(value, defs, stack, kept);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| inline_refs(item, defs, stack, kept)),
        _ => {}
    }
}

/// The strictness rules of [`normalize`], applied to every subschema.
fn tighten(node: &mut Value) {
    match node {
        Value::Object(map) => {
            for value in map.values_mut() {
                tighten(value);
            }
            if is_object_schema(map) {
                map.entry("additionalProperties").or_insert(Value::Bool(false));
                // OpenAI's strict mode wants `properties` on every closed object, even an empty one.
                if map.get("additionalProperties") == Some(&Value::Bool(false)) {
                    map.entry("properties").or_insert_with(|| Value::Object(Map::new()));
                }
                relax_optional_properties(map);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tighten),
        _ => {}
    }
}

fn is_object_schema(map: &Map<String, Value>) -> bool {
    map.contains_key("properties") || has_type(map, "object")
}

fn has_type(map: &Map<String, Value>, name: &str) -> bool {
    match map.get("type") {
        Some(Value::String(t)) => t == name,
        Some(Value::Array(types)) => types.iter().any(|t| t == name),
        _ => false,
    }
}

fn relax_optional_properties(object: &mut Map<String, Value>) {
    let mut required: Vec<String> = match object.get("required") {
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let Some(Value::Object(properties)) = object.get_mut("properties") else { return };
    required.retain(|name| match properties.get_mut(name) {
        Some(Value::Object(property)) if allows_empty_object(property) => {
            property.entry("default").or_insert_with(|| Value::Object(Map::new()));
            false
        }
        _ => true,
    });
    for (name, property) in properties.iter_mut() {
        if !required.contains(name) {
            make_nullable(property);
        }
    }
    if required.is_empty() {
        object.remove("required");
    } else {
        object.insert("required".into(), required.into_iter().map(Value::String).collect());
    }
}

/// Letta's test: an object schema that names no required property and admits no others.
fn allows_empty_object(schema: &Map<String, Value>) -> bool {
    has_type(schema, "object")
        && schema.get("required").and_then(Value::as_array).is_none_or(Vec::is_empty)
        && schema.get("additionalProperties") == Some(&Value::Bool(false))
}

fn make_nullable(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    if let Some(Value::Array(values)) = map.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
    for keyword in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = map.get_mut(keyword) {
            if !branches.iter().any(|b| b.get("type") == Some(&Value::String("null".into()))) {
                branches.push(serde_json::json!({"type": "null"}));
            }
            return;
        }
    }
    let wrap = !map.contains_key("type") && (map.contains_key("$ref") || map.contains_key("const"));
    if wrap {
        let inner = std::mem::take(map);
        map.insert("anyOf".into(), Value::Array(vec![Value::Object(inner), serde_json::json!({"type": "null"})]));
        return;
    }
    match map.get_mut("type") {
        Some(Value::String(t)) if t != "null" => {
            let t = std::mem::take(t);
            map.insert("type".into(), Value::Array(vec![Value::String(t), Value::String("null".into())]));
        }
        Some(Value::Array(types)) if !types.iter().any(|t| t == "null") => types.push(Value::String("null".into())),
        _ => {}
    }
}

/// Undo, on the arguments, what [`normalize`] did to the schema: an optional property sent as
/// `null` is dropped (the type sees it absent), and an absent property with a `default` gets it.
pub(crate) fn prepare_args(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(args) => {
            let Some(Value::Object(properties)) = schema.get("properties") else { return };
            let required = schema.get("required").and_then(Value::as_array);
            for (name, property) in properties {
                let is_required = required.is_some_and(|r| r.iter().any(|n| n == name.as_str()));
                if !is_required && args.get(name) == Some(&Value::Null) {
                    args.remove(name);
                }
                match args.get_mut(name) {
                    Some(arg) => prepare_args(arg, property),
                    None => {
                        if let Some(default) = property.get("default") {
                            args.insert(name.clone(), default.clone());
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items.iter_mut().for_each(|item| prepare_args(item, item_schema));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host applies the same rule before the plugin runs; both are tested on these cases.
    #[test]
    fn optional_nulls_follow_the_shared_rule() {
        let cases: Value = serde_json::from_str(include_str!("../../wit/conformance/optional-nulls.json"))
            .expect("the cases are JSON");
        for case in cases["cases"].as_array().expect("a list of cases") {
            let mut args = case["args"].clone();
            prepare_args(&mut args, &case["schema"]);
            assert_eq!(args, case["expected"], "{}", case["name"]);
        }
    }
    use serde::Deserialize;
    use serde_json::json;

    /// Deploy something.
    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Args {
        /// The app.
        app: String,
        /// Where to.
        target: Target,
        /// Extra knobs; all optional.
        options: Options,
        /// Labels to attach.
        labels: Vec<String>,
        /// How many times.
        times: Option<u32>,
        mode: Option<Mode>,
    }

    /// A deployment target.
    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Target {
        environment: String,
        region: Option<String>,
    }

    #[derive(Deserialize, JsonSchema, Default)]
    #[allow(dead_code)]
    struct Options {
        dry_run: Option<bool>,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Mode {
        Fast,
        Safe,
    }

    #[test]
    fn normalised_schema_is_strict_shaped() {
        let (schema, description) = input_schema_and_description::<Args>();
        assert_eq!(description.as_deref(), Some("Deploy something."));
        assert_eq!(schema["type"], "object");
        assert_eq!(schema.get("$defs"), None, "refs are inlined: {schema:#}");
        assert_eq!(schema.get("$schema"), None);
        assert_eq!(schema.get("title"), None);
        assert_eq!(schema["additionalProperties"], false);
        // `options` could be `{}`: demoted from required, with a default.
        assert_eq!(schema["required"], json!(["app", "target", "labels"]));
        assert_eq!(schema["properties"]["options"]["default"], json!({}));
        let target = &schema["properties"]["target"];
        assert_eq!(target["description"], "Where to.", "the field's doc wins over the type's");
        assert_eq!(target["additionalProperties"], false);
        assert_eq!(target["properties"]["region"]["type"], json!(["string", "null"]));
        assert_eq!(schema["properties"]["labels"]["items"]["type"], "string");
        assert_eq!(schema["properties"]["times"]["type"], json!(["integer", "null"]));
        let mode = &schema["properties"]["mode"];
        let accepts_null = mode["anyOf"].as_array().is_some_and(|b| b.iter().any(|b| b["type"] == "null"))
            || mode["enum"].as_array().is_some_and(|e| e.contains(&Value::Null));
        assert!(accepts_null, "{mode:#}");
    }

    #[test]
    fn recursive_types_keep_their_definition() {
        #[derive(Deserialize, JsonSchema)]
        #[allow(dead_code)]
        struct Node {
            name: String,
            children: Vec<Node>,
        }
        #[derive(Deserialize, JsonSchema)]
        #[allow(dead_code)]
        struct Tree {
            root: Node,
        }
        let schema = input_schema::<Tree>();
        let defs = schema["$defs"].as_object().expect("recursive types keep $defs");
        assert_eq!(defs["Node"]["additionalProperties"], false);
        let root = &schema["properties"]["root"];
        assert_eq!(root["additionalProperties"], false, "the first level is inlined: {schema:#}");
        assert_eq!(root["properties"]["children"]["items"]["$ref"], "#/$defs/Node");
    }

    #[test]
    fn prepared_args_drop_optional_nulls_and_fill_defaults() {
        let schema = input_schema::<Args>();
        let mut args = json!({
            "app": "web", "target": {"environment": "prod", "region": null},
            "labels": [], "times": null, "mode": null,
        });
        prepare_args(&mut args, &schema);
        assert_eq!(args, json!({"app": "web", "target": {"environment": "prod"}, "labels": [], "options": {}}));
        let parsed: Args = serde_json::from_value(args).expect("the type accepts what the schema allowed");
        assert!(parsed.options.dry_run.is_none() && parsed.times.is_none() && parsed.target.region.is_none());
    }
}
