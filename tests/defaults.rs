//! Defaults that never refuse people (issue 12): what the example policy counts against a
//! person, and what a scraper cannot hide behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::Verdict;
use common::{engine, keyed_example, page_navigation, send, Req, T0};

/// A page with forty static assets, loaded through Envoy, four pages a minute: a person on a
/// heavy site. The per-client limit (40 a minute) counts the pages, not their assets.
#[test]
fn a_pages_static_assets_do_not_count_against_the_per_client_limit() {
    let mut e = engine(&keyed_example());
    for page in 0..4u64 {
        let at = T0 + page * 15_000;
        let d = send(&mut e, &page_navigation(&format!("/products/{page}"), "203.0.113.50"), at, 200);
        assert_ne!(d.verdict, Verdict::RateLimited, "page {page}: {d:?}");
        for i in 0..40u64 {
            let asset = ["/static/app.js", "/static/site.css", "/img/p.webp", "/fonts/a.woff2"][(i % 4) as usize];
            let r =
                Req::new("GET", &format!("{asset}?v={i}"), "203.0.113.50").browser().header("sec-fetch-dest", "image");
            let d = send(&mut e, &r, at + 100 + i * 20, 200);
            assert_ne!(d.verdict, Verdict::RateLimited, "asset {i} of page {page}: {d:?}");
        }
    }
}

/// The same client fetching forty-one pages in a minute is still limited, and a page cannot pass
/// for an asset by how it is spelt: the limit reads the path as Envoy routes it.
#[test]
fn pages_still_count_however_their_path_is_spelt() {
    for spelling in ["/products/{i}", "/products/{i};x.css", "/products/{i}/..;/{i}", "/products/{i}?f=a.css"] {
        let mut e = engine(&keyed_example());
        let limited = (0..45u64).any(|i| {
            let path = spelling.replace("{i}", &i.to_string());
            let d = send(&mut e, &Req::new("GET", &path, "203.0.113.51").browser(), T0 + i * 500, 200);
            d.verdict == Verdict::RateLimited
        });
        assert!(limited, "{spelling}: 45 pages in 22 s were never limited");
    }
}

/// An operator who wants assets counted says so.
#[test]
fn count_static_assets_counts_them() {
    let policy =
        keyed_example().replace(r#""max_requests": 40,"#, r#""max_requests": 40, "count_static_assets": true,"#);
    assert!(policy.contains("count_static_assets"), "the example's per-client limit moved");
    let mut e = engine(&policy);
    let limited = (0..45u64).any(|i| {
        let r = Req::new("GET", &format!("/static/{i}.js"), "203.0.113.52").browser();
        send(&mut e, &r, T0 + i * 500, 200).verdict == Verdict::RateLimited
    });
    assert!(limited);
}

/// A person's page calls a dozen different endpoints of the site's API within a minute (same
/// browser, same address, no bodies): different requests, not one request repeated.
#[test]
fn a_persons_different_api_calls_are_not_one_repeated_request() {
    let policy = common::detector_enforced();
    assert!(policy.contains(r#""action": "block""#), "the example's detector action moved");
    let mut e = engine(&policy);
    let calls = ["cart", "prices", "stock", "reviews", "recommendations", "user", "wishlist", "shipping"];
    for (i, call) in calls.iter().chain(&calls[..4]).enumerate() {
        let r = Req::new("GET", &format!("/api/{call}"), "203.0.113.60")
            .browser()
            .header("accept", "application/json")
            .header("sec-fetch-mode", "cors")
            .header("sec-fetch-site", "same-origin");
        let d = send(&mut e, &r, T0 + i as u64 * 2_000, 200);
        assert!(!d.reasons.contains(&"fingerprint_repeat"), "call {i} ({call}): {d:?}");
        assert_ne!(d.verdict, Verdict::Block, "call {i} ({call}): {d:?}");
    }
}

/// The same request repeated is still one fingerprint: the sixth within the window is blocked.
#[test]
fn the_same_api_request_repeated_is_still_flagged() {
    let mut e = engine(&common::detector_enforced());
    let verdicts: Vec<Verdict> = (0..7u64)
        .map(|i| {
            let r = Req::new("POST", "/v1/chat/completions", "203.0.113.61")
                .header("user-agent", "python-requests/2.32.3")
                .header("content-type", "application/json")
                .body(r#"{"model":"m","messages":[{"role":"user","content":"the same prompt"}]}"#);
            send(&mut e, &r, T0 + i * 1_000, 200).verdict
        })
        .collect();
    assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Block).count(), 2, "{verdicts:?}");
}

/// A client whose session failed its challenges for good cannot start clean by sending a session
/// cookie it made up: a new signed-in session starts from the anonymous session it came from, and
/// must pass a challenge (not blocked outright: that session may be a stranger's on a shared
/// address, see `tests/attack3.rs`).
#[test]
fn a_made_up_session_cookie_does_not_shed_a_failed_challenge() {
    let mut e = engine(&keyed_example());
    let first = send(&mut e, &page_navigation("/products/1", "203.0.113.70"), T0, 200);
    e.fail_challenge(first.session.expect("a session"));
    let again = send(&mut e, &page_navigation("/products/2", "203.0.113.70"), T0 + 1_000, 200);
    assert_eq!(again.verdict, Verdict::Block, "{again:?}");
    let fresh = page_navigation("/products/3", "203.0.113.70").header("cookie", "session_id=made-up-1");
    let d = send(&mut e, &fresh, T0 + 2_000, 200);
    assert!(matches!(d.verdict, Verdict::Challenge(_)), "a new session cookie shed the failure: {d:?}");
    assert!(d.reasons.contains(&"inherited_challenge_failed"), "{d:?}");
}

/// A person who signs in keeps what their visit so far showed: the signed-in session starts from
/// the anonymous one, so clicks back to pages seen before signing in are not phantom referers.
#[test]
fn a_new_signed_in_session_inherits_the_anonymous_session_it_came_from() {
    let mut e = engine(&keyed_example());
    let click = |path: &str, from: &str| {
        page_navigation(path, "203.0.113.71")
            .header("sec-fetch-site", "same-origin")
            .header("referer", &format!("https://shop.test{from}"))
    };
    let mut at = T0;
    let mut step = |e: &mut botgate::engine::Engine, r: Req| {
        at += 7_000 + (at % 3) * 1_100;
        send(e, &r, at, 200)
    };
    step(&mut e, page_navigation("/products/1", "203.0.113.71"));
    step(&mut e, click("/products/2", "/products/1"));
    step(&mut e, click("/products/3", "/products/2"));
    let signed_in = |r: Req| r.header("cookie", "session_id=alice-1");
    let mut last = None;
    let clicks = [("/products/4", "/products/3"), ("/products/5", "/products/2"), ("/products/6", "/products/1")];
    for (page, from) in clicks.into_iter().chain([("/products/7", "/products/3"), ("/products/8", "/products/2")]) {
        last = Some(step(&mut e, signed_in(click(page, from))));
    }
    let d = last.unwrap();
    assert!(d.authenticated, "{d:?}");
    assert!(!d.reasons.contains(&"phantom_referers"), "the pages seen before signing in were forgotten: {d:?}");
}

/// What a new signed-in session inherits is the visit, not its clearance: a proof of work solved
/// anonymously does not stand in for the step-up the policy asks of signed-in sessions.
#[test]
fn a_new_signed_in_session_does_not_inherit_an_anonymous_clearance() {
    use botgate::policy::ChallengeType;
    let mut e = engine(&common::challenge_members(&keyed_example()));
    let ip = "203.0.113.72";
    let nav = |path: &str, cookies: &str| {
        let r = page_navigation(path, ip).header("sec-fetch-site", "same-origin");
        if cookies.is_empty() {
            r
        } else {
            r.header("cookie", cookies)
        }
    };
    let d = send(&mut e, &nav("/members", ""), T0, 200);
    let (c, difficulty) = common::pow_of(&d);
    let s = botgate::challenge::pow::solve(&c, difficulty).unwrap();
    let passed =
        send(&mut e, &nav(&format!("/.well-known/botgate/verify?challenge={c}&solution={s}"), ""), T0 + 2_000, 200);
    assert!(passed.reasons.contains(&"pow_passed"), "{passed:?}");
    let cookies = common::cookies_set(&passed).join("; ");
    let anon = send(&mut e, &nav("/members", &cookies), T0 + 4_000, 200);
    assert_eq!(anon.verdict, Verdict::Pass, "the solver is cleared: {anon:?}");
    let signed_in = send(&mut e, &nav("/members", &format!("{cookies}; session_id=new-login")), T0 + 6_000, 200);
    assert_eq!(signed_in.verdict, Verdict::Challenge(ChallengeType::WebauthnStepUp), "{signed_in:?}");
}

/// With the path in the fingerprint, a flood must not spread over spellings of one path: the
/// detector reads it as the rules do (normalised, as Envoy routes it).
#[test]
fn a_flood_spread_over_spellings_of_one_path_is_one_fingerprint() {
    let mut e = engine(&common::detector_enforced());
    let spellings = [
        "/v1/chat/completions",
        "/v1//chat/completions",
        "/v1/./chat/completions",
        "/v1/chat/%63ompletions",
        "/v1/x/../chat/completions",
        "/v1/chat/completions;v=2",
        "/v1/chat//completions",
    ];
    let verdicts: Vec<Verdict> = spellings
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let r = Req::new("POST", path, "203.0.113.62")
                .header("user-agent", "python-requests/2.32.3")
                .header("content-type", "application/json")
                .body(r#"{"model":"m","messages":[{"role":"user","content":"the same prompt"}]}"#);
            send(&mut e, &r, T0 + i as u64 * 1_000, 200).verdict
        })
        .collect();
    assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Block).count(), 2, "{verdicts:?}");
}

/// The challenge a new session inherits is passed like any other: once solved, the person goes on.
#[test]
fn an_inherited_challenge_once_passed_lets_the_person_go_on() {
    let policy = keyed_example().replace(r#""default_type": "webauthn_step_up""#, r#""default_type": "proof_of_work""#);
    assert!(policy.contains(r#""default_type": "proof_of_work""#), "the example's default type moved");
    let mut e = engine(&policy);
    let ip = "203.0.113.73";
    let first = send(&mut e, &page_navigation("/products/1", ip), T0, 200);
    e.fail_challenge(first.session.expect("a session"));
    let alice = |path: &str| {
        page_navigation(path, ip).header("sec-fetch-site", "same-origin").header("cookie", "session_id=alice-2")
    };
    let d = send(&mut e, &alice("/products/2"), T0 + 2_000, 200);
    assert!(d.reasons.contains(&"inherited_challenge_failed"), "{d:?}");
    let (c, difficulty) = common::pow_of(&d);
    let s = botgate::challenge::pow::solve(&c, difficulty).unwrap();
    let passed =
        send(&mut e, &alice(&format!("/.well-known/botgate/verify?challenge={c}&solution={s}")), T0 + 4_000, 200);
    assert!(passed.reasons.contains(&"pow_passed"), "{passed:?}");
    for (i, page) in ["/products/3", "/products/4", "/cart"].iter().enumerate() {
        let d = send(&mut e, &alice(page), T0 + 10_000 + i as u64 * 5_000, 200);
        assert_eq!(d.verdict, Verdict::Pass, "{page}: {d:?}");
    }
}

/// A flood from a thousand addresses, a few requests each (under every per-client limit), in a
/// shape no browser sends: while it runs, a person browsing is still served. The global limit
/// sheds the flood first, and stops admitting it well before the budget is spent.
#[test]
fn the_global_limit_sheds_a_flood_before_it_refuses_a_person() {
    let mut e = engine(&keyed_example());
    let (mut flood_admitted, mut flood_shed) = (0, 0);
    for i in 0..2_000u64 {
        let ip = format!("198.51.{}.{}", 100 + i / 250, i % 250);
        let r = Req::new("GET", &format!("/products/{}", i % 50), &ip)
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64)");
        let d = send(&mut e, &r, T0 + i * 30, 200);
        match d.verdict {
            Verdict::Pass => flood_admitted += 1,
            Verdict::RateLimited => {
                assert!(d.reasons.contains(&"rate_limit_global"), "{d:?}");
                flood_shed += 1;
            }
            _ => {}
        }
        if i % 100 == 99 {
            // A page every three seconds or so, clicked through from the one before.
            let (page, at) = (i / 100, T0 + i * 30 + (i * i * 377) % 1_500);
            let r = page_navigation(&format!("/products/{page}"), "203.0.113.70")
                .header("sec-fetch-site", "same-origin")
                .header("referer", &format!("https://shop.test/products/{}", page.saturating_sub(1)));
            let d = send(&mut e, &r, at, 200);
            assert_eq!(d.verdict, Verdict::Pass, "the person's page {page} while the flood ran: {d:?}");
        }
    }
    assert!(flood_shed > 1_000, "the flood was not shed: {flood_admitted} admitted, {flood_shed} shed");
    assert!(flood_admitted < 450, "the flood spent the budget: {flood_admitted} admitted");
}

/// Below half the budget nobody is shed, whatever they score: the global limit refuses only
/// under load.
#[test]
fn nobody_is_shed_below_half_the_global_budget() {
    let mut e = engine(&keyed_example());
    for i in 0..240u64 {
        let ip = format!("198.51.100.{}", i % 250);
        let r = Req::new("GET", "/products/1", &ip).header("user-agent", "Mozilla/5.0 (X11; Linux x86_64)");
        let d = send(&mut e, &r, T0 + i * 10, 200);
        assert!(!d.reasons.contains(&"rate_limit_global"), "request {i}: {d:?}");
    }
}

/// The site's own API call, the same on every page (a shop's cart count in its header), from a
/// person opening page after page, some of them the same listing again: one call per page is
/// what pages do, not one request repeated.
#[test]
fn a_shops_cart_count_called_by_every_page_is_not_one_request_repeated() {
    let mut e = engine(&common::detector_enforced());
    let ip = "203.0.113.61";
    let mut cookie = String::new();
    // Back to the listing after each item: its call with the same referer seven times in a minute.
    for i in 0..14u64 {
        let page = if i % 2 == 0 { "/products".to_string() } else { format!("/products/{i}") };
        let page = page.as_str();
        let at = T0 + i * 4_000;
        let mut nav = page_navigation(page, ip).header("sec-fetch-site", "same-origin");
        if !cookie.is_empty() {
            nav = nav.header("cookie", &cookie);
        }
        let d = send(&mut e, &nav, at, 200);
        if let Some(v) = &d.visitor {
            cookie = v.split(';').next().unwrap().to_string();
        }
        let call = xhr("/api/cart-count", ip, page).header("cookie", &cookie);
        let d = send(&mut e, &call, at + 300, 200);
        assert!(!d.reasons.contains(&"fingerprint_repeat"), "page {i}'s call: {d:?}");
        assert_eq!(d.verdict, Verdict::Pass, "page {i}'s call: {d:?}");
    }
}

/// The same API request with no pages around it, or one page calling it again and again, is still
/// the same request repeated.
#[test]
fn an_api_hammered_without_pages_or_polled_fast_by_one_page_is_still_flagged() {
    for pages in [0u64, 1] {
        let mut e = engine(&common::detector_enforced());
        let ip = "203.0.113.62";
        let mut cookie = String::new();
        if pages == 1 {
            let d = send(&mut e, &page_navigation("/products", ip), T0, 200);
            cookie = d.visitor.unwrap().split(';').next().unwrap().to_string();
        }
        let flagged = (0..10u64).any(|i| {
            let call = xhr("/api/cart-count", ip, "/products").header("cookie", &cookie);
            send(&mut e, &call, T0 + 1_000 + i * 3_000, 200).reasons.contains(&"fingerprint_repeat")
        });
        assert!(flagged, "{pages} page(s): ten calls in 30 s were never flagged");
    }
}

fn xhr(path: &str, ip: &str, page: &str) -> Req {
    Req::new("GET", path, ip)
        .browser()
        .header("accept", "application/json")
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .header("sec-fetch-dest", "empty")
        .header("referer", &format!("https://shop.test{page}"))
}
