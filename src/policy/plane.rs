//! The decision plane's settings beside `tiers`: sessions, endpoint risk tiers, score weights,
//! threat-intel lists, TLS fingerprints and request-sequence rules.

use super::reader::Obj;
use super::tiers::RiskTier;
use super::tls;
use super::values::{cidrs, rooted};
use crate::base::iptable::IpSet;

#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// Cookie naming a signed-in session.
    pub cookie: Option<String>,
    /// Header naming a signed-in session (API clients).
    pub header: Option<String>,
    pub ttl_ms: u64,
    pub max_sessions: usize,
    pub visitor: VisitorCookie,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            cookie: None,
            header: None,
            ttl_ms: 30 * 60 * 1000,
            max_sessions: 50_000,
            visitor: VisitorCookie::default(),
        }
    }
}

/// The signed visitor cookie that keeps an anonymous session across addresses (see
/// [`crate::identity::visitor`]); signed with the clearance keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorCookie {
    pub enabled: bool,
    pub name: String,
    pub max_age_s: u64,
}

impl Default for VisitorCookie {
    fn default() -> Self {
        VisitorCookie { enabled: true, name: "botgate_visitor".into(), max_age_s: 3600 }
    }
}

fn read_visitor(o: Obj<'_>) -> VisitorCookie {
    let d = VisitorCookie::default();
    let name = o.string("name").map_or(d.name, str::to_string);
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        o.ctx.error(&o.child_path("name"), format!("{name:?} is not a cookie name (RFC 6265 token)"));
    }
    let v = VisitorCookie {
        enabled: o.bool("enabled", true),
        name,
        max_age_s: o.u64_in("max_age_seconds", d.max_age_s, 60, 7 * 86_400),
    };
    o.finish();
    v
}

pub fn read_session(o: Obj<'_>) -> SessionConfig {
    let d = SessionConfig::default();
    let s = SessionConfig {
        cookie: o.string("cookie").map(str::to_string),
        header: o.string("header").map(str::to_ascii_lowercase),
        ttl_ms: o.u64_in("ttl_seconds", d.ttl_ms / 1000, 10, 7 * 86_400) * 1000,
        max_sessions: o.u64_in("max_sessions", d.max_sessions as u64, 16, 10_000_000) as usize,
        visitor: o.obj("visitor_cookie").map(read_visitor).unwrap_or_default(),
    };
    if s.cookie.as_deref() == Some(s.visitor.name.as_str()) || s.visitor.name == super::tiers::CLEARANCE_COOKIE {
        o.ctx.error(
            &o.child_path("visitor_cookie.name"),
            "must differ from the signed-in session cookie and from botgate_clearance",
        );
    }
    o.finish();
    s
}

/// `beacon`: the silent challenge added to HTML pages ([`crate::challenge::beacon`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeaconConfig {
    pub enabled: bool,
    /// Bytes of a page searched for `</head>` or `<body>` before it is left alone.
    pub scan_bytes: usize,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        BeaconConfig { enabled: false, scan_bytes: 64 * 1024 }
    }
}

pub fn read_beacon(o: Obj<'_>) -> BeaconConfig {
    let d = BeaconConfig::default();
    let b = BeaconConfig {
        enabled: o.bool("enabled", true),
        scan_bytes: o.u64_in("scan_bytes", d.scan_bytes as u64, 1024, 1024 * 1024) as usize,
    };
    o.finish();
    b
}

/// `paths`: how request paths compare with the policy's (see [`crate::request::path`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathSettings {
    /// The upstream treats `/Login` as `/login`: paths are compared lower-cased.
    pub case_insensitive: bool,
}

pub fn read_paths(o: Obj<'_>) -> PathSettings {
    let s = PathSettings { case_insensitive: o.bool("case_insensitive", false) };
    o.finish();
    s
}

/// A policy path, compared with the request's normalised path (and normalised itself at load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// `"path"`: this path and everything under it, segment by segment (`/checkout` covers
    /// `/checkout/confirm`, not `/checkouts`).
    Path(String),
    /// `"prefix"`: any path starting with these bytes (`/static/`, or `/v` for `/v1` and `/v2`).
    Prefix(String),
}

impl PathMatch {
    /// Whether the normalised request `path` matches.
    pub fn matches(&self, path: &[u8]) -> bool {
        match self {
            PathMatch::Path(p) => crate::request::path::covers(p.as_bytes(), path),
            PathMatch::Prefix(p) => path.starts_with(p.as_bytes()),
        }
    }

    /// The same matcher with its path in normal form.
    pub fn normalised(&self, fold_case: bool) -> PathMatch {
        match self {
            PathMatch::Path(p) => PathMatch::Path(crate::request::path::normalise_str(p, fold_case)),
            PathMatch::Prefix(p) => PathMatch::Prefix(crate::request::path::normalise_str(p, fold_case)),
        }
    }

    fn len(&self) -> usize {
        match self {
            PathMatch::Path(p) | PathMatch::Prefix(p) => p.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRule {
    pub path: PathMatch,
    /// Upper-case methods; empty means any.
    pub methods: Vec<String>,
    pub tier: RiskTier,
}

impl EndpointRule {
    pub fn matches(&self, method: &[u8], path: &[u8]) -> bool {
        self.path.matches(path) && (self.methods.is_empty() || self.methods.iter().any(|m| m.as_bytes() == method))
    }
}

/// Endpoints: the most specific matching rule (the longest path, a `path` before a `prefix` of
/// the same length); otherwise tier 2 (medium).
pub fn read_endpoints(o: &Obj<'_>) -> Vec<EndpointRule> {
    let mut rules = Vec::new();
    for (path, v) in o.array("endpoints") {
        let Some(e) = Obj::new(o.ctx, path, v) else { continue };
        let matcher = read_path_match(&e);
        let methods = e.strings("methods").iter().map(|m| m.to_ascii_uppercase()).collect();
        let tier = match e.get("tier") {
            Some(v) => RiskTier::parse(v).unwrap_or_else(|| {
                e.ctx.error(
                    &e.child_path("tier"),
                    format!("{v} is not a risk tier (critical, high, medium, low or 0-3)"),
                );
                RiskTier::Medium
            }),
            None => {
                e.ctx.error(&e.child_path("tier"), "missing");
                RiskTier::Medium
            }
        };
        e.informational("description");
        e.finish();
        if let Some(path) = matcher {
            rules.push(EndpointRule { path, methods, tier });
        }
    }
    sort_endpoints(&mut rules);
    rules
}

/// Longest first, `path` before `prefix` on a tie: the first match is the most specific.
pub fn sort_endpoints(rules: &mut [EndpointRule]) {
    rules.sort_by_key(|r| (usize::MAX - r.path.len(), matches!(r.path, PathMatch::Prefix(_))));
}

/// Weights of the behavioural signals (each adds `weight × strength` to the score, noisy-OR).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights(pub Vec<(&'static str, f64)>);

pub const SIGNALS: &[(&str, f64)] = &[
    ("missing_user_agent", 0.6),
    ("http_library_ua", 0.6),
    ("bot_ua", 0.7),
    ("non_browser_navigation", 0.5),
    ("missing_accept", 0.2),
    ("missing_accept_language", 0.25),
    ("client_hints_mismatch", 0.5),
    ("automation_tls", 0.7),
    ("velocity", 0.5),
    ("regular_intervals", 0.65),
    ("low_variety", 0.35),
    ("sensitive_share", 0.4),
    ("error_ratio", 0.4),
    ("cold_navigations", 0.15),
    ("direct_navigations", 0.65),
    ("unrendered_navigations", 0.75),
    ("phantom_referers", 0.65),
    ("address_hopping", 0.75),
    ("fingerprint_repeat", 0.9),
    ("campaign_failures", 0.6),
    // Not a score: any weight above 0 turns on the must-pass of `score::campaigns`.
    ("campaign_landings", 0.65),
    ("cold_submission", 0.15),
    ("automation_reported", 1.0),
    ("beacon_missing", 0.5),
];

impl Default for Weights {
    fn default() -> Self {
        Weights(SIGNALS.to_vec())
    }
}

impl Weights {
    pub fn of(&self, name: &str) -> f64 {
        self.0.iter().find(|(n, _)| *n == name).map_or(0.0, |(_, w)| *w)
    }
}

pub fn read_scoring(o: Obj<'_>) -> Weights {
    let mut weights = Weights::default();
    if let Some(w) = o.obj("weights") {
        for (name, default) in SIGNALS {
            let v = w.f64_in(name, *default, 0.0, 1.0);
            if let Some(slot) = weights.0.iter_mut().find(|(n, _)| n == name) {
                slot.1 = v;
            }
        }
        w.finish();
    }
    o.finish();
    weights
}

#[derive(Debug, Clone, PartialEq)]
pub struct Blocklist {
    pub name: String,
    /// Given inline.
    pub set: IpSet,
    /// Where more come from, and the last good list fetched from there.
    pub feed: Option<super::feeds::Feed>,
    pub fed: std::sync::Arc<IpSet>,
}

impl Blocklist {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.set.contains(ip) || self.fed.contains(ip)
    }
}

/// `tls_fingerprint`: the header Envoy copies the JA4 into, and the automation clients' JA4s.
pub fn read_tls(o: Obj<'_>) -> tls::Fingerprints {
    let header = o.string("header").unwrap_or("x-tls-ja4").to_ascii_lowercase();
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if header.is_empty() || !header.bytes().all(token) {
        o.ctx.error(&o.child_path("header"), format!("\"{}\" is not a header name", header.escape_debug()));
    } else if header.starts_with("x-botgate-") {
        o.ctx.error(
            &o.child_path("header"),
            "x-botgate-* headers from outside are removed before botgate reads them; use another name",
        );
    }
    let mut automation = Vec::new();
    for (path, v) in o.array("automation_clients") {
        let Some(c) = Obj::new(o.ctx, path, v) else { continue };
        let label = c.string("client").unwrap_or_default().to_string();
        if label.is_empty() {
            c.ctx.error(&c.child_path("client"), "missing: say which client this is (e.g. \"Python requests 2.34\")");
        }
        match c.string("ja4") {
            Some(ja4) => match tls::bc_of(ja4.as_bytes()) {
                Some(bc) => automation.push(tls::Client { bc, label }),
                None => c.ctx.error(
                    &c.child_path("ja4"),
                    format!("\"{}\" is not a JA4 fingerprint (a_b_c: 10 characters, then two 12-digit lower-case hex hashes)", ja4.escape_debug()),
                ),
            },
            None => c.ctx.error(&c.child_path("ja4"), "missing"),
        }
        c.finish();
    }
    if automation.is_empty() {
        o.ctx.warn(&o.path, "no automation_clients: the TLS fingerprint signal never fires");
    }
    o.finish();
    tls::Fingerprints { header, automation }
}

pub fn read_threat_intel(o: Obj<'_>) -> Vec<Blocklist> {
    let mut lists = Vec::new();
    for (path, v) in o.array("blocklists") {
        let Some(l) = Obj::new(o.ctx, path, v) else { continue };
        let name = l.string("name").unwrap_or("blocklist").to_string();
        let nets = cidrs(&l, "cidrs");
        let feed = super::feeds::read_source(&l, &name, super::feeds::Kind::Blocklist);
        if nets.is_empty() && feed.is_none() {
            l.ctx.warn(&l.path, "no cidrs and no source feed: this list never matches");
        }
        l.finish();
        lists.push(Blocklist { name, set: IpSet::new(&nets), feed, fed: Default::default() });
    }
    o.finish();
    lists
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub method: String,
    pub path: PathMatch,
}

impl Step {
    pub fn matches(&self, method: &[u8], path: &[u8]) -> bool {
        (self.method == "*" || self.method.as_bytes() == method) && self.path.matches(path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceCheck {
    /// The request must follow `step` earlier in the same session.
    RequiresPrior(Step),
    /// At most this many matching requests per second from one client address.
    MaxPerSecond(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceRule {
    pub name: String,
    pub when: Step,
    pub check: SequenceCheck,
}

/// The seed's examples, used when `impossible_request_sequence` is on and no rules are given.
pub fn default_sequence_rules() -> Vec<SequenceRule> {
    vec![
        SequenceRule {
            name: "checkout_without_cart".into(),
            when: Step { method: "POST".into(), path: PathMatch::Path("/checkout".into()) },
            check: SequenceCheck::RequiresPrior(Step { method: "GET".into(), path: PathMatch::Path("/cart".into()) }),
        },
        SequenceRule {
            name: "login_flood".into(),
            when: Step { method: "POST".into(), path: PathMatch::Path("/login".into()) },
            check: SequenceCheck::MaxPerSecond(500),
        },
    ]
}

pub fn read_sequence_rules(o: &Obj<'_>) -> Option<Vec<SequenceRule>> {
    if !o.has("sequence_rules") {
        o.informational("sequence_rules");
        return None;
    }
    let mut rules = Vec::new();
    for (path, v) in o.array("sequence_rules") {
        let Some(r) = Obj::new(o.ctx, path, v) else { continue };
        let name = r.string("name").unwrap_or("rule").to_string();
        let when = r.obj("when").and_then(read_step);
        let prior = r.obj("requires_prior").and_then(read_step);
        let rate = r.has("max_per_second").then(|| r.u64_in("max_per_second", 10, 1, 1_000_000) as u32);
        let path = r.path.clone();
        let ctx = r.ctx;
        r.finish();
        let check = match (prior, rate) {
            (Some(p), None) => SequenceCheck::RequiresPrior(p),
            (None, Some(n)) => SequenceCheck::MaxPerSecond(n),
            _ => {
                ctx.error(&path, "needs exactly one of \"requires_prior\" or \"max_per_second\"");
                continue;
            }
        };
        match when {
            Some(when) => rules.push(SequenceRule { name, when, check }),
            None => ctx.error(&format!("{path}.when"), "missing: {\"method\": \"POST\", \"path\": \"/checkout\"}"),
        }
    }
    Some(rules)
}

/// `"path"` (segment prefix) or `"prefix"` (plain prefix), exactly one of them.
fn read_path_match(o: &Obj<'_>) -> Option<PathMatch> {
    match (o.string("path"), o.string("prefix")) {
        (Some(p), None) => {
            rooted(o.ctx, &o.child_path("path"), p);
            Some(PathMatch::Path(p.to_string()))
        }
        (None, Some(p)) => {
            rooted(o.ctx, &o.child_path("prefix"), p);
            Some(PathMatch::Prefix(p.to_string()))
        }
        _ => {
            o.ctx.error(&o.path, "needs exactly one of \"path\" (this path and below it) or \"prefix\"");
            None
        }
    }
}

fn read_step(o: Obj<'_>) -> Option<Step> {
    let method = o.string("method").unwrap_or("*").to_ascii_uppercase();
    let path = read_path_match(&o);
    o.finish();
    Some(Step { method, path: path? })
}
