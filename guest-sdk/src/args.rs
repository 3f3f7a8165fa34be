//! Turning the JSON arguments the host sends into a tool's typed `Args`.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Deserialize the arguments, returning serde's description of the first problem.
pub(crate) fn parse_args<A: DeserializeOwned>(json: &str, schema: &Value) -> Result<A, String> {
    // Parsing to a `Value` first keeps serde_json's "at line 1 column N" out of the message:
    // it points into JSON text the model never saw in that form.
    let mut value: Value = serde_json::from_str(json).map_err(|e| format!("not valid JSON ({e})"))?;
    integral_floats_to_integers(&mut value);
    crate::schema::prepare_args(&mut value, schema);
    A::deserialize(value).map_err(|e| e.to_string())
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

    #[test]
    fn errors_carry_no_position() {
        let err = parse_args::<Vec<u8>>("[1, 300]", &Value::Null).expect_err("300 is not a u8");
        assert_eq!(err, "invalid value: integer `300`, expected u8");
    }
}
