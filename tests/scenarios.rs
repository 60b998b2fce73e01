//! Whole sessions replayed through the engine with the example policy: the decision and the
//! reasons at each step, as an operator would read them in the access log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::checks::allow::ci_sign;
use botgate::decision::record::{Decision, Verdict};
use botgate::policy::ChallengeType;
use common::{engine, send, Req};

pub const CI_KEY: &str = "ci-secret-current-0123456789";
pub const CI_KEY_NEXT: &str = "ci-secret-next-9876543210abc";
/// 2026-11-22T00:00:00Z, in ms.
const T0: u64 = 1_795_305_600_000;

fn policy() -> String {
    common::example_policy(&[("BOTGATE_CI_KEY", CI_KEY), ("BOTGATE_CI_KEY_NEXT", CI_KEY_NEXT)])
}

fn has(d: &Decision, reason: &str) -> bool {
    d.reasons.contains(&reason)
}

#[test]
fn human_browsing_is_never_challenged() {
    let mut e = engine(&policy());
    let pages = [
        "/",
        "/products",
        "/products/42",
        "/search?q=boots",
        "/login",
        "/account",
        "/cart",
        "/products/7",
        "/checkout",
    ];
    let mut now = T0;
    for (i, page) in pages.iter().enumerate() {
        let method = if *page == "/login" || *page == "/checkout" { "POST" } else { "GET" };
        // As a browser sends it: the first page typed, then links and forms from the page before.
        let mut r = Req::new(method, page, "203.0.113.50").browser();
        r = match i.checked_sub(1).and_then(|p| pages.get(p)) {
            None => r.header("sec-fetch-site", "none"),
            Some(before) => {
                r.header("sec-fetch-site", "same-origin").header("referer", &format!("https://shop.test{before}"))
            }
        };
        if i > 4 {
            // Signed in at /login: the session cookie names the session from here on.
            r = r.header("cookie", "session_id=alice-session");
        }
        let d = send(&mut e, &r, now, 200);
        assert_eq!(d.verdict, Verdict::Pass, "{page}: {d:?}");
        assert!(d.score < 0.2, "{page}: {}", d.score);
        now += 4_000 + (i as u64 * 7_919) % 20_000;
    }
}

#[test]
fn credential_stuffing_from_one_address_is_blocked() {
    let mut e = engine(&policy());
    let mut outcomes = Vec::new();
    for i in 0..30u64 {
        let r = Req::new("POST", "/login", "198.51.100.66")
            .header("user-agent", "python-requests/2.31")
            .body("user=a&pw=b");
        let d = send(&mut e, &r, T0 + i * 500, 401);
        outcomes.push(d.verdict);
        if d.verdict == Verdict::Block {
            let above = has(&d, "bot_score_above") || has(&d, "score_above_challenge_band");
            assert!(has(&d, "http_library_ua") && above, "{:?}", d.reasons);
            break;
        }
    }
    assert_eq!(outcomes.last(), Some(&Verdict::Block), "{outcomes:?}");
    assert!(outcomes.len() <= 10, "blocked within ten attempts: {outcomes:?}");
}

#[test]
fn credential_stuffing_from_500_rotating_addresses_is_challenged() {
    let mut e = engine(&policy());
    let mut challenged_from = None;
    for i in 0..500u64 {
        let ip = format!("100.{}.{}.{}", 100 + i / 65_536, (i / 256) % 256, i % 256 + 1);
        let r = Req::new("POST", "/login", &ip).browser().body("user=x&pw=y");
        let d = send(&mut e, &r, T0 + i * 300, 401);
        if let Verdict::Challenge(kind) = d.verdict {
            assert_eq!(kind, ChallengeType::ProofOfWork, "anonymous sessions get proof of work");
            assert!(has(&d, "campaign_failures"), "{:?}", d.reasons);
            challenged_from.get_or_insert(i);
        } else if challenged_from.is_some() {
            panic!("request {i} escaped once the campaign was seen: {d:?}");
        }
    }
    let first = challenged_from.expect("the campaign is challenged");
    assert!(first <= 25, "challenged after {first} attempts");
}

#[test]
fn scraping_at_machine_pace_is_stopped() {
    let mut e = engine(&policy());
    let mut verdicts = Vec::new();
    for i in 0..60u64 {
        let r = Req::new("GET", &format!("/products/{i}"), "203.0.113.80")
            .header("user-agent", common::CHROME)
            .header("accept", "*/*");
        verdicts.push(send(&mut e, &r, T0 + i * 500, 200));
    }
    let stopped = verdicts.iter().position(|d| matches!(d.verdict, Verdict::Block | Verdict::Challenge(_)));
    let at = stopped.expect("the scraper is challenged or blocked");
    let d = &verdicts[at];
    assert!(has(d, "regular_intervals"), "{:?}", d.reasons);
    assert!(at < 40, "stopped after {at} pages");
}

#[test]
fn inventory_hoarding_checkout_without_cart_is_blocked() {
    let mut e = engine(&policy());
    let r = Req::new("POST", "/checkout", "203.0.113.90").browser().header("cookie", "session_id=hoarder");
    let d = send(&mut e, &r, T0, 200);
    assert_eq!(d.verdict, Verdict::Block);
    assert!(has(&d, "impossible_request_sequence"));
    assert_eq!(d.detail.as_deref(), Some("checkout_without_cart"));
    // A real shopper visits the cart first.
    let mut e = engine(&policy());
    let shopper = |m, p| Req::new(m, p, "203.0.113.91").browser().header("cookie", "session_id=shopper");
    assert_eq!(send(&mut e, &shopper("GET", "/cart"), T0, 200).verdict, Verdict::Pass);
    assert_eq!(send(&mut e, &shopper("POST", "/checkout"), T0 + 9_000, 200).verdict, Verdict::Pass);
}

#[test]
fn googlebot_user_agent_alone_earns_nothing() {
    let mut e = engine(&policy());
    let r = Req::new("GET", "/sitemap.xml", "203.0.113.99")
        .header("user-agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
        .header("accept", "*/*");
    let d = send(&mut e, &r, T0, 200);
    assert_ne!(d.verdict, Verdict::Allow);
    assert!(has(&d, "bot_ua"), "{:?}", d.reasons);
    assert!(d.score >= 0.7);
}

#[test]
fn monitoring_needs_both_cidr_and_user_agent() {
    let mut e = engine(&policy());
    let probe = |ip| Req::new("GET", "/health", ip).header("user-agent", "uptime-kuma/1.23.4");
    let d = send(&mut e, &probe("10.0.100.7"), T0, 200);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.reasons, vec!["internal_monitoring"]);
    assert_ne!(send(&mut e, &probe("203.0.113.7"), T0, 200).verdict, Verdict::Allow, "UA alone");
    let wrong_ua = Req::new("GET", "/health", "10.0.100.7").header("user-agent", "curl/8.0");
    assert_ne!(send(&mut e, &wrong_ua, T0, 200).verdict, Verdict::Allow, "CIDR alone");
    let v6 = Req::new("GET", "/health", "::ffff:10.0.101.9").header("user-agent", "pingdom/1.0");
    assert_eq!(send(&mut e, &v6, T0, 200).verdict, Verdict::Allow, "IPv4-mapped IPv6");
}

fn ci_request(path: &str, key: &str, ts: u64) -> Req {
    Req::new("POST", path, "10.0.200.15")
        .header("user-agent", "deploy-bot/3")
        .header("x-internal-pipeline", "true")
        .header("x-ci-timestamp", &ts.to_string())
        .header("x-ci-signature", &format!("current:{}", ci_sign(key.as_bytes(), "POST", path, ts)))
}

#[test]
fn ci_calls_need_a_fresh_unreplayed_signature() {
    let mut e = engine(&policy());
    let now_s = T0 / 1000;
    let valid = ci_request("/deploy?env=prod", CI_KEY, now_s);
    let d = send(&mut e, &valid, T0, 200);
    assert_eq!((d.verdict, d.reasons.clone()), (Verdict::Allow, vec!["owned_ci_cd"]));
    let replay = send(&mut e, &valid, T0 + 1_000, 200);
    assert_ne!(replay.verdict, Verdict::Allow);
    assert!(has(&replay, "ci_signature_replayed"), "{:?}", replay.reasons);
    let rotated = send(&mut e, &ci_request("/deploy", CI_KEY_NEXT, now_s), T0, 200);
    assert_eq!(rotated.verdict, Verdict::Allow, "the next key is valid during rotation");
    let forged = send(&mut e, &ci_request("/deploy", "not-the-key-at-all-000000", now_s), T0, 200);
    assert!(has(&forged, "ci_signature_invalid"));
    let old = send(&mut e, &ci_request("/deploy", CI_KEY, now_s - 3_600), T0, 200);
    assert!(has(&old, "ci_signature_expired"));
    let elsewhere = Req {
        head: {
            let mut h = ci_request("/deploy", CI_KEY, now_s).head;
            h.set_value(3, b"203.0.113.1");
            h
        },
        body: vec![],
    };
    assert_ne!(send(&mut e, &elsewhere, T0, 200).verdict, Verdict::Allow, "outside the CI CIDR");
}

#[test]
fn api_consumers_within_contract_only() {
    let mut e = engine(&policy());
    let call = |key: &str, ip: &str| {
        Req::new("GET", "/api/orders", ip).header("user-agent", "partner-sync/2").header("x-api-key", key)
    };
    let mut statuses = Vec::new();
    for i in 0..601u64 {
        statuses.push(send(&mut e, &call("demo-partner-key", "198.51.100.20"), T0 + i * 10, 200).verdict);
    }
    assert!(statuses[..600].iter().all(|v| *v == Verdict::Allow));
    assert_eq!(statuses[600], Verdict::RateLimited, "over the 600/min contract");
    let revoked = send(&mut e, &call("revoked-partner-key", "198.51.100.21"), T0, 200);
    assert!(has(&revoked, "api_key_unknown"), "unknown keys are refused: {:?}", revoked.reasons);
    let residential = send(&mut e, &call("demo-partner-key", "100.64.3.3"), T0 + 60_000, 200);
    assert!(has(&residential, "api_key_from_residential_proxy"));
    let expired = send(&mut e, &call("demo-partner-key", "198.51.100.22"), 1_900_000_000_000, 200);
    assert!(has(&expired, "api_key_expired"));
}

#[test]
fn threat_intel_blocks_before_anything_else() {
    let mut e = engine(&policy());
    let d = send(&mut e, &Req::new("GET", "/", "198.18.4.4").browser(), T0, 200);
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.reasons, vec!["ip_in_threat_intel_blocklist"]);
    assert_eq!(d.detail.as_deref(), Some("example-drop"));
}

/// The seed's two expected behaviours at /login.
#[test]
fn ambiguous_session_is_challenged_at_the_high_value_action_not_at_entry() {
    let mut e = engine(&policy());
    // A corporate proxy strips accept and accept-language: ambiguous, about 0.4.
    let user =
        |m, p| Req::new(m, p, "203.0.113.60").header("user-agent", common::CHROME).header("cookie", "session_id=bob");
    let home = send(&mut e, &user("GET", "/"), T0, 200);
    assert_eq!(home.verdict, Verdict::Pass, "not at entry");
    assert!((0.3..0.5).contains(&home.score), "{}", home.score);
    let login = send(&mut e, &user("POST", "/login"), T0 + 5_000, 200);
    assert_eq!(login.verdict, Verdict::Challenge(ChallengeType::WebauthnStepUp), "signed-in: WebAuthn step-up");
    // The scripted bot that fails its challenge is blocked for the rest of its session.
    let mut e = engine(&policy());
    let bot = |p| {
        Req::new("POST", p, "203.0.113.61").header("user-agent", common::CHROME).header("cookie", "session_id=mallory")
    };
    let d = send(&mut e, &bot("/login"), T0, 401);
    assert!(matches!(d.verdict, Verdict::Challenge(_)));
    e.fail_challenge(d.session.unwrap());
    let after = send(&mut e, &bot("/products"), T0 + 1_000, 200);
    assert_eq!(after.verdict, Verdict::Block);
    assert!(has(&after, "challenge_failed"));
    assert_eq!(after.score, 1.0);
}

#[test]
fn observe_rules_record_without_acting() {
    let text = policy().replace(r#"{ "bot_score_above": 0.85 }"#, r#"{ "bot_score_above": 0.85, "observe": true }"#);
    let mut e = engine(&text);
    let mut last = None;
    for i in 0..10u64 {
        let r = Req::new("POST", "/login", "198.51.100.67").header("user-agent", "python-requests/2.31");
        last = Some(send(&mut e, &r, T0 + i * 300, 401));
    }
    let d = last.unwrap();
    assert_eq!(d.verdict, Verdict::Pass);
    assert_eq!(d.outcome(), "would_block");
    assert!(d.upstream_headers().contains(&("x-botgate-verdict", "would_block".to_string())));
}

/// A navigation as a browser sends it, from `from` (`None`: typed or bookmarked).
fn navigation(path: &str, ip: &str, from: Option<&str>) -> Req {
    let r = Req::new("GET", path, ip)
        .browser()
        .header("sec-fetch-site", if from.is_some() { "same-origin" } else { "none" })
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document");
    match from {
        Some(page) => r.header("referer", &format!("https://shop.test{page}")),
        None => r,
    }
}

#[test]
fn low_and_slow_scraper_reading_a_list_of_urls_is_challenged() {
    let mut e = engine(&policy());
    let mut now = T0;
    // The worker's usual traffic: people following links, their pages fetching assets.
    for p in 0..30u64 {
        let ip = format!("203.0.113.{}", 100 + p);
        let mut from: Option<String> = None;
        for i in 0..6u64 {
            let page = format!("/products/{}", p * 10 + i);
            let d = send(&mut e, &navigation(&page, &ip, from.as_deref()), now, 200);
            assert_eq!(d.verdict, Verdict::Pass, "{page}: {d:?}");
            let asset = Req::new("GET", "/static/app.js", &ip)
                .browser()
                .header("sec-fetch-site", "same-origin")
                .header("sec-fetch-mode", "no-cors")
                .header("sec-fetch-dest", "script");
            assert_eq!(send(&mut e, &asset, now + 120, 200).verdict, Verdict::Pass);
            from = Some(page);
            now += 3_000 + (p * 7_919 + i * 104_729) % 20_000;
        }
    }
    // An HTTP client with a browser's headers copied from devtools (a typed navigation), one
    // sticky residential address, human pace, product pages only, nothing rendered.
    let mut stopped = None;
    for i in 0..30u64 {
        let page = format!("/products/{}", 1_000 + (i * 7_331) % 4_000);
        let d = send(&mut e, &navigation(&page, "100.70.12.34", None), now, 200);
        if let Verdict::Challenge(kind) = d.verdict {
            assert_eq!(kind, ChallengeType::ProofOfWork, "anonymous sessions get proof of work");
            assert!(has(&d, "cold_navigations") && has(&d, "unrendered_navigations"), "{:?}", d.reasons);
            stopped = Some(i);
            break;
        }
        assert_eq!(d.verdict, Verdict::Pass, "{page}: {d:?}");
        now += 4_000 + (i * 104_729) % 25_000;
    }
    let at = stopped.expect("the scraper is challenged");
    assert!((10..=12).contains(&at), "challenged at page {at}");
}

#[test]
fn browser_headers_on_a_python_tls_stack_are_challenged_at_the_first_request() {
    // Envoy's tls_inspector computed these JA4s (header_mutation copies them into x-tls-ja4):
    // Python requests, and Chromium.
    const PYTHON: &str = "t13d1812h1_85036bcba153_b26ce05bbdd6";
    const CHROMIUM: &str = "t13d1517h2_8daaf6152771_63ff51340b64";
    let mut e = engine(&policy());
    // A scraper rotating its residential address on every request: each is a first request.
    for i in 0..5u64 {
        let ip = format!("100.80.{i}.7");
        let r = navigation(&format!("/products/{}", 300 + i), &ip, None).header("x-tls-ja4", PYTHON);
        let d = send(&mut e, &r, T0 + i * 9_000, 200);
        assert_eq!(d.verdict, Verdict::Challenge(ChallengeType::ProofOfWork), "{d:?}");
        assert!(has(&d, "automation_tls"), "{:?}", d.reasons);
    }
    // The same headers on Chromium's handshake, and an honest Python client, are not named.
    let d = send(&mut e, &navigation("/products/1", "203.0.113.9", None).header("x-tls-ja4", CHROMIUM), T0, 200);
    assert_eq!(d.verdict, Verdict::Pass, "{d:?}");
    let honest = Req::new("GET", "/products/2", "203.0.113.10")
        .header("user-agent", "python-requests/2.34.2")
        .header("x-tls-ja4", PYTHON);
    let d = send(&mut e, &honest, T0, 200);
    assert!(!has(&d, "automation_tls") && has(&d, "http_library_ua"), "{:?}", d.reasons);
}

/// The `name=value` of the visitor cookie a decision hands out.
fn visitor_cookie(d: &Decision) -> String {
    let set = d.visitor.as_deref().unwrap_or_else(|| panic!("no visitor cookie: {d:?}"));
    set.split(';').next().unwrap_or_default().to_string()
}

#[test]
fn a_visitor_cookie_keeps_a_rotating_scraper_in_one_session() {
    let mut e = engine(&common::example_policy(&[("BOTGATE_CLEARANCE_KEY", "k".repeat(32).as_str())]));
    // A person: lands, is handed the cookie, moves from Wi-Fi to the carrier and back.
    let first = send(&mut e, &navigation("/", "203.0.113.5", None), T0, 200);
    let cookie = visitor_cookie(&first);
    assert!(cookie.starts_with("botgate_visitor="), "{cookie}");
    let mut sessions = Vec::new();
    for (i, ip) in ["203.0.113.5", "100.64.7.9", "203.0.113.5", "100.64.8.1"].iter().enumerate() {
        let r = navigation(&format!("/products/{i}"), ip, Some("/")).header("cookie", &cookie);
        let d = send(&mut e, &r, T0 + 10_000 * (i as u64 + 1), 200);
        assert_eq!(d.verdict, Verdict::Pass, "{d:?}");
        assert!(d.visitor.is_none(), "a visitor with the cookie is not handed another");
        sessions.push(d.session);
    }
    sessions.dedup();
    assert_eq!(sessions.len(), 1, "the cookie names one session wherever it comes from");
    assert_ne!(sessions[0], first.session, "a visitor id of its own, not its address's session");
    // A headless browser keeping one context while its proxy rotates on every page.
    let start = send(&mut e, &navigation("/products/900", "198.51.100.1", None), T0, 200);
    let cookie = visitor_cookie(&start);
    let mut stopped = None;
    for i in 1..20u64 {
        let ip = format!("{}.{}.3.4", 40 + i, i * 7);
        let r = navigation(&format!("/products/{}", 900 + i), &ip, None).header("cookie", &cookie);
        let d = send(&mut e, &r, T0 + i * 9_000 + (i * 7_919) % 6_000, 200);
        if let Verdict::Challenge(kind) = d.verdict {
            assert_eq!(kind, ChallengeType::ProofOfWork);
            assert!(has(&d, "address_hopping"), "{:?}", d.reasons);
            stopped = Some(i);
            break;
        }
    }
    assert_eq!(stopped, Some(6), "challenged at its seventh network (the first one came with the copy)");
    // A forged cookie names no session: the request is its address's own session.
    let forged = format!("{}0", cookie.get(..cookie.len() - 1).unwrap_or_default());
    let r = navigation("/products/5", "192.0.2.200", None).header("cookie", &forged);
    let d = send(&mut e, &r, T0 + 200_000, 200);
    assert_ne!(d.session, start.session);
    assert!(d.visitor.is_some(), "a forged cookie is replaced");
    // Nor does naming an existing session that never checked a cookie (its address's session).
    let id = start.session.expect("a session");
    let r = navigation("/products/7", "192.0.2.201", None)
        .header("cookie", &format!("botgate_visitor={id:016x}.AAAAAAAAAAAAAAAA"));
    assert_ne!(send(&mut e, &r, T0 + 205_000, 200).session, start.session, "an unchecked tag names nothing");
    // A page without the cookie is handed one (each person behind one address with the same
    // browser gets their own), up to 30 a minute for the address's shared session: a client that
    // keeps none cannot churn more sessions than that.
    let minute = T0 + 240_000;
    let page = |e: &mut botgate::engine::Engine, i: u64, t| {
        let from = (i > 0).then(|| format!("/products/{}", 600 + i - 1));
        send(e, &navigation(&format!("/products/{}", 600 + i), "192.0.2.202", from.as_deref()), t, 200)
    };
    let handed =
        (0..40u64).filter(|i| page(&mut e, *i, minute + i * 1_400 + (i * i * 37) % 500).visitor.is_some()).count();
    assert_eq!(handed, 30);
    assert!(page(&mut e, 40, minute + 60_000).visitor.is_some(), "the next minute");
}
