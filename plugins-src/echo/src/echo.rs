use sanctum_guest::{Annotations, Output, Tool, ToolError};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) struct Echo;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    text: String,
    repeat: Option<u32>,
    uppercase: Option<bool>,
}

impl Tool for Echo {
    const NAME: &'static str = "echo";
    const TITLE: Option<&'static str> = Some("Echo");
    const DESCRIPTION: &'static str = "Return the given text, optionally repeated (joined by single spaces) and \
         upper-cased.";
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = Args;

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "text": {
                    "type": "string",
                    "description": "The text to echo.",
                    "maxLength": 10000,
                },
                "repeat": {
                    "type": ["integer", "null"],
                    "description": "How many times to repeat the text; 1 if absent.",
                    "minimum": 1,
                    "maximum": 10,
                },
                "uppercase": {
                    "type": ["boolean", "null"],
                    "description": "Upper-case the result; false if absent.",
                },
            },
            "required": ["text"],
            "additionalProperties": false,
        })
    }

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
