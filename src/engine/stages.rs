//! The stages after the waits, in request order: detect, observe (the request recorded in its
//! session, and the signals it gives), the challenge answered in headers, score, rule. Each reads
//! what the ones before found in the request's [`Visit`] and adds its own. (Identify is in
//! `identify.rs`, act in `act.rs`.)

use super::act::{passed, StepUpCall};
use super::admit::rate_limit_reason;
use super::{Engine, Pending};
use crate::base::telemetry::Counter;
use crate::challenge::gate::{self, Judged, Who};
use crate::decision::record::{Decision, Verdict};
use crate::decision::ruling::{self, Facts, Ruling};
use crate::identity::client::Client;
use crate::identity::session::SessionKey;
use crate::identity::visitor::Presented;
use crate::policy::{DetectorAction, RiskTier};
use crate::request::fetch::{self, Fetch};
use crate::request::head::Head;
use crate::score::campaigns;
use crate::score::headers::{header_signals, submission_signal};
use crate::score::session::session_signals;
use crate::score::signal::{self, Signal};

/// Weight of the newest request in the session's smoothed score.
const SESSION_ALPHA: f64 = 0.3;

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
    pub first: bool,
    pub requests: usize,
    /// The sequence rule the session broke.
    pub broken: Option<String>,
    // score
    /// The score a warn-mode detector's signal left out: what is enforced.
    pub enforce_score: f64,
    pub challenge_failed: bool,
    pub step_up_pending: bool,
    pub step_up: Option<StepUpCall>,
    /// What enforcement would have done, when warn or observe mode let the request pass.
    pub would: Option<Verdict>,
}

impl Visit<'_> {
    /// Who the request is for, as tokens and puzzles bind it (a SHA-256: made once).
    pub fn who(&mut self) -> &Who {
        let (key, head, client, now) = (self.key, self.head, self.client.ip, self.now);
        self.who.get_or_insert_with(|| Who::new(key, head, client, now))
    }

    fn warn_only(&self) -> bool {
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
    d
}

impl Engine {
    /// The detect stage: the request's fingerprint and body in the detector's windows. Starts the
    /// request's [`Visit`].
    pub(super) fn detect<'a>(
        &mut self,
        head: &'a Head,
        p: &'a Pending,
        body: &[u8],
        now: u64,
        d: &mut Decision,
    ) -> Visit<'a> {
        let path = p.path(head);
        let mut v = Visit {
            head,
            path,
            client: p.client,
            now,
            tier: self.policy.endpoint_tier(head.method(), path),
            signals: Vec::with_capacity(16),
            flagged: false,
            detector_block: false,
            key: SessionKey { id: 0, authenticated: false, visitor: false },
            visitor: None,
            inherited: (false, 0.0),
            who: None,
            fetch: Fetch::Other,
            shape: 0,
            first: true,
            requests: 0,
            broken: None,
            enforce_score: 0.0,
            challenge_failed: false,
            step_up_pending: false,
            step_up: None,
            would: d.would.take(),
        };
        let Some(det) = self.detector.as_mut().filter(|d| d.config().applies(path)) else { return v };
        let hit = det.observe(head, p.client.keyed, body, now);
        d.fingerprint = Some(hit.fingerprint);
        d.fingerprint_count = hit.count;
        d.similarity = hit.near_duplicate;
        if hit.flagged {
            v.flagged = true;
            v.signals.push(Signal { name: "fingerprint_repeat", strength: 1.0 });
            self.tally.bump(Counter::FlaggedFingerprint);
            if hit.near_duplicate.is_some() {
                d.reasons.push("near_duplicate_body");
                self.tally.bump(Counter::FlaggedNearDuplicate);
            }
            v.detector_block = det.config().action == DetectorAction::Block;
        }
        v
    }

    /// The observe stage: the signals of the head, the handshake and the answered lookups; the
    /// request recorded in its session and the session's signals; the campaign view; the
    /// sequence rules.
    pub(super) fn observe(&mut self, v: &mut Visit<'_>, p: &Pending) {
        let head = v.head;
        v.shape = campaigns::shape(head);
        v.fetch = fetch::fetch_kind(head);
        header_signals(head, v.fetch, &mut v.signals);
        crate::score::tls::signal(&self.policy.tls, head, &mut v.signals);
        for (answer, asker) in p.answers.iter().zip(&self.askers) {
            v.signals.extend(asker.signal(&answer.1));
        }
        let Some(session) = self.sessions.peek_mut(v.key.id) else { return };
        session.record(v.now, v.path, v.tier <= RiskTier::High);
        session.record_network(v.client.ip, v.now);
        let referer = match v.fetch {
            Fetch::Navigation { cold: Some(false) } => fetch::in_site_referer_path(head),
            _ => None,
        };
        // As sent: referers name pages as the browser spelt them.
        session.record_fetch(v.fetch, head.path(), referer);
        // The site's rendering share: one word per session (at its second navigation), from
        // sessions nothing flags.
        let unflagged = session.score < 0.3 && !session.challenge_failed;
        if matches!(v.fetch, Fetch::Navigation { .. }) && session.navigations == 2 && unflagged {
            self.rendering.record(session.subresources > 0);
        }
        let profile = session.profile(v.now);
        v.first = profile.requests <= 1;
        v.requests = profile.requests;
        session_signals(&profile, self.rendering.site_renders(), &mut v.signals);
        submission_signal(head, v.tier == RiskTier::Critical, &mut v.signals);
        // Last: it only corroborates what the other signals flag.
        let others = signal::score(&self.policy.weights, &v.signals);
        self.campaigns.signal(v.shape, v.now, others, &mut v.signals);
        v.broken = self.sequences.check(session, head.method(), v.path, v.client.keyed, v.now).map(str::to_string);
    }

    /// An API client retrying with its puzzle's solution in headers.
    pub(super) fn answer_submission(&mut self, v: &mut Visit<'_>, d: &mut Decision) {
        let Some((c, s)) = gate::header_submission(v.head) else { return };
        let id = v.key.id;
        let w = v.who();
        let Some(session) = self.sessions.peek_mut(id) else { return };
        match self.gate.judge(c, s, w, session.passed_nonce, &mut self.tally) {
            Judged::Solved(solved) => passed(d, &self.gate.pass(&solved, session, w), &self.gate),
            Judged::Failed(reason) => {
                self.gate.fail(session);
                d.reasons.push(reason);
            }
            Judged::Ignored(reason) => d.reasons.push(reason),
            Judged::AlreadyPassed => d.reasons.push("pow_already_passed"),
        }
    }

    /// The score stage: the signals combined (their reasons named), the session's smoothed
    /// score, and what the request inherits.
    pub(super) fn score(&mut self, v: &mut Visit<'_>, d: &mut Decision) {
        let weights = &self.policy.weights;
        let score = signal::combine_into(weights, &v.signals, &mut d.reasons);
        // A detector in warn mode only observes: what its signal adds is recorded, not enforced.
        v.enforce_score = if v.warn_only() {
            let quiet: Vec<Signal> = v.signals.iter().filter(|s| s.name != "fingerprint_repeat").copied().collect();
            signal::combine(weights, &quiet).0
        } else {
            score
        };
        let Some(session) = self.sessions.peek_mut(v.key.id) else { return };
        session.score = if v.first {
            v.enforce_score
        } else {
            SESSION_ALPHA * v.enforce_score + (1.0 - SESSION_ALPHA) * session.score
        };
        v.challenge_failed = session.challenge_failed || v.inherited.0;
        v.step_up_pending = session.step_up_pending;
        d.session_score = session.score.max(v.inherited.1);
        d.score = lift(v, d, score);
        d.session = Some(v.key.id);
        d.authenticated = v.key.authenticated;
        d.endpoint_tier = v.tier.number();
    }

    /// The rule stage: the block tier and the endpoint's challenge ladder
    /// ([`crate::decision::ruling`]). With the detector in warn mode, the ruling without its
    /// signal is enforced and the one with it recorded as what would have happened.
    pub(super) fn rule(&mut self, v: &mut Visit<'_>, d: &mut Decision) -> Option<Ruling> {
        if let Some(rule) = &v.broken {
            d.detail = Some(rule.clone());
        }
        let facts = Facts {
            listed: None,
            challenge_failed: v.challenge_failed,
            broken: v.broken.is_some(),
            detector_block: v.detector_block,
            authenticated: d.authenticated,
            path: v.path,
            tier: Some(v.tier),
        };
        let tiers = &self.policy.tiers;
        let ruling = ruling::rule(tiers, &facts, d.score);
        if !v.warn_only() {
            return ruling;
        }
        let enforced = ruling::rule(tiers, &facts, lift(v, d, v.enforce_score));
        if enforced.map(|r| r.verdict) != ruling.map(|r| r.verdict) {
            if let Some(r) = ruling {
                v.would = Some(r.verdict);
                d.reasons.push(r.reason);
            }
            return enforced;
        }
        ruling
    }
}

/// A score as the rules read it: lifted to the session's (and what it inherits), and to 1 for a
/// session that failed its challenge.
fn lift(v: &Visit<'_>, d: &Decision, s: f64) -> f64 {
    if v.challenge_failed {
        1.0
    } else {
        s.max(d.session_score)
    }
}
