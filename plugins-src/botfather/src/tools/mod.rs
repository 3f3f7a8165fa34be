//! The tools, grouped as BotFather's own menus are: profile, commands, menu button, default
//! administrator rights, webhook (all Bot API), and the chat with @BotFather.

pub(crate) mod chat;
pub(crate) mod commands;
pub(crate) mod menu;
pub(crate) mod profile;
pub(crate) mod rights;
pub(crate) mod webhook;

use sanctum_guest::{Annotations, Output, ToolError};
use serde_json::{Map, Value};

/// Bot API reads: no change, same answer twice, talks to Telegram.
pub(crate) const READ: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(true);
/// Bot API settings: overwrite the previous value, so repeating is harmless.
pub(crate) const SET: Annotations =
    Annotations::NONE.read_only(false).destructive(true).idempotent(true).open_world(true);

/// Call `method` and show its result as JSON after a one-line summary.
pub(crate) fn api_output(summary: &str, method: &str, params: Map<String, Value>) -> Result<Output, ToolError> {
    let result = crate::api::call(method, &Value::Object(params))?;
    Output::new().text(summary).json(&result)
}

/// `language_code` as a parameter, after checking it.
pub(crate) fn with_language(
    mut params: Map<String, Value>,
    code: Option<&str>,
) -> Result<Map<String, Value>, ToolError> {
    if let Some(code) = code.filter(|c| !c.is_empty()) {
        crate::validate::language_code(code)?;
        params.insert("language_code".into(), code.into());
    }
    Ok(params)
}

/// "for language `de`" or "for all languages".
pub(crate) fn for_language(code: Option<&str>) -> String {
    match code.filter(|c| !c.is_empty()) {
        Some(code) => format!("for language `{code}`"),
        None => "for all languages".to_owned(),
    }
}
