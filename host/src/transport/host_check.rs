//! `Host` header matching (the middleware applying it is in `origin.rs`): a page in a browser
//! that rebinds its own domain to 127.0.0.1 arrives with its own name as `Host` and is refused.

use std::sync::Arc;

#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts(Arc<Vec<String>>);

impl AllowedHosts {
    pub(crate) fn new(hosts: Vec<String>) -> Self {
        Self(Arc::new(hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect()))
    }

    pub(crate) fn allows(&self, host_header: &str) -> bool {
        let host = host_name(host_header).to_ascii_lowercase();
        self.0.iter().any(|allowed| allowed == &host)
    }
}

/// The host part of a `Host` header: drops the port, and the brackets of an IPv6 literal.
pub(crate) fn host_name(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    value.rsplit_once(':').map_or(value, |(host, _port)| host)
}

/// Whether a `Host` header value is a plain `name[:port]` or `[v6][:port]`: letters, digits, `-`,
/// `.`, an IPv6 literal in brackets, digits after the colon. Only such a value may be echoed into
/// a URL sanctum hands out (the allow-list looks at the name only, not at what follows it).
pub(crate) fn is_plain_authority(value: &str) -> bool {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else { return false };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (v6, Some(port)),
                None => return false,
            },
        }
    } else {
        match value.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    let host_ok = value.starts_with('[')
        || (!host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    let port_ok = port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok && value.len() <= 260
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_authorities_may_be_echoed() {
        for good in ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]", "[::1]:8000", "sanctum.internal"] {
            assert!(is_plain_authority(good), "{good}");
        }
        for bad in ["", "localhost:8000\"x", "localhost:", "[::1]x", "a b", "[::1]:80:80", "host:80/path", "[]"] {
            assert!(!is_plain_authority(bad), "{bad}");
        }
    }

    #[test]
    fn ports_and_ipv6_brackets_are_ignored() {
        let allowed = AllowedHosts::new(vec!["localhost".into(), "::1".into(), "sanctum".into()]);
        assert!(allowed.allows("localhost:8000"));
        assert!(allowed.allows("LOCALHOST"));
        assert!(allowed.allows("[::1]:8000"));
        assert!(allowed.allows("sanctum:8000"));
        assert!(!allowed.allows("evil.example.com"));
        assert!(!allowed.allows("localhost.evil.example.com:8000"));
    }
}
