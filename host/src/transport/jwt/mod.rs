//! OAuth 2.1 resource-server mode: JWT bearer tokens from one identity provider (`[auth.jwt]`),
//! beside the static tokens of `auth.rs`.
//!
//! Owns the settings and their start-up checks, the validation of a presented JWT (signature by
//! a key of the provider's JWKS, then every claim rule, written once here, in
//! [`Inner::check_claims`]), and the principal a valid token names. The JWKS cache and its
//! refresh are in `keys.rs`, the RFC 9728 metadata and the `WWW-Authenticate` challenge in
//! `metadata.rs`. Must not touch sessions or MCP; never logs a token or a claim value.
//!
//! The `jsonwebtoken` crate checks the signature only (with the one algorithm the header names,
//! after that algorithm passed the allow-list and the key fits it); the claim rules are ours,
//! over strictly typed values, so a claim of the wrong JSON type is a refusal, never "absent".

mod keys;
pub(crate) mod metadata;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::egress;
pub(crate) use metadata::ResourceUrl;

/// Algorithms allowed when `algorithms` is not given: what identity providers sign with.
const DEFAULT_ALGORITHMS: [&str; 3] = ["RS256", "ES256", "EdDSA"];
/// Algorithms sanctum can verify with a public key. HMAC (`HS*`) is never among them: sanctum
/// holds no shared secret, so an HMAC token could only be "keyed" with public material.
const VERIFIABLE: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
/// Longest token parsed. Real access tokens are 1-2 KiB; the bound keeps base64 and JSON
/// decoding of an attacker's token cheap (headers are capped by the server too, but larger).
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest `sub`: it becomes the principal name in logs, audit records and session ownership.
const MAX_SUBJECT_BYTES: usize = 128;
/// Most groups one token may carry, and the longest group name (the bound of access rules).
const MAX_GROUPS: usize = 64;
const MAX_GROUP_BYTES: usize = 128;
/// Clock skew tolerated on `exp`, `nbf` and `iat` by default, and at most.
const DEFAULT_LEEWAY_SECS: u64 = 60;
const MAX_LEEWAY_SECS: u64 = 300;
/// Minimum time between two JWKS fetches that an unknown `kid` triggers, by default and its
/// bounds: each fetch is a request to the provider an anonymous client can provoke.
const DEFAULT_REFRESH_SECS: u64 = 60;
const REFRESH_SECS: std::ops::RangeInclusive<u64> = 1..=3600;
/// The JWKS fetch: whole exchange, and the largest document read (a JWKS of a few keys is
/// 1-10 KiB).
const JWKS_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Longest issuer, audience or URL in the settings.
const MAX_SETTING_BYTES: usize = 512;
/// Principal names a token may never claim besides the static ones (`anonymous` is who
/// everyone is when authentication is off).
const RESERVED_SUBJECTS: [&str; 1] = [crate::principal::ANONYMOUS];

fn default_algorithms() -> Vec<String> {
    DEFAULT_ALGORITHMS.iter().map(|a| (*a).to_owned()).collect()
}
fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECS
}
fn default_groups_claim() -> String {
    "groups".to_owned()
}
fn default_refresh() -> u64 {
    DEFAULT_REFRESH_SECS
}

/// `[auth.jwt]` as written (or `[jwt]` in a tokens file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// The provider's issuer identifier; a token's `iss` must equal it exactly.
    pub issuer: String,
    /// This server's identifier at the provider; a token's `aud` must contain it, so a token
    /// minted for another service is refused here.
    pub audience: String,
    /// Where the provider publishes its signing keys: `https://`, or `http://` to a loopback
    /// address only (no network between the two to tamper with the keys).
    pub jwks_url: String,
    /// Signature algorithms accepted (`none` and `HS*` are refused at start-up).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf`, `iat`, in seconds (at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The claim holding the principal's groups: a JSON array of strings, or a space-separated
    /// string.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Minimum seconds between JWKS fetches triggered by an unknown `kid` (1-3600).
    #[serde(default = "default_refresh")]
    pub jwks_refresh_secs: u64,
    /// This server's canonical URL (e.g. `https://mcp.example.com/mcp`): the protected-resource
    /// metadata and every `WWW-Authenticate` challenge are built from its origin. Without it,
    /// from the (allow-listed) `Host` header, over `http`.
    #[serde(default)]
    pub resource: Option<String>,
    /// Non-public ranges the JWKS fetch may reach (e.g. `["10.0.0.0/8"]` for an internal
    /// provider). Default: public addresses only, as for plugin egress.
    #[serde(default)]
    pub jwks_allow_ranges: Vec<String>,
}

/// A `[auth.jwt]` setting that cannot be used; start-up stops naming it.
#[derive(Debug, thiserror::Error)]
#[error("[auth.jwt] {key}: {reason}")]
pub struct JwtSettingsError {
    pub key: &'static str,
    pub reason: String,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> JwtSettingsError {
    JwtSettingsError { key, reason: reason.into() }
}

/// Why a presented JWT was refused. Logged (never with the token or a claim value); the client
/// only learns `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("not a well-formed signed JWT")]
    Malformed,
    #[error("the header lists critical extensions (`crit`) sanctum does not implement")]
    Critical,
    #[error("the algorithm is not allowed")]
    Algorithm,
    #[error("the header names no key (`kid`)")]
    NoKeyId,
    #[error("no known key has this `kid` (the JWKS does not list it, or could not be fetched)")]
    UnknownKey,
    #[error("the key named by `kid` does not fit the token's algorithm")]
    KeyMismatch,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("claim `{0}` is missing or not of its type")]
    Claim(&'static str),
    #[error("expired")]
    Expired,
    #[error("not valid yet (`nbf`)")]
    NotYetValid,
    #[error("issued in the future (`iat`)")]
    IssuedInFuture,
    #[error("another issuer")]
    WrongIssuer,
    #[error("another audience")]
    WrongAudience,
    #[error("`sub` is empty, longer than {MAX_SUBJECT_BYTES} bytes or not printable ASCII")]
    BadSubject,
    #[error("`sub` names a static-token principal or a reserved name")]
    ReservedSubject,
    #[error("the groups claim is not a list of at most {MAX_GROUPS} printable names")]
    BadGroups,
}

/// Who a valid token names.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) subject: Arc<str>,
    pub(crate) groups: Arc<[Arc<str>]>,
}

/// The validated settings, the key cache and the client that fills it. Cheap to clone.
#[derive(Clone)]
pub(crate) struct JwtVerifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("jwks_url", &self.inner.jwks_url)
            .finish_non_exhaustive()
    }
}

struct Inner {
    issuer: String,
    audience: String,
    jwks_url: String,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    groups_claim: String,
    resource: Option<ResourceUrl>,
    /// Lower-cased names a `sub` may not take: the static principals and the reserved ones.
    reserved: HashSet<String>,
    keys: keys::KeyCache,
}

impl JwtVerifier {
    /// Check `settings`; `static_principals` are the names a token's `sub` may not take.
    pub(crate) fn new(settings: &JwtSettings, static_principals: &[&str]) -> Result<Self, JwtSettingsError> {
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(invalid("algorithms", "this build has no JWT signature backend"));
        }
        let text = |key: &'static str, value: &str| -> Result<String, JwtSettingsError> {
            if value.is_empty() || value.len() > MAX_SETTING_BYTES || value.chars().any(char::is_control) {
                return Err(invalid(key, format!("give 1-{MAX_SETTING_BYTES} bytes without control characters")));
            }
            Ok(value.to_owned())
        };
        let issuer = text("issuer", &settings.issuer)?;
        let audience = text("audience", &settings.audience)?;
        let jwks_url = text("jwks_url", &settings.jwks_url)?;
        check_jwks_url(&jwks_url)?;
        let algorithms = parse_algorithms(&settings.algorithms)?;
        if settings.leeway_secs > MAX_LEEWAY_SECS {
            return Err(invalid("leeway_secs", format!("at most {MAX_LEEWAY_SECS} seconds")));
        }
        let groups_claim = text("groups_claim", &settings.groups_claim)?;
        if !REFRESH_SECS.contains(&settings.jwks_refresh_secs) {
            return Err(invalid(
                "jwks_refresh_secs",
                format!("between {} and {} seconds", REFRESH_SECS.start(), REFRESH_SECS.end()),
            ));
        }
        let resource = match &settings.resource {
            Some(url) => {
                Some(ResourceUrl::parse(&text("resource", url)?).map_err(|reason| invalid("resource", reason))?)
            }
            None => None,
        };
        let allowed_ranges = settings
            .jwks_allow_ranges
            .iter()
            .map(|range| {
                range
                    .parse::<ipnet::IpNet>()
                    .map_err(|_| invalid("jwks_allow_ranges", format!("{range:?} is not a CIDR range")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reserved =
            static_principals.iter().chain(RESERVED_SUBJECTS.iter()).map(|name| name.to_ascii_lowercase()).collect();
        let client = egress::Client::new(egress::Limits {
            timeout: JWKS_TIMEOUT,
            max_response_bytes: MAX_JWKS_BYTES,
            allowed_ranges,
        });
        Ok(Self {
            inner: Arc::new(Inner {
                issuer,
                audience,
                keys: keys::KeyCache::new(client, jwks_url.clone(), Duration::from_secs(settings.jwks_refresh_secs)),
                jwks_url,
                algorithms,
                leeway: settings.leeway_secs,
                groups_claim,
                resource,
                reserved,
            }),
        })
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    pub(crate) fn resource(&self) -> Option<&ResourceUrl> {
        self.inner.resource.as_ref()
    }

    /// Fetch the keys now and keep them fresh until `stop`: a failure at start-up is logged as
    /// an error and retried, and tokens are refused until keys are known. Needs a runtime.
    pub(crate) fn start(&self, stop: tokio_util::sync::CancellationToken) {
        tracing::info!(
            issuer = %self.inner.issuer,
            audience = %self.inner.audience,
            jwks_url = %self.inner.jwks_url,
            "JWT bearer tokens accepted beside the static tokens"
        );
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::error!("no async runtime: the JWKS is never fetched and every JWT is refused");
            return;
        }
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.keys.run(stop).await });
    }

    /// Validate `token` now.
    pub(crate) async fn verify(&self, token: &str) -> Result<Verified, Refusal> {
        self.inner.verify(token, now()).await
    }
}

impl Inner {
    async fn verify(&self, token: &str, now: u64) -> Result<Verified, Refusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::TooLarge);
        }
        // `alg: none` and any name the crate does not know fail to parse here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Malformed)?;
        if header.crit.is_some() {
            return Err(Refusal::Critical);
        }
        if !self.algorithms.contains(&header.alg) {
            return Err(Refusal::Algorithm);
        }
        let kid = header.kid.as_deref().ok_or(Refusal::NoKeyId)?;
        let key = self.keys.key(kid).await.ok_or(Refusal::UnknownKey)?;
        if !key.fits(header.alg) {
            return Err(Refusal::KeyMismatch);
        }
        // Signature only: every claim rule is checked below, on typed values.
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key.decoding(), &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => Refusal::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
                | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat
                | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
                | jsonwebtoken::errors::ErrorKind::InvalidEddsaKey
                | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_) => Refusal::KeyMismatch,
                _ => Refusal::Malformed,
            })?
            .claims;
        self.check_claims(&claims, now)
    }

    /// Every claim rule, in one place: `iss` exact, `aud` contains ours, `exp` required and not
    /// past, `nbf` and `iat` not in the future (each with the leeway), `sub` bounded and not a
    /// reserved name, groups bounded. Times are integer seconds (a fractional one is refused).
    fn check_claims(&self, claims: &Map<String, Value>, now: u64) -> Result<Verified, Refusal> {
        let time = |name: &'static str| -> Result<Option<u64>, Refusal> {
            match claims.get(name) {
                None => Ok(None),
                Some(value) => value.as_u64().map(Some).ok_or(Refusal::Claim(name)),
            }
        };
        let exp = time("exp")?.ok_or(Refusal::Claim("exp"))?;
        if now >= exp.saturating_add(self.leeway) {
            return Err(Refusal::Expired);
        }
        if time("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(Refusal::NotYetValid);
        }
        if time("iat")?.is_some_and(|iat| iat > now.saturating_add(self.leeway)) {
            return Err(Refusal::IssuedInFuture);
        }
        let issuer = claims.get("iss").ok_or(Refusal::Claim("iss"))?.as_str().ok_or(Refusal::Claim("iss"))?;
        if issuer != self.issuer {
            return Err(Refusal::WrongIssuer);
        }
        let audience_matches = match claims.get("aud").ok_or(Refusal::Claim("aud"))? {
            Value::String(one) => *one == self.audience,
            Value::Array(many) => {
                if !many.iter().all(Value::is_string) {
                    return Err(Refusal::Claim("aud"));
                }
                many.iter().any(|a| a.as_str() == Some(self.audience.as_str()))
            }
            _ => return Err(Refusal::Claim("aud")),
        };
        if !audience_matches {
            return Err(Refusal::WrongAudience);
        }
        let subject = claims.get("sub").ok_or(Refusal::Claim("sub"))?.as_str().ok_or(Refusal::Claim("sub"))?;
        if !valid_subject(subject) {
            return Err(Refusal::BadSubject);
        }
        if self.reserved.contains(&subject.to_ascii_lowercase()) {
            return Err(Refusal::ReservedSubject);
        }
        let groups = groups(claims.get(&self.groups_claim))?;
        Ok(Verified { subject: Arc::from(subject), groups })
    }
}

/// 1-128 bytes of printable ASCII, no space at either end: it is shown in logs and audit records
/// and compared by access rules, so no control, format or look-alike characters.
fn valid_subject(subject: &str) -> bool {
    (1..=MAX_SUBJECT_BYTES).contains(&subject.len())
        && subject.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !subject.starts_with(' ')
        && !subject.ends_with(' ')
}

/// The groups claim: absent or `null` is no groups; a JSON array of strings, or one string of
/// space-separated names. Any entry that is empty, too long or holds a control character, more
/// than [`MAX_GROUPS`] entries, or another JSON type refuses the whole token: dropping a group
/// could drop one a deny rule names.
fn groups(claim: Option<&Value>) -> Result<Arc<[Arc<str>]>, Refusal> {
    let names: Vec<&str> = match claim {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.split_ascii_whitespace().collect(),
        Some(Value::Array(items)) => {
            items.iter().map(|item| item.as_str().ok_or(Refusal::BadGroups)).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(Refusal::BadGroups),
    };
    if names.len() > MAX_GROUPS
        || names.iter().any(|n| n.is_empty() || n.len() > MAX_GROUP_BYTES || n.chars().any(char::is_control))
    {
        return Err(Refusal::BadGroups);
    }
    Ok(names.into_iter().map(Arc::from).collect())
}

fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, JwtSettingsError> {
    if names.is_empty() {
        return Err(invalid("algorithms", "name at least one algorithm"));
    }
    let mut algorithms = Vec::new();
    for name in names {
        if name.eq_ignore_ascii_case("none") {
            return Err(invalid("algorithms", "`none` would accept unsigned tokens"));
        }
        if name.to_ascii_uppercase().starts_with("HS") {
            return Err(invalid(
                "algorithms",
                format!(
                    "{name:?}: HMAC needs a shared secret, and sanctum holds none (an HMAC token could only be \
                     keyed with the provider's public key)"
                ),
            ));
        }
        let algorithm = name.parse::<Algorithm>().ok().filter(|a| VERIFIABLE.contains(a)).ok_or_else(|| {
            invalid("algorithms", format!("{name:?} is not one of RS256/384/512, PS256/384/512, ES256/384, EdDSA"))
        })?;
        if !algorithms.contains(&algorithm) {
            algorithms.push(algorithm);
        }
    }
    Ok(algorithms)
}

/// `https://`, or `http://` to a loopback address written as such: keys fetched in the clear
/// over a network could be replaced in transit, and with them every token.
fn check_jwks_url(url: &str) -> Result<(), JwtSettingsError> {
    let uri: http::Uri = url.parse().map_err(|_| invalid("jwks_url", "not a valid absolute URL"))?;
    let host = uri.host().ok_or_else(|| invalid("jwks_url", "the URL has no host"))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(invalid("jwks_url", "the URL carries user-info (`user@host`)"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(invalid("jwks_url", "use https (plain http only to a loopback address such as 127.0.0.1)"))
            }
        }
        _ => Err(invalid("jwks_url", "the scheme must be https")),
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
