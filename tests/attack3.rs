//! Attacks on issue 12's first defaults (a review's, each failing before its fix): static assets
//! and the limits, the detector's path, a new signed-in session's inheritance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use botgate::decision::record::Verdict;
use common::{engine, keyed_example, page_navigation, send, Req, T0};

// ---- (1) static assets and the rate limits ----

/// One client floods uncounted static assets: the per-client limit no longer stops it, and the
/// global limit (which counts assets) runs out for everyone else.
#[test]
fn r1_one_client_flooding_assets_spends_everyones_global_budget() {
    let mut e = engine(&keyed_example());
    for i in 0..520u64 {
        let r = Req::new("GET", &format!("/static/app.js?v={i}"), "203.0.113.80").browser();
        send(&mut e, &r, T0 + i * 50, 200);
    }
    let person = send(&mut e, &page_navigation("/products/1", "198.51.100.9"), T0 + 30_000, 200);
    assert_ne!(person.verdict, Verdict::RateLimited, "one asset flooder refused a person: {person:?}");
}

/// A page the upstream serves at an asset-looking path (PHP PATH_INFO `/product.php/x.css`,
/// Laravel+MySQL `/products/7.css`, tile/OG-image renderers): a scraper announcing a document
/// navigation is never per-client limited.
#[test]
fn r1_a_document_navigation_to_an_asset_looking_path_is_not_limited() {
    let mut e = engine(&keyed_example());
    let limited = (0..60u64).any(|i| {
        let r = page_navigation(&format!("/product.php/x.css?id={i}"), "203.0.113.81");
        send(&mut e, &r, T0 + i * 500, 200).verdict == Verdict::RateLimited
    });
    assert!(limited, "60 document navigations in 30 s were never limited");
}

// ---- (2) the detector's fingerprint and the path as sent ----

fn prompt(path: &str) -> Req {
    // A browser-shaped client of a chat page (cookies and timing aside, nothing flags it): only
    // the detector stands between it and the model.
    Req::new("POST", path, "203.0.113.82")
        .browser()
        .header("accept", "application/json")
        .header("sec-fetch-mode", "cors")
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/json")
        .body(r#"{"model":"m","messages":[{"role":"user","content":"the same prompt"}]}"#)
}

/// Irregular moments within a minute.
fn at(i: u64) -> u64 {
    T0 + i * 2_000 + (i * i * 577) % 1_500
}

fn repeats(e: &mut botgate::engine::Engine, paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let d = send(e, &prompt(p), at(i as u64), 200);
            format!("{:?} n={} {:?}", d.verdict, d.fingerprint_count, d.reasons)
        })
        .collect()
}

/// Control: the same prompt to the same spelling, twelve times, is flagged from the sixth.
#[test]
fn r2_control_one_spelling_is_flagged() {
    let mut e = engine(&common::detector_enforced());
    let v = repeats(&mut e, &vec!["/v1/chat/completions".to_string(); 12]);
    assert!(v.iter().filter(|s| s.contains("fingerprint_repeat")).count() >= 6, "{v:#?}");
}

/// Path parameters (Tomcat, Jetty, Spring drop them; botgate's own normaliser drops them, so
/// `applies_to` still matches) make every repeat a new fingerprint.
#[test]
fn r2_path_parameters_split_one_prompt_flood_into_many_fingerprints() {
    let mut e = engine(&common::detector_enforced());
    let paths: Vec<String> = (0..12).map(|i| format!("/v1/chat/completions;n={i}")).collect();
    let v = repeats(&mut e, &paths);
    assert!(v.iter().filter(|s| s.contains("fingerprint_repeat")).count() >= 6, "{v:#?}");
}

/// Spellings botgate itself calls one path (`request::path`), as an Envoy without
/// `normalize_path`/`merge_slashes` forwards them, plus case on a case-insensitive upstream.
#[test]
fn r2_spellings_of_one_path_are_one_fingerprint() {
    let policy = common::detector_enforced()
        .replace(r#""mode": "enforce","#, r#""mode": "enforce", "paths": {"case_insensitive": true},"#);
    let mut e = engine(&policy);
    let paths: Vec<String> = [
        "/v1/chat/completions",
        "//v1/chat/completions",
        "/v1/./chat/completions",
        "/v1/chat/%63ompletions",
        "/v1/chat/completions;a",
        "/v1/x/../chat/completions",
        "/v1//chat/completions",
        "/%761/chat/completions",
        "/V1/chat/completions",
        "/v1/Chat/completions",
        "/v1/chat/Completions",
        "/V1/CHAT/COMPLETIONS",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let v = repeats(&mut e, &paths);
    assert!(v.iter().filter(|s| s.contains("fingerprint_repeat")).count() >= 6, "{v:#?}");
}

// ---- (3) a new signed-in session inherits the anonymous one ----

/// The commit's own attack, with the request claiming to be a cross-site sub-resource: the
/// split session carries the (fresh) named session's penalties, not the anonymous one's.
#[test]
fn r3_a_made_up_cookie_on_a_cross_site_request_sheds_a_failed_challenge() {
    let mut e = engine(&keyed_example());
    let ip = "203.0.113.84";
    let first = send(&mut e, &page_navigation("/products/1", ip), T0, 200);
    e.fail_challenge(first.session.unwrap());
    let scrape = |i: u64| {
        Req::new("GET", &format!("/products/{i}"), ip)
            .browser()
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "cors")
            .header("sec-fetch-dest", "empty")
            .header("cookie", &format!("session_id=made-up-{i}"))
    };
    let d = send(&mut e, &scrape(2), T0 + 2_000, 200);
    assert_ne!(d.verdict, Verdict::Pass, "made-up cookie + cross-site shed the failure: {d:?}");
}

/// Shared address (CGNAT, office), common browser and language, no visitor cookie (signed-in
/// sessions are never handed one). Someone there fails a challenge on purpose; Alice, signed in
/// and clean, has her session cookie rotated by the upstream (login, privilege change, periodic
/// rotation): her new session inherits the stranger's failure and is blocked for its lifetime.
#[test]
fn r3_a_stranger_on_a_shared_address_gets_a_signed_in_users_rotated_session_blocked() {
    let mut e = engine(&keyed_example());
    let ip = "100.64.7.7";
    let alice = |path: &str, sid: &str| {
        page_navigation(path, ip).header("sec-fetch-site", "same-origin").header("cookie", &format!("session_id={sid}"))
    };
    let d = send(&mut e, &alice("/products/1", "alice-old"), T0, 200);
    assert_eq!(d.verdict, Verdict::Pass, "{d:?}");
    let mallory = send(&mut e, &page_navigation("/products/9", ip), T0 + 5_000, 200);
    e.fail_challenge(mallory.session.unwrap());
    let d = send(&mut e, &alice("/account", "alice-rotated"), T0 + 20_000, 200);
    assert_ne!(d.verdict, Verdict::Block, "Alice blocked for a stranger's failure: {d:?}");
}

/// A trailing slash (Express non-strict routing, Spring 5
/// trailing-slash match) still splits a flood in two.
#[test]
fn r2_a_trailing_slash_doubles_the_detector_budget() {
    let mut e = engine(&common::detector_enforced());
    let paths: Vec<String> = (0..10)
        .map(|i| if i % 2 == 0 { "/v1/chat/completions" } else { "/v1/chat/completions/" }.to_string())
        .collect();
    let v = repeats(&mut e, &paths);
    assert!(v.iter().filter(|s| s.contains("fingerprint_repeat")).count() >= 5, "{v:#?}");
}

// ---- what held ----

fn failed_anon(e: &mut botgate::engine::Engine, ip: &str) {
    let first = send(e, &page_navigation("/products/1", ip), T0, 200);
    e.fail_challenge(first.session.unwrap());
}

#[test]
fn held_session_header_repeated_cookie_and_spellings_do_not_shed() {
    let ip = "203.0.113.90";
    let variants: Vec<Req> = vec![
        page_navigation("/products/2", ip).header("x-session-id", "made-up-h"),
        page_navigation("/products/2", ip).header("cookie", "session_id=\"made-up-q\""),
        page_navigation("/products/2", ip).header("cookie", "session_id=%6d%61de-up-p"),
        page_navigation("/products/2", ip).header("cookie", "session_id=a; session_id=b"),
        page_navigation("/products/2", ip).header("cookie", "session_id=c").header("x-session-id", "d"),
        page_navigation("/products/2", ip).header("sec-fetch-site", "cross-site").header("cookie", "session_id=e"),
    ];
    for (i, r) in variants.iter().enumerate() {
        let mut e = engine(&keyed_example());
        failed_anon(&mut e, ip);
        let d = send(&mut e, r, T0 + 2_000, 200);
        assert_ne!(d.verdict, Verdict::Pass, "variant {i} shed the failure: {d:?}");
    }
}
