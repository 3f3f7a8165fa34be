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

#[cfg(test)]
mod tests {
    use super::*;

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
