//! `tiers`: the allow / challenge / block conditions of the three-tier architecture, in the seed
//! policy's own words, plus what botgate needs to check them (keys, headers, CIDRs).
//!
//! A condition whose keys or lists are not configured is accepted with a warning and never
//! matches: nothing is allowlisted on a check that cannot be made.

use super::reader::{Ctx, Obj};
use super::{RateLimit, MAX_WINDOW_SECONDS};
use crate::base::iptable::IpSet;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tiers {
    pub monitoring: Vec<Monitoring>,
    pub ci: Vec<CiCd>,
    pub api: Vec<ApiConsumers>,
    /// `verified_search_crawler` is listed: crawler verification is not built yet, so it never
    /// matches and a crawler user agent earns nothing.
    pub crawler_listed: bool,
    pub challenge: Vec<ChallengeCondition>,
    pub default_type: ChallengeType,
    pub fallback_type: ChallengeType,
    pub clearance: Clearance,
    pub settings: ChallengeSettings,
    pub block: Vec<BlockRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Monitoring {
    pub cidrs: IpSet,
    pub ua_prefixes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HmacKey {
    pub id: String,
    pub secret: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CiCd {
    pub cidrs: IpSet,
    /// `has_internal_request_header: "X-Internal-Pipeline: true"`, as (lower-case name, value).
    pub header: Option<(String, String)>,
    pub hmac_required: bool,
    pub keys: Vec<HmacKey>,
    pub signature_header: String,
    pub timestamp_header: String,
    pub max_skew_s: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub sha256: [u8; 32],
    pub expires_unix: Option<u64>,
    pub revoked: bool,
    pub contract: Option<RateLimit>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiConsumers {
    pub header: String,
    pub keys: Vec<ApiKey>,
    pub check_revoked: bool,
    pub check_contract: bool,
    pub residential: Option<IpSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum RiskTier {
    Critical = 0,
    High = 1,
    #[default]
    Medium = 2,
    Low = 3,
}

impl RiskTier {
    pub fn parse(v: &Value) -> Option<RiskTier> {
        let text = match v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.to_ascii_lowercase(),
            _ => return None,
        };
        Some(match text.as_str() {
            "critical" | "0" => RiskTier::Critical,
            "high" | "1" => RiskTier::High,
            "medium" | "2" => RiskTier::Medium,
            "low" | "3" => RiskTier::Low,
            _ => return None,
        })
    }

    pub fn number(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChallengeCondition {
    pub score_range: (f64, f64),
    pub risk_tiers: Vec<RiskTier>,
    /// `endpoint_in`: normalised paths, each covering itself and the paths below it.
    pub endpoints: Vec<String>,
    pub observe: bool,
    /// Where this condition challenges a signed-in session, only a WebAuthn step-up clears it
    /// (token `amr: webauthn`): a proof of work cannot stand in.
    pub require_webauthn: bool,
}

impl ChallengeCondition {
    /// Whether the condition applies to an endpoint: listed, of a listed risk tier, or every
    /// endpoint when it names neither.
    pub fn covers(&self, path: &[u8], tier: RiskTier) -> bool {
        let any_endpoint = self.risk_tiers.is_empty() && self.endpoints.is_empty();
        any_endpoint
            || self.risk_tiers.contains(&tier)
            || self.endpoints.iter().any(|e| crate::request::path::covers(e.as_bytes(), path))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChallengeType {
    #[default]
    WebauthnStepUp,
    ProofOfWork,
}

impl ChallengeType {
    pub fn name(self) -> &'static str {
        match self {
            ChallengeType::WebauthnStepUp => "webauthn_step_up",
            ChallengeType::ProofOfWork => "proof_of_work",
        }
    }
}

/// `clearance_token`: what a passed challenge earns.
#[derive(Debug, Clone, PartialEq)]
pub struct Clearance {
    pub ttl_minutes: u64,
    /// Signing keys: the first signs, all verify (rotation). They also sign proof-of-work
    /// challenges, whose form (`v1.…`) cannot be mistaken for a token's (`eyJ…`).
    pub keys: Vec<crate::base::mac::Key>,
    /// The cookie's `Secure` attribute (turn off only for plain-HTTP demos).
    pub cookie_secure: bool,
}

impl Default for Clearance {
    fn default() -> Self {
        Clearance { ttl_minutes: 30, keys: Vec::new(), cookie_secure: true }
    }
}

/// `proof_of_work`, `webauthn_step_up` and the failure limits of the challenge tier.
#[derive(Debug, Clone, PartialEq)]
pub struct ChallengeSettings {
    /// Leading hex zeros asked of a first attempt (raised after failures and for high scores).
    pub difficulty: u8,
    pub expires_seconds: u64,
    /// Failed or expired submissions before the session is `challenge_failed`.
    pub max_failures: u8,
    /// Challenges issued to one session without a pass before it is `challenge_failed`: a
    /// client that reloads forever instead of solving stops getting new puzzles.
    pub max_attempts: u8,
    /// The backend's WebAuthn endpoints, called by the step-up page.
    pub webauthn_options_url: Option<String>,
    pub webauthn_verify_url: Option<String>,
}

impl Default for ChallengeSettings {
    fn default() -> Self {
        ChallengeSettings {
            difficulty: 4,
            expires_seconds: 300,
            max_failures: 3,
            max_attempts: 10,
            webauthn_options_url: None,
            webauthn_verify_url: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BlockCondition {
    ScoreAbove(f64),
    ThreatIntel,
    ImpossibleSequence,
    ChallengeFailed,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockRule {
    pub condition: BlockCondition,
    pub observe: bool,
}

impl Tiers {
    /// The block threshold (`bot_score_above`) and whether its rule only observes.
    pub fn block_above(&self) -> Option<(f64, bool)> {
        self.block.iter().find_map(|r| match r.condition {
            BlockCondition::ScoreAbove(t) => Some((t, r.observe)),
            _ => None,
        })
    }
}

/// The cookie that carries a clearance token (named here, with the settings that must not
/// collide with it).
pub const CLEARANCE_COOKIE: &str = "botgate_clearance";

/// Challenge types botgate can issue. Image and audio CAPTCHAs are not among them, by design.
pub const CHALLENGE_TYPES: &[&str] = &["webauthn_step_up", "proof_of_work"];

pub fn read(o: Obj<'_>) -> Tiers {
    let mut tiers = Tiers::default();
    if let Some(allow) = o.obj("allow") {
        for (path, v) in allow.array("conditions") {
            if let Some(c) = Obj::new(o.ctx, path, v) {
                read_allow(c, &mut tiers);
            }
        }
        allow.finish();
    }
    if let Some(ch) = o.obj("challenge") {
        tiers.default_type = challenge_type(&ch, "default_type", "webauthn_step_up");
        tiers.fallback_type = challenge_type(&ch, "fallback_type", "proof_of_work");
        for (path, v) in ch.array("conditions") {
            if let Some(c) = Obj::new(o.ctx, path, v).map(read_challenge) {
                tiers.challenge.push(c);
            }
        }
        if let Some(ct) = ch.obj("clearance_token") {
            tiers.clearance = read_clearance(ct);
        }
        tiers.settings = read_settings(&ch);
        if !tiers.challenge.is_empty() && tiers.clearance.keys.is_empty() {
            ch.ctx.warn(
                &ch.child_path("clearance_token"),
                "no keys: a random key is generated at start and shared by the workers of one Envoy; \
                 clearance tokens end with the process and no backend can mint them (add clearance_token.keys)",
            );
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

fn read_clearance(ct: Obj<'_>) -> Clearance {
    let ttl_minutes = ct.u64_in("ttl_minutes", 30, 1, 7 * 24 * 60);
    ct.choice("scope", "session_id", &["session_id", "session"]);
    ct.choice("algorithm", "HS256", &["HS256"]);
    let keys =
        named_secrets(&ct, "keys", 32, "a clearance key needs at least 32 bytes (HS256 keys as long as the hash)")
            .into_iter()
            .map(|(id, secret)| crate::base::mac::Key { id, secret })
            .collect();
    let cookie_secure = ct.bool("cookie_secure", true);
    ct.finish();
    Clearance { ttl_minutes, keys, cookie_secure }
}

fn read_settings(ch: &Obj<'_>) -> ChallengeSettings {
    let mut s = ChallengeSettings::default();
    if let Some(p) = ch.obj("proof_of_work") {
        s.difficulty = p.u64_in("difficulty", 4, 1, 6) as u8;
        s.expires_seconds = p.u64_in("expires_seconds", 300, 10, 3600);
        p.finish();
    }
    if let Some(w) = ch.obj("webauthn_step_up") {
        for (key, slot) in [("options_url", &mut s.webauthn_options_url), ("verify_url", &mut s.webauthn_verify_url)] {
            match w.string(key) {
                Some(u) if u.starts_with('/') && !u.starts_with("//") => *slot = Some(u.to_string()),
                Some(_) => w.ctx.error(&w.child_path(key), "a path on this site, starting with /"),
                None => {}
            }
        }
        if s.webauthn_options_url.is_none() || s.webauthn_verify_url.is_none() {
            w.ctx.warn(&w.path, "needs options_url and verify_url: the step-up page cannot call the backend");
        }
        w.finish();
    }
    s.max_failures = ch.u64_in("max_failures", 3, 1, 20) as u8;
    s.max_attempts = ch.u64_in("max_attempts", 10, 1, 100) as u8;
    s
}

fn challenge_type(o: &Obj<'_>, key: &'static str, default: &'static str) -> ChallengeType {
    if let Some(s) = o.string(key) {
        if s.contains("captcha") {
            o.ctx.error(
                &o.child_path(key),
                "CAPTCHAs are never used: AI solves them; use webauthn_step_up or proof_of_work",
            );
            return ChallengeType::ProofOfWork;
        }
    }
    match o.choice(key, default, CHALLENGE_TYPES) {
        "proof_of_work" => ChallengeType::ProofOfWork,
        _ => ChallengeType::WebauthnStepUp,
    }
}

const ALLOW_NAMES: &[&str] =
    &["verified_search_crawler", "allowlisted_api_consumer", "internal_monitoring", "owned_ci_cd"];

fn read_allow(o: Obj<'_>, tiers: &mut Tiers) {
    let ctx = o.ctx;
    let name_path = o.child_path("name");
    let name = o.string("name");
    let criteria = o.obj("criteria");
    o.informational("description");
    o.finish();
    let Some(name) = name else {
        ctx.error(&name_path, format!("missing; one of {}", ALLOW_NAMES.join(", ")));
        return;
    };
    let Some(c) = criteria else {
        ctx.error(&name_path.replace(".name", ".criteria"), "missing");
        return;
    };
    match name {
        "verified_search_crawler" => {
            c.bool("rdns_matches_ua", true);
            c.bool("rate_within_robots_txt", true);
            c.strings("ip_in_verified_range");
            ctx.warn(
                &name_path,
                "crawler verification (reverse DNS + published ranges) is not built yet: this condition never matches",
            );
            tiers.crawler_listed = true;
        }
        "allowlisted_api_consumer" => tiers.api.extend(read_api(&c)),
        "internal_monitoring" => {
            let cidrs = cidrs(&c, "source_ip_in_cidr");
            let ua_prefixes = c.strings("user_agent_prefix_in");
            if cidrs.is_empty() || ua_prefixes.is_empty() {
                ctx.warn(&c.path, "needs source_ip_in_cidr and user_agent_prefix_in: this condition never matches");
            } else {
                tiers.monitoring.push(Monitoring { cidrs: IpSet::new(&cidrs), ua_prefixes });
            }
        }
        "owned_ci_cd" => tiers.ci.extend(read_ci(&c)),
        other => {
            let hint = super::reader::suggest(other, ALLOW_NAMES)
                .map(|s| format!(" (did you mean \"{s}\"?)"))
                .unwrap_or_default();
            ctx.error(
                &name_path,
                format!("\"{other}\" is not an allow condition; one of {}{hint}", ALLOW_NAMES.join(", ")),
            );
        }
    }
    c.finish();
}

fn read_ci(c: &Obj<'_>) -> Option<CiCd> {
    let cidrs = cidrs(c, "source_ip_in_cidr");
    let header = c
        .string("has_internal_request_header")
        .and_then(|h| header_pair(c.ctx, &c.child_path("has_internal_request_header"), h));
    let hmac_required = c.bool("header_hmac_valid", true);
    let keys = hmac_keys(c);
    let ci = CiCd {
        header,
        hmac_required,
        signature_header: c.string("signature_header").unwrap_or("x-ci-signature").to_ascii_lowercase(),
        timestamp_header: c.string("timestamp_header").unwrap_or("x-ci-timestamp").to_ascii_lowercase(),
        max_skew_s: c.u64_in("max_skew_seconds", 300, 1, 3600),
        cidrs: IpSet::new(&cidrs),
        keys,
    };
    if cidrs.is_empty() || (ci.hmac_required && ci.keys.is_empty()) {
        c.ctx.warn(
            &c.path,
            "needs source_ip_in_cidr and, with header_hmac_valid, hmac_keys: this condition never matches",
        );
        return None;
    }
    Some(ci)
}

fn hmac_keys(c: &Obj<'_>) -> Vec<HmacKey> {
    named_secrets(c, "hmac_keys", 16, "an HMAC secret needs at least 16 bytes")
        .into_iter()
        .map(|(id, secret)| HmacKey { id, secret })
        .collect()
}

/// A list of `{id, secret | secret_env}` under `field`: (id, secret) pairs, each secret at least
/// `min_len` bytes (a shorter one is an error saying `too_short`).
fn named_secrets(o: &Obj<'_>, field: &'static str, min_len: usize, too_short: &str) -> Vec<(String, Vec<u8>)> {
    let mut keys = Vec::new();
    for (path, v) in o.array(field) {
        let Some(k) = Obj::new(o.ctx, path, v) else { continue };
        let id = k.string("id").unwrap_or("").to_string();
        if let Some(secret) = secret(&k, "secret", "secret_env") {
            if secret.len() < min_len {
                k.ctx.error(&k.path, too_short);
            } else {
                keys.push((id, secret));
            }
        }
        k.finish();
    }
    keys
}

/// A secret given inline (development) or by environment variable (`vm_config.environment_variables`).
/// Never logged.
fn secret(k: &Obj<'_>, inline: &'static str, env: &'static str) -> Option<Vec<u8>> {
    match k.string(inline) {
        Some(s) => Some(s.as_bytes().to_vec()),
        None => env_secret(k, env),
    }
}

fn env_secret(k: &Obj<'_>, env: &'static str) -> Option<Vec<u8>> {
    let name = k.string(env)?;
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v.into_bytes()),
        _ => {
            k.ctx.warn(&k.child_path(env), format!("environment variable {name} is not set: this key is unusable"));
            None
        }
    }
}

fn read_api(c: &Obj<'_>) -> Option<ApiConsumers> {
    c.bool("has_valid_api_key", true);
    let check_revoked = c.bool("api_key_not_revoked", true);
    let check_residential = c.bool("asn_not_residential_proxy", true);
    let check_contract = c.bool("rate_within_contract", true);
    let header = c.string("api_key_header").unwrap_or("x-api-key").to_ascii_lowercase();
    let residential = cidrs(c, "residential_proxy_cidrs");
    let mut keys = Vec::new();
    for (path, v) in c.array("keys") {
        if let Some(k) = Obj::new(c.ctx, path, v).and_then(read_api_key) {
            keys.push(k);
        }
    }
    if check_residential && residential.is_empty() {
        c.ctx
            .warn(&c.child_path("residential_proxy_cidrs"), "empty: asn_not_residential_proxy cannot exclude anything");
    }
    if keys.is_empty() {
        c.ctx.warn(&c.path, "no usable keys: this condition never matches");
        return None;
    }
    Some(ApiConsumers {
        header,
        keys,
        check_revoked,
        check_contract,
        residential: check_residential.then(|| IpSet::new(&residential)),
    })
}

fn read_api_key(k: Obj<'_>) -> Option<ApiKey> {
    let id = k.string("id").unwrap_or("").to_string();
    let hex = match k.string("sha256") {
        Some(h) => Some(h.to_string()),
        None => env_secret(&k, "sha256_env").and_then(|b| String::from_utf8(b).ok()),
    };
    // A mistyped expiry is an error, never "does not expire".
    let expires_unix = k.get("expires").and_then(|v| {
        let bad = |what: String| {
            k.ctx.error(
                &k.child_path("expires"),
                format!("{what} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, years 1970-9999) or unix seconds"),
            );
            None
        };
        match v {
            Value::Number(n) => n.as_u64().or_else(|| bad(n.to_string())),
            Value::String(s) => parse_date(s).or_else(|| bad(format!("\"{s}\""))),
            other => bad(other.to_string()),
        }
    });
    let revoked = k.bool("revoked", false);
    let contract = k.obj("contract").map(|o| {
        let max_requests = o.u64_in("max_requests", 100, 1, 10_000_000) as u32;
        let window = o.u64_in("window_seconds", 60, 1, MAX_WINDOW_SECONDS);
        o.finish();
        RateLimit { max_requests, window_ms: window * 1000 }
    });
    k.informational("owner");
    let path = k.child_path("sha256");
    let ctx = k.ctx;
    k.finish();
    let hex = hex?;
    match decode_hex32(&hex) {
        Some(sha256) => Some(ApiKey { id, sha256, expires_unix, revoked, contract }),
        None => {
            ctx.error(&path, "must be the key's SHA-256 as 64 hex digits (keys are never stored in clear)");
            None
        }
    }
}

pub fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.trim().as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` as unix seconds (UTC).
pub fn parse_date(s: &str) -> Option<u64> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, t.trim_end_matches('Z')),
        None => (s, "00:00:00"),
    };
    let d: Vec<i64> = date.split('-').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let t: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let (&[y, m, day], &[hh, mm, ss]) = (d.as_slice(), t.as_slice()) else { return None };
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || hh > 23
        || mm > 59
        || ss > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
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
        match v.as_str().map(parse_cidr) {
            Some(Some(net)) => out.push(net),
            Some(None) => o.ctx.error(&path, format!("{v} is not a CIDR (like 10.0.0.0/8 or 2001:db8::/32)")),
            None => o.ctx.error(&path, "expected a CIDR string"),
        }
    }
    out
}

pub fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
}

fn read_challenge(o: Obj<'_>) -> ChallengeCondition {
    let mut range = (0.0, 1.0);
    let bad_range = "must be [low, high] with 0 <= low <= high <= 1";
    match o.array("bot_score_range").as_slice() {
        [(_, a), (_, b)] => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) if (0.0..=1.0).contains(&a) && (0.0..=1.0).contains(&b) && a <= b => range = (a, b),
            _ => o.ctx.error(&o.child_path("bot_score_range"), bad_range),
        },
        [] if !o.has("bot_score_range") => {}
        _ => o.ctx.error(&o.child_path("bot_score_range"), bad_range),
    }
    let mut risk_tiers = Vec::new();
    for (path, v) in o.array("action_risk_tier") {
        match RiskTier::parse(v) {
            Some(t) => risk_tiers.push(t),
            None => o.ctx.error(&path, format!("{v} is not a risk tier (critical, high, medium, low or 0-3)")),
        }
    }
    let endpoints = o.strings("endpoint_in");
    for (i, e) in endpoints.iter().enumerate() {
        super::plane::rooted(o.ctx, &format!("{}[{i}]", o.child_path("endpoint_in")), e);
    }
    let observe = o.bool("observe", false);
    let require_webauthn = o.bool("require_webauthn", false);
    if risk_tiers.is_empty() && endpoints.is_empty() {
        o.ctx.warn(&o.path, "no action_risk_tier or endpoint_in: applies to every endpoint");
    }
    o.finish();
    ChallengeCondition { score_range: range, risk_tiers, endpoints, observe, require_webauthn }
}

fn read_block(o: Obj<'_>) -> Option<BlockRule> {
    let mut found = Vec::new();
    if o.has("bot_score_above") {
        found.push(BlockCondition::ScoreAbove(o.f64_in("bot_score_above", 0.85, 0.0, 1.0)));
    }
    for (key, cond) in [
        ("ip_in_threat_intel_blocklist", BlockCondition::ThreatIntel),
        ("impossible_request_sequence", BlockCondition::ImpossibleSequence),
        ("challenge_failed", BlockCondition::ChallengeFailed),
    ] {
        if o.bool(key, false) {
            found.push(cond);
        }
    }
    let observe = o.bool("observe", false);
    let path = o.path.clone();
    let ctx = o.ctx;
    o.finish();
    match found.as_slice() {
        [] => None,
        [condition] => Some(BlockRule { condition: *condition, observe }),
        _ => {
            ctx.error(&path, "one condition per list item, as in the seed policy");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-11-22T10:00:00Z"), Some(1_795_341_600));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("soon"), None);
        assert_eq!(parse_date("99999999999999-01-01"), None, "no overflow into a far past or future");
        assert_eq!(parse_date("1969-12-31"), None);
    }

    #[test]
    fn a_mistyped_api_key_expiry_is_an_error_not_never_expires() {
        for expires in ["1.5e9", "-1", "true", "\"2027-02-30x\"", "\"99999-01-01\"", "[]"] {
            let policy = format!(
                r#"{{"tiers":{{"allow":{{"conditions":[{{"name":"allowlisted_api_consumer","criteria":{{"keys":[
                {{"id":"k","sha256":"{}","expires":{expires}}}]}}}}]}}}}}}"#,
                "ab".repeat(32)
            );
            let parsed = crate::policy::parse(policy.as_bytes());
            assert!(parsed.policy.is_none(), "{expires}: {:?}", parsed.diags);
            assert!(parsed.errors().any(|d| d.path.ends_with("expires")), "{expires}: {:?}", parsed.diags);
        }
    }

    #[test]
    fn hex() {
        assert!(decode_hex32(&"ab".repeat(32)).is_some());
        assert!(decode_hex32("abc").is_none());
        assert!(decode_hex32(&"zz".repeat(32)).is_none());
    }
}
