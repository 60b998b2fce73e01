//! Paths are matched as the upstream will see them: every spelling of `/login` that reaches the
//! upstream's login handler is the critical `/login` endpoint of the example policy, and the
//! sequence rules see through the same spellings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::Verdict;
use botgate::policy::ChallengeType;
use botgate::request::head::Head;
use common::{engine, send, Req};

const T0: u64 = 1_795_305_600_000;

fn policy() -> String {
    common::example_policy(&[("BOTGATE_CLEARANCE_KEY", "clearance-key-for-tests-0123456789abcdef")])
}

fn case_insensitive_policy() -> String {
    policy().replacen('{', r#"{ "paths": { "case_insensitive": true },"#, 1)
}

/// Anonymous and ambiguous (score about 0.4): passes a medium-tier page, is challenged on a
/// critical one.
fn ambiguous(method: &str, path: &str, ip: &str) -> Req {
    Req::new(method, path, ip).header("user-agent", common::CHROME)
}

const LOGIN_SPELLINGS: &[&str] =
    &["/login", "/login/", "//login", "/./login", "/%6cogin", "/%6Cogin", "/login;x", "/static/../login", "/login?a=b"];

#[test]
fn every_spelling_of_login_is_the_critical_login_endpoint_and_is_challenged() {
    let mut e = engine(&policy());
    for (i, path) in LOGIN_SPELLINGS.iter().enumerate() {
        let d = send(&mut e, &ambiguous("POST", path, &format!("203.0.113.{}", 10 + i)), T0, 200);
        assert_eq!(d.endpoint_tier, 0, "{path}: {d:?}");
        assert_eq!(d.verdict, Verdict::Challenge(ChallengeType::ProofOfWork), "{path}: {d:?}");
    }
}

#[test]
fn a_medium_page_lets_the_same_client_through() {
    let mut e = engine(&policy());
    for (i, path) in ["/products", "/logins", "/login-help", "/a%2Flogin", "/Login"].iter().enumerate() {
        let d = send(&mut e, &ambiguous("POST", path, &format!("203.0.113.{}", 40 + i)), T0, 200);
        assert_eq!((d.endpoint_tier, d.verdict), (2, Verdict::Pass), "{path}: {d:?}");
    }
}

#[test]
fn a_path_endpoint_covers_the_pages_below_it() {
    let mut e = engine(&policy());
    for (i, path) in ["/checkout/confirm", "/checkout/", "/password-reset/step/2"].iter().enumerate() {
        let d = send(&mut e, &ambiguous("GET", path, &format!("203.0.113.{}", 60 + i)), T0, 200);
        assert_eq!(d.endpoint_tier, 0, "{path}: {d:?}");
        assert!(matches!(d.verdict, Verdict::Challenge(_)), "{path}: {d:?}");
    }
}

#[test]
fn upstreams_that_ignore_case_get_login_in_any_case() {
    let mut e = engine(&case_insensitive_policy());
    for (i, path) in ["/Login", "/LOGIN/", "/%4Cogin", "/Static/../LogIn;X"].iter().enumerate() {
        let d = send(&mut e, &ambiguous("POST", path, &format!("203.0.113.{}", 80 + i)), T0, 200);
        assert_eq!(d.endpoint_tier, 0, "{path}: {d:?}");
        assert_eq!(d.verdict, Verdict::Challenge(ChallengeType::ProofOfWork), "{path}: {d:?}");
    }
}

#[test]
fn sequence_rules_see_every_spelling_of_checkout_and_cart() {
    let mut e = engine(&policy());
    for (i, path) in
        ["/checkout/", "//checkout", "/checkout;jsessionid=1", "/%63heckout", "/checkout/confirm"].iter().enumerate()
    {
        let d = send(&mut e, &Req::new("POST", path, &format!("203.0.113.{}", 100 + i)).browser(), T0, 200);
        assert_eq!(d.verdict, Verdict::Block, "{path}: {d:?}");
        assert!(d.reasons.contains(&"impossible_request_sequence"), "{path}: {d:?}");
    }
    let ip = "203.0.113.120";
    send(&mut e, &Req::new("GET", "/./%63art/", ip).browser(), T0, 200);
    let d = send(&mut e, &Req::new("POST", "/checkout", ip).browser(), T0 + 5_000, 200);
    assert!(!d.reasons.contains(&"impossible_request_sequence"), "the cart was seen: {d:?}");
}

#[test]
fn the_detector_watches_its_prefixes_in_any_spelling() {
    let e = engine(&policy());
    let post = |path: &str| Head::from_pairs([(":method", "POST"), (":path", path)]);
    for path in ["/v1/chat", "//v1/chat", "/%761/chat", "/x/../api/y"] {
        assert!(e.needs_body(&post(path)), "{path}");
    }
    assert!(!e.needs_body(&post("/v2/chat")));
}
