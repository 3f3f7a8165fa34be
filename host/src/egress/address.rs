//! Which IP addresses an outgoing request may reach (a plugin's, or the host's own, such as the
//! JWKS fetch). Public addresses only, unless the operator allowed a range for that destination:
//! loopback, private, link-local (where cloud metadata lives), unique-local, CGNAT and reserved
//! ranges are refused, and so is any IPv6 form that embeds one of them (IPv4-mapped, NAT64, 6to4). Decimal, hex or octal spellings of an IPv4
//! address are caught too, because the check runs on resolved addresses, not on the text.
//! Owns the classification only: no name resolution, no sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` may not be reached, or `None` if it may.
pub fn refusal(ip: IpAddr, allowed: &[ipnet::IpNet]) -> Option<&'static str> {
    if allowed.iter().any(|range| range.contains(&ip)) {
        return None;
    }
    match ip {
        IpAddr::V4(v4) => v4_refusal(v4),
        IpAddr::V6(v6) => v6_refusal(v6),
    }
}

fn v4_refusal(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address (cloud metadata services live there)")
    } else if ip.is_unspecified() || a == 0 {
        Some("the unspecified/this-network range")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("a broadcast, multicast or reserved address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("the shared (CGNAT) address space")
    } else if (a == 192 && b == 0 && c == 0) || (a == 198 && (18..20).contains(&b)) {
        Some("an IETF special-purpose address")
    } else {
        None
    }
}

fn v6_refusal(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_refusal(v4).map(|_| "an IPv4-mapped form of a non-public address");
    }
    let segments = ip.segments();
    if ip.is_loopback() || ip.is_unspecified() {
        return Some("a loopback or unspecified address");
    }
    if ip.is_multicast() {
        return Some("a multicast address");
    }
    if segments[0] & 0xfe00 == 0xfc00 {
        return Some("a unique-local address (fd00:ec2::254 and other metadata services live there)");
    }
    if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
        return Some("a link-local or site-local address");
    }
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address inside.
    let embedded = if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(Ipv4Addr::new((segments[6] >> 8) as u8, segments[6] as u8, (segments[7] >> 8) as u8, segments[7] as u8))
    } else if segments[0] == 0x2002 {
        Some(Ipv4Addr::new((segments[1] >> 8) as u8, segments[1] as u8, (segments[2] >> 8) as u8, segments[2] as u8))
    } else {
        None
    };
    embedded.and_then(v4_refusal).map(|_| "an IPv6 form (NAT64/6to4) of a non-public address")
}

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
