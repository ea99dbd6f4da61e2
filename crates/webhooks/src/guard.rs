//! SSRF protection: which addresses a webhook may connect to.
//!
//! Anyone who may create a webhook in a namespace chooses its URL, and the
//! delivery runs from inside our network. Without a check a webhook can probe
//! or call the registry's admin ports, databases on the private network or
//! cloud metadata services (169.254.169.254) and read the answer back in the
//! delivery log. The policy is applied to every address a host name resolves
//! to, to IP-literal URLs and to redirect targets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// Where deliveries may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressPolicy {
    /// Permit loopback, private, link-local and other non-global unicast
    /// addresses. For installations whose webhook receivers live on the
    /// internal network, and for tests. Off by default.
    pub allow_private_networks: bool,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

// One row per IANA special-purpose range (RFC 6890 and successors) that is
// not a globally reachable unicast destination. Multicast and broadcast are
// listed separately because they are refused even when private networks
// are allowed.
const REFUSED_V4: &[Ipv4Net] = &[
    v4(0, 0, 0, 0, 8),       // "this network"; 0.0.0.0 connects to localhost on Linux
    v4(10, 0, 0, 0, 8),      // private
    v4(100, 64, 0, 0, 10),   // carrier-grade NAT shared space
    v4(127, 0, 0, 0, 8),     // loopback
    v4(169, 254, 0, 0, 16),  // link-local, cloud metadata services
    v4(172, 16, 0, 0, 12),   // private
    v4(192, 0, 0, 0, 24),    // IETF protocol assignments
    v4(192, 0, 2, 0, 24),    // documentation TEST-NET-1
    v4(192, 88, 99, 0, 24),  // deprecated 6to4 relay anycast
    v4(192, 168, 0, 0, 16),  // private
    v4(198, 18, 0, 0, 15),   // benchmarking
    v4(198, 51, 100, 0, 24), // documentation TEST-NET-2
    v4(203, 0, 113, 0, 24),  // documentation TEST-NET-3
    v4(240, 0, 0, 0, 4),     // reserved (includes broadcast)
];

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

const REFUSED_V6: &[Ipv6Net] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128),         // unspecified
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128),         // loopback
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),  // local-use NAT64
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),      // discard-only
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),     // IETF protocol assignments, Teredo
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),     // documentation (RFC 9637)
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),      // unique local
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),     // link-local
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),     // deprecated site-local
];

const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);
const V4_COMPATIBLE: Ipv6Net = v6([0, 0, 0, 0, 0, 0, 0, 0], 96);

impl AddressPolicy {
    /// Whether a delivery may connect to `ip`.
    ///
    /// IPv6 addresses that embed an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`,
    /// the deprecated IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`
    /// and 6to4 `2002:aabb:ccdd::`) are judged by the embedded address,
    /// because the network delivers them to it.
    ///
    /// Multicast, broadcast and unspecified addresses are refused even with
    /// `allow_private_networks`: they are never a valid HTTP server address,
    /// and on Linux a connection to 0.0.0.0 or :: reaches localhost.
    #[must_use]
    pub fn permits(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.permits_v4(ip),
            IpAddr::V6(ip) => self.permits_v6(ip),
        }
    }

    fn permits_v4(&self, ip: Ipv4Addr) -> bool {
        if ip.is_multicast() || ip.is_broadcast() || ip.is_unspecified() {
            return false;
        }
        self.allow_private_networks || !REFUSED_V4.iter().any(|net| net.contains(&ip))
    }

    fn permits_v6(&self, ip: Ipv6Addr) -> bool {
        if ip.is_multicast() || ip.is_unspecified() {
            return false;
        }
        if let Some(embedded) = embedded_v4(ip) {
            return self.permits_v4(embedded);
        }
        self.allow_private_networks || !REFUSED_V6.iter().any(|net| net.contains(&ip))
    }
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return Some(mapped);
    }
    let bits = u128::from(ip);
    // Low 32 bits for the compatible and NAT64 forms. `::` and `::1` are in
    // V4_COMPATIBLE too but are themselves refused, so they are left to the
    // IPv6 table (and the unspecified check) instead.
    if (V4_COMPATIBLE.contains(&ip) && bits > 1) || NAT64.contains(&ip) {
        return Some(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    if SIX_TO_FOUR.contains(&ip) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: AddressPolicy = AddressPolicy {
        allow_private_networks: false,
    };
    const LAX: AddressPolicy = AddressPolicy {
        allow_private_networks: true,
    };

    #[test]
    fn table() {
        // (address, permitted when strict, permitted when private allowed)
        let rows: &[(&str, bool, bool)] = &[
            // public
            ("93.184.215.14", true, true),
            ("8.8.8.8", true, true),
            ("1.1.1.1", true, true),
            ("100.63.255.255", true, true),
            ("100.128.0.0", true, true),
            ("172.15.255.255", true, true),
            ("172.32.0.0", true, true),
            ("192.167.255.255", true, true),
            ("192.169.0.0", true, true),
            ("169.253.255.255", true, true),
            ("198.20.0.0", true, true),
            ("223.255.255.255", true, true),
            ("2606:4700:4700::1111", true, true),
            ("2001:4860:4860::8888", true, true),
            ("2a00:1450:4001:81b::200e", true, true),
            // IPv4 special ranges
            ("0.0.0.0", false, false),
            ("0.1.2.3", false, true),
            ("10.0.0.1", false, true),
            ("10.255.255.255", false, true),
            ("100.64.0.1", false, true),
            ("100.127.255.254", false, true),
            ("127.0.0.1", false, true),
            ("127.255.255.254", false, true),
            ("169.254.169.254", false, true),
            ("169.254.0.1", false, true),
            ("172.16.0.1", false, true),
            ("172.31.255.255", false, true),
            ("192.0.0.8", false, true),
            ("192.0.2.1", false, true),
            ("192.88.99.1", false, true),
            ("192.168.1.1", false, true),
            ("198.18.0.1", false, true),
            ("198.19.255.255", false, true),
            ("198.51.100.7", false, true),
            ("203.0.113.9", false, true),
            ("224.0.0.1", false, false),
            ("239.255.255.250", false, false),
            ("240.0.0.1", false, true),
            ("255.255.255.255", false, false),
            // IPv6 special ranges
            ("::", false, false),
            ("::1", false, true),
            ("fe80::1", false, true),
            ("febf:ffff::1", false, true),
            ("fec0::1", false, true),
            ("fc00::1", false, true),
            ("fd12:3456:789a::1", false, true),
            ("ff02::1", false, false),
            ("ff05::2", false, false),
            ("2001:db8::1", false, true),
            ("3fff::1", false, true),
            ("100::1", false, true),
            ("2001::1", false, true),
            ("64:ff9b:1::1", false, true),
            // IPv4-mapped
            ("::ffff:127.0.0.1", false, true),
            ("::ffff:10.1.2.3", false, true),
            ("::ffff:169.254.169.254", false, true),
            ("::ffff:0.0.0.0", false, false),
            ("::ffff:224.0.0.1", false, false),
            ("::ffff:8.8.8.8", true, true),
            // IPv4-compatible (deprecated)
            ("::127.0.0.1", false, true),
            ("::192.168.0.1", false, true),
            ("::8.8.8.8", true, true),
            // NAT64
            ("64:ff9b::127.0.0.1", false, true),
            ("64:ff9b::a9fe:a9fe", false, true),
            ("64:ff9b::10.0.0.1", false, true),
            ("64:ff9b::8.8.8.8", true, true),
            // 6to4 embeds the v4 address in bits 16..48
            ("2002:7f00:1::", false, true),
            ("2002:c0a8:101::1", false, true),
            ("2002:a9fe:a9fe::", false, true),
            ("2002:0808:0808::1", true, true),
        ];
        for &(addr, strict, lax) in rows {
            let ip: IpAddr = addr.parse().unwrap();
            assert_eq!(STRICT.permits(ip), strict, "strict {addr}");
            assert_eq!(LAX.permits(ip), lax, "allow_private_networks {addr}");
        }
    }

    #[test]
    fn default_is_strict() {
        assert_eq!(AddressPolicy::default(), STRICT);
    }
}
