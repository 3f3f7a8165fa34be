//! `notes__list`: the simplest kind of tool. No arguments, plain text out.

use sanctum_guest::{Annotations, NoArgs, Output, Tool, ToolError};

use crate::store::Notes;

pub(crate) struct ListNotes;

impl Tool for ListNotes {
    const NAME: &'static str = "list";
    // `NoArgs` has no doc comment to describe the tool, so the description is written here.
    const DESCRIPTION: &'static str = "List the notes (Markdown and text files) with their sizes. Use a name \
         from this list with `notes__read`.";
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = NoArgs;

    fn call(_: NoArgs) -> Result<Output, ToolError> {
        list(&Notes::granted())
    }
}

fn list(notes: &Notes) -> Result<Output, ToolError> {
    let notes = notes.list()?;
    if notes.is_empty() {
        return Ok("there are no notes yet (notes are .md and .txt files in the notes directory)".into());
    }
    let mut text = format!("{} notes:", notes.len());
    for note in &notes {
        text.push_str(&format!("\n- {} ({} bytes)", note.name, note.bytes));
    }
    Ok(text.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TempNotes;

    #[test]
    fn lists_names_and_sizes() {
        let temp = TempNotes::with(&[("ideas.md", "# Ideas\n"), ("todo.txt", "")]);
        assert_eq!(list(&temp.notes), Ok("2 notes:\n- ideas.md (8 bytes)\n- todo.txt (0 bytes)".into()));
    }

    #[test]
    fn says_so_when_there_are_none() {
        let temp = TempNotes::with(&[]);
        let text = format!("{:?}", list(&temp.notes));
        assert!(text.contains("there are no notes yet"), "{text}");
    }
}
