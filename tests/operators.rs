//! What operators read off botgate (issue 15): every refused request under
//! `botgate_blocked_total` by the tier that held it, a step-up counted when it succeeds, the
//! false-positive reports of people who were challenged, and the loaded policy's hash.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::base::telemetry::Counter;
use botgate::decision::record::Verdict;
use botgate::policy::ChallengeType;
use common::*;

/// Anonymous, and ambiguous: a browser behind a proxy that strips accept and accept-language.
fn ambiguous(method: &str, path: &str, ip: &str) -> Req {
    Req::new(method, path, ip).header("user-agent", CHROME)
}

fn report(ip: &str, site: &str) -> Req {
    Req::new("POST", "/.well-known/botgate/report?id=req-42", ip)
        .header("user-agent", CHROME)
        .header("sec-fetch-site", site)
}

#[test]
fn a_request_held_at_a_challenge_is_counted_under_blocked_by_its_tier() {
    let mut e = engine(&keyed_example());
    let d = send(&mut e, &ambiguous("POST", "/login", "203.0.113.80"), T0, 200);
    assert_eq!(d.verdict, Verdict::Challenge(ChallengeType::ProofOfWork), "{d:?}");
    assert_eq!(e.tally.get(Counter::BlockedChallengePow), 1);
}

#[test]
fn a_rate_limited_request_is_counted_under_blocked_at_the_rate_limit_tier() {
    let mut e = engine(&keyed_example());
    let mut limited = 0;
    for i in 0..200u64 {
        let d = send(&mut e, &page_navigation(&format!("/p/{i}"), "203.0.113.81"), T0 + i * 100, 200);
        limited += u64::from(d.verdict == Verdict::RateLimited);
    }
    assert!(limited > 0);
    assert_eq!(e.tally.get(Counter::BlockedRateIp), limited);
}

#[test]
fn a_step_up_counts_as_passed_when_the_backend_accepts_the_assertion() {
    let mut e = engine(&keyed_example());
    let alice = |m, p| ambiguous(m, p, "203.0.113.82").header("cookie", "session_id=alice");
    let d = send(&mut e, &alice("POST", "/login"), T0, 200);
    assert_eq!(d.verdict, Verdict::Challenge(ChallengeType::WebauthnStepUp), "{d:?}");
    let verify = alice("POST", "/auth/webauthn/verify").header("sec-fetch-site", "same-origin");
    send(&mut e, &verify, T0 + 5_000, 200);
    assert_eq!(e.tally.get(Counter::ChallengesWebauthnPassed), 1, "counted before any token comes back");
}

#[test]
fn a_person_who_was_challenged_can_report_it_once() {
    let mut e = engine(&keyed_example());
    let ip = "203.0.113.83";
    let d = send(&mut e, &ambiguous("POST", "/login", ip).header("accept", "text/html"), T0, 200);
    assert!(matches!(d.verdict, Verdict::Challenge(_)), "{d:?}");
    let page = d.reply("req-42").unwrap().body;
    assert!(page.contains("/.well-known/botgate/report?id=req-42"), "{page}");
    for i in 0..3 {
        let r = send(&mut e, &report(ip, "same-origin"), T0 + 1_000 + i, 200);
        assert_eq!(r.reply("x").unwrap().status, 200);
        assert_eq!(r.detail.as_deref(), Some("req-42"));
    }
    assert_eq!(e.tally.get(Counter::FalsePositiveReports), 1, "one report per session");
}

#[test]
fn reports_from_sessions_never_challenged_or_from_another_site_count_nothing() {
    let mut e = engine(&keyed_example());
    // Never challenged: answered like any report, not counted.
    let r = send(&mut e, &report("203.0.113.84", "same-origin"), T0, 200);
    assert_eq!(r.reply("x").unwrap().status, 200);
    // Challenged, but the report comes from another site's form.
    send(&mut e, &ambiguous("POST", "/login", "203.0.113.85"), T0, 200);
    let r = send(&mut e, &report("203.0.113.85", "cross-site"), T0 + 1_000, 200);
    assert_eq!(r.reply("x").unwrap().status, 403);
    let get = Req::new("GET", "/.well-known/botgate/report?id=1", "203.0.113.85")
        .header("user-agent", CHROME)
        .header("sec-fetch-site", "same-origin");
    send(&mut e, &get, T0 + 2_000, 200);
    assert_eq!(e.tally.get(Counter::FalsePositiveReports), 0);
}

#[test]
fn the_policy_hash_ignores_key_order_and_whitespace_but_not_values() {
    let a = botgate::policy::hash(br#"{"mode": "observe", "limits": {"max_clients": 10}}"#).unwrap();
    let b = botgate::policy::hash(b"{\"limits\":{\"max_clients\":10},\n \"mode\":\"observe\"}").unwrap();
    let c = botgate::policy::hash(br#"{"mode": "enforce", "limits": {"max_clients": 10}}"#).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 16);
    assert_eq!(botgate::policy::hash(b"not json"), None);
}
