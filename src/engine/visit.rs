//! A request's [`Visit`]: what each stage after the waits found, handed to the next.

use super::admit::rate_limit_reason;
use super::Pending;
use crate::challenge::gate::Who;
use crate::decision::record::{Decision, Verdict};
use crate::identity::client::Client;
use crate::identity::session_id::SessionKey;
use crate::identity::visitor::Presented;
use crate::policy::RiskTier;
use crate::request::fetch::{Fetch, Landing};
use crate::request::head::Head;
use crate::score::signal::Signal;

/// One request's way through the stages after the waits: what each stage found, for the next.
pub(super) struct Visit<'a> {
    pub head: &'a Head,
    /// The path the rules compare (normalised).
    pub path: &'a [u8],
    pub client: Client,
    pub now: u64,
    pub tier: RiskTier,
    // detect
    pub signals: Vec<Signal>,
    /// The detector counted the request's fingerprint over its limit (judged by
    /// [`super::Engine::repeat`] once the session is known).
    pub over_limit: bool,
    /// The detector flagged the request (in warn mode it only observes).
    pub flagged: bool,
    pub detector_block: bool,
    // identify
    pub key: SessionKey,
    pub visitor: Option<Presented>,
    /// Failed for good, and the highest score, of the sessions the request answers for.
    pub inherited: (bool, f64),
    /// Who tokens and puzzles are bound to: worked out once, when first needed.
    who: Option<Who>,
    // observe
    pub fetch: Fetch,
    pub shape: u64,
    /// How this request would open a session, when it is a navigation.
    pub opens: Landing,
    /// The campaign (its shape) this request is part of: it must pass a challenge.
    pub campaign: Option<u64>,
    /// The session's requests so far, this one included.
    pub requests: usize,
    /// The sequence rule the session broke.
    pub broken: Option<String>,
    /// What the vendor sources said, when they were consulted.
    pub vendors: Option<super::vendors::Consulted>,
    // score
    /// The score a warn-mode detector's signal left out: what is enforced.
    pub enforce_score: f64,
    pub challenge_failed: bool,
    pub step_up_pending: bool,
    /// What the fleet said of the solution in the request's headers, if it was asked.
    pub spent: Option<crate::challenge::nonces::FleetSpend>,
    /// The session must pass a challenge whatever its score.
    pub must_pass: Option<&'static str>,
    pub step_up: Option<StepUpCall>,
    /// What enforcement would have done, when warn or observe mode let the request pass.
    pub would: Option<Verdict>,
}

impl<'a> Visit<'a> {
    /// A visit with nothing found yet; `would`: what the head stages' observe mode recorded.
    pub fn new(
        head: &'a Head,
        path: &'a [u8],
        client: Client,
        now: u64,
        tier: RiskTier,
        would: Option<Verdict>,
    ) -> Self {
        Visit {
            head,
            path,
            client,
            now,
            tier,
            signals: Vec::with_capacity(16),
            over_limit: false,
            flagged: false,
            detector_block: false,
            key: SessionKey { id: 0, authenticated: false, visitor: false },
            visitor: None,
            inherited: (false, 0.0),
            who: None,
            fetch: crate::request::fetch::fetch_kind(head),
            shape: 0,
            opens: Landing::Other,
            campaign: None,
            requests: 0,
            broken: None,
            vendors: None,
            enforce_score: 0.0,
            challenge_failed: false,
            step_up_pending: false,
            spent: None,
            must_pass: None,
            step_up: None,
            would,
        }
    }

    /// Who the request is for, as tokens and puzzles bind it (a SHA-256: made once).
    pub fn who(&mut self) -> &Who {
        let (key, head, client, now) = (self.key, self.head, self.client.ip, self.now);
        self.who.get_or_insert_with(|| Who::new(key, head, client, now))
    }

    pub fn warn_only(&self) -> bool {
        self.flagged && !self.detector_block
    }
}

/// The decision as the head stages left it: what observe mode let through (as `would`, which
/// the detect stage moves to the [`Visit`]), and the allow-tier checks that failed.
pub(super) fn carried(p: &Pending) -> Decision {
    let mut d = Decision::pass(p.client.ip);
    if let Some(l) = p.limited {
        // Only reached in observe mode: the limit is recorded, the request passes.
        d.would = Some(Verdict::RateLimited);
        d.reasons.push(rate_limit_reason(l.scope));
    }
    for r in &p.observed {
        d.would = Some(Verdict::Block);
        d.reasons.push(r);
    }
    d.reasons.extend(p.refused.iter().copied());
    d.bot = p.bot.clone();
    d
}

/// A call to the backend's WebAuthn step-up endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StepUpCall {
    Options,
    Verify,
}

/// What observe mode records when two stages would have acted: a block recorded on the head
/// (threat intel, an impersonating crawler) is not hidden by a later challenge.
pub(super) fn strongest(earlier: Option<Verdict>, later: Verdict) -> Option<Verdict> {
    match earlier {
        Some(Verdict::Block) => earlier,
        _ => Some(later),
    }
}
