//! Attacks on the silent challenge and the global limit's shedding (issue 12), from the review
//! of both. Each doc says the attack; each failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code
mod common;
use botgate::challenge::inject::{csp_admits, spot, Admit, Spot};
use botgate::decision::record::{Decision, Verdict};
use botgate::engine::Engine;
use common::{engine, keyed_example, page_navigation, send, Req, T0};

fn status(d: &Decision) -> u32 {
    d.answer.as_ref().map_or(0, |a| a.status)
}

fn beacon(e: &mut Engine, token: &str, traits: u16, ip: &str, cookie: Option<&str>, at: u64) -> Decision {
    let mut r = Req::new("POST", &format!("/.well-known/botgate/beacon?t={token}&a={traits}"), ip)
        .browser()
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "no-cors");
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    send(e, &r, at, 200)
}

fn nav(e: &mut Engine, path: &str, ip: &str, cookie: Option<&str>, at: u64) -> Decision {
    let mut r = page_navigation(path, ip).header("sec-fetch-site", "none");
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let d = send(e, &r, at, 200);
    if let Some(b) = &d.beacon {
        e.beacon_sent(b.session, at);
    }
    d
}

/// The token of the page's beacon, as the shell mints it when it adds the script (the pages here
/// are all a browser's navigations from `ip`: one user agent).
fn token_of(e: &Engine, d: &Decision, ip: &str) -> Option<String> {
    d.beacon.as_ref().and_then(|b| e.beacon_token(b, &page_navigation("/", ip).head))
}

/// A neighbour whose browser drops cookies, once the shared anonymous session has handed out
/// its visitor cookies for the minute (each dropped): the next page's token is the shared
/// session's own.
fn shared_session_token(e: &mut Engine, ip: &str) -> String {
    for i in 0..40u64 {
        // Clicking through the site (the cookie dropped each time).
        let r = page_navigation(&format!("/products/{i}"), ip)
            .header("sec-fetch-site", "same-origin")
            .header("referer", &format!("https://shop.test/products/{}", i.saturating_sub(1)));
        let d = send(e, &r, T0 + i * 1_500 + (i * i * 37) % 700, 200);
        if let Some(b) = &d.beacon {
            e.beacon_sent(b.session, T0 + i * 1_500);
        }
        if d.visitor.is_none() {
            return token_of(e, &d, ip).unwrap_or_else(|| panic!("page {i}: {d:?}"));
        }
    }
    panic!("the shared session never stopped handing out cookies");
}

/// A browser's first page (no cookies): the response hands it a visitor cookie, and the page's
/// beacon (sent with that cookie, as a browser does) is refused as forged.

#[test]
fn a_new_visitors_first_page_beacon_is_accepted_with_its_cookie() {
    let mut e = engine(&keyed_example());
    let ip = "203.0.113.9";
    let d = nav(&mut e, "/products/1", ip, None, T0);
    let set = d.visitor.clone().expect("visitor cookie");
    let cookie = set.split(';').next().unwrap().to_string();
    let token = token_of(&e, &d, ip).unwrap();
    let b = beacon(&mut e, &token, 0, ip, Some(&cookie), T0 + 300);
    assert_eq!((status(&b), b.reasons.clone()), (204, vec!["beacon_accepted"]), "{b:?}");
}

/// New visitors behind one address with one browser build (a NAT, an office): each first
/// page counts on the shared anonymous session, whose beacons are never accepted.
#[test]
fn new_visitors_behind_a_nat_do_not_inherit_beacon_missing() {
    let mut e = engine(&keyed_example());
    let ip = "203.0.113.10";
    for i in 0..3u64 {
        let at = T0 + i * 5_000;
        let d = nav(&mut e, "/products/1", ip, None, at);
        let cookie = d.visitor.clone().map(|s| s.split(';').next().unwrap().to_string());
        let token = token_of(&e, &d, ip).unwrap();
        let b = beacon(&mut e, &token, 0, ip, cookie.as_deref(), at + 300);
        eprintln!("visitor {i}: cookie={} beacon {:?} {}", cookie.is_some(), b.reasons, status(&b));
    }
    let d = nav(&mut e, "/products/2", ip, None, T0 + 20_000);
    eprintln!("{:?} {} {:?}", d.verdict, d.score, d.reasons);
    assert!(!d.reasons.contains(&"beacon_missing"), "a new person is scored for others' lost beacons: {d:?}");
}

/// Behind one address (an office NAT, a mobile CGNAT), with the same browser build and
/// language: a neighbour whose browser drops cookies reports webdriver on the shared anonymous
/// session (its second page's token is that session's); a person arriving afterwards (no
/// cookies yet) must not be blocked for it.
#[test]
fn a_nat_neighbour_reporting_webdriver_does_not_block_newcomers() {
    let mut e = engine(&keyed_example());
    let ip = "203.0.113.11";
    let token = shared_session_token(&mut e, ip);
    let b = beacon(&mut e, &token, 1, ip, None, T0 + 2_300);
    assert_eq!(b.reasons, ["automation_reported"]);
    // A person, same address, same Chrome, first visit, minutes later.
    let d = nav(&mut e, "/", ip, None, T0 + 5 * 60_000);
    assert_ne!(d.verdict, Verdict::Block, "a newcomer pays for a neighbour's beacon: {d:?}");
}

/// sendBeacon and fetch are governed by connect-src (falling back to default-src): a strict
/// policy whose script-src carries a nonce admits the script, which then cannot send.
#[test]
fn a_policy_whose_connect_src_refuses_the_beacon_leaves_the_page_alone() {
    let h = botgate::challenge::beacon::csp_hash();
    assert_eq!(csp_admits(&[b"default-src 'none'; script-src 'nonce-abc'; img-src 'self'"], &h), Admit::Refused);
    assert_eq!(csp_admits(&[b"script-src 'unsafe-inline'; connect-src https://api.example"], &h), Admit::Refused);
}

/// `<body` inside a head script, in a chunk before `</head>`: the element lands inside the
/// script and its `</script>` ends the page's own script.
#[test]
fn body_in_a_head_script_string_is_not_a_spot() {
    let chunk = b"<html><head><script>var tpl = '<body class=x>' + y;";
    assert_eq!(spot(chunk), Spot::NotYet, "would insert at {:?}", spot(chunk));
}

/// A scraper (no accept-language: a weak signal, so silence corroborates) reads one page's token
/// and answers once; afterwards it reads pages without a script running and is never scored
/// for its silence. The same scraper never answering is.
#[test]
fn one_clean_beacon_does_not_silence_beacon_missing_for_good() {
    let run = |answer: bool| {
        let mut e = engine(&keyed_example());
        let ip = "203.0.113.13";
        let mut missing = 0;
        let mut score = 0.0;
        for i in 0..20u64 {
            let at = T0 + i * 4_000 + (i * i * 377) % 2_500;
            let r = Req::new("GET", &format!("/products/{i}"), ip)
                .header("user-agent", common::CHROME)
                .header("accept", "text/html,application/xhtml+xml")
                .header("sec-fetch-mode", "navigate")
                .header("sec-fetch-dest", "document")
                .header("sec-fetch-site", if i == 0 { "none" } else { "same-origin" })
                .header("referer", &format!("https://shop.test/products/{}", i.saturating_sub(1)))
                .header("cookie", "session_id=scraper");
            let d = send(&mut e, &r, at, 200);
            if let Some(b) = &d.beacon {
                e.beacon_sent(b.session, at);
                if answer && i == 0 {
                    let t = e.beacon_token(b, &r.head).unwrap();
                    beacon(&mut e, &t, 0, ip, Some("session_id=scraper"), at + 200);
                }
            }
            missing += usize::from(d.reasons.contains(&"beacon_missing"));
            score = d.score;
        }
        (missing, score)
    };
    let silent = run(false);
    let once = run(true);
    eprintln!("never answers: {silent:?}; answers once: {once:?}");
    assert!(silent.0 > 0, "precondition: silence is scored");
    assert!(once.0 > 0, "one answer, 19 silent pages, never scored: {once:?} vs {silent:?}");
}

/// Observe mode: a session scoring 1.0 is reported as shed by the global limit with the budget
/// empty ("up to half its budget anyone is admitted"), and its would-block becomes
/// would-rate-limit.
#[test]
fn observe_mode_sheds_nobody_on_an_empty_budget() {
    let policy = keyed_example().replace(r#""mode": "enforce""#, r#""mode": "observe""#);
    let mut e = engine(&policy);
    let ip = "203.0.113.14";
    let c = Some("session_id=bot");
    let d = nav(&mut e, "/products/0", ip, c, T0);
    let t = token_of(&e, &d, ip).unwrap();
    beacon(&mut e, &t, 1, ip, c, T0 + 200);
    let d = nav(&mut e, "/products/1", ip, c, T0 + 3_000);
    eprintln!("{:?} would={:?} score={} {:?}", d.verdict, d.would, d.score, d.reasons);
    assert!(!d.reasons.contains(&"rate_limit_global"), "shed with 2 requests in a 500 budget: {d:?}");
}

/// Each page's beacon is a request under the per-client limit: a person reading 25 pages in a
/// minute (each page one request, its assets apart) is refused pages, and their beacons.
#[test]
fn beacons_do_not_spend_the_per_client_limit() {
    let mut e = engine(&keyed_example());
    let ip = "203.0.113.16";
    let c = Some("session_id=reader");
    let mut refused = Vec::new();
    for i in 0..25u64 {
        let at = T0 + i * 2_400 + (i * i * 377) % 1_500;
        let r = page_navigation(&format!("/products/{i}"), ip)
            .header("sec-fetch-site", if i == 0 { "none" } else { "same-origin" })
            .header("referer", &format!("https://shop.test/products/{}", i.saturating_sub(1)))
            .header("cookie", "session_id=reader");
        let d = send(&mut e, &r, at, 200);
        if let Some(b) = &d.beacon {
            e.beacon_sent(b.session, at);
        }
        if d.verdict == Verdict::RateLimited {
            refused.push(format!("page {i}"));
            continue;
        }
        let Some(t) = token_of(&e, &d, ip) else {
            refused.push(format!("page {i}: {:?} {:?}", d.verdict, d.reasons));
            continue;
        };
        let b = beacon(&mut e, &t, 0, ip, c, at + 300);
        if b.verdict == Verdict::RateLimited {
            refused.push(format!("beacon {i}"));
        }
    }
    assert!(refused.is_empty(), "25 pages in a minute (limit 40): refused {refused:?}");
}

/// A block rule trialled with `observe: true` lets a session scoring 1.0 through: the global
/// limit then refuses it (429) with the budget empty.
#[test]
fn an_observed_block_rule_is_not_enforced_by_the_global_limit_on_an_empty_budget() {
    let policy =
        keyed_example().replace(r#"{ "bot_score_above": 0.85 }"#, r#"{ "bot_score_above": 0.85, "observe": true }"#);
    assert!(policy.contains(r#""observe": true"#));
    let mut e = engine(&policy);
    let ip = "203.0.113.18";
    let c = Some("session_id=tester");
    let d = nav(&mut e, "/products/0", ip, c, T0);
    let t = token_of(&e, &d, ip).unwrap();
    beacon(&mut e, &t, 1, ip, c, T0 + 200); // e.g. the site's own Selenium QA run
    let d = nav(&mut e, "/products/1", ip, c, T0 + 3_000);
    eprintln!("{:?} would={:?} score={} {:?}", d.verdict, d.would, d.score, d.reasons);
    assert_ne!(d.verdict, Verdict::RateLimited, "refused by a 2/500 global budget: {d:?}");
}

/// One forged beacon from a NAT neighbour whose browser drops cookies: newcomers from that
/// address and browser (a new one every five minutes for two hours, on the shared session as
/// it was handed its cookie already) are not challenged for it, so its attempts are not spent
/// until everyone behind the address is blocked.
#[test]
fn one_outsider_beacon_challenges_no_newcomer_behind_a_nat() {
    let mut e = engine(&keyed_example());
    let ip = "203.0.113.50";
    let token = shared_session_token(&mut e, ip);
    assert_eq!(beacon(&mut e, &token, 1, ip, None, T0 + 2_100).reasons, ["automation_reported"]);
    for k in 1..=24u64 {
        // A person's browser: a page of their own, and its beacon answered.
        let at = T0 + k * 300_000;
        let d = nav(&mut e, &format!("/products/{k}"), ip, None, at);
        assert_eq!(d.verdict, Verdict::Pass, "newcomer {k}: {d:?}");
        if let Some(t) = token_of(&e, &d, ip) {
            beacon(&mut e, &t, 0, ip, None, at + 200);
        }
    }
}

/// The beacon's exemption from the page limits holds for the endpoint botgate answers, not for
/// other spellings of its path, which go upstream: those are pages, shed by the global limit
/// like any other (a catch-all upstream route would otherwise serve them unlimited).
#[test]
fn other_spellings_of_the_beacon_path_are_pages() {
    let case_insensitive = keyed_example().replacen('{', r#"{ "paths": {"case_insensitive": true},"#, 1);
    for (policy, path) in [
        (keyed_example(), "//.well-known/botgate/beacon"),
        (keyed_example(), "/x/../.well-known/botgate/beacon"),
        (keyed_example(), "/%2ewell-known/botgate/beacon"),
        (case_insensitive, "/.WELL-KNOWN/botgate/beacon"),
    ] {
        let mut e = engine(&policy);
        let upstream = (0..1000u64)
            .filter(|i| {
                let ip = format!("198.51.{}.{}", i / 200, i % 200 + 1);
                let d = send(&mut e, &page_navigation(path, &ip).header("sec-fetch-site", "none"), T0 + i * 50, 404);
                d.verdict == Verdict::Pass && d.answer.is_none()
            })
            .count();
        assert!(upstream <= 500, "{path}: {upstream} of 1000 reached the upstream past a budget of 500");
    }
}
