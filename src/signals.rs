//! What a request says about its sender: client address, headers, fingerprint inputs.
//!
//! Everything is read from bytes: header values may be any octets, duplicated, or huge.

use crate::fasthash::FastHasher;
use crate::policy::Field;
use std::net::{IpAddr, SocketAddr};

/// The request head as the host hands it over: lower-case names, raw values, in order.
#[derive(Debug, Default, Clone)]
pub struct Head {
    pub headers: Vec<(String, Vec<u8>)>,
    /// The connection's peer (`source.address`), when known.
    pub peer: Option<IpAddr>,
}

impl Head {
    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_slice())
    }

    pub fn method(&self) -> &[u8] {
        self.first(":method").unwrap_or(b"GET")
    }

    /// The path without its query.
    pub fn path(&self) -> &[u8] {
        let full = self.first(":path").unwrap_or(b"/");
        full.split(|b| *b == b'?').next().unwrap_or(full)
    }

    pub fn query(&self) -> &[u8] {
        let full = self.first(":path").unwrap_or(b"");
        match full.iter().position(|b| *b == b'?') {
            Some(i) => full.get(i + 1..).unwrap_or(b""),
            None => b"",
        }
    }

    /// Client-sent `x-botgate-*` headers: removed before botgate adds its own.
    pub fn spoofed_botgate_headers(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.headers.iter().filter(|(k, _)| k.starts_with("x-botgate-")).map(|(k, _)| k.clone()).collect();
        names.dedup();
        names
    }
}

/// Where the client address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpSource {
    Peer,
    ForwardedFor,
    /// `x-forwarded-for` was expected but unusable; the peer address was used.
    BadForwardedFor,
    Unknown,
}

/// The client address: the peer, or the `x-forwarded-for` hop written by the outermost trusted
/// proxy. Hops are counted from the right, where proxies append, so hops a client adds on the
/// left are never chosen.
pub fn client_ip(head: &Head, trust_proxy_depth: usize) -> (Option<IpAddr>, IpSource) {
    if trust_proxy_depth == 0 {
        return peer_or_unknown(head, IpSource::Peer);
    }
    let hops: Vec<&[u8]> = head.all("x-forwarded-for").flat_map(|v| v.split(|b| *b == b',')).map(trim).collect();
    if hops.is_empty() || hops.iter().all(|h| h.is_empty()) {
        return peer_or_unknown(head, IpSource::Peer);
    }
    // With fewer hops than trusted proxies, the left-most was written by a trusted proxy.
    let index = hops.len().saturating_sub(trust_proxy_depth);
    match hops.get(index).and_then(|h| parse_ip(h)) {
        Some(ip) => (Some(ip), IpSource::ForwardedFor),
        None => peer_or_unknown(head, IpSource::BadForwardedFor),
    }
}

fn peer_or_unknown(head: &Head, source: IpSource) -> (Option<IpAddr>, IpSource) {
    match head.peer {
        Some(ip) => (Some(ip), source),
        None => (None, IpSource::Unknown),
    }
}

/// `b` without surrounding ASCII whitespace.
pub(crate) fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or(b"")
}

/// Parses `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1` or `[2001:db8::1]:80`.
pub fn parse_ip(raw: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    if s.len() > 64 {
        return None;
    }
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip())).map(canonical)
}

/// IPv4-mapped IPv6 addresses count as the IPv4 client they are.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Parses Envoy's `source.address` property (`1.2.3.4:5678`, `[::1]:5678`).
pub fn parse_peer(raw: &[u8]) -> Option<IpAddr> {
    parse_ip(raw)
}

/// Inputs to a fingerprint that come from the body.
pub struct BodyParts<'a> {
    pub body: &'a [u8],
    /// The body's similarity cluster when near-duplicate detection is on: near-duplicates then
    /// fingerprint alike.
    pub cluster: Option<u64>,
    pub json: Option<&'a serde_json::Value>,
}

/// The 64-bit fingerprint of the configured fields (length-prefixed so fields cannot run into
/// each other). [`crate::fasthash`]: SHA-256 in software costs microseconds per request in a Wasm
/// VM; see there for why a fast hash is enough here.
pub fn fingerprint(fields: &[Field], head: &Head, client: Option<IpAddr>, body: &BodyParts<'_>) -> u64 {
    let mut h = FastHasher::new();
    for field in fields {
        match field {
            Field::Header(name) => {
                for v in head.all(name) {
                    feed(&mut h, v);
                }
                h.part(b"\xff");
            }
            Field::Path => feed(&mut h, head.path()),
            Field::Method => feed(&mut h, head.method()),
            Field::Query => feed(&mut h, head.query()),
            Field::ClientIp => match client {
                Some(IpAddr::V4(a)) => feed(&mut h, &a.octets()),
                Some(IpAddr::V6(a)) => feed(&mut h, &a.octets()),
                None => feed(&mut h, b""),
            },
            Field::Body => match body.cluster {
                Some(c) => feed(&mut h, &c.to_le_bytes()),
                None => feed(&mut h, body.body),
            },
            Field::Json(path) => {
                let v = body.json.and_then(|j| path.iter().try_fold(j, |v, k| v.get(k)));
                feed(&mut h, v.map(|v| v.to_string()).unwrap_or_default().as_bytes());
            }
        }
    }
    h.finish()
}

fn feed(h: &mut FastHasher, bytes: &[u8]) {
    h.part(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&str, &[u8])], peer: &str) -> Head {
        Head { headers: pairs.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(), peer: peer.parse().ok() }
    }

    #[test]
    fn trusted_depth_picks_the_hop_the_proxy_wrote() {
        let h = head(&[("x-forwarded-for", b"6.6.6.6, 203.0.113.7")], "10.0.0.1");
        assert_eq!(client_ip(&h, 1).0, "203.0.113.7".parse().ok());
        assert_eq!(client_ip(&h, 2).0, "6.6.6.6".parse().ok());
        assert_eq!(client_ip(&h, 0).0, "10.0.0.1".parse().ok());
        // Fewer hops than trusted proxies: the left-most hop.
        assert_eq!(client_ip(&h, 5).0, "6.6.6.6".parse().ok());
    }

    #[test]
    fn duplicated_xff_headers_are_one_list() {
        let h = head(&[("x-forwarded-for", b"1.1.1.1"), ("x-forwarded-for", b"2.2.2.2")], "10.0.0.1");
        assert_eq!(client_ip(&h, 1).0, "2.2.2.2".parse().ok());
    }

    #[test]
    fn garbage_xff_falls_back_to_peer() {
        let h = head(&[("x-forwarded-for", b"\xff\xfe, nonsense")], "10.0.0.1");
        assert_eq!(client_ip(&h, 1), ("10.0.0.1".parse().ok(), IpSource::BadForwardedFor));
        let h = head(&[("x-forwarded-for", b"[2001:db8::1]:443")], "10.0.0.1");
        assert_eq!(client_ip(&h, 1).0, "2001:db8::1".parse().ok());
        let h = head(&[("x-forwarded-for", b"::ffff:192.0.2.1")], "10.0.0.1");
        assert_eq!(client_ip(&h, 1).0, "192.0.2.1".parse().ok());
    }

    #[test]
    fn path_query_and_spoofed_headers() {
        let h = head(&[(":path", b"/a/b?x=1"), ("x-botgate-score", b"0"), ("x-botgate-score", b"0")], "10.0.0.1");
        assert_eq!(h.path(), b"/a/b");
        assert_eq!(h.query(), b"x=1");
        assert_eq!(h.spoofed_botgate_headers(), vec!["x-botgate-score".to_string()]);
    }

    #[test]
    fn fingerprint_depends_on_fields_only() {
        let fields = vec![Field::Header("user-agent".into()), Field::Json(vec!["model".into()])];
        let j1 = serde_json::json!({"model": "gpt", "prompt": "a"});
        let j2 = serde_json::json!({"model": "gpt", "prompt": "b"});
        let h = head(&[("user-agent", b"bot/1")], "10.0.0.1");
        let parts = |j| BodyParts { body: b"", cluster: None, json: Some(j) };
        assert_eq!(fingerprint(&fields, &h, None, &parts(&j1)), fingerprint(&fields, &h, None, &parts(&j2)));
        let h2 = head(&[("user-agent", b"bot/2")], "10.0.0.1");
        assert_ne!(fingerprint(&fields, &h, None, &parts(&j1)), fingerprint(&fields, &h2, None, &parts(&j1)));
    }
}
