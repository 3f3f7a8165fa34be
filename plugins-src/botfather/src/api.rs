//! Calls to the Telegram Bot API through the host's HTTP grant.
//!
//! Requests go to `<api_base>/<method>` (config `api_base`, default `https://api.telegram.org`);
//! the host adds the `/bot<token>` prefix from the grant's secret. The plugin never has the token,
//! so it cannot leak it, and a plugin with no grant gets the host's refusal as the error.

use sanctum_guest::ToolError;
use sanctum_guest::http::Request;
use serde::Deserialize;
use serde_json::Value;

const DEFAULT_API_BASE: &str = "https://api.telegram.org";

/// Telegram's reply envelope.
#[derive(Deserialize)]
struct Reply {
    ok: bool,
    #[serde(default)]
    result: Value,
    description: Option<String>,
    error_code: Option<i64>,
}

/// Call `method` with JSON `params`; the `result` on success, Telegram's reason otherwise.
pub(crate) fn call(method: &str, params: &Value) -> Result<Value, ToolError> {
    let base = sanctum_guest::config::get("api_base").unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
    let url = format!("{}/{method}", base.trim_end_matches('/'));
    let response = Request::post(url).json(params)?.send()?;
    let reply: Reply = response.json().map_err(|_| {
        ToolError::new(format!("the Bot API answered {method} with HTTP {} and no Telegram reply", response.status))
    })?;
    if reply.ok {
        Ok(reply.result)
    } else {
        let reason = reply.description.unwrap_or_else(|| "no description".to_owned());
        let hint = match reply.error_code {
            Some(401) => " (the bot token the operator configured is not valid)",
            Some(429) => " (rate limited: wait before retrying)",
            _ => "",
        };
        Err(ToolError::new(format!(
            "Telegram refused {method}: {reason} (error {}){hint}",
            reply.error_code.unwrap_or(0)
        )))
    }
}
