//! `tiers`: the allow / challenge / block conditions of the three-tier architecture, in the seed
//! policy's own words, plus what botgate needs to check them (keys, headers, CIDRs).
//!
//! A condition whose keys or lists are not configured is accepted with a warning and never
//! matches: nothing is allowlisted on a check that cannot be made.

use super::allow::{read_allow, Allowed, ApiConsumers, CiCd, Monitoring, Stewardship};
use super::reader::Obj;
use super::values::named_secrets;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tiers {
    pub monitoring: Vec<Monitoring>,
    pub ci: Vec<CiCd>,
    pub api: Vec<ApiConsumers>,
    /// `verified_search_crawler` as listed (the crawler table is [`super::Policy::crawlers`]).
    pub crawler: Option<super::crawlers::CrawlerCondition>,
    /// Every allow condition's `owner`, `justification` and `expires` as written, in order, even
    /// of a condition that never matches (its keys unset): for the audit ([`super::audit`]).
    pub stewardship: Vec<Stewardship>,
    pub challenge: Vec<ChallengeCondition>,
    pub default_type: ChallengeType,
    pub fallback_type: ChallengeType,
    pub clearance: Clearance,
    pub settings: ChallengeSettings,
    pub block: Vec<BlockRule>,
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
    /// How the refusal is answered (`answer`: refuse, tarpit or decoy).
    pub answer: super::answers::Refusal,
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
                match read_allow(c, &mut tiers.stewardship) {
                    Some(Allowed::Monitoring(m)) => tiers.monitoring.push(m),
                    Some(Allowed::Ci(ci)) => tiers.ci.push(ci),
                    Some(Allowed::Api(api)) => tiers.api.push(api),
                    Some(Allowed::Crawler(c)) => tiers.crawler = Some(c),
                    None => {}
                }
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

fn read_challenge(o: Obj<'_>) -> ChallengeCondition {
    let range = o.unit_range("bot_score_range", (0.0, 1.0));
    let mut risk_tiers = Vec::new();
    for (path, v) in o.array("action_risk_tier") {
        match RiskTier::parse(v) {
            Some(t) => risk_tiers.push(t),
            None => o.ctx.error(&path, format!("{v} is not a risk tier (critical, high, medium, low or 0-3)")),
        }
    }
    let endpoints = o.strings("endpoint_in");
    for (i, e) in endpoints.iter().enumerate() {
        super::values::rooted(o.ctx, &format!("{}[{i}]", o.child_path("endpoint_in")), e);
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
    let answer = super::answers::refusal(&o, &["refuse", "tarpit", "decoy"]);
    let path = o.path.clone();
    let ctx = o.ctx;
    o.finish();
    match found.as_slice() {
        [] => None,
        [condition] => Some(BlockRule { condition: *condition, observe, answer }),
        _ => {
            ctx.error(&path, "one condition per list item, as in the seed policy");
            None
        }
    }
}
