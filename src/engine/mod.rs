//! The per-worker engine: policy plus the rolling state, driven one request at a time.
//!
//! `begin` runs on the request head: client identity, the allow tier, threat intel and rate
//! limits; it decides or asks for the body. `finish` runs the detector, the behavioural score and
//! the block and challenge tiers. `on_response` feeds the upstream's status back into the session.
//! `tick` sweeps expired state. Nothing here touches the host: the shell hands in bytes and a
//! clock and carries out the decision.

use crate::base::telemetry::{Counter, Tally};
use crate::challenge::back;
use crate::challenge::gate::{self, Gate, Judged, Who};
use crate::challenge::nonces::NonceStore;
use crate::checks::allow::{Allow, Allowlist};
use crate::checks::detector::Detector;
use crate::checks::limits::{Limited, RateLimiter, Scope};
use crate::checks::sequences::Sequences;
use crate::decision::record::{ChallengeReply, Decision, FollowUp, Issued, Reply, Verdict};
use crate::identity::client::{client_ip, client_key, IpSource};
use crate::identity::session::{session_key, IdKey, SessionKey, Sessions};
use crate::identity::visitor::{Presented, Visitors};
use crate::policy::ladder::{self, Rung};
use crate::policy::tiers::ChallengeCondition;
use crate::policy::{BlockCondition, ChallengeType, DetectorAction, Mode, Policy, RiskTier};
use crate::request::fetch::{self, Fetch};
use crate::request::head::Head;
use crate::score::campaigns::{self, Campaigns};
use crate::score::headers::{header_signals, submission_signal};
use crate::score::session::{session_signals, Rendering};
use crate::score::signal::{self, Signal};
use std::net::IpAddr;

/// Most expired entries dropped per table per tick (keeps each tick short).
const SWEEP_BATCH: usize = 20_000;
/// Weight of the newest request in the session's smoothed score.
const SESSION_ALPHA: f64 = 0.3;

pub struct Engine {
    policy: Policy,
    /// Keys anonymous session ids (see [`IdKey`]).
    ids: IdKey,
    limiter: RateLimiter,
    detector: Option<Detector>,
    allowlist: Allowlist,
    sessions: Sessions,
    sequences: Sequences,
    campaigns: Campaigns,
    gate: Gate,
    visitors: Visitors,
    /// Visitor cookies handed out by this engine (part of each new id).
    visitors_handed: u64,
    rendering: Rendering,
    /// Counter deltas for the shell to flush.
    pub tally: Tally,
    reported_evictions: [u64; 4],
}

/// What the tiers need to know about a request besides its score.
struct Facts<'a> {
    challenge_failed: bool,
    broken: bool,
    detector_block: bool,
    authenticated: bool,
    path: &'a [u8],
    tier: RiskTier,
}

/// A tier's decision, before observe mode is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ruling {
    verdict: Verdict,
    observe: bool,
    reason: &'static str,
    counter: Counter,
    /// Only a WebAuthn clearance skips this challenge (`require_webauthn`).
    webauthn_only: bool,
}

/// The head-phase result.
pub enum Begin {
    Decided(Decision),
    /// The detector needs the body; call `finish` with it.
    NeedBody(Pending),
}

/// What `begin` learnt, carried to `finish`.
#[derive(Debug, Clone)]
pub struct Pending {
    client: Option<IpAddr>,
    /// The client as its limits, session and sequences know it (IPv6: its prefix).
    keyed: Option<IpAddr>,
    limited: Option<Limited>,
    /// Observe-mode blocks found in the head phase (threat intel).
    observed: Vec<&'static str>,
    /// Allow-tier checks that were attempted and failed.
    refused: Vec<&'static str>,
    /// The normalised path when it differs from the path as sent (see [`crate::request::path`]).
    path: Option<Vec<u8>>,
}

impl Pending {
    /// The path the rules compare: normalised once, in `begin`.
    fn path<'a>(&'a self, head: &'a Head) -> &'a [u8] {
        self.path.as_deref().unwrap_or(head.path())
    }
}

/// Sizes of the worker's tables, for gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    pub clients: usize,
    pub fingerprints: usize,
    pub bodies: usize,
    pub sessions: usize,
    pub state_bytes: usize,
}

impl Engine {
    /// The engine for `policy`. A policy without clearance keys gets a random one here (the
    /// shell first puts in one shared by the workers of its Envoy, see
    /// [`Policy::ensure_clearance_key`]), so challenges can be passed with zero configuration.
    pub fn new(mut policy: Policy) -> Self {
        if policy.lacks_clearance_key() {
            policy.ensure_clearance_key(&crate::challenge::token::Key::generated());
        }
        let limits = policy.limits;
        let ids = IdKey::derive(policy.tiers.clearance.keys.first().map_or(&[][..], |k| k.secret.as_slice()));
        // The automation list is indexed here, at configuration, not on the first request.
        crate::request::user_agent::is_automation(b"");
        Engine {
            ids,
            limiter: RateLimiter::new(policy.global_rate_limit, policy.ip_rate_limit, limits.max_clients),
            detector: policy.bot_detector.clone().map(|d| Detector::new(d, &limits)),
            allowlist: Allowlist::new(limits.max_clients.min(100_000)),
            sessions: Sessions::new(&policy.session),
            sequences: Sequences::new(policy.sequence_rules.clone(), limits.max_clients),
            campaigns: Campaigns::new(limits.max_fingerprints),
            gate: Gate::new(policy.tiers.settings.clone(), policy.tiers.clearance.clone()),
            visitors: Visitors::new(
                policy.session.visitor.clone(),
                policy.tiers.clearance.keys.clone(),
                policy.tiers.clearance.cookie_secure,
            ),
            visitors_handed: 0,
            rendering: Rendering::default(),
            policy,
            tally: Tally::default(),
            reported_evictions: [0; 4],
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Where proof-of-work nonces are spent (the shell installs one shared by all workers).
    pub fn set_nonce_store(&mut self, store: Box<dyn NonceStore>) {
        self.gate.set_nonce_store(store);
    }

    /// Whether requests with a body wait for it before the decision.
    pub fn needs_body(&self, head: &Head) -> bool {
        self.wants_body(&crate::request::path::normalise(head.path(), self.policy.paths.case_insensitive))
    }

    fn wants_body(&self, path: &[u8]) -> bool {
        self.detector.as_ref().is_some_and(|d| d.needs_body() && d.config().applies(path))
    }

    /// The client address and where it came from (`head.peer` must be set: it says whether
    /// `x-forwarded-for` is believed).
    pub fn client(&self, head: &Head) -> (Option<IpAddr>, IpSource) {
        let c = &self.policy.client;
        client_ip(head, c.trust_proxy_depth, &c.trusted_proxies)
    }

    /// The address the client's limits, session and sequences are kept under (its IPv6 prefix).
    fn keyed(&self, client: Option<IpAddr>) -> Option<IpAddr> {
        client.map(|ip| client_key(ip, self.policy.client.ipv6_prefix))
    }

    fn observing(&self, rule_observe: bool) -> bool {
        rule_observe || self.policy.mode == Mode::Observe
    }

    pub fn begin(&mut self, head: &Head, has_body: bool, now: u64) -> Begin {
        let client = self.client(head);
        self.begin_for(head, client, has_body, now)
    }

    /// [`Engine::begin`] with the client already worked out by [`Engine::client`], so the shell
    /// parses `x-forwarded-for` once.
    pub fn begin_for(&mut self, head: &Head, client: (Option<IpAddr>, IpSource), has_body: bool, now: u64) -> Begin {
        let (client, source) = client;
        match source {
            IpSource::BadForwardedFor => self.tally.bump(Counter::XffInvalid),
            IpSource::UntrustedForwardedFor => self.tally.bump(Counter::XffUntrusted),
            _ => {}
        }
        let keyed = self.keyed(client);
        // botgate's own endpoints answer after threat intel and the rate limits, like any page:
        // a listed or limited client gets no puzzles, tokens or sessions from them.
        let own = head.path().strip_prefix(gate::PREFIX.as_bytes());
        let mut pending =
            Pending { client, keyed, limited: None, observed: Vec::new(), refused: Vec::new(), path: None };

        let allowlist = if own.is_some() {
            Allow::No { reasons: Vec::new() }
        } else {
            self.allowlist.check(&self.policy.tiers, head, client, now)
        };
        match allowlist {
            Allow::Yes { condition, key } => return Begin::Decided(self.allowed(client, condition, key)),
            Allow::OverContract { key, retry_after_ms } => {
                self.tally.bump(Counter::ApiContractExceeded);
                let limited = Limited { scope: Scope::Ip, retry_after_ms };
                let mut d = rate_limited(client, limited, "api_contract_exceeded");
                d.detail = Some(key);
                if !self.observing(false) {
                    return Begin::Decided(self.record(d));
                }
                pending.observed.push("api_contract_exceeded");
            }
            Allow::No { reasons } => pending.refused = reasons,
        }

        if let Some(rule) = self.rule(|c| matches!(c, BlockCondition::ThreatIntel)) {
            let listed = client.and_then(|ip| self.policy.blocklists.iter().find(|l| l.set.contains(ip)));
            if let Some(list) = listed {
                if !self.observing(rule.observe) {
                    self.tally.bump(Counter::BlockedThreatIntel);
                    let mut d = Decision::pass(client);
                    d.verdict = Verdict::Block;
                    d.score = 1.0;
                    d.reasons.push("ip_in_threat_intel_blocklist");
                    d.detail = Some(list.name.clone());
                    return Begin::Decided(self.record(d));
                }
                pending.observed.push("ip_in_threat_intel_blocklist");
            }
        }

        if let Err(l) = self.limiter.check(keyed, now) {
            self.tally.bump(match l.scope {
                Scope::Global => Counter::RateLimitedGlobal,
                Scope::Ip => Counter::RateLimitedIp,
            });
            if !self.observing(false) {
                return Begin::Decided(self.record(rate_limited(client, l, rate_limit_reason(l.scope))));
            }
            pending.limited = Some(l);
        }
        if let Some(rest) = own {
            return Begin::Decided(self.own_endpoint(rest, head, client, now));
        }
        pending.path = crate::request::path::normalised(head.path(), self.policy.paths.case_insensitive);
        if has_body && self.wants_body(pending.path(head)) {
            return Begin::NeedBody(pending);
        }
        Begin::Decided(self.finish(pending, head, b"", now))
    }

    /// The request's genuine visitor cookie. The HMAC is checked once per session; after that
    /// the session's copy of the checked tag stands for it.
    fn visitor(&mut self, head: &Head) -> Option<Presented> {
        let p = self.visitors.presented(head)?;
        let known = self
            .sessions
            .peek_mut(p.id)
            .and_then(|s| s.visitor_tag)
            .is_some_and(|t| crate::base::mac::constant_time_eq(&t, &p.tag));
        (known || self.visitors.genuine(&p)).then_some(p)
    }

    /// The request's session: named by the session cookie or header, else by a genuine visitor
    /// cookie (returned too), else by the client's fingerprint.
    ///
    /// A sub-resource another site made the browser fetch ([`fetch::foreign_subresource`])
    /// carries the user's cookies and address but not the user's intent: it belongs to a
    /// session of its own, so a hostile page cannot drive someone's score up or spend their
    /// challenge attempts with `<img>` and `fetch`.
    ///
    /// `answers_for`: other sessions whose penalties the request carries without writing to them
    /// — the main session of such a split (a bot cannot shed its failures by claiming to be
    /// cross-site), and the sessions of a repeated session cookie's other values.
    fn session_of(&mut self, head: &Head, client: Option<IpAddr>) -> (SessionKey, Option<Presented>, Vec<u64>) {
        let visitor = self.visitor(head);
        let mut key = session_key(&self.policy.session, &self.ids, head, client, visitor.map(|v| v.id));
        let mut answers_for = crate::identity::session::repeated_sessions(&self.policy.session, head);
        if fetch::foreign_subresource(head) {
            answers_for.push(key.id);
            key.id = self.ids.hash(&[b"cross-site", &key.id.to_le_bytes()]);
        }
        (key, visitor, answers_for)
    }

    /// The strictest of the sessions a request answers for: failed for good, and the highest
    /// score.
    fn penalties(&mut self, sessions: &[u64]) -> (bool, f64) {
        let (mut failed, mut score) = (false, 0.0f64);
        for s in sessions.iter().filter_map(|id| self.sessions.peek_mut(*id).map(|s| (s.challenge_failed, s.score))) {
            failed |= s.0;
            score = score.max(if s.0 { 1.0 } else { s.1 });
        }
        (failed, score)
    }

    fn rule(&self, pick: impl Fn(&BlockCondition) -> bool) -> Option<crate::policy::tiers::BlockRule> {
        self.policy.tiers.block.iter().find(|r| pick(&r.condition)).copied()
    }

    fn allowed(&mut self, client: Option<IpAddr>, condition: &'static str, key: Option<String>) -> Decision {
        self.tally.bump(match condition {
            "internal_monitoring" => Counter::AllowMonitoring,
            "owned_ci_cd" => Counter::AllowCiCd,
            _ => Counter::AllowApi,
        });
        let mut d = Decision::pass(client);
        d.verdict = Verdict::Allow;
        d.reasons.push(condition);
        d.detail = key;
        self.record(d)
    }

    /// Decides with the body (empty when there is none).
    pub fn finish(&mut self, pending: Pending, head: &Head, body: &[u8], now: u64) -> Decision {
        let mut d = Decision::pass(pending.client);
        let mut would: Option<Verdict> = None;
        if let Some(l) = pending.limited {
            // Only reached in observe mode: the limit is recorded, the request passes.
            would = Some(Verdict::RateLimited);
            d.reasons.push(rate_limit_reason(l.scope));
        }
        for r in &pending.observed {
            would = Some(Verdict::Block);
            d.reasons.push(r);
        }
        d.reasons.extend(pending.refused.iter().copied());

        let mut signals: Vec<Signal> = Vec::with_capacity(16);
        let mut flagged = false;
        let mut detector_block = false;
        let path = pending.path(head);
        if let Some(det) = self.detector.as_mut().filter(|d| d.config().applies(path)) {
            let hit = det.observe(head, pending.keyed, body, now);
            d.fingerprint = Some(hit.fingerprint);
            d.fingerprint_count = hit.count;
            d.similarity = hit.near_duplicate;
            if hit.flagged {
                flagged = true;
                signals.push(Signal { name: "fingerprint_repeat", strength: 1.0 });
                self.tally.bump(Counter::FlaggedFingerprint);
                if hit.near_duplicate.is_some() {
                    d.reasons.push("near_duplicate_body");
                    self.tally.bump(Counter::FlaggedNearDuplicate);
                }
                detector_block = det.config().action == DetectorAction::Block;
            }
        }

        let method = head.method();
        let tier = self.policy.endpoint_tier(method, path);
        let shape = campaigns::shape(head);
        let fetch = fetch::fetch_kind(head);
        header_signals(head, fetch, &mut signals);
        crate::score::tls::signal(&self.policy.tls, head, &mut signals);
        let (key, visitor, answers_for) = self.session_of(head, pending.keyed);
        let (inherited_failure, inherited_score) = self.penalties(&answers_for);
        let session = self.sessions.get(key, now);
        if let (Some(v), false) = (visitor, key.authenticated) {
            session.visitor_tag = Some(v.tag);
        }
        session.record(now, path, tier <= RiskTier::High);
        session.record_network(pending.client, now);
        let referer = match fetch {
            Fetch::Navigation { cold: Some(false) } => fetch::in_site_referer_path(head),
            _ => None,
        };
        // As sent: referers name pages as the browser spelt them.
        session.record_fetch(fetch, head.path(), referer);
        // The site's rendering share: one word per session (at its second navigation), from
        // sessions nothing flags.
        let unflagged = session.score < 0.3 && !session.challenge_failed;
        if matches!(fetch, Fetch::Navigation { .. }) && session.navigations == 2 && unflagged {
            self.rendering.record(session.subresources > 0);
        }
        let profile = session.profile(now);
        session_signals(&profile, self.rendering.site_renders(), &mut signals);
        submission_signal(head, tier == RiskTier::Critical, &mut signals);
        // Last: it only corroborates what the other signals flag.
        let others = signal::score(&self.policy.weights, &signals);
        self.campaigns.signal(shape, now, others, &mut signals);
        let broken = self.sequences.check(session, method, path, pending.keyed, now).map(str::to_string);
        // Who the request is for (its binding is a SHA-256): worked out once, only when needed.
        let mut who: Option<Who> = None;
        let make_who = || Who::new(key, head, pending.client, now);
        if let Some((c, s)) = gate::header_submission(head) {
            // An API client retrying with its puzzle's solution.
            let w = who.get_or_insert_with(&make_who);
            match self.gate.judge(c, s, w, session.passed_nonce, &mut self.tally) {
                Judged::Solved(solved) => passed(&mut d, &self.gate.pass(&solved, session, w), &self.gate),
                Judged::Failed(reason) => {
                    self.gate.fail(session);
                    d.reasons.push(reason);
                }
                Judged::Ignored(reason) => d.reasons.push(reason),
                Judged::AlreadyPassed => d.reasons.push("pow_already_passed"),
            }
        }
        let score = signal::combine_into(&self.policy.weights, &signals, &mut d.reasons);
        // A detector in warn mode only observes: what its signal adds is recorded, not enforced.
        let warn_only = flagged && !detector_block;
        let enforce_score = if warn_only {
            let quiet: Vec<Signal> = signals.iter().filter(|s| s.name != "fingerprint_repeat").copied().collect();
            signal::combine(&self.policy.weights, &quiet).0
        } else {
            score
        };
        let first = profile.requests <= 1;
        session.score =
            if first { enforce_score } else { SESSION_ALPHA * enforce_score + (1.0 - SESSION_ALPHA) * session.score };
        let challenge_failed = session.challenge_failed || inherited_failure;
        let step_up_pending = session.step_up_pending;
        d.session_score = session.score.max(inherited_score);
        let lift = |s: f64| if challenge_failed { 1.0 } else { s.max(d.session_score) };
        d.score = lift(score);
        d.session = Some(key.id);
        d.authenticated = key.authenticated;
        d.endpoint_tier = tier.number();
        // The upstream's status feeds the error ratio and the campaign view: read for every
        // critical endpoint, and for one response in four elsewhere (each read is a host call; a
        // sampled ratio is still a ratio).
        let critical = tier == RiskTier::Critical;
        let step_up = self.step_up_endpoint(path);
        if critical || step_up.is_some() || profile.requests % 4 == 1 {
            // The backend's refusal is a failed step-up only for the session's own assertion: a
            // same-origin POST while a step-up is pending (a cross-site navigation to the verify
            // URL answered 405 is nothing).
            let step_up =
                step_up == Some(StepUpCall::Verify) && method == b"POST" && step_up_pending && fetch::same_origin(head);
            d.follow_up = Some(FollowUp { session: key.id, shape, critical, step_up, at: now });
        }
        if step_up.is_some() {
            let w = who.get_or_insert_with(&make_who);
            d.step_up = Some(Box::new((w.sid.clone(), w.bnd.clone())));
        }
        if let Some(rule) = &broken {
            d.detail = Some(rule.clone());
        }

        let facts = Facts {
            challenge_failed,
            broken: broken.is_some(),
            detector_block,
            authenticated: d.authenticated,
            path,
            tier,
        };
        let mut ruling = self.ruling(&facts, d.score);
        if warn_only {
            let enforced = self.ruling(&facts, lift(enforce_score));
            if enforced.map(|r| r.verdict) != ruling.map(|r| r.verdict) {
                if let Some(r) = ruling {
                    would = Some(r.verdict);
                    d.reasons.push(r.reason);
                }
                ruling = enforced;
            }
        }
        if ruling.is_some_and(|r| matches!(r.verdict, Verdict::Challenge(_))) {
            if step_up.is_some() {
                // The step-up's own calls to the backend are how a challenge is passed.
                ruling = None;
            } else if self.cleared(
                key.id,
                head,
                who.get_or_insert_with(&make_who),
                ruling.is_some_and(|r| r.webauthn_only) && key.authenticated,
            ) {
                // A cleared session skips the challenge tier; the block tier above still applied.
                d.reasons.push("cleared");
                ruling = None;
            }
        }
        match ruling {
            Some(Ruling { verdict: Verdict::Challenge(kind), reason, observe, .. }) if !self.observing(observe) => {
                d.verdict = Verdict::Challenge(kind);
                d.reasons.push(reason);
                d.follow_up = None;
                let back = back::return_path(head);
                self.issue(&mut d, kind, key.id, head, who.get_or_insert_with(&make_who), back);
            }
            Some(r) if !self.observing(r.observe) => {
                d.verdict = r.verdict;
                d.reasons.push(r.reason);
                self.tally.bump(r.counter);
                d.follow_up = None;
            }
            Some(r) => {
                would = Some(r.verdict);
                d.reasons.push(r.reason);
            }
            // The detector in warn mode: flagged requests pass as would-block.
            None if flagged => would = would.or(Some(Verdict::Block)),
            None => {}
        }
        d.reasons.dedup();
        if d.verdict == Verdict::Pass {
            d.would = would;
            // A navigation that goes through without a visitor cookie is handed one: its
            // session then follows it to its next address (see `crate::identity::visitor`).
            let wanted = visitor.is_none() && !key.authenticated && matches!(fetch, Fetch::Navigation { .. });
            if wanted && self.visitors.enabled() {
                let every = self.visitors.rehand_every_s();
                if self.sessions.peek_mut(key.id).is_some_and(|s| s.hand_visitor(now, every)) {
                    self.visitors_handed += 1;
                    let id = crate::identity::visitor::fresh_id(key.id, now, self.visitors_handed);
                    self.sessions.fork(key.id, id);
                    d.visitor = self.visitors.cookie(id);
                }
            }
        }
        self.record(d)
    }

    /// The block tier (a failed challenge first, then the policy's order), then the detector's
    /// own block action, then the endpoint's severity ladder ([`crate::policy::ladder`]): the
    /// challenge band the score is in, or the stronger neighbour of a gap between bands.
    fn ruling(&self, f: &Facts<'_>, score: f64) -> Option<Ruling> {
        let block = |reason, observe, counter| {
            Some(Ruling { verdict: Verdict::Block, observe, reason, counter, webauthn_only: false })
        };
        let rules = &self.policy.tiers.block;
        if let Some(r) = rules.iter().find(|r| r.condition == BlockCondition::ChallengeFailed) {
            if f.challenge_failed {
                return block("challenge_failed", r.observe, Counter::BlockedChallengeFailed);
            }
        }
        for r in rules {
            match r.condition {
                BlockCondition::ImpossibleSequence if f.broken => {
                    return block("impossible_request_sequence", r.observe, Counter::BlockedSequence)
                }
                BlockCondition::ScoreAbove(t) if score > t => {
                    return block("bot_score_above", r.observe, Counter::BlockedScore)
                }
                _ => {}
            }
        }
        if f.detector_block {
            return block("fingerprint_repeat", false, Counter::BlockedBotDetector);
        }
        let tiers = &self.policy.tiers;
        let block_above = tiers.block_above();
        let applies = |c: &ChallengeCondition| c.covers(f.path, f.tier);
        match ladder::rung(&tiers.challenge, applies, block_above.map(|b| b.0), score) {
            Rung::Pass => return None,
            // Above the top band and below the block threshold: the stronger neighbour.
            Rung::GapBlock => {
                let observe = block_above.is_some_and(|b| b.1);
                return block("score_above_challenge_band", observe, Counter::BlockedScore);
            }
            Rung::Challenge | Rung::GapChallenge => {}
        }
        let (observe, webauthn_only) = ladder::strictest(&tiers.challenge, applies, score);
        // Signed-in sessions get the default type (WebAuthn step-up); anonymous ones the
        // fallback (proof of work).
        let kind = if f.authenticated || tiers.default_type == ChallengeType::ProofOfWork {
            tiers.default_type
        } else {
            tiers.fallback_type
        };
        let counter = match kind {
            ChallengeType::ProofOfWork => Counter::ChallengesPowIssued,
            ChallengeType::WebauthnStepUp => Counter::ChallengesWebauthnIssued,
        };
        Some(Ruling { verdict: Verdict::Challenge(kind), observe, reason: "challenge_tier", counter, webauthn_only })
    }

    /// The upstream's status for a request that went through: errors and failed logins count
    /// against the session and the client's shape.
    pub fn on_response(&mut self, f: FollowUp, status: u32) {
        let error = status >= 400;
        if let Some(s) = self.sessions.peek_mut(f.session) {
            s.record_response(error);
            if f.step_up && matches!(status, 401 | 403) && s.step_up_pending {
                // The backend refused the session's WebAuthn assertion: a failed step-up.
                self.tally.bump(Counter::ChallengesWebauthnFailed);
                self.gate.fail(s);
            }
        }
        if f.critical {
            self.campaigns.record(f.shape, error, f.at);
        }
    }

    /// Marks a session's challenge as failed for good (used by the challenge tier).
    pub fn fail_challenge(&mut self, session: u64) {
        if let Some(s) = self.sessions.peek_mut(session) {
            s.failed_challenges = s.failed_challenges.saturating_add(1);
            s.challenge_failed = true;
            s.score = 1.0;
        }
    }

    /// Whether the session is cleared (a pass remembered here, or a valid clearance token);
    /// `webauthn_only`: by a WebAuthn step-up.
    fn cleared(&mut self, session: u64, head: &Head, who: &Who, webauthn_only: bool) -> bool {
        let Some(session) = self.sessions.peek_mut(session) else { return false };
        self.gate.cleared(head, who, session, webauthn_only, &mut self.tally)
    }

    /// Hands out the challenge: a puzzle, or the step-up request. A session out of attempts is
    /// `challenge_failed` instead.
    fn issue(
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
                self.tally.bump(match kind {
                    ChallengeType::ProofOfWork => Counter::ChallengesPowIssued,
                    ChallengeType::WebauthnStepUp => Counter::ChallengesWebauthnIssued,
                });
                let html = fetch::wants_html(head);
                d.challenge = Some(Box::new(ChallengeReply { issued, html, back }));
            }
            None => {
                self.tally.bump(Counter::BlockedChallengeFailed);
                d.verdict = Verdict::Block;
                d.score = 1.0;
                d.reasons.push("challenge_failed");
            }
        }
    }

    fn step_up_endpoint(&self, path: &[u8]) -> Option<StepUpCall> {
        let s = &self.gate.settings;
        let fold = self.policy.paths.case_insensitive;
        let is = |u: &Option<String>| {
            u.as_deref().is_some_and(|u| *crate::request::path::normalise(u.as_bytes(), fold) == *path)
        };
        if is(&s.webauthn_verify_url) {
            Some(StepUpCall::Verify)
        } else if is(&s.webauthn_options_url) {
            Some(StepUpCall::Options)
        } else {
            None
        }
    }

    /// botgate's own endpoints: assets, `verify` (a browser's solution) and `pow` (the step-up
    /// page's fallback to a proof of work).
    fn own_endpoint(&mut self, rest: &[u8], head: &Head, client: Option<IpAddr>, now: u64) -> Decision {
        let mut d = Decision::pass(client);
        d.verdict = Verdict::Serve;
        match rest {
            b"verify" | b"pow" if !fetch::same_origin(head) => {
                // A cross-site link, form or redirect: nobody's challenge is touched.
                self.tally.bump(Counter::ChallengeIgnoredCrossSite);
                d.reasons.push("cross_site_request");
                d.answer = Some(Box::new(Reply::json(403, "cross_site_request", &d.reasons, head.request_id())));
            }
            b"verify" | b"pow" => {
                let (key, _, answers_for) = self.session_of(head, self.keyed(client));
                if self.penalties(&answers_for).0 && !self.observing(false) {
                    blocked(&mut d, &mut self.tally);
                    return self.record(d);
                }
                d.session = Some(key.id);
                d.authenticated = key.authenticated;
                let back = back::query_param(head.query(), "return").filter(|r| back::safe_return(r).is_some());
                let who = Who::new(key, head, client, now);
                if rest == b"verify" {
                    self.verify_endpoint(&mut d, head, key, &who, back);
                } else {
                    self.pow_endpoint(&mut d, head, key, &who, back);
                }
            }
            _ => {
                d.answer = Some(Box::new(match crate::challenge::pages::asset(rest) {
                    Some(a) => Reply {
                        status: 200,
                        headers: vec![
                            ("content-type", a.content_type.to_string()),
                            ("cache-control", "public, max-age=3600".to_string()),
                            ("x-content-type-options", "nosniff".to_string()),
                        ],
                        body: a.body.to_string(),
                    },
                    None => Reply::json(404, "not_found", &[], head.request_id()),
                }))
            }
        }
        self.record(d)
    }

    /// A browser's solution: a pass sets the cookie and continues to the page first asked for;
    /// a failure sends it back for a new puzzle, until the session has failed for good; anything
    /// that is not this session's own puzzle changes nothing (and creates no session).
    fn verify_endpoint(&mut self, d: &mut Decision, head: &Head, key: SessionKey, who: &Who, back: Option<String>) {
        let q = head.query();
        let (Some(c), Some(s)) = (back::query_param(q, "challenge"), back::query_param(q, "solution")) else {
            d.answer = Some(Box::new(Reply::json(400, "missing challenge or solution", &[], head.request_id())));
            return;
        };
        let observe = self.observing(false);
        let (failed, passed_nonce) =
            self.sessions.peek_mut(key.id).map_or((false, 0), |s| (s.challenge_failed, s.passed_nonce));
        if failed && !observe {
            return blocked(d, &mut self.tally);
        }
        match self.gate.judge(&c, &s, who, passed_nonce, &mut self.tally) {
            Judged::Solved(solved) => {
                let (key, who, visitor) = self.adopt_visitor(key, who);
                let session = self.sessions.get(key, who.now);
                passed(d, &self.gate.pass(&solved, session, &who), &self.gate);
                let cookie = d.clearance.take().map(|c| c.0);
                let mut headers = vec![("cache-control", "no-store".to_string())];
                headers.extend(cookie.map(|c| ("set-cookie", c)));
                headers.extend(visitor.map(|c| ("set-cookie", c)));
                d.answer = Some(Box::new(match back {
                    Some(back) => {
                        headers.push(("location", back));
                        Reply { status: 303, headers, body: String::new() }
                    }
                    None => verified_page(headers),
                }));
            }
            Judged::Failed(reason) => {
                d.reasons.push(reason);
                let session = self.sessions.get(key, who.now);
                self.gate.fail(session);
                if session.challenge_failed && !observe {
                    return blocked(d, &mut self.tally);
                }
                d.answer = Some(Box::new(try_again(d, head, back)));
            }
            Judged::AlreadyPassed => {
                // The solver's own reload: it passed already; show it so again.
                d.reasons.push("pow_already_passed");
                d.answer = Some(Box::new(match back {
                    Some(back) => redirect(back),
                    None => verified_page(vec![("cache-control", "no-store".to_string())]),
                }));
            }
            Judged::Ignored(reason) => {
                d.reasons.push(reason);
                d.answer = Some(Box::new(try_again(d, head, back)));
            }
        }
    }

    /// The session a pass clears and its token names: an anonymous session without a visitor
    /// cookie is handed one with the pass, so the token is bound to that visitor (one solve
    /// clears one browser, not everyone behind its network with its user agent).
    fn adopt_visitor(&mut self, key: SessionKey, who: &Who) -> (SessionKey, Who, Option<String>) {
        if key.authenticated || key.visitor || !self.visitors.enabled() {
            return (key, who.clone(), None);
        }
        self.visitors_handed += 1;
        let id = crate::identity::visitor::fresh_id(key.id, who.now, self.visitors_handed);
        self.sessions.fork(key.id, id);
        let adopted = SessionKey { id, authenticated: false, visitor: true };
        let who = Who { sid: gate::sid(adopted), ..who.clone() };
        (adopted, who, self.visitors.cookie(id))
    }

    /// The step-up page's fallback: a proof of work for this session.
    /// Only for a page navigation of a session with a step-up pending: an `<img>` pointing here
    /// (in user content on the site itself, say) spends nobody's attempts.
    fn pow_endpoint(&mut self, d: &mut Decision, head: &Head, key: SessionKey, who: &Who, back: Option<String>) {
        let pending = self.sessions.peek_mut(key.id).map(|s| (s.challenge_failed, s.step_up_pending));
        let navigation = matches!(fetch::fetch_kind(head), Fetch::Navigation { .. });
        if self.observing(false) || !navigation || !pending.is_some_and(|p| p.1) {
            // Nothing to fall back from (or nothing is challenged in observe mode): straight back.
            d.reasons.push("no_step_up_pending");
            d.answer = Some(Box::new(redirect(back.unwrap_or_else(|| "/".to_string()))));
            return;
        }
        if pending.is_some_and(|p| p.0) {
            return blocked(d, &mut self.tally);
        }
        d.verdict = Verdict::Challenge(ChallengeType::ProofOfWork);
        d.reasons.push("step_up_fallback");
        self.issue(d, ChallengeType::ProofOfWork, key.id, head, who, back);
    }

    fn record(&mut self, d: Decision) -> Decision {
        self.tally.bump(match (d.verdict, d.outcome()) {
            (_, "would_block") => Counter::RequestsWouldBlock,
            (_, "would_challenge") => Counter::RequestsWouldChallenge,
            (Verdict::Pass, _) => Counter::RequestsPass,
            (Verdict::Allow, _) => Counter::RequestsAllow,
            (Verdict::Block, _) => Counter::RequestsBlock,
            (Verdict::RateLimited, _) => Counter::RequestsRateLimited,
            (Verdict::Challenge(_), _) => Counter::RequestsChallenge,
            (Verdict::Serve, _) => Counter::RequestsServe,
        });
        d
    }

    /// Sweeps expired state and moves eviction counts into the tally.
    pub fn tick(&mut self, now: u64) -> Footprint {
        self.limiter.sweep(now, SWEEP_BATCH);
        self.sessions.sweep(now, SWEEP_BATCH);
        self.sequences.sweep(now, SWEEP_BATCH);
        self.gate.sweep(now);
        if let Some(d) = &mut self.detector {
            d.sweep(now, SWEEP_BATCH);
        }
        let (fp_ev, body_ev) = self.detector.as_ref().map_or((0, 0), Detector::evictions);
        let totals = [self.limiter.evictions(), fp_ev, body_ev, self.sessions.evictions()];
        let counters = [
            Counter::EvictionsClients,
            Counter::EvictionsFingerprints,
            Counter::EvictionsBodies,
            Counter::EvictionsSessions,
        ];
        for ((total, seen), counter) in totals.iter().zip(self.reported_evictions.iter_mut()).zip(counters) {
            self.tally.add(counter, total - *seen);
            *seen = *total;
        }
        self.footprint()
    }

    pub fn footprint(&self) -> Footprint {
        let (fingerprints, bodies) = self.detector.as_ref().map_or((0, 0), Detector::tracked);
        Footprint {
            clients: self.limiter.tracked_clients(),
            fingerprints,
            bodies,
            sessions: self.sessions.len(),
            state_bytes: self.limiter.heap_bytes()
                + self.detector.as_ref().map_or(0, Detector::heap_bytes)
                + self.sessions.heap_bytes()
                + self.campaigns.len() * 48,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepUpCall {
    Options,
    Verify,
}

/// Records an accepted solution on the decision: its time, and the token for the response.
fn passed(d: &mut Decision, p: &gate::Passed, gate: &Gate) {
    d.solve_ms = Some(p.solve_ms);
    d.reasons.push("pow_passed");
    if p.suspicious {
        d.reasons.push("pow_solved_too_fast");
    }
    if let Some(t) = &p.token {
        d.clearance = Some(Box::new((gate.cookie(t), t.clone())));
    }
}

fn blocked(d: &mut Decision, tally: &mut Tally) {
    tally.bump(Counter::BlockedChallengeFailed);
    d.verdict = Verdict::Block;
    d.score = 1.0;
    d.reasons.push("challenge_failed");
}

/// The "check passed" page, with `headers` (the cookies of a pass).
fn verified_page(mut headers: Vec<(&'static str, String)>) -> Reply {
    headers.push(("content-type", "text/html; charset=utf-8".to_string()));
    headers.push(("content-security-policy", crate::challenge::pages::CSP.to_string()));
    Reply { status: 200, headers, body: crate::challenge::pages::verified() }
}

/// A solution that did not pass: back to the page for a new puzzle, or the reasons as JSON.
fn try_again(d: &Decision, head: &Head, back: Option<String>) -> Reply {
    match back {
        Some(back) => redirect(back),
        None => Reply::json(401, "challenge", &d.reasons, head.request_id()),
    }
}

/// `303 See Other` to a path already checked by [`back::safe_return`].
fn redirect(location: String) -> Reply {
    Reply {
        status: 303,
        headers: vec![("location", location), ("cache-control", "no-store".to_string())],
        body: String::new(),
    }
}

fn rate_limit_reason(scope: Scope) -> &'static str {
    match scope {
        Scope::Global => "rate_limit_global",
        Scope::Ip => "rate_limit_ip",
    }
}

fn rate_limited(client: Option<IpAddr>, l: Limited, reason: &'static str) -> Decision {
    let mut d = Decision::pass(client);
    d.verdict = Verdict::RateLimited;
    d.reasons.push(reason);
    d.retry_after_s = l.retry_after_ms.div_ceil(1000);
    d
}

/// Which engine serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Index into [`Engines`]: 0 is the base policy, then the profiles in order.
    Engine(usize),
    /// botgate is off on this route.
    Disabled,
}

/// The base policy's engine and one per profile (each keeps its own windows and sessions).
pub struct Engines {
    engines: Vec<(String, Engine)>,
    routes: Vec<(String, crate::policy::RouteChoice)>,
}

impl Engines {
    pub fn new(mut policy: Policy) -> Self {
        let profiles = std::mem::take(&mut policy.profiles);
        let routes = std::mem::take(&mut policy.routes);
        let mut engines = vec![(String::new(), Engine::new(policy))];
        engines.extend(profiles.into_iter().map(|(name, p)| (name, Engine::new(p))));
        Engines { engines, routes }
    }

    /// Whether the route must be read to choose (profiles or per-route settings exist).
    pub fn per_route(&self) -> bool {
        self.engines.len() > 1 || !self.routes.is_empty()
    }

    /// Route metadata (`filter_metadata.botgate.disabled` / `.profile`) first, then the route
    /// name's entry in `routes`, then the base policy. An unknown profile name uses the base.
    pub fn route(&self, route_name: Option<&[u8]>, meta_profile: Option<&[u8]>, meta_disabled: bool) -> Route {
        use crate::policy::RouteChoice;
        if meta_disabled {
            return Route::Disabled;
        }
        let by_name = |name: &[u8]| self.engines.iter().position(|(n, _)| !n.is_empty() && n.as_bytes() == name);
        if let Some(i) = meta_profile.and_then(by_name) {
            return Route::Engine(i);
        }
        let choice = route_name.and_then(|r| self.routes.iter().find(|(n, _)| n.as_bytes() == r).map(|(_, c)| c));
        match choice {
            Some(RouteChoice::Disabled) => Route::Disabled,
            Some(RouteChoice::Profile(p)) => Route::Engine(by_name(p.as_bytes()).unwrap_or(0)),
            None => Route::Engine(0),
        }
    }

    pub fn get(&mut self, i: usize) -> Option<&mut Engine> {
        self.engines.get_mut(i).map(|(_, e)| e)
    }

    pub fn limits_of(&self, i: usize) -> crate::policy::Limits {
        self.engines.get(i).map_or_else(Default::default, |(_, e)| e.policy().limits)
    }

    pub fn profile_name(&self, i: usize) -> &str {
        self.engines.get(i).map_or("", |(n, _)| n.as_str())
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Engine> {
        self.engines.iter_mut().map(|(_, e)| e)
    }

    /// Ticks every engine; the footprint is their sum.
    pub fn tick(&mut self, now: u64) -> Footprint {
        self.iter_mut().map(|e| e.tick(now)).fold(Footprint::default(), |a, b| Footprint {
            clients: a.clients + b.clients,
            fingerprints: a.fingerprints + b.fingerprints,
            bodies: a.bodies + b.bodies,
            sessions: a.sessions + b.sessions,
            state_bytes: a.state_bytes + b.state_bytes,
        })
    }
}
