//! The SHA-256 of a component file: what identifies the exact code an operator approved; and
//! of a JSON value in canonical form: what ties a pinned tool definition, or the audit records
//! and approval of one call, to exact contents without keeping them.
//!
//! A leaf like `ids`: the plugin set computes it, the policy pins it, the runtime stamps it on
//! audit records, `sanctum plugins list` and `health` show it. It never comes from the plugin.

use std::fmt;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// JSON with object keys sorted at every depth and no whitespace: equal values always hash alike.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// SHA-256 of `value`'s canonical JSON, in lowercase hex.
pub fn json_sha256(value: &Value) -> String {
    hex(&Sha256::digest(canonical_json(value).as_bytes()))
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// SHA-256 of a `.wasm` file's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentDigest([u8; 32]);

impl ComponentDigest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Parse 64 hexadecimal digits (either case), as an operator writes them in the policy.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{text:?} is not a SHA-256 digest (64 hexadecimal digits)"));
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(Self(bytes))
    }

    /// Lower-case hex, as `sha256sum` prints it.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A component file's bytes with their digest, hashed once for everything that needs it (the
/// plugin set's change detection and pins, the compile cache's key, the audit trail).
pub struct ComponentBytes {
    bytes: Vec<u8>,
    digest: ComponentDigest,
}

impl ComponentBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        let digest = ComponentDigest::of(&bytes);
        Self { bytes, digest }
    }

    pub fn read(path: &std::path::Path) -> std::io::Result<Self> {
        std::fs::read(path).map(Self::new)
    }

    pub fn digest(&self) -> ComponentDigest {
        self.digest
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for ComponentBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentBytes").field("len", &self.bytes.len()).field("digest", &self.digest).finish()
    }
}

impl fmt::Display for ComponentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for ComponentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ComponentDigest({})", self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_print_like_sha256sum_and_parse_back_in_either_case() {
        let digest = ComponentDigest::of(b"abc");
        let hex = digest.hex();
        assert_eq!(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(ComponentDigest::parse(&hex.to_uppercase()), Ok(digest));
        assert!(ComponentDigest::parse("abc").is_err());
        assert!(ComponentDigest::parse(&"g".repeat(64)).is_err());
    }
}
