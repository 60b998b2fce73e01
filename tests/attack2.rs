//! A second red-team pass, on the fixes of 7b04071 (cross-site sub-resources in a session of
//! their own, cookies read as upstream parsers read them, repeated session cookies hashed
//! together) and the new user-agent and path code. Each test is one attack, written as what
//! must hold; each failed on the code it was written against (166fa74).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::{Decision, Verdict};
use common::page_navigation as browser_nav;
use common::{engine, send, Req};

const T0: u64 = 1_795_305_600_000;
const CLEARANCE_KEY: &str = "clearance-key-for-tests-0123456789abcdef";

fn policy() -> String {
    common::example_policy(&[("BOTGATE_CLEARANCE_KEY", CLEARANCE_KEY)])
}

/// A signed-in bot (its own account, cookie `session_id=<cookie>`) asks for challenged pages
/// until its session is out of attempts and blocked for good; returns the blocked decision.
fn run_out_of_attempts(e: &mut botgate::engine::Engine, cookie: &str, ip: &str) -> Decision {
    let mut last = None;
    for i in 0..11u64 {
        let r = browser_nav(&format!("/members/{i}"), ip)
            .header("sec-fetch-site", "same-origin")
            .header("cookie", &format!("session_id={cookie}"));
        last = Some(send(e, &r, T0 + i * 1_000 + (i * i * 377) % 900, 200));
    }
    let d = last.unwrap();
    assert_eq!(d.verdict, Verdict::Block, "setup: the bot's session should be out of attempts: {d:?}");
    assert!(d.reasons.contains(&"challenge_failed"), "{d:?}");
    d
}

fn is_block(d: &Decision) -> bool {
    d.verdict == Verdict::Block
}

#[test]
fn a_signed_in_bot_blocked_for_failing_its_challenges_stays_blocked_when_it_claims_to_be_cross_site() {
    let mut e = engine(&common::challenge_members(&policy()));
    let ip = "203.0.113.60";
    run_out_of_attempts(&mut e, "bot-account", ip);
    // The bot writes its own fetch metadata: one header and its account works again, with ten
    // fresh attempts (the upstream reads the same session cookie and never looks at the header).
    let r = Req::new("GET", "/members/99", ip)
        .browser()
        .header("accept", "*/*")
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "cors")
        .header("sec-fetch-dest", "empty")
        .header("cookie", "session_id=bot-account");
    let d = send(&mut e, &r, T0 + 20_000, 200);
    assert!(is_block(&d), "`sec-fetch-site: cross-site` escaped the session's challenge_failed: {d:?}");
}

#[test]
fn a_signed_in_bot_blocked_for_failing_its_challenges_stays_blocked_when_it_repeats_its_session_cookie() {
    let mut e = engine(&common::challenge_members(&policy()));
    let ip = "203.0.113.61";
    run_out_of_attempts(&mut e, "bot-account", ip);
    // Go's net/http and Express read the first `session_id`, so the upstream still serves the
    // bot's account; botgate hashes both values into a session nobody has used. A new junk
    // value on every request is a new, clean session on every request.
    for (i, junk) in ["x1", "x2", "x3"].iter().enumerate() {
        let r = browser_nav("/members/99", ip)
            .header("sec-fetch-site", "same-origin")
            .header("cookie", &format!("session_id=bot-account; session_id={junk}"));
        let d = send(&mut e, &r, T0 + 20_000 + i as u64 * 1_000, 200);
        assert!(is_block(&d), "a repeated session cookie escaped the session's challenge_failed: {d:?}");
    }
}

#[test]
fn a_signed_in_bot_blocked_for_failing_its_challenges_stays_blocked_when_it_quotes_or_escapes_its_session_cookie() {
    let mut e = engine(&common::challenge_members(&policy()));
    let ip = "203.0.113.62";
    run_out_of_attempts(&mut e, "botaccount", ip);
    // Go's net/http, Python's http.cookies and Express's `cookie` strip the double quotes of a
    // quoted value; Express and PHP percent-decode it: the upstream sees `botaccount` in each.
    for (i, spelt) in [r#""botaccount""#, "%62otaccount", "b%6ftaccount"].iter().enumerate() {
        let r = browser_nav("/members/99", ip)
            .header("sec-fetch-site", "same-origin")
            .header("cookie", &format!("session_id={spelt}"));
        let d = send(&mut e, &r, T0 + 20_000 + i as u64 * 1_000, 200);
        assert!(is_block(&d), "session_id={spelt} escaped the session's challenge_failed: {d:?}");
    }
}

#[test]
fn a_cross_site_page_cannot_spend_a_signed_in_users_challenge_attempts_by_navigating_a_popup() {
    let mut e = engine(&common::challenge_members(&policy()));
    let ip = "203.0.113.63";
    // The attacker's page opens one popup (one click anywhere on it) and keeps the handle:
    // `w.location = "https://shop.test/members/" + i` every second. Each is a top-level
    // cross-site GET navigation, so SameSite=Lax cookies go with it; each is handed a step-up,
    // and each hand-out is one of Alice's ten attempts.
    let d = common::alice_after(&mut e, ip, |i| {
        browser_nav(&format!("/members/{i}"), ip)
            .header("sec-fetch-site", "cross-site")
            .header("referer", "https://evil.example/")
            .header("cookie", "session_id=alice")
    });
    assert!(!d.reasons.contains(&"challenge_failed"), "a popup spent Alice's attempts: {d:?}");
    assert!(matches!(d.verdict, Verdict::Challenge(_)), "{d:?}");
}

#[test]
fn a_page_on_a_sibling_subdomain_cannot_spend_a_signed_in_users_challenge_attempts() {
    let mut e = engine(&common::challenge_members(&policy()));
    let ip = "203.0.113.64";
    // User content on `pages.shop.test` (or any sibling host): `fetch(url, {credentials:
    // "include", mode: "no-cors"})` is `same-site`, and even SameSite=Strict cookies go with it.
    let d = common::alice_after(&mut e, ip, |i| {
        Req::new("GET", &format!("/members/{i}"), ip)
            .browser()
            .header("accept", "*/*")
            .header("sec-fetch-site", "same-site")
            .header("sec-fetch-mode", "no-cors")
            .header("sec-fetch-dest", "empty")
            .header("referer", "https://pages.shop.test/")
            .header("cookie", "session_id=alice")
    });
    assert!(!d.reasons.contains(&"challenge_failed"), "a sibling subdomain spent Alice's attempts: {d:?}");
    assert!(matches!(d.verdict, Verdict::Challenge(_)), "{d:?}");
}

#[test]
fn a_cross_site_page_cannot_get_a_visitor_on_a_browser_without_fetch_metadata_blocked_before_they_arrive() {
    let mut e = engine(&common::challenge_members(&policy()));
    let ip = "203.0.113.65";
    // Safari before 16.4 (iOS 15, still about) sends no `sec-fetch-*`. Eleven
    // `<img src="https://shop.test/members">` on the attacker's page: no cookie (Safari blocks
    // third-party cookies), so they land in the anonymous session of the victim's address,
    // user agent and language, which is the session of the victim's own first visit.
    const SAFARI15: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 15_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.6.6 Mobile/15E148 Safari/604.1";
    let safari = |path: &str, accept: &str| {
        Req::new("GET", path, ip)
            .header("user-agent", SAFARI15)
            .header("accept", accept)
            .header("accept-language", "en-GB,en;q=0.9")
    };
    for i in 0..11u64 {
        let img = safari("/members", "image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5")
            .header("referer", "https://evil.example/");
        send(&mut e, &img, T0 + i * 100, 200);
    }
    let d = send(&mut e, &safari("/members", "text/html,application/xhtml+xml"), T0 + 10_000, 200);
    assert!(matches!(d.verdict, Verdict::Challenge(_)), "a first visit is blocked by someone else's page: {d:?}");
}

#[test]
fn a_crawler_that_names_itself_a_bot_with_a_contact_url_is_not_scored_as_a_person() {
    let mut e = engine(&policy());
    // The shape every self-declaring crawler uses (Googlebot's, Bingbot's, GPTBot's, ClaudeBot's):
    // a browser's tokens with `compatible; <Name>Bot/<version>; +<url>` inside. A name that is
    // not on the list yet (a new crawler, a renamed one) is still plainly a bot; isbot's generic
    // `bot` and `https?://` rules catch it, the generated literals do not.
    for (i, ua) in [
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; AcmeBot/1.0; +https://acme.example/bot) Chrome/126.0.0.0 Safari/537.36",
        "Mozilla/5.0 (compatible; AcmeBot/1.0; +https://acme.example/bot)",
    ]
    .iter()
    .enumerate()
    {
        let r = Req::new("GET", "/products", &format!("198.51.100.{}", 70 + i))
            .header("user-agent", ua)
            .header("accept", "*/*")
            .header("accept-language", "en");
        let d = send(&mut e, &r, T0 + i as u64 * 1_000, 200);
        assert!(d.score > 0.0, "{ua}: a self-declared bot scored {}: {d:?}", d.score);
    }
}
