//! The bot's command list, per scope and language: `getMyCommands`, `setMyCommands`,
//! `deleteMyCommands`.

use sanctum_guest::{Output, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{READ, SET, api_output, for_language, with_language};
use crate::validate::{MAX_COMMANDS, chat_id, command, command_description};

/// Which users a command list is for (Telegram's `BotCommandScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ScopeKind {
    /// Everyone without a more specific list.
    Default,
    AllPrivateChats,
    AllGroupChats,
    AllChatAdministrators,
    /// One chat; needs `chat`.
    Chat,
    /// The administrators of one chat; needs `chat`.
    ChatAdministrators,
    /// One member of one chat; needs `chat` and `user_id`.
    ChatMember,
}

/// A command scope.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scope {
    /// Who the list is for.
    kind: ScopeKind,
    /// Numeric chat id or public `@username`, for the chat scopes.
    chat: Option<String>,
    /// The member, for `chat_member`.
    user_id: Option<i64>,
}

impl Scope {
    /// Telegram's JSON form, after checking the fields the kind needs.
    fn to_json(&self) -> Result<Value, ToolError> {
        let name = serde_json::to_value(self.kind).ok().and_then(|v| v.as_str().map(str::to_owned));
        let name = name.unwrap_or_else(|| "default".to_owned());
        let mut scope = json!({"type": name});
        let needs_chat = matches!(self.kind, ScopeKind::Chat | ScopeKind::ChatAdministrators | ScopeKind::ChatMember);
        match (&self.chat, needs_chat) {
            (Some(chat), true) => scope["chat_id"] = chat_id(chat)?,
            (None, true) => return Err(ToolError::new(format!("scope `{name}` needs `chat`"))),
            (Some(_), false) => return Err(ToolError::new(format!("scope `{name}` takes no `chat`"))),
            (None, false) => {}
        }
        match (self.user_id, self.kind == ScopeKind::ChatMember) {
            (Some(user), true) => scope["user_id"] = user.into(),
            (None, true) => return Err(ToolError::new("scope `chat_member` needs `user_id`")),
            (Some(_), false) => return Err(ToolError::new(format!("scope `{name}` takes no `user_id`"))),
            (None, false) => {}
        }
        Ok(scope)
    }
}

fn scoped(scope: Option<&Scope>, language: Option<&str>) -> Result<(Map<String, Value>, String), ToolError> {
    let mut params = Map::new();
    let mut place = for_language(language);
    if let Some(scope) = scope {
        let json = scope.to_json()?;
        place = format!("{place}, scope {json}");
        params.insert("scope".into(), json);
    }
    Ok((with_language(params, language)?, place))
}

pub(crate) struct GetCommands;

/// List the bot's commands for a scope and language (the default scope and all languages if
/// absent).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetCommandsArgs {
    /// Which users' list; the default list if absent.
    scope: Option<Scope>,
    /// Two-letter language code; the list for all languages if absent.
    language_code: Option<String>,
}

impl Tool for GetCommands {
    const NAME: &'static str = "get_commands";
    const ANNOTATIONS: sanctum_guest::Annotations = READ;
    type Args = GetCommandsArgs;

    fn call(args: GetCommandsArgs) -> Result<Output, ToolError> {
        let (params, place) = scoped(args.scope.as_ref(), args.language_code.as_deref())?;
        api_output(&format!("commands {place}"), "getMyCommands", params)
    }
}

/// One command of the list.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BotCommand {
    /// 1-32 lowercase letters, digits or underscores, without the `/`.
    command: String,
    /// What it does, 1-256 characters.
    description: String,
}

pub(crate) struct SetCommands;

/// Replace the bot's command list for a scope and language. Every command is checked against
/// Telegram's rules before anything is sent.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetCommandsArgs {
    /// The complete new list, in menu order (at most 100).
    #[schemars(length(min = 1, max = 100))]
    commands: Vec<BotCommand>,
    /// Which users' list; the default list if absent.
    scope: Option<Scope>,
    /// Two-letter language code; the list for all languages if absent.
    language_code: Option<String>,
}

impl Tool for SetCommands {
    const NAME: &'static str = "set_commands";
    const ANNOTATIONS: sanctum_guest::Annotations = SET;
    type Args = SetCommandsArgs;

    fn call(args: SetCommandsArgs) -> Result<Output, ToolError> {
        if args.commands.is_empty() || args.commands.len() > MAX_COMMANDS {
            return Err(ToolError::new("give 1 to 100 commands; to remove the list use `delete_commands`"));
        }
        for (i, c) in args.commands.iter().enumerate() {
            command(&c.command)?;
            command_description(&c.command, &c.description)?;
            if args.commands[..i].iter().any(|earlier| earlier.command == c.command) {
                return Err(ToolError::new(format!("command `{}` is listed twice", c.command)));
            }
        }
        let (mut params, place) = scoped(args.scope.as_ref(), args.language_code.as_deref())?;
        params.insert("commands".into(), serde_json::to_value(&args.commands).unwrap_or_default());
        api_output(&format!("{} commands set {place}", args.commands.len()), "setMyCommands", params)
    }
}

pub(crate) struct DeleteCommands;

/// Remove the bot's command list for a scope and language; users then see the next more
/// general list.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteCommandsArgs {
    /// Which users' list; the default list if absent.
    scope: Option<Scope>,
    /// Two-letter language code; the list for all languages if absent.
    language_code: Option<String>,
}

impl Tool for DeleteCommands {
    const NAME: &'static str = "delete_commands";
    const ANNOTATIONS: sanctum_guest::Annotations = super::SET;
    type Args = DeleteCommandsArgs;

    fn call(args: DeleteCommandsArgs) -> Result<Output, ToolError> {
        let (params, place) = scoped(args.scope.as_ref(), args.language_code.as_deref())?;
        api_output(&format!("commands deleted {place}"), "deleteMyCommands", params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_need_exactly_their_fields() {
        let scope = |kind, chat: Option<&str>, user_id| Scope { kind, chat: chat.map(str::to_owned), user_id };
        assert_eq!(scope(ScopeKind::Default, None, None).to_json(), Ok(json!({"type": "default"})));
        assert_eq!(
            scope(ScopeKind::ChatMember, Some("-100200"), Some(42)).to_json(),
            Ok(json!({"type": "chat_member", "chat_id": -100_200, "user_id": 42}))
        );
        assert!(scope(ScopeKind::Chat, None, None).to_json().is_err());
        assert!(scope(ScopeKind::AllGroupChats, Some("@x_chat"), None).to_json().is_err());
        assert!(scope(ScopeKind::ChatMember, Some("@ops_chat"), None).to_json().is_err());
    }

    #[test]
    fn bad_command_lists_are_refused_before_any_request() {
        let list = |names: &[&str]| SetCommandsArgs {
            commands: names.iter().map(|n| BotCommand { command: (*n).into(), description: "d".into() }).collect(),
            scope: None,
            language_code: None,
        };
        // Natively there is no host, so a list that passed validation would fail at the request
        // with "only available inside the sanctum host"; these must fail before that.
        for (names, expected) in [
            (&["Start"][..], "not a valid command"),
            (&["start", "start"][..], "listed twice"),
            (&[][..], "give 1 to 100"),
        ] {
            let err = SetCommands::call(list(names)).expect_err("refused");
            assert!(err.message().contains(expected), "{names:?}: {}", err.message());
        }
        let err = SetCommands::call(list(&["start"])).expect_err("no host natively");
        assert!(err.message().contains("only available inside the sanctum host"), "{}", err.message());
    }
}
