//! The client's address: the peer, or the hop a trusted proxy wrote in `x-forwarded-for`; and
//! the address its limits, session and sequences are kept under.

use crate::base::iptable::{canonical, IpSet};
use crate::policy::ClientIdentity;
use crate::request::head::{trim, Head};
use std::net::{IpAddr, SocketAddr};

/// The client as the engine knows it, worked out once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<IpAddr>,
    /// Where `ip` came from.
    pub source: IpSource,
    /// The address its limits, session and sequences are kept under (IPv6: its prefix).
    pub keyed: Option<IpAddr>,
}

impl Client {
    /// The client of `head` (`head.peer` must be set: it says whether `x-forwarded-for` is
    /// believed).
    pub fn of(head: &Head, c: &ClientIdentity) -> Client {
        let (ip, source) = client_ip(head, c.trust_proxy_depth, &c.trusted_proxies);
        Client { ip, source, keyed: ip.map(|ip| client_key(ip, c.ipv6_prefix)) }
    }
}

/// Where the client address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpSource {
    Peer,
    ForwardedFor,
    /// `x-forwarded-for` was expected but unusable; the peer address was used.
    BadForwardedFor,
    /// `x-forwarded-for` came from a peer that is not a trusted proxy: ignored, the peer is the
    /// client.
    UntrustedForwardedFor,
    Unknown,
}

/// The client address: the peer, or, when the peer is a trusted proxy, the `x-forwarded-for`
/// hop written by the outermost trusted proxy. Hops are counted from the right, where proxies
/// append, so hops a client adds on the left are never chosen; from any other peer the header
/// is the client's own words and is ignored.
fn client_ip(head: &Head, trust_proxy_depth: usize, trusted: &IpSet) -> (Option<IpAddr>, IpSource) {
    if trust_proxy_depth == 0 {
        return peer_or_unknown(head, IpSource::Peer);
    }
    let mut values = head.all("x-forwarded-for").peekable();
    if values.peek().is_none() {
        return peer_or_unknown(head, IpSource::Peer);
    }
    if !head.peer.is_some_and(|p| trusted.contains(p)) {
        return peer_or_unknown(head, IpSource::UntrustedForwardedFor);
    }
    let hops: Vec<&[u8]> = values.flat_map(|v| v.split(|b| *b == b',')).map(trim).collect();
    if hops.iter().all(|h| h.is_empty()) {
        return peer_or_unknown(head, IpSource::Peer);
    }
    // With fewer hops than trusted proxies, the left-most was written by a trusted proxy.
    let index = hops.len().saturating_sub(trust_proxy_depth);
    match hops.get(index).and_then(|h| parse_ip(h)) {
        Some(ip) => (Some(ip), IpSource::ForwardedFor),
        None => peer_or_unknown(head, IpSource::BadForwardedFor),
    }
}

/// The address a client is keyed by: itself for IPv4, its `/prefix` network for IPv6 (a client
/// rotating addresses inside its own /64 is one client).
pub fn client_key(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V6(a) => ipnet::Ipv6Net::new(a, ipv6_prefix.min(128)).map_or(ip, |n| IpAddr::V6(n.network())),
        v4 => v4,
    }
}

fn peer_or_unknown(head: &Head, source: IpSource) -> (Option<IpAddr>, IpSource) {
    match head.peer {
        Some(ip) => (Some(ip), source),
        None => (None, IpSource::Unknown),
    }
}

/// Parses `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1` or `[2001:db8::1]:80`.
fn parse_ip(raw: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    if s.len() > 64 {
        return None;
    }
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip())).map(canonical)
}

/// Parses Envoy's `source.address` property (`1.2.3.4:5678`, `[::1]:5678`).
pub fn parse_peer(raw: &[u8]) -> Option<IpAddr> {
    parse_ip(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&str, &[u8])], peer: &str) -> Head {
        Head::from_pairs(pairs.iter().copied()).with_peer(peer.parse().ok())
    }

    /// `client_ip` behind a trusted proxy at 10.0.0.0/8.
    fn client(h: &Head, depth: usize) -> (Option<IpAddr>, IpSource) {
        let lb = IpSet::new(&["10.0.0.0/8".parse().unwrap()]);
        client_ip(h, depth, &lb)
    }

    #[test]
    fn a_client_that_connects_directly_cannot_choose_its_address() {
        let spoofed = head(&[("x-forwarded-for", b"10.0.100.7")], "198.18.0.9");
        assert_eq!(client(&spoofed, 1), ("198.18.0.9".parse().ok(), IpSource::UntrustedForwardedFor));
        // Nobody is trusted when no proxies are listed, whatever the depth.
        assert_eq!(client_ip(&spoofed, 1, &IpSet::default()).0, "198.18.0.9".parse().ok());
        // An unknown peer is never taken as a trusted proxy.
        let unknown = head(&[("x-forwarded-for", b"10.0.100.7")], "");
        assert_eq!(client(&unknown, 1), (None, IpSource::Unknown));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(a, 64), client_key(b, 64));
        assert_ne!(client_key(a, 128), client_key(b, 128));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_key(v4, 64), v4);
    }

    #[test]
    fn trusted_depth_picks_the_hop_the_proxy_wrote() {
        let h = head(&[("x-forwarded-for", b"6.6.6.6, 203.0.113.7")], "10.0.0.1");
        assert_eq!(client(&h, 1).0, "203.0.113.7".parse().ok());
        assert_eq!(client(&h, 2).0, "6.6.6.6".parse().ok());
        assert_eq!(client(&h, 0).0, "10.0.0.1".parse().ok());
        // Fewer hops than trusted proxies: the left-most hop.
        assert_eq!(client(&h, 5).0, "6.6.6.6".parse().ok());
    }

    #[test]
    fn duplicated_xff_headers_are_one_list() {
        let h = head(&[("x-forwarded-for", b"1.1.1.1"), ("x-forwarded-for", b"2.2.2.2")], "10.0.0.1");
        assert_eq!(client(&h, 1).0, "2.2.2.2".parse().ok());
    }

    #[test]
    fn garbage_xff_falls_back_to_peer() {
        let h = head(&[("x-forwarded-for", b"\xff\xfe, nonsense")], "10.0.0.1");
        assert_eq!(client(&h, 1), ("10.0.0.1".parse().ok(), IpSource::BadForwardedFor));
        let h = head(&[("x-forwarded-for", b"[2001:db8::1]:443")], "10.0.0.1");
        assert_eq!(client(&h, 1).0, "2001:db8::1".parse().ok());
        let h = head(&[("x-forwarded-for", b"::ffff:192.0.2.1")], "10.0.0.1");
        assert_eq!(client(&h, 1).0, "192.0.2.1".parse().ok());
    }
}
