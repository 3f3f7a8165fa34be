//! Telegram's rules for what the tools accept, checked before any request so the agent gets a
//! precise reason instead of a round trip and a terse `Bad Request`.

use sanctum_guest::ToolError;

/// Bot names shown in chats (`setMyName`): at most 64 characters.
pub(crate) const MAX_NAME: usize = 64;
/// `setMyDescription`: at most 512 characters.
pub(crate) const MAX_DESCRIPTION: usize = 512;
/// `setMyShortDescription`: at most 120 characters.
pub(crate) const MAX_SHORT_DESCRIPTION: usize = 120;
/// `setMyCommands` accepts at most 100 commands.
pub(crate) const MAX_COMMANDS: usize = 100;
/// A message to BotFather.
pub(crate) const MAX_MESSAGE: usize = 4096;

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// A length limit on free text, counted in characters as Telegram does.
pub(crate) fn max_len(what: &str, text: &str, max: usize) -> Result<(), ToolError> {
    let n = chars(text);
    if n > max {
        Err(ToolError::new(format!("{what} is {n} characters; Telegram allows at most {max}")))
    } else {
        Ok(())
    }
}

/// A bot username: 5-32 of `[A-Za-z0-9_]`, ending in `bot`. A leading `@` is accepted and dropped.
pub(crate) fn bot_username(username: &str) -> Result<String, ToolError> {
    let name = username.strip_prefix('@').unwrap_or(username);
    let shape = (5..=32).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !shape {
        return Err(ToolError::new(format!(
            "`{username}` is not a bot username: use 5-32 letters, digits or underscores, e.g. `deploy_helper_bot`"
        )));
    }
    if !name.to_ascii_lowercase().ends_with("bot") {
        return Err(ToolError::new(format!(
            "`{username}` is not a bot username: it must end in `bot`, e.g. `{name}_bot`"
        )));
    }
    if name.starts_with(|c: char| c.is_ascii_digit() || c == '_') {
        return Err(ToolError::new(format!("`{username}` is not a bot username: it must start with a letter")));
    }
    Ok(name.to_owned())
}

/// A bot command: 1-32 of lowercase letters, digits and underscores, without the `/`.
pub(crate) fn command(command: &str) -> Result<(), ToolError> {
    let ok = (1..=32).contains(&command.len())
        && command.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ToolError::new(format!(
            "`{command}` is not a valid command: use 1-32 lowercase letters, digits or underscores, without the leading `/`"
        )))
    }
}

/// A command's description: 1-256 characters.
pub(crate) fn command_description(command: &str, description: &str) -> Result<(), ToolError> {
    if description.trim().is_empty() {
        return Err(ToolError::new(format!("command `{command}` needs a description (1-256 characters)")));
    }
    max_len(&format!("the description of `{command}`"), description, 256)
}

/// An IETF language tag as Telegram takes it: empty (all users) or a two-letter ISO 639-1 code.
pub(crate) fn language_code(code: &str) -> Result<(), ToolError> {
    if code.is_empty() || (code.len() == 2 && code.chars().all(|c| c.is_ascii_lowercase())) {
        Ok(())
    } else {
        Err(ToolError::new(format!(
            "`{code}` is not a language code: use two lowercase letters such as `en`, or omit it"
        )))
    }
}

/// A chat: a numeric id (negative for groups and channels) or a public `@username`.
pub(crate) fn chat_id(chat: &str) -> Result<serde_json::Value, ToolError> {
    if let Ok(id) = chat.parse::<i64>() {
        return Ok(id.into());
    }
    let name = chat.strip_prefix('@').unwrap_or("");
    if (5..=32).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(chat.into())
    } else {
        Err(ToolError::new(format!("`{chat}` is not a chat: give a numeric chat id or a public `@username`")))
    }
}

/// A private chat, which the menu-button methods take as a numeric id only.
pub(crate) fn private_chat_id(chat: &str) -> Result<serde_json::Value, ToolError> {
    chat.parse::<i64>()
        .map(Into::into)
        .map_err(|_| ToolError::new(format!("`{chat}` is not a private chat id: give the user's numeric chat id")))
}

/// An HTTPS URL, as Telegram requires for webhooks and web apps.
pub(crate) fn https_url(what: &str, url: &str) -> Result<(), ToolError> {
    let rest = url.strip_prefix("https://").unwrap_or("");
    if rest.is_empty() || rest.starts_with('/') || url.chars().any(char::is_whitespace) || url.len() > 2048 {
        Err(ToolError::new(format!("the {what} must be an https:// URL, got `{url}`")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_telegram_rules() {
        assert_eq!(bot_username("@Deploy_Helper_Bot"), Ok("Deploy_Helper_Bot".to_owned()));
        assert_eq!(bot_username("tetrisbot"), Ok("tetrisbot".to_owned()));
        for bad in ["bot", "my bot", "helper", "1abcbot", "_abcbot", &format!("{}bot", "a".repeat(30)), "ab-cbot"] {
            assert!(bot_username(bad).is_err(), "{bad}");
        }
        assert!(bot_username("helper").expect_err("no suffix").message().contains("end in `bot`"));
    }

    #[test]
    fn commands_and_descriptions() {
        assert_eq!(command("deploy_now2"), Ok(()));
        for bad in ["", "/start", "Deploy", "a-b", &"a".repeat(33)] {
            assert!(command(bad).is_err(), "{bad}");
        }
        assert!(command_description("x", " ").is_err());
        assert!(command_description("x", &"d".repeat(257)).is_err());
        assert_eq!(command_description("x", &"é".repeat(256)), Ok(()), "characters, not bytes");
    }

    #[test]
    fn languages_chats_and_urls() {
        assert!(language_code("en").is_ok() && language_code("").is_ok());
        assert!(language_code("EN").is_err() && language_code("eng").is_err());
        assert_eq!(chat_id("-1001234567890"), Ok(serde_json::json!(-1_001_234_567_890_i64)));
        assert_eq!(chat_id("@sanctum_ops"), Ok(serde_json::json!("@sanctum_ops")));
        assert!(chat_id("sanctum ops").is_err());
        assert_eq!(private_chat_id("42"), Ok(serde_json::json!(42)));
        assert!(private_chat_id("@someone").is_err());
        assert!(https_url("webhook URL", "https://hooks.example.com/tg").is_ok());
        assert!(https_url("webhook URL", "http://hooks.example.com/tg").is_err());
        assert!(https_url("webhook URL", "https://").is_err());
    }
}
