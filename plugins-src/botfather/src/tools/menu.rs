//! The menu button next to the message field: `getChatMenuButton`, `setChatMenuButton`.

use sanctum_guest::{Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, json};

use super::{READ, SET, api_output};
use crate::validate::{https_url, max_len, private_chat_id};

pub(crate) struct GetMenuButton;

/// Show the bot's menu button in one private chat, or the default for all chats.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetMenuButtonArgs {
    /// Numeric id of a private chat; the default button if absent.
    chat: Option<String>,
}

impl Tool for GetMenuButton {
    const NAME: &'static str = "get_menu_button";
    const ANNOTATIONS: sanctum_guest::Annotations = READ;
    type Args = GetMenuButtonArgs;

    fn call(args: GetMenuButtonArgs) -> Result<Output, ToolError> {
        let mut params = Map::new();
        if let Some(chat) = &args.chat {
            params.insert("chat_id".into(), private_chat_id(chat)?);
        }
        api_output("menu button", "getChatMenuButton", params)
    }
}

/// What the menu button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MenuKind {
    /// Opens the bot's command list.
    Commands,
    /// Opens a Web App; needs `text` and `web_app_url`.
    WebApp,
    /// Telegram's default behaviour.
    Default,
}

pub(crate) struct SetMenuButton;

/// Set the bot's menu button in one private chat, or the default for all chats.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetMenuButtonArgs {
    /// What the button does.
    kind: MenuKind,
    /// The button's label, for `web_app` (1-64 characters).
    text: Option<String>,
    /// The Web App's https:// URL, for `web_app`.
    web_app_url: Option<String>,
    /// Numeric id of a private chat; the default button if absent.
    chat: Option<String>,
}

impl Tool for SetMenuButton {
    const NAME: &'static str = "set_menu_button";
    const ANNOTATIONS: sanctum_guest::Annotations = SET;
    type Args = SetMenuButtonArgs;

    fn call(args: SetMenuButtonArgs) -> Result<Output, ToolError> {
        let button = match (args.kind, &args.text, &args.web_app_url) {
            (MenuKind::WebApp, Some(text), Some(url)) => {
                if text.trim().is_empty() {
                    return Err(ToolError::new("a web_app menu button needs a non-empty `text`"));
                }
                max_len("the button text", text, 64)?;
                https_url("web app URL", url)?;
                json!({"type": "web_app", "text": text, "web_app": {"url": url}})
            }
            (MenuKind::WebApp, _, _) => {
                return Err(ToolError::new("a web_app menu button needs both `text` and `web_app_url`"));
            }
            (kind, None, None) => json!({"type": if kind == MenuKind::Commands { "commands" } else { "default" }}),
            (_, _, _) => return Err(ToolError::new("`text` and `web_app_url` apply only to kind `web_app`")),
        };
        let mut params = Map::new();
        if let Some(chat) = &args.chat {
            params.insert("chat_id".into(), private_chat_id(chat)?);
        }
        params.insert("menu_button".into(), button.clone());
        api_output(&format!("menu button set to {button}"), "setChatMenuButton", params)
    }
}
