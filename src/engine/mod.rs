//! The per-worker engine: the policy made into working parts, and a request's way through the
//! stages of the decision path, in request order.
//!
//! On the head ([`Engine::begin`], `admit.rs`): who the client is, the allow tier, the block tier
//! on what the head shows (threat intel), the rate limits, botgate's own endpoints (`own.rs`).
//! Then the request may wait ([`step`]): for lookups (`lookups.rs`), then for the body. Then
//! [`Engine::finish`] runs the rest as named stages: detect, identify, observe, the challenge
//! answered in headers, score, rule, act, record. `on_response` feeds the upstream's status back
//! into the session; `tick` sweeps expired state. Nothing here touches the host: the shell hands
//! in bytes, a clock and answers, and carries out the decision.

mod act;
mod admit;
mod agents;
mod crawlers;
pub mod drive;
mod identify;
pub mod lookups;
mod own;
pub mod routes;
pub mod spends;
mod stages;
pub mod step;
pub mod vendors;
mod visit;

pub use crawlers::FCRDNS;
pub use routes::{Engines, Route};
pub use step::{BodyWait, LookupWait, Pending, Step};

use crate::base::telemetry::{Counter, Tally};
use crate::challenge::gate::{self, Gate};
use crate::challenge::nonces::NonceStore;
use crate::checks::allow::Allowlist;
use crate::checks::detector::Detector;
use crate::checks::limits::RateLimiter;
use crate::checks::sequences::Sequences;
use crate::decision::record::{Decision, FollowUp, Verdict};
use crate::identity::client::Client;
use crate::identity::session::Sessions;
use crate::identity::session_id::IdKey;
use crate::identity::visitor::Visitors;
use crate::policy::{Mode, Policy};
use crate::request::head::Head;
use crate::score::campaigns::Campaigns;
use crate::score::session::Rendering;
use lookups::{Answer, Asker, Lookups, Ttl};

/// Most expired entries dropped per table per tick (keeps each tick short).
const SWEEP_BATCH: usize = 20_000;
/// Lookup answers kept per worker.
const LOOKUP_CACHE: usize = 10_000;
/// Engines made so far in this VM (each is stamped with its number).
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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
    /// The stages that need lookups, asked in order, and the answers' cache.
    askers: Vec<Box<dyn Asker>>,
    lookups: Lookups,
    /// Each crawler's recent requests (by its index in the policy), for its rate.
    crawler_rates: Vec<Option<crate::base::window::RollingWindow>>,
    /// Which engine this is: a wait made by another (before a reconfiguration) starts afresh.
    generation: u64,
    /// The beacon script's CSP hash source (empty when the beacon is off).
    beacon_hash: String,
    /// When each client address last had a false-positive report counted (one an hour).
    reports: crate::base::lru::Lru<std::net::IpAddr, u64>,
    /// Until when each client's throttled or tarpitted request is held ([`Engine::grade`]).
    delayed: crate::base::lru::Lru<std::net::IpAddr, u64>,
    /// This worker's part of the fleet-wide per-address counts (`ip_rate_limit.fleet`).
    fleet: Option<crate::checks::fleet::FleetCounts>,
    /// The step-up's verify and options endpoints, normalised as request paths are (once, here).
    step_up_paths: [Option<Vec<u8>>; 2],
    /// The crawler each recent user agent claims to be (by the policy's tokens).
    claims: crate::base::memo::Memo<Option<usize>>,
    /// Solutions the fleet said another Envoy spent, until their puzzles expire (a replay is
    /// then known without asking Redis again).
    replayed_elsewhere: crate::base::lru::Lru<u64, u64>,
    /// Sessions failed on any Envoy of the fleet (`fleet.share_failures`).
    failures: Option<crate::checks::failed_sessions::FailedSessions>,
    /// Counter deltas for the shell to flush.
    pub tally: Tally,
    reported_evictions: [u64; 4],
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
    /// The engine for `policy`: where settings become working parts. A policy without clearance
    /// keys gets a random one here (the shell first puts in one shared by the workers of its
    /// Envoy, see [`Policy::ensure_clearance_key`]), so challenges can be passed with zero
    /// configuration.
    pub fn new(mut policy: Policy) -> Self {
        if policy.lacks_clearance_key() {
            policy.ensure_clearance_key(&crate::base::mac::Key::generated());
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
            gate: Gate::new(policy.tiers.settings.clone(), policy.tiers.clearance.clone())
                .with_local_puzzle_ms(policy.fleet.as_ref().map(|f| f.local_puzzle_ms)),
            visitors: Visitors::new(
                policy.session.visitor.clone(),
                policy.tiers.clearance.keys.clone(),
                policy.tiers.clearance.cookie_secure,
            ),
            visitors_handed: 0,
            rendering: Rendering::default(),
            // The vendor sources are the one asker the policy configures (tests add others).
            askers: policy
                .vendors
                .clone()
                .map(|v| {
                    let fold = policy.paths.case_insensitive;
                    Box::new(vendors::VendorAsker::new(v, policy.endpoints.clone(), fold, ids)) as Box<dyn Asker>
                })
                .into_iter()
                .collect(),
            lookups: Lookups::new(LOOKUP_CACHE.min(limits.max_clients.max(1))),
            crawler_rates: Vec::new(),
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            beacon_hash: if policy.beacon.enabled { crate::challenge::beacon::csp_hash() } else { String::new() },
            reports: crate::base::lru::Lru::new(limits.max_clients.clamp(1, 10_000)),
            delayed: crate::base::lru::Lru::new(limits.max_clients.clamp(1, 20_000)),
            fleet: policy
                .ip_rate_limit
                .filter(|l| l.fleet && policy.fleet.is_some())
                .map(|l| crate::checks::fleet::FleetCounts::new(l.window_ms, l.max_requests, limits.max_clients)),
            replayed_elsewhere: crate::base::lru::Lru::new(4096),
            claims: crate::base::memo::Memo::default(),
            step_up_paths: {
                let s = &policy.tiers.settings;
                let fold = policy.paths.case_insensitive;
                let norm = |u: &Option<String>| {
                    u.as_deref().map(|u| crate::request::path::normalise(u.as_bytes(), fold).into_owned())
                };
                [norm(&s.webauthn_verify_url), norm(&s.webauthn_options_url)]
            },
            failures: policy.fleet.as_ref().filter(|f| f.share_failures).map(|_| {
                crate::checks::failed_sessions::FailedSessions::new(policy.session.ttl_ms, limits.max_clients)
            }),
            policy,
            tally: Tally::default(),
            reported_evictions: [0; 4],
        }
    }

    /// The counts to send to the fleet now ([`crate::checks::fleet`]).
    pub fn fleet_batch(&mut self, now: u64) -> Option<crate::checks::fleet::Batch> {
        self.fleet.as_mut()?.take_batch(now)
    }

    /// The fleet's totals for a batch sent; `None` when the call failed on its way (a timeout,
    /// an error, a garbled answer): the batch is dropped, as Redis may have counted it.
    pub fn fleet_answer(&mut self, batch: crate::checks::fleet::Batch, totals: Option<Vec<u64>>) {
        let Some(f) = self.fleet.as_mut() else { return };
        match totals {
            Some(t) if t.len() == batch.counts.len() => {
                f.absorb(&batch, &t);
                self.tally.bump(Counter::FleetSyncOk);
            }
            _ => self.tally.bump(Counter::FleetSyncFailed),
        }
    }

    /// A batch whose call could not be made: its counts wait for the next sync.
    pub fn fleet_unsent(&mut self, batch: crate::checks::fleet::Batch) {
        if let Some(f) = self.fleet.as_mut() {
            f.restore(batch);
            self.tally.bump(Counter::FleetSyncFailed);
        }
    }

    /// Names the profile this engine serves in the fleet's keys.
    pub fn set_fleet_scope(&mut self, scope: &str) {
        if let Some(f) = self.fleet.as_mut() {
            f.set_scope(scope);
        }
        if let Some(f) = self.failures.as_mut() {
            f.set_scope(scope);
        }
    }

    /// The round of failed sessions to send now ([`crate::checks::failed_sessions`]).
    pub fn failures_round(&mut self) -> Option<crate::checks::failed_sessions::Round> {
        Some(self.failures.as_mut()?.take_round())
    }

    /// The fleet's answer to a round (`None`: none came; its failures wait for the next).
    pub fn failures_answer(
        &mut self,
        round: crate::checks::failed_sessions::Round,
        pulled: Option<crate::checks::failed_sessions::Pulled>,
        now: u64,
    ) {
        let Some(f) = self.failures.as_mut() else { return };
        let (ok, published) = (pulled.is_some(), round.published.len() as u64);
        let learnt = f.absorb(round, pulled, now) as u64;
        if ok {
            self.tally.bump(Counter::FleetFailuresSyncOk);
            self.tally.add(Counter::FleetFailuresShared, published);
            self.tally.add(Counter::FleetFailuresLearned, learnt);
        } else {
            self.tally.bump(Counter::FleetFailuresSyncFailed);
        }
    }

    /// A feed's new list (see [`Policy::load_feed`]).
    pub fn load_feed(&mut self, id: &str, list: &crate::policy::feeds::List) {
        self.policy.load_feed(id, list);
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The beacon script's `'sha256-…'` CSP source.
    pub fn beacon_hash(&self) -> &str {
        &self.beacon_hash
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

    fn observing(&self, rule_observe: bool) -> bool {
        rule_observe || self.policy.mode == Mode::Observe
    }

    /// The head stages, once per request: who the client is, the allow tier, threat intel, the
    /// rate limits, botgate's own endpoints. Then the request waits for what it needs, or is
    /// decided.
    pub fn begin(&mut self, head: &Head, has_body: bool, now: u64) -> Step {
        let client = self.identify_client(head);
        // botgate's own endpoints answer after threat intel and the rate limits, like any page:
        // a listed or limited client gets no puzzles, tokens or sessions from them.
        let own = head.path().strip_prefix(gate::PREFIX.as_bytes());
        let mut p = Pending {
            generation: self.generation,
            client,
            has_body,
            limited: None,
            asset: false,
            observed: Vec::new(),
            refused: Vec::new(),
            path: None,
            asked: 0,
            answers: Vec::new(),
            claim: None,
            bad_signature: None,
            bot: None,
            must_pass: None,
            spend_checked: false,
            spent: None,
        };
        if own.is_none() {
            if let Some(d) = self.allow(head, &mut p, now) {
                return Step::Decided(d);
            }
        }
        // A listed client is refused before anything is asked on its behalf, a crawler claim
        // included.
        if let Some(d) = self.block_on_head(&mut p, head, now) {
            return Step::Decided(d);
        }
        if own.is_none() {
            // A signature, where there is one that says anything, is the claim; else the user
            // agent's, which may need a lookup.
            let signed = self.signed(head, now);
            if !agents::take(&mut p, signed) {
                if let Some(question) = self.claim(head, &mut p, now) {
                    return Step::NeedLookup(LookupWait { pending: p, question });
                }
            }
        }
        self.after_claim(p, head, now)
    }

    /// The head stages after the crawler claim's lookup: the claim's verdict, the rate limits,
    /// botgate's own endpoints; then the waits.
    fn after_claim(&mut self, mut p: Pending, head: &Head, now: u64) -> Step {
        let own = head.path().strip_prefix(gate::PREFIX.as_bytes());
        if let Some(d) = self.judge_claim(&mut p, head, now) {
            return Step::Decided(d);
        }
        // Normalised once, as Envoy routes it: what the limits and every rule compare.
        p.path = crate::request::path::normalised(head.path(), self.policy.paths.case_insensitive);
        // A page's beacon (the one botgate answers) rides along with the page, like its assets.
        let beacon = own == Some(crate::challenge::beacon::ENDPOINT);
        if let Some(d) = self.limit(&mut p, head, beacon, now) {
            return Step::Decided(d);
        }
        if let Some(rest) = own {
            if let Some(question) = self.spend_question(head, &mut p, Some(rest), now) {
                return Step::NeedLookup(LookupWait { pending: p, question });
            }
            return Step::Decided(self.own_endpoint(rest, head, p.client, p.spent, now));
        }
        self.proceed(p, head, now)
    }

    /// Resumes a request waiting for a lookup with its answer: kept in the cache, then the
    /// remaining waits. A wait another engine made (the policy was reloaded meanwhile) starts
    /// afresh here, its answer unused.
    pub fn resume_lookup(&mut self, w: LookupWait, head: &Head, answer: Answer, now: u64) -> Step {
        let LookupWait { mut pending, question } = w;
        if pending.generation != self.generation {
            return self.begin(head, pending.has_body, now);
        }
        if question.service == spends::FLEET_SPEND {
            return self.after_spend(pending, head, &question, Some(&answer), now);
        }
        if self.answer_claim(&mut pending, question.clone(), Some(answer.clone()), now) {
            return self.after_claim(pending, head, now);
        }
        let ttl = Ttl::flat(self.askers.get(pending.asked).map_or(0, |a| a.ttl_ms()));
        // An answer made for another profile's sources is used once, not kept as this one's;
        // so is a round in which no source spoke (an open circuit, an outage): the client is
        // asked about again once the sources are back, not a whole cache TTL later.
        let ours = question.service != vendors::VENDORS
            || self.policy.vendors.as_ref().is_none_or(|v| {
                vendors::Consulted::covers(v, &answer) && vendors::Consulted::from_answer(v, &answer).spoke()
            });
        if ours {
            self.lookups.put(question, answer.clone(), &pending.client, now, ttl);
        }
        pending.answers.push((pending.asked, answer));
        pending.asked += 1;
        self.proceed(pending, head, now)
    }

    /// Resumes a request whose lookup could not even be asked (the shell had no room for another
    /// callout): decided without it, and nothing is remembered against the client.
    pub fn resume_unasked(&mut self, w: LookupWait, head: &Head, now: u64) -> Step {
        let LookupWait { mut pending, question } = w;
        if pending.generation != self.generation {
            return self.begin(head, pending.has_body, now);
        }
        if question.service == spends::FLEET_SPEND {
            return self.after_spend(pending, head, &question, None, now);
        }
        if self.answer_claim(&mut pending, question, None, now) {
            return self.after_claim(pending, head, now);
        }
        pending.answers.push((pending.asked, Answer::Failed));
        pending.asked += 1;
        self.proceed(pending, head, now)
    }

    /// Decides a request that waited for its body (one another engine made is decided afresh
    /// here, its lookups answered as failed).
    pub fn resume_body(&mut self, w: BodyWait, head: &Head, body: &[u8], now: u64) -> Decision {
        if w.0.generation != self.generation {
            // Lookups cannot be asked from here: answered as failed, but a spend as not asked
            // (an unconfirmed one would let a replay through).
            let offline = |q: &lookups::Lookup| match q.service {
                spends::FLEET_SPEND => Answer::NotFound,
                _ => Answer::Failed,
            };
            return drive::decide_with(self, head, Some(body), now, &mut { offline });
        }
        self.finish(w.0, head, body, now)
    }

    /// The waits from where `p` stopped: each asker's lookup (from the cache, or the request
    /// waits for it), then the body when the detector reads it; then the decision.
    fn proceed(&mut self, mut p: Pending, head: &Head, now: u64) -> Step {
        if let Some(question) = self.spend_question(head, &mut p, None, now) {
            return Step::NeedLookup(LookupWait { pending: p, question });
        }
        while let Some(asker) = self.askers.get(p.asked) {
            if let Some(question) = asker.question(head, &p.client) {
                let band = asker.band();
                match self.lookups.get(&question, &p.client, now, Ttl::flat(asker.ttl_ms())) {
                    Some(a) => p.answers.push((p.asked, a)),
                    None if band.is_some_and(|b| !self.in_band(b, head, &p, now)) => {
                        self.tally.bump(Counter::VendorOutOfBand);
                    }
                    None => return Step::NeedLookup(LookupWait { pending: p, question }),
                }
            }
            p.asked += 1;
        }
        if p.has_body && self.wants_body(p.path(head)) {
            return Step::NeedBody(BodyWait(p));
        }
        Step::Decided(self.finish(p, head, b"", now))
    }

    /// The stages after the waits, in request order; `body` is empty when there is none.
    fn finish(&mut self, p: Pending, head: &Head, body: &[u8], now: u64) -> Decision {
        let mut d = visit::carried(&p);
        if p.limited.is_some() && self.policy.ip_rate_limit.is_some_and(|r| r.throttle) {
            // Observe mode: the limit would have throttled.
            self.grade(&mut d, crate::policy::answers::Refusal::Throttle, head, now);
        }
        let mut v = self.detect(head, &p, body, now, &mut d);
        v.spent = p.spent;
        self.identify(&mut v);
        self.repeat(&mut v, &mut d);
        self.observe(&mut v, &p);
        self.answer_submission(&mut v, &mut d);
        self.score(&mut v, &mut d);
        let ruling = self.rule(&mut v, &mut d);
        self.act(ruling, &mut v, &mut d);
        self.shed(&p, head, &mut d, now);
        self.record(d)
    }

    /// Counts the decision once under `botgate_requests_total`, and hands the fleet a session
    /// this request failed for good.
    fn record(&mut self, d: Decision) -> Decision {
        if let (Some(f), Some(id)) = (self.failures.as_mut(), d.session) {
            if let Some(s) = self.sessions.peek_mut(id).filter(|s| s.challenge_failed && !s.failure_shared) {
                s.failure_shared = true;
                f.failed_here(id);
            }
        }
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
        if let Some(c) = held_by(&d) {
            self.tally.bump(c);
        }
        if let Some(c) = d.graded.and_then(|g| answered(g.how, d.delivered().is_some())) {
            self.tally.bump(c);
        }
        d
    }

    /// A refusal answered as `how` says (the delays are the policy's), enforced or observed.
    /// One delayed answer per client at a time: while a client's throttled or tarpitted request
    /// waits, its next is refused at once, so a throttled client gets one request through per
    /// `throttle_ms` (not one per held slot) and a tarpitted flood holds one slot, not all.
    fn grade(&mut self, d: &mut Decision, how: crate::policy::answers::Refusal, head: &Head, now: u64) {
        use crate::policy::answers::Refusal;
        let a = self.policy.answers;
        let delay_ms = match how {
            Refusal::Refuse => return,
            Refusal::Throttle => a.throttle_ms,
            Refusal::Tarpit => a.tarpit_ms,
            Refusal::Decoy => 0,
        };
        if delay_ms > 0 {
            let Some(client) =
                d.client_ip.map(|ip| crate::identity::client::client_key(ip, self.policy.client.ipv6_prefix))
            else {
                return;
            };
            let busy = self.delayed.get_or_insert_with(client, || 0);
            if *busy > now {
                return; // refused at once
            }
            *busy = now + delay_ms;
        }
        let html = crate::request::fetch::wants_html(head);
        d.graded = Some(crate::decision::record::Graded { how, delay_ms, html });
    }

    /// The upstream's status for a request that went through: errors and failed logins count
    /// against the session and the client's shape.
    pub fn on_response(&mut self, f: FollowUp, status: u32) {
        let error = status >= 400;
        if let Some(s) = self.sessions.peek_mut(f.session) {
            s.record_response(error);
            if f.step_up && f.verify_call && (200..300).contains(&status) && s.step_up_pending {
                // The backend accepted the assertion: the step-up succeeded now, whether or not
                // the person comes back with the token it minted.
                self.tally.bump(Counter::ChallengesWebauthnPassed);
                s.step_up_pending = false;
            }
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

    /// Marks a session's challenge as failed for good.
    pub fn fail_challenge(&mut self, session: u64) {
        if let Some(s) = self.sessions.peek_mut(session) {
            s.failed_challenges = s.failed_challenges.saturating_add(1);
            s.challenge_failed = true;
            s.score = 1.0;
        }
    }

    /// Sweeps expired state and moves eviction counts into the tally.
    pub fn tick(&mut self, now: u64) -> Footprint {
        self.limiter.sweep(now, SWEEP_BATCH);
        if let Some(f) = self.fleet.as_mut() {
            self.tally.add(Counter::FleetUntracked, std::mem::take(&mut f.untracked));
        }
        if let Some(f) = self.failures.as_mut() {
            self.tally.add(Counter::FleetFailuresDropped, std::mem::take(&mut f.dropped));
        }
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
                + self.campaigns.heap_bytes()
                + self.lookups.len() * 96,
        }
    }

    /// The client of `head`, worked out once (counting a forwarded-for header it could not use).
    fn identify_client(&mut self, head: &Head) -> Client {
        use crate::identity::client::IpSource;
        let client = Client::of(head, &self.policy.client);
        match client.source {
            IpSource::BadForwardedFor => self.tally.bump(Counter::XffInvalid),
            IpSource::UntrustedForwardedFor => self.tally.bump(Counter::XffUntrusted),
            _ => {}
        }
        client
    }
}

/// `botgate_answers_total`'s line for a graduated answer.
fn answered(how: crate::policy::answers::Refusal, enforced: bool) -> Option<Counter> {
    use crate::policy::answers::Refusal;
    Some(match (how, enforced) {
        (Refusal::Refuse, _) => return None,
        (Refusal::Throttle, true) => Counter::AnswersThrottle,
        (Refusal::Throttle, false) => Counter::AnswersWouldThrottle,
        (Refusal::Tarpit, true) => Counter::AnswersTarpit,
        (Refusal::Tarpit, false) => Counter::AnswersWouldTarpit,
        (Refusal::Decoy, true) => Counter::AnswersDecoy,
        (Refusal::Decoy, false) => Counter::AnswersWouldDecoy,
    })
}

/// `botgate_blocked_total`'s line for a request held at a rate limit or a challenge (the block
/// tier's are counted where its rules refuse, by reason).
fn held_by(d: &Decision) -> Option<Counter> {
    use crate::policy::ChallengeType;
    let has = |r: &str| d.reasons.contains(&r);
    match d.verdict {
        Verdict::RateLimited if has("rate_limit_global") => Some(Counter::BlockedRateGlobal),
        Verdict::RateLimited if has("rate_limit_fleet") => Some(Counter::BlockedRateFleet),
        Verdict::RateLimited if has("crawler_rate_exceeded") => Some(Counter::BlockedRateCrawler),
        Verdict::RateLimited if has("api_contract_exceeded") => Some(Counter::BlockedRateApiContract),
        Verdict::RateLimited => Some(Counter::BlockedRateIp),
        Verdict::Challenge(ChallengeType::ProofOfWork) => Some(Counter::BlockedChallengePow),
        Verdict::Challenge(ChallengeType::WebauthnStepUp) => Some(Counter::BlockedChallengeWebauthn),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
