//! Graduated answers (issue 17): a tarpit rule's refusal, a decoy's plausible 200 (marked only
//! in the evidence), a throttled rate limit forwarded instead of refused; each recorded in
//! observe mode too; and the policy's mistakes with their paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::base::telemetry::Counter;
use botgate::decision::record::Verdict;
use botgate::policy::answers::Refusal;
use common::*;
use serde_json::{json, Value};

/// The example policy with its score and threat-intel block rules answered as `answer` (and
/// observed if asked).
fn with_block_answer(answer: &str, observe: bool) -> String {
    let mut p: Value = serde_json::from_str(&keyed_example()).unwrap();
    let rules = p["tiers"]["block"]["conditions"].as_array_mut().unwrap();
    for rule in rules
        .iter_mut()
        .filter(|r| r.get("bot_score_above").is_some() || r.get("ip_in_threat_intel_blocklist").is_some())
    {
        rule["answer"] = json!(answer);
        rule["observe"] = json!(observe);
    }
    p["answers"] = json!({"tarpit_ms": 5000, "max_delayed": 8});
    p.to_string()
}

/// No user agent, accept or language, and a client hint no such client sends: above the block
/// threshold.
fn scraper(ip: &str) -> Req {
    Req::new("GET", "/products", ip).header("sec-ch-ua", "\"Chromium\";v=\"126\"")
}

#[test]
fn a_tarpit_rule_answers_its_block_after_the_policys_delay() {
    let mut e = engine(&with_block_answer("tarpit", false));
    let d = send(&mut e, &scraper("203.0.113.70"), T0, 200);
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
    let g = d.delivered().expect("graded");
    assert_eq!((g.how, g.delay_ms), (Refusal::Tarpit, 5000));
    assert_eq!(d.reply("r").unwrap().status, 403, "the refusal itself is a block's");
    let evidence: Value = serde_json::from_str(&d.evidence("r")).unwrap();
    assert_eq!((evidence["answer"].as_str(), evidence["delay_ms"].as_u64()), (Some("tarpit"), Some(5000)));
    assert_eq!(e.tally.get(Counter::AnswersTarpit), 1);
}

#[test]
fn a_decoy_is_a_plausible_200_marked_only_in_the_evidence() {
    let mut e = engine(&with_block_answer("decoy", false));
    // A browser on a listed address (the example's blocklist holds 198.18.0.0/15).
    let d = send(&mut e, &page_navigation("/products", "198.18.0.5"), T0, 200);
    let reply = d.reply("req-1").unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains("<html") && !reply.body.to_lowercase().contains("botgate"), "{}", reply.body);
    assert!(!reply.headers.iter().any(|(k, _)| k.starts_with("x-botgate")), "{:?}", reply.headers);
    assert!(!reply.body.contains("req-1"), "no request id: nothing says it was refused");
    let evidence: Value = serde_json::from_str(&d.evidence("r")).unwrap();
    assert_eq!((evidence["action"].as_str(), evidence["answer"].as_str()), (Some("block"), Some("decoy")));
    let api = send(&mut e, &Req::new("GET", "/api/items", "198.18.0.6").header("accept", "application/json"), T0, 200);
    assert_eq!(api.reply("r").unwrap().body.trim(), r#"{"items":[],"total":0,"next":null}"#);
    assert_eq!(e.tally.get(Counter::AnswersDecoy), 2);
}

#[test]
fn an_observed_rule_records_the_answer_it_would_give() {
    let mut e = engine(&with_block_answer("tarpit", true));
    let d = send(&mut e, &scraper("203.0.113.73"), T0, 200);
    assert_eq!((d.verdict, d.outcome()), (Verdict::Pass, "would_block"), "{d:?}");
    assert!(d.delivered().is_none(), "nothing is held in observe mode");
    let evidence: Value = serde_json::from_str(&d.evidence("r")).unwrap();
    assert_eq!(evidence["answer"], "tarpit");
    assert_eq!((e.tally.get(Counter::AnswersWouldTarpit), e.tally.get(Counter::AnswersTarpit)), (1, 0));
}

#[test]
fn a_throttled_rate_limit_is_forwarded_after_its_delay_instead_of_refused() {
    let mut p: Value = serde_json::from_str(&keyed_example()).unwrap();
    p["ip_rate_limit"]["answer"] = json!("throttle");
    p["answers"] = json!({"throttle_ms": 1500});
    let mut e = engine(&p.to_string());
    let mut throttled = Vec::new();
    for i in 0..45u64 {
        let d = send(&mut e, &page_navigation(&format!("/p/{i}"), "203.0.113.74"), T0 + i * 100, 200);
        if d.verdict == Verdict::RateLimited {
            throttled.push(d);
        }
    }
    let d = throttled.first().expect("over the limit");
    assert_eq!(d.delivered().map(|g| (g.how, g.delay_ms)), Some((Refusal::Throttle, 1500)));
    assert!(d.reply("r").is_none(), "forwarded, not answered");
    // One held at a time per client: the next ones within its delay are refused (429).
    assert!(throttled[1..].iter().all(|d| d.delivered().is_none() && d.reply("r").unwrap().status == 429));
    assert_eq!(e.tally.get(Counter::AnswersThrottle), 1);
    let later = send(&mut e, &page_navigation("/again", "203.0.113.74"), T0 + 4_000 + 1_600, 200);
    assert!(later.delivered().is_some(), "the next one after the delay is throttled again: {later:?}");
}

#[test]
fn answers_a_rule_cannot_give_are_policy_errors_with_their_paths() {
    let mut p: Value = serde_json::from_str(&keyed_example()).unwrap();
    p["tiers"]["block"]["conditions"][0]["answer"] = json!("throttle");
    p["ip_rate_limit"]["answer"] = json!("decoy");
    p["answers"] = json!({"tarpit_ms": 60000});
    let errors: Vec<String> =
        botgate::policy::parse(p.to_string().as_bytes()).errors().map(|d| d.to_string()).collect();
    for path in ["tiers.block.conditions[0].answer", "ip_rate_limit.answer", "answers.tarpit_ms"] {
        assert!(errors.iter().any(|e| e.contains(path)), "{path}: {errors:?}");
    }
}
