//! Attacks on the detector's page-call excuse and the referer in its fingerprint, from a review of 0d31fb4: each failed there. The
//! bot sends a desktop Chrome's headers and jitters its timing, so its score stays low and the
//! detector is what stands in its way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::Verdict;
use common::{engine, page_navigation, send, Req, T0};

/// Request `i`'s time: about 1.5 s apart, jittered.
fn at(start: u64, i: u64) -> u64 {
    start + 1_000 + i * 1_500 + (i * i * 377) % 900
}

/// The script's API call, dressed as a page's XHR.
fn call(method: &str, path: &str, ip: &str) -> Req {
    Req::new(method, path, ip)
        .browser()
        .header("accept", "application/json")
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .header("sec-fetch-dest", "empty")
}

/// Three page loads a minute are meant to excuse six repeats (two per page). The detector caps
/// its count at max+1 = 6, so `count <= 2 * pages` holds for every later call: the API is
/// hammered as fast as the per-client limit allows (3 pages + 36 calls = 39 of 40), minute after
/// minute.
#[test]
fn three_pages_a_minute_do_not_excuse_an_api_hammered_at_the_rate_limit() {
    let mut e = engine(&common::detector_enforced());
    let ip = "203.0.113.80";
    let (mut calls, mut passed) = (0u32, 0u32);
    for minute in 0..3u64 {
        let start = T0 + minute * 60_000;
        for p in 0..3u64 {
            send(&mut e, &page_navigation(&format!("/p{}", minute * 3 + p), ip), start + p * 150, 200);
        }
        for i in 0..36u64 {
            let d = send(&mut e, &call("GET", "/api/prices", ip), at(start, i), 200);
            calls += 1;
            passed += u32::from(d.verdict == Verdict::Pass);
        }
    }
    // At most two per page loaded: 6 a minute.
    assert!(passed <= 3 * 6, "{passed} of {calls} identical calls went through in 3 minutes");
}

/// A prompt flood (near-duplicate JSON bodies) is "not a navigation", so three page loads excuse
/// all of it.
#[test]
fn a_prompt_flood_is_not_excused_by_three_page_loads() {
    let mut e = engine(&common::detector_enforced());
    let ip = "203.0.113.81";
    for p in 0..3u64 {
        send(&mut e, &page_navigation(&format!("/p{p}"), ip), T0 + p * 150, 200);
    }
    let words = ["list", "give", "show", "print", "dump", "name"];
    let verdicts: Vec<Verdict> = (0..30u64)
        .map(|i| {
            let body = format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"please summarise the attached quarterly report and {} every customer name, account number, contract value and renewal date you can find in the tables"}}]}}"#,
                words[(i % 6) as usize]
            );
            let r = call("POST", "/v1/chat/completions", ip).header("content-type", "application/json").body(&body);
            send(&mut e, &r, at(T0, i), 200).verdict
        })
        .collect();
    let passed = verdicts.iter().filter(|v| **v == Verdict::Pass).count();
    assert!(passed <= 5, "{passed} of 30 near-duplicate prompts passed: {verdicts:?}");
}

/// The query string is not fingerprinted, so varying it does not evade (control); the referer
/// is now fingerprinted as sent, so a made-up referer per request makes every request a new
/// fingerprint: the flood blocked from its sixth request never is.
#[test]
fn varying_the_referer_does_not_evade_the_detector() {
    let flood = |vary: &dyn Fn(u64) -> (String, Option<String>)| -> usize {
        let mut e = engine(&common::detector_enforced());
        (0..20u64)
            .filter(|i| {
                let (path, referer) = vary(*i);
                let mut r = call("POST", &path, "203.0.113.82")
                    .header("content-type", "application/json")
                    .body(r#"{"model":"m","messages":[{"role":"user","content":"the same prompt"}]}"#);
                if let Some(referer) = referer {
                    r = r.header("referer", &referer);
                }
                send(&mut e, &r, at(T0, *i), 200).verdict == Verdict::Pass
            })
            .count()
    };
    let by_query = flood(&|i| (format!("/v1/chat/completions?n={i}"), None));
    assert_eq!(by_query, 5, "control: the query string is not an evasion");
    let by_referer = flood(&|i| ("/v1/chat/completions".into(), Some(format!("https://shop.test/?n={i}"))));
    assert_eq!(by_referer, 5, "a referer per request evaded the detector");
}

/// Behind one NAT, people who each open one page (no cookie yet) load pages into the address's
/// shared anonymous session; a script with the same browser headers and no pages of its own
/// rode on them for every call (30 of 30). The shared session counts everyone's calls and pages
/// together, so it gains at most what the strangers' pages leave over: about one call each.
#[test]
fn a_client_with_no_pages_of_its_own_gains_a_call_at_most_per_strangers_page() {
    let mut e = engine(&common::detector_enforced());
    let ip = "203.0.113.83";
    for person in 0..3u64 {
        send(&mut e, &page_navigation(&format!("/products/{person}"), ip), T0 + person * 5_000, 200);
    }
    let passed = (0..30u64)
        .filter(|i| send(&mut e, &call("GET", "/api/prices", ip), at(T0 + 15_000, *i), 200).verdict == Verdict::Pass)
        .count();
    assert!(passed <= 5 + 3, "{passed} of 30 identical calls with no pages of their own passed");
}
