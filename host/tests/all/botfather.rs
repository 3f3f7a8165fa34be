//! The BotFather plugin end to end over MCP: a real rmcp client, the real `botfather.wasm`, the
//! fake Telegram Bot API (`demo/fake_services.py`, a real HTTP server on 127.0.0.1 granted as an
//! internal destination, with the bot token injected by the host as a path-prefix secret) and the
//! fake BotFather companion (`plugins-src/botfather/companion/fake_botfather.py`) run through a
//! command grant.

use std::path::PathBuf;
use std::process::Stdio;

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{Client, Path_, TestServer, call, connect, no_args, plugins_dir, repo_root};

/// Shaped like a real token so the plugin's redaction would catch it if it ever leaked through.
const TOKEN: &str = "7000000001:AAFakeTokenForSanctumTestsOnly0123456";

struct Bot {
    server: TestServer,
    api: String,
    dir: tempfile::TempDir,
    _fake: Child,
}

async fn start_fake_api(token: &str) -> (Child, String) {
    let mut child = Command::new("python3")
        .arg(repo_root().join("demo/fake_services.py"))
        .args(["--port", "0", "--token", token])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs the fake Bot API");
    let stdout = child.stdout.take().expect("stdout");
    let line = BufReader::new(stdout).lines().next_line().await.expect("read").expect("a first line");
    let url = line.strip_prefix("fake services listening on ").expect("the listening line").to_owned();
    (child, url)
}

fn python3() -> PathBuf {
    ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("python3 installed")
}

/// `grant_api` and `grant_chat` decide which of the two channels the policy grants.
async fn start(grant_api: bool, grant_chat: bool) -> Bot {
    let (fake, api) = start_fake_api(TOKEN).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let chat = dir.path().join("chat");
    std::fs::create_dir_all(&chat).expect("mkdir");
    let token_file = dir.path().join("bot_token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write token");
    let mut policy = format!("[plugins.botfather]\nconfig = {{ api_base = \"{api}\" }}\n");
    if grant_api {
        policy.push_str(&format!(
            r#"
[[plugins.botfather.http]]
url = "{api}"
allow_ranges = ["127.0.0.0/8"]
secret = {{ name = "bot_token", file = "{token}", path_prefix = "/bot{{secret}}" }}
"#,
            token = token_file.display()
        ));
    }
    if grant_chat {
        policy.push_str(&format!(
            r#"
[plugins.botfather.commands.botfather-client]
program = "{python}"
args = ["{script}"]
stdin = true
timeout_ms = 15000
env = {{ FAKE_BOTFATHER_STATE = "{chat}/state.json", FAKE_BOTFATHER_SEED_BOTS = "ops_helper_bot" }}
writable = ["{chat}"]
"#,
            python = python3().display(),
            script = repo_root().join("plugins-src/botfather/companion/fake_botfather.py").display(),
            chat = chat.display(),
        ));
    }
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy).expect("write policy");
    let server = TestServer::start_with(plugins_dir(&["botfather.wasm"], &[]), |args| {
        args.source.policy = Some(policy_path);
    })
    .await;
    assert!(server.load_errors.is_empty(), "{:?}", server.load_errors);
    Bot { server, api, dir, _fake: fake }
}

impl Bot {
    /// The Bot API calls the fake received, as `(method, params)`.
    async fn api_calls(&self) -> Vec<(String, Value)> {
        let list: Value =
            reqwest::get(format!("{}/_fake/requests", self.api)).await.expect("get").json().await.expect("JSON");
        list.as_array()
            .expect("a list")
            .iter()
            .map(|r| (r["method"].as_str().unwrap_or("").to_owned(), r["params"].clone()))
            .collect()
    }

    fn chat_state(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chat/state.json")).unwrap_or_default()
    }
}

/// Every text block of a result, joined: what the agent reads.
fn all_text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The JSON block after the summary line.
fn json_block(result: &CallToolResult) -> Value {
    match result.content.get(1) {
        Some(ContentBlock::Text(t)) => serde_json::from_str(&t.text).expect("JSON block"),
        other => panic!("expected a JSON block, got {other:?}: {}", all_text(result)),
    }
}

async fn ok(client: &Client, name: &str, args: Value) -> CallToolResult {
    let result = client.call_tool(call(name, args.clone())).await.expect("result");
    assert_ne!(result.is_error, Some(true), "{name} {args}: {}", all_text(&result));
    assert!(!all_text(&result).contains(TOKEN), "{name}: the token leaked");
    result
}

async fn refused(client: &Client, name: &str, args: Value) -> String {
    let result = client.call_tool(call(name, args.clone())).await.expect("result");
    assert_eq!(result.is_error, Some(true), "{name} {args} should fail: {}", all_text(&result));
    all_text(&result)
}

#[tokio::test]
async fn bot_api_settings_round_trip_with_a_token_the_plugin_never_sees() {
    let bot = start(true, false).await;
    let (client, _) = connect(&bot.server, Path_::StreamableHandshake).await;

    let me = client.call_tool(no_args("botfather__get_me")).await.expect("get_me");
    assert_eq!(json_block(&me)["is_bot"], true, "{}", all_text(&me));
    assert!(!all_text(&me).contains(TOKEN));

    ok(&client, "botfather__set_name", json!({"name": "Ops Helper"})).await;
    ok(&client, "botfather__set_description", json!({"description": "Runs deploys.", "language_code": "en"})).await;
    ok(&client, "botfather__set_short_description", json!({"short_description": "Ops bot"})).await;
    let profile = ok(&client, "botfather__get_profile", json!({"language_code": "en"})).await;
    assert_eq!(
        json_block(&profile),
        json!({"name": "Ops Helper", "description": "Runs deploys.", "short_description": "Ops bot"})
    );

    let scope = json!({"kind": "chat_administrators", "chat": "-1001234567890"});
    let commands = json!([
        {"command": "deploy", "description": "Deploy an application"},
        {"command": "status", "description": "Show an application's status"},
    ]);
    ok(&client, "botfather__set_commands", json!({"commands": commands, "scope": scope})).await;
    let listed = ok(&client, "botfather__get_commands", json!({"scope": scope})).await;
    assert_eq!(json_block(&listed), commands);
    let default_list = ok(&client, "botfather__get_commands", json!({})).await;
    assert_eq!(json_block(&default_list), json!([]), "other scopes are separate lists");
    ok(&client, "botfather__delete_commands", json!({"scope": scope})).await;
    assert_eq!(json_block(&ok(&client, "botfather__get_commands", json!({"scope": scope})).await), json!([]));

    let button = json!({"kind": "web_app", "text": "Console", "web_app_url": "https://ops.example.com/console"});
    ok(&client, "botfather__set_menu_button", button).await;
    let shown = ok(&client, "botfather__get_menu_button", json!({})).await;
    assert_eq!(
        json_block(&shown),
        json!({"type": "web_app", "text": "Console", "web_app": {"url": "https://ops.example.com/console"}})
    );

    ok(
        &client,
        "botfather__set_default_admin_rights",
        json!({"rights": {"can_manage_chat": true, "can_pin_messages": true}}),
    )
    .await;
    let rights = json_block(&ok(&client, "botfather__get_default_admin_rights", json!({})).await);
    assert_eq!((rights["can_manage_chat"].clone(), rights["can_pin_messages"].clone()), (json!(true), json!(true)));
    assert_eq!(rights["can_delete_messages"], false);

    let hook =
        json!({"url": "https://hooks.example.com/telegram", "max_connections": 10, "allowed_updates": ["message"]});
    ok(&client, "botfather__set_webhook", hook).await;
    let info = json_block(&ok(&client, "botfather__get_webhook_info", json!({})).await);
    assert_eq!(
        (info["url"].clone(), info["max_connections"].clone()),
        (json!("https://hooks.example.com/telegram"), json!(10))
    );
    ok(&client, "botfather__delete_webhook", json!({"drop_pending_updates": true})).await;
    assert_eq!(json_block(&ok(&client, "botfather__get_webhook_info", json!({})).await)["url"], "");

    // Invalid arguments are refused by the plugin before any request reaches Telegram.
    let before = bot.api_calls().await.len();
    let cases = [
        (
            "botfather__set_commands",
            json!({"commands": [{"command": "Deploy", "description": "x"}]}),
            "not a valid command",
        ),
        (
            "botfather__set_commands",
            json!({"commands": [{"command": "a", "description": "x"}, {"command": "a", "description": "y"}]}),
            "listed twice",
        ),
        (
            "botfather__set_commands",
            json!({"commands": [{"command": "a", "description": "x"}], "scope": {"kind": "chat"}}),
            "needs `chat`",
        ),
        ("botfather__set_webhook", json!({"url": "http://hooks.example.com/telegram"}), "https://"),
        (
            "botfather__set_webhook",
            json!({"url": "https://h.example.com", "allowed_updates": ["everything"]}),
            "not an update type",
        ),
        ("botfather__set_name", json!({"name": "n".repeat(65)}), "at most 64"),
        ("botfather__set_description", json!({"description": "d", "language_code": "english"}), "not a language code"),
        ("botfather__set_menu_button", json!({"kind": "web_app", "text": "x"}), "needs both"),
    ];
    for (tool, args, expected) in cases {
        let message = refused(&client, tool, args).await;
        assert!(message.contains(expected), "{tool}: {message}");
    }
    let calls = bot.api_calls().await;
    assert_eq!(calls.len(), before, "nothing was sent for invalid arguments");
    let methods: Vec<&str> = calls.iter().map(|(m, _)| m.as_str()).collect();
    assert!(methods.starts_with(&["getMe", "setMyName", "setMyDescription"]), "{methods:?}");
    assert!(calls.iter().all(|(_, params)| !params.to_string().contains(TOKEN)));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn botfather_chat_flows_withhold_every_token() {
    let bot = start(false, true).await;
    let (client, _) = connect(&bot.server, Path_::StreamableHandshake).await;

    let created =
        ok(&client, "botfather__create_bot", json!({"name": "Deploy Helper", "username": "@deploy_helper_bot"})).await;
    let text = all_text(&created);
    assert!(text.starts_with("created @deploy_helper_bot"), "{text}");
    assert!(text.contains("token withheld"), "{text}");
    let structured = created.structured_content.as_ref().expect("structured");
    assert_eq!(structured["token_withheld"], true);
    let state = bot.chat_state();
    let issued = token_in(&state).expect("the fake BotFather issued a token");
    assert!(
        !text.contains(&issued) && !structured.to_string().contains(&issued),
        "the new token never reaches the agent"
    );

    let taken =
        refused(&client, "botfather__create_bot", json!({"name": "Again", "username": "deploy_helper_bot"})).await;
    assert!(taken.contains("already taken"), "{taken}");

    let mybots = ok(&client, "botfather__send_message", json!({"text": "/mybots"})).await;
    let reply = last_botfather_message(&mybots);
    assert!(reply["buttons"].to_string().contains("@deploy_helper_bot"), "{reply}");
    let picked =
        ok(&client, "botfather__click_button", json!({"message_id": reply["id"], "button": "@deploy_helper_bot"}))
            .await;
    let menu = last_botfather_message(&picked);
    let shown = ok(&client, "botfather__click_button", json!({"message_id": menu["id"], "button": "API Token"})).await;
    assert!(all_text(&shown).contains("[bot token withheld by sanctum]"), "{}", all_text(&shown));

    let revoked = ok(&client, "botfather__revoke_token", json!({"username": "deploy_helper_bot"})).await;
    assert!(all_text(&revoked).starts_with("revoked the token of @deploy_helper_bot"), "{}", all_text(&revoked));
    let state = bot.chat_state();
    let tokens = all_tokens(&state);
    assert!(tokens.len() >= 2, "a new token was issued");
    let recent = ok(&client, "botfather__recent_messages", json!({"limit": 20})).await;
    for token in &tokens {
        assert!(!all_text(&recent).contains(token.as_str()), "no token in the history either");
    }

    // Refused before anything is sent to BotFather.
    let messages_before = state.matches("\"id\"").count();
    for (args, expected) in [
        (json!({"name": "Helper", "username": "helper"}), "end in `bot`"),
        (json!({"name": "Helper", "username": "no spaces_bot x"}), "not a bot username"),
        (json!({"name": " ", "username": "fine_bot"}), "needs a name"),
    ] {
        let message = refused(&client, "botfather__create_bot", args).await;
        assert!(message.contains(expected), "{message}");
    }
    assert_eq!(bot.chat_state().matches("\"id\"").count(), messages_before);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn without_grants_both_channels_are_refused_with_the_missing_grant_named() {
    let bot = start(false, false).await;
    let (client, _) = connect(&bot.server, Path_::StreamableHandshake).await;
    let api = refused(&client, "botfather__get_me", json!({})).await;
    assert!(api.contains("HTTP request"), "{api}");
    assert!(bot.api_calls().await.is_empty(), "nothing reached the API");
    let chat = refused(&client, "botfather__send_message", json!({"text": "/mybots"})).await;
    assert!(chat.contains("companion client granted as command `botfather-client`"), "{chat}");
    client.cancel().await.expect("close");
}

fn last_botfather_message(result: &CallToolResult) -> Value {
    let messages =
        result.structured_content.as_ref().expect("structured")["messages"].as_array().expect("list").clone();
    messages.into_iter().rev().find(|m| m["from_botfather"] == true).expect("a BotFather message")
}

/// Token-shaped strings in `text`, longest match per position.
fn all_tokens(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b != b':' {
            continue;
        }
        let digits = bytes[..i].iter().rev().take_while(|c| c.is_ascii_digit()).count();
        let tail =
            bytes[i + 1..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'-').count();
        if (8..=10).contains(&digits) && tail >= 30 {
            let token = &text[i - digits..i + 1 + tail];
            if token != TOKEN && !found.iter().any(|t| t == token) {
                found.push(token.to_owned());
            }
        }
    }
    found
}

fn token_in(text: &str) -> Option<String> {
    all_tokens(text).into_iter().next()
}
