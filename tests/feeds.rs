//! Lists from feeds through the engine: a list fetched after start takes effect without a new
//! engine, in every profile it feeds; a crawler's fetched ranges verify it like inline ones; and
//! what a feed may not do (let a claimed crawler in from a whole provider, block everyone) is
//! refused before it reaches a list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::Verdict;
use botgate::policy::feeds::{self, Kind};
use common::*;
use serde_json::json;

const T0: u64 = 1_795_305_600_000;
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn fed_blocklist() -> String {
    with_resolver(json!({"threat_intel": {"blocklists": [
        {"name": "drop", "source": {"cluster": "feeds", "path": "/drop.txt", "refresh_seconds": 60}}
    ]}}))
}

fn feed_id(e: &botgate::engine::Engine) -> String {
    e.policy().feeds().next().expect("a feed").id()
}

fn set(kind: Kind, body: &str) -> feeds::List {
    let (shared, _) = feeds::check(kind, Some(200), body.as_bytes()).expect("a valid list");
    feeds::load(kind, &shared).expect("loads")
}

#[test]
fn a_fetched_blocklist_takes_effect_without_a_new_engine() {
    let mut e = engine(&fed_blocklist());
    let r = Req::new("GET", "/", "198.51.100.7").browser();
    assert_ne!(send(&mut e, &r, T0, 200).verdict, Verdict::Block, "nothing fetched yet");
    let id = feed_id(&e);
    e.load_feed(&id, &set(Kind::Blocklist, "198.51.100.0/24\n"));
    let d = send(&mut e, &r, T0 + 1_000, 200);
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
    assert!(d.reasons.contains(&"ip_in_threat_intel_blocklist"));
}

#[test]
fn a_newer_list_replaces_the_older_one_whole() {
    let mut e = engine(&fed_blocklist());
    let id = feed_id(&e);
    e.load_feed(&id, &set(Kind::Blocklist, "198.51.100.0/24\n"));
    e.load_feed(&id, &set(Kind::Blocklist, "203.0.113.0/24\n"));
    let old = Req::new("GET", "/", "198.51.100.7").browser();
    let new = Req::new("GET", "/", "203.0.113.9").browser();
    assert_ne!(send(&mut e, &old, T0, 200).verdict, Verdict::Block, "the old list is gone");
    assert_eq!(send(&mut e, &new, T0, 200).verdict, Verdict::Block);
}

#[test]
fn inline_cidrs_still_apply_next_to_a_feed() {
    let mut e = engine(&with_resolver(json!({"threat_intel": {"blocklists": [
        {"name": "drop", "cidrs": ["192.0.2.0/24"], "source": {"cluster": "feeds", "path": "/drop.txt"}}
    ]}})));
    let id = feed_id(&e);
    e.load_feed(&id, &set(Kind::Blocklist, "198.51.100.0/24\n"));
    for ip in ["192.0.2.1", "198.51.100.1"] {
        assert_eq!(send(&mut e, &Req::new("GET", "/", ip).browser(), T0, 200).verdict, Verdict::Block, "{ip}");
    }
}

#[test]
fn a_crawler_is_verified_by_its_fetched_ranges_without_a_lookup() {
    let p = with_resolver(json!({"crawlers": {"definitions": [
        {"name": "googlebot", "source": {"cluster": "feeds", "path": "/googlebot.json", "refresh_seconds": 3600}}
    ]}}));
    let mut e = engine(&p);
    let id = feed_id(&e);
    e.load_feed(&id, &set(Kind::Ranges, r#"{"prefixes": [{"ipv4Prefix": "66.249.64.0/27"}]}"#));
    let r = Req::new("GET", "/sitemap.xml", "66.249.64.5").header("user-agent", GOOGLEBOT).header("accept", "*/*");
    let mut asked = Vec::new();
    let d = decide_answering(&mut e, &r, T0, &botgate::engine::lookups::Answer::Failed, &mut asked);
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert_eq!(d.bot.as_deref().map(|b| b.verified), Some("published_ranges"));
    assert!(asked.is_empty(), "in the ranges: no reverse-DNS lookup");
}

#[test]
fn the_same_feed_reaches_every_profile_that_names_it() {
    let mut p: serde_json::Value = serde_json::from_str(&fed_blocklist()).unwrap();
    p["profiles"] = json!({"strict": {"mode": "enforce"}});
    let mut engines = botgate::engine::Engines::new(botgate::policy::parse(p.to_string().as_bytes()).policy.unwrap());
    let feeds = engines.feeds();
    assert_eq!(feeds.len(), 1, "one file, one fetch");
    engines.load_feed(&feeds[0].id(), &set(Kind::Blocklist, "198.51.100.0/24\n"));
    for i in 0..2 {
        let e = engines.get(i).unwrap();
        let d = send(e, &Req::new("GET", "/", "198.51.100.7").browser(), T0, 200);
        assert_eq!(d.verdict, Verdict::Block, "engine {i}");
    }
}

#[test]
fn a_feed_without_cluster_or_path_is_a_policy_error_with_its_path() {
    let p =
        with_resolver(json!({"threat_intel": {"blocklists": [{"name": "drop", "source": {"refresh_seconds": 60}}]}}));
    let parsed = botgate::policy::parse(p.as_bytes());
    let errors: Vec<String> = parsed.errors().map(|d| d.to_string()).collect();
    assert!(errors.iter().any(|e| e.contains("$.threat_intel.blocklists[0].source.cluster")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("$.threat_intel.blocklists[0].source.path")), "{errors:?}");
}

#[test]
fn a_string_source_stays_a_note_and_fetches_nothing() {
    let e = engine(&with_resolver(json!({"threat_intel": {"blocklists": [
        {"name": "drop", "source": "https://www.spamhaus.org/drop/drop.txt", "cidrs": ["192.0.2.0/24"]}
    ]}})));
    assert_eq!(e.policy().feeds().count(), 0);
}

fn with_robots(disallowed: &str) -> String {
    with_resolver(json!({"crawlers": {
        "definitions": [{"name": "googlebot", "ranges": ["66.249.64.0/19"]}],
        "robots_txt": {"cluster": "upstream", "refresh_seconds": 600, "disallowed": disallowed}
    }}))
}

fn googlebot(path: &str) -> Req {
    Req::new("GET", path, "66.249.66.1").header("user-agent", GOOGLEBOT).header("accept", "*/*")
}

fn robots(status: u32, body: &str) -> feeds::List {
    let (shared, _) = feeds::check(Kind::Robots, Some(status), body.as_bytes()).expect("an answer to keep");
    feeds::load(Kind::Robots, &shared).expect("loads")
}

fn load_robots(e: &mut botgate::engine::Engine, list: feeds::List) {
    let id = e.policy().feeds().find(|f| f.kind == Kind::Robots).expect("robots feed").id();
    e.load_feed(&id, &list);
}

const ROBOTS: &str =
    "User-agent: *\nDisallow: /private/\n\nUser-agent: Googlebot\nDisallow: /search\nAllow: /search/about\n";

#[test]
fn a_verified_crawler_is_refused_what_robots_txt_disallows_it() {
    let mut e = engine(&with_robots("refuse"));
    assert_eq!(send(&mut e, &googlebot("/search?q=x"), T0, 200).verdict, Verdict::Allow, "no file yet");
    load_robots(&mut e, robots(200, ROBOTS));
    let d = send(&mut e, &googlebot("/search?q=x"), T0, 200);
    assert_eq!((d.verdict, d.reasons.clone()), (Verdict::Block, vec!["robots_disallowed"]), "{d:?}");
    assert_eq!(send(&mut e, &googlebot("/search/about"), T0, 200).verdict, Verdict::Allow, "the longer allow wins");
    assert_eq!(
        send(&mut e, &googlebot("/private/x"), T0, 200).verdict,
        Verdict::Allow,
        "Googlebot's own group replaces the * group"
    );
}

#[test]
fn counting_lets_the_disallowed_fetch_through_with_the_reason() {
    let mut e = engine(&with_robots("count"));
    load_robots(&mut e, robots(200, ROBOTS));
    let d = send(&mut e, &googlebot("/search?q=x"), T0, 200);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.reasons, vec!["verified_search_crawler", "robots_disallowed"]);
}

#[test]
fn the_crawl_delay_bounds_a_verified_crawlers_rate() {
    let mut e = engine(&with_robots("refuse"));
    load_robots(&mut e, robots(200, "User-agent: googlebot\nCrawl-delay: 10\n"));
    // One fetch per 10 s, with half again for jitter: 9 in a minute.
    let verdicts: Vec<Verdict> =
        (0..10).map(|i| send(&mut e, &googlebot(&format!("/p/{i}")), T0 + i, 200).verdict).collect();
    assert!(verdicts[..9].iter().all(|v| *v == Verdict::Allow), "{verdicts:?}");
    let d = send(&mut e, &googlebot("/p/x"), T0 + 20, 200);
    assert_eq!(d.verdict, Verdict::RateLimited, "{d:?}");
    assert!(d.reasons.contains(&"crawler_rate_exceeded"));
}

#[test]
fn a_missing_robots_txt_allows_everything_and_a_failing_origin_keeps_the_last_file() {
    let mut e = engine(&with_robots("refuse"));
    load_robots(&mut e, robots(404, "<html>not found</html>"));
    assert_eq!(send(&mut e, &googlebot("/search"), T0, 200).verdict, Verdict::Allow);
    for status in [Some(500), Some(503), Some(429), None] {
        assert!(
            matches!(
                feeds::check(Kind::Robots, status, b"User-agent: *\nDisallow: /\n"),
                Err(feeds::Problem::Failed(_))
            ),
            "{status:?} changes nothing"
        );
    }
}

#[test]
fn robots_txt_does_not_bind_an_unverified_claim_or_a_person() {
    let mut e = engine(&with_robots("refuse"));
    load_robots(&mut e, robots(200, "User-agent: *\nDisallow: /\n"));
    let person = Req::new("GET", "/search", "203.0.113.20").browser();
    assert_ne!(send(&mut e, &person, T0, 200).reasons, vec!["robots_disallowed"]);
    let elsewhere = Req::new("GET", "/search", "203.0.113.21").header("user-agent", GOOGLEBOT);
    let d = send(&mut e, &elsewhere, T0, 200);
    assert!(!d.reasons.contains(&"robots_disallowed"), "{d:?}");
}
