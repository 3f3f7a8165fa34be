use std::time::{Duration, Instant};

use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;

pub(crate) struct Wait;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// How long to wait, in milliseconds.
    #[schemars(range(max = 600_000))]
    ms: u64,
}

impl Tool for Wait {
    const NAME: &'static str = "wait";
    const DESCRIPTION: &'static str = "Stay busy for the given number of milliseconds, stopping \
         early if the call is cancelled; for trying out timeouts and cancellation.";
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = Args;

    fn call(args: Args) -> Result<Output, ToolError> {
        // Busy rather than sleeping on purpose: the host's tests need a call that keeps the guest
        // running, so deadlines, cancellation and the busy queue act on executing wasm code.
        let deadline = Duration::from_millis(args.ms);
        let start = Instant::now();
        while start.elapsed() < deadline {
            if sanctum_guest::is_cancelled() {
                return Err(ToolError::new("cancelled"));
            }
        }
        Ok(format!("waited {} ms", args.ms).into())
    }
}
