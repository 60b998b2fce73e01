//! Rate limits, who the client is (trusted proxies, the IPv6 prefix), and the worker's table
//! bounds.

use super::reader::Obj;
use super::{values, MAX_WINDOW_SECONDS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max_requests: u32,
    pub window_ms: u64,
    /// Requests for static assets (a path ending `.js`, `.css`, `.png`, … that is not a page
    /// navigation) count too. Off by default: a page's images, scripts and fonts are not a
    /// person's requests, and a person must not be refused for a page that loads forty of them
    /// (per client they have a window of their own, see `checks::limits::ASSET_ALLOWANCE`).
    pub static_assets: bool,
    /// Over the limit: refused (429), or forwarded after the policy's `throttle_ms`.
    pub throttle: bool,
    /// Counted across the fleet too (`fleet` in the policy): the per-address limit only.
    pub fleet: bool,
}

/// Memory bounds for one worker. Every table is least-recently-used with eviction counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_clients: usize,
    pub max_fingerprints: usize,
    pub max_bodies: usize,
    /// Bytes of a request body the detector reads (the rest passes unread).
    pub max_body_bytes: usize,
    /// The request's headers may be held while its body is read (Envoy's
    /// `allow_on_headers_stop_iteration`; see `envoy` in the policy). When not, a request decided
    /// on its body sends its headers upstream first, without verdict headers, and is held at its
    /// body instead.
    pub hold_headers: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 50_000,
            max_fingerprints: 50_000,
            max_bodies: 10_000,
            max_body_bytes: 64 * 1024,
            hold_headers: true,
        }
    }
}

/// How the client's address is worked out and at what grain it is keyed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientIdentity {
    /// How many right-most `x-forwarded-for` hops are trusted proxies (0: use the peer address).
    pub trust_proxy_depth: usize,
    /// Peers whose `x-forwarded-for` is believed; from anyone else the header is ignored, so a
    /// client that connects directly can never choose its address.
    pub trusted_proxies: crate::base::iptable::IpSet,
    /// IPv6 clients are keyed by this prefix for limits, sessions and sequences: a client that
    /// rotates inside its /64 is one client.
    pub ipv6_prefix: u8,
}

impl Default for ClientIdentity {
    fn default() -> Self {
        ClientIdentity {
            trust_proxy_depth: 0,
            trusted_proxies: crate::base::iptable::IpSet::default(),
            ipv6_prefix: 64,
        }
    }
}

pub(super) fn read_rate_limit(o: Obj<'_>, per_ip: bool) -> (RateLimit, ClientIdentity) {
    let max_requests = o.u64_in("max_requests", 100, 1, 10_000_000) as u32;
    let window_seconds = o.u64_in("window_seconds", 60, 1, MAX_WINDOW_SECONDS);
    let client = if per_ip { read_client_identity(&o) } else { ClientIdentity::default() };
    let static_assets = o.bool("count_static_assets", false);
    // The global limit protects the upstream's capacity: a throttled request still reaches it.
    let answers: &[&'static str] = if per_ip { &["refuse", "throttle"] } else { &["refuse"] };
    let throttle = super::answers::refusal(&o, answers) == super::answers::Refusal::Throttle;
    let fleet = o.bool("fleet", false);
    if fleet && !per_ip {
        o.ctx.error(&o.child_path("fleet"), "only the per-address limit is counted across the fleet");
    }
    o.finish();
    (
        RateLimit { max_requests, window_ms: window_seconds * 1000, static_assets, throttle, fleet: fleet && per_ip },
        client,
    )
}

/// `trust_proxy_depth`, `trusted_proxies` and `ipv6_prefix_length`, beside the per-IP limit
/// they key (as the seed puts the depth there).
pub(super) fn read_client_identity(o: &Obj<'_>) -> ClientIdentity {
    let d = ClientIdentity::default();
    let trust_proxy_depth = o.u64_in("trust_proxy_depth", 0, 0, 16) as usize;
    let trusted_proxies = crate::base::iptable::IpSet::new(&values::cidrs(o, "trusted_proxies"));
    let ipv6_prefix = o.u64_in("ipv6_prefix_length", u64::from(d.ipv6_prefix), 32, 128) as u8;
    if trust_proxy_depth > 0 && trusted_proxies.is_empty() {
        o.ctx.warn(
            &o.child_path("trust_proxy_depth"),
            "set without trusted_proxies: x-forwarded-for is never believed and the TCP peer is the \
             client (list your load balancers' addresses in trusted_proxies)",
        );
    }
    ClientIdentity { trust_proxy_depth, trusted_proxies, ipv6_prefix }
}

pub(super) fn read_limits(o: Obj<'_>) -> Limits {
    let d = Limits::default();
    let limits = Limits {
        max_clients: o.u64_in("max_clients", d.max_clients as u64, 16, 10_000_000) as usize,
        max_fingerprints: o.u64_in("max_fingerprints", d.max_fingerprints as u64, 16, 10_000_000) as usize,
        max_bodies: o.u64_in("max_bodies", d.max_bodies as u64, 16, 1_000_000) as usize,
        max_body_bytes: o.u64_in("max_body_bytes", d.max_body_bytes as u64, 64, 16 * 1024 * 1024) as usize,
        hold_headers: d.hold_headers,
    };
    o.finish();
    limits
}

/// `envoy`: what the host's configuration allows, where the policy cannot see it.
/// `allow_on_headers_stop_iteration` must say what the filter's Envoy configuration says (Istio's
/// `WasmPlugin` and Envoy Gateway leave it unset, that is false).
pub(super) fn read_host(o: Obj<'_>, limits: &mut Limits) {
    limits.hold_headers = o.bool("allow_on_headers_stop_iteration", true);
    o.finish();
}
