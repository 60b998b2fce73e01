//! Lookups: questions a stage must have answered from outside the worker before it can decide
//! (a reverse-DNS name, a vendor's score, …), and the cache their answers are kept in.
//!
//! A stage that needs one is an [`Asker`]: it names the question for a request and says what an
//! answer means for the score. The engine asks each asker in turn; an answer in the cache that is
//! young enough for the asker is used at once, a missing one pauses the request
//! ([`super::step::Step::NeedLookup`]) until the shell brings it (an HTTP callout).
//!
//! A failed lookup degrades: the request is decided without its answer (or with what the asker
//! makes of a failure). Failures are remembered for [`FAILED_TTL_MS`] per question *and* per
//! client (its keyed address, so an IPv6 /64), so a client whose lookups time out (its own PTR
//! zone, say) cannot make every request wait for a timeout, even by rotating addresses; and a
//! failure never replaces an answer that is still good (a liar cannot make its lie forgotten by
//! dropping the next query).

use crate::base::lru::Lru;
use crate::identity::client::Client;
use crate::request::head::Head;
use crate::score::signal::Signal;
use std::net::IpAddr;

/// A question, as the shell routes it: `service` names the callout (its cluster and wire
/// format), `key` what is asked (an address, a name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lookup {
    pub service: &'static str,
    pub key: String,
}

/// How long a failed lookup is remembered (the asker's TTL when that is shorter).
pub const FAILED_TTL_MS: u64 = 30_000;

/// How long a reader takes answers: a value, and "there is nothing" (a negative answer may be
/// kept for less time than a positive one, as DNS caches do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl {
    pub found_ms: u64,
    pub not_found_ms: u64,
}

impl Ttl {
    /// One TTL for every answer.
    pub fn flat(ms: u64) -> Ttl {
        Ttl { found_ms: ms, not_found_ms: ms }
    }
}

/// What a lookup came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Value(String),
    /// The service answered that there is nothing (NXDOMAIN, an unknown client).
    NotFound,
    /// No answer: timeout, refused connection, a reply that does not parse.
    Failed,
}

/// A stage that needs a lookup for some requests.
pub trait Asker {
    /// The question for this request, if it needs one.
    fn question(&self, head: &Head, client: &Client) -> Option<Lookup>;
    /// How old an answer this asker still takes (ms).
    fn ttl_ms(&self) -> u64;
    /// What the answer adds to the request's score (a failure included: a claimed crawler
    /// whose name cannot be checked is not a verified one).
    fn signal(&self, head: &Head, answer: &Answer) -> Option<Signal>;
    /// The local scores whose requests wait for this asker's answer (`None`: all of them). A
    /// request outside it uses a cached answer, and otherwise goes on without asking.
    fn band(&self) -> Option<(f64, f64)> {
        None
    }
}

/// Answers by question, with when each was had; negative answers and failures also by client
/// (its keyed address: an IPv6 /64 asks once, whichever of its addresses it uses). Bounded, the
/// least recently used go first; values are kept apart from the rest, so a flood of questions
/// answered "nothing" cannot push out the answers that let someone in.
pub struct Lookups {
    values: Lru<Lookup, (Answer, u64)>,
    answers: Lru<Lookup, (Answer, u64)>,
    /// (service, keyed client) → its last negative answer or failure, and when.
    failing: Lru<(&'static str, IpAddr), (Answer, u64)>,
}

impl Lookups {
    pub fn new(cap: usize) -> Self {
        Lookups { values: Lru::new(cap), answers: Lru::new(cap), failing: Lru::new(cap) }
    }

    /// The answer to `q` for a reader that takes answers as old as `ttl` says (failures up to
    /// [`FAILED_TTL_MS`]); a recent failure of the same client's lookups counts as the answer.
    pub fn get(&mut self, q: &Lookup, client: &Client, now: u64, ttl: Ttl) -> Option<Answer> {
        let fresh = |at: u64, a: &Answer| now < at.saturating_add(max_age(a, ttl));
        for table in [&mut self.values, &mut self.answers] {
            if let Some((a, at)) = table.get_mut(q) {
                if fresh(*at, a) {
                    return Some(a.clone());
                }
            }
        }
        let (a, at) = self.failing.get_mut(&(q.service, client.keyed?))?;
        fresh(*at, a).then(|| a.clone())
    }

    /// Keeps the answer to `q` had at `now`. A failure does not replace an answer still good for
    /// `ttl`, and marks the client's lookups of that service as failing.
    pub fn put(&mut self, q: Lookup, a: Answer, client: &Client, now: u64, ttl: Ttl) {
        if let Answer::Value(_) = a {
            self.answers.remove(&q);
            *self.values.get_or_insert_with(q, || (Answer::Failed, now)) = (a, now);
            return;
        }
        if let Some(keyed) = client.keyed {
            *self.failing.get_or_insert_with((q.service, keyed), || (Answer::Failed, now)) = (a.clone(), now);
        }
        let good = self.values.peek(&q).is_some_and(|(old, at)| now < at + max_age(old, ttl));
        if a == Answer::Failed && good {
            return;
        }
        self.values.remove(&q);
        *self.answers.get_or_insert_with(q, || (Answer::Failed, now)) = (a, now);
    }

    pub fn len(&self) -> usize {
        self.values.len() + self.answers.len() + self.failing.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How old an answer may be for a reader taking `ttl`.
fn max_age(a: &Answer, ttl: Ttl) -> u64 {
    match a {
        Answer::Value(_) => ttl.found_ms,
        Answer::NotFound => ttl.not_found_ms,
        Answer::Failed => ttl.found_ms.min(FAILED_TTL_MS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::client::IpSource;

    fn q(key: &str) -> Lookup {
        Lookup { service: "test", key: key.to_string() }
    }

    fn client(ip: &str) -> Client {
        let ip = ip.parse().ok();
        Client { ip, source: IpSource::Peer, keyed: ip }
    }

    #[test]
    fn answers_are_good_for_the_readers_ttl_and_failures_only_briefly() {
        let (mut c, who) = (Lookups::new(8), client("192.0.2.1"));
        c.put(q("a"), Answer::Value("x".into()), &who, 1_000, Ttl::flat(500));
        c.put(q("n"), Answer::NotFound, &who, 1_000, Ttl::flat(500));
        assert_eq!(c.get(&q("a"), &who, 1_499, Ttl::flat(500)), Some(Answer::Value("x".into())));
        assert_eq!(c.get(&q("a"), &who, 1_200, Ttl::flat(100)), None, "too old for a reader that takes 100 ms");
        assert_eq!(c.get(&q("n"), &who, 1_200, Ttl::flat(500)), Some(Answer::NotFound));
        assert_eq!(c.get(&q("a"), &who, 1_500, Ttl::flat(500)), None, "expired");
        c.put(q("f"), Answer::Failed, &who, 1_000, Ttl::flat(3_600_000));
        assert_eq!(c.get(&q("f"), &who, 1_000 + FAILED_TTL_MS - 1, Ttl::flat(3_600_000)), Some(Answer::Failed));
        assert_eq!(c.get(&q("f"), &who, 1_000 + FAILED_TTL_MS, Ttl::flat(3_600_000)), None, "asked again soon");
    }

    #[test]
    fn a_failure_does_not_replace_a_good_answer() {
        let (mut c, who) = (Lookups::new(8), client("192.0.2.1"));
        c.put(q("a"), Answer::Value("liar.example".into()), &who, 0, Ttl::flat(60_000));
        c.put(q("a"), Answer::Failed, &who, 5_000, Ttl::flat(60_000));
        assert_eq!(c.get(&q("a"), &who, 6_000, Ttl::flat(60_000)), Some(Answer::Value("liar.example".into())));
    }

    #[test]
    fn a_failing_client_is_remembered_across_its_addresses() {
        let mut c = Lookups::new(8);
        let one = Client { keyed: "2001:db8:1:2::".parse().ok(), ..client("2001:db8:1:2::1") };
        let two = Client { ip: "2001:db8:1:2::2".parse().ok(), ..one };
        c.put(q("2001:db8:1:2::1"), Answer::Failed, &one, 0, Ttl::flat(60_000));
        assert_eq!(c.get(&q("2001:db8:1:2::2"), &two, 1_000, Ttl::flat(60_000)), Some(Answer::Failed));
        assert_eq!(c.get(&q("2001:db8:1:2::2"), &two, FAILED_TTL_MS, Ttl::flat(60_000)), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let (mut c, who) = (Lookups::new(4), client("192.0.2.1"));
        for i in 0..100 {
            c.put(q(&i.to_string()), Answer::NotFound, &who, 0, Ttl::flat(1_000));
        }
        assert!(c.len() <= 8);
        assert_eq!(c.get(&q("99"), &who, 1, Ttl::flat(1_000)), Some(Answer::NotFound));
    }
}
