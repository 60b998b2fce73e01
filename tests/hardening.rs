//! The decision plane under hostile clients: a higher score never gets a softer answer, nobody
//! chooses an identity, nobody gets someone else blocked, botgate's own endpoints are no bypass.
//! Each test is an attack that worked before the rule it proves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decide::{Decision, Issued, Verdict};
use botgate::policy::ChallengeType;
use common::{engine, send, Req};

const T0: u64 = 1_795_305_600_000;
const CLEARANCE_KEY: &str = "clearance-key-for-tests-0123456789abcdef";

fn policy() -> String {
    common::example_policy(&[("BOTGATE_CLEARANCE_KEY", CLEARANCE_KEY)])
}

fn severity(d: &Decision) -> u8 {
    match d.verdict {
        Verdict::Pass | Verdict::Allow | Verdict::Serve => 0,
        Verdict::Challenge(_) => 1,
        Verdict::Block | Verdict::RateLimited => 2,
    }
}

fn pow_of(d: &Decision) -> (String, u8) {
    match d.challenge.as_ref().map(|c| &c.issued) {
        Some(Issued::ProofOfWork { challenge, difficulty, .. }) => (challenge.clone(), *difficulty),
        other => panic!("no puzzle: {other:?} in {d:?}"),
    }
}

#[test]
fn a_plain_http_library_cannot_walk_through_login_between_the_challenge_band_and_the_block_threshold() {
    let mut e = engine(&policy());
    let r = Req::new("POST", "/login", "203.0.113.5")
        .header("user-agent", "python-requests/2.32.3")
        .header("accept", "*/*")
        .header("accept-encoding", "gzip, deflate");
    let mut in_gap = 0;
    for i in 0..12u64 {
        let d = send(&mut e, &r, T0 + i * 3_000, 401);
        assert_ne!(d.verdict, Verdict::Pass, "request {i} passed at score {}: {:?}", d.score, d.reasons);
        if d.score > 0.75 && d.score <= 0.85 && !d.reasons.contains(&"challenge_failed") {
            in_gap += 1;
            assert_eq!(d.verdict, Verdict::Block, "{d:?}");
            assert!(d.reasons.contains(&"score_above_challenge_band"), "{:?}", d.reasons);
        }
    }
    assert!(in_gap > 0, "the client's score reached the gap");
}

#[test]
fn machine_speed_logins_that_climb_past_the_challenge_band_are_never_let_through() {
    let mut e = engine(&policy());
    let mut worst = 0;
    for i in 0..60u64 {
        let r = Req::new("POST", "/login", "203.0.113.6").header("user-agent", common::CHROME).body("u=a&p=b");
        let d = send(&mut e, &r, T0 + i * 200, 401);
        // Once challenged, the same client is never let through at a higher score.
        assert!(severity(&d) >= worst, "request {i} got a softer answer at score {}: {d:?}", d.score);
        worst = worst.max(severity(&d));
    }
    assert!(worst >= 1);
}

#[test]
fn on_every_endpoint_a_higher_score_gets_at_least_the_answer_of_a_lower_one() {
    // Scores are driven by the number of signals a request carries; sort decisions by score and
    // check the answer never softens, per endpoint.
    for path in ["/login", "/account/orders", "/products", "/static/app.css"] {
        let mut seen: Vec<(f64, u8)> = Vec::new();
        let shapes: [&[(&str, &str)]; 6] = [
            &[("user-agent", common::CHROME), ("accept", "text/html"), ("accept-language", "en")],
            &[("user-agent", common::CHROME), ("accept", "text/html")],
            &[("user-agent", common::CHROME)],
            &[("user-agent", "curl/8.5.0")],
            &[("user-agent", "python-requests/2.32.3"), ("accept", "*/*")],
            &[],
        ];
        for (i, shape) in shapes.iter().enumerate() {
            let mut e = engine(&policy());
            let mut r = Req::new("GET", path, &format!("198.51.100.{}", 10 + i));
            for (k, v) in *shape {
                r = r.header(k, v);
            }
            let d = send(&mut e, &r, T0, 200);
            seen.push((d.score, severity(&d)));
        }
        seen.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in seen.windows(2) {
            assert!(w[1].1 >= w[0].1, "{path}: score {} got {} after score {} got {}", w[1].0, w[1].1, w[0].0, w[0].1);
        }
    }
}

#[test]
fn a_browser_in_the_band_is_still_challenged_not_blocked() {
    let mut e = engine(&policy());
    let r = Req::new("POST", "/login", "203.0.113.7").header("user-agent", common::CHROME);
    let d = send(&mut e, &r, T0, 200);
    assert_eq!(d.verdict, Verdict::Challenge(ChallengeType::ProofOfWork), "{d:?}");
    let _ = pow_of(&d);
}

#[test]
fn a_client_that_connects_directly_cannot_write_itself_an_internal_monitoring_address() {
    let mut e = engine(&policy());
    let mut r = Req::new("GET", "/health", "10.0.100.7").header("user-agent", "uptime-kuma/1.23.16");
    // Not through the trusted proxy: straight from a listed address.
    r.head.peer = "198.18.0.9".parse().ok();
    let d = send(&mut e, &r, T0, 200);
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
    assert!(d.reasons.contains(&"ip_in_threat_intel_blocklist"), "{:?}", d.reasons);
    assert_eq!(d.client_ip, "198.18.0.9".parse().ok());
    assert_eq!(e.tally.get(botgate::telemetry::Counter::XffUntrusted), 1);
}

#[test]
fn a_client_rotating_addresses_inside_its_ipv6_64_is_one_client_for_the_rate_limit() {
    let mut e = engine(&policy());
    let mut limited = 0;
    for i in 0..60u64 {
        let ip = format!("2001:db8:7:9:{:x}::{:x}", i * 7 + 1, i + 1);
        let r = Req::new("GET", &format!("/p{i}"), &ip).browser();
        if send(&mut e, &r, T0 + i * 100, 200).verdict == Verdict::RateLimited {
            limited += 1;
        }
    }
    assert_eq!(limited, 20, "40 a minute for the whole /64");
}
