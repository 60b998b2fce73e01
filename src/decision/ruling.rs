//! The rule stage: which tier a request falls in, from the facts the earlier stages found and
//! the policy's tiers. A pure function of (policy, facts, score), so the whole block tier is
//! decided here, in the policy's order.
//!
//! The block tier runs twice per request with what is known by then: on the head (only the
//! threat-intel listing is known, so a listed client is refused before it is counted or scored)
//! and after the score (a failed challenge, a broken sequence, the score threshold, then the
//! detector's own block action). Then the endpoint's severity ladder
//! ([`crate::policy::ladder`]): the challenge band the score is in, or the stronger neighbour of
//! a gap between bands.

use crate::base::telemetry::Counter;
use crate::decision::record::Verdict;
use crate::policy::answers::Refusal;
use crate::policy::ladder::{self, Rung};
use crate::policy::tiers::BlockRule;
use crate::policy::tiers::ChallengeCondition;
use crate::policy::{BlockCondition, ChallengeType, RiskTier, Tiers};

/// What the tiers need to know about a request besides its score. On the head only `listed` is
/// known ([`Facts::on_head`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The threat-intel list the client is on (known on the head).
    pub listed: Option<&'a str>,
    pub challenge_failed: bool,
    /// The session must pass a challenge whatever its score (see `Sessions::inherit`).
    /// The session must pass a challenge whatever its score, and why.
    pub must_pass: Option<&'static str>,
    /// A sequence rule the session broke.
    pub broken: bool,
    /// The detector flagged the request and its action is `block`.
    pub detector_block: bool,
    /// A vendor source asks for a block (CrowdSec `ban`): its reason.
    pub vendor_block: Option<&'static str>,
    pub authenticated: bool,
    pub path: &'a [u8],
    pub tier: Option<RiskTier>,
}

/// A tier's decision, before observe mode is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ruling {
    pub verdict: Verdict,
    /// The rule only observes: what it would do is recorded, the request passes.
    pub observe: bool,
    pub reason: &'static str,
    pub counter: Counter,
    /// Only a WebAuthn clearance skips this challenge (`require_webauthn`).
    pub webauthn_only: bool,
    /// How a block is answered (its rule's `answer`).
    pub answer: Refusal,
}

impl<'a> Facts<'a> {
    /// What the head shows: the threat-intel list the client is on, nothing else yet.
    pub fn on_head(listed: &'a str) -> Self {
        Facts { listed: Some(listed), ..Facts::default() }
    }
}

fn block(reason: &'static str, observe: bool, counter: Counter) -> Option<Ruling> {
    Some(Ruling { verdict: Verdict::Block, observe, reason, counter, webauthn_only: false, answer: Refusal::Refuse })
}

/// A block by one of the policy's rules, answered as the rule says.
fn block_by(rule: &BlockRule, reason: &'static str, counter: Counter) -> Option<Ruling> {
    block(reason, rule.observe, counter).map(|r| Ruling { answer: rule.answer, ..r })
}

/// The block tier: a failed challenge first, then the policy's rules in order, then the
/// detector's own block action. `score`: none yet on the head.
pub fn block_tier(tiers: &Tiers, f: &Facts<'_>, score: Option<f64>) -> Option<Ruling> {
    let rules = &tiers.block;
    if let Some(r) = rules.iter().find(|r| r.condition == BlockCondition::ChallengeFailed) {
        if f.challenge_failed {
            return block_by(r, "challenge_failed", Counter::BlockedChallengeFailed);
        }
    }
    for r in rules {
        match r.condition {
            BlockCondition::ThreatIntel if f.listed.is_some() => {
                return block_by(r, "ip_in_threat_intel_blocklist", Counter::BlockedThreatIntel)
            }
            BlockCondition::ImpossibleSequence if f.broken => {
                return block_by(r, "impossible_request_sequence", Counter::BlockedSequence)
            }
            BlockCondition::ScoreAbove(t) if score.is_some_and(|s| s > t) => {
                return block_by(r, "bot_score_above", Counter::BlockedScore)
            }
            _ => {}
        }
    }
    if f.detector_block {
        return block("fingerprint_repeat", false, Counter::BlockedBotDetector);
    }
    if let Some(reason) = f.vendor_block {
        // Rolled out like the block tier it is part of: observed while all its rules are.
        let observe = !rules.is_empty() && rules.iter().all(|r| r.observe);
        return block(reason, observe, Counter::BlockedVendor);
    }
    None
}

/// The block tier, then the challenge tier's ladder for the endpoint.
pub fn rule(tiers: &Tiers, f: &Facts<'_>, score: f64) -> Option<Ruling> {
    if let Some(r) = block_tier(tiers, f, Some(score)) {
        return Some(r);
    }
    let tier = f.tier.unwrap_or(RiskTier::Medium);
    let block_above = tiers.block_above();
    let applies = |c: &ChallengeCondition| c.covers(f.path, tier);
    let rung = ladder::rung(&tiers.challenge, applies, block_above.map(|b| b.0), score);
    let reason = match (rung, f.must_pass) {
        (Rung::Pass, Some(why)) => why,
        (Rung::Pass, None) => return None,
        _ => "challenge_tier",
    };
    match rung {
        // Above the top band and below the block threshold: the stronger neighbour.
        Rung::GapBlock => {
            let observe = block_above.is_some_and(|b| b.1);
            return block("score_above_challenge_band", observe, Counter::BlockedScore);
        }
        Rung::Pass | Rung::Challenge | Rung::GapChallenge => {}
    }
    // A session that must pass is challenged on every path, as a failed one is blocked on every
    // path; below every band no band's `observe` applies to it.
    let (observe, webauthn_only) =
        if rung == Rung::Pass { (false, false) } else { ladder::strictest(&tiers.challenge, applies, score) };
    // Signed-in sessions get the default type (WebAuthn step-up); anonymous ones the fallback
    // (proof of work).
    let kind = if f.authenticated || tiers.default_type == ChallengeType::ProofOfWork {
        tiers.default_type
    } else {
        tiers.fallback_type
    };
    let counter = match kind {
        ChallengeType::ProofOfWork => Counter::ChallengesPowIssued,
        ChallengeType::WebauthnStepUp => Counter::ChallengesWebauthnIssued,
    };
    Some(Ruling { verdict: Verdict::Challenge(kind), observe, reason, counter, webauthn_only, answer: Refusal::Refuse })
}
