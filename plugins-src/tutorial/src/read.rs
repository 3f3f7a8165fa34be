//! `notes__read`: one required argument, text out, and errors that tell the model what to do.

use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::store::Notes;

pub(crate) struct ReadNote;

/// Read one note in full. Find its name with `notes__list` or `notes__search` first.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadArgs {
    /// The note's file name exactly as `notes__list` shows it, e.g. `ideas.md`.
    #[schemars(length(min = 1, max = 255))]
    pub(crate) name: String,
}

impl Tool for ReadNote {
    const NAME: &'static str = "read";
    const TITLE: Option<&'static str> = Some("Read a note");
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = ReadArgs;

    fn call(args: ReadArgs) -> Result<Output, ToolError> {
        read(&Notes::granted(), &args.name)
    }
}

fn read(notes: &Notes, name: &str) -> Result<Output, ToolError> {
    let text = notes.read(name)?;
    if text.trim().is_empty() {
        return Ok(format!("`{name}` is empty").into());
    }
    Ok(text.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TempNotes;

    #[test]
    fn returns_the_text_or_says_it_is_empty() {
        let temp = TempNotes::with(&[("ideas.md", "# Ideas\n"), ("blank.txt", "\n")]);
        assert_eq!(read(&temp.notes, "ideas.md"), Ok("# Ideas\n".into()));
        assert_eq!(read(&temp.notes, "blank.txt"), Ok("`blank.txt` is empty".into()));
    }

    #[test]
    fn the_description_is_the_doc_comment_of_the_arguments() {
        let schema = ReadNote::input_schema();
        assert_eq!(schema["required"], serde_json::json!(["name"]));
        assert_eq!(schema["properties"]["name"]["maxLength"], 255);
    }
}
