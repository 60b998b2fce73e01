//! The fleet through the engine (issue 17 items 1 to 3): two engines (two Envoys) whose counts,
//! spent solutions and failed sessions meet in a shared store as Redis keeps them, what happens
//! while Redis is away, and the policy's mistakes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::base::telemetry::Counter;
use botgate::checks::fleet::Batch;
use botgate::decision::record::Verdict;
use botgate::engine::Engine;
use common::fleet::{browser, clears, decide, solved_path, Redis};
use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;

fn policy(fleet: bool) -> String {
    let mut p: Value = serde_json::from_str(&keyed_example()).unwrap();
    p["ip_rate_limit"]["max_requests"] = json!(20);
    p["ip_rate_limit"]["fleet"] = json!(fleet);
    p["global_rate_limit"] = json!({"max_requests": 100000, "window_seconds": 60});
    p["fleet"] = json!({"cluster": "fleet"});
    p.to_string()
}

/// Redis as the fleet's scripts use it: each key moved up by its count, the totals answered.
fn sync(store: &mut HashMap<String, u64>, e: &mut Engine, now: u64) {
    let Some(batch): Option<Batch> = e.fleet_batch(now) else { return };
    let totals = batch
        .counts
        .iter()
        .map(|(c, n)| {
            let v = store.entry(format!("{c}:{}", batch.window)).or_default();
            *v += u64::from(*n);
            *v
        })
        .collect();
    e.fleet_answer(batch, Some(totals));
}

/// `n` pages from one address alternating between the engines, synced every second; how many
/// the limits let by.
fn alternate(fleet: bool, n: u64) -> usize {
    let (mut a, mut b) = (engine(&policy(fleet)), engine(&policy(fleet)));
    let mut store = HashMap::new();
    let mut admitted = 0;
    for i in 0..n {
        let now = T0 + i * 100;
        if i % 10 == 0 {
            sync(&mut store, &mut a, now);
            sync(&mut store, &mut b, now);
        }
        let e = if i % 2 == 0 { &mut a } else { &mut b };
        let d = send(e, &page_navigation(&format!("/p/{i}"), "203.0.113.85"), now, 200);
        admitted += usize::from(d.verdict != Verdict::RateLimited);
    }
    admitted
}

#[test]
fn a_client_alternating_between_two_envoys_is_limited_at_the_fleet_rate() {
    let with = alternate(true, 60);
    assert!((20..=26).contains(&with), "{with} let by under a fleet-wide 20/min");
    assert_eq!(alternate(false, 60), 40, "each Envoy alone gives it its own 20");
}

#[test]
fn a_sync_that_never_left_keeps_its_counts_and_one_lost_on_the_way_drops_them() {
    let mut a = engine(&policy(true));
    for i in 0..5u64 {
        send(&mut a, &page_navigation(&format!("/p/{i}"), "203.0.113.86"), T0 + i, 200);
    }
    let batch = a.fleet_batch(T0 + 10).unwrap();
    a.fleet_unsent(batch);
    let again = a.fleet_batch(T0 + 20).unwrap();
    assert_eq!(again.counts.iter().map(|(_, n)| n).sum::<u32>(), 5);
    a.fleet_answer(again, None);
    assert!(a.fleet_batch(T0 + 30).is_none(), "Redis may have counted it: not sent twice");
}

#[test]
fn fleet_mistakes_are_policy_errors_with_their_paths() {
    let mut p: Value = serde_json::from_str(&policy(true)).unwrap();
    p.as_object_mut().unwrap().remove("fleet");
    p["global_rate_limit"]["fleet"] = json!(true);
    let errors: Vec<String> =
        botgate::policy::parse(p.to_string().as_bytes()).errors().map(|d| d.to_string()).collect();
    for path in ["ip_rate_limit.fleet", "global_rate_limit.fleet"] {
        assert!(errors.iter().any(|e| e.contains(path)), "{path}: {errors:?}");
    }
    let errors: Vec<String> =
        botgate::policy::parse(br#"{"fleet": {"timeout_ms": 100}}"#).errors().map(|d| d.to_string()).collect();
    assert!(errors.iter().any(|e| e.contains("fleet.cluster")), "{errors:?}");
}

fn members(fleet: Value) -> String {
    common::fleet::members(fleet).to_string()
}

/// A puzzle for `ip` from `e`, solved: the verify path that submits it.
fn solved(e: &mut Engine, ip: &str, now: u64, redis: &mut Redis) -> String {
    solved_path(&decide(e, &browser("/members", ip), now, redis))
}

#[test]
fn a_solution_accepted_by_one_envoy_is_refused_when_replayed_on_another() {
    let p = members(json!({"cluster": "fleet"}));
    let (mut a, mut b, mut redis) = (engine(&p), engine(&p), Redis::new());
    let ip = "203.0.113.90";
    let verify = solved(&mut a, ip, T0, &mut redis);
    let first = decide(&mut a, &browser(&verify, ip), T0 + 2_000, &mut redis);
    assert!(clears(&first), "{first:?}");
    let replay = decide(&mut b, &browser(&verify, ip), T0 + 3_000, &mut redis);
    assert!(!clears(&replay), "{replay:?}");
    assert!(replay.reasons.contains(&"pow_replayed"), "{replay:?}");
    assert_eq!(b.tally.get(Counter::FleetSpendReplayed), 1);
    assert_eq!(a.tally.get(Counter::FleetSpendFresh), 1);
    // Replayed again on the second Envoy: refused there without another word to Redis.
    let calls = redis.calls;
    let again = decide(&mut b, &browser(&verify, ip), T0 + 4_000, &mut redis);
    assert!(again.reasons.contains(&"pow_replayed"), "{again:?}");
    assert_eq!(redis.calls, calls);
}

#[test]
fn only_a_solution_that_would_clear_its_sender_is_spent_in_redis() {
    let p = members(json!({"cluster": "fleet"}));
    let (mut a, mut redis) = (engine(&p), Redis::new());
    let ip = "203.0.113.91";
    let verify = solved(&mut a, ip, T0, &mut redis);
    // Wrong answers, another client's submission, forged puzzles: judged without Redis, so
    // nobody can spend someone's puzzle in the fleet or fill Redis with junk.
    let wrong = verify.rsplit_once("solution=").map(|(head, s)| format!("{head}solution={}9", s)).unwrap();
    decide(&mut a, &browser(&wrong, ip), T0 + 1_000, &mut redis);
    decide(&mut a, &browser(&verify, "198.51.100.7"), T0 + 1_000, &mut redis);
    decide(&mut a, &browser("/.well-known/botgate/verify?challenge=v1.x.4.1.b.sig&solution=1", ip), T0, &mut redis);
    assert_eq!(redis.calls, 0);
    assert!(redis.keys.is_empty());
    let d = decide(&mut a, &browser(&verify, ip), T0 + 2_000, &mut redis);
    assert!(clears(&d), "the owner's solution is still good: {d:?}");
}

#[test]
fn a_solution_sent_in_headers_is_spent_across_the_fleet_too() {
    let p = members(json!({"cluster": "fleet"}));
    let (mut a, mut b, mut redis) = (engine(&p), engine(&p), Redis::new());
    let ip = "203.0.113.92";
    let api = |c: &str, s: &str| {
        Req::new("GET", "/members", ip)
            .header("user-agent", "curl/8.5.0")
            .header("x-botgate-pow-challenge", c)
            .header("x-botgate-pow-solution", s)
    };
    let d = decide(&mut a, &Req::new("GET", "/members", ip).header("user-agent", "curl/8.5.0"), T0, &mut redis);
    let (c, difficulty) = pow_of(&d);
    let s = botgate::challenge::pow::solve(&c, difficulty).unwrap();
    let first = decide(&mut a, &api(&c, &s), T0 + 1_000, &mut redis);
    assert!(first.clearance.is_some() || clears(&first), "{first:?}");
    let replay = decide(&mut b, &api(&c, &s), T0 + 2_000, &mut redis);
    assert!(replay.reasons.contains(&"pow_replayed"), "{replay:?}");
}

#[test]
fn with_redis_down_a_solution_is_spent_locally_and_only_from_a_young_puzzle() {
    let p = members(json!({"cluster": "fleet", "local_puzzle_seconds": 20}));
    let (mut a, mut redis) = (engine(&p), Redis::new());
    redis.up = false;
    let ip = "203.0.113.93";
    let verify = solved(&mut a, ip, T0, &mut redis);
    let late = decide(&mut a, &browser(&verify, ip), T0 + 25_000, &mut redis);
    assert!(late.reasons.contains(&"pow_unconfirmed_too_old"), "past the local lifetime: {late:?}");
    let verify = solved(&mut a, ip, T0 + 26_000, &mut redis);
    let young = decide(&mut a, &browser(&verify, ip), T0 + 28_000, &mut redis);
    assert!(clears(&young), "{young:?}");
    assert_eq!(a.tally.get(Counter::FleetSpendUnconfirmed), 2);
    let replay = decide(&mut a, &browser(&verify, ip), T0 + 29_000, &mut redis);
    assert!(!clears(&replay), "still single use in this Envoy: {replay:?}");
}

#[test]
fn a_session_that_fails_on_one_envoy_is_blocked_on_every_other() {
    let p = members(json!({"cluster": "fleet"}));
    let (mut a, mut b, mut redis) = (engine(&p), engine(&p), Redis::new());
    let ip = "203.0.113.94";
    // Endless reloads of the puzzle page on the first Envoy: the session fails for good.
    let mut now = T0;
    while decide(&mut a, &browser("/members", ip), now, &mut redis).verdict != Verdict::Block {
        now += 1_000;
        assert!(now < T0 + 60_000, "never failed");
    }
    let before = decide(&mut b, &browser("/members", ip), now, &mut redis);
    assert!(matches!(before.verdict, Verdict::Challenge(_)), "not yet known there: {before:?}");
    redis.round(&mut a, now + 500);
    redis.round(&mut b, now + 1_000);
    assert_eq!(b.tally.get(Counter::FleetFailuresLearned), 1);
    let after = decide(&mut b, &browser("/members", ip), now + 1_100, &mut redis);
    assert_eq!(after.verdict, Verdict::Block, "{after:?}");
    assert!(after.reasons.contains(&"challenge_failed"), "{after:?}");
    // Its own endpoints too: no new puzzle through the step-up fallback or verify.
    let verify =
        decide(&mut b, &browser("/.well-known/botgate/verify?challenge=x&solution=1", ip), now + 1_200, &mut redis);
    assert_eq!(verify.verdict, Verdict::Block, "{verify:?}");
    // Someone else on the second Envoy is untouched; the failure is not published again.
    let other = decide(&mut b, &browser("/members", "198.51.100.9"), now + 1_300, &mut redis);
    assert!(matches!(other.verdict, Verdict::Challenge(_)), "{other:?}");
    redis.round(&mut b, now + 2_000);
    assert_eq!(redis.failures.len(), 1);
}

#[test]
fn failures_published_while_redis_was_away_reach_the_fleet_when_it_returns() {
    let p = members(json!({"cluster": "fleet"}));
    let (mut a, mut b, mut redis) = (engine(&p), engine(&p), Redis::new());
    let ip = "203.0.113.95";
    redis.up = false;
    let mut now = T0;
    while decide(&mut a, &browser("/members", ip), now, &mut redis).verdict != Verdict::Block {
        now += 1_000;
    }
    redis.round(&mut a, now);
    redis.round(&mut b, now);
    assert_eq!(a.tally.get(Counter::FleetFailuresSyncFailed), 1);
    redis.up = true;
    redis.round(&mut a, now + 1_000);
    redis.round(&mut b, now + 1_000);
    assert_eq!(decide(&mut b, &browser("/members", ip), now + 1_100, &mut redis).verdict, Verdict::Block);
}

#[test]
fn in_observe_mode_a_failure_learnt_from_the_fleet_blocks_nothing() {
    let ip = "203.0.113.96";
    let verdict = |mode: &str| {
        let mut p: Value = serde_json::from_str(&members(json!({"cluster": "fleet"}))).unwrap();
        p["mode"] = json!(mode);
        let mut b = engine(&p.to_string());
        let mut redis = Redis::new();
        let ids = botgate::identity::session_id::IdKey::derive(CLEARANCE_KEY.as_bytes());
        let id =
            botgate::identity::session_id::anonymous_key(&ids, &browser("/members", ip).head, ip.parse().ok(), None).id;
        redis.failures.push((id, T0));
        redis.round(&mut b, T0);
        decide(&mut b, &browser("/members", ip), T0 + 100, &mut redis).verdict
    };
    assert_eq!(verdict("enforce"), Verdict::Block, "the failure the fleet told of is this client's session");
    assert_ne!(verdict("observe"), Verdict::Block);
}
