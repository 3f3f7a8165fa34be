//! The SHA-256 of a component file: what identifies the exact code an operator approved.
//!
//! A leaf like `ids`: the plugin set computes it, the policy pins it, the runtime stamps it on
//! audit records, `sanctum plugins list` and `health` show it. It never comes from the plugin.

use std::fmt;

use sha2::{Digest as _, Sha256};

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
