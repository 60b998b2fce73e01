//! Known automation is recognised, browsers are not: every crawler and tool user agent that the
//! crawler-user-agents list ships, and hundreds of real browsers of every family, each sent
//! through the engine with the example policy (fixtures written by tools/update_ua_patterns.py).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::Decision;
use botgate::engine::Engine;
use common::{engine, send, Req};

/// 2026-11-22T00:00:00Z, in ms.
const T0: u64 = 1_795_305_600_000;

const CRAWLERS: &str = include_str!("fixtures/crawler_user_agents.txt");
const BROWSERS: &str = include_str!("fixtures/browser_user_agents.txt");

/// Upstream entries whose instances are real people's browsers, so they stay at 0 (the
/// generator excludes their patterns for that reason).
const NOT_AUTOMATION: &[(&str, &str)] =
    &[("AP3A\\.240617\\.008", "an Instagram in-app browser on Android 15, listed for its build id")];

/// The user-agent signals (one at most per request).
const UA_SIGNALS: &[&str] = &["missing_user_agent", "http_library_ua", "bot_ua", "non_browser_navigation"];

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Sends each user agent once, from its own address, one second apart, with everything else a
/// browser sends: as a navigation (`accept: text/html`) or as a sub-resource (`accept: */*`).
struct Sender {
    engine: Engine,
    n: u64,
}

impl Sender {
    fn new() -> Sender {
        Sender { engine: engine(&common::example_policy(&[])), n: 0 }
    }

    fn send(&mut self, ua: &str, navigation: bool) -> Decision {
        self.n += 1;
        let ip = format!("11.{}.{}.{}", self.n >> 16 & 255, self.n >> 8 & 255, self.n & 255);
        let accept = if navigation { "text/html,application/xhtml+xml,*/*;q=0.8" } else { "*/*" };
        let path = if navigation { "/products/1" } else { "/static/app.js" };
        let r = Req::new("GET", path, &ip)
            .header("user-agent", ua)
            .header("accept", accept)
            .header("accept-language", "en-GB,en;q=0.9");
        send(&mut self.engine, &r, T0 + self.n * 1_000, 200)
    }
}

fn ua_signal(d: &Decision) -> Option<&'static str> {
    d.reasons.iter().copied().find(|r| UA_SIGNALS.contains(r))
}

#[test]
fn every_listed_crawler_and_tool_scores_above_zero_on_its_user_agent() {
    let mut s = Sender::new();
    let (mut total, mut named, mut missed) = (0, 0, Vec::new());
    for line in lines(CRAWLERS) {
        let (pattern, ua) = line.split_once('\t').unwrap();
        total += 1;
        let expected_zero = NOT_AUTOMATION.iter().any(|(p, _)| *p == pattern);
        // From the user agent alone, whatever the request is.
        let asset = s.send(ua, false);
        named += usize::from(matches!(ua_signal(&asset), Some("bot_ua" | "http_library_ua")));
        let page = s.send(ua, true);
        if (page.score > 0.0) == expected_zero {
            missed.push(format!("{pattern}: {ua} -> {} {:?}", page.score, page.reasons));
        }
    }
    eprintln!("{named} of {total} crawler user agents named by bot_ua or http_library_ua");
    assert!(missed.is_empty(), "{} unexpected:\n{}", missed.len(), missed.join("\n"));
    assert!(total > 2000 && named >= total - NOT_AUTOMATION.len(), "{named}/{total}");
}

#[test]
fn real_browsers_of_every_family_score_zero_on_their_user_agent() {
    let mut s = Sender::new();
    let mut flagged = Vec::new();
    let mut total = 0;
    for ua in lines(BROWSERS) {
        total += 1;
        for navigation in [true, false] {
            let d = s.send(ua, navigation);
            if d.score != 0.0 {
                flagged.push(format!("{ua} (navigation {navigation}) -> {} {:?}", d.score, d.reasons));
            }
        }
    }
    assert!(total > 400, "{total}");
    assert!(flagged.is_empty(), "{} of {total}:\n{}", flagged.len(), flagged.join("\n"));
}

#[test]
fn an_unknown_client_asking_for_pages_is_named_and_its_other_requests_are_not() {
    let mut s = Sender::new();
    for ua in ["PriceWatcher/0.9", "Mozilla/5.0", "Mozilla/5.0 (compatible; Acme Fetch 2.1)", "Dalvik/2.1.0 (Linux; U)"]
    {
        let page = s.send(ua, true);
        assert_eq!(ua_signal(&page), Some("non_browser_navigation"), "{ua}: {:?}", page.reasons);
        assert!((0.45..0.6).contains(&page.score), "{ua}: {}", page.score);
        assert_eq!(s.send(ua, false).score, 0.0, "{ua}");
    }
}
