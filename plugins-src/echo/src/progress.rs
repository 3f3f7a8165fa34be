use sanctum_guest::{Annotations, Output, Tool, ToolError};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) struct Progress;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    steps: u32,
}

impl Tool for Progress {
    const NAME: &'static str = "progress";
    const DESCRIPTION: &'static str =
        "Count through the given number of steps, reporting progress and logging at each one.";
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = Args;

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "steps": {
                    "type": "integer",
                    "description": "How many steps to report.",
                    "minimum": 1,
                    "maximum": 20,
                },
            },
            "required": ["steps"],
            "additionalProperties": false,
        })
    }

    fn call(args: Args) -> Result<Output, ToolError> {
        let steps = args.steps;
        for i in 1..=steps {
            let message = format!("step {i} of {steps}");
            sanctum_guest::progress(f64::from(i), Some(f64::from(steps)), Some(&message));
            sanctum_guest::log::info(&format!("echo progress step {i}"));
        }
        Ok(format!("completed {steps} steps").into())
    }
}
