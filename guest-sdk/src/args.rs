//! Turning the JSON arguments the host sends into a tool's typed `Args`.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Deserialize the arguments, returning serde's description of the first problem. `schema`
/// (the tool's normalised input schema) is only built when the arguments need it.
pub(crate) fn parse_args<A: DeserializeOwned>(json: &str, schema: impl FnOnce() -> Value) -> Result<A, String> {
    // Parsing to a `Value` first keeps serde_json's "at line 1 column N" out of the message:
    // it points into JSON text the model never saw in that form.
    let mut value: Value = serde_json::from_str(json).map_err(|e| format!("not valid JSON ({e})"))?;
    integral_floats_to_integers(&mut value);
    // Deriving and normalising the schema costs more than the rest of a small call, and every
    // call is a fresh instance, so nothing can be cached. Without a null, the arguments can only
    // differ from their prepared form by a property the schema defaults to `{}`, and such a
    // property is required on the Rust side: serde refuses its absence, and the slow path runs.
    if !contains_null(&value)
        && let Ok(args) = A::deserialize(&value)
    {
        return Ok(args);
    }
    crate::schema::prepare_args(&mut value, &schema());
    A::deserialize(value).map_err(|e| e.to_string())
}

fn contains_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(contains_null),
        Value::Object(map) => map.values().any(contains_null),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => false,
    }
}

/// Rewrite numbers like `3.0` as `3`. JSON Schema counts them as integers, so the host's
/// validation lets them through, but serde refuses a float for an integer field; the reverse
/// direction is harmless because serde reads an integer into a float field.
fn integral_floats_to_integers(value: &mut Value) {
    // Beyond 2^53 an f64 no longer holds every integer, so its integral look is not evidence.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                if (0.0..=EXACT).contains(&f) {
                    *value = Value::from(f as u64);
                } else if (-EXACT..0.0).contains(&f) {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integral_floats_become_integers_and_others_stay() {
        let mut v = json!([1.0, {"x": -0.0, "big": 1e300, "f": 0.5, "n": -7.0}]);
        integral_floats_to_integers(&mut v);
        assert_eq!(v, json!([1, {"x": 0, "big": 1e300, "f": 0.5, "n": -7}]));
    }

    #[derive(Debug, PartialEq, serde::Deserialize, schemars::JsonSchema)]
    struct Knobs {
        dry_run: Option<bool>,
    }

    #[derive(Debug, PartialEq, serde::Deserialize, schemars::JsonSchema)]
    struct Deploy {
        app: String,
        knobs: Knobs,
        times: Option<u32>,
    }

    fn schema() -> Value {
        crate::schema::input_schema::<Deploy>()
    }

    #[test]
    fn complete_arguments_without_nulls_never_build_the_schema() {
        let args: Deploy = parse_args(r#"{"app": "web", "knobs": {"dry_run": true}, "times": 2.0}"#, || {
            panic!("the schema is not needed")
        })
        .expect("valid");
        assert_eq!(args, Deploy { app: "web".into(), knobs: Knobs { dry_run: Some(true) }, times: Some(2) });
    }

    #[test]
    fn nulls_and_defaulted_properties_take_the_schema_path() {
        let with_nulls: Deploy =
            parse_args(r#"{"app": "web", "knobs": {"dry_run": null}, "times": null}"#, schema).expect("valid");
        assert_eq!(with_nulls, Deploy { app: "web".into(), knobs: Knobs { dry_run: None }, times: None });
        // `knobs` could be `{}`, so the schema makes it optional with `"default": {}`.
        let defaulted: Deploy = parse_args(r#"{"app": "web"}"#, schema).expect("valid");
        assert_eq!(defaulted, Deploy { app: "web".into(), knobs: Knobs { dry_run: None }, times: None });
        let wrong = parse_args::<Deploy>(r#"{"app": 3}"#, schema).expect_err("app is a string");
        assert!(wrong.contains("expected a string"), "{wrong}");
    }

    #[test]
    fn errors_carry_no_position() {
        let err = parse_args::<Vec<u8>>("[1, 300]", || Value::Null).expect_err("300 is not a u8");
        assert_eq!(err, "invalid value: integer `300`, expected u8");
    }
}
