//! The decision plane under hostile clients: a higher score never gets a softer answer, nobody
//! chooses an identity, nobody gets someone else blocked, botgate's own endpoints are no bypass.
//! Each test is an attack that worked before the rule it proves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::{Decision, Verdict};
use botgate::policy::ChallengeType;
use common::{engine, pow_of, send, Req, T0};

fn policy() -> String {
    common::keyed_example()
}

fn severity(d: &Decision) -> u8 {
    match d.verdict {
        Verdict::Pass | Verdict::Allow | Verdict::Serve => 0,
        Verdict::Challenge(_) => 1,
        Verdict::Block | Verdict::RateLimited => 2,
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
    assert_eq!(e.tally.get(botgate::base::telemetry::Counter::XffUntrusted), 1);
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

/// A visitor's page navigation, as a browser sends it.
fn browser_nav(path: &str, ip: &str) -> Req {
    Req::new("GET", path, ip)
        .header("user-agent", common::CHROME)
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
}

#[test]
fn a_cross_site_chain_through_verify_and_pow_cannot_get_a_visitor_blocked() {
    let mut e = engine(&common::challenge_members(&policy()));
    let victim = "203.0.113.20";
    // The victim was challenged once: its session exists with a pending puzzle.
    let first = send(&mut e, &browser_nav("/members", victim), T0, 200);
    assert!(matches!(first.verdict, Verdict::Challenge(_)), "{first:?}");
    // An attacker's page links the victim's browser through botgate's endpoints with junk,
    // again and again: each hop is cross-site.
    let junk = "/.well-known/botgate/verify?challenge=v1.x.4.1.b.sig&solution=1&return=%2F.well-known%2Fbotgate%2Fpow";
    for i in 0..12u64 {
        for path in [junk, "/.well-known/botgate/pow?return=%2F"] {
            let hop = browser_nav(path, victim).header("sec-fetch-site", "cross-site");
            let d = send(&mut e, &hop, T0 + 1_000 + i, 200);
            assert_eq!(d.reply("r").unwrap().status, 403, "{d:?}");
        }
    }
    // Same-origin junk is a no-op too: not the session's puzzle.
    for i in 0..5u64 {
        let hop = browser_nav(junk, victim).header("sec-fetch-site", "same-origin");
        let d = send(&mut e, &hop, T0 + 2_000 + i, 200);
        assert!(d.reasons.contains(&"pow_malformed") || d.reasons.contains(&"pow_forged"), "{d:?}");
    }
    let later = send(&mut e, &browser_nav("/members", victim), T0 + 5_000, 200);
    assert!(matches!(later.verdict, Verdict::Challenge(_)), "still just challenged, not blocked: {later:?}");
    assert!(!later.reasons.contains(&"challenge_failed"));
}

#[test]
fn a_puzzle_issued_to_one_session_cannot_count_against_another() {
    let mut e = engine(&common::challenge_members(&policy()));
    // Attacker and victim behind one NAT with the same browser build: same client binding.
    let ip = "203.0.113.21";
    let attacker = browser_nav("/members", ip).header("accept-language", "de");
    let (theirs, _) = pow_of(&send(&mut e, &attacker, T0, 200));
    let victim = || browser_nav("/members", ip).header("accept-language", "en-GB");
    send(&mut e, &victim(), T0, 200);
    for i in 0..6u64 {
        let path = format!("/.well-known/botgate/verify?challenge={theirs}&solution=7");
        let hop = browser_nav(&path, ip).header("accept-language", "en-GB").header("sec-fetch-site", "same-origin");
        let d = send(&mut e, &hop, T0 + 1_000 + i, 200);
        assert!(d.reasons.contains(&"pow_wrong_client"), "{d:?}");
    }
    let later = send(&mut e, &victim(), T0 + 9_000, 200);
    assert!(!later.reasons.contains(&"challenge_failed"), "{later:?}");
}

#[test]
fn a_navigation_to_the_webauthn_verify_url_is_not_a_failed_step_up() {
    let mut e = engine(&policy());
    let ip = "203.0.113.22";
    let alice =
        |m: &str, p: &str| Req::new(m, p, ip).header("user-agent", common::CHROME).header("cookie", "session_id=alice");
    let d = send(&mut e, &alice("POST", "/login"), T0, 200);
    assert_eq!(d.verdict, Verdict::Challenge(ChallengeType::WebauthnStepUp), "{d:?}");
    for i in 1..=5u64 {
        // A cross-site link (GET, answered 405) and a cross-site form POST (answered 403).
        let link = alice("GET", "/auth/webauthn/verify").header("sec-fetch-site", "cross-site");
        send(&mut e, &link, T0 + i * 1_000, 405);
        let form = alice("POST", "/auth/webauthn/verify").header("sec-fetch-site", "cross-site");
        send(&mut e, &form, T0 + i * 1_000 + 500, 403);
    }
    assert_eq!(e.tally.get(botgate::base::telemetry::Counter::ChallengesWebauthnFailed), 0);
    let later = send(&mut e, &alice("GET", "/"), T0 + 9_000, 200);
    assert_ne!(later.verdict, Verdict::Block, "{later:?}");
}

#[test]
fn an_anonymous_session_id_cannot_be_aimed_at_from_another_address() {
    // The ids are keyed: the same address, browser and language name different sessions under
    // different clearance keys, so no user agent can be crafted offline to reach a victim's.
    let id = |key: &str| {
        let p = common::example_policy(&[("BOTGATE_CLEARANCE_KEY", key)]);
        send(&mut engine(&p), &browser_nav("/", "203.0.113.23"), T0, 200).session.unwrap()
    };
    assert_ne!(id("clearance-key-one-0123456789abcdef"), id("clearance-key-two-0123456789abcdef"));
}

#[test]
fn botgates_own_endpoints_answer_after_threat_intel_and_the_rate_limit() {
    let mut e = engine(&policy());
    let listed =
        browser_nav("/.well-known/botgate/pow?return=%2F", "198.18.0.44").header("sec-fetch-site", "same-origin");
    let d = send(&mut e, &listed, T0, 200);
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
    assert!(d.reasons.contains(&"ip_in_threat_intel_blocklist"));
    // One address hammering /verify is limited like any client: no flood of sessions.
    let mut limited = 0;
    for i in 0..100u64 {
        let path = format!("/.well-known/botgate/verify?challenge=v1.{i}.4.1.b.sig&solution=1");
        let r = browser_nav(&path, "203.0.113.24")
            .header("sec-fetch-site", "same-origin")
            .header("user-agent", &format!("ua-{i}"));
        if send(&mut e, &r, T0 + i * 10, 200).verdict == Verdict::RateLimited {
            limited += 1;
        }
    }
    assert_eq!(limited, 60);
    assert_eq!(e.footprint().sessions, 0, "no session for junk submissions");
}

#[test]
fn a_failing_nonce_store_never_counts_against_the_solver() {
    use botgate::challenge::nonces::{Consume, NonceStore};
    struct Broken;
    impl NonceStore for Broken {
        fn consume(&mut self, _: &str, _: u64, _: u64) -> Consume {
            Consume::Unavailable
        }
        fn is_spent(&self, _: &str, _: u64) -> bool {
            false
        }
    }
    let mut e = engine(&common::challenge_members(&policy()));
    e.set_nonce_store(Box::new(Broken));
    let ip = "203.0.113.25";
    for i in 0..5u64 {
        let d = send(&mut e, &browser_nav("/members", ip), T0 + i * 10_000, 200);
        let (c, difficulty) = pow_of(&d);
        let s = botgate::challenge::pow::solve(&c, difficulty).unwrap();
        let path = format!("/.well-known/botgate/verify?challenge={c}&solution={s}");
        let v =
            send(&mut e, &browser_nav(&path, ip).header("sec-fetch-site", "same-origin"), T0 + i * 10_000 + 5_000, 200);
        assert!(v.reasons.contains(&"pow_store_unavailable"), "{v:?}");
    }
    let later = send(&mut e, &browser_nav("/members", ip), T0 + 60_000, 200);
    assert!(matches!(later.verdict, Verdict::Challenge(_)), "not blocked: {later:?}");
    assert_eq!(e.tally.get(botgate::base::telemetry::Counter::NonceStoreUnavailable), 5);
}

#[test]
fn a_proof_of_work_cannot_stand_in_where_webauthn_is_required() {
    let p = common::webauthn_required_example();
    let mut e = engine(&p);
    let ip = "203.0.113.26";
    let bob = |m: &str, path: &str| {
        Req::new(m, path, ip).header("user-agent", common::CHROME).header("cookie", "session_id=bob")
    };
    let d = send(&mut e, &bob("POST", "/account/email"), T0, 200);
    assert_eq!(d.verdict, Verdict::Challenge(ChallengeType::WebauthnStepUp), "{d:?}");
    // The step-up page's fallback: a proof of work, solved.
    let pow = send(
        &mut e,
        &bob("GET", "/.well-known/botgate/pow?return=%2Faccount%2Femail")
            .header("sec-fetch-site", "same-origin")
            .header("sec-fetch-mode", "navigate"),
        T0 + 1_000,
        200,
    );
    let (c, difficulty) = pow_of(&pow);
    let s = botgate::challenge::pow::solve(&c, difficulty).unwrap();
    let v = send(
        &mut e,
        &bob("GET", &format!("/.well-known/botgate/verify?challenge={c}&solution={s}"))
            .header("sec-fetch-site", "same-origin"),
        T0 + 3_000,
        200,
    );
    assert!(v.reasons.contains(&"pow_passed"), "{v:?}");
    let token = v
        .reply("r")
        .unwrap()
        .headers
        .iter()
        .find(|(k, _)| *k == "set-cookie")
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let again = send(&mut e, &bob("POST", "/account/email").header("cookie", &token), T0 + 4_000, 200);
    assert_eq!(again.verdict, Verdict::Challenge(ChallengeType::WebauthnStepUp), "amr pow is not enough: {again:?}");
}

#[test]
fn with_no_clearance_keys_configured_challenges_can_still_be_passed() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/policy.example.json")).unwrap();
    let parsed = botgate::policy::parse(text.as_bytes());
    assert!(parsed.diags.iter().any(|d| d.message.contains("random key is generated")));
    let mut e = engine(&common::challenge_members(&text));
    let ip = "203.0.113.27";
    let d = send(&mut e, &browser_nav("/members", ip), T0, 200);
    let (c, difficulty) = pow_of(&d);
    let s = botgate::challenge::pow::solve(&c, difficulty).unwrap();
    let path = format!("/.well-known/botgate/verify?challenge={c}&solution={s}&return=%2Fmembers");
    let v = send(&mut e, &browser_nav(&path, ip).header("sec-fetch-site", "same-origin"), T0 + 3_000, 200);
    assert!(v.reasons.contains(&"pow_passed"), "{v:?}");
    assert_eq!(v.reply("r").unwrap().status, 303);
}

#[test]
fn failed_logins_in_a_browsers_exact_shape_do_not_challenge_its_other_users() {
    let mut e = engine(&policy());
    // An attacker fails 60 logins in Chrome's exact shape, from rotating addresses, with the form
    // headers a real submission carries (so nothing else flags them).
    common::fail_logins_in_chromes_shape(
        &mut e,
        60,
        &[("sec-fetch-site", "same-origin"), ("referer", "https://shop.test/login")],
    );
    // A new Chrome user, same shape: their pages are not challenged because of it.
    let shaped = |method: &str, path: &str, ip: &str, site: &str, referer: &str| {
        Req::new(method, path, ip).browser().header("sec-fetch-site", site).header("referer", referer)
    };
    let person = shaped("GET", "/", "198.51.100.200", "same-origin", "https://shop.test/login");
    let d = send(&mut e, &person, T0 + 61_000, 200);
    assert_eq!(d.verdict, Verdict::Pass, "{d:?}");
    assert!(!d.reasons.contains(&"campaign_failures"), "alone it never counts: {:?}", d.reasons);
    // It corroborates: a login posted from another site in that shape carries it...
    let script = |ip| shaped("POST", "/login", ip, "cross-site", "https://elsewhere.example/").body("u=a&p=b");
    let now = send(&mut e, &script("198.51.100.201"), T0 + 62_000, 401);
    assert!(now.reasons.contains(&"campaign_failures"), "{:?}", now.reasons);
    // ...until the view decays: an hour later it is forgotten.
    let later = send(&mut e, &script("198.51.100.202"), T0 + 3_600_000, 401);
    assert!(!later.reasons.contains(&"campaign_failures"), "{:?}", later.reasons);
}

#[test]
fn throwaway_visits_cannot_turn_the_unrendered_navigation_signal_off() {
    let mut e = engine(&policy());
    let mut now = T0;
    // People: pages that fetch their assets.
    for p in 0..600u64 {
        let ip = format!("203.0.{}.{}", 100 + p / 200, p % 200 + 1);
        for i in 0..4u64 {
            let nav = Req::new("GET", &format!("/products/{}", p * 10 + i), &ip)
                .browser()
                .header("sec-fetch-mode", "navigate")
                .header("sec-fetch-site", if i == 0 { "none" } else { "same-origin" });
            send(&mut e, &nav, now, 200);
            let asset = Req::new("GET", "/static/app.js", &ip)
                .browser()
                .header("sec-fetch-site", "same-origin")
                .header("sec-fetch-mode", "no-cors")
                .header("sec-fetch-dest", "script");
            send(&mut e, &asset, now + 100, 200);
            now += 500;
        }
    }
    // 400 throwaway visits that never render, each with many navigations (each once counted as
    // many votes).
    for v in 0..400u64 {
        let ip = format!("100.{}.{}.9", 64 + v / 250, v % 250);
        for i in 0..10u64 {
            let nav = browser_nav(&format!("/p/{v}/{i}"), &ip)
                .header("accept-language", "en")
                .header("sec-fetch-site", "same-origin");
            send(&mut e, &nav, now, 200);
            now += 400;
        }
    }
    // A scraper reading a list of URLs, never rendering, is still seen as one.
    let mut reasons = Vec::new();
    for i in 0..12u64 {
        let nav = browser_nav(&format!("/products/{}", 900 + i), "100.70.1.2")
            .header("accept-language", "en")
            .header("sec-fetch-site", "none");
        reasons = send(&mut e, &nav, now + i * 6_000, 200).reasons;
    }
    assert!(reasons.contains(&"unrendered_navigations"), "{reasons:?}");
}

#[test]
fn a_random_left_forwarded_hop_does_not_give_a_request_a_new_fingerprint() {
    let mut e = engine(&policy());
    let mut flagged = false;
    for i in 0..8u64 {
        let hop = format!("{}.{}.{}.{}, 203.0.113.90", 1 + i, 2 * i, 3 * i, 4 * i);
        let r = Req::new("POST", "/v1/chat/completions", &hop)
            .header("user-agent", "python-requests/2.32.3")
            .header("content-type", "application/json")
            .body(r#"{"model":"m","messages":[{"role":"user","content":"same prompt every time"}]}"#);
        flagged |= send(&mut e, &r, T0 + i * 1_000, 200).reasons.contains(&"fingerprint_repeat");
    }
    assert!(flagged, "the example detector fingerprints the trusted client address");
}
