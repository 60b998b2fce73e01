//! The stages after the waits, in request order: detect, observe (the request recorded in its
//! session, and the signals it gives), the challenge answered in headers, score, rule. Each reads
//! what the ones before found in the request's [`Visit`] and adds its own. (Identify is in
//! `identify.rs`, act in `act.rs`.)

use super::act::passed;
use super::visit::strongest;
use super::visit::Visit;
use super::{Engine, Pending};
use crate::base::telemetry::Counter;
use crate::challenge::gate::{self, Judged};
use crate::decision::record::{Decision, VendorEvidence};
use crate::decision::ruling::{self, Facts, Ruling};
use crate::formats::vendors::Ask;
use crate::policy::{DetectorAction, RiskTier};
use crate::request::fetch::{self, Fetch};
use crate::request::head::Head;
use crate::score::campaigns::{self, Landing};
use crate::score::headers::{header_signals, submission_signal};
use crate::score::session::session_signals;
use crate::score::signal::{self, Signal};

use crate::score::session::SESSION_ALPHA;

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
        let tier = self.policy.endpoint_tier(head.method(), path);
        let mut v = Visit::new(head, path, p.client, now, tier, d.would.take());
        v.must_pass = p.must_pass;
        let Some(det) = self.detector.as_mut().filter(|d| d.config().applies(path)) else { return v };
        let hit = det.observe(head, path, p.client.keyed, body, now);
        d.fingerprint = Some(hit.fingerprint);
        d.fingerprint_count = hit.count;
        d.similarity = hit.near_duplicate;
        v.over_limit = hit.flagged;
        v
    }

    /// The detector's verdict, with the session known: the same request repeated is flagged,
    /// unless it is a page's own call repeated because the person opened page after page (a
    /// shop's cart count on every page): the session's own calls of it no more than two per page
    /// it loaded inside the detector's window. The detector counts by client address, where
    /// everyone behind an iCloud Private Relay or Tor exit adds up; the excuse counts the
    /// session's own. An API hammered with no pages around it, or one page polling it fast, is
    /// still flagged.
    pub(super) fn repeat(&mut self, v: &mut Visit<'_>, d: &mut Decision) {
        let Some(det) = self.detector.as_ref() else { return };
        let window_ms = det.config().window_ms;
        let block = det.config().action == DetectorAction::Block;
        // Not a page itself: a page's script, image or API call (a client whose headers a proxy
        // stripped says neither, and its pages are counted as it is: see `observe`).
        // A read (a body repeated is a flood, not a page's call).
        // (On an address's shared session, the calls and pages of everyone on it are counted
        // together: a script there gains at most what the others' pages leave over.)
        let page_call = !matches!(v.fetch, Fetch::Navigation { .. }) && matches!(v.head.method(), b"GET" | b"HEAD");
        let own_calls = match (page_call, d.fingerprint) {
            (true, Some(fp)) => {
                let session = self.sessions.get(v.key, v.now);
                Some((session.count_call(fp, v.now, window_ms), session.pages_within(v.now, window_ms)))
            }
            _ => None,
        };
        if !v.over_limit {
            return;
        }
        if own_calls.is_some_and(|(calls, pages)| calls <= 2 * pages) {
            self.tally.bump(Counter::ExcusedPageCall);
            return;
        }
        v.flagged = true;
        v.signals.push(Signal { name: "fingerprint_repeat", strength: 1.0 });
        self.tally.bump(Counter::FlaggedFingerprint);
        if d.similarity.is_some() {
            d.reasons.push("near_duplicate_body");
            self.tally.bump(Counter::FlaggedNearDuplicate);
        }
        v.detector_block = block;
    }

    /// The observe stage: the signals of the head, the handshake and the answered lookups; the
    /// request recorded in its session and the session's signals; the campaign view; the
    /// sequence rules.
    pub(super) fn observe(&mut self, v: &mut Visit<'_>, p: &Pending) {
        let head = v.head;
        let tls = self.policy.tls.header.as_str();
        v.shape = campaigns::shape(head, if tls.is_empty() { b"" } else { head.first(tls).unwrap_or(b"") });
        header_signals(head, v.fetch, &mut v.signals);
        crate::score::tls::signal(&self.policy.tls, head, &mut v.signals);
        for (i, answer) in &p.answers {
            v.signals.extend(self.askers.get(*i).and_then(|a| a.signal(head, answer)));
        }
        if let Some(vendors) = self.policy.vendors.as_ref() {
            // Streams are looked up locally, on every tier; live sources were asked on theirs.
            let answer =
                p.answers.iter().find(|(i, _)| *i == 0).map(|(_, a)| a).filter(|_| vendors.tiers.contains(&v.tier));
            let mut c = answer.map(|a| super::vendors::Consulted::from_answer(vendors, a)).unwrap_or_default();
            c.add_streams(vendors, v.client.ip);
            if !c.answers.is_empty() {
                v.vendors = Some(c);
            }
        }
        // The session identify made (fetched again, never skipped: a stage that found none would
        // let the request pass unscored).
        let session = self.sessions.get(v.key, v.now);
        session.record(v.now, v.path, v.tier <= RiskTier::High);
        session.record_network(v.client.ip, v.now);
        let referer = match v.fetch {
            Fetch::Navigation { cold: Some(false) } => fetch::in_site_referer_path(head),
            _ => None,
        };
        let navigation = matches!(v.fetch, Fetch::Navigation { .. });
        let landing = navigation && session.navigations == 0;
        v.opens = if navigation { Landing::given(head, v.path, v.fetch) } else { Landing::Other };
        // As sent: referers name pages as the browser spelt them.
        session.record_fetch(v.fetch, head.path(), referer);
        // A page: a navigation, or a GET that says nothing of what it is (headers stripped by a
        // proxy) outside the paths the detector watches.
        if let Some(det) = self.detector.as_ref().map(|d| d.config()) {
            let watched = det.applies(v.path);
            if navigation || (v.fetch == Fetch::Other && head.method() == b"GET" && !watched) {
                session.record_page(v.now);
            }
        }
        if landing {
            // A genuine visitor cookie of a session this worker forgot: a visit going on (a tab
            // left open past the session's lifetime), not one opening.
            session.landing = if v.visitor.is_some() { Landing::Other } else { v.opens };
            let network = v.client.ip.map(|ip| {
                let net = crate::identity::session::network(ip);
                self.ids.hash(&[b"campaign network", &net.to_le_bytes()])
            });
            self.campaigns.land(v.shape, session.landing, network, v.now);
            session.landed_in_campaign = self.campaigns.is_campaign(v.shape, session.landing, v.now);
        } else if navigation && fetch::direct(head, false) {
            session.record_direct(v.now);
        }
        // Part of a campaign: a session of its own (a visitor cookie, signed in) that opened the
        // campaign's way, while the campaign lasts (following the site's links afterwards does
        // not clear it: a scripted browser clicks too; a passed challenge does); on an
        // address's shared session, where strangers behind one NAT meet, only a navigation that
        // itself opens that way.
        let own = v.key.visitor || v.key.authenticated;
        let class = match own {
            true if session.landed_in_campaign => session.landing,
            true => Landing::Other,
            false => v.opens,
        };
        // (The weight's lookup only for a session that opened a way a campaign can.)
        let switched_on = || self.policy.weights.of("campaign_landings") > 0.0;
        if class != Landing::Other && switched_on() && self.campaigns.is_campaign(v.shape, class, v.now) {
            v.campaign = Some(v.shape);
        }
        // The site's rendering share: one word per session (at its second navigation), from
        // sessions nothing flags.
        let unflagged = session.score < 0.3 && !session.challenge_failed;
        if matches!(v.fetch, Fetch::Navigation { .. }) && session.navigations == 2 && unflagged {
            self.rendering.record(session.subresources > 0);
        }
        let profile = session.profile(v.now);
        v.requests = profile.requests;
        session_signals(&profile, self.rendering.site_renders(), &mut v.signals);
        submission_signal(head, v.tier == RiskTier::Critical, &mut v.signals);
        // Last: these only corroborate what the other signals flag.
        let others = signal::score(&self.policy.weights, &v.signals);
        self.campaigns.signal(v.shape, v.now, others, &mut v.signals);
        crate::score::beacon::signals(&profile, v.now, others, &mut v.signals);
        v.broken = self.sequences.check(session, head.method(), v.path, v.client.keyed, v.now).map(str::to_string);
    }

    /// An API client retrying with its puzzle's solution in headers.
    pub(super) fn answer_submission(&mut self, v: &mut Visit<'_>, d: &mut Decision) {
        let Some((c, s)) = gate::header_submission(v.head) else { return };
        let (key, now, spent) = (v.key, v.now, v.spent);
        let w = v.who();
        let session = self.sessions.get(key, now);
        match self.gate.judge(c, s, w, session.passed_nonce, spent, &mut self.tally) {
            Judged::Solved(solved) => passed(d, &self.gate.pass(&solved, session, w), &self.gate),
            Judged::Failed(reason) => {
                self.gate.fail(session);
                d.reasons.push(reason);
            }
            Judged::Deferred(reason, puzzle) => {
                self.gate.refund(session, puzzle);
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
        let own = signal::combine_into(weights, &v.signals, &mut d.reasons);
        let score = self.with_vendors(v, d, own);
        let vendor_challenge = self.vendor_asks(v, Ask::Challenge);
        d.campaign = v.campaign;
        // A detector in warn mode only observes: what its signal adds is recorded, not enforced.
        v.enforce_score = if v.warn_only() {
            let quiet: Vec<Signal> = v.signals.iter().filter(|s| s.name != "fingerprint_repeat").copied().collect();
            self.policy
                .vendors
                .as_ref()
                .zip(v.vendors.as_ref())
                .map_or(signal::combine(weights, &quiet).0, |(vs, c)| {
                    super::vendors::combine(vs, signal::combine(weights, &quiet).0, c).0
                })
        } else {
            score
        };
        let session = self.sessions.get(v.key, v.now);
        // A session's first request sets its score; later ones move it.
        session.score = if v.requests <= 1 {
            v.enforce_score
        } else {
            SESSION_ALPHA * v.enforce_score + (1.0 - SESSION_ALPHA) * session.score
        };
        v.challenge_failed = session.challenge_failed || v.inherited.0;
        v.step_up_pending = session.step_up_pending;
        // Part of a campaign: named among the reasons, and asked to prove itself whatever its
        // score (it adds nothing to the score, so it can never make a block).
        if v.campaign.is_some() {
            d.reasons.push("campaign_landings");
        }
        v.must_pass = if session.must_pass {
            Some("inherited_challenge_failed")
        } else {
            v.campaign.map(|_| "challenge_tier").or(v.must_pass).or(vendor_challenge)
        };
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
            must_pass: v.must_pass,
            broken: v.broken.is_some(),
            detector_block: v.detector_block,
            vendor_block: self.vendor_asks(v, Ask::Block),
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
                v.would = strongest(v.would, r.verdict);
                d.reasons.push(r.reason);
            }
            return enforced;
        }
        ruling
    }

    /// botgate's score with the vendor sources' (when consulted): the evidence lists every
    /// source, answered or missing, and the sources that raised the score are among the reasons.
    fn with_vendors(&self, v: &Visit<'_>, d: &mut Decision, own: f64) -> f64 {
        let (Some(vendors), Some(consulted)) = (&self.policy.vendors, &v.vendors) else { return own };
        d.vendors = consulted
            .answers
            .iter()
            .map(|a| VendorEvidence {
                name: a.name.clone(),
                answer: a.result.as_ref().map(|r| (r.score, r.reasons.clone())).map_err(Clone::clone),
            })
            .collect();
        let (score, raised) = super::vendors::combine(vendors, own, consulted);
        for name in raised {
            d.reasons.extend(vendors.sources.iter().find(|s| s.name == name).map(|s| s.reason));
        }
        score
    }

    /// The reason of the first source asking for `what` (a block, a challenge).
    fn vendor_asks(&self, v: &Visit<'_>, what: Ask) -> Option<&'static str> {
        let name = v.vendors.as_ref()?.asks(what)?;
        self.policy.vendors.as_ref()?.sources.iter().find(|s| s.name == name).map(|s| s.reason)
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
