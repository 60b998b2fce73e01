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
