//! Who the client is, for rate limiting and logging: the TCP peer, or, behind trusted
//! reverse proxies, the address they report in `X-Forwarded-For`.
//!
//! Rules:
//! - `X-Forwarded-For` is believed only when the peer itself is a trusted proxy. With no
//!   trusted proxies configured the header is ignored entirely, so a client cannot change
//!   its key by sending one.
//! - The list is walked from the right (each proxy appends the address it saw), skipping
//!   entries that are trusted proxies themselves; the first untrusted entry is the
//!   client. Entries left of it were written by the client and are never read.
//! - If every entry is a trusted proxy, the leftmost one is the client (the furthest hop
//!   known).
//! - A malformed entry (not an IP address, optionally with a port; empty, `unknown`,
//!   obfuscated identifiers, ...) stops the walk, and the last trusted hop is the client:
//!   the entry just right of the malformed one, or the peer when the malformed entry is
//!   the rightmost. That hop is a proxy we trust that reported garbage, so the
//!   garbage's author is unknown and the trusted hop is the closest address we know.
//! - IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are IPv4 everywhere: as peer, in the
//!   header, and when matched against `trusted_proxies`. An IPv6 network in
//!   `trusted_proxies` matches IPv4 addresses only if it lies within `::ffff:0:0/96`
//!   (so `::/0` does not trust every IPv4 peer).
//! - Keys: an IPv4 client is keyed by its address (`192.0.2.1`), an IPv6 client by its
//!   /64 network (`2001:db8:1:2::/64`), since one client usually owns a whole /64 and
//!   could otherwise rotate through 2^64 keys.
//!
//! Several `X-Forwarded-For` header lines are one list: the caller joins them with `,`
//! in the order received before calling (RFC 9110 §5.3).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The rate-limit key of a request from `peer` carrying `forwarded_for` (the value of
/// `X-Forwarded-For`, if any). See the module docs for the rules.
pub fn client_key(peer: IpAddr, forwarded_for: Option<&str>, trusted_proxies: &[IpNet]) -> String {
    address_key(client_ip(peer, forwarded_for, trusted_proxies))
}

/// The client's address under the same rules as [`client_key`], with IPv4-mapped IPv6
/// addresses turned into IPv4. For logging.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted_proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let Some(header) = forwarded_for else {
        return peer;
    };
    if !is_trusted(peer, trusted_proxies) {
        // Also covers an empty `trusted_proxies`: nothing is trusted, the header is noise.
        return peer;
    }
    let mut last_trusted = peer;
    for entry in header.rsplit(',') {
        let Some(ip) = parse_entry(entry) else {
            return last_trusted;
        };
        if !is_trusted(ip, trusted_proxies) {
            return ip;
        }
        last_trusted = ip;
    }
    last_trusted
}

/// The key of one address: IPv4 as is, IPv6 as its /64 network.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => Ipv6Net::new_assert(v6, 64).trunc().to_string(),
    }
}

/// Whether `ip` (canonical) lies in one of the trusted networks.
fn is_trusted(ip: IpAddr, trusted_proxies: &[IpNet]) -> bool {
    trusted_proxies.iter().any(|net| match (net, ip) {
        (IpNet::V4(net), IpAddr::V4(ip)) => net.contains(&ip),
        (IpNet::V6(net), IpAddr::V6(ip)) => net.contains(&ip),
        // Only a network inside ::ffff:0:0/96 speaks about IPv4 addresses.
        (IpNet::V6(net), IpAddr::V4(ip)) => mapped_v4_net(net).is_some_and(|n| n.contains(&ip)),
        (IpNet::V4(_), IpAddr::V6(_)) => false,
    })
}

/// `::ffff:a.b.c.d/(96+n)` as `a.b.c.d/n`; `None` for any other IPv6 network.
fn mapped_v4_net(net: &Ipv6Net) -> Option<Ipv4Net> {
    let prefix = net.prefix_len().checked_sub(96)?;
    let v4 = net.network().to_ipv4_mapped()?;
    Ipv4Net::new(v4, prefix).ok()
}

/// One `X-Forwarded-For` entry: an IP address, optionally `v4:port`, `[v6]` or
/// `[v6]:port` (some proxies add the port); surrounding whitespace is allowed.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = if let Ok(ip) = entry.parse::<IpAddr>() {
        ip
    } else if let Ok(sock) = entry.parse::<SocketAddr>() {
        sock.ip()
    } else {
        let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
        IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    /// (what, peer, X-Forwarded-For, trusted proxies, expected key)
    type Case = (
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static [&'static str],
        &'static str,
    );

    #[test]
    fn client_keys() {
        const NONE: &[&str] = &[];
        const PROXIES: &[&str] = &["10.0.0.0/8", "192.0.2.10/32"];
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // no trusted proxies: the header never matters
            ("plain peer", "198.51.100.4", None, NONE, "198.51.100.4"),
            ("spoofed header, nothing trusted", "198.51.100.4", Some("203.0.113.7"), NONE, "198.51.100.4"),
            ("spoofed trusted-looking header, nothing trusted", "198.51.100.4", Some("10.0.0.1"), NONE, "198.51.100.4"),
            ("garbage header, nothing trusted", "198.51.100.4", Some("garbage"), NONE, "198.51.100.4"),
            ("proxy-range peer but nothing configured", "10.0.0.1", Some("203.0.113.7"), NONE, "10.0.0.1"),
            // trusted proxies configured, but the peer is not one
            ("untrusted peer's header ignored", "198.51.100.4", Some("203.0.113.7"), PROXIES, "198.51.100.4"),
            ("untrusted peer cannot claim a proxy chain", "198.51.100.4", Some("203.0.113.7, 10.0.0.1"), PROXIES, "198.51.100.4"),
            // a trusted peer
            ("trusted peer, no header", "10.0.0.1", None, PROXIES, "10.0.0.1"),
            ("trusted peer, one entry", "10.0.0.1", Some("203.0.113.7"), PROXIES, "203.0.113.7"),
            ("/32 proxy", "192.0.2.10", Some("203.0.113.7"), PROXIES, "203.0.113.7"),
            ("next to a /32 proxy is not a proxy", "192.0.2.11", Some("203.0.113.7"), PROXIES, "192.0.2.11"),
            ("client-supplied entries left of the client are never read", "10.0.0.1", Some("1.1.1.1, 8.8.8.8, 203.0.113.7"), PROXIES, "203.0.113.7"),
            ("client cannot hide behind a spoofed proxy entry", "10.0.0.1", Some("10.9.9.9, 203.0.113.7"), PROXIES, "203.0.113.7"),
            ("trusted hops are skipped", "10.0.0.1", Some("203.0.113.7, 10.0.0.3, 192.0.2.10"), PROXIES, "203.0.113.7"),
            ("all hops trusted: the leftmost", "10.0.0.1", Some("10.0.0.2, 10.0.0.3"), PROXIES, "10.0.0.2"),
            ("whitespace around entries", "10.0.0.1", Some("  203.0.113.7 ,\t10.0.0.3  "), PROXIES, "203.0.113.7"),
            ("several header lines joined", "10.0.0.1", Some("1.1.1.1, 203.0.113.7,10.0.0.3"), PROXIES, "203.0.113.7"),
            // malformed entries stop the walk at the last trusted hop
            ("empty header: the peer", "10.0.0.1", Some(""), PROXIES, "10.0.0.1"),
            ("blank header: the peer", "10.0.0.1", Some("   "), PROXIES, "10.0.0.1"),
            ("rightmost malformed: the peer", "10.0.0.1", Some("203.0.113.7, garbage"), PROXIES, "10.0.0.1"),
            ("`unknown` is malformed", "10.0.0.1", Some("unknown"), PROXIES, "10.0.0.1"),
            ("malformed behind a trusted hop: that hop", "10.0.0.1", Some("203.0.113.7, garbage, 10.0.0.3"), PROXIES, "10.0.0.3"),
            ("malformed behind two trusted hops: the hop right of it", "10.0.0.1", Some("203.0.113.7, nope, 10.0.0.3, 10.0.0.4"), PROXIES, "10.0.0.3"),
            ("empty element behind a trusted hop", "10.0.0.1", Some("203.0.113.7,,10.0.0.3"), PROXIES, "10.0.0.3"),
            ("trailing comma", "10.0.0.1", Some("203.0.113.7,"), PROXIES, "10.0.0.1"),
            ("malformed left of the client is never reached", "10.0.0.1", Some("garbage, 203.0.113.7"), PROXIES, "203.0.113.7"),
            ("CIDR is not an address", "10.0.0.1", Some("203.0.113.0/24"), PROXIES, "10.0.0.1"),
            ("IPv6 zone is not accepted", "10.0.0.1", Some("fe80::1%eth0"), PROXIES, "10.0.0.1"),
            ("bracketed IPv6 without closing bracket", "10.0.0.1", Some("[2001:db8::1"), PROXIES, "10.0.0.1"),
            // ports some proxies add
            ("IPv4 with port", "10.0.0.1", Some("203.0.113.7:4711"), PROXIES, "203.0.113.7"),
            ("bracketed IPv6 with port", "10.0.0.1", Some("[2001:db8:5:6::1]:443"), PROXIES, "2001:db8:5:6::/64"),
            ("bracketed IPv6", "10.0.0.1", Some("[2001:db8:5:6::1]"), PROXIES, "2001:db8:5:6::/64"),
            ("trusted hop with port is skipped", "10.0.0.1", Some("203.0.113.7, 10.0.0.3:80"), PROXIES, "203.0.113.7"),
            // IPv4-mapped IPv6 is IPv4
            ("mapped peer", "::ffff:198.51.100.4", None, NONE, "198.51.100.4"),
            ("mapped peer, spoofed header", "::ffff:198.51.100.4", Some("203.0.113.7"), NONE, "198.51.100.4"),
            ("mapped peer matches an IPv4 proxy net", "::ffff:10.0.0.1", Some("203.0.113.7"), PROXIES, "203.0.113.7"),
            ("mapped client entry", "10.0.0.1", Some("::ffff:203.0.113.7"), PROXIES, "203.0.113.7"),
            ("mapped trusted hop is skipped", "10.0.0.1", Some("203.0.113.7, ::ffff:10.0.0.3"), PROXIES, "203.0.113.7"),
            ("mapped proxy net trusts IPv4 peers", "10.1.2.3", Some("203.0.113.7"), &["::ffff:10.0.0.0/104"], "203.0.113.7"),
            ("mapped proxy net trusts mapped peers", "::ffff:10.1.2.3", Some("203.0.113.7"), &["::ffff:10.0.0.0/104"], "203.0.113.7"),
            ("mapped proxy net's range is exact", "10.1.2.3", Some("203.0.113.7"), &["::ffff:11.0.0.0/104"], "10.1.2.3"),
            ("::/0 does not trust IPv4 peers", "198.51.100.4", Some("203.0.113.7"), &["::/0"], "198.51.100.4"),
            ("::/0 does not trust mapped peers", "::ffff:198.51.100.4", Some("203.0.113.7"), &["::/0"], "198.51.100.4"),
            ("0.0.0.0/0 does not trust IPv6 peers", "2001:db8::1", Some("203.0.113.7"), &["0.0.0.0/0"], "2001:db8::/64"),
            // IPv6 keys are the /64
            ("IPv6 peer", "2001:db8:1:2:3:4:5:6", None, NONE, "2001:db8:1:2::/64"),
            ("another address in the same /64", "2001:db8:1:2:ffff:ffff:ffff:ffff", None, NONE, "2001:db8:1:2::/64"),
            ("the neighbouring /64", "2001:db8:1:3::1", None, NONE, "2001:db8:1:3::/64"),
            ("IPv6 loopback", "::1", None, NONE, "::/64"),
            ("IPv6 proxies and client", "fd00::1", Some("2001:db8:aa:bb::1, fd00::2"), &["fd00::/8"], "2001:db8:aa:bb::/64"),
            ("IPv4 client behind IPv6 proxy", "fd00::1", Some("203.0.113.7"), &["fd00::/8"], "203.0.113.7"),
            ("IPv6 client behind IPv4 proxy", "10.0.0.1", Some("2001:db8:aa:bb::1"), PROXIES, "2001:db8:aa:bb::/64"),
            ("untrusted IPv6 peer", "2001:db8:9::1", Some("203.0.113.7"), &["fd00::/8"], "2001:db8:9::/64"),
            ("trusted nets need not be truncated", "10.0.0.1", Some("203.0.113.7"), &["10.200.0.1/8"], "203.0.113.7"),
        ];
        for (what, peer, header, trusted, expected) in cases {
            let peer: IpAddr = peer.parse().unwrap();
            let trusted = nets(trusted);
            let key = client_key(peer, *header, &trusted);
            assert_eq!(
                key, *expected,
                "{what}: peer {peer}, X-Forwarded-For {header:?}"
            );
            let ip = client_ip(peer, *header, &trusted);
            assert_eq!(
                address_key(ip),
                key,
                "{what}: client_ip agrees with client_key"
            );
            assert_eq!(ip, ip.to_canonical(), "{what}: client_ip is canonical");
        }
    }

    #[test]
    fn client_ips() {
        let proxies = nets(&["10.0.0.0/8"]);
        // (peer, X-Forwarded-For, expected address)
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("198.51.100.4", Some("203.0.113.7"), "198.51.100.4"),
            ("::ffff:198.51.100.4", None, "198.51.100.4"),
            ("10.0.0.1", Some("2001:db8::7"), "2001:db8::7"),
            ("10.0.0.1", Some("[2001:db8::7]:443"), "2001:db8::7"),
            ("10.0.0.1", Some("::ffff:203.0.113.7"), "203.0.113.7"),
            ("10.0.0.1", Some("203.0.113.7, bad, 10.0.0.9"), "10.0.0.9"),
        ];
        for (peer, header, expected) in cases {
            let ip = client_ip(peer.parse().unwrap(), *header, &proxies);
            assert_eq!(ip, expected.parse::<IpAddr>().unwrap(), "{peer} {header:?}");
        }
    }

    #[test]
    fn address_keys() {
        let cases = [
            ("192.0.2.1", "192.0.2.1"),
            ("0.0.0.0", "0.0.0.0"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8::", "2001:db8::/64"),
            ("fe80::1", "fe80::/64"),
            ("::", "::/64"),
        ];
        for (ip, expected) in cases {
            assert_eq!(address_key(ip.parse().unwrap()), expected, "{ip}");
        }
    }
}
