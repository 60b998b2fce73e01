//! The fleet's Redis as the engine's spends and failure rounds use it, and the requests the
//! fleet tests send (`tests/fleet.rs`, the attack tests of issue 17).

use super::{challenge_members, cookies_set, keyed_example, pow_of, Req, CHROME, T0};
use botgate::checks::failed_sessions::Pulled;
use botgate::decision::record::Decision;
use botgate::engine::lookups::{Answer, Lookup};
use botgate::engine::spends::{redis_spend, spend_answer};
use botgate::engine::{drive, Engine};
use serde_json::Value;
use std::collections::HashMap;

/// Redis as the fleet uses it: `SET … NX` keys, and the failures with when they were published
/// (Redis's clock is the test's).
#[derive(Default)]
pub struct Redis {
    pub keys: HashMap<String, u64>,
    pub failures: Vec<(u64, u64)>,
    pub up: bool,
    /// The shell has no room to wait for a spend.
    pub busy: bool,
    /// Spends asked of it.
    pub calls: usize,
}

impl Redis {
    pub fn new() -> Self {
        Redis { up: true, ..Redis::default() }
    }

    /// The answer to a spend question, as the shell turns webdis's reply into one.
    pub fn spend(&mut self, q: &Lookup, now: u64) -> Answer {
        let Some((key, ttl)) = redis_spend(q) else { panic!("not a spend question: {q:?}") };
        if self.busy {
            return Answer::NotFound;
        }
        self.calls += 1;
        if !self.up {
            return Answer::Failed;
        }
        let fresh = self.keys.get(&key).is_none_or(|until| *until <= now);
        if fresh {
            self.keys.insert(key, now + ttl);
        }
        spend_answer(Some(fresh))
    }

    /// One failure round of `e` at `now`.
    pub fn round(&mut self, e: &mut Engine, now: u64) {
        let Some(round) = e.failures_round() else { return };
        if !self.up {
            return e.failures_answer(round, None, now);
        }
        self.failures.extend(round.published.iter().map(|id| (*id, now)));
        let failures = self.failures.iter().filter(|(_, at)| *at >= round.cursor).copied().collect();
        e.failures_answer(round, Some(Pulled { now, failures }), now);
    }
}

/// Decides `r`, its spends answered by `redis`, and feeds the upstream's 200 back.
pub fn decide(e: &mut Engine, r: &Req, now: u64, redis: &mut Redis) -> Decision {
    let d = drive::decide_with(e, &r.head, None, now, &mut |q| redis.spend(q, now));
    if let Some(f) = d.follow_up {
        e.on_response(f, 200);
    }
    d
}

/// The example policy, keyed, `/members` challenged, with `fleet`.
pub fn members(fleet: Value) -> Value {
    let mut p: Value =
        serde_json::from_str(&challenge_members(&keyed_example())).unwrap_or_else(|e| panic!("policy: {e}"));
    p["fleet"] = fleet;
    p
}

/// A same-origin page navigation from a browser.
pub fn browser(path: &str, ip: &str) -> Req {
    Req::new("GET", path, ip)
        .header("user-agent", CHROME)
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "same-origin")
}

/// [`browser`] carrying `cookie` (none when empty).
pub fn as_visitor(path: &str, ip: &str, cookie: &str) -> Req {
    let r = browser(path, ip);
    if cookie.is_empty() {
        r
    } else {
        r.header("cookie", cookie)
    }
}

/// The visitor cookie a first page, ten seconds before the tests' clock, hands `ip` (so the
/// session is the visitor's own).
pub fn visitor_cookie(e: &mut Engine, ip: &str, redis: &mut Redis) -> String {
    let d = decide(e, &browser("/", ip), T0 - 10_000, redis);
    let set = d.visitor.unwrap_or_else(|| panic!("no visitor cookie: {:?}", d.reasons));
    set.split(';').next().unwrap_or_default().to_string()
}

/// The verify path submitting a solution to `challenge`.
pub fn verify_url(challenge: &str, difficulty: u8) -> String {
    let s = botgate::challenge::pow::solve(challenge, difficulty).unwrap_or_else(|| panic!("unsolvable: {challenge}"));
    format!("/.well-known/botgate/verify?challenge={challenge}&solution={s}")
}

/// The verify path submitting a solution to the puzzle `d` handed out.
pub fn solved_path(d: &Decision) -> String {
    let (c, difficulty) = pow_of(d);
    verify_url(&c, difficulty)
}

/// Whether `d` hands out a clearance cookie.
pub fn clears(d: &Decision) -> bool {
    cookies_set(d).iter().any(|c| c.starts_with("botgate_clearance="))
}
