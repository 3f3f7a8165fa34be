//! Bearer-token authentication: which tokens exist, which principal each names, and the
//! middleware that checks every request on every MCP route and `/metrics` (`/healthz` and
//! `/readyz` stay open for probes).
//!
//! Tokens come from a TOML file (`[[token]] principal = … env|file|value = …`) and/or one
//! token in `SANCTUM_AUTH_TOKEN` (principal `default`). Only SHA-256 digests are kept, and a
//! presented token is compared with every digest in constant time, so neither the token's
//! content nor its length leaks through timing. Beside them, `[jwt]` (`[auth.jwt]` in the config
//! file) accepts JWT access tokens from one identity provider (`jwt/`): a presented token that
//! matches no static token is validated as a JWT. Every 401 carries a `WWW-Authenticate`
//! challenge (pointing to the RFC 9728 metadata when JWTs are on). Owns no session or MCP logic.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::jwt::{self, JwtSettings, JwtSettingsError, JwtVerifier};
use crate::principal::{ANONYMOUS, Principal};

/// The principal of the single token from `SANCTUM_AUTH_TOKEN`.
pub const DEFAULT_PRINCIPAL: &str = "default";

/// Shorter tokens are refused at start-up: they can be guessed.
const MIN_TOKEN_LEN: usize = 16;

/// Authentication settings, as they appear in a tokens file and in the config file's `[auth]`:
/// a list of `[[token]]` tables, and optionally one `[jwt]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenSource>,
    /// JWT access tokens from an identity provider, beside the static tokens.
    #[serde(default)]
    pub jwt: Option<JwtSettings>,
}

/// One token: its principal and exactly one place to read it from.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSource {
    /// Who presents this token: recorded in logs and the audit log, and owner of its sessions.
    pub principal: String,
    /// Groups access rules can name (`groups = ["ops"]`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// An environment variable holding the token.
    #[serde(default)]
    pub env: Option<String>,
    /// A file holding the token (surrounding whitespace ignored), e.g. a mounted secret.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The token itself. Discouraged (the file then is a secret); meant for tests.
    #[serde(default)]
    pub value: Option<String>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("principal", &self.principal)
            .field("groups", &self.groups)
            .field("env", &self.env)
            .field("file", &self.file)
            .field("value", &self.value.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Why the tokens could not be loaded, or why serving would be unsafe.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading the auth tokens file {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the auth tokens file {path} is not valid: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("token of principal {principal:?}: give exactly one of `env`, `file`, `value`")]
    Source { principal: String },
    #[error("token of principal {principal:?}: environment variable {var} is not set or not UTF-8")]
    MissingEnv { principal: String, var: String },
    #[error("token of principal {principal:?}: reading {path}")]
    ReadToken {
        principal: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "token of principal {principal:?}: must be at least {MIN_TOKEN_LEN} visible ASCII characters, \
         without spaces or commas"
    )]
    BadToken { principal: String },
    #[error("principal name {principal:?}: use 1-64 ASCII letters, digits, `-`, `_`, `.` or `@`")]
    BadPrincipal { principal: String },
    #[error("token of principal {principal:?}: group {group:?}: use 1-64 ASCII letters, digits, `-`, `_`, `.` or `@`")]
    BadGroup { principal: String, group: String },
    #[error("two tokens are identical (principals {first:?} and {second:?})")]
    DuplicateToken { first: String, second: String },
    #[error(transparent)]
    Jwt(#[from] JwtSettingsError),
    #[error(
        "refusing to serve on {host} without authentication: anyone who can reach the port could call \
         tools. Configure tokens (--auth-tokens-file or SANCTUM_AUTH_TOKEN), bind a loopback address, \
         or pass --allow-unauthenticated if something in front of sanctum authenticates"
    )]
    ExposedWithoutTokens { host: IpAddr },
}

/// The configured tokens, as digests, and the JWT verifier if `[jwt]` is set. Neither means
/// authentication is off.
#[derive(Clone, Default)]
pub struct Authenticator {
    tokens: Arc<Vec<KnownToken>>,
    jwt: Option<JwtVerifier>,
}

/// One configured token: whom it names, and its digest.
#[derive(Clone)]
struct KnownToken {
    principal: Arc<str>,
    groups: Arc<[Arc<str>]>,
    digest: [u8; 32],
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let principals: Vec<&str> = self.tokens.iter().map(|t| &*t.principal).collect();
        f.debug_struct("Authenticator").field("principals", &principals).field("jwt", &self.jwt).finish()
    }
}

impl Authenticator {
    /// Load tokens from `file` (a TOML [`AuthSettings`]), else from `section` (the config
    /// file's `[auth]`), plus `single` (principal `default`) with either.
    pub fn load(file: Option<&Path>, section: Option<&AuthSettings>, single: Option<&str>) -> Result<Self, AuthError> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| AuthError::ReadFile { path: path.to_owned(), source })?;
                toml::from_str::<AuthSettings>(&text).map_err(|e| AuthError::Parse {
                    path: path.to_owned(),
                    reason: crate::toml_error::describe(&text, &e),
                })?
            }
            None => section.cloned().unwrap_or_default(),
        };
        if let Some(token) = single.filter(|t| !t.is_empty()) {
            settings.tokens.push(TokenSource {
                principal: DEFAULT_PRINCIPAL.into(),
                groups: Vec::new(),
                env: None,
                file: None,
                value: Some(token.to_owned()),
            });
        }
        Self::from_settings(&settings)
    }

    /// Resolve every token source and keep the digests.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, AuthError> {
        let mut tokens: Vec<KnownToken> = Vec::new();
        for source in &settings.tokens {
            let principal = source.principal.clone();
            if !valid_principal(&principal) {
                return Err(AuthError::BadPrincipal { principal });
            }
            if let Some(group) = source.groups.iter().find(|g| !valid_principal(g)) {
                return Err(AuthError::BadGroup { principal, group: group.clone() });
            }
            let token = match (&source.env, &source.file, &source.value) {
                (Some(var), None, None) => std::env::var(var)
                    .map_err(|_| AuthError::MissingEnv { principal: principal.clone(), var: var.clone() })?,
                (None, Some(path), None) => std::fs::read_to_string(path)
                    .map_err(|source| AuthError::ReadToken {
                        principal: principal.clone(),
                        path: path.clone(),
                        source,
                    })?
                    .trim()
                    .to_owned(),
                (None, None, Some(value)) => value.clone(),
                _ => return Err(AuthError::Source { principal }),
            };
            if token.len() < MIN_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                return Err(AuthError::BadToken { principal });
            }
            let digest = digest(&token);
            if let Some(first) = tokens.iter().find(|t| t.digest == digest) {
                return Err(AuthError::DuplicateToken { first: first.principal.to_string(), second: principal });
            }
            let groups = source.groups.iter().map(|g| Arc::from(g.as_str())).collect();
            tokens.push(KnownToken { principal: Arc::from(principal), groups, digest });
        }
        // A token's `sub` may not take a static principal's name: the provider must not be able
        // to mint an operator-named identity.
        let names: Vec<&str> = tokens.iter().map(|t| &*t.principal).collect();
        let jwt = settings.jwt.as_ref().map(|jwt| JwtVerifier::new(jwt, &names)).transpose()?;
        Ok(Self { tokens: Arc::new(tokens), jwt })
    }

    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty() || self.jwt.is_some()
    }

    /// Start what runs beside requests: the JWKS fetch and its refresh, until `stop`.
    pub(crate) fn start(&self, stop: tokio_util::sync::CancellationToken) {
        if let Some(jwt) = &self.jwt {
            jwt.start(stop);
        }
    }

    pub(crate) fn jwt(&self) -> Option<&JwtVerifier> {
        self.jwt.as_ref()
    }

    /// Principal names, for the start-up log.
    pub fn principals(&self) -> Vec<String> {
        self.tokens.iter().map(|t| t.principal.to_string()).collect()
    }

    /// Every static token's principal and groups (for `sanctum check`'s access matrix), and
    /// whether callers not known in advance exist too (JWT principals).
    pub fn identities(&self) -> (Vec<crate::access::matrix::Identity>, bool) {
        let identities = self
            .tokens
            .iter()
            .map(|t| crate::access::matrix::Identity {
                principal: t.principal.to_string(),
                groups: t.groups.iter().map(ToString::to_string).collect(),
            })
            .collect();
        (identities, self.jwt.is_some())
    }

    /// Which static-token principal the request's `Authorization` header names, if any.
    #[cfg(test)]
    fn principal_for(&self, headers: &HeaderMap) -> Option<Identity> {
        match presented(headers) {
            Presented::Token(token) => self.static_match(token),
            Presented::Nothing | Presented::Unusable => None,
        }
    }

    fn static_match(&self, token: &str) -> Option<Identity> {
        let presented = digest(token);
        // Every digest is compared, with no early exit, so timing does not say which matched.
        let mut found: Option<&KnownToken> = None;
        for known in self.tokens.iter() {
            if bool::from(known.digest.ct_eq(&presented)) {
                found = Some(known);
            }
        }
        found.map(|t| (Arc::clone(&t.principal), Arc::clone(&t.groups)))
    }

    /// The principal the request's bearer token names: a static token, else a valid JWT.
    /// `Err(true)` when a bearer token was presented and refused, `Err(false)` when none was.
    async fn identify(&self, headers: &HeaderMap) -> Result<Identity, bool> {
        let token = match presented(headers) {
            Presented::Token(token) => token,
            Presented::Nothing => return Err(false),
            Presented::Unusable => return Err(true),
        };
        if let Some(found) = self.static_match(token) {
            return Ok(found);
        }
        let Some(jwt) = &self.jwt else { return Err(true) };
        match jwt.verify(token).await {
            Ok(verified) => Ok((verified.subject, verified.groups)),
            Err(refusal) => {
                // The reason only: never the token, nor a claim of it.
                tracing::info!(reason = %refusal, "refused a bearer token: no static token matches and the JWT is not valid");
                Err(true)
            }
        }
    }
}

/// A principal's name and groups.
type Identity = (Arc<str>, Arc<[Arc<str>]>);

/// What the `Authorization` headers carry.
enum Presented<'a> {
    /// No header, or no bearer credential in it.
    Nothing,
    /// A bearer credential, but not one token: empty, not UTF-8, or mixed with others.
    Unusable,
    Token(&'a str),
}

/// The one bearer token of the request.
///
/// Letta Code 0.32 over SSE sends a configured header twice, comma-joined (`Bearer T, Bearer
/// T`): a header is accepted when every credential in it is the same token; any mix is refused.
fn presented(headers: &HeaderMap) -> Presented<'_> {
    let mut presented: Option<&str> = None;
    let mut bearer = false;
    for value in headers.get_all(header::AUTHORIZATION) {
        let Ok(value) = value.to_str() else { return Presented::Unusable };
        for credential in value.split(',') {
            let credential = credential.trim();
            let (scheme, token) = credential.split_once(' ').unwrap_or((credential, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return if bearer { Presented::Unusable } else { Presented::Nothing };
            }
            bearer = true;
            let token = token.trim();
            match presented {
                _ if token.is_empty() => return Presented::Unusable,
                None => presented = Some(token),
                // Comparing two presented values leaks nothing about the configured ones.
                Some(first) if first == token => {}
                Some(_) => return Presented::Unusable,
            }
        }
    }
    presented.map_or(Presented::Nothing, Presented::Token)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn valid_principal(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// Refuse to serve a non-loopback address without tokens, unless the operator said so.
pub fn check_exposure(host: IpAddr, auth: &Authenticator, allow_unauthenticated: bool) -> Result<(), AuthError> {
    if host.is_loopback() || auth.is_enabled() {
        return Ok(());
    }
    if allow_unauthenticated {
        tracing::warn!(
            %host,
            "SERVING WITHOUT AUTHENTICATION on a non-loopback address (--allow-unauthenticated): anyone \
             who can reach this port can call every tool"
        );
        return Ok(());
    }
    Err(AuthError::ExposedWithoutTokens { host })
}

/// What the authentication middleware needs: the tokens and the per-principal rate limiter.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    pub(crate) auth: Authenticator,
    pub(crate) calls: super::limits::CallLimiter,
}

/// Query parameters that look like a credential. Tokens in URLs end up in logs and histories,
/// so a request carrying one is refused outright, even if its header is fine.
const QUERY_TOKEN_KEYS: [&str; 2] = ["access_token", "token"];

/// Authenticate the request and attach its [`Principal`]; 401 (or 400 for a query token).
pub(crate) async fn authenticate(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    if carries_query_token(request.uri().query()) {
        return (
            StatusCode::BAD_REQUEST,
            "tokens are never accepted in the URL; send `Authorization: Bearer <token>` instead",
        )
            .into_response();
    }
    let (name, groups): (Arc<str>, Arc<[Arc<str>]>) = if gate.auth.is_enabled() {
        match gate.auth.identify(request.headers()).await {
            Ok(principal) => principal,
            Err(presented) => {
                tracing::info!(path = %request.uri().path(), "refused a request without a valid bearer token");
                let challenge = match gate.auth.jwt() {
                    Some(jwt) => jwt::metadata::challenge(jwt, request.uri().path(), request.headers(), presented),
                    // Static tokens only: the plain challenge, as before JWTs existed.
                    None => HeaderValue::from_static("Bearer"),
                };
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, challenge)],
                    "missing or invalid bearer token\n",
                )
                    .into_response();
            }
        }
    } else {
        (Arc::from(ANONYMOUS), Arc::from([]))
    };
    tracing::debug!(principal = %name, method = %request.method(), path = %request.uri().path(), "authenticated");
    let principal = Principal::new(Arc::clone(&name), groups, gate.calls.bucket_for(&name));
    request.extensions_mut().insert(principal);
    next.run(request).await
}

fn carries_query_token(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|pair| {
            let key = pair.split('=').next().unwrap_or(pair);
            QUERY_TOKEN_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        let token = |principal: &str, value: &str| TokenSource {
            principal: principal.into(),
            groups: vec!["ops".into()],
            env: None,
            file: None,
            value: Some(value.into()),
        };
        Authenticator::from_settings(&AuthSettings {
            tokens: vec![token("letta", "letta-token-0123456789"), token("ci", "ci-token-0123456789ab")],
            jwt: None,
        })
        .expect("valid settings")
    }

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().expect("header value"));
        headers
    }

    #[test]
    fn each_token_names_its_principal() {
        let auth = auth();
        assert_eq!(auth.principal_for(&with("Bearer letta-token-0123456789")).map(|p| p.0).as_deref(), Some("letta"));
        assert_eq!(auth.principal_for(&with("bearer ci-token-0123456789ab")).map(|p| p.0).as_deref(), Some("ci"));
        assert!(auth.principal_for(&with("Bearer letta-token-012345678")).is_none(), "a prefix");
        assert!(auth.principal_for(&with("Basic letta-token-0123456789")).is_none());
        assert!(auth.principal_for(&HeaderMap::new()).is_none());
        let (_, groups) = auth.principal_for(&with("Bearer letta-token-0123456789")).expect("known");
        assert_eq!(groups.iter().map(|g| &**g).collect::<Vec<_>>(), ["ops"]);
        let bad_group = toml::from_str::<AuthSettings>(
            "[[token]]\nprincipal = \"a\"\ngroups = [\"o ps\"]\nvalue = \"0123456789abcdef\"",
        )
        .expect("parses");
        assert!(matches!(Authenticator::from_settings(&bad_group), Err(AuthError::BadGroup { .. })));
    }

    #[test]
    fn a_repeated_token_is_accepted_and_a_mix_is_not() {
        let auth = auth();
        let twice = "Bearer letta-token-0123456789, Bearer letta-token-0123456789";
        assert_eq!(auth.principal_for(&with(twice)).map(|p| p.0).as_deref(), Some("letta"));
        let mixed = "Bearer letta-token-0123456789, Bearer ci-token-0123456789ab";
        assert!(auth.principal_for(&with(mixed)).is_none());
        let with_junk = "Bearer letta-token-0123456789, Bearer wrong-token-0000000000";
        assert!(auth.principal_for(&with(with_junk)).is_none());
    }

    #[test]
    fn bad_settings_are_refused_naming_the_principal() {
        let settings = |toml: &str| toml::from_str::<AuthSettings>(toml).expect("parses");
        let short = settings("[[token]]\nprincipal = \"a\"\nvalue = \"short\"");
        assert!(
            matches!(Authenticator::from_settings(&short), Err(AuthError::BadToken { principal }) if principal == "a")
        );
        let two = settings("[[token]]\nprincipal = \"a\"\nvalue = \"0123456789abcdef\"\nenv = \"X\"");
        assert!(matches!(Authenticator::from_settings(&two), Err(AuthError::Source { .. })));
        let dup = settings(
            "[[token]]\nprincipal = \"a\"\nvalue = \"0123456789abcdef\"\n\
             [[token]]\nprincipal = \"b\"\nvalue = \"0123456789abcdef\"",
        );
        assert!(matches!(Authenticator::from_settings(&dup), Err(AuthError::DuplicateToken { .. })));
        assert!(toml::from_str::<AuthSettings>("[[token]]\nprincipal = \"a\"\nsecret = \"x\"").is_err());
    }

    #[test]
    fn query_tokens_are_spotted() {
        assert!(carries_query_token(Some("sessionId=1&access_token=x")));
        assert!(carries_query_token(Some("token=x")));
        assert!(!carries_query_token(Some("sessionId=token")));
        assert!(!carries_query_token(None));
    }

    #[test]
    fn only_loopback_may_run_without_tokens() {
        let none = Authenticator::default();
        assert!(check_exposure(IpAddr::from([127, 0, 0, 1]), &none, false).is_ok());
        assert!(check_exposure(IpAddr::from([0, 0, 0, 0]), &none, false).is_err());
        assert!(check_exposure(IpAddr::from([0, 0, 0, 0]), &none, true).is_ok());
        assert!(check_exposure(IpAddr::from([0, 0, 0, 0]), &auth(), false).is_ok());
    }
}
