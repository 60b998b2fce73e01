//! Review 18 (issue 17 items 2–3): fleet single use and shared failures under attack. Each test
//! failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::{Decision, Verdict};
use botgate::engine::{Engine, LookupWait, Step};
use common::fleet::{as_visitor, browser, clears, decide, verify_url, visitor_cookie, Redis};
use common::*;
use serde_json::{json, Value};

fn members(fleet: Value) -> String {
    common::fleet::members(fleet).to_string()
}

fn paused(e: &mut Engine, r: &Req, now: u64) -> LookupWait {
    match e.begin(&r.head, false, now) {
        Step::NeedLookup(w) => w,
        Step::Decided(d) => panic!("expected a spend question, got {d:?}"),
        Step::NeedBody(_) => panic!("expected a spend question, got a body wait"),
    }
}

fn decided(s: Step) -> Decision {
    match s {
        Step::Decided(d) => d,
        _ => panic!("not decided"),
    }
}

#[test]
fn a_spend_that_cannot_be_asked_for_want_of_room_is_not_judged_as_unconfirmed() {
    let p = members(json!({"cluster": "fleet"}));
    let (mut a, mut b, mut redis) = (engine(&p), engine(&p), Redis::new());
    let ip = "203.0.113.90";
    let d = decide(&mut a, &browser("/members", ip), T0, &mut redis);
    let (c, diff) = pow_of(&d);
    let verify = verify_url(&c, diff);
    assert!(clears(&decide(&mut a, &browser(&verify, ip), T0 + 2_000, &mut redis)));
    // On the other Envoy, the 17th copy finds no room to wait (the shell answers it unasked).
    let joined: Vec<_> = (0..16).map(|_| paused(&mut b, &browser(&verify, ip), T0 + 3_000)).collect();
    let seventeenth = paused(&mut b, &browser(&verify, ip), T0 + 3_000);
    let d17 = decided(b.resume_unasked(seventeenth, &browser(&verify, ip).head, T0 + 3_000));
    let spent = redis.spend(joined[0].question(), T0 + 3_050);
    for w in joined {
        assert!(!clears(&decided(b.resume_lookup(w, &browser(&verify, ip).head, spent.clone(), T0 + 3_050))));
    }
    assert!(!clears(&d17), "a solution Redis holds spent was taken again on Envoy B: {:?}", d17.reasons);
}

#[test]
fn with_redis_down_a_slow_honest_solver_is_never_failed_for_it() {
    let p = members(json!({"cluster": "fleet"}));
    let (mut a, mut redis) = (engine(&p), Redis::new());
    redis.up = false;
    let ip = "203.0.113.93";
    let vc = visitor_cookie(&mut a, ip, &mut redis);
    let mut now = T0;
    for _ in 0..3 {
        let d = decide(&mut a, &as_visitor("/members", ip, &vc), now, &mut redis);
        if d.verdict == Verdict::Block {
            break;
        }
        let (c, diff) = pow_of(&d);
        now += 45_000; // a phone at a high difficulty
        decide(&mut a, &as_visitor(&verify_url(&c, diff), ip, &vc), now, &mut redis);
        now += 1_000;
    }
    let after = decide(&mut a, &as_visitor("/members", ip, &vc), now, &mut redis);
    assert_ne!(after.verdict, Verdict::Block, "blocked for Redis being down: {:?}", after.reasons);
}

#[test]
fn a_submission_refused_before_judging_spends_nothing_in_redis() {
    let p = members(json!({"cluster": "fleet"}));
    let (mut a, mut redis) = (engine(&p), Redis::new());
    let ip = "203.0.113.94";
    let vc = visitor_cookie(&mut a, ip, &mut redis);
    let d = decide(&mut a, &as_visitor("/members", ip, &vc), T0, &mut redis);
    let (c, diff) = pow_of(&d);
    let verify = verify_url(&c, diff);
    let cross = |path: &str| {
        Req::new("GET", path, ip)
            .header("user-agent", CHROME)
            .header("accept", "text/html")
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", "document")
            .header("cookie", &vc)
    };
    for i in 0..5 {
        let d = decide(&mut a, &cross(&verify), T0 + 1_000 + i, &mut redis);
        assert!(d.reasons.contains(&"cross_site_request"), "{d:?}");
    }
    assert_eq!(redis.calls, 0, "a cross-site link spent the owner's solution in Redis");
    let owner = decide(&mut a, &as_visitor(&verify, ip, &vc), T0 + 2_000, &mut redis);
    assert!(clears(&owner), "{:?}", owner.reasons);
}

#[test]
fn reloading_the_check_passed_page_on_other_envoys_never_fails_the_solver() {
    let p = members(json!({"cluster": "fleet"}));
    let (mut a, mut b, mut redis) = (engine(&p), engine(&p), Redis::new());
    let ip = "203.0.113.95";
    let vc = visitor_cookie(&mut a, ip, &mut redis);
    let d = decide(&mut a, &as_visitor("/members", ip, &vc), T0, &mut redis);
    let (c, diff) = pow_of(&d);
    let verify = verify_url(&c, diff);
    let pass = decide(&mut a, &as_visitor(&verify, ip, &vc), T0 + 2_000, &mut redis);
    assert!(clears(&pass), "{pass:?}");
    let token = cookies_set(&pass).into_iter().find(|c| c.starts_with("botgate_clearance=")).unwrap();
    let token = token.split(';').next().unwrap().to_string();
    let with_token = |path: &str| as_visitor(path, ip, &format!("{vc}; {token}"));
    let mut reasons = Vec::new();
    for i in 0..4 {
        reasons.push(decide(&mut b, &with_token(&verify), T0 + 10_000 + i * 1_000, &mut redis).reasons);
    }
    let page = decide(&mut b, &with_token("/members"), T0 + 20_000, &mut redis);
    assert_ne!(page.verdict, Verdict::Block, "a cleared solver was blocked after reloading: {reasons:?}");
}

#[test]
fn a_double_submission_on_two_workers_of_one_envoy_still_passes_once() {
    let p = members(json!({"cluster": "fleet"}));
    let (mut a, mut redis) = (engine(&p), Redis::new());
    let ip = "203.0.113.96";
    let vc = visitor_cookie(&mut a, ip, &mut redis);
    let d = decide(&mut a, &as_visitor("/members", ip, &vc), T0, &mut redis);
    let (c, diff) = pow_of(&d);
    let r = as_visitor(&verify_url(&c, diff), ip, &vc);
    let w1 = paused(&mut a, &r, T0 + 2_000);
    let w2 = paused(&mut a, &r, T0 + 2_000);
    let fresh = redis.spend(w1.question(), T0 + 2_000);
    let spent = redis.spend(w2.question(), T0 + 2_001);
    let d2 = decided(a.resume_lookup(w2, &r.head, spent, T0 + 2_010));
    let d1 = decided(a.resume_lookup(w1, &r.head, fresh, T0 + 2_020));
    assert!(clears(&d1) || clears(&d2), "neither copy passed: {:?} / {:?}", d1.reasons, d2.reasons);
}
