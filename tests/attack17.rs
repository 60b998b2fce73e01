//! Review 18b (issue 17 items 2–3, after the first fixes): each test failed before its fix. The
//! vendor sources skipped after a spend's callback are tested in Envoy
//! (`integration/test_fleet.py`), as the shell asked them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::Verdict;
use botgate::engine::drive;
use common::fleet::{as_visitor, clears, decide, verify_url, visitor_cookie, Redis};
use common::*;
use serde_json::{json, Value};

fn members(fleet: Value) -> Value {
    let mut p = common::fleet::members(fleet);
    p["ip_rate_limit"]["max_requests"] = json!(100_000);
    p
}

#[test]
fn a_busy_fleet_never_runs_an_honest_solver_out_of_attempts() {
    let (mut a, mut redis) = (engine(&members(json!({"cluster": "fleet"})).to_string()), Redis::new());
    let ip = "203.0.113.97";
    let vc = visitor_cookie(&mut a, ip, &mut redis);
    let mut now = T0;
    redis.busy = true;
    for round in 0..12 {
        let d = decide(&mut a, &as_visitor("/members", ip, &vc), now, &mut redis);
        assert_ne!(d.verdict, Verdict::Block, "round {round}: honest solver blocked: {:?}", d.reasons);
        let (c, diff) = pow_of(&d);
        let v = decide(&mut a, &as_visitor(&verify_url(&c, diff), ip, &vc), now + 2_000, &mut redis);
        assert!(v.reasons.contains(&"pow_fleet_busy"), "{:?}", v.reasons);
        now += 3_000;
    }
}

#[test]
fn one_stale_solution_gives_back_one_attempt_not_one_per_copy() {
    let p = members(json!({"cluster": "fleet", "local_puzzle_seconds": 20}));
    let (mut a, mut redis) = (engine(&p.to_string()), Redis::default()); // Redis down
    let ip = "203.0.113.98";
    let vc = visitor_cookie(&mut a, ip, &mut redis);
    let (c0, d0) = pow_of(&decide(&mut a, &as_visitor("/members", ip, &vc), T0, &mut redis));
    let stale = verify_url(&c0, d0);
    let (mut now, mut puzzles) = (T0 + 25_000, 1);
    for i in 0..30u64 {
        let r = decide(&mut a, &as_visitor(&stale, ip, &vc), now, &mut redis);
        assert!(r.reasons.contains(&"pow_unconfirmed_too_old"), "{:?}", r.reasons);
        if decide(&mut a, &as_visitor("/members", ip, &vc), now + 1, &mut redis).challenge.is_none() {
            break;
        }
        puzzles += 1;
        now += 1_000 + (i * 7_919) % 3_000;
    }
    assert!(puzzles <= 11, "{puzzles} puzzles to a session that never passed (max_attempts 10)");
}

#[test]
fn a_solution_spent_late_is_not_taken_again_by_an_envoy_whose_clock_lags() {
    let p = members(json!({"cluster": "fleet"})).to_string();
    let (mut a, mut b, mut redis) = (engine(&p), engine(&p), Redis::new());
    let ip = "203.0.113.100";
    let vc = visitor_cookie(&mut a, ip, &mut redis);
    let (c, diff) = pow_of(&decide(&mut a, &as_visitor("/members", ip, &vc), T0, &mut redis));
    let expires: u64 = c.split('.').nth(3).unwrap().parse().unwrap();
    let r = as_visitor(&verify_url(&c, diff), ip, &vc);
    assert!(clears(&decide(&mut a, &r, expires - 1_000, &mut redis)));
    let real = expires + 500; // B's clock is 2 s behind
    let again = drive::decide_with(&mut b, &r.head, None, real - 2_000, &mut |q| redis.spend(q, real));
    assert!(!clears(&again), "cleared on two Envoys with Redis up: {:?}", again.reasons);
}
