//! The bot's identity and profile texts: `getMe`, name, description, short description.

use sanctum_guest::{NoArgs, Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{READ, SET, api_output, for_language, with_language};
use crate::api;
use crate::validate::{MAX_DESCRIPTION, MAX_NAME, MAX_SHORT_DESCRIPTION, language_code, max_len};

pub(crate) struct GetMe;

impl Tool for GetMe {
    const NAME: &'static str = "get_me";
    const DESCRIPTION: &'static str =
        "Identify the bot this server administers: its id, username, name and capabilities (Bot API getMe).";
    const ANNOTATIONS: sanctum_guest::Annotations = READ;
    type Args = NoArgs;

    fn call(_: NoArgs) -> Result<Output, ToolError> {
        let me = api::call("getMe", &json!({}))?;
        let username = me.get("username").and_then(Value::as_str).unwrap_or("?");
        Output::new().text(format!("this server administers @{username}")).json(&me)
    }
}

pub(crate) struct GetProfile;

/// Read the bot's name, description (shown in an empty chat) and short description (shown on
/// its profile page and in shares), for one language or the default.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetProfileArgs {
    /// Two-letter language code; the texts shown to users without a dedicated translation if
    /// absent.
    language_code: Option<String>,
}

impl Tool for GetProfile {
    const NAME: &'static str = "get_profile";
    const ANNOTATIONS: sanctum_guest::Annotations = READ;
    type Args = GetProfileArgs;

    fn call(args: GetProfileArgs) -> Result<Output, ToolError> {
        let params = Value::Object(with_language(Map::new(), args.language_code.as_deref())?);
        let field = |method: &str, key: &str| -> Result<Value, ToolError> {
            Ok(api::call(method, &params)?.get(key).cloned().unwrap_or(Value::Null))
        };
        let profile = json!({
            "name": field("getMyName", "name")?,
            "description": field("getMyDescription", "description")?,
            "short_description": field("getMyShortDescription", "short_description")?,
        });
        Output::new().text(format!("profile {}", for_language(args.language_code.as_deref()))).json(&profile)
    }
}

pub(crate) struct SetName;

/// Change the bot's display name (not its @username, which only BotFather can change).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetNameArgs {
    /// The new name, at most 64 characters; empty removes the name for this language.
    name: String,
    /// Two-letter language code to set it for; all users without a dedicated name if absent.
    language_code: Option<String>,
}

impl Tool for SetName {
    const NAME: &'static str = "set_name";
    const ANNOTATIONS: sanctum_guest::Annotations = SET;
    type Args = SetNameArgs;

    fn call(args: SetNameArgs) -> Result<Output, ToolError> {
        max_len("the name", &args.name, MAX_NAME)?;
        set_text("setMyName", "name", &args.name, args.language_code.as_deref())
    }
}

pub(crate) struct SetDescription;

/// Change the bot's description, shown in the chat with the bot while it is empty.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetDescriptionArgs {
    /// The new description, at most 512 characters; empty removes it for this language.
    description: String,
    /// Two-letter language code to set it for; all users without a dedicated text if absent.
    language_code: Option<String>,
}

impl Tool for SetDescription {
    const NAME: &'static str = "set_description";
    const ANNOTATIONS: sanctum_guest::Annotations = SET;
    type Args = SetDescriptionArgs;

    fn call(args: SetDescriptionArgs) -> Result<Output, ToolError> {
        max_len("the description", &args.description, MAX_DESCRIPTION)?;
        set_text("setMyDescription", "description", &args.description, args.language_code.as_deref())
    }
}

pub(crate) struct SetShortDescription;

/// Change the bot's short description, shown on its profile page and when it is shared.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetShortDescriptionArgs {
    /// The new short description, at most 120 characters; empty removes it for this language.
    short_description: String,
    /// Two-letter language code to set it for; all users without a dedicated text if absent.
    language_code: Option<String>,
}

impl Tool for SetShortDescription {
    const NAME: &'static str = "set_short_description";
    const ANNOTATIONS: sanctum_guest::Annotations = SET;
    type Args = SetShortDescriptionArgs;

    fn call(args: SetShortDescriptionArgs) -> Result<Output, ToolError> {
        max_len("the short description", &args.short_description, MAX_SHORT_DESCRIPTION)?;
        set_text("setMyShortDescription", "short_description", &args.short_description, args.language_code.as_deref())
    }
}

fn set_text(method: &str, key: &str, value: &str, language: Option<&str>) -> Result<Output, ToolError> {
    if let Some(code) = language {
        language_code(code)?;
    }
    let mut params = Map::new();
    params.insert(key.into(), value.into());
    let params = with_language(params, language)?;
    let what = key.replace('_', " ");
    let summary = if value.is_empty() {
        format!("{what} removed {}", for_language(language))
    } else {
        format!("{what} set {}", for_language(language))
    };
    api_output(&summary, method, params)
}
