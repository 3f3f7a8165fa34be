//! Validation of outgoing HTTP grants and the secrets bound to them.

use std::time::Duration;

use super::PolicyError;
use super::file::{HttpFile, SecretFile};
use crate::model::{HttpGrant, SecretInjection, SecretPlace};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
const DEFAULT_RESPONSE_KIB: u64 = 1024;

pub(super) fn validate(
    key: &str,
    file: &HttpFile,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HttpGrant, PolicyError> {
    let invalid = |reason: String| PolicyError::Invalid { key: key.to_owned(), reason };
    let uri: http::Uri = file.url.parse().map_err(|e| invalid(format!("url {:?} is not a URL: {e}", file.url)))?;
    let scheme = uri.scheme_str().unwrap_or_default().to_owned();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err(invalid(format!("url {:?} must start with http:// or https://", file.url))),
    };
    let host = uri.host().ok_or_else(|| invalid(format!("url {:?} has no host", file.url)))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(invalid("url must not contain credentials; bind a secret instead".into()));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty()) {
        return Err(invalid("url must be scheme://host[:port] only: grants cover a whole origin".into()));
    }
    let allowed_ranges = file
        .allow_ranges
        .iter()
        .map(|r| r.parse::<ipnet::IpNet>().map_err(|e| invalid(format!("allow_ranges entry {r:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let secret = file.secret.as_ref().map(|s| secret(&format!("{key}.secret"), s, env)).transpose()?;
    Ok(HttpGrant {
        scheme,
        host: host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase(),
        port: uri.port_u16().unwrap_or(default_port),
        allowed_ranges,
        max_response_bytes: usize::try_from(file.max_response_kib.unwrap_or(DEFAULT_RESPONSE_KIB).saturating_mul(1024))
            .unwrap_or(usize::MAX),
        timeout: file.timeout_ms.map_or(DEFAULT_TIMEOUT, Duration::from_millis),
        secret,
    })
}

fn secret(key: &str, file: &SecretFile, env: &dyn Fn(&str) -> Option<String>) -> Result<SecretInjection, PolicyError> {
    let invalid = |reason: String| PolicyError::Invalid { key: key.to_owned(), reason };
    let value = match (&file.env, &file.file) {
        (Some(var), None) => env(var).ok_or_else(|| invalid(format!("environment variable {var} is not set")))?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|v| v.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| invalid(format!("cannot read secret file {path}: {e}")))?,
        _ => return Err(invalid("set exactly one of env or file".into())),
    };
    if value.is_empty() {
        return Err(invalid("the secret is empty".into()));
    }
    let place = match (&file.header, &file.path_prefix) {
        (Some(header), None) => {
            let template = file.value.clone().unwrap_or_else(|| "{secret}".into());
            if !template.contains("{secret}") {
                return Err(invalid("value must contain {secret}".into()));
            }
            http::HeaderName::try_from(header.as_str())
                .map_err(|_| invalid(format!("{header:?} is not a header name")))?;
            SecretPlace::Header { name: header.clone(), template }
        }
        (None, Some(prefix)) if prefix.starts_with('/') && prefix.contains("{secret}") => {
            SecretPlace::PathPrefix { template: prefix.clone() }
        }
        (None, Some(_)) => return Err(invalid("path_prefix must start with '/' and contain {secret}".into())),
        _ => return Err(invalid("set exactly one of header or path_prefix".into())),
    };
    Ok(SecretInjection { name: file.name.clone(), value, place })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_owned())
    }

    fn http(url: &str, secret: Option<SecretFile>) -> HttpFile {
        HttpFile { url: url.into(), allow_ranges: vec![], max_response_kib: None, timeout_ms: None, secret }
    }

    #[test]
    fn origins_are_parsed_with_default_ports() {
        let grant = validate("k", &http("https://API.Telegram.org", None), &env).expect("valid");
        assert_eq!((grant.scheme.as_str(), grant.host.as_str(), grant.port), ("https", "api.telegram.org", 443));
        let grant = validate("k", &http("http://127.0.0.1:8080", None), &env).expect("valid");
        assert_eq!(grant.port, 8080);
        for bad in ["ftp://x", "https://x/path", "https://user:pw@x", "not a url"] {
            assert!(validate("k", &http(bad, None), &env).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_come_from_the_environment_and_need_one_place() {
        let header = SecretFile {
            name: "api".into(),
            env: Some("TOKEN".into()),
            file: None,
            header: Some("Authorization".into()),
            value: Some("Bearer {secret}".into()),
            path_prefix: None,
        };
        let grant = validate("k", &http("https://x", Some(header)), &env).expect("valid");
        let secret = grant.secret.expect("secret");
        assert_eq!(secret.value, "s3cret");
        assert!(!format!("{secret:?}").contains("s3cret"), "Debug never shows the value");
        let missing = SecretFile {
            name: "a".into(),
            env: Some("NOPE".into()),
            file: None,
            header: Some("X".into()),
            value: None,
            path_prefix: None,
        };
        let error = validate("plugins.p.http[0]", &http("https://x", Some(missing)), &env).expect_err("unset");
        assert!(error.to_string().starts_with("plugins.p.http[0].secret:"), "{error}");
    }
}
