//! The BotFather plugin: administer Telegram bots without ever holding their tokens.
//!
//! Two channels, each granted separately by the operator:
//! - the **Bot API** (`api`), over an HTTP grant for `api.telegram.org` whose secret is the bot
//!   token, injected by the host as the `/bot<token>` path prefix: the plugin (and so the agent)
//!   never sees it;
//! - **BotFather's chat** (`chat`), through a granted companion command that speaks a small JSON
//!   protocol to a Telegram user-account client (`companion/`); tokens BotFather prints are
//!   redacted (`redact`) before anything reaches the agent.
//!
//! Every argument is checked against Telegram's rules (`validate`) before any request is made.
//!
//! # Layout
//! - `api`, `chat`: the two channels.
//! - `validate`, `redact`: argument rules and token scrubbing.
//! - `tools`: one module per group of tools.

mod api;
mod chat;
mod redact;
mod tools;
mod validate;

use sanctum_guest::Requirement;

sanctum_guest::plugin! {
    name: "botfather",
    version: env!("CARGO_PKG_VERSION"),
    description: "Administer Telegram bots: profile, commands, menu button, admin rights and webhook through the \
                  Bot API, and BotFather chats (create a bot, revoke a token) through a companion client.",
    // Only what every Bot API tool needs. The API origin is configurable (`api_base`) and the
    // companion command is optional, so declaring them would fail `sanctum check` on setups that
    // are fine; docs/plugins/botfather.md lists both grants.
    requirements: [Requirement::Secret("bot_token")],
    tools: [
        tools::profile::GetMe,
        tools::profile::GetProfile,
        tools::profile::SetName,
        tools::profile::SetDescription,
        tools::profile::SetShortDescription,
        tools::commands::GetCommands,
        tools::commands::SetCommands,
        tools::commands::DeleteCommands,
        tools::menu::GetMenuButton,
        tools::menu::SetMenuButton,
        tools::rights::GetDefaultAdminRights,
        tools::rights::SetDefaultAdminRights,
        tools::webhook::GetWebhookInfo,
        tools::webhook::SetWebhook,
        tools::webhook::DeleteWebhook,
        tools::chat::SendMessage,
        tools::chat::ClickButton,
        tools::chat::RecentMessages,
        tools::chat::CreateBot,
        tools::chat::RevokeToken,
    ],
}
