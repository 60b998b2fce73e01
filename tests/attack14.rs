//! Attacks on graduated answers (issue 17 review): a throttled limit that stopped limiting, an
//! observed decoy served for real. (The gateway manifests' trusted proxies: integration/test_istio.py.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use botgate::base::telemetry::Counter;
use botgate::decision::record::Verdict;
use common::*;
use serde_json::{json, Value};

fn policy(edit: impl FnOnce(&mut Value)) -> String {
    let mut p: Value = serde_json::from_str(&keyed_example()).unwrap();
    edit(&mut p);
    p.to_string()
}

/// A throttled request is forwarded: on the global limit, which protects the upstream's
/// capacity, `answer: throttle` would cap nothing that reaches it. It is refused as a policy error.
#[test]
fn a_global_limit_cannot_throttle() {
    let p = policy(|p| {
        p["global_rate_limit"] = json!({"max_requests": 20, "window_seconds": 60, "answer": "throttle"});
    });
    let errors: Vec<String> = botgate::policy::parse(p.as_bytes()).errors().map(|d| d.to_string()).collect();
    assert!(errors.iter().any(|e| e.contains("global_rate_limit.answer")), "{errors:?}");
}

/// Same for the per-client limit: one address over its 40/min gets every further request
/// forwarded (only max_delayed per throttle_ms per worker bounds it, i.e. concurrency).
#[test]
fn a_throttled_client_is_still_rate_limited() {
    let mut e = engine(&policy(|p| {
        p["ip_rate_limit"]["answer"] = json!("throttle");
    }));
    let forwarded = (0..400u64)
        .filter(|i| {
            send(&mut e, &page_navigation(&format!("/p/{i}"), "203.0.113.90"), T0 + i * 25, 200).reply("r").is_none()
        })
        .count();
    assert!(forwarded <= 80, "{forwarded} of 400 requests in 10 s forwarded under 40/min");
}

/// A per-rule observed decoy (an operator trying it out) is delivered for real when the global
/// limit then sheds the request: `grade` leaves the observed answer on the decision and
/// `delivered()` only looks at the verdict.
#[test]
fn an_observed_decoy_rule_is_not_delivered_when_the_global_limit_refuses() {
    let mut e = engine(&policy(|p| {
        p["global_rate_limit"] = json!({"max_requests": 10, "window_seconds": 60});
        for rule in p["tiers"]["block"]["conditions"].as_array_mut().unwrap() {
            if rule.get("bot_score_above").is_some() {
                rule["answer"] = json!("decoy");
                rule["observe"] = json!(true);
            }
        }
    }));
    for i in 0..6u64 {
        send(&mut e, &page_navigation("/", &format!("100.21.0.{}", i + 1)), T0 + i, 200);
    }
    let scraper = Req::new("GET", "/products", "203.0.113.91").header("sec-ch-ua", "\"Chromium\";v=\"126\"");
    let d = send(&mut e, &scraper, T0 + 100, 200);
    assert_eq!(d.verdict, Verdict::RateLimited, "{d:?}");
    assert_eq!(d.reply("r").unwrap().status, 429, "an observed rule's decoy was served: {:?}", d.reply("r"));
    assert_eq!(e.tally.get(Counter::AnswersDecoy), 0, "counted as an enforced decoy");
}
