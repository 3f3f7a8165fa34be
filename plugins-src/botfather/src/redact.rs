//! Scrubbing bot tokens out of BotFather's messages before the agent sees them.
//!
//! A bot token is `<bot id>:<35 characters of [A-Za-z0-9_-]>`; BotFather prints one when a bot is
//! created or a token revoked, and an agent that saw it could control the bot from anywhere.
//! Payment-provider tokens (`<id>:TEST:<secret>` or `<id>:LIVE:<secret>`) are just as secret.
//! The plugin replaces every string of either shape. Operators collect tokens from the chat.

/// What a token becomes.
pub(crate) const REDACTED: &str = "[bot token withheld by sanctum]";

/// Replace every token-shaped substring of `text`; returns the text and whether any was found.
pub(crate) fn redact_tokens(text: &str) -> (String, bool) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut found = false;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some((start, end)) = token_at(bytes, i) {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
            i = end;
            found = true;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    (out, found)
}

/// A token whose `:` is at `colon`, as its byte range.
fn token_at(bytes: &[u8], colon: usize) -> Option<(usize, usize)> {
    if bytes[colon] != b':' {
        return None;
    }
    let digits = bytes[..colon].iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let start = colon - digits;
    let secret_chars = |from: usize| {
        bytes[from..].iter().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')).count()
    };
    let starts_cleanly = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
    if !(5..=12).contains(&digits) || !starts_cleanly {
        return None;
    }
    let rest = &bytes[colon + 1..];
    if rest.starts_with(b"TEST:") || rest.starts_with(b"LIVE:") {
        let secret = secret_chars(colon + 6);
        return (secret >= 8).then_some((start, colon + 6 + secret));
    }
    let secret = secret_chars(colon + 1);
    (secret >= 30).then_some((start, colon + 1 + secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_replaced_and_other_text_kept() {
        let token = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw-";
        let text = format!("Use this token to access the HTTP API:\n{token}\nKeep your token secure.");
        let (clean, found) = redact_tokens(&text);
        assert!(found);
        assert_eq!(clean, format!("Use this token to access the HTTP API:\n{REDACTED}\nKeep your token secure."));
        assert_eq!(redact_tokens("at 12:30 see t.me/x_bot"), ("at 12:30 see t.me/x_bot".to_owned(), false));
        assert_eq!(redact_tokens("ünïcode 123456:short"), ("ünïcode 123456:short".to_owned(), false));
        let (clean, found) = redact_tokens("provider token: 284685063:TEST:NjE5ZDc2NGRhMjk5");
        assert!(found);
        assert_eq!(clean, format!("provider token: {REDACTED}"));
    }
}
