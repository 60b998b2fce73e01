//! Slow rotating scrapers seen as one (issue 12): a campaign that opens a fresh session at each
//! residential address, a few pages each, is grouped by the shape its sessions share and the way
//! they all open; the people who share that shape and open their visits otherwise are not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::{Decision, Verdict};
use botgate::engine::Engine;
use common::{background_people, chrome_nav, engine, keyed_example, send, Req, T0};

/// The scraper: one fresh session per address (no cookies kept), each on its own network,
/// opening straight onto an item page as a script's `goto` does.
fn scraper_landing(e: &mut Engine, i: u64) -> Decision {
    let ip = format!("{}.{}.30.40", 11 + i % 200, i / 200);
    send(e, &chrome_nav(&format!("/products/{}", 1000 + i), &ip, "none", None), T0 + 60_000 + i * 20_000, 200)
}

fn refused(d: &Decision) -> bool {
    matches!(d.verdict, Verdict::Challenge(_) | Verdict::Block | Verdict::RateLimited)
}

#[test]
fn a_scraper_opening_a_fresh_session_at_each_address_is_seen_as_one_campaign() {
    let mut e = engine(&keyed_example());
    background_people(&mut e, 30);
    let landings: Vec<Decision> = (0..30).map(|i| scraper_landing(&mut e, i)).collect();
    // Each landing alone is a person opening a bookmark: the first ones pass.
    assert!(landings[..5].iter().all(|d| d.verdict == Verdict::Pass), "{:?}", &landings[..5]);
    // Then the shape is a campaign, and every session that opens its way is asked to prove it.
    for (i, d) in landings.iter().enumerate().skip(12) {
        assert!(d.reasons.contains(&"campaign_landings"), "landing {i}: {d:?}");
        assert!(refused(d), "landing {i}: {d:?}");
        assert_eq!(d.campaign, landings[12].campaign, "one campaign, one name");
    }
    // The evidence names it, so an operator can find all of its requests in the access log.
    let evidence = landings[20].evidence("req-1");
    let name = format!("\"campaign\":\"{:016x}\"", landings[20].campaign.unwrap());
    assert!(evidence.contains(&name), "{evidence}");
}

#[test]
fn people_sharing_the_campaigns_shape_who_arrive_another_way_are_not_part_of_it() {
    let mut e = engine(&keyed_example());
    background_people(&mut e, 30);
    for i in 0..30 {
        scraper_landing(&mut e, i);
    }
    let at = T0 + 60_000 + 31 * 20_000;
    let from_search =
        chrome_nav("/products/42", "192.0.2.10", "cross-site", Some("https://www.google.com/search?q=shoes"));
    let home = chrome_nav("/", "192.0.2.11", "none", None);
    for (what, r) in [("a search result", from_search), ("the home page", home)] {
        let d = send(&mut e, &r, at, 200);
        assert_eq!(d.verdict, Verdict::Pass, "{what}: {d:?}");
        assert!(!d.reasons.contains(&"campaign_landings"), "{what}: {d:?}");
        assert_eq!(d.campaign, None, "{what}");
    }
}

/// Anyone can send Chrome's exact shape, so a person of that shape who opens a bookmark while a
/// campaign runs is asked for a proof of work (their browser solves it), and then browses freely.
#[test]
fn a_person_who_opens_a_bookmark_during_a_campaign_is_cleared_by_one_proof_of_work() {
    let mut e = engine(&keyed_example());
    background_people(&mut e, 30);
    for i in 0..30 {
        scraper_landing(&mut e, i);
    }
    let (ip, at) = ("192.0.2.20", T0 + 60_000 + 31 * 20_000);
    let d = send(&mut e, &chrome_nav("/products/5", ip, "none", None), at, 200);
    assert!(d.reasons.contains(&"campaign_landings"), "{d:?}");
    let (c, difficulty) = common::pow_of(&d);
    let s = botgate::challenge::pow::solve(&c, difficulty).unwrap();
    let verify = format!("/.well-known/botgate/verify?challenge={c}&solution={s}");
    let passed = send(&mut e, &chrome_nav(&verify, ip, "same-origin", None), at + 2_000, 200);
    assert!(passed.reasons.contains(&"pow_passed"), "{passed:?}");
    let cookies = common::cookies_set(&passed);
    for (n, path) in ["/products/5", "/products", "/products/6"].iter().enumerate() {
        let r = chrome_nav(path, ip, "same-origin", Some("https://shop.test/products/5"))
            .header("cookie", &cookies.join("; "));
        let d = send(&mut e, &r, at + 4_000 + n as u64 * 5_000, 200);
        assert_eq!(d.verdict, Verdict::Pass, "page {n} after the pass: {d:?}");
    }
}

/// Many sessions of one shape opening directly from one network are an office or a carrier NAT
/// full of people with the same browser, not a campaign.
#[test]
fn many_direct_landings_from_one_network_are_not_a_campaign() {
    let mut e = engine(&keyed_example());
    background_people(&mut e, 30);
    for i in 0..30u64 {
        let ip = format!("198.51.{}.{}", i % 200, 1 + i);
        let d = send(&mut e, &chrome_nav(&format!("/products/{i}"), &ip, "none", None), T0 + 60_000 + i * 20_000, 200);
        assert!(!d.reasons.contains(&"campaign_landings"), "landing {i}: {d:?}");
    }
}

/// A flood of direct landings under made-up shapes raises the share everyone else is measured
/// by, but only up to a cap: a campaign is still seen, after more landings.
#[test]
fn a_flood_of_made_up_shapes_cannot_hide_a_campaign() {
    let mut e = engine(&keyed_example());
    for i in 0..2_000u64 {
        let ip = format!("100.{}.{}.1", 64 + i % 60, i % 250);
        let r = Req::new("GET", "/products/1", &ip)
            .header("user-agent", &format!("Mozilla/5.0 (made-up {i})"))
            .header("accept", "text/html")
            .header("accept-language", "en")
            .header("sec-fetch-site", "none")
            .header("sec-fetch-mode", "navigate");
        send(&mut e, &r, T0 + i * 10, 200);
    }
    let seen = (0..80).map(|i| scraper_landing(&mut e, i)).any(|d| d.reasons.contains(&"campaign_landings"));
    assert!(seen, "the campaign hid behind the flood");
}

/// A campaign that stops is forgotten: a session of its shape opening the same way hours later
/// is not asked for it.
#[test]
fn a_campaign_that_stopped_hours_ago_is_forgotten() {
    let mut e = engine(&keyed_example());
    background_people(&mut e, 30);
    for i in 0..30 {
        scraper_landing(&mut e, i);
    }
    let later = T0 + 60_000 + 30 * 20_000 + 5 * 3_600_000;
    let d = send(&mut e, &chrome_nav("/products/9", "192.0.2.30", "none", None), later, 200);
    assert!(!d.reasons.contains(&"campaign_landings"), "{d:?}");
    assert_eq!(d.verdict, Verdict::Pass, "{d:?}");
}

/// A scripted browser that keeps one session but opens page after page by `goto`, rendering
/// each (so the page-rendering signals stay quiet): people open a handful of pages that way,
/// never dozens.
#[test]
fn dozens_of_pages_opened_directly_in_one_session_are_challenged() {
    let mut e = engine(&keyed_example());
    let ip = "203.0.113.90";
    let mut cookie = String::new();
    let mut last = None;
    for i in 0..20u64 {
        let mut r = chrome_nav(&format!("/products/{i}"), ip, "none", None);
        if !cookie.is_empty() {
            r = r.header("cookie", &cookie);
        }
        let at = T0 + i * 15_000;
        let d = send(&mut e, &r, at, 200);
        if let Some(set) = &d.visitor {
            cookie = set.split(';').next().unwrap().to_string();
        }
        // Its page's assets come through Envoy too.
        let asset = Req::new("GET", "/static/app.js", ip)
            .browser()
            .header("sec-fetch-dest", "script")
            .header("sec-fetch-site", "same-origin")
            .header("cookie", &cookie);
        send(&mut e, &asset, at + 200, 200);
        if i == 5 {
            assert_eq!(d.verdict, Verdict::Pass, "six bookmarks are a person's: {d:?}");
        }
        last = Some(d);
    }
    let d = last.unwrap();
    assert!(d.reasons.contains(&"direct_navigations"), "{d:?}");
    assert!(refused(&d), "{d:?}");
}
