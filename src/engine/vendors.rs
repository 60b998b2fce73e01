//! Vendor signals: the policy's external score sources, asked once per client (a lookup the
//! request waits for, cached for the sources' TTL), and their answers combined with botgate's
//! own score.
//!
//! The shell asks every source at once and answers with what each said ([`SourceAnswer`]), or
//! why it said nothing (a timeout, an error, garbage, its circuit open). A missing answer is
//! missing, not 0: the combination uses the answers that arrived and botgate's own score, so a
//! source that fails can never make a request look cleaner than botgate alone finds it (with
//! `max`), and with no answers at all the decision is botgate's own. A source asking for a block
//! (CrowdSec `ban`) is the block tier; one asking for a challenge gets botgate's challenge.

use super::lookups::{Answer, Asker, Lookup};
use super::{Engine, Pending};
use crate::formats::vendors::{Ask, Reading};
use crate::identity::client::Client;
use crate::identity::session_id::anonymous_key;
use crate::identity::session_id::IdKey;
use crate::policy::vendors::{Combine, Vendors};
use crate::policy::EndpointRule;
use crate::request::fetch;
use crate::request::head::Head;
use crate::score::headers::header_signals;
use crate::score::session::SESSION_ALPHA;
use crate::score::signal;
use crate::score::signal::Signal;

/// The lookup service of the vendor sources: the key is the client's address.
pub const VENDORS: &str = "vendors";

/// One source's answer, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceAnswer {
    pub name: String,
    pub result: Result<Reading, String>,
}

/// The answers of one round, as the lookup cache keeps them: one line per source,
/// `name \t ok \t score \t ask \t reasons` or `name \t missing \t why`.
pub fn encode(answers: &[SourceAnswer]) -> String {
    let mut out = String::new();
    for a in answers {
        let line = match &a.result {
            Ok(r) => {
                let ask = match r.ask {
                    Ask::Nothing => "-",
                    Ask::Block => "block",
                    Ask::Challenge => "challenge",
                };
                let score = if r.scored { r.score.to_string() } else { "-".into() };
                format!("{}\tok\t{score}\t{ask}\t{}\n", a.name, r.reasons.join(","))
            }
            Err(why) => format!("{}\tmissing\t{}\n", a.name, why.replace(['\t', '\n'], " ")),
        };
        out.push_str(&line);
    }
    out
}

pub fn decode(text: &str) -> Vec<SourceAnswer> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let name = f.next()?.to_string();
            let result = match f.next()? {
                "ok" => {
                    let (score, scored) = match f.next()? {
                        "-" => (0.0, false),
                        s => (s.parse().ok().filter(|s: &f64| (0.0..=1.0).contains(s))?, true),
                    };
                    let ask = match f.next()? {
                        "block" => Ask::Block,
                        "challenge" => Ask::Challenge,
                        _ => Ask::Nothing,
                    };
                    let reasons =
                        f.next().unwrap_or("").split(',').filter(|r| !r.is_empty()).map(str::to_string).collect();
                    Ok(Reading { score, scored, reasons, ask })
                }
                _ => Err(f.next().unwrap_or("unknown").to_string()),
            };
            Some(SourceAnswer { name, result })
        })
        .collect()
}

/// Which requests consult the sources: those on the configured endpoint tiers, for the sampled
/// share of clients (by address, so a client is consulted for all its requests or none).
pub struct VendorAsker {
    vendors: Vendors,
    endpoints: Vec<EndpointRule>,
    fold_case: bool,
    /// Keys the sampling draw: which addresses are left out cannot be worked out from the code
    /// (every worker and Envoy sharing the clearance key draws alike).
    draw: IdKey,
}

impl VendorAsker {
    pub fn new(vendors: Vendors, endpoints: Vec<EndpointRule>, fold_case: bool, draw: IdKey) -> Self {
        VendorAsker { vendors, endpoints, fold_case, draw }
    }
}

impl Asker for VendorAsker {
    fn question(&self, head: &Head, client: &Client) -> Option<Lookup> {
        let ip = client.ip?;
        if !self.vendors.has_live() {
            return None; // streams are looked up locally, in the observe stage
        }
        // The path as the rules compare it: `//login` is `/login` to the tiers too.
        let path = crate::request::path::normalise(head.path(), self.fold_case);
        let tier =
            self.endpoints.iter().find(|r| r.matches(head.method(), &path)).map_or(Default::default(), |r| r.tier);
        if !self.vendors.tiers.contains(&tier) {
            return None;
        }
        if self.vendors.sample_rate < 1.0 {
            // By the keyed address (an IPv6 client's prefix): all of a client's addresses or none.
            let keyed = client.keyed.unwrap_or(ip).to_string();
            let draw = self.draw.hash(&[b"vendor-sample", keyed.as_bytes()]) % 10_000;
            if draw as f64 >= self.vendors.sample_rate * 10_000.0 {
                return None;
            }
        }
        Some(Lookup { service: VENDORS, key: crate::base::iptable::canonical(ip).to_string() })
    }

    fn ttl_ms(&self) -> u64 {
        self.vendors.cache_ms()
    }

    /// Vendors move the score by combination ([`combine`]), not as a signal.
    fn signal(&self, _head: &Head, _answer: &Answer) -> Option<Signal> {
        None
    }

    fn band(&self) -> Option<(f64, f64)> {
        Some(self.vendors.band).filter(|&b| b != (0.0, 1.0))
    }
}

impl Engine {
    /// Whether botgate's own score, as far as it is known before the waits, may fall in `band`.
    /// Above it only when even the least this request can end at is above it: the session's
    /// score after this request moves it (at least the header signals' share of it), or what it
    /// inherits, or 1 for a failed challenge. Below it when the most it shows now is below it:
    /// the session's score so far, what it inherits, or the request's header signals. A new
    /// signed-in session reads the anonymous session it will start from (a made-up session id
    /// sheds nothing here either). Nothing is written: the session's own stages run after the
    /// waits.
    pub(super) fn in_band(&mut self, band: (f64, f64), head: &Head, p: &Pending, now: u64) -> bool {
        let id = self.session_of(head, p.client.keyed);
        let mut own = self.sessions.live(id.key.id, now).map(|s| (s.challenge_failed, s.score));
        if own.is_none() && id.inherits {
            let from = anonymous_key(&self.ids, head, p.client.keyed, id.visitor.map(|v| v.id)).id;
            own = self.sessions.live(from, now).map(|s| (s.challenge_failed, s.score));
        }
        let (own_failed, own) = own.unwrap_or((false, 0.0));
        let (failed, inherited) = self.penalties(&id.answers_for, now);
        if failed || own_failed {
            return band.1 >= 1.0;
        }
        let mut signals = Vec::with_capacity(8);
        header_signals(head, fetch::fetch_kind(head), &mut signals);
        crate::score::tls::signal(&self.policy.tls, head, &mut signals);
        let local = signal::combine(&self.policy.weights, &signals).0;
        let least = local.max(inherited).max(SESSION_ALPHA * local + (1.0 - SESSION_ALPHA) * own);
        let most = local.max(inherited).max(own);
        least <= band.1 && most >= band.0
    }
}

/// Failures in a row that open a source's circuit, and how long it stays open.
pub const TRIP_AFTER: u32 = 5;
pub const OPEN_MS: u64 = 30_000;

/// A source's circuit breaker: after [`TRIP_AFTER`] failures in a row it is skipped for
/// [`OPEN_MS`] (read as missing, nothing sent); then half open: one round probes it (the others
/// still skip it, so a recovering source is not met by every waiting client at once), and the
/// probe's failure opens it again, its answer closes it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    failures: u32,
    open_until: u64,
    tripped: bool,
}

impl Breaker {
    /// Whether the source may be asked at `now`; once half open, only the first asker is.
    pub fn admit(&mut self, now: u64) -> bool {
        if now < self.open_until {
            return false;
        }
        if self.tripped {
            // The probe holds the circuit until it answers or fails.
            self.open_until = now + OPEN_MS;
        }
        true
    }

    /// Whether a round asking now would be the half-open circuit's probe.
    pub fn half_open(&self, now: u64) -> bool {
        self.tripped && now >= self.open_until
    }

    /// The probe's round ended with neither an answer nor a failure (the requests waiting for it
    /// went away): the next round probes, so a client hanging up cannot keep the source shut.
    pub fn release(&mut self, now: u64) {
        if self.tripped {
            self.open_until = self.open_until.min(now);
        }
    }

    pub fn answered(&mut self) {
        *self = Breaker::default();
    }

    /// Counts a failure; `true` when it opens the circuit.
    pub fn failed(&mut self, now: u64) -> bool {
        self.failures = self.failures.saturating_add(1);
        if !self.tripped && self.failures < TRIP_AFTER {
            return false;
        }
        self.tripped = true;
        self.open_until = now + OPEN_MS;
        true
    }
}

/// What the sources said for a request, as the score and rule stages use it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Consulted {
    pub answers: Vec<SourceAnswer>,
}

impl Consulted {
    /// Whether any source answered.
    pub fn spoke(&self) -> bool {
        self.answers.iter().any(|a| a.result.is_ok())
    }

    /// From the lookup's answer (a failed lookup: every source missing).
    pub fn from_answer(vendors: &Vendors, answer: &Answer) -> Consulted {
        let answers = match answer {
            Answer::Value(text) => decode(text),
            _ => Vec::new(),
        };
        // Every configured source appears, answered or missing (and why).
        let answers = vendors
            .sources
            .iter()
            .filter(|s| s.live())
            .map(|s| {
                answers.iter().find(|a| a.name == s.name).cloned().unwrap_or_else(|| SourceAnswer {
                    name: s.name.clone(),
                    result: Err(if matches!(answer, Answer::Value(_)) { "no_answer" } else { "lookup_failed" }.into()),
                })
            })
            .collect();
        Consulted { answers }
    }

    /// Whether every configured source is in the answer (answered or missing for a reason):
    /// an answer made for another policy's sources is not this policy's to keep.
    pub fn covers(vendors: &Vendors, answer: &Answer) -> bool {
        let Answer::Value(text) = answer else { return true };
        let names = decode(text);
        vendors.sources.iter().filter(|s| s.live()).all(|s| names.iter().any(|a| a.name == s.name))
    }

    /// The stream sources' word on `ip`, from the decisions last fetched (no callout).
    pub fn add_streams(&mut self, vendors: &Vendors, ip: Option<std::net::IpAddr>) {
        for s in vendors.sources.iter().filter(|s| !s.live()) {
            let (ban, captcha) = &*s.decisions;
            let reading = match ip {
                Some(ip) if ban.contains(ip) => {
                    Reading { score: 1.0, scored: true, reasons: vec!["crowdsec_ban".into()], ask: Ask::Block }
                }
                Some(ip) if captcha.contains(ip) => {
                    Reading { score: 0.5, scored: true, reasons: vec!["crowdsec_captcha".into()], ask: Ask::Challenge }
                }
                _ => Reading { score: 0.0, scored: false, reasons: Vec::new(), ask: Ask::Nothing },
            };
            self.answers.push(SourceAnswer { name: s.name.clone(), result: Ok(reading) });
        }
    }

    /// The first source asking for a block, then one asking for a challenge.
    pub fn asks(&self, what: Ask) -> Option<&str> {
        self.answers.iter().find(|a| a.result.as_ref().is_ok_and(|r| r.ask == what)).map(|a| a.name.as_str())
    }
}

/// botgate's score `own` combined with the sources that answered; the names of the sources
/// that raised it.
pub fn combine(vendors: &Vendors, own: f64, consulted: &Consulted) -> (f64, Vec<String>) {
    let arrived: Vec<(&str, f64, f64)> = consulted
        .answers
        .iter()
        .filter_map(|a| {
            let weight = vendors.sources.iter().find(|s| s.name == a.name).map_or(1.0, |s| s.weight);
            a.result.as_ref().ok().filter(|r| r.scored).map(|r| (a.name.as_str(), r.score, weight))
        })
        .collect();
    let combined = match vendors.combine {
        Combine::Max => arrived.iter().map(|a| a.1).fold(own, f64::max),
        Combine::WeightedMean => {
            let (sum, weights) = arrived
                .iter()
                .fold((own * vendors.local_weight, vendors.local_weight), |(s, w), a| (s + a.1 * a.2, w + a.2));
            if weights > 0.0 {
                sum / weights
            } else {
                own
            }
        }
    };
    let raised = if combined > own {
        arrived.iter().filter(|a| a.1 > own).map(|a| a.0.to_string()).collect()
    } else {
        Vec::new()
    };
    (combined.clamp(0.0, 1.0), raised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::vendors::{Adapter, Source};

    fn vendors(combine: Combine) -> Vendors {
        let source = |name: &str, weight| Source {
            name: name.into(),
            reason: "vendor_x",
            cluster: name.into(),
            authority: name.into(),
            timeout_ms: 100,
            cache_ms: 60_000,
            weight,
            adapter: Adapter::HttpJson { path: "/s".into(), score_pointer: "/s".into(), reasons_pointer: None },
            stream: None,
            decisions: Default::default(),
        };
        Vendors {
            sources: vec![source("a", 1.0), source("b", 1.0), source("c", 2.0)],
            combine,
            local_weight: 1.0,
            tiers: vec![crate::policy::RiskTier::Medium],
            band: (0.0, 1.0),
            sample_rate: 1.0,
        }
    }

    fn answered(pairs: &[(&str, Result<f64, &str>)]) -> Answer {
        let answers: Vec<SourceAnswer> = pairs
            .iter()
            .map(|(n, r)| SourceAnswer {
                name: (*n).into(),
                result: r
                    .map(|score| Reading { score, scored: true, reasons: vec!["r".into()], ask: Ask::Nothing })
                    .map_err(str::to_string),
            })
            .collect();
        Answer::Value(encode(&answers))
    }

    #[test]
    fn a_breaker_opens_after_five_failures_in_a_row_and_closes_on_an_answer() {
        let mut b = Breaker::default();
        for i in 0..4 {
            assert!(!b.failed(i) && b.admit(i), "failure {i} alone does not open it");
        }
        b.answered();
        for i in 0..4 {
            assert!(!b.failed(i), "an answer started the count again");
        }
        assert!(b.failed(10), "the fifth in a row opens it");
        assert!(!b.admit(10) && !b.admit(10 + OPEN_MS - 1));
        assert!(b.admit(10 + OPEN_MS), "half open after the period");
        assert!(!b.admit(10 + OPEN_MS), "one probe at a time");
        assert!(b.failed(10 + OPEN_MS + 5), "the probe's failure opens it again");
        assert!(!b.admit(10 + OPEN_MS + 6));
        assert!(b.admit(20 + 2 * OPEN_MS), "half open again");
        b.answered();
        assert!(b.admit(20 + 2 * OPEN_MS) && b.admit(20 + 2 * OPEN_MS), "the probe's answer closes it");
        assert!(!b.failed(30 + 2 * OPEN_MS), "and the count starts again");
    }

    #[test]
    fn the_answers_survive_the_cache_encoding() {
        let a = vec![
            SourceAnswer {
                name: "a".into(),
                result: Ok(Reading {
                    score: 0.25,
                    scored: true,
                    reasons: vec!["x".into(), "y".into()],
                    ask: Ask::Block,
                }),
            },
            SourceAnswer {
                name: "c".into(),
                result: Ok(Reading { score: 0.0, scored: false, reasons: vec![], ask: Ask::Nothing }),
            },
            SourceAnswer { name: "b".into(), result: Err("timeout".into()) },
        ];
        assert_eq!(decode(&encode(&a)), a);
    }

    #[test]
    fn max_takes_the_highest_of_own_and_the_answers_that_arrived() {
        let v = vendors(Combine::Max);
        let c = Consulted::from_answer(&v, &answered(&[("a", Ok(0.9)), ("b", Err("timeout")), ("c", Ok(0.1))]));
        assert_eq!(combine(&v, 0.3, &c), (0.9, vec!["a".to_string()]));
        assert_eq!(combine(&v, 0.95, &c).0, 0.95, "a vendor never lowers botgate's own score with max");
    }

    #[test]
    fn a_missing_source_is_missing_not_zero() {
        let v = vendors(Combine::WeightedMean);
        // Only a (weight 1) answered 0.8; own 0.2 (weight 1): the mean of those two.
        let c =
            Consulted::from_answer(&v, &answered(&[("a", Ok(0.8)), ("b", Err("garbage")), ("c", Err("circuit_open"))]));
        assert!((combine(&v, 0.2, &c).0 - 0.5).abs() < 1e-9);
    }

    #[test]
    fn with_every_source_missing_the_decision_is_botgates_own() {
        for combine_by in [Combine::Max, Combine::WeightedMean] {
            let v = vendors(combine_by);
            for answer in
                [Answer::Failed, answered(&[("a", Err("timeout")), ("b", Err("timeout")), ("c", Err("timeout"))])]
            {
                let c = Consulted::from_answer(&v, &answer);
                assert_eq!(combine(&v, 0.42, &c), (0.42, vec![]));
                assert!(c.answers.iter().all(|a| a.result.is_err()), "every source listed as missing");
            }
        }
    }

    #[test]
    fn weights_count_in_the_weighted_mean() {
        let v = vendors(Combine::WeightedMean);
        let c = Consulted::from_answer(&v, &answered(&[("a", Ok(0.0)), ("b", Ok(0.0)), ("c", Ok(1.0))]));
        // own 0.0 ×1, a 0 ×1, b 0 ×1, c 1 ×2 → 2/5.
        assert!((combine(&v, 0.0, &c).0 - 0.4).abs() < 1e-9);
    }

    #[test]
    fn a_source_answering_for_another_name_or_garbage_lines_is_ignored() {
        let v = vendors(Combine::Max);
        let c =
            Consulted::from_answer(&v, &Answer::Value("zzz\tok\t1\tblock\t\na\tok\t7\t-\t\nb\tok\tNaN\t-\t\n".into()));
        assert_eq!(combine(&v, 0.1, &c).0, 0.1);
        assert_eq!(c.asks(Ask::Block), None);
    }
}
