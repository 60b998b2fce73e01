//! Sessions that failed their challenges, across the fleet (`fleet.share_failures`): a session
//! that fails for good on one Envoy is blocked by every other within about a second.
//!
//! Each worker publishes its new failures and pulls the fleet's in one round a second: one
//! `EVAL` through webdis that adds them to a sorted set (scored by Redis's clock, so Envoys'
//! clocks do not matter), trims what has outlived a session, and answers every failure newer than
//! the last one this worker saw. A worker that starts, or comes back after Redis was away, pulls
//! from the start of the set: the fleet converges. While Redis cannot be reached, failures wait
//! (bounded) for the next round and each Envoy blocks its own.
//!
//! A session id is the same on every Envoy that shares the clearance keys (see
//! [`crate::identity::session_id`]); only a session's own failures make it fail (see
//! [`crate::challenge::gate`]), so nobody can get another session blocked here that they could not
//! get blocked on one Envoy.

use crate::base::lru::Lru;
use crate::formats::webdis;

/// Failures published per round, at most; more wait for the next rounds.
pub const MAX_PUBLISH: usize = 1000;
/// Failures pulled per round, at most; more come in the next rounds.
pub const MAX_PULL: usize = 1000;
/// Failures kept in Redis per scope, the newest (a flood of made-up sessions failing cannot grow
/// it without bound).
pub const MAX_SHARED: usize = 100_000;

/// One round: whose failures (the policy or profile), the new ones to publish, and the Redis
/// time of the newest failure pulled so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    pub scope: String,
    pub published: Vec<u64>,
    pub cursor: u64,
}

/// What a round pulled: Redis's clock then, and each failure with when it was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    pub now: u64,
    pub failures: Vec<(u64, u64)>,
}

pub struct FailedSessions {
    ttl_ms: u64,
    outbox: Vec<u64>,
    /// Failed sessions the fleet told of, until when (this worker's clock).
    known: Lru<u64, u64>,
    cursor: u64,
    scope: String,
    /// Failures that found the outbox full (published by a later round only if they fail again).
    pub dropped: u64,
}

impl FailedSessions {
    /// Failures last `ttl_ms` (a session's lifetime); at most `cap` are known at once.
    pub fn new(ttl_ms: u64, cap: usize) -> Self {
        FailedSessions {
            ttl_ms: ttl_ms.max(1),
            outbox: Vec::new(),
            known: Lru::new(cap.max(1)),
            cursor: 0,
            scope: String::from("base"),
            dropped: 0,
        }
    }

    /// Names the profile these failures are for (the base policy's are `base`).
    pub fn set_scope(&mut self, scope: &str) {
        self.scope = super::fleet::scope_name(scope);
    }

    /// A session that failed for good on this worker, to publish.
    pub fn failed_here(&mut self, session: u64) {
        if self.outbox.len() < 4 * MAX_PUBLISH {
            self.outbox.push(session);
        } else {
            self.dropped += 1;
        }
    }

    /// Whether the fleet said `session` failed, and it has not outlived a session since.
    pub fn is_failed(&self, session: u64, now: u64) -> bool {
        self.known.peek(&session).is_some_and(|until| *until > now)
    }

    /// The round to send now: the next failures to publish, and where the last pull ended.
    pub fn take_round(&mut self) -> Round {
        let n = self.outbox.len().min(MAX_PUBLISH);
        Round { scope: self.scope.clone(), published: self.outbox.drain(..n).collect(), cursor: self.cursor }
    }

    /// A round's answer (`None`: none came): the failures learnt (new to this worker), or the
    /// round's own failures put back for the next one.
    pub fn absorb(&mut self, round: Round, pulled: Option<Pulled>, now: u64) -> usize {
        let Some(pulled) = pulled else {
            let room = (4 * MAX_PUBLISH).saturating_sub(self.outbox.len());
            self.dropped += round.published.len().saturating_sub(room) as u64;
            self.outbox.extend(round.published.into_iter().take(room));
            return 0;
        };
        let mut learnt = 0;
        for &(session, at) in &pulled.failures {
            let left = self.ttl_ms.saturating_sub(pulled.now.saturating_sub(at));
            if left == 0 {
                continue;
            }
            let fresh = !self.is_failed(session, now);
            *self.known.get_or_insert_with(session, || 0) = now + left;
            learnt += usize::from(fresh);
        }
        if pulled.now.saturating_add(1_000) < self.cursor {
            // Redis's clock went back (a failover to a replica behind): read the set afresh.
            self.cursor = 0;
            return learnt;
        }
        // Never past Redis's own clock: a score from the future cannot freeze learning.
        let newest = pulled.failures.iter().map(|(_, at)| *at).max().unwrap_or(self.cursor).min(pulled.now);
        // A full page all at the cursor's millisecond would be asked for again and again.
        let stuck = pulled.failures.len() >= MAX_PULL && newest <= self.cursor;
        self.cursor = if stuck { self.cursor + 1 } else { newest.max(self.cursor) };
        learnt
    }
}

/// The round's script: publish (scored by Redis's clock), trim by age and size, keep the set a
/// session's lifetime, and answer Redis's clock and every failure from the cursor on.
const SCRIPT: &str = "local t=redis.call('TIME') local now=t[1]*1000+math.floor(t[2]/1000) \
                      local ttl=tonumber(ARGV[1]) \
                      for i=4,#ARGV do redis.call('ZADD',KEYS[1],now,ARGV[i]) end \
                      redis.call('ZREMRANGEBYSCORE',KEYS[1],'-inf',now-ttl) \
                      redis.call('ZREMRANGEBYRANK',KEYS[1],0,-tonumber(ARGV[3])-1) \
                      redis.call('PEXPIRE',KEYS[1],ttl) \
                      local r=redis.call('ZRANGEBYSCORE',KEYS[1],ARGV[2],'+inf','WITHSCORES','LIMIT',0,1000) \
                      table.insert(r,1,tostring(now)) return r";

/// A round as webdis's POST body: `EVAL/<script>/1/<set>/<ttl>/<cursor>/<max kept>/<ids…>`.
pub fn webdis_body(round: &Round, ttl_ms: u64) -> String {
    let mut args = vec![ttl_ms.to_string(), round.cursor.to_string(), MAX_SHARED.to_string()];
    args.extend(round.published.iter().map(|id| format!("{id:016x}")));
    webdis::eval_body(SCRIPT, &[format!("botgate:failed:{}", round.scope)], &args)
}

/// webdis's answer: `{"EVAL": ["<now>", "<id>", "<at>", …]}`; anything else is no answer.
pub fn parse_pulled(body: &[u8]) -> Option<Pulled> {
    let a = webdis::eval_array(body)?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string).or_else(|| v.as_u64().map(|n| n.to_string()));
    let (first, rest) = a.split_first()?;
    let now = text(first)?.parse().ok()?;
    if rest.len() % 2 != 0 || rest.len() > 2 * MAX_PULL {
        return None;
    }
    let failures = rest
        .chunks(2)
        .map(|pair| {
            let id = u64::from_str_radix(&text(pair.first()?)?, 16).ok()?;
            // Scores come back as Redis formats doubles.
            let at = text(pair.get(1)?)?.parse::<f64>().ok().filter(|f| f.is_finite() && *f >= 0.0)? as u64;
            Some((id, at))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Pulled { now, failures })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_failure_published_by_one_worker_is_learnt_by_another_for_what_is_left_of_its_lifetime() {
        let (mut here, mut there) = (FailedSessions::new(60_000, 100), FailedSessions::new(60_000, 100));
        here.failed_here(7);
        let round = here.take_round();
        assert_eq!(round.published, vec![7]);
        let body = webdis_body(&round, 60_000);
        assert!(body.starts_with("EVAL/") && body.ends_with("/0000000000000007"), "{body}");
        // Redis answers the other worker's round 10 s after the failure was published.
        let pulled = parse_pulled(br#"{"EVAL":["1010000","0000000000000007","1000000"]}"#).unwrap();
        assert_eq!(pulled, Pulled { now: 1_010_000, failures: vec![(7, 1_000_000)] });
        let round = there.take_round();
        assert_eq!(there.absorb(round, Some(pulled.clone()), 5_000), 1);
        assert!(there.is_failed(7, 5_000 + 49_999));
        assert!(!there.is_failed(7, 5_000 + 50_000), "the failure lasts what is left of a session's lifetime");
        assert_eq!(there.take_round().cursor, 1_000_000, "the next pull starts where this one ended");
        assert_eq!(there.absorb(Round { scope: "base".into(), published: vec![], cursor: 0 }, Some(pulled), 6_000), 0);
    }

    #[test]
    fn a_score_from_the_future_or_a_clock_gone_back_cannot_stop_the_learning() {
        let mut f = FailedSessions::new(60_000, 100);
        let round = f.take_round();
        f.absorb(round, Some(Pulled { now: 1_000_000, failures: vec![(1, 9_000_000)] }), 0);
        assert_eq!(f.cursor, 1_000_000, "clamped to Redis's clock");
        let round = f.take_round();
        f.absorb(round, Some(Pulled { now: 500_000, failures: vec![] }), 0);
        assert_eq!(f.cursor, 0, "read afresh");
        let round = f.take_round();
        assert_eq!(f.absorb(round, Some(Pulled { now: 600_000, failures: vec![(2, 599_000)] }), 0), 1);
    }

    #[test]
    fn failures_that_could_not_be_published_wait_for_the_next_round_within_bounds() {
        let mut f = FailedSessions::new(60_000, 100);
        for id in 0..(5 * MAX_PUBLISH as u64) {
            f.failed_here(id);
        }
        assert_eq!(f.dropped, MAX_PUBLISH as u64);
        let round = f.take_round();
        assert_eq!(round.published.len(), MAX_PUBLISH);
        f.absorb(round, None, 0);
        assert_eq!(f.outbox.len(), 4 * MAX_PUBLISH, "put back");
    }

    #[test]
    fn garbled_answers_are_no_answer() {
        for bad in [
            &br#"{"EVAL":[]}"#[..],
            br#"{"EVAL":["1","x","2"]}"#,
            br#"{"EVAL":["1","7"]}"#,
            br#"{"EVAL":["1","7","-5"]}"#,
            br#"{"EVAL":null}"#,
            b"<html>",
        ] {
            assert_eq!(parse_pulled(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_pulled(br#"{"EVAL":[1000]}"#), Some(Pulled { now: 1000, failures: vec![] }));
    }
}
