//! The act stage: what the ruling does to the request. A challenge is skipped by a cleared
//! session or a step-up's own calls, issued otherwise (a puzzle, or the step-up request); a block
//! or limit is counted; observe mode records what would have happened. A request that goes
//! through carries its follow-up (the upstream's status feeds the session) and, for a navigation
//! without one, a visitor cookie.

use super::visit::strongest;
use super::visit::{StepUpCall, Visit};
use super::Engine;
use crate::base::telemetry::{Counter, Tally};
use crate::challenge::gate::{self, Gate, Who};
use crate::challenge::{back, beacon};
use crate::decision::record::{ChallengeReply, Decision, FollowUp, Issued, PageBeacon, Verdict};
use crate::decision::ruling::Ruling;
use crate::identity::session_id::SessionKey;
use crate::policy::{ChallengeType, RiskTier};
use crate::request::fetch::{self, Fetch};
use crate::request::head::Head;

impl Engine {
    pub(super) fn act(&mut self, mut ruling: Option<Ruling>, v: &mut Visit<'_>, d: &mut Decision) {
        self.follow_up(v, d);
        if ruling.is_some_and(|r| matches!(r.verdict, Verdict::Challenge(_))) {
            let webauthn_only = ruling.is_some_and(|r| r.webauthn_only) && v.key.authenticated;
            if v.step_up.is_some() {
                // The step-up's own calls to the backend are how a challenge is passed.
                ruling = None;
            } else if self.cleared(v, webauthn_only) {
                // A cleared session skips the challenge tier; the block tier above still applied.
                d.reasons.push("cleared");
                ruling = None;
                if let Some(s) = self.sessions.peek_mut(v.key.id).filter(|s| s.must_pass) {
                    s.must_pass = false;
                }
            }
        }
        match ruling {
            Some(Ruling { verdict: Verdict::Challenge(kind), reason, observe, .. }) if !self.observing(observe) => {
                d.verdict = Verdict::Challenge(kind);
                d.reasons.push(reason);
                d.follow_up = None;
                let back = back::return_path(v.head);
                let (id, head) = (v.key.id, v.head);
                self.issue(d, kind, id, head, v.who(), back);
                self.puzzle_beacon(v, d);
            }
            Some(r) if !self.observing(r.observe) => {
                d.verdict = r.verdict;
                d.reasons.push(r.reason);
                self.tally.bump(r.counter);
                d.follow_up = None;
                self.grade(d, r.answer, v.head, v.now);
            }
            Some(r) => {
                v.would = strongest(v.would, r.verdict);
                d.reasons.push(r.reason);
                self.grade(d, r.answer, v.head, v.now);
            }
            // The detector in warn mode: flagged requests pass as would-block.
            None if v.flagged => v.would = v.would.or(Some(Verdict::Block)),
            None => {}
        }
        d.reasons.dedup();
        if d.verdict == Verdict::Pass {
            d.would = v.would;
            let wanted = v.visitor.is_none() && !v.key.authenticated && matches!(v.fetch, Fetch::Navigation { .. });
            let handed = if wanted { self.hand_visitor(v.key, v.now) } else { None };
            // The page's beacon comes back with the visitor cookie: it is that session's.
            let key = handed.as_ref().map_or(v.key, |h| h.1);
            if let Some((_, own)) = &handed {
                self.opened_here(own.id, v);
            }
            d.visitor = handed.map(|h| h.0);
            self.page_beacon(v, key, d);
        }
    }

    /// A visitor session copied from the address's shared one opened with this request: how it
    /// opened is this request's way, not a stranger's behind the same address.
    fn opened_here(&mut self, id: u64, v: &Visit<'_>) {
        if let Some(s) = self.sessions.peek_mut(id) {
            s.landing = v.opens;
            s.landed_in_campaign = v.campaign.is_some();
        }
    }

    /// The silent challenge inside the proof-of-work page: a browser that solves the puzzle
    /// while reporting `navigator.webdriver` is still a scripted one. Only for a session of its
    /// own (a visitor cookie or a signed-in session): the shared session of a cookieless
    /// address records no beacon ([`Engine::beacon_endpoint`]).
    fn puzzle_beacon(&mut self, v: &mut Visit<'_>, d: &mut Decision) {
        let Some(c) = d.challenge.as_mut().filter(|c| c.html && matches!(c.issued, Issued::ProofOfWork { .. })) else {
            return;
        };
        if !self.policy.beacon.enabled || !(v.key.visitor || v.key.authenticated) {
            return;
        }
        c.beacon = self.mint_beacon(v.who());
        if c.beacon.is_some() {
            self.beacon_sent(v.key.id, v.now);
        }
    }

    /// A page's beacon token for `who`, signed with the clearance key (none without one).
    fn mint_beacon(&self, who: &Who) -> Option<String> {
        let secret = &self.gate.clearance.keys.first()?.secret;
        Some(beacon::mint(secret, who, &gate::nonce()))
    }

    /// The silent challenge's token for a page navigation (the shell adds the script if the
    /// response turns out to be HTML it can add to, and says so: [`Engine::beacon_sent`]).
    fn page_beacon(&mut self, v: &mut Visit<'_>, key: SessionKey, d: &mut Decision) {
        let navigation = matches!(v.fetch, Fetch::Navigation { .. }) && v.head.method() == b"GET";
        if !self.policy.beacon.enabled || !navigation {
            return;
        }
        if self.gate.clearance.keys.is_empty() {
            return;
        }
        // For the visitor session just handed out: that session's id (the client's binding is
        // the same).
        d.beacon = Some(Box::new(PageBeacon { session: key.id, sid: gate::sid(key), client: v.client.ip, at: v.now }));
    }

    /// The token of a page's beacon, minted when the shell is about to add the script: bound
    /// to the page's client (its user agent in `head`, its network) and session.
    pub fn beacon_token(&self, b: &PageBeacon, head: &Head) -> Option<String> {
        let bnd = crate::challenge::token::client_binding(head.first("user-agent").unwrap_or(b""), b.client);
        self.mint_beacon(&Who { sid: b.sid.clone(), bnd, now: b.at })
    }

    /// What the response phase learns from: the upstream's status is read for every critical
    /// endpoint and step-up call, and for one response in four elsewhere (each read is a host
    /// call; a sampled ratio is still a ratio). A step-up call also carries the session id and
    /// client binding the backend's token must hold.
    fn follow_up(&mut self, v: &mut Visit<'_>, d: &mut Decision) {
        let critical = v.tier == RiskTier::Critical;
        v.step_up = self.step_up_endpoint(v.path);
        if critical || v.step_up.is_some() || v.requests % 4 == 1 {
            // The backend's refusal is a failed step-up only for the session's own assertion: a
            // same-origin POST while a step-up is pending (a cross-site navigation to the verify
            // URL answered 405 is nothing).
            let step_up = v.step_up == Some(StepUpCall::Verify)
                && v.head.method() == b"POST"
                && v.step_up_pending
                && fetch::same_origin(v.head);
            let verify_url = self.gate.settings.webauthn_verify_url.as_deref().map(str::as_bytes);
            let verify_call = step_up && verify_url == Some(v.head.path());
            d.follow_up =
                Some(FollowUp { session: v.key.id, shape: v.shape, critical, step_up, verify_call, at: v.now });
        }
        if v.step_up.is_some() {
            let w = v.who();
            d.step_up = Some(Box::new((w.sid.clone(), w.bnd.clone())));
        }
    }

    /// Whether the session is cleared (a pass remembered here, or a valid clearance token);
    /// `webauthn_only`: by a WebAuthn step-up.
    fn cleared(&mut self, v: &mut Visit<'_>, webauthn_only: bool) -> bool {
        let (id, head) = (v.key.id, v.head);
        let who = v.who();
        let Some(session) = self.sessions.peek_mut(id) else { return false };
        self.gate.cleared(head, who, session, webauthn_only, &mut self.tally)
    }

    /// Hands out the challenge: a puzzle, or the step-up request. A session out of attempts is
    /// `challenge_failed` instead.
    pub(super) fn issue(
        &mut self,
        d: &mut Decision,
        kind: ChallengeType,
        session: u64,
        head: &Head,
        who: &Who,
        back: Option<String>,
    ) {
        let Some(session) = self.sessions.peek_mut(session) else { return };
        // Only a request the user made here spends an attempt: another site's navigations
        // must not use up someone's.
        let counted = fetch::own_request(head);
        let issued =
            match kind {
                ChallengeType::ProofOfWork => {
                    let expires_in_s = self.gate.settings.expires_seconds;
                    self.gate
                        .issue_pow(session, d.score, who, counted)
                        .map(|(challenge, difficulty)| Issued::ProofOfWork { challenge, difficulty, expires_in_s })
                }
                ChallengeType::WebauthnStepUp => (!counted || self.gate.spend_attempt(session)).then(|| {
                    session.step_up_pending = true;
                    Issued::StepUp {
                        options_url: self.gate.settings.webauthn_options_url.clone(),
                        verify_url: self.gate.settings.webauthn_verify_url.clone(),
                        session: who.sid.clone(),
                    }
                }),
            };
        match issued {
            Some(issued) => {
                session.challenged = true;
                self.tally.bump(match kind {
                    ChallengeType::ProofOfWork => Counter::ChallengesPowIssued,
                    ChallengeType::WebauthnStepUp => Counter::ChallengesWebauthnIssued,
                });
                let html = fetch::wants_html(head);
                d.challenge = Some(Box::new(ChallengeReply { issued, html, back, beacon: None }));
            }
            None => blocked(d, &mut self.tally),
        }
    }

    fn step_up_endpoint(&self, path: &[u8]) -> Option<StepUpCall> {
        let [verify, options] = &self.step_up_paths;
        if verify.as_deref() == Some(path) {
            Some(StepUpCall::Verify)
        } else if options.as_deref() == Some(path) {
            Some(StepUpCall::Options)
        } else {
            None
        }
    }
}

/// Records an accepted solution on the decision: its time, and the token for the response.
pub(super) fn passed(d: &mut Decision, p: &gate::Passed, gate: &Gate) {
    d.solve_ms = Some(p.solve_ms);
    d.reasons.push("pow_passed");
    if p.suspicious {
        d.reasons.push("pow_solved_too_fast");
    }
    if let Some(t) = &p.token {
        d.clearance = Some(Box::new((gate.cookie(t), t.clone())));
    }
}

/// A session out of challenges: blocked for good.
pub(super) fn blocked(d: &mut Decision, tally: &mut Tally) {
    tally.bump(Counter::BlockedChallengeFailed);
    d.verdict = Verdict::Block;
    d.score = 1.0;
    d.reasons.push("challenge_failed");
}
