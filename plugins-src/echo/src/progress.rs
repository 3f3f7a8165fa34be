use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;

pub(crate) struct Progress;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// How many steps to report.
    #[schemars(range(min = 1, max = 20))]
    steps: u32,
}

impl Tool for Progress {
    const NAME: &'static str = "progress";
    const DESCRIPTION: &'static str =
        "Count through the given number of steps, reporting progress and logging at each one.";
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = Args;

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
