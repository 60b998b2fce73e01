//! `vendors`: external score sources consulted through Envoy clusters, and how their answers
//! combine with botgate's own score.
//!
//! ```json
//! "vendors": [
//!   {"name": "crowdsec", "type": "crowdsec", "cluster": "crowdsec", "api_key_env": "CROWDSEC_BOUNCER_KEY",
//!    "timeout_ms": 300, "cache_seconds": 60},
//!   {"name": "acme", "type": "http_json", "cluster": "acme", "path": "/v1/score?ip={ip}",
//!    "score_pointer": "/score", "reasons_pointer": "/reasons", "weight": 2}
//! ],
//! "vendor_signals": {"combine": "max", "endpoint_tiers": ["critical", "high", "medium", "low"],
//!                    "score_band": [0.0, 1.0], "sample_rate": 1.0}
//! ```
//!
//! Which requests ask the live sources: those on `endpoint_tiers`, whose local score falls in
//! `score_band`, for the `sample_rate` share of clients. The local score there is what botgate
//! knows before the vendors answer: the session's score so far (what it inherits included), or
//! this request's header signals when higher. A band such as `[0.3, 0.75]` asks only about the
//! requests botgate is unsure of: below it botgate lets them pass on its own word, above it
//! they are challenged or blocked anyway. An answer already cached is used whatever the band;
//! stream sources are local lookups and apply to every request.

use super::reader::{Ctx, Obj};
use super::values::env_secret;
use super::RiskTier;

#[derive(Clone, PartialEq)]
pub enum Adapter {
    /// `path` may hold `{ip}`; the score (and reasons) at JSON pointers.
    HttpJson { path: String, score_pointer: String, reasons_pointer: Option<String> },
    /// CrowdSec's Local API with a bouncer key.
    CrowdSec { api_key: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: String,
    /// `vendor_<name>`: the reason it gives when it moves a decision (made once per policy).
    pub reason: &'static str,
    pub cluster: String,
    pub authority: String,
    pub timeout_ms: u64,
    pub cache_ms: u64,
    pub weight: f64,
    pub adapter: Adapter,
    /// CrowdSec in stream mode: its decisions fetched as a feed and looked up locally (no
    /// callout per client), and the last set fetched (bans, captchas).
    pub stream: Option<super::feeds::Feed>,
    pub decisions: std::sync::Arc<(crate::base::iptable::IpSet, crate::base::iptable::IpSet)>,
}

impl Source {
    /// Asked per client through a callout (not a stream kept locally).
    pub fn live(&self) -> bool {
        self.stream.is_none()
    }
}

impl std::fmt::Debug for Adapter {
    /// The bouncer key never shows.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Adapter::HttpJson { path, score_pointer, reasons_pointer } => {
                write!(f, "HttpJson {{ path: {path:?}, score_pointer: {score_pointer:?}, reasons_pointer: {reasons_pointer:?} }}")
            }
            Adapter::CrowdSec { .. } => write!(f, "CrowdSec {{ api_key: <redacted> }}"),
        }
    }
}

impl Source {
    /// The request path for a client address.
    pub fn path(&self, ip: &str) -> String {
        match &self.adapter {
            Adapter::HttpJson { path, .. } => path.replace("{ip}", ip),
            Adapter::CrowdSec { .. } => format!("/v1/decisions?ip={ip}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// The highest of botgate's score and the answers.
    Max,
    /// The weighted mean of botgate's score (weight `local_weight`) and the answers.
    WeightedMean,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vendors {
    pub sources: Vec<Source>,
    pub combine: Combine,
    pub local_weight: f64,
    /// Endpoint tiers whose requests consult the sources.
    pub tiers: Vec<RiskTier>,
    /// The local scores whose requests consult the live sources (inclusive).
    pub band: (f64, f64),
    /// The share of those requests (by client, so a client is consulted for all or none).
    pub sample_rate: f64,
}

impl Vendors {
    /// The most any one request may wait: the slowest live source's timeout.
    pub fn timeout_ms(&self) -> u64 {
        self.sources.iter().filter(|s| s.live()).map(|s| s.timeout_ms).max().unwrap_or(0)
    }

    /// How long an answer is kept: the shortest of the live sources' (one cache entry holds them).
    pub fn cache_ms(&self) -> u64 {
        self.sources.iter().filter(|s| s.live()).map(|s| s.cache_ms).min().unwrap_or(0)
    }

    /// Whether any source is asked per client (else nothing waits for a callout).
    pub fn has_live(&self) -> bool {
        self.sources.iter().any(Source::live)
    }
}

const TYPES: &[&str] = &["http_json", "crowdsec"];

pub(super) fn read(ctx: &Ctx, root: &Obj<'_>) -> Option<Vendors> {
    let mut sources = Vec::new();
    for (path, v) in root.array("vendors") {
        let Some(o) = Obj::new(ctx, path, v) else { continue };
        if let Some(s) = read_source(&o, &sources) {
            sources.push(s);
        }
        o.finish();
    }
    let settings = root.obj("vendor_signals");
    if sources.is_empty() {
        if let Some(s) = settings {
            ctx.warn(&s.path, "no vendors: these settings do nothing");
            s.informational("combine");
            s.informational("local_weight");
            s.informational("endpoint_tiers");
            s.informational("sample_rate");
            s.informational("score_band");
            s.finish();
        }
        return None;
    }
    let mut v = Vendors {
        sources,
        combine: Combine::Max,
        local_weight: 1.0,
        tiers: vec![RiskTier::Critical, RiskTier::High, RiskTier::Medium, RiskTier::Low],
        band: (0.0, 1.0),
        sample_rate: 1.0,
    };
    if let Some(s) = settings {
        v.combine = match s.choice("combine", "max", &["max", "weighted_mean"]) {
            "weighted_mean" => Combine::WeightedMean,
            _ => Combine::Max,
        };
        v.local_weight = s.f64_in("local_weight", 1.0, 0.0, 100.0);
        if s.has("endpoint_tiers") {
            v.tiers = Vec::new();
            for (p, t) in s.array("endpoint_tiers") {
                match RiskTier::parse(t) {
                    Some(t) => v.tiers.push(t),
                    None => ctx.error(&p, "not a tier (critical, high, medium, low)"),
                }
            }
        }
        v.sample_rate = s.f64_in("sample_rate", 1.0, 0.0, 1.0);
        v.band = s.unit_range("score_band", (0.0, 1.0));
        s.finish();
    }
    Some(v)
}

fn read_source(o: &Obj<'_>, earlier: &[Source]) -> Option<Source> {
    let name = o.string("name").unwrap_or_default().to_string();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        o.ctx.error(&o.child_path("name"), "letters, digits, '-' and '_' only (it is a metric label)");
    } else if earlier.iter().any(|s| s.name == name) {
        o.ctx.error(&o.child_path("name"), format!("\"{name}\" is named twice"));
    }
    let kind = o.choice("type", "http_json", TYPES);
    let cluster = o.string("cluster").map(str::to_string);
    let authority = o.string("authority").map(str::to_string);
    let timeout_ms = o.u64_in("timeout_ms", 300, 10, 10_000);
    let cache_ms = o.u64_in("cache_seconds", 60, 1, 86_400) * 1000;
    let weight = o.f64_in("weight", 1.0, 0.0, 100.0);
    let stream = o.bool("stream", false);
    let refresh_ms = o.u64_in("refresh_seconds", 10, 1, 3_600) * 1000;
    let adapter = match kind {
        "crowdsec" => {
            let key = match (o.string("api_key"), env_secret(o, "api_key_env")) {
                (Some(k), _) => Some(k.as_bytes().to_vec()),
                (None, k) => k,
            };
            if key.is_none() && !o.has("api_key_env") {
                o.ctx.error(&o.child_path("api_key_env"), "missing: the environment variable holding the bouncer key");
            }
            Adapter::CrowdSec { api_key: key.unwrap_or_default() }
        }
        _ => {
            let path = o.string("path").unwrap_or_default().to_string();
            if !path.starts_with('/') {
                o.ctx.error(&o.child_path("path"), "missing or not starting with '/' (e.g. \"/score?ip={ip}\")");
            }
            let score_pointer = o.string("score_pointer").unwrap_or_default().to_string();
            if !score_pointer.starts_with('/') {
                o.ctx.error(
                    &o.child_path("score_pointer"),
                    "a JSON pointer (RFC 6901) to a number in [0, 1], like \"/score\"",
                );
            }
            let reasons_pointer = o.string("reasons_pointer").map(str::to_string);
            Adapter::HttpJson { path, score_pointer, reasons_pointer }
        }
    };
    let Some(cluster) = cluster else {
        o.ctx.error(&o.child_path("cluster"), "missing: the Envoy cluster of the source");
        return None;
    };
    let authority = authority.unwrap_or_else(|| cluster.clone());
    let stream = match (&adapter, stream) {
        (Adapter::CrowdSec { api_key }, true) => Some(super::feeds::Feed {
            name: name.clone(),
            kind: super::feeds::Kind::Decisions,
            cluster: cluster.clone(),
            path: "/v1/decisions/stream?startup=true".into(),
            authority: authority.clone(),
            refresh_ms,
            timeout_ms: timeout_ms.max(1_000),
            secret_header: Some(super::feeds::SecretHeader {
                name: "x-api-key".into(),
                value: String::from_utf8_lossy(api_key).into_owned(),
            }),
        }),
        (_, true) => {
            o.ctx.error(&o.child_path("stream"), "only a crowdsec source can be read as a stream");
            None
        }
        _ => None,
    };
    // Reasons are static strings; a source's is made once per policy load (a few bytes).
    let reason: &'static str = Box::leak(format!("vendor_{name}").into_boxed_str());
    Some(Source {
        name,
        reason,
        cluster,
        authority,
        timeout_ms,
        cache_ms,
        weight,
        adapter,
        stream,
        decisions: Default::default(),
    })
}
