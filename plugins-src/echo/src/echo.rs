use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;

pub(crate) struct Echo;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// The text to echo.
    #[schemars(length(max = 10000))]
    text: String,
    /// How many times to repeat the text; 1 if absent.
    #[schemars(range(min = 1, max = 10))]
    repeat: Option<u32>,
    /// Upper-case the result; false if absent.
    uppercase: Option<bool>,
}

impl Tool for Echo {
    const NAME: &'static str = "echo";
    const TITLE: Option<&'static str> = Some("Echo");
    const DESCRIPTION: &'static str = "Return the given text, optionally repeated (joined by single spaces) and \
         upper-cased.";
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = Args;

    fn call(args: Args) -> Result<Output, ToolError> {
        let repeat = args.repeat.unwrap_or(1) as usize;
        let text = vec![args.text.as_str(); repeat].join(" ");
        let text = if args.uppercase.unwrap_or(false) { text.to_uppercase() } else { text };
        Ok(text.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_with_single_spaces_and_uppercases() {
        let args = Args { text: "ab c".into(), repeat: Some(3), uppercase: Some(true) };
        assert_eq!(Echo::call(args), Ok("AB C AB C AB C".into()));
    }

    #[test]
    fn defaults_to_once_unchanged() {
        let args = Args { text: "Hi".into(), repeat: None, uppercase: None };
        assert_eq!(Echo::call(args), Ok("Hi".into()));
    }
}
