//! Bearer-token authentication: which tokens exist, which principal each names, and the
//! middleware that checks every request on every MCP route and `/metrics` (`/healthz` and
//! `/readyz` stay open for probes).
//!
//! Tokens come from a TOML file (`[[token]] principal = … env|file|value = …`) and/or one
//! token in `SANCTUM_AUTH_TOKEN` (principal `default`). Only SHA-256 digests are kept, and a
//! presented token is compared with every digest in constant time, so neither the token's
//! content nor its length leaks through timing. Owns no session or MCP logic.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::principal::{ANONYMOUS, Principal};

/// The principal of the single token from `SANCTUM_AUTH_TOKEN`.
pub const DEFAULT_PRINCIPAL: &str = "default";

/// Shorter tokens are refused at start-up: they can be guessed.
const MIN_TOKEN_LEN: usize = 16;

/// Authentication settings, as they appear in a tokens file (and, later, in a section of the
/// main config file): a list of `[[token]]` tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenSource>,
}

/// One token: its principal and exactly one place to read it from.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSource {
    /// Who presents this token: recorded in logs and the audit log, and owner of its sessions.
    pub principal: String,
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
    #[error("two tokens are identical (principals {first:?} and {second:?})")]
    DuplicateToken { first: String, second: String },
    #[error(
        "refusing to serve on {host} without authentication: anyone who can reach the port could call \
         tools. Configure tokens (--auth-tokens-file or SANCTUM_AUTH_TOKEN), bind a loopback address, \
         or pass --allow-unauthenticated if something in front of sanctum authenticates"
    )]
    ExposedWithoutTokens { host: IpAddr },
}

/// The configured tokens, as digests. Empty means authentication is off.
#[derive(Clone, Default)]
pub struct Authenticator {
    tokens: Arc<Vec<(Arc<str>, [u8; 32])>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let principals: Vec<&str> = self.tokens.iter().map(|(p, _)| &**p).collect();
        f.debug_struct("Authenticator").field("principals", &principals).finish()
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
                env: None,
                file: None,
                value: Some(token.to_owned()),
            });
        }
        Self::from_settings(&settings)
    }

    /// Resolve every token source and keep the digests.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, AuthError> {
        let mut tokens: Vec<(Arc<str>, [u8; 32])> = Vec::new();
        for source in &settings.tokens {
            let principal = source.principal.clone();
            if !valid_principal(&principal) {
                return Err(AuthError::BadPrincipal { principal });
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
            if let Some((first, _)) = tokens.iter().find(|(_, d)| *d == digest) {
                return Err(AuthError::DuplicateToken { first: first.to_string(), second: principal });
            }
            tokens.push((Arc::from(principal), digest));
        }
        Ok(Self { tokens: Arc::new(tokens) })
    }

    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Principal names, for the start-up log.
    pub fn principals(&self) -> Vec<String> {
        self.tokens.iter().map(|(p, _)| p.to_string()).collect()
    }

    /// Which principal the request's `Authorization` header names, if any.
    ///
    /// Letta Code 0.32 over SSE sends a configured header twice, comma-joined (`Bearer T, Bearer
    /// T`): a header is accepted when every credential in it is the same valid token; any mix
    /// is refused.
    fn principal_for(&self, headers: &HeaderMap) -> Option<Arc<str>> {
        let mut presented: Option<&str> = None;
        for value in headers.get_all(header::AUTHORIZATION) {
            let value = value.to_str().ok()?;
            for credential in value.split(',') {
                let (scheme, token) = credential.trim().split_once(' ')?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return None;
                }
                let token = token.trim();
                match presented {
                    None => presented = Some(token),
                    // Comparing two presented values leaks nothing about the configured ones.
                    Some(first) if first == token => {}
                    Some(_) => return None,
                }
            }
        }
        let presented = digest(presented?);
        // Every digest is compared, with no early exit, so timing does not say which matched.
        let mut found: Option<Arc<str>> = None;
        for (principal, expected) in self.tokens.iter() {
            if bool::from(expected.ct_eq(&presented)) {
                found = Some(Arc::clone(principal));
            }
        }
        found
    }
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
    let name: Arc<str> = if gate.auth.is_enabled() {
        match gate.auth.principal_for(request.headers()) {
            Some(principal) => principal,
            None => {
                tracing::info!(path = %request.uri().path(), "refused a request without a valid bearer token");
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "missing or invalid bearer token\n",
                )
                    .into_response();
            }
        }
    } else {
        Arc::from(ANONYMOUS)
    };
    tracing::debug!(principal = %name, method = %request.method(), path = %request.uri().path(), "authenticated");
    let principal = Principal::new(Arc::clone(&name), gate.calls.bucket_for(&name));
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
            env: None,
            file: None,
            value: Some(value.into()),
        };
        Authenticator::from_settings(&AuthSettings {
            tokens: vec![token("letta", "letta-token-0123456789"), token("ci", "ci-token-0123456789ab")],
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
        assert_eq!(auth.principal_for(&with("Bearer letta-token-0123456789")).as_deref(), Some("letta"));
        assert_eq!(auth.principal_for(&with("bearer ci-token-0123456789ab")).as_deref(), Some("ci"));
        assert_eq!(auth.principal_for(&with("Bearer letta-token-012345678")), None, "a prefix");
        assert_eq!(auth.principal_for(&with("Basic letta-token-0123456789")), None);
        assert_eq!(auth.principal_for(&HeaderMap::new()), None);
    }

    #[test]
    fn a_repeated_token_is_accepted_and_a_mix_is_not() {
        let auth = auth();
        let twice = "Bearer letta-token-0123456789, Bearer letta-token-0123456789";
        assert_eq!(auth.principal_for(&with(twice)).as_deref(), Some("letta"));
        let mixed = "Bearer letta-token-0123456789, Bearer ci-token-0123456789ab";
        assert_eq!(auth.principal_for(&with(mixed)), None);
        let with_junk = "Bearer letta-token-0123456789, Bearer wrong-token-0000000000";
        assert_eq!(auth.principal_for(&with(with_junk)), None);
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
