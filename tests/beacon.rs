//! The silent challenge (issue 12): a page's beacon, bound to its session and signed per page,
//! and what a session's beacons (or their absence) do to its score.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::{Decision, Verdict};
use botgate::engine::Engine;
use common::{engine, keyed_example, page_navigation, send, Req, T0};

const IP: &str = "203.0.113.80";

/// A page navigation in the session of `cookie`, and its beacon's token (the shell added it).
fn page(e: &mut Engine, path: &str, cookie: &str, at: u64) -> (Decision, String) {
    let d = next_page(e, path, cookie, at);
    let b = d.beacon.clone().unwrap_or_else(|| panic!("no beacon for {path}: {d:?}"));
    e.beacon_sent(b.session, at);
    let token = e.beacon_token(&b, &click(path, cookie).head).expect("a token");
    (d, token)
}

/// A click to `path` in the session of `cookie`.
fn next_page(e: &mut Engine, path: &str, cookie: &str, at: u64) -> Decision {
    send(e, &click(path, cookie), at, 200)
}

fn click(path: &str, cookie: &str) -> Req {
    page_navigation(path, IP).header("sec-fetch-site", "same-origin").header("cookie", cookie)
}

/// The page's script answering: a same-origin POST with the cookies of the page.
fn beacon(e: &mut Engine, token: &str, traits: u16, cookie: &str, at: u64) -> Decision {
    let r = Req::new("POST", &format!("/.well-known/botgate/beacon?t={token}&a={traits}"), IP)
        .browser()
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "no-cors")
        .header("cookie", cookie);
    send(e, &r, at, 200)
}

fn status(d: &Decision) -> u32 {
    d.answer.as_ref().map_or(0, |a| a.status)
}

#[test]
fn a_page_navigation_carries_a_beacon_and_its_answer_is_accepted() {
    let mut e = engine(&keyed_example());
    let (_, token) = page(&mut e, "/products/1", "session_id=alice", T0);
    let d = beacon(&mut e, &token, 0, "session_id=alice", T0 + 300);
    assert_eq!((d.verdict, status(&d)), (Verdict::Serve, 204), "{d:?}");
    assert_eq!(d.reasons, ["beacon_accepted"]);
    let api = Req::new("GET", "/api/cart", IP).browser().header("sec-fetch-mode", "cors");
    assert!(send(&mut e, &api, T0 + 400, 200).beacon.is_none(), "only page navigations carry one");
}

#[test]
fn a_beacon_is_refused_when_forged_moved_to_another_session_replayed_or_sent_cross_site() {
    let mut e = engine(&keyed_example());
    let (_, token) = page(&mut e, "/products/1", "session_id=alice", T0);
    let mut forged = token.clone();
    forged.replace_range(token.len() - 4.., "AAAA");
    assert_eq!(beacon(&mut e, &forged, 0, "session_id=alice", T0 + 100).reasons, ["beacon_forged"]);
    assert_eq!(beacon(&mut e, &token, 0, "session_id=mallory", T0 + 100).reasons, ["beacon_forged"]);
    assert_eq!(beacon(&mut e, &token, 0, "session_id=alice", T0 + 200).reasons, ["beacon_accepted"]);
    let again = beacon(&mut e, &token, 0, "session_id=alice", T0 + 300);
    assert_eq!((status(&again), again.reasons.as_slice()), (403, ["beacon_replayed"].as_slice()));
    // A hostile page navigating Alice's browser to the endpoint touches nothing.
    let (_, fresh) = page(&mut e, "/products/2", "session_id=alice", T0 + 1_000);
    let cross = Req::new("GET", &format!("/.well-known/botgate/beacon?t={fresh}&a=1"), IP)
        .browser()
        .header("sec-fetch-site", "cross-site")
        .header("cookie", "session_id=alice");
    assert_eq!(send(&mut e, &cross, T0 + 1_100, 200).reasons, ["cross_site_request"]);
    let expired = beacon(&mut e, &fresh, 0, "session_id=alice", T0 + 1_000 + 10 * 60_000);
    assert_eq!(expired.reasons, ["beacon_expired"]);
}

#[test]
fn an_old_token_cannot_be_replayed_once_four_newer_ones_were_answered() {
    let mut e = engine(&keyed_example());
    let tokens: Vec<String> =
        (0..6).map(|i| page(&mut e, &format!("/p/{i}"), "session_id=a", T0 + i * 5_000).1).collect();
    for (i, t) in tokens.iter().enumerate().skip(1) {
        assert_eq!(beacon(&mut e, t, 0, "session_id=a", T0 + 40_000 + i as u64).reasons, ["beacon_accepted"]);
    }
    assert_eq!(beacon(&mut e, &tokens[0], 0, "session_id=a", T0 + 50_000).reasons, ["beacon_replayed"]);
    assert_eq!(beacon(&mut e, &tokens[1], 0, "session_id=a", T0 + 50_000).reasons, ["beacon_replayed"]);
}

#[test]
fn a_browser_reporting_webdriver_is_blocked_on_its_next_page() {
    let mut e = engine(&keyed_example());
    let (_, token) = page(&mut e, "/products/1", "session_id=bot", T0);
    let d = beacon(&mut e, &token, 1, "session_id=bot", T0 + 200);
    assert_eq!(d.reasons, ["automation_reported"]);
    assert_eq!(d.detail.as_deref(), Some("webdriver"));
    let next = next_page(&mut e, "/products/2", "session_id=bot", T0 + 3_000);
    assert!(next.reasons.contains(&"automation_reported"), "{next:?}");
    assert_eq!(next.verdict, Verdict::Block, "{next:?}");
}

#[test]
fn a_user_agent_switched_by_a_privacy_extension_is_not_refused_an_ordinary_page() {
    let mut e = engine(&keyed_example());
    let (_, token) = page(&mut e, "/products/1", "session_id=p", T0);
    beacon(&mut e, &token, 4, "session_id=p", T0 + 200);
    let next = next_page(&mut e, "/products/2", "session_id=p", T0 + 5_000);
    assert!(next.reasons.contains(&"automation_reported"), "{next:?}");
    assert_eq!(next.verdict, Verdict::Pass, "{next:?}");
}

/// A client that reads pages and neither renders them nor runs their script: after three pages
/// its silence corroborates what else flags it (here a missing `accept-language`). Silence alone
/// is nothing: a person with JavaScript off and every asset cached looks the same.
#[test]
fn silence_corroborates_other_signals_and_is_nothing_alone() {
    let mut e = engine(&keyed_example());
    let mut last = None;
    for i in 0..4u64 {
        let r = Req::new("GET", &format!("/products/{i}"), IP)
            .header("user-agent", common::CHROME)
            .header("accept", "text/html")
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", "document")
            .header("cookie", "session_id=reader");
        let d = send(&mut e, &r, T0 + i * 4_000, 200);
        e.beacon_sent(d.beacon.as_ref().unwrap().session, T0 + i * 4_000);
        last = Some(d);
    }
    let d = last.unwrap();
    assert!(d.reasons.contains(&"beacon_missing"), "{d:?}");
    let mut e = engine(&keyed_example());
    for i in 0..6u64 {
        let (d, _) = page(&mut e, &format!("/products/{i}"), "session_id=nojs", T0 + i * 6_000);
        assert_eq!(d.verdict, Verdict::Pass, "page {i}: {d:?}");
        assert!(!d.reasons.contains(&"beacon_missing"), "page {i}: {d:?}");
    }
}

#[test]
fn the_beacon_is_off_unless_the_policy_turns_it_on() {
    let policy = keyed_example().replace(r#""beacon": { "enabled": true"#, r#""beacon": { "enabled": false"#);
    assert!(policy.contains(r#""enabled": false, "scan_bytes""#), "the example's beacon moved");
    let mut e = engine(&policy);
    let d = send(&mut e, &page_navigation("/", IP), T0, 200);
    assert!(d.beacon.is_none());
}

/// A person's first page hands them a visitor cookie; the page's beacon comes back carrying it,
/// and is that session's.
#[test]
fn the_first_pages_beacon_is_for_the_visitor_cookie_it_handed_out() {
    let mut e = engine(&keyed_example());
    let d = send(&mut e, &page_navigation("/", IP), T0, 200);
    let cookie = d.visitor.clone().expect("a visitor cookie");
    let cookie = cookie.split(';').next().unwrap().to_string();
    let b = d.beacon.clone().expect("a beacon");
    e.beacon_sent(b.session, T0);
    let token = e.beacon_token(&b, &page_navigation("/", IP).head).unwrap();
    assert_eq!(beacon(&mut e, &token, 0, &cookie, T0 + 300).reasons, ["beacon_accepted"]);
}

/// The proof-of-work page carries the silent challenge too (loaded from botgate's path, as the
/// page's CSP allows no inline script): a scripted browser that solves the puzzle still reports
/// itself, and is blocked on the page it was let through to; a person's browser is cleared.
#[test]
fn the_proof_of_work_page_carries_the_beacon_and_a_scripted_solver_is_still_caught() {
    for (traits, caught) in [(1u16, true), (0, false)] {
        let mut e = engine(&common::challenge_members(&keyed_example()));
        let first = next_page(&mut e, "/products/1", "", T0);
        let visitor = first.visitor.clone().expect("a visitor cookie for the first page");
        let cookie = visitor.split(';').next().unwrap().to_string();
        let d = next_page(&mut e, "/members", &cookie, T0 + 2_000);
        let reply = d.reply("r").unwrap();
        let token = d.challenge.as_ref().and_then(|c| c.beacon.clone()).expect("the puzzle page's beacon");
        assert!(reply.body.contains(&format!("beacon.js\" data-t=\"{token}\"")), "{}", reply.body);
        assert!(!reply.body.contains("<script>"), "nothing inline for the page's CSP to refuse");
        let answered = beacon(&mut e, &token, traits, &cookie, T0 + 2_300);
        assert_eq!(status(&answered), 204, "{answered:?}");
        let (c, difficulty) = common::pow_of(&d);
        let s = botgate::challenge::pow::solve(&c, difficulty).unwrap();
        let verify = format!("/.well-known/botgate/verify?challenge={c}&solution={s}");
        let passed = next_page(&mut e, &verify, &cookie, T0 + 4_000);
        assert!(passed.reasons.contains(&"pow_passed"), "{passed:?}");
        let cookies: Vec<String> = std::iter::once(cookie.clone()).chain(common::cookies_set(&passed)).collect();
        let after = next_page(&mut e, "/members", &cookies.join("; "), T0 + 5_000);
        if caught {
            assert_eq!(after.verdict, Verdict::Block, "{after:?}");
            assert!(after.reasons.contains(&"automation_reported"), "{after:?}");
        } else {
            assert_eq!(after.verdict, Verdict::Pass, "{after:?}");
        }
    }
}

/// The address's shared session (no cookie yet) records no beacon, so its puzzle page carries none.
#[test]
fn a_cookieless_puzzle_page_carries_no_beacon() {
    let mut e = engine(&common::challenge_members(&keyed_example()));
    let d = send(&mut e, &page_navigation("/members", IP), T0, 200);
    assert!(d.challenge.as_ref().is_some_and(|c| c.beacon.is_none()), "{d:?}");
}
