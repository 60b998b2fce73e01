//! Attacks on crawler claims (review of the FCrDNS / DNS-over-HTTPS change). Each test states
//! what should hold; each fails against the code as reviewed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::Verdict;
use botgate::engine::lookups::Answer;
use common::*;
use serde_json::json;

const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn crawler(ua: &str, ip: &str, method: &str, path: &str) -> Req {
    Req::new(method, path, ip).header("user-agent", ua).header("accept", "*/*").header("accept-encoding", "gzip")
}

/// HIGH. Any Google Cloud customer's VM has a PTR `a.b.c.d.bc.googleusercontent.com` that
/// forward-confirms (and `*.gae.googleusercontent.com` fetches are triggered by GCP customers'
/// apps, per Google's own documentation). `googleusercontent.com` is one of googlebot's suffixes,
/// so a rented VM that says "Googlebot" is a verified Googlebot: allowed unscored on every path,
/// /login included, past the detector, challenges and the per-IP limits.
#[test]
fn a_google_cloud_vm_is_not_a_verified_googlebot() {
    let mut e = engine(&with_resolver(json!({})));
    for (ip, ptr) in [
        ("34.118.10.20", "20.10.118.34.bc.googleusercontent.com"),
        ("35.187.132.7", "7.132.187.35.bc.googleusercontent.com"),
        ("34.96.44.5", "34-96-44-5.gae.googleusercontent.com"),
    ] {
        for (method, path) in [("GET", "/products/1"), ("POST", "/login")] {
            let mut r = crawler(GOOGLEBOT, ip, method, path);
            if method == "POST" {
                r = r.header("content-type", "application/x-www-form-urlencoded").body("u=victim&p=guess");
            }
            let d = decide_answering(&mut e, &r, T0, &Answer::Value(ptr.into()), &mut Vec::new());
            assert_ne!(d.verdict, Verdict::Allow, "{ip} ({ptr}) {method} {path}: {d:?}");
            assert!(!d.reasons.contains(&"verified_search_crawler"), "{ip}: {d:?}");
        }
    }
}

/// MEDIUM. Lookups are made before threat intel and the rate limits, and a negative answer is
/// remembered per address (only failures are remembered per client prefix). One IPv6 host that
/// owns a /64 can make every request a fresh DNS-over-HTTPS verification (two queries each) by
/// using a new address each time; the requests are blocked as impersonations before the per-IP
/// and global limits ever count them. It costs resolver load, the callout budget (256 per
/// worker, shared with genuine crawlers) and the caches (next test).
#[test]
fn impersonation_lookups_from_one_ipv6_prefix_are_bounded() {
    let mut e = engine(&with_resolver(json!({})));
    let mut asked = Vec::new();
    for i in 0..300u64 {
        let ip = format!("2001:db8:77:1::{:x}", i + 1);
        let d =
            decide_answering(&mut e, &crawler(GOOGLEBOT, &ip, "GET", "/"), T0 + i * 50, &Answer::NotFound, &mut asked);
        assert_eq!(d.verdict, Verdict::Block);
    }
    // The example's ip_rate_limit is 40 a minute per /64: the lookups should be bounded like it.
    assert!(asked.len() <= 40, "{} lookups for one /64 within 15 s", asked.len());
}

/// MEDIUM. The same flood evicts the verified answers of genuine crawlers from the worker's
/// answer cache (10,000 entries, LRU): the next Googlebot request needs a new lookup, which the
/// shell answers as failed when the flood also holds the callout budget ("busy"): Googlebot is
/// then unverified (scored as automation) and its address is marked failing for 30 s.
#[test]
fn an_impersonation_flood_does_not_evict_a_verified_crawler() {
    let mut e = engine(&with_resolver(json!({})));
    let ok = Answer::Value("crawl-66-249-66-1.googlebot.com".into());
    let mut asked = Vec::new();
    let d = decide_answering(&mut e, &crawler(GOOGLEBOT, "66.249.66.1", "GET", "/sitemap.xml"), T0, &ok, &mut asked);
    assert_eq!(d.verdict, Verdict::Allow);
    for i in 0..10_050u64 {
        let ip = format!("2001:db8:77:2::{:x}", i + 1);
        decide_answering(
            &mut e,
            &crawler(GOOGLEBOT, &ip, "GET", "/"),
            T0 + 1_000 + i,
            &Answer::NotFound,
            &mut Vec::new(),
        );
    }
    // The budget is held by the flood: a new lookup would come back failed.
    let mut again = Vec::new();
    let d = decide_answering(
        &mut e,
        &crawler(GOOGLEBOT, "66.249.66.1", "GET", "/p/2"),
        T0 + 20_000,
        &Answer::Failed,
        &mut again,
    );
    assert!(again.is_empty(), "Googlebot's verified answer was flushed by impersonators: asked {again:?}");
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
}

/// LOW (defence in depth; HIGH together with the googleusercontent.com suffix). A verified claim
/// is allowed before threat intel runs: an address the operator's feed lists (198.18.0.0/15 in
/// the example) is waved through, unscored, as soon as its reverse DNS confirms.
#[test]
fn a_threat_listed_address_is_not_allowed_by_a_crawler_claim() {
    let mut e = engine(&with_resolver(json!({})));
    let ok = Answer::Value("crawl-198-18-0-9.googlebot.com".into());
    let d = decide_answering(&mut e, &crawler(GOOGLEBOT, "198.18.0.9", "GET", "/products/1"), T0, &ok, &mut Vec::new());
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
}

/// MEDIUM (with ranges configured for Meta, as the module asks for IP-list-only operators).
/// Apple's iMessage link previews are fetched by the user's own device with a Safari user agent
/// that ends "facebookexternalhit/1.1 Facebot Twitterbot/1.0". With Meta's ranges configured,
/// every person who pastes a link into iMessage is blocked as a Meta impersonator (score 1.0,
/// `crawler_impersonation`), from their home address.
#[test]
fn an_imessage_link_preview_is_not_blocked_as_a_meta_impersonator() {
    let defs = json!({"crawlers": {"definitions": [
        {"name": "facebookexternalhit", "ranges": ["31.13.24.0/21", "66.220.144.0/20", "69.171.224.0/19"]}
    ]}});
    let mut e = engine(&with_resolver(defs));
    let imessage = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) \
                    Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0";
    let d = decide_answering(
        &mut e,
        &crawler(imessage, "81.2.69.160", "GET", "/blog/post"),
        T0,
        &Answer::Failed,
        &mut Vec::new(),
    );
    assert!(!d.reasons.contains(&"crawler_impersonation"), "{d:?}");
    assert_ne!(d.verdict, Verdict::Block, "{d:?}");
}
