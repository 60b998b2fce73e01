//! `tiers`: the allow / challenge / block conditions of the reference architecture.
//!
//! Read here in the seed's own vocabulary so the seed policy lints as it stands.

use super::reader::{Ctx, Obj};

#[derive(Debug, Clone, PartialEq)]
pub enum AllowCondition {
    VerifiedSearchCrawler {
        crawlers: Vec<String>,
    },
    AllowlistedApiConsumer,
    InternalMonitoring {
        cidrs: Vec<ipnet::IpNet>,
        ua_prefixes: Vec<String>,
    },
    OwnedCiCd {
        cidrs: Vec<ipnet::IpNet>,
        header: Option<(String, String)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChallengeCondition {
    pub score_range: (f64, f64),
    pub risk_tiers: Vec<RiskTier>,
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RiskTier {
    Critical = 0,
    High = 1,
    Medium = 2,
    Low = 3,
}

impl RiskTier {
    pub fn parse(s: &str) -> Option<RiskTier> {
        Some(match s {
            "critical" | "0" => RiskTier::Critical,
            "high" | "1" => RiskTier::High,
            "medium" | "2" => RiskTier::Medium,
            "low" | "3" => RiskTier::Low,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BlockCondition {
    ScoreAbove(f64),
    ThreatIntel,
    ImpossibleSequence,
    ChallengeFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeType {
    WebauthnStepUp,
    ProofOfWork,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clearance {
    pub ttl_minutes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tiers {
    pub allow: Vec<AllowCondition>,
    pub challenge: Vec<ChallengeCondition>,
    pub default_type: ChallengeType,
    pub fallback_type: ChallengeType,
    pub clearance: Clearance,
    pub block: Vec<BlockCondition>,
}

impl Default for Tiers {
    fn default() -> Self {
        Tiers {
            allow: Vec::new(),
            challenge: Vec::new(),
            default_type: ChallengeType::WebauthnStepUp,
            fallback_type: ChallengeType::ProofOfWork,
            clearance: Clearance { ttl_minutes: 30 },
            block: Vec::new(),
        }
    }
}

const CHALLENGE_TYPES: &[&str] = &["webauthn_step_up", "proof_of_work"];

pub fn read(o: Obj<'_>) -> Tiers {
    let mut tiers = Tiers::default();
    if let Some(allow) = o.obj("allow") {
        for (path, v) in allow.array("conditions") {
            if let Some(c) = Obj::new(o.ctx, path, v).and_then(read_allow) {
                tiers.allow.push(c);
            }
        }
        allow.finish();
    }
    if let Some(ch) = o.obj("challenge") {
        tiers.default_type =
            challenge_type(ch.choice("default_type", "webauthn_step_up", CHALLENGE_TYPES));
        tiers.fallback_type =
            challenge_type(ch.choice("fallback_type", "proof_of_work", CHALLENGE_TYPES));
        for (path, v) in ch.array("conditions") {
            if let Some(c) = Obj::new(o.ctx, path, v).map(read_challenge) {
                tiers.challenge.push(c);
            }
        }
        if let Some(ct) = ch.obj("clearance_token") {
            tiers.clearance.ttl_minutes = ct.u64_in("ttl_minutes", 30, 1, 7 * 24 * 60);
            ct.choice("scope", "session_id", &["session_id", "session"]);
            ct.choice("algorithm", "HS256", &["HS256"]);
            ct.finish();
        }
        ch.finish();
    }
    if let Some(block) = o.obj("block") {
        for (path, v) in block.array("conditions") {
            if let Some(c) = Obj::new(o.ctx, path, v).and_then(read_block) {
                tiers.block.push(c);
            }
        }
        block.finish();
    }
    o.finish();
    tiers
}

fn challenge_type(s: &str) -> ChallengeType {
    if s == "proof_of_work" {
        ChallengeType::ProofOfWork
    } else {
        ChallengeType::WebauthnStepUp
    }
}

const ALLOW_NAMES: &[&str] = &[
    "verified_search_crawler",
    "allowlisted_api_consumer",
    "internal_monitoring",
    "owned_ci_cd",
];

fn read_allow(o: Obj<'_>) -> Option<AllowCondition> {
    let name = o.string("name");
    let criteria = o.obj("criteria");
    o.informational("description");
    let path = o.child_path("name");
    let ctx = o.ctx;
    o.finish();
    let Some(name) = name else {
        ctx.error(&path, format!("missing; one of {}", ALLOW_NAMES.join(", ")));
        return None;
    };
    let Some(c) = criteria else {
        ctx.error(&path.replace(".name", ".criteria"), "missing");
        return None;
    };
    let cond = match name {
        "verified_search_crawler" => {
            c.bool("rdns_matches_ua", true);
            c.bool("rate_within_robots_txt", true);
            AllowCondition::VerifiedSearchCrawler {
                crawlers: c.strings("ip_in_verified_range"),
            }
        }
        "allowlisted_api_consumer" => {
            for key in [
                "has_valid_api_key",
                "api_key_not_revoked",
                "asn_not_residential_proxy",
                "rate_within_contract",
            ] {
                c.bool(key, true);
            }
            AllowCondition::AllowlistedApiConsumer
        }
        "internal_monitoring" => AllowCondition::InternalMonitoring {
            cidrs: cidrs(&c, "source_ip_in_cidr"),
            ua_prefixes: c.strings("user_agent_prefix_in"),
        },
        "owned_ci_cd" => {
            let header = c
                .string("has_internal_request_header")
                .and_then(|h| header_pair(ctx, &c.child_path("has_internal_request_header"), h));
            c.bool("header_hmac_valid", true);
            AllowCondition::OwnedCiCd {
                cidrs: cidrs(&c, "source_ip_in_cidr"),
                header,
            }
        }
        other => {
            let hint = super::reader::suggest(other, ALLOW_NAMES)
                .map(|s| format!(" (did you mean \"{s}\"?)"))
                .unwrap_or_default();
            ctx.error(
                &path,
                format!(
                    "\"{other}\" is not an allow condition; one of {}{hint}",
                    ALLOW_NAMES.join(", ")
                ),
            );
            return None;
        }
    };
    c.finish();
    Some(cond)
}

fn header_pair(ctx: &Ctx, path: &str, s: &str) -> Option<(String, String)> {
    match s.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        }
        _ => {
            ctx.error(path, format!("\"{s}\" must be \"Header-Name: value\""));
            None
        }
    }
}

pub fn cidrs(o: &Obj<'_>, key: &'static str) -> Vec<ipnet::IpNet> {
    let mut out = Vec::new();
    for (path, v) in o.array(key) {
        match v.as_str().map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        }) {
            Some(Ok(net)) => out.push(net.trunc()),
            Some(Err(_)) => o.ctx.error(
                &path,
                format!("{v} is not a CIDR (like 10.0.0.0/8 or 2001:db8::/32)"),
            ),
            None => o.ctx.error(&path, "expected a CIDR string"),
        }
    }
    out
}

fn read_challenge(o: Obj<'_>) -> ChallengeCondition {
    let mut range = (0.0, 1.0);
    let items = o.array("bot_score_range");
    match items.as_slice() {
        [(_, a), (_, b)] => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b))
                if (0.0..=1.0).contains(&a) && (0.0..=1.0).contains(&b) && a <= b =>
            {
                range = (a, b)
            }
            _ => o.ctx.error(
                &o.child_path("bot_score_range"),
                "must be [low, high] with 0 <= low <= high <= 1",
            ),
        },
        [] if !o.has("bot_score_range") => {}
        _ => o.ctx.error(
            &o.child_path("bot_score_range"),
            "must be [low, high] with 0 <= low <= high <= 1",
        ),
    }
    let mut risk_tiers = Vec::new();
    for (path, v) in o.array("action_risk_tier") {
        let text = match v {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => String::new(),
        };
        match RiskTier::parse(&text) {
            Some(t) => risk_tiers.push(t),
            None => o.ctx.error(
                &path,
                format!("{v} is not a risk tier (critical, high, medium, low or 0-3)"),
            ),
        }
    }
    let endpoints = o.strings("endpoint_in");
    o.finish();
    ChallengeCondition {
        score_range: range,
        risk_tiers,
        endpoints,
    }
}

fn read_block(o: Obj<'_>) -> Option<BlockCondition> {
    let mut found = Vec::new();
    if o.has("bot_score_above") {
        found.push(BlockCondition::ScoreAbove(o.f64_in(
            "bot_score_above",
            0.85,
            0.0,
            1.0,
        )));
    }
    for (key, cond) in [
        ("ip_in_threat_intel_blocklist", BlockCondition::ThreatIntel),
        (
            "impossible_request_sequence",
            BlockCondition::ImpossibleSequence,
        ),
        ("challenge_failed", BlockCondition::ChallengeFailed),
    ] {
        if o.has(key) && o.bool(key, false) {
            found.push(cond);
        } else {
            o.bool(key, false);
        }
    }
    let path = o.path.clone();
    let ctx = o.ctx;
    o.finish();
    match found.len() {
        0 => None,
        1 => found.pop(),
        _ => {
            ctx.error(&path, "one condition per list item, as in the seed policy");
            None
        }
    }
}
