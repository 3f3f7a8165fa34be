//! A JSON Schema a plugin declared, as the validator receives it.

/// A JSON Schema a plugin declared, as the validator receives it: the text, and its SHA-256,
/// under which the validator keeps it compiled (so a table rebuilt on reload reuses what is
/// already compiled, and two schemas never share an entry).
#[derive(Debug, Clone)]
pub struct SchemaSource {
    key: [u8; 32],
    text: std::sync::Arc<str>,
}

impl SchemaSource {
    pub fn new(text: &str) -> Self {
        use sha2::Digest as _;
        Self { key: sha2::Sha256::digest(text.as_bytes()).into(), text: std::sync::Arc::from(text) }
    }

    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}
