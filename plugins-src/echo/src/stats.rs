use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) struct Stats;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// The numbers to summarize.
    #[schemars(length(min = 1, max = 10000))]
    numbers: Vec<f64>,
}

/// The structured result; field order is the order clients see.
#[derive(Serialize, JsonSchema)]
struct Summary {
    /// How many numbers there were.
    count: usize,
    /// Their sum.
    sum: f64,
    /// Their arithmetic mean.
    mean: f64,
    /// The smallest.
    min: f64,
    /// The largest.
    max: f64,
}

impl Tool for Stats {
    const NAME: &'static str = "stats";
    const TITLE: Option<&'static str> = Some("Statistics");
    const DESCRIPTION: &'static str = "Summarize a list of numbers: count, sum, mean, minimum and maximum.";
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = Args;

    fn output_schema() -> Option<Value> {
        Some(sanctum_guest::schema::output_schema::<Summary>())
    }

    fn call(args: Args) -> Result<Output, ToolError> {
        let numbers = args.numbers;
        // The schema's minItems keeps this from happening; without it the min and max would be
        // infinities, which JSON cannot carry.
        if numbers.is_empty() {
            return Err(ToolError::new("`numbers` must not be empty"));
        }
        let sum: f64 = numbers.iter().sum();
        // JSON has no infinity: serde_json would write `null`, breaking the output schema.
        if !sum.is_finite() {
            return Err(ToolError::new("the sum is too large to represent"));
        }
        let summary = Summary {
            count: numbers.len(),
            sum,
            mean: sum / numbers.len() as f64,
            min: numbers.iter().copied().fold(f64::INFINITY, f64::min),
            max: numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        };
        Output::new().json(&summary)?.structured(&summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_as_text_and_structured() {
        let summary = Summary { count: 4, sum: 2.5, mean: 0.625, min: -4.0, max: 3.5 };
        let expected = Output::new().json(&summary).and_then(|o| o.structured(&summary));
        let got = Stats::call(Args { numbers: vec![1.0, 2.0, 3.5, -4.0] });
        assert_eq!(got, expected);
    }

    #[test]
    fn overflow_is_an_error_not_null() {
        let got = Stats::call(Args { numbers: vec![f64::MAX, f64::MAX] });
        assert_eq!(got, Err(ToolError::new("the sum is too large to represent")));
    }
}
