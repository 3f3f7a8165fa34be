//! Where Telegram delivers updates: `getWebhookInfo`, `setWebhook`, `deleteWebhook`.

use sanctum_guest::{Annotations, NoArgs, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Map;

use super::{READ, SET, api_output};
use crate::validate::https_url;

/// The update types Telegram can deliver, for `allowed_updates`.
const UPDATE_TYPES: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
];

pub(crate) struct GetWebhookInfo;

impl Tool for GetWebhookInfo {
    const NAME: &'static str = "get_webhook_info";
    const DESCRIPTION: &'static str =
        "Show the bot's webhook: its URL (empty when the bot polls), pending updates and the last delivery error.";
    const ANNOTATIONS: Annotations = READ;
    type Args = NoArgs;

    fn call(_: NoArgs) -> Result<Output, ToolError> {
        api_output("webhook info", "getWebhookInfo", Map::new())
    }
}

pub(crate) struct SetWebhook;

/// Make Telegram deliver the bot's updates to an HTTPS URL.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetWebhookArgs {
    /// The https:// URL to deliver updates to.
    url: String,
    /// Simultaneous connections Telegram may open, 1-100 (40 if absent).
    #[schemars(range(min = 1, max = 100))]
    max_connections: Option<u32>,
    /// Update types to deliver, e.g. `message`, `callback_query`; Telegram's default set if absent.
    allowed_updates: Option<Vec<String>>,
    /// Drop the updates waiting for delivery.
    drop_pending_updates: Option<bool>,
}

impl Tool for SetWebhook {
    const NAME: &'static str = "set_webhook";
    const ANNOTATIONS: Annotations = SET;
    type Args = SetWebhookArgs;

    fn call(args: SetWebhookArgs) -> Result<Output, ToolError> {
        https_url("webhook URL", &args.url)?;
        let mut params = Map::new();
        params.insert("url".into(), args.url.clone().into());
        if let Some(n) = args.max_connections {
            if !(1..=100).contains(&n) {
                return Err(ToolError::new("max_connections must be 1-100"));
            }
            params.insert("max_connections".into(), n.into());
        }
        if let Some(types) = args.allowed_updates {
            if let Some(bad) = types.iter().find(|t| !UPDATE_TYPES.contains(&t.as_str())) {
                return Err(ToolError::new(format!(
                    "`{bad}` is not an update type; choose from: {}",
                    UPDATE_TYPES.join(", ")
                )));
            }
            params.insert("allowed_updates".into(), types.into());
        }
        if let Some(drop) = args.drop_pending_updates {
            params.insert("drop_pending_updates".into(), drop.into());
        }
        api_output(&format!("webhook set to {}", args.url), "setWebhook", params)
    }
}

pub(crate) struct DeleteWebhook;

/// Remove the bot's webhook, so updates can be fetched by polling again.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteWebhookArgs {
    /// Drop the updates waiting for delivery.
    drop_pending_updates: Option<bool>,
}

impl Tool for DeleteWebhook {
    const NAME: &'static str = "delete_webhook";
    const ANNOTATIONS: Annotations = SET;
    type Args = DeleteWebhookArgs;

    fn call(args: DeleteWebhookArgs) -> Result<Output, ToolError> {
        let mut params = Map::new();
        if let Some(drop) = args.drop_pending_updates {
            params.insert("drop_pending_updates".into(), drop.into());
        }
        api_output("webhook deleted", "deleteWebhook", params)
    }
}
