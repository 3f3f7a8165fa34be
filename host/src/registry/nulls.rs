//! Optional nulls: strict clients (Letta) send every optional argument, as `null` when unset.
//! The rule, written once in `wit/plugin.wit` (`call`) with its cases in
//! `wit/conformance/optional-nulls.json`: a null for a property that its object schema lists
//! under `properties` but not under `required` means the property is absent, at every depth
//! reached through `properties` and `items`. The guest SDK applies the same rule to what it
//! receives; both ends are tested against the same cases.

use serde_json::{Map, Value};

/// Remove from `value` every null the rule says is absent, following `schema`.
pub(super) fn drop_optional_nulls(value: &mut Value, schema: &Map<String, Value>) {
    match value {
        Value::Object(args) => {
            let Some(Value::Object(properties)) = schema.get("properties") else { return };
            let required = schema.get("required").and_then(Value::as_array);
            for (name, property) in properties {
                let is_required = required.is_some_and(|r| r.iter().any(|n| n == name.as_str()));
                match args.get_mut(name) {
                    Some(Value::Null) if !is_required => {
                        args.remove(name);
                    }
                    Some(arg) => {
                        if let Some(property) = property.as_object() {
                            drop_optional_nulls(arg, property);
                        }
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").and_then(Value::as_object) {
                items.iter_mut().for_each(|item| drop_optional_nulls(item, item_schema));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_cases_hold() {
        let cases: Value = serde_json::from_str(include_str!("../../../wit/conformance/optional-nulls.json"))
            .expect("the cases are JSON");
        let cases = cases["cases"].as_array().expect("a list of cases");
        assert!(cases.len() >= 5);
        for case in cases {
            let mut args = case["args"].clone();
            drop_optional_nulls(&mut args, case["schema"].as_object().expect("an object schema"));
            assert_eq!(args, case["expected"], "{}", case["name"]);
        }
    }
}
