//! The rights the bot asks for when added as an administrator:
//! `getMyDefaultAdministratorRights`, `setMyDefaultAdministratorRights`.

use sanctum_guest::{Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Map;

use super::{READ, SET, api_output};

fn audience(for_channels: Option<bool>) -> &'static str {
    if for_channels == Some(true) { "in channels" } else { "in groups" }
}

pub(crate) struct GetDefaultAdminRights;

/// Show the administrator rights the bot requests by default when added to groups or channels.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetDefaultAdminRightsArgs {
    /// The rights for channels instead of groups.
    for_channels: Option<bool>,
}

impl Tool for GetDefaultAdminRights {
    const NAME: &'static str = "get_default_admin_rights";
    const ANNOTATIONS: sanctum_guest::Annotations = READ;
    type Args = GetDefaultAdminRightsArgs;

    fn call(args: GetDefaultAdminRightsArgs) -> Result<Output, ToolError> {
        let mut params = Map::new();
        if let Some(channels) = args.for_channels {
            params.insert("for_channels".into(), channels.into());
        }
        api_output(
            &format!("default administrator rights {}", audience(args.for_channels)),
            "getMyDefaultAdministratorRights",
            params,
        )
    }
}

/// Telegram's `ChatAdministratorRights`; an absent right is not requested.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rights {
    #[serde(skip_serializing_if = "Option::is_none")]
    is_anonymous: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_manage_chat: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_delete_messages: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_manage_video_chats: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_restrict_members: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_promote_members: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_change_info: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_invite_users: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_post_stories: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_edit_stories: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_delete_stories: Option<bool>,
    /// Channels only.
    #[serde(skip_serializing_if = "Option::is_none")]
    can_post_messages: Option<bool>,
    /// Channels only.
    #[serde(skip_serializing_if = "Option::is_none")]
    can_edit_messages: Option<bool>,
    /// Groups only.
    #[serde(skip_serializing_if = "Option::is_none")]
    can_pin_messages: Option<bool>,
    /// Forum groups only.
    #[serde(skip_serializing_if = "Option::is_none")]
    can_manage_topics: Option<bool>,
}

pub(crate) struct SetDefaultAdminRights;

/// Set the administrator rights the bot requests by default when added to groups or channels
/// (users can still change them). Rights not listed are not requested.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetDefaultAdminRightsArgs {
    /// The rights to request.
    rights: Rights,
    /// Set the rights for channels instead of groups.
    for_channels: Option<bool>,
}

impl Tool for SetDefaultAdminRights {
    const NAME: &'static str = "set_default_admin_rights";
    const ANNOTATIONS: sanctum_guest::Annotations = SET;
    type Args = SetDefaultAdminRightsArgs;

    fn call(args: SetDefaultAdminRightsArgs) -> Result<Output, ToolError> {
        let channels = args.for_channels == Some(true);
        if channels && args.rights.can_pin_messages.is_some() {
            return Err(ToolError::new("`can_pin_messages` applies to groups only; drop it or unset for_channels"));
        }
        if !channels && (args.rights.can_post_messages.is_some() || args.rights.can_edit_messages.is_some()) {
            return Err(ToolError::new("`can_post_messages` and `can_edit_messages` apply to channels only"));
        }
        let mut params = Map::new();
        params.insert("rights".into(), serde_json::to_value(&args.rights).unwrap_or_default());
        if let Some(channels) = args.for_channels {
            params.insert("for_channels".into(), channels.into());
        }
        api_output(
            &format!("default administrator rights set {}", audience(args.for_channels)),
            "setMyDefaultAdministratorRights",
            params,
        )
    }
}
