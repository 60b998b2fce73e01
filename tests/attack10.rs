//! Attacks on vendor signals from the review of issue 14 (each failed before its fix): odd path
//! spellings skipping consultation, CrowdSec's "no opinion" diluting a mean as a clean score, a
//! long ban list cut and ignored, a ban hidden behind 64 lesser decisions, sampling by address
//! within one client's prefix, another profile's answer cached as this one's, and a vendor ban
//! enforced while the block tier is observed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::Verdict;
use botgate::engine::lookups::Answer;
use botgate::engine::vendors::{encode, SourceAnswer};
use botgate::formats::vendors::{crowdsec, Ask, Reading};
use common::*;
use serde_json::{json, Value};

fn policy(extra: Value) -> String {
    std::env::set_var("BOTGATE_TEST_CROWDSEC_KEY", "test-bouncer-key");
    let mut p = json!({
        "vendors": [
            {"name": "crowdsec", "type": "crowdsec", "cluster": "crowdsec", "api_key_env": "BOTGATE_TEST_CROWDSEC_KEY"},
            {"name": "acme", "type": "http_json", "cluster": "acme", "path": "/score?ip={ip}", "score_pointer": "/score"}
        ]
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        p[k] = v.clone();
    }
    with_resolver(p)
}

fn ans(list: &[(&str, Result<Reading, String>)]) -> Answer {
    Answer::Value(encode(
        &list.iter().map(|(n, r)| SourceAnswer { name: (*n).into(), result: r.clone() }).collect::<Vec<_>>(),
    ))
}

fn ban() -> Result<Reading, String> {
    Ok(Reading { score: 1.0, scored: true, reasons: vec!["crowdsec_ban:x".into()], ask: Ask::Block })
}

/// F1: the asker matches endpoint tiers on the raw path, the rest of botgate on the normalised
/// one: `//login`, `/./login`, `/%6cogin`, `/login;x` are the critical `/login` everywhere
/// else, but never consult the sources when only critical endpoints do.
#[test]
fn unnormalised_paths_do_not_escape_consultation() {
    let mut e = engine(&policy(json!({"vendor_signals": {"endpoint_tiers": ["critical"]}})));
    for (i, path) in ["/login", "//login", "/./login", "/%6cogin", "/login;x"].iter().enumerate() {
        let mut asked = Vec::new();
        let ip = format!("198.51.100.{}", 10 + i);
        let d = decide_answering(&mut e, &page_navigation(path, &ip), T0, &ans(&[("crowdsec", ban())]), &mut asked);
        assert_eq!(d.endpoint_tier, 0, "{path}: botgate itself sees the critical tier");
        assert!(
            !asked.is_empty(),
            "{path}: a critical endpoint must consult the sources (a banned client passes: {:?})",
            d.verdict
        );
    }
}

/// F2: with `weighted_mean`, CrowdSec's `null` ("I know nothing about this address") is read as
/// a confident 0.0 and halves botgate's own score: every bot not (yet) on a CrowdSec list is
/// scored lower for having been looked up. Missing knowledge must not be a clean bill.
#[test]
fn crowdsec_null_is_no_knowledge_not_a_zero_that_dilutes() {
    let p = policy(json!({"vendor_signals": {"combine": "weighted_mean"}}));
    let mut with = engine(&p);
    let mut without = engine(&with_resolver(json!({})));
    let bot = Req::new("POST", "/login", "203.0.113.50").header("user-agent", "python-requests/2.31");
    let base = send(&mut without, &bot, T0, 200);
    let null = crowdsec(Some(200), b"null").unwrap();
    let d = decide_answering(
        &mut with,
        &bot,
        T0,
        &ans(&[("crowdsec", Ok(null)), ("acme", Err("timeout".into()))]),
        &mut Vec::new(),
    );
    assert!(base.score > 0.3, "the bot scores on its own: {base:?}");
    assert!(
        d.score >= base.score - 1e-9,
        "no CrowdSec decision lowered the bot's score {} -> {} ({:?} -> {:?})",
        base.score,
        d.score,
        base.verdict,
        d.verdict
    );
}

/// F3a: the shell reads at most 16 KiB of a callout's body (MAX_DNS_REPLY); CrowdSec lists every
/// active decision for the address, so an address with many bans (each scenario it trips, every
/// blackhole period) answers more than that, the truncated JSON is "garbage", and the ban is
/// ignored (and counts towards opening the breaker for everyone).
#[test]
fn a_heavily_banned_address_is_still_banned_after_the_16k_cap() {
    let one = |i: usize| {
        json!({"id": i, "origin": "crowdsec", "type": "ban", "scope": "Ip", "value": "203.0.113.66",
               "duration": "3h59m12.345s", "scenario": format!("crowdsecurity/http-probing-{i}"), "until": "2026-11-28T03:00:00Z"})
    };
    let body = Value::Array((0..150).map(one).collect()).to_string();
    assert!(body.len() > 16 * 1024);
    let seen = &body.as_bytes()[..body.len().min(256 * 1024)]; // what call_response(.., MAX_DNS_REPLY) hands the adapter
    let r = crowdsec(Some(200), seen);
    assert!(crowdsec(Some(200), body.as_bytes()).is_ok_and(|r| r.ask == Ask::Block), "whole body is a ban");
    assert!(r.as_ref().is_ok_and(|r| r.ask == Ask::Block), "150 bans read as {r:?}");
}

/// F3b: only the first 64 decisions are read: 64 captchas (or any lesser type) ahead of a ban
/// hide it.
#[test]
fn a_ban_after_64_lesser_decisions_is_still_a_ban() {
    let mut d: Vec<Value> = (0..64).map(|i| json!({"type": "captcha", "scenario": format!("s{i}")})).collect();
    d.push(json!({"type": "ban", "scenario": "manual"}));
    let r = crowdsec(Some(200), Value::Array(d).to_string().as_bytes()).unwrap();
    assert_eq!(r.ask, Ask::Block, "{r:?}");
}

/// F5: sampling draws on the full address, so a client with a /64 picks the addresses outside
/// the sample (the hash is unseeded: computable offline) and is never consulted. The doc
/// promises "by client, so a client is consulted for all or none".
#[test]
fn sampling_is_by_client_not_by_address() {
    let mut e = engine(&policy(json!({"vendor_signals": {"sample_rate": 0.5}})));
    let mut consulted = Vec::new();
    for i in 1..=16u32 {
        let mut asked = Vec::new();
        decide_answering(&mut e, &page(&format!("2001:db8:9:9::{i:x}")), T0, &ans(&[("crowdsec", ban())]), &mut asked);
        consulted.push(!asked.is_empty());
    }
    assert!(consulted.iter().all(|c| *c == consulted[0]), "one /64 client, sampled per address: {consulted:?}");
}

/// F6: the shell keys a round by client address only (VendorCalls::ask), not by policy/profile:
/// a request on a route whose profile lists other sources joins the round and receives answers
/// without this policy's sources. The engine caches that ("no_answer" for crowdsec) as a good
/// value for the whole TTL, so a banned client that fires one request at the other route first
/// passes here for 60 s. An answer that lacks a configured source must not be cached as one.
#[test]
fn an_answer_missing_a_configured_source_is_not_kept_for_the_ttl() {
    let mut e = engine(&policy(json!({})));
    let ip = "203.0.113.77";
    // The round the other profile started: only its own source answered.
    let foreign = ans(&[("acme", Ok(Reading { score: 0.0, scored: true, reasons: vec![], ask: Ask::Nothing }))]);
    let first = decide_answering(&mut e, &page(ip), T0, &foreign, &mut Vec::new());
    assert_ne!(first.verdict, Verdict::Block);
    let mut asked = Vec::new();
    let d = decide_answering(
        &mut e,
        &page(ip),
        T0 + 1_000,
        &ans(&[("crowdsec", ban()), ("acme", Err("timeout".into()))]),
        &mut asked,
    );
    assert_eq!(d.verdict, Verdict::Block, "a banned client passes on the cached foreign answer ({} asks)", asked.len());
}

/// F7: a vendor ban has no `observe` of its own: a policy rolling the block tier out in observe
/// (every block rule `"observe": true`) still has CrowdSec bans enforced (reached with
/// `weighted_mean`, where a ban does not lift the score over `bot_score_above`).
#[test]
fn vendor_block_follows_the_block_tiers_observe() {
    let mut p: Value = serde_json::from_str(&policy(json!({"vendor_signals": {"combine": "weighted_mean"}}))).unwrap();
    for r in p["tiers"]["block"]["conditions"].as_array_mut().into_iter().flatten() {
        r["observe"] = json!(true);
    }
    let mut e = engine(&p.to_string());
    let d = decide_answering(&mut e, &page("203.0.113.88"), T0, &ans(&[("crowdsec", ban())]), &mut Vec::new());
    eprintln!("F7 {:?} {:?} {:?}", d.verdict, d.reasons, d.outcome());
    assert_ne!(d.verdict, Verdict::Block, "block tier observing, yet a vendor ban is enforced: {d:?}");
}

fn page(ip: &str) -> Req {
    page_navigation("/", ip)
}

/// A CrowdSec stream whose range decisions cover half the internet is refused whole (as a
/// blocklist feed would be), not applied to everyone.
#[test]
fn a_crowdsec_stream_covering_half_the_internet_is_refused() {
    let stream = br#"{"new": [{"type": "ban", "scope": "Range", "value": "0.0.0.0/1"}, {"type": "ban", "scope": "Range", "value": "128.0.0.0/1"}]}"#;
    let r = botgate::policy::feeds::check(botgate::policy::feeds::Kind::Decisions, Some(200), stream);
    assert!(matches!(r, Err(botgate::policy::feeds::Problem::Refused(_))), "{r:?}");
}
