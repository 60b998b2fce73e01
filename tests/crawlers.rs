//! Crawler claims through the engine, with the reverse-DNS lookup answered the way the shell's
//! DNS-over-HTTPS callout answers it: a genuine crawler is allowed without scoring, an
//! impersonator is blocked, a lookup that fails leaves the claim unverified (scored, never
//! allowed), answers are cached, and the policy chooses by crawler and by purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::Verdict;
use botgate::engine::lookups::{Answer, Lookup};
use common::*;
use serde_json::{json, Value};

const T0: u64 = 1_795_305_600_000;
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const GPTBOT: &str =
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)";

fn crawler(ua: &str, ip: &str, path: &str) -> Req {
    Req::new("GET", path, ip).header("user-agent", ua).header("accept", "*/*").header("accept-encoding", "gzip")
}

#[test]
fn a_googlebot_that_forward_confirms_is_allowed_without_scoring() {
    let mut e = engine(&with_resolver(json!({})));
    let mut asked = Vec::new();
    let ok = Answer::Value("crawl-66-249-66-1.googlebot.com".into());
    let d = decide_answering(&mut e, &crawler(GOOGLEBOT, "66.249.66.1", "/sitemap.xml"), T0, &ok, &mut asked);
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert_eq!(d.reasons, vec!["verified_search_crawler"]);
    assert_eq!(asked, vec![Lookup { service: "fcrdns", key: "66.249.66.1".into() }]);
    let bot = d.bot.as_deref().unwrap();
    assert_eq!((bot.name.as_str(), bot.purpose, bot.verified), ("googlebot", "search", "fcrdns"));
    let evidence: Value = serde_json::from_str(&d.evidence("r1")).unwrap();
    assert_eq!(evidence["bot"]["operator"], "Google");
    let headers: Vec<(String, String)> =
        d.upstream_header_buf().pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert!(headers
        .contains(&("x-botgate-bot".into(), "googlebot;operator=\"Google\";purpose=search;verified=fcrdns".into())));
}

#[test]
fn the_answer_is_cached_so_a_crawl_costs_one_lookup() {
    let mut e = engine(&with_resolver(json!({})));
    let mut asked = Vec::new();
    let ok = Answer::Value("crawl-66-249-66-1.googlebot.com".into());
    for i in 0..20 {
        let d = decide_answering(
            &mut e,
            &crawler(GOOGLEBOT, "66.249.66.1", &format!("/p/{i}")),
            T0 + i * 2_000,
            &ok,
            &mut asked,
        );
        assert_eq!(d.verdict, Verdict::Allow);
    }
    assert_eq!(asked.len(), 1);
}

#[test]
fn a_claim_the_reverse_dns_refutes_is_blocked_as_impersonation() {
    // No name, another domain, and a Compute Engine VM's own name under googleusercontent.com
    // (which forward-confirms for any Google Cloud customer).
    let vm = Answer::Value("9.113.0.203.bc.googleusercontent.com".into());
    for answer in [Answer::NotFound, Answer::Value("crawl.evilgooglebot.com".into()), vm] {
        let mut e = engine(&with_resolver(json!({})));
        let d =
            decide_answering(&mut e, &crawler(GOOGLEBOT, "203.0.113.9", "/products/1"), T0, &answer, &mut Vec::new());
        assert_eq!(d.verdict, Verdict::Block, "{answer:?}: {d:?}");
        assert_eq!(d.reasons, vec!["crawler_impersonation"]);
        assert_eq!(d.bot.as_deref().unwrap().verified, "none");
        let reply = d.reply("r1").unwrap();
        assert_eq!(reply.status, 403);
        assert!(reply.body.contains("crawler_impersonation"), "{}", reply.body);
        assert_eq!(e.tally.named("botgate_crawler_impersonation_total.crawler.googlebot"), 1);
    }
}

#[test]
fn a_lookup_that_fails_leaves_the_claim_unverified_never_allowed_nor_blocked_for_it() {
    let mut e = engine(&with_resolver(json!({})));
    let d = decide_answering(
        &mut e,
        &crawler(GOOGLEBOT, "66.249.66.1", "/products/1"),
        T0,
        &Answer::Failed,
        &mut Vec::new(),
    );
    assert_ne!(d.verdict, Verdict::Allow);
    assert!(!d.reasons.contains(&"crawler_impersonation"), "{d:?}");
    assert!(d.reasons.contains(&"crawler_unverified"), "{d:?}");
}

#[test]
fn an_address_in_published_ranges_needs_no_lookup() {
    let defs = json!({"crawlers": {"definitions": [{"name": "googlebot", "ranges": ["66.249.64.0/19"]}]}});
    let mut e = engine(&with_resolver(defs));
    let mut asked = Vec::new();
    let d =
        decide_answering(&mut e, &crawler(GOOGLEBOT, "66.249.70.3", "/sitemap.xml"), T0, &Answer::Failed, &mut asked);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.bot.as_deref().unwrap().verified, "published_ranges");
    assert!(asked.is_empty());
}

#[test]
fn the_policy_refuses_ai_training_crawlers_by_purpose_even_when_verified() {
    let extra = json!({"crawlers": {
        "by_purpose": {"ai_training": "block"},
        "definitions": [{"name": "gptbot", "ranges": ["20.171.206.0/24"]}]
    }});
    let mut e = engine(&with_resolver(extra));
    let d =
        decide_answering(&mut e, &crawler(GPTBOT, "20.171.206.10", "/blog/post"), T0, &Answer::Failed, &mut Vec::new());
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
    assert_eq!(d.reasons, vec!["crawler_refused"]);
    assert_eq!(d.bot.as_deref().unwrap().verified, "published_ranges");
    // The same user agent from elsewhere is an impersonator (its ranges are its only proof).
    let d =
        decide_answering(&mut e, &crawler(GPTBOT, "198.51.100.4", "/blog/post"), T0, &Answer::Failed, &mut Vec::new());
    assert_eq!(d.reasons, vec!["crawler_impersonation"]);
}

#[test]
fn a_crawler_with_no_proof_configured_is_scored_not_blocked() {
    // GPTBot publishes only IP lists; none is configured here.
    let mut e = engine(&with_resolver(json!({})));
    let d =
        decide_answering(&mut e, &crawler(GPTBOT, "20.171.206.10", "/blog/post"), T0, &Answer::Failed, &mut Vec::new());
    assert!(!matches!(d.verdict, Verdict::Allow | Verdict::Block), "{d:?}");
    assert!(d.reasons.contains(&"crawler_unverified"));
}

#[test]
fn a_crawler_not_named_in_the_condition_is_verified_but_scored() {
    // The example names googlebot, bingbot, duckduckbot and yandexbot: Applebot is not allowed.
    let mut e = engine(&with_resolver(json!({})));
    let ua =
        "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15 (Applebot/0.1)";
    let ok = Answer::Value("17-58-101-179.applebot.apple.com".into());
    let d = decide_answering(&mut e, &crawler(ua, "17.58.101.179", "/"), T0, &ok, &mut Vec::new());
    assert_ne!(d.verdict, Verdict::Allow);
    assert_eq!(d.bot.as_deref().unwrap().verified, "fcrdns");
}

#[test]
fn in_observe_mode_an_impersonator_is_recorded_and_passes() {
    let mut e = engine(&with_resolver(json!({"mode": "observe"})));
    let d = decide_answering(&mut e, &crawler(GOOGLEBOT, "203.0.113.9", "/"), T0, &Answer::NotFound, &mut Vec::new());
    assert_eq!(d.verdict, Verdict::Pass);
    assert_eq!(d.outcome(), "would_block");
    assert!(d.reasons.contains(&"crawler_impersonation"));
}

#[test]
fn a_verified_crawler_over_its_rate_is_rate_limited() {
    let defs = json!({"crawlers": {"definitions": [
        {"name": "googlebot", "ranges": ["66.249.64.0/19"], "rate": {"max_requests": 5, "window_seconds": 60}}
    ]}});
    let mut e = engine(&with_resolver(defs));
    let outcomes: Vec<Verdict> = (0..7)
        .map(|i| {
            decide_answering(
                &mut e,
                &crawler(GOOGLEBOT, "66.249.70.3", &format!("/p/{i}")),
                T0 + i,
                &Answer::Failed,
                &mut Vec::new(),
            )
            .verdict
        })
        .collect();
    assert_eq!(outcomes[..5], [Verdict::Allow; 5]);
    assert_eq!(outcomes[5], Verdict::RateLimited);
}

#[test]
fn people_never_wait_for_a_lookup() {
    let mut e = engine(&with_resolver(json!({})));
    let mut asked = Vec::new();
    let d = decide_answering(&mut e, &Req::new("GET", "/", "198.51.100.7").browser(), T0, &Answer::Failed, &mut asked);
    assert_eq!(d.verdict, Verdict::Pass);
    assert!(asked.is_empty());
}

#[test]
fn a_threat_listed_address_claiming_googlebot_is_still_blocked_when_the_ranges_say_no() {
    // Listed and claiming a crawler it cannot prove: the claim is refuted first.
    let mut e = engine(&with_resolver(json!({})));
    let d = decide_answering(&mut e, &crawler(GOOGLEBOT, "198.18.0.9", "/"), T0, &Answer::NotFound, &mut Vec::new());
    assert_eq!(d.verdict, Verdict::Block);
}

#[test]
fn policy_mistakes_are_reported_with_their_json_path() {
    let bad = json!({"dns_over_https": {"timeout_ms": 5}, "crawlers": {
        "by_purpose": {"ai_trainin": "block"},
        "definitions": [{"name": "x y"}, {"name": "mybot", "user_agents": ["a"], "rdns_suffixes": ["com"], "action": "maybe"}]
    }});
    let mut p: Value = serde_json::from_str(&example_policy(&[])).unwrap();
    for (k, v) in bad.as_object().unwrap() {
        p[k] = v.clone();
    }
    let parsed = botgate::policy::parse(p.to_string().as_bytes());
    let errors: Vec<String> = parsed.errors().map(|d| d.to_string()).collect();
    let has = |s: &str| errors.iter().any(|e| e.contains(s));
    assert!(has("$.dns_over_https.cluster"), "{errors:?}");
    assert!(has("$.dns_over_https.timeout_ms"), "{errors:?}");
    assert!(has("$.crawlers.by_purpose.ai_trainin"), "{errors:?}");
    assert!(has("$.crawlers.definitions[0].name"), "{errors:?}");
    assert!(has("$.crawlers.definitions[1].user_agents"), "{errors:?}");
    assert!(has("$.crawlers.definitions[1].rdns_suffixes"), "{errors:?}");
    assert!(has("$.crawlers.definitions[1].action"), "{errors:?}");
}
