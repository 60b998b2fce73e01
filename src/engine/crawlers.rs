//! The crawler stage, on the head right after the allow tier: a user agent that claims a known
//! crawler must prove it, by an address in the crawler's published ranges or by forward-confirmed
//! reverse DNS (a lookup the request waits for, [`FCRDNS`]).
//!
//! A proven crawler gets what the policy says for it (allow within its rate, challenge, block, or
//! ordinary scoring). A claim that a configured proof refutes is an impersonation: the block
//! tier, whatever the score (seed 004: a crawler that presents Googlebot's user agent and fails
//! both checks is a higher-priority threat, not a lower one). A claim that could not be checked
//! (the resolver timed out, or the crawler has no proof configured) is never allowed: it is scored
//! like any client, with `crawler_unverified` among its reasons.

use super::lookups::{Answer, Lookup, Ttl};
use super::{Engine, Pending};
use crate::base::telemetry::Counter;
use crate::base::window::RollingWindow;
use crate::checks::fcrdns::is_under;
use crate::decision::record::{BotLabel, Decision, Verdict};
use crate::policy::crawlers::{Crawler, CrawlerAction, Purpose, CUSTOMER_DOMAINS};
use crate::policy::RateLimit;
use crate::request::head::Head;

/// The lookup service of forward-confirmed reverse DNS: the key is the address, the answer the
/// confirmed name ([`Answer::NotFound`] when none confirms).
pub const FCRDNS: &str = "fcrdns";

/// A crawler claim on its way through the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Index into the policy's crawler table.
    pub crawler: usize,
    pub proof: Proof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// Waiting for the reverse-DNS lookup.
    Awaiting,
    Ranges,
    Fcrdns,
    /// A valid Web Bot Auth signature by one of its keys.
    Signature,
    /// A configured proof says no: impersonation.
    Refuted,
    /// A signature as the agent that does not hold (forged, tampered, expired, replayed): why.
    BadSignature(&'static str),
    /// Nothing could say yes or no.
    Unchecked,
}

impl Proof {
    fn label(self) -> &'static str {
        match self {
            Proof::Ranges => "published_ranges",
            Proof::Fcrdns => "fcrdns",
            Proof::Signature => "signature",
            _ => "none",
        }
    }
}

impl Engine {
    /// Reads the request's crawler claim into `p`; the lookup to wait for when its proof needs
    /// one that is not cached.
    pub(super) fn claim(&mut self, head: &Head, p: &mut Pending, now: u64) -> Option<Lookup> {
        let crawlers = self.policy.crawlers.as_ref()?;
        let ua = head.first("user-agent")?;
        // Every request asks; the answers for the worker's recent user agents are kept.
        let i = self.claims.get(ua, || crawlers.claimed(ua))?;
        let c = crawlers.list.get(i)?;
        let ip = p.client.ip;
        let in_ranges = ip.is_some_and(|ip| c.in_ranges(ip));
        let doh = crawlers.doh.as_ref().filter(|_| !c.rdns_suffixes.is_empty());
        let proof = match (in_ranges, doh, ip) {
            (true, _, _) => Proof::Ranges,
            (false, Some(_), Some(ip)) => {
                let q = Lookup { service: FCRDNS, key: crate::base::iptable::canonical(ip).to_string() };
                match self.lookups.get(&q, &p.client, now, self.fcrdns_ttl()) {
                    Some(a) => proof_of(c, &a),
                    None => {
                        p.claim = Some(Claim { crawler: i, proof: Proof::Awaiting });
                        return Some(q);
                    }
                }
            }
            _ if c.provable(false) => Proof::Refuted,
            _ => Proof::Unchecked,
        };
        p.claim = Some(Claim { crawler: i, proof });
        None
    }

    /// Takes the lookup's answer (`None`: it could not be asked) for a claim that waited for it.
    /// False when `p` was not waiting for one.
    pub(super) fn answer_claim(&mut self, p: &mut Pending, question: Lookup, answer: Option<Answer>, now: u64) -> bool {
        let Some(claim) = p.claim.as_mut().filter(|c| c.proof == Proof::Awaiting) else { return false };
        let ttl = self.fcrdns_ttl();
        if !matches!(answer, Some(Answer::Value(_) | Answer::NotFound)) {
            self.tally.bump(Counter::CrawlerLookupFailed);
        }
        claim.proof = match (self.policy.crawlers.as_ref().and_then(|t| t.list.get(claim.crawler)), &answer) {
            (Some(c), Some(a)) => proof_of(c, a),
            _ => Proof::Unchecked,
        };
        if let Some(a) = answer {
            self.lookups.put(question, a, &p.client, now, ttl);
        }
        true
    }

    fn fcrdns_ttl(&self) -> Ttl {
        let doh = self.policy.crawlers.as_ref().and_then(|c| c.doh.as_ref());
        doh.map_or(Ttl::flat(0), |d| Ttl {
            found_ms: d.cache_seconds * 1000,
            not_found_ms: d.negative_cache_seconds * 1000,
        })
    }

    /// What the claim in `p` decides: an allowed, refused or impersonating crawler is decided
    /// here; a crawler to be scored or challenged goes on, labelled.
    pub(super) fn judge_claim(&mut self, p: &mut Pending, head: &Head, now: u64) -> Option<Decision> {
        if let Some(why) = p.bad_signature.take() {
            self.tally.bump_named(&format!("botgate_signed_requests_total.result.{why}"));
            p.refused.push("signature_invalid");
        }
        let mut claim = p.claim.clone()?;
        let c = self.policy.crawlers.as_ref()?.list.get(claim.crawler)?;
        // Link previews and user-triggered fetches also come from people's own devices with the
        // same token in a browser's user agent (iMessage says facebookexternalhit): a miss is
        // not proof of a lie there.
        if claim.proof == Proof::Refuted && matches!(c.purpose, Purpose::Preview | Purpose::UserFetch) {
            claim.proof = Proof::Unchecked;
        }
        let label = BotLabel {
            name: c.name.clone(),
            operator: c.operator.clone(),
            purpose: c.purpose.name(),
            verified: claim.proof.label(),
            // An agent that could have signed and did not is asked to, when it is refused.
            signs: c.signer.is_some(),
        };
        if c.signer.is_some() && matches!(claim.proof, Proof::Signature | Proof::BadSignature(_)) {
            let result = match claim.proof {
                Proof::BadSignature(why) => why,
                _ => "valid",
            };
            self.tally.bump_named(&format!("botgate_signed_requests_total.crawler.{}.result.{result}", c.name));
        }
        // Crawlers read; a proven one writing (a form, a login) is scored like anyone.
        let reads = matches!(head.method(), b"GET" | b"HEAD");
        // Past the verified_search_crawler condition's `expires`, no crawler is allowed: scored.
        let lapsed = self.policy.tiers.crawler.as_ref().is_some_and(|t| t.stewardship.expired(now / 1000));
        let action =
            if c.action == CrawlerAction::Allow && (!reads || lapsed) { CrawlerAction::Score } else { c.action };
        let robots = self.policy.crawlers.as_ref().and_then(|t| t.robots.as_ref());
        // A verified crawler reading what the origin's robots.txt disallows: refused or noted.
        let (path, own) = robots.map(|_| (robots_path(head), own_token(c, head))).unwrap_or_default();
        let tokens = [own.as_str(), c.name.as_str()];
        let disallowed = robots.filter(|r| !r.allows(&tokens, &path)).map(|r| r.refuse);
        let rate = stricter(c.rate, robots.and_then(|r| r.rate(&tokens)));
        if disallowed.is_some()
            && action == CrawlerAction::Allow
            && matches!(claim.proof, Proof::Ranges | Proof::Fcrdns)
        {
            self.tally.bump_named(&format!("botgate_crawler_robots_disallowed_total.crawler.{}", c.name));
        }
        let metric = format!("botgate_crawler_requests_total.crawler.{}.verified.{}", c.name, claim.proof.label());
        self.tally.bump_named(&metric);
        p.bot = Some(Box::new(label));
        match claim.proof {
            Proof::Ranges | Proof::Fcrdns | Proof::Signature => match action {
                CrawlerAction::Allow => match disallowed {
                    Some(true) => self.refuse(p, "robots_disallowed", Counter::BlockedCrawlerRobots),
                    Some(false) => Some(self.allow_crawler(p, claim.crawler, rate, Some("robots_disallowed"), now)),
                    None => Some(self.allow_crawler(p, claim.crawler, rate, None, now)),
                },
                CrawlerAction::Block => self.refuse(p, "crawler_refused", Counter::BlockedCrawler),
                CrawlerAction::Challenge => {
                    p.must_pass = Some("crawler_challenged");
                    None
                }
                CrawlerAction::Score => None,
            },
            Proof::Refuted => {
                let name = p.bot.as_ref().map(|b| b.name.clone()).unwrap_or_default();
                self.tally.bump_named(&format!("botgate_crawler_impersonation_total.crawler.{name}"));
                self.refuse(p, "crawler_impersonation", Counter::BlockedCrawlerImpersonation)
            }
            Proof::BadSignature(_) => self.refuse(p, "signature_invalid", Counter::BlockedSignature),
            Proof::Unchecked | Proof::Awaiting => {
                p.refused.push("crawler_unverified");
                None
            }
        }
    }

    /// A proven crawler within its rate: the allow tier.
    fn allow_crawler(
        &mut self,
        p: &mut Pending,
        i: usize,
        rate: Option<crate::policy::RateLimit>,
        noted: Option<&'static str>,
        now: u64,
    ) -> Decision {
        let mut d = Decision::pass(p.client.ip);
        d.bot = p.bot.take();
        d.detail = d.bot.as_ref().map(|b| b.name.clone());
        let over = rate.and_then(|r| {
            if self.crawler_rates.len() <= i {
                self.crawler_rates.resize_with(i + 1, || None);
            }
            let w = self.crawler_rates.get_mut(i)?.get_or_insert_with(|| RollingWindow::for_limit(r.max_requests));
            w.admit(now, r.max_requests, r.window_ms).err()
        });
        if let Some(refused) = over {
            self.tally.bump(Counter::RateLimitedCrawler);
            d.reasons.push("crawler_rate_exceeded");
            if !self.observing(false) {
                d.verdict = Verdict::RateLimited;
                d.retry_after_s = refused.retry_after_ms.div_ceil(1000);
                return self.record(d);
            }
            d.would = Some(Verdict::RateLimited);
        }
        self.tally.bump(Counter::AllowCrawler);
        d.verdict = Verdict::Allow;
        let signed = d.bot.as_ref().is_some_and(|b| b.verified == "signature");
        d.reasons.insert(0, if signed { "verified_signed_agent" } else { "verified_search_crawler" });
        d.reasons.extend(noted);
        self.record(d)
    }

    /// The block tier for a crawler claim (observe mode records it and lets the request on).
    fn refuse(&mut self, p: &mut Pending, reason: &'static str, counter: Counter) -> Option<Decision> {
        if self.observing(false) {
            p.observed.push(reason);
            return None;
        }
        self.tally.bump(counter);
        let mut d = Decision::pass(p.client.ip);
        d.verdict = Verdict::Block;
        d.score = 1.0;
        d.reasons.push(reason);
        d.bot = p.bot.take();
        d.detail = d.bot.as_ref().map(|b| b.name.clone());
        Some(self.record(d))
    }
}

/// The path robots.txt is matched against: as the origin will route it (`//`, dot segments and
/// `;params` would otherwise spell a disallowed path another way), with its query.
fn robots_path(head: &Head) -> String {
    let path = crate::request::path::normalise(head.path(), false);
    let mut out = String::from_utf8_lossy(&path).into_owned();
    if !head.query().is_empty() {
        out.push('?');
        out.push_str(&String::from_utf8_lossy(head.query()));
    }
    out
}

/// The crawler's own product token in its user agent (`Googlebot-Image` for
/// `Googlebot-Image/1.0`), lower case: the token it claimed, widened to the whole word.
fn own_token(c: &Crawler, head: &Head) -> String {
    let ua = head.first("user-agent").unwrap_or_default();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    let found = c.user_agents.iter().find_map(|t| {
        let t = t.as_bytes();
        ua.windows(t.len().max(1)).position(|w| w.eq_ignore_ascii_case(t))
    });
    let Some(at) = found else { return c.name.clone() };
    let start = ua.get(..at).map_or(at, |before| before.iter().rposition(|b| !word(b)).map_or(0, |i| i + 1));
    let end = ua.get(at..).map_or(at, |after| at + after.iter().position(|b| !word(b)).unwrap_or(after.len()));
    ua.get(start..end).map(|w| String::from_utf8_lossy(w).to_ascii_lowercase()).unwrap_or_else(|| c.name.clone())
}

/// The lower of two rates (by requests allowed per millisecond of window).
fn stricter(a: Option<RateLimit>, b: Option<RateLimit>) -> Option<RateLimit> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (ra, rb) = (u64::from(a.max_requests) * b.window_ms, u64::from(b.max_requests) * a.window_ms);
            Some(if rb < ra { b } else { a })
        }
        (a, b) => a.or(b),
    }
}

/// What a reverse-DNS answer proves for crawler `c`: a confirmed name under its domains, or a
/// refutation (no name, or another operator's); a failed lookup proves nothing.
fn proof_of(c: &Crawler, a: &Answer) -> Proof {
    match a {
        Answer::Value(name)
            if c.rdns_suffixes.iter().any(|s| is_under(name, s))
                && !CUSTOMER_DOMAINS.iter().any(|d| is_under(name, d)) =>
        {
            Proof::Fcrdns
        }
        Answer::Value(_) | Answer::NotFound => Proof::Refuted,
        Answer::Failed => Proof::Unchecked,
    }
}
