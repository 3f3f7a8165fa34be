//! TOML parse errors that are safe to print: position and reason, never the offending line.
//!
//! The `toml` crate's `Display` quotes the source line around an error. Policy, config and
//! token files can hold secrets on exactly such a line (`value = "…"`, `env = { API_KEY = … }`),
//! and start-up errors go to the log. A leaf: any layer may use it.

/// `line L, column C: reason` for `error` in `text`.
pub(crate) fn describe(text: &str, error: &toml::de::Error) -> String {
    let reason = error.message().trim();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {reason}")
        }
        None => reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offending_line_is_located_but_never_quoted() {
        let text = "[[token]]\nprincipal = \"ops\"\nvalue = \"s3cr3t-token-value\n";
        let error = toml::from_str::<toml::Table>(text).expect_err("unterminated string");
        let described = describe(text, &error);
        assert!(described.starts_with("line 3, column "), "{described}");
        assert!(!described.contains("s3cr3t"), "{described}");
        assert!(error.to_string().contains("s3cr3t"), "the crate's own message would have leaked it");
    }
}
