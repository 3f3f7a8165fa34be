//! `notes__search`: an enum and optional arguments in, a structured result with a declared output
//! schema out, with progress, logging and cancellation along the way.

use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::Notes;

pub(crate) struct SearchNotes;

/// Search the notes for lines matching a query. Returns each matching line with its note's name
/// and line number; read the whole note with `notes__read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchArgs {
    /// The text to look for.
    #[schemars(length(min = 1, max = 200))]
    pub(crate) query: String,
    /// How the query must match a line: `contains` (anywhere; the default), `word` (as whole
    /// words) or `prefix` (at the start of the line, ignoring indentation, e.g. `TODO`).
    pub(crate) mode: Option<MatchMode>,
    /// Match upper and lower case exactly; case-insensitive if absent.
    pub(crate) case_sensitive: Option<bool>,
    /// The most matching lines to return; 20 if absent.
    #[schemars(range(min = 1, max = 100))]
    pub(crate) limit: Option<u32>,
}

// The variants have plain comments, not doc comments: documented variants would make schemars
// describe the enum as a `oneOf` of constants, where a plain `enum` list reads better in every
// client. The field's doc comment above explains them instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MatchMode {
    // Anywhere in the line.
    #[default]
    Contains,
    // As whole words: not inside a longer word.
    Word,
    // At the start of the line, after any indentation.
    Prefix,
}

/// The structured result. Its schema is the tool's output schema, so clients that read
/// structured content know its shape; the same value is also sent as JSON text for the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct SearchResult {
    /// The matching lines, by note name and then line number.
    pub(crate) matches: Vec<Match>,
    /// How many notes were searched.
    pub(crate) notes_searched: usize,
    /// More lines matched than `limit` allowed; narrow the query or raise the limit.
    pub(crate) truncated: bool,
}

/// One matching line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct Match {
    /// The note's file name, for `notes__read`.
    pub(crate) note: String,
    /// The line number, counting from 1.
    pub(crate) line: usize,
    /// The line, trimmed, and cut after 200 characters.
    pub(crate) text: String,
}

const DEFAULT_LIMIT: u32 = 20;
const MAX_LINE_CHARS: usize = 200;

impl Tool for SearchNotes {
    const NAME: &'static str = "search";
    const TITLE: Option<&'static str> = Some("Search notes");
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(false);
    type Args = SearchArgs;

    fn output_schema() -> Option<Value> {
        Some(sanctum_guest::schema::output_schema::<SearchResult>())
    }

    fn call(args: SearchArgs) -> Result<Output, ToolError> {
        let result = search(&Notes::granted(), &args)?;
        sanctum_guest::log::info(&format!(
            "{} matching lines in {} notes",
            result.matches.len(),
            result.notes_searched
        ));
        Output::new().json(&result)?.structured(&result)
    }
}

pub(crate) fn search(notes: &Notes, args: &SearchArgs) -> Result<SearchResult, ToolError> {
    let query = args.query.trim();
    if query.is_empty() {
        return Err(ToolError::new("`query` is blank; pass the words to look for, e.g. {\"query\": \"meeting\"}"));
    }
    let matcher = Matcher::new(query, args.mode.unwrap_or_default(), args.case_sensitive.unwrap_or(false));
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT) as usize;
    let listed = notes.list()?;
    let total = listed.len() as f64;
    let mut result = SearchResult { matches: Vec::new(), notes_searched: 0, truncated: false };
    'notes: for note in &listed {
        // The host stops a cancelled call by itself; checking lets the tool stop between notes.
        if sanctum_guest::is_cancelled() {
            return Err(ToolError::new("the search was cancelled"));
        }
        let text = match notes.read(&note.name) {
            Ok(text) => text,
            // One unreadable note (too large, not UTF-8) should not spoil the whole search.
            Err(error) => {
                sanctum_guest::log::warn(&format!("skipped {}: {error}", note.name));
                continue;
            }
        };
        result.notes_searched += 1;
        for (index, line) in text.lines().enumerate() {
            if !matcher.matches(line) {
                continue;
            }
            if result.matches.len() == limit {
                result.truncated = true;
                break 'notes;
            }
            let text: String = line.trim().chars().take(MAX_LINE_CHARS).collect();
            result.matches.push(Match { note: note.name.clone(), line: index + 1, text });
        }
        sanctum_guest::progress(result.notes_searched as f64, Some(total), Some(&note.name));
    }
    Ok(result)
}

/// A query prepared for one way of matching.
struct Matcher {
    needle: String,
    mode: MatchMode,
    case_sensitive: bool,
}

impl Matcher {
    fn new(query: &str, mode: MatchMode, case_sensitive: bool) -> Self {
        let needle = if case_sensitive { query.to_owned() } else { query.to_lowercase() };
        Self { needle, mode, case_sensitive }
    }

    fn matches(&self, line: &str) -> bool {
        let folded;
        let line = if self.case_sensitive {
            line
        } else {
            folded = line.to_lowercase();
            &folded
        };
        match self.mode {
            MatchMode::Contains => line.contains(&self.needle),
            MatchMode::Prefix => line.trim_start().starts_with(&self.needle),
            MatchMode::Word => line.match_indices(&self.needle).any(|(start, found)| {
                let before = line[..start].chars().next_back();
                let after = line[start + found.len()..].chars().next();
                !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
            }),
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TempNotes;

    fn args(query: &str, mode: Option<MatchMode>) -> SearchArgs {
        SearchArgs { query: query.into(), mode, case_sensitive: None, limit: None }
    }

    fn found(result: &SearchResult) -> Vec<(&str, usize)> {
        result.matches.iter().map(|m| (m.note.as_str(), m.line)).collect()
    }

    #[test]
    fn each_mode_matches_its_own_way() {
        let temp = TempNotes::with(&[
            ("a.md", "Meeting notes\n  TODO: book a room\nmeetings are long\n"),
            ("b.txt", "no todo here\nthe meeting moved\n"),
        ]);
        let contains = search(&temp.notes, &args("meeting", None)).expect("searched");
        assert_eq!(found(&contains), [("a.md", 1), ("a.md", 3), ("b.txt", 2)]);
        assert_eq!(contains.notes_searched, 2);
        let word = search(&temp.notes, &args("meeting", Some(MatchMode::Word))).expect("searched");
        assert_eq!(found(&word), [("a.md", 1), ("b.txt", 2)]);
        let prefix = search(&temp.notes, &args("todo", Some(MatchMode::Prefix))).expect("searched");
        assert_eq!(found(&prefix), [("a.md", 2)]);
        assert_eq!(prefix.matches[0].text, "TODO: book a room");
    }

    #[test]
    fn case_and_limit_are_honoured() {
        let temp = TempNotes::with(&[("a.md", "TODO one\ntodo two\nTODO three\n")]);
        let exact = SearchArgs { case_sensitive: Some(true), limit: Some(1), ..args("TODO", None) };
        let result = search(&temp.notes, &exact).expect("searched");
        assert_eq!(found(&result), [("a.md", 1)]);
        assert!(result.truncated);
    }

    #[test]
    fn a_blank_query_says_what_to_send() {
        let temp = TempNotes::with(&[]);
        let error = search(&temp.notes, &args("  ", None)).expect_err("blank");
        assert!(error.message().contains("pass the words to look for"), "{error}");
    }

    #[test]
    fn the_schemas_are_what_clients_expect() {
        let input = SearchNotes::input_schema();
        assert_eq!(input["required"], serde_json::json!(["query"]));
        // An optional enum: a plain list of its values, or null (which the SDK reads as absent).
        let mode = &input["properties"]["mode"]["anyOf"];
        assert_eq!(mode[0]["enum"], serde_json::json!(["contains", "word", "prefix"]));
        assert_eq!(mode[1]["type"], "null");
        assert_eq!(input["properties"]["limit"]["type"], serde_json::json!(["integer", "null"]));
        let output = SearchNotes::output_schema().expect("declared");
        assert_eq!(output["properties"]["matches"]["items"]["additionalProperties"], false);
    }
}
