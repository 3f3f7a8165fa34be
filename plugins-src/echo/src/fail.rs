use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;

pub(crate) struct Fail;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// What the error message should say.
    reason: String,
}

impl Tool for Fail {
    const NAME: &'static str = "fail";
    const DESCRIPTION: &'static str = "Always fail with the given reason; for trying out how errors are reported.";
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = Args;

    fn call(args: Args) -> Result<Output, ToolError> {
        Err(ToolError::new(format!("failed as asked: {}", args.reason)))
    }
}
