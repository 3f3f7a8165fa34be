//! The chat with @BotFather, through the companion client: raw steps (`send_message`,
//! `click_button`, `recent_messages`) and the flows built on them (`create_bot`, `revoke_token`).
//! Tokens BotFather prints are withheld; the result says when one was.

use sanctum_guest::{Annotations, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::{self, Exchange, Message};
use crate::validate::{MAX_MESSAGE, MAX_NAME, bot_username, max_len};

/// Sending to BotFather changes state there, and a raw message or button press can delete a bot
/// or revoke a token; it is Telegram, so an open world.
const CHAT: Annotations = Annotations::NONE.read_only(false).destructive(true).idempotent(false).open_world(true);

/// What every chat tool returns as structured content.
#[derive(Serialize, JsonSchema)]
struct Transcript {
    /// The messages this step produced (or read), oldest first, tokens withheld.
    messages: Vec<Message>,
    /// A bot token appeared and was withheld from these messages.
    token_withheld: bool,
}

fn transcript_schema() -> Option<Value> {
    Some(sanctum_guest::schema::output_schema::<Transcript>())
}

fn render(headline: &str, exchange: Exchange) -> Result<Output, ToolError> {
    let mut text = headline.to_owned();
    for m in &exchange.messages {
        let who = if m.from_botfather { "BotFather" } else { "you" };
        let edited = if m.edited { ", edited" } else { "" };
        text.push_str(&format!("\n\n{who} (message {}{edited}):\n{}", m.id, m.text));
        for row in &m.buttons {
            let row: Vec<String> = row.iter().map(|b| format!("[{b}]")).collect();
            text.push_str(&format!("\n  buttons: {}", row.join(" ")));
        }
    }
    if exchange.token_withheld {
        text.push_str(
            "\n\nA bot token was withheld from this conversation. An operator can read it in the BotFather chat; \
             to manage that bot here, the operator stores it as this server's `bot_token` secret.",
        );
    }
    let structured = Transcript { messages: exchange.messages, token_withheld: exchange.token_withheld };
    Output::new().text(text).structured(&structured)
}

pub(crate) struct SendMessage;

/// Send a message to @BotFather (a command such as `/mybots`, or an answer to its question) and
/// return its reply, including any buttons.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendMessageArgs {
    /// The text to send, 1-4096 characters.
    #[schemars(length(min = 1, max = 4096))]
    text: String,
}

impl Tool for SendMessage {
    const NAME: &'static str = "send_message";
    const ANNOTATIONS: Annotations = CHAT;
    type Args = SendMessageArgs;

    fn output_schema() -> Option<Value> {
        transcript_schema()
    }

    fn call(args: SendMessageArgs) -> Result<Output, ToolError> {
        if args.text.trim().is_empty() {
            return Err(ToolError::new("the message is empty"));
        }
        max_len("the message", &args.text, MAX_MESSAGE)?;
        render("sent to @BotFather", chat::send_message(&args.text)?)
    }
}

pub(crate) struct ClickButton;

/// Press an inline-keyboard button under one of @BotFather's messages and return what changed.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClickButtonArgs {
    /// The id of the message carrying the button, from an earlier result.
    #[schemars(range(min = 1))]
    message_id: i64,
    /// The button's exact text, e.g. `API Token`.
    #[schemars(length(min = 1, max = 64))]
    button: String,
}

impl Tool for ClickButton {
    const NAME: &'static str = "click_button";
    const ANNOTATIONS: Annotations = CHAT;
    type Args = ClickButtonArgs;

    fn output_schema() -> Option<Value> {
        transcript_schema()
    }

    fn call(args: ClickButtonArgs) -> Result<Output, ToolError> {
        if args.message_id < 1 || args.button.is_empty() {
            return Err(ToolError::new("give the message id and the exact text of one of its buttons"));
        }
        render(&format!("pressed [{}]", args.button), chat::click_button(args.message_id, &args.button)?)
    }
}

pub(crate) struct RecentMessages;

/// Read the latest messages of the chat with @BotFather, oldest first, to see where a
/// conversation stands.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecentMessagesArgs {
    /// How many messages, 1-20; 5 if absent.
    #[schemars(range(min = 1, max = 20))]
    limit: Option<u32>,
}

impl Tool for RecentMessages {
    const NAME: &'static str = "recent_messages";
    const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true).idempotent(true).open_world(true);
    type Args = RecentMessagesArgs;

    fn output_schema() -> Option<Value> {
        transcript_schema()
    }

    fn call(args: RecentMessagesArgs) -> Result<Output, ToolError> {
        let limit = args.limit.unwrap_or(5).clamp(1, 20);
        render("recent messages with @BotFather", chat::read(limit)?)
    }
}

/// Run one step of a flow; a reply without `expected` (lowercase) ends the flow, after a
/// `/cancel` so BotFather is not left waiting for an answer.
fn step(text: &str, expected: &[&str], transcript: &mut Vec<Message>) -> Result<(), ToolError> {
    let exchange = chat::send_message(text)?;
    let reply = exchange.reply_text().to_lowercase();
    let answered = exchange.last_reply().cloned();
    transcript.extend(exchange.messages);
    if expected.iter().all(|e| reply.contains(e)) {
        return Ok(());
    }
    let _ = chat::send_message("/cancel");
    Err(ToolError::new(format!(
        "BotFather did not accept `{text}`: {}",
        answered.map_or_else(|| "no reply".to_owned(), |m| m.text)
    )))
}

pub(crate) struct CreateBot;

/// Create a new Telegram bot through @BotFather (its `/newbot` conversation). The new token is
/// withheld from the result: an operator collects it from the BotFather chat.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBotArgs {
    /// The display name, 1-64 characters.
    #[schemars(length(min = 1, max = 64))]
    name: String,
    /// The @username: 5-32 letters, digits or underscores, ending in `bot`.
    username: String,
}

impl Tool for CreateBot {
    const NAME: &'static str = "create_bot";
    const ANNOTATIONS: Annotations =
        Annotations::NONE.read_only(false).destructive(false).idempotent(false).open_world(true);
    type Args = CreateBotArgs;

    fn output_schema() -> Option<Value> {
        transcript_schema()
    }

    fn call(args: CreateBotArgs) -> Result<Output, ToolError> {
        if args.name.trim().is_empty() {
            return Err(ToolError::new("the bot needs a name"));
        }
        max_len("the name", &args.name, MAX_NAME)?;
        let username = bot_username(&args.username)?;
        let mut transcript = Vec::new();
        step("/newbot", &["name"], &mut transcript)?;
        step(&args.name, &["username"], &mut transcript)?;
        step(&username, &["done"], &mut transcript)?;
        finish(&format!("created @{username}"), transcript)
    }
}

pub(crate) struct RevokeToken;

/// Revoke a bot's token through @BotFather (`/revoke`), so the old token stops working at once.
/// The replacement is withheld from the result: an operator collects it from the BotFather chat.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeTokenArgs {
    /// The bot's @username.
    username: String,
}

impl Tool for RevokeToken {
    const NAME: &'static str = "revoke_token";
    const ANNOTATIONS: Annotations =
        Annotations::NONE.read_only(false).destructive(true).idempotent(false).open_world(true);
    type Args = RevokeTokenArgs;

    fn output_schema() -> Option<Value> {
        transcript_schema()
    }

    fn call(args: RevokeTokenArgs) -> Result<Output, ToolError> {
        let username = bot_username(&args.username)?;
        let mut transcript = Vec::new();
        step("/revoke", &["choose a bot"], &mut transcript)?;
        step(&format!("@{username}"), &["token"], &mut transcript)?;
        finish(&format!("revoked the token of @{username}"), transcript)
    }
}

fn finish(headline: &str, messages: Vec<Message>) -> Result<Output, ToolError> {
    let token_withheld = messages.iter().any(|m| m.text.contains(crate::redact::REDACTED));
    render(headline, Exchange { messages, token_withheld })
}
