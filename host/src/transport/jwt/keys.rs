//! The provider's signing keys: fetched from the JWKS URL through the vetted `egress` client,
//! kept in memory by `kid`, refreshed when a token names an unknown `kid` (at most once per
//! `jwks_refresh_secs`, however many such tokens arrive) and every hour in the background.
//!
//! A failed fetch never empties the cache: while the endpoint is down, known keys keep working
//! and unknown ones are refused. A successful fetch replaces the set whole, so a key the
//! provider withdrew stops working at the next fetch. Only public signature keys are kept
//! (RSA of at least 2048 bits, EC P-256/P-384, Ed25519); symmetric (`oct`) keys, encryption
//! keys and anything unknown are skipped. Owns no claim rule.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::egress;

/// Most keys kept from one JWKS (providers publish 1-4; the rest are ignored).
const MAX_KEYS: usize = 32;
/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;
/// Keys are fetched again this often even when no unknown `kid` asks for it, so a withdrawn
/// key is not trusted for longer.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// The family of a key, which decides the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// One usable verification key.
pub(super) struct Key {
    kind: KeyKind,
    /// The key's own `alg`, if the JWKS gives one: then only that algorithm may use it.
    alg: Option<Algorithm>,
    decoding: DecodingKey,
}

impl Key {
    /// Whether a token signed with `alg` may be checked with this key: the family must match
    /// (an RSA key never checks an EC signature, whatever the header says), and so must the
    /// key's own `alg` when it has one.
    pub(super) fn fits(&self, alg: Algorithm) -> bool {
        let family = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyKind::Rsa,
            Algorithm::ES256 => KeyKind::P256,
            Algorithm::ES384 => KeyKind::P384,
            Algorithm::EdDSA => KeyKind::Ed25519,
            _ => return false,
        };
        self.kind == family && self.alg.is_none_or(|own| own == alg)
    }

    pub(super) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// Why a fetch produced no keys (the cache keeps what it had).
#[derive(Debug, thiserror::Error)]
pub(super) enum JwksError {
    #[error("fetching the JWKS")]
    Fetch(#[from] egress::EgressError),
    #[error("the JWKS endpoint answered HTTP {0}")]
    Status(u16),
    #[error("the JWKS is not a JSON object with a `keys` list")]
    Json(#[source] serde_json::Error),
    #[error("the JWKS has no usable signature key ({skipped} skipped)")]
    NoUsableKeys { skipped: usize },
}

type KeyMap = HashMap<String, Arc<Key>>;

pub(super) struct KeyCache {
    client: egress::Client,
    url: String,
    refresh_interval: Duration,
    keys: RwLock<Arc<KeyMap>>,
    /// When a fetch last started. Held across the fetch, so concurrent unknown `kid`s wait for
    /// one fetch instead of each starting their own.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl KeyCache {
    pub(super) fn new(client: egress::Client, url: String, refresh_interval: Duration) -> Self {
        Self {
            client,
            url,
            refresh_interval,
            keys: RwLock::new(Arc::new(HashMap::new())),
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    fn cached(&self, kid: &str) -> Option<Arc<Key>> {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.get(kid).cloned()
    }

    fn store(&self, keys: KeyMap) {
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
    }

    /// The key named `kid`: from the cache, else after a refresh if one is due.
    pub(super) async fn key(&self, kid: &str) -> Option<Arc<Key>> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        {
            let mut last = self.last_fetch.lock().await;
            // Someone else's fetch may have brought it while this request waited.
            if let Some(key) = self.cached(kid) {
                return Some(key);
            }
            if last.is_some_and(|at| at.elapsed() < self.refresh_interval) {
                return None;
            }
            *last = Some(Instant::now());
            if let Err(e) = self.fetch().await {
                tracing::warn!(
                    url = %self.url,
                    error = %error_chain(&e),
                    "JWKS refresh for an unknown key id failed; cached keys keep working"
                );
            }
        }
        self.cached(kid)
    }

    /// Fetch now and on a schedule until `stop`: every hour after a success, every
    /// `jwks_refresh_secs` after a failure (so a provider down at start-up is picked up soon).
    pub(super) async fn run(&self, stop: CancellationToken) {
        let mut first = true;
        loop {
            let result = {
                let mut last = self.last_fetch.lock().await;
                *last = Some(Instant::now());
                self.fetch().await
            };
            let wait = match result {
                Ok(()) => MAX_AGE,
                Err(e) if first => {
                    tracing::error!(
                        url = %self.url,
                        error = %error_chain(&e),
                        retry_secs = self.refresh_interval.as_secs(),
                        "JWKS FETCH FAILED AT START-UP: every JWT is refused until the keys can be fetched \
                         (static tokens still work)"
                    );
                    self.refresh_interval
                }
                Err(e) => {
                    tracing::warn!(url = %self.url, error = %error_chain(&e), "JWKS refresh failed; cached keys keep working");
                    self.refresh_interval
                }
            };
            first = false;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn fetch(&self) -> Result<(), JwksError> {
        let response = self.client.get(&self.url).await?;
        if !response.status.is_success() {
            return Err(JwksError::Status(response.status.as_u16()));
        }
        let (keys, skipped) = parse(&response.body)?;
        tracing::info!(keys = keys.len(), skipped, url = %self.url, "JWKS fetched");
        self.store(keys);
        Ok(())
    }

    #[cfg(test)]
    pub(super) fn insert_for_test(&self, body: &[u8]) -> Result<(), JwksError> {
        let (keys, _) = parse(body)?;
        self.store(keys);
        Ok(())
    }
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<Value>,
}

/// The usable keys of a JWKS document, and how many entries were skipped.
fn parse(body: &[u8]) -> Result<(KeyMap, usize), JwksError> {
    let document: Document = serde_json::from_slice(body).map_err(JwksError::Json)?;
    let mut skipped = document.keys.len().saturating_sub(MAX_KEYS);
    let mut keys = KeyMap::new();
    for value in document.keys.into_iter().take(MAX_KEYS) {
        match usable(value) {
            // The first of two keys with one `kid` wins: a token cannot pick between them.
            Some((kid, key)) if !keys.contains_key(&kid) => {
                keys.insert(kid, Arc::new(key));
            }
            _ => skipped += 1,
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys { skipped });
    }
    Ok((keys, skipped))
}

/// One JWKS entry as a verification key, or `None` if it is not one sanctum may use.
fn usable(value: Value) -> Option<(String, Key)> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty() && k.len() <= 256)?;
    if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
        return None;
    }
    if jwk.common.key_operations.as_ref().is_some_and(|ops| !ops.contains(&KeyOperations::Verify)) {
        return None;
    }
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(rsa.n.trim_end_matches('=')).ok()?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            (significant >= MIN_RSA_MODULUS_BYTES).then_some(KeyKind::Rsa)?
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => KeyKind::P256,
            EllipticCurve::P384 => KeyKind::P384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => KeyKind::Ed25519,
        // Symmetric keys, other curves, unknown types.
        _ => return None,
    };
    // A key meant for another algorithm (an encryption one, say) is not a signature key.
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(own) => Some(Algorithm::from_str(&own.to_string()).ok()?),
    };
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some((kid, Key { kind, alg, decoding }))
}

/// An error and its causes on one line, for a log field.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
