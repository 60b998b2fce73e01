//! Attacks on feeds and robots.txt from the review of issue 13 (each failed before its fix): a
//! feed that covers the internet in pieces, a robots.txt cut mid-rule, disallowed paths spelt
//! another way, a JSON body that balloons in memory, a redirect read as "no file", and a
//! crawler's own robots group ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(unsafe_code)] // the counting allocator only

mod common;

use botgate::decision::record::Verdict;
use botgate::formats::robots::MAX_BODY as ROBOTS_MAX;
use botgate::policy::feeds::{self, Kind};
use common::*;
use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

// --- F1: a blocklist feed can block every address with two /1s per family ---------------------
#[test]
fn a_blocklist_feed_covering_everything_in_halves_is_refused() {
    let body = "0.0.0.0/1\n128.0.0.0/1\n::/1\n8000::/1\n";
    let r = feeds::check(Kind::Blocklist, Some(200), body.as_bytes());
    // Show the effect: every browser is blocked.
    if let Ok((shared, _)) = &r {
        let p = with_resolver(json!({"threat_intel": {"blocklists": [
            {"name": "drop", "source": {"cluster": "feeds", "path": "/drop.txt"}}]}}));
        let mut e = engine(&p);
        let id = e.policy().feeds().next().unwrap().id();
        e.load_feed(&id, &feeds::load(Kind::Blocklist, shared).unwrap());
        let d = send(&mut e, &Req::new("GET", "/", "93.184.216.34").browser(), T0, 200);
        assert_ne!(d.verdict, Verdict::Block, "a compromised feed blocked an arbitrary visitor: {:?}", d.reasons);
    }
    assert!(r.is_err(), "0/1+128/1 is a /0 in two lines");
}

// --- F2: a ranges feed may cover the whole IPv4 space in /16s ------------------------------------
#[test]
fn a_crawler_ranges_feed_covering_the_internet_is_refused() {
    let mut body = String::new();
    for a in 0..256 {
        for b in 0..256 {
            body.push_str(&format!("{a}.{b}.0.0/16\n"));
        }
    }
    let r = feeds::check(Kind::Ranges, Some(200), body.as_bytes());
    if let Ok((shared, _)) = &r {
        let p = with_resolver(json!({"crawlers": {"definitions": [
            {"name": "googlebot", "source": {"cluster": "feeds", "path": "/googlebot.json"}}]}}));
        let mut e = engine(&p);
        let id = e.policy().feeds().next().unwrap().id();
        e.load_feed(&id, &feeds::load(Kind::Ranges, shared).unwrap());
        let req = Req::new("GET", "/", "203.0.113.9").header("user-agent", GOOGLEBOT).header("accept", "*/*");
        let d = send(&mut e, &req, T0, 200);
        assert_ne!(d.verdict, Verdict::Allow, "anyone with Googlebot's UA is a verified crawler: {d:?}");
    }
    assert!(r.is_err(), "65,536 /16s are accepted as Googlebot's ranges");
}

// --- F3: robots.txt over 500 KiB: the feed cuts mid-line, the cut line becomes "Disallow: /" ----
#[test]
fn a_line_straddling_500_kib_is_dropped_not_cut_through_the_feed() {
    let head = "User-agent: *\n";
    let cut = "Disallow: /"; // what is left of the straddling line at the cap
    let pad = ROBOTS_MAX - head.len() - cut.len();
    let mut text = format!("{head}#{}\n", "x".repeat(pad - 2));
    text.push_str("Disallow: /search/internal\n");
    text.push_str(&"# more\n".repeat(1000));
    assert!(text.len() > ROBOTS_MAX);
    // Parsed directly, the straddling line is dropped and "/" stays allowed.
    assert!(botgate::formats::robots::Fetched::from_reply(Some(200), text.as_bytes()).allows("googlebot", "/"));
    // Through the feed path, as the shell runs it:
    let (shared, _) = feeds::check(Kind::Robots, Some(200), text.as_bytes()).unwrap();
    let list = feeds::load(Kind::Robots, &shared).unwrap();
    let mut e = engine(&with_resolver(json!({"crawlers": {
        "definitions": [{"name": "googlebot", "ranges": ["66.249.64.0/19"]}],
        "robots_txt": {"cluster": "upstream"}}})));
    let id = e.policy().feeds().find(|f| f.kind == Kind::Robots).unwrap().id();
    e.load_feed(&id, &list);
    let g = Req::new("GET", "/", "66.249.66.1").header("user-agent", GOOGLEBOT).header("accept", "*/*");
    let d = send(&mut e, &g, T0, 200);
    assert_eq!(d.verdict, Verdict::Allow, "Googlebot refused from the whole site: {:?}", d.reasons);
}

// --- F4: robots matching ignores the engine's own path normalisation ------------------------------
#[test]
fn robots_disallow_cannot_be_escaped_by_spellings_the_origin_routes_the_same() {
    let mut e = engine(&with_resolver(json!({"crawlers": {
        "definitions": [{"name": "googlebot", "ranges": ["66.249.64.0/19"]}],
        "robots_txt": {"cluster": "upstream"}}})));
    let (shared, _) = feeds::check(Kind::Robots, Some(200), b"User-agent: *\nDisallow: /private/\n").unwrap();
    let id = e.policy().feeds().find(|f| f.kind == Kind::Robots).unwrap().id();
    e.load_feed(&id, &feeds::load(Kind::Robots, &shared).unwrap());
    let mut escaped = Vec::new();
    for path in ["/private/x", "//private/x", "/./private/x", "/a/../private/x", "/private;v=1/x"] {
        let g = Req::new("GET", path, "66.249.66.1").header("user-agent", GOOGLEBOT).header("accept", "*/*");
        if send(&mut e, &g, T0, 200).verdict != Verdict::Block {
            escaped.push(path);
        }
    }
    assert!(escaped.is_empty(), "Disallow: /private/ escaped by {escaped:?}");
}

// --- F5: a JSON feed body amplifies ~16-30x in memory before the entry cap is checked -------------
struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let n = NOW.fetch_add(l.size(), SeqCst) + l.size();
        PEAK.fetch_max(n, SeqCst);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), SeqCst);
        System.dealloc(p, l)
    }
}
#[global_allocator]
static A: Counting = Counting;

#[test]
fn an_8_mib_json_feed_is_refused_without_a_hundred_mib_of_heap() {
    let mut body = String::from("{\"prefixes\":[0");
    while body.len() < feeds::MAX_BODY - 4 {
        body.push_str(",0");
    }
    body.push_str("]}");
    let before = NOW.load(SeqCst);
    PEAK.store(before, SeqCst);
    assert!(feeds::check(Kind::Ranges, Some(200), body.as_bytes()).is_err());
    let extra = PEAK.load(SeqCst) - before;
    assert!(extra < 32 << 20, "refusing an 8 MiB body took {} MiB of heap", extra >> 20);
}

// --- F6: a redirect (or any 4xx) from the origin replaces a good robots.txt with "allow all" -----
#[test]
fn a_redirect_keeps_the_last_robots_txt() {
    let r = feeds::check(Kind::Robots, Some(301), b"");
    assert!(matches!(r, Err(feeds::Problem::Failed(_))), "a 301 is shared as a file: {r:?}");
}

// --- F7: robots groups are looked up by botgate's crawler name, not the crawler's own token -------
#[test]
fn googlebot_image_obeys_its_own_group() {
    let mut e = engine(&with_resolver(json!({"crawlers": {
        "definitions": [{"name": "googlebot", "ranges": ["66.249.64.0/19"]}],
        "robots_txt": {"cluster": "upstream"}}})));
    let file = b"User-agent: Googlebot-Image\nDisallow: /\n\nUser-agent: *\nAllow: /\n";
    let (shared, _) = feeds::check(Kind::Robots, Some(200), file).unwrap();
    let id = e.policy().feeds().find(|f| f.kind == Kind::Robots).unwrap().id();
    e.load_feed(&id, &feeds::load(Kind::Robots, &shared).unwrap());
    let g = Req::new("GET", "/img/a.png", "66.249.66.1")
        .header("user-agent", "Googlebot-Image/1.0")
        .header("accept", "*/*");
    let d = send(&mut e, &g, T0, 200);
    assert_eq!(d.verdict, Verdict::Block, "Googlebot-Image fetched what its group disallows: {d:?}");
}
