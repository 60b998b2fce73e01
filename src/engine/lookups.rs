//! Lookups: questions a stage must have answered from outside the worker before it can decide
//! (a reverse-DNS name, a vendor's score, …), and the TTL cache their answers are kept in.
//!
//! A stage that needs one is an [`Asker`]: it names the question for a request and says what an
//! answer means for the score. The engine asks each asker in turn; an answer in the cache is
//! used at once, a missing one pauses the request ([`super::step::Step::NeedLookup`]) until the
//! shell brings it (an HTTP callout). A failed lookup degrades: the request is decided without
//! it, and the failure is remembered briefly ([`FAILED_TTL_MS`]), so a client whose lookups time
//! out (its own PTR zone, say) cannot make every one of its requests wait for a timeout.

use crate::base::lru::Lru;
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

/// What a lookup came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Value(String),
    /// The service answered that there is nothing (NXDOMAIN, an unknown client).
    NotFound,
    /// No answer: timeout, refused connection, a reply that does not parse. Kept only for
    /// [`FAILED_TTL_MS`]; no asker gives a signal for it.
    Failed,
}

/// A stage that needs a lookup for some requests.
pub trait Asker {
    /// The question for this request, if it needs one.
    fn question(&self, head: &Head, client: Option<IpAddr>) -> Option<Lookup>;
    /// How long an answer stays good (ms).
    fn ttl_ms(&self) -> u64;
    /// What the answer adds to the request's score.
    fn signal(&self, answer: &Answer) -> Option<Signal>;
}

/// Answers by question, each until its TTL; bounded, the least recently used go first.
pub struct Lookups {
    answers: Lru<Lookup, (Answer, u64)>,
}

impl Lookups {
    pub fn new(cap: usize) -> Self {
        Lookups { answers: Lru::new(cap) }
    }

    /// The answer to `q`, while it is good.
    pub fn get(&mut self, q: &Lookup, now: u64) -> Option<Answer> {
        match self.answers.get_mut(q) {
            Some((a, until)) if *until > now => Some(a.clone()),
            _ => None,
        }
    }

    /// Keeps an answer for `ttl_ms` (a failure for at most [`FAILED_TTL_MS`]).
    pub fn put(&mut self, q: Lookup, a: Answer, now: u64, ttl_ms: u64) {
        let ttl_ms = if a == Answer::Failed { ttl_ms.min(FAILED_TTL_MS) } else { ttl_ms };
        if ttl_ms > 0 {
            *self.answers.get_or_insert_with(q, || (Answer::Failed, 0)) = (a, now.saturating_add(ttl_ms));
        }
    }

    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(key: &str) -> Lookup {
        Lookup { service: "test", key: key.to_string() }
    }

    #[test]
    fn answers_are_kept_until_their_ttl_and_failures_only_briefly() {
        let mut c = Lookups::new(8);
        c.put(q("a"), Answer::Value("x".into()), 1_000, 500);
        c.put(q("n"), Answer::NotFound, 1_000, 500);
        c.put(q("f"), Answer::Failed, 1_000, 3_600_000);
        assert_eq!(c.get(&q("a"), 1_499), Some(Answer::Value("x".into())));
        assert_eq!(c.get(&q("n"), 1_200), Some(Answer::NotFound));
        assert_eq!(c.get(&q("a"), 1_500), None, "expired");
        assert_eq!(c.get(&q("f"), 1_000 + FAILED_TTL_MS - 1), Some(Answer::Failed));
        assert_eq!(c.get(&q("f"), 1_000 + FAILED_TTL_MS), None, "a failure is asked again soon");
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut c = Lookups::new(4);
        for i in 0..100 {
            c.put(q(&i.to_string()), Answer::NotFound, 0, 1_000);
        }
        assert!(c.len() <= 4);
        assert_eq!(c.get(&q("99"), 1), Some(Answer::NotFound));
    }
}
