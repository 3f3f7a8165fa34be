//! Which IP addresses a plugin's request may reach: the one address check of the `egress` leaf
//! (public addresses only, unless the grant allows a range), shared with the host's own
//! outgoing requests so both refuse exactly the same destinations. Kept as a module so the
//! capability's tests below pin that behaviour where the capability uses it.

pub(crate) use crate::egress::refusal;

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        refusal(text.parse().expect("ip"), &[]).is_some()
    }

    #[test]
    fn non_public_addresses_are_refused_in_every_spelling() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:a9fe:a9fe",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"] {
            assert!(!refused(ip), "{ip} is public");
        }
    }

    #[test]
    fn an_operator_range_allows_internal_infrastructure() {
        let allowed = ["10.0.0.0/8".parse().expect("cidr")];
        assert_eq!(refusal("10.20.30.40".parse().expect("ip"), &allowed), None);
        assert!(refusal("192.168.1.1".parse().expect("ip"), &allowed).is_some());
    }
}
