//! Talking to @BotFather through the operator's companion command.
//!
//! The Bot API cannot create bots or revoke tokens; only a chat with @BotFather from a user
//! account can. The plugin runs the granted command `botfather-client` (name configurable as
//! `companion_command`) once per step and speaks the JSON protocol documented in
//! `plugins-src/botfather/companion/PROTOCOL.md`: one request on stdin, one reply on stdout.
//! Every text that comes back has bot tokens redacted before it goes anywhere else.

use sanctum_guest::{ToolError, process};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::redact::redact_tokens;

const DEFAULT_COMMAND: &str = "botfather-client";

/// A message in the chat with @BotFather, as the companion reports it (tokens redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Message {
    /// Message id, for `click_button`.
    pub(crate) id: i64,
    /// False for messages this account sent.
    pub(crate) from_botfather: bool,
    /// When it was sent (RFC 3339, UTC).
    #[serde(default)]
    pub(crate) date: String,
    pub(crate) text: String,
    /// Inline keyboard, row by row: the texts `click_button` accepts.
    #[serde(default)]
    pub(crate) buttons: Vec<Vec<String>>,
    /// The message was edited in place (BotFather edits menus as you click).
    #[serde(default)]
    pub(crate) edited: bool,
}

#[derive(Deserialize)]
struct Reply {
    ok: bool,
    #[serde(default)]
    messages: Vec<Message>,
    error: Option<String>,
}

/// The messages a step produced, and whether a token was withheld from them.
pub(crate) struct Exchange {
    pub(crate) messages: Vec<Message>,
    pub(crate) token_withheld: bool,
}

impl Exchange {
    /// BotFather's last message, the one that answers the step.
    pub(crate) fn last_reply(&self) -> Option<&Message> {
        self.messages.iter().rev().find(|m| m.from_botfather)
    }

    /// The text of BotFather's last message, or "" if it said nothing.
    pub(crate) fn reply_text(&self) -> &str {
        self.last_reply().map_or("", |m| m.text.as_str())
    }
}

pub(crate) fn send_message(text: &str) -> Result<Exchange, ToolError> {
    request(&json!({"op": "send_message", "text": text}))
}

pub(crate) fn click_button(message_id: i64, button: &str) -> Result<Exchange, ToolError> {
    request(&json!({"op": "click_button", "message_id": message_id, "button": button}))
}

pub(crate) fn read(limit: u32) -> Result<Exchange, ToolError> {
    request(&json!({"op": "read", "limit": limit}))
}

fn request(request: &Value) -> Result<Exchange, ToolError> {
    let command = sanctum_guest::config::get("companion_command").unwrap_or_else(|| DEFAULT_COMMAND.to_owned());
    let stdin = serde_json::to_vec(request).map_err(|e| ToolError::new(format!("internal error: {e}")))?;
    let out = process::run(&command, &[], Some(&stdin)).map_err(|e| {
        ToolError::new(format!(
            "cannot reach BotFather: {e}. BotFather chats need the companion client granted as command `{command}`"
        ))
    })?;
    if out.timed_out {
        return Err(ToolError::new("BotFather did not answer in time; check `recent_messages` before retrying"));
    }
    // PROTOCOL.md: 0 answers ok, 1 answers an error; anything else is a broken companion.
    let reply: Reply =
        serde_json::from_slice(&out.stdout).ok().filter(|_| matches!(out.status, Some(0 | 1))).ok_or_else(|| {
            let (stderr, _) = redact_tokens(out.stderr_text().trim());
            let status = out.status.map_or_else(|| "killed".to_owned(), |code| format!("exit status {code}"));
            ToolError::new(format!(
                "the companion client gave no protocol reply ({status}): {}",
                stderr.chars().take(500).collect::<String>()
            ))
        })?;
    if !reply.ok {
        let (error, _) = redact_tokens(reply.error.as_deref().unwrap_or("unknown error"));
        return Err(ToolError::new(format!("the companion client failed: {error}")));
    }
    let mut token_withheld = false;
    let messages = reply
        .messages
        .into_iter()
        .map(|mut m| {
            let (text, found) = redact_tokens(&m.text);
            token_withheld |= found;
            m.text = text;
            for label in m.buttons.iter_mut().flatten() {
                let (clean, found) = redact_tokens(label);
                token_withheld |= found;
                *label = clean;
            }
            m
        })
        .collect();
    Ok(Exchange { messages, token_withheld })
}
