//! Vendor signals through the engine, with the lookup answered the way the shell's callouts
//! answer it: a source's score raises botgate's (named among the reasons), a `ban` is the block
//! tier and a `captcha` botgate's own challenge, missing sources are missing (listed in the
//! evidence with why, never read as a clean bill), and a client costs one round per cache TTL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::decision::record::Verdict;
use botgate::engine::lookups::{Answer, Lookup};
use botgate::engine::vendors::{encode, SourceAnswer};
use botgate::formats::vendors::{Ask, Reading};
use common::*;
use serde_json::{json, Value};

const T0: u64 = 1_795_305_600_000;

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

fn reading(score: f64, ask: Ask) -> Result<Reading, String> {
    Ok(Reading { score, scored: true, reasons: vec!["seen".into()], ask })
}

fn answer(crowdsec: Result<Reading, String>, acme: Result<Reading, String>) -> Answer {
    Answer::Value(encode(&[
        SourceAnswer { name: "crowdsec".into(), result: crowdsec },
        SourceAnswer { name: "acme".into(), result: acme },
    ]))
}

fn page(ip: &str) -> Req {
    page_navigation("/", ip)
}

#[test]
fn a_crowdsec_ban_is_the_block_tier_named_for_the_vendor() {
    let mut e = engine(&policy(json!({})));
    let mut asked = Vec::new();
    let a = answer(reading(1.0, Ask::Block), Err("timeout".into()));
    let d = decide_answering(&mut e, &page("203.0.113.7"), T0, &a, &mut asked);
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
    assert!(d.reasons.contains(&"vendor_crowdsec"), "{:?}", d.reasons);
    assert_eq!(asked, vec![Lookup { service: "vendors", key: "203.0.113.7".into() }]);
}

#[test]
fn a_crowdsec_captcha_is_botgates_own_challenge() {
    let mut e = engine(&policy(json!({})));
    let a = answer(reading(0.5, Ask::Challenge), reading(0.0, Ask::Nothing));
    let d = decide_answering(&mut e, &page("203.0.113.8"), T0, &a, &mut Vec::new());
    assert!(matches!(d.verdict, Verdict::Challenge(_)), "{d:?}");
    assert_ne!(format!("{:?}", d.verdict).to_lowercase(), "captcha");
}

#[test]
fn a_high_vendor_score_raises_botgates_and_says_so() {
    let mut e = engine(&policy(json!({})));
    let a = answer(Err("circuit_open".into()), reading(0.97, Ask::Nothing));
    let d = decide_answering(&mut e, &page("203.0.113.9"), T0, &a, &mut Vec::new());
    assert!(d.score >= 0.97 - 1e-9, "{d:?}");
    assert!(d.reasons.contains(&"vendor_acme"), "{:?}", d.reasons);
    assert_ne!(d.verdict, Verdict::Pass);
    let evidence: Value = serde_json::from_str(&d.evidence("r1")).unwrap();
    assert_eq!(evidence["vendors"][0], json!({"name": "crowdsec", "missing": "circuit_open"}));
    assert_eq!(evidence["vendors"][1]["name"], "acme");
    assert_eq!(evidence["vendors"][1]["reasons"], json!(["seen"]));
}

#[test]
fn with_every_source_missing_a_person_is_decided_as_without_vendors() {
    let mut with = engine(&policy(json!({})));
    let mut without = engine(&with_resolver(json!({})));
    for (i, a) in [Answer::Failed, answer(Err("timeout".into()), Err("garbage".into()))].iter().enumerate() {
        let ip = format!("203.0.113.{}", 20 + i);
        let d = decide_answering(&mut with, &page(&ip), T0, a, &mut Vec::new());
        let base = send(&mut without, &page(&ip), T0, 200);
        assert_eq!((d.verdict, d.score), (base.verdict, base.score), "{d:?}");
        let evidence: Value = serde_json::from_str(&d.evidence("r")).unwrap();
        assert!(evidence["vendors"].as_array().unwrap().iter().all(|v| v.get("missing").is_some()), "{evidence}");
    }
}

#[test]
fn a_browsing_client_costs_one_round_per_cache_ttl() {
    let mut e = engine(&policy(json!({})));
    let mut asked = Vec::new();
    let a = answer(reading(0.0, Ask::Nothing), reading(0.1, Ask::Nothing));
    for i in 0..10 {
        decide_answering(&mut e, &page_navigation(&format!("/p/{i}"), "203.0.113.30"), T0 + i * 1_000, &a, &mut asked);
    }
    assert_eq!(asked.len(), 1, "{asked:?}");
    decide_answering(&mut e, &page("203.0.113.30"), T0 + 61_000, &a, &mut asked);
    assert_eq!(asked.len(), 2, "asked again after cache_seconds (60 by default)");
}

#[test]
fn only_the_configured_endpoint_tiers_consult_the_sources() {
    let p = policy(json!({"vendor_signals": {"endpoint_tiers": ["critical"]}}));
    let mut e = engine(&p);
    let mut asked = Vec::new();
    decide_answering(&mut e, &page("203.0.113.40"), T0, &Answer::Failed, &mut asked);
    assert!(asked.is_empty(), "a medium-tier page is not consulted: {asked:?}");
}

#[test]
fn vendor_mistakes_are_policy_errors_with_their_paths() {
    let p = with_resolver(json!({"vendors": [
        {"name": "cs", "type": "crowdsec", "cluster": "crowdsec"},
        {"name": "x", "type": "http_json", "cluster": "x", "path": "score", "score_pointer": "score"},
        {"name": "x", "type": "http_json", "path": "/s", "score_pointer": "/s"}
    ]}));
    let errors: Vec<String> = botgate::policy::parse(p.as_bytes()).errors().map(|d| d.to_string()).collect();
    for path in [
        "vendors[0].api_key_env",
        "vendors[1].path",
        "vendors[1].score_pointer",
        "vendors[2].name",
        "vendors[2].cluster",
    ] {
        assert!(errors.iter().any(|e| e.contains(path)), "{path}: {errors:?}");
    }
}

#[test]
fn a_crowdsec_stream_blocks_from_the_fetched_decisions_without_a_callout() {
    let p = with_resolver(json!({"vendors": [
        {"name": "crowdsec", "type": "crowdsec", "cluster": "crowdsec", "api_key": "k", "stream": true, "refresh_seconds": 5}
    ]}));
    let mut e = engine(&p);
    let feed = e.policy().feeds().find(|f| f.name == "crowdsec").unwrap().clone();
    assert_eq!(feed.path, "/v1/decisions/stream?startup=true");
    assert_eq!(feed.secret_header.as_ref().map(|h| (h.name.as_str(), h.value.as_str())), Some(("x-api-key", "k")));
    let stream = br#"{"new": [
        {"id": 1, "origin": "cscli", "type": "ban", "scope": "Ip", "value": "192.0.2.7", "duration": "1h", "scenario": "manual"},
        {"id": 2, "origin": "cscli", "type": "captcha", "scope": "Range", "value": "198.51.100.0/24", "duration": "1h", "scenario": "x"},
        {"id": 3, "origin": "cscli", "type": "ban", "scope": "Country", "value": "ZZ", "duration": "1h", "scenario": "y"}
    ], "deleted": null}"#;
    let (shared, n) =
        botgate::policy::feeds::check(botgate::policy::feeds::Kind::Decisions, Some(200), stream).unwrap();
    assert_eq!(n, 2, "the country decision names no address");
    e.load_feed(&feed.id(), &botgate::policy::feeds::load(botgate::policy::feeds::Kind::Decisions, &shared).unwrap());
    let mut asked = Vec::new();
    let d = decide_answering(&mut e, &page("192.0.2.7"), T0, &Answer::Failed, &mut asked);
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
    assert!(d.reasons.contains(&"vendor_crowdsec"));
    let d = decide_answering(&mut e, &page("198.51.100.9"), T0, &Answer::Failed, &mut asked);
    assert!(matches!(d.verdict, Verdict::Challenge(_)), "{d:?}");
    let d = decide_answering(&mut e, &page("203.0.113.90"), T0, &Answer::Failed, &mut asked);
    assert_eq!(d.verdict, Verdict::Pass, "{d:?}");
    assert!(asked.is_empty(), "a stream needs no callout per client: {asked:?}");
}

/// A band that asks only about the requests botgate is unsure of.
fn banded() -> String {
    policy(json!({"vendor_signals": {"score_band": [0.3, 0.75]}}))
}

/// A script that names a browser but sends none of a browser's other headers.
fn scripted(ip: &str) -> Req {
    Req::new("GET", "/", ip).header("user-agent", CHROME)
}

#[test]
fn a_request_botgate_finds_clean_goes_on_without_asking_outside_the_band() {
    let mut e = engine(&banded());
    let mut asked = Vec::new();
    let d = decide_answering(&mut e, &page("203.0.113.60"), T0, &Answer::Failed, &mut asked);
    assert!(asked.is_empty(), "{asked:?}");
    assert_eq!(d.verdict, Verdict::Pass, "{d:?}");
    assert!(d.vendors.is_empty(), "no source is listed when none was asked: {d:?}");
    assert_eq!(e.tally.get(botgate::base::telemetry::Counter::VendorOutOfBand), 1);
}

#[test]
fn a_request_whose_headers_look_scripted_is_asked_about_inside_the_band() {
    let mut e = engine(&banded());
    let mut asked = Vec::new();
    let a = answer(reading(1.0, Ask::Block), reading(0.0, Ask::Nothing));
    let d = decide_answering(&mut e, &scripted("203.0.113.61"), T0, &a, &mut asked);
    assert_eq!(asked.len(), 1, "{d:?}");
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
    assert!(d.reasons.contains(&"vendor_crowdsec"), "{:?}", d.reasons);
}

#[test]
fn a_session_botgate_already_refuses_is_above_the_band_and_costs_no_callout() {
    let mut e = engine(&banded());
    let ip = "203.0.113.62";
    for _ in 0..3 {
        let session = botgate_session(&mut e, ip);
        e.fail_challenge(session);
    }
    let mut asked = Vec::new();
    // Past the cache's 60 s: nothing cached answers for it.
    let d = decide_answering(&mut e, &scripted(ip), T0 + 61_000, &Answer::Failed, &mut asked);
    assert!(asked.is_empty(), "{asked:?}");
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
}

/// The session a scripted request from `ip` lands in.
fn botgate_session(e: &mut botgate::engine::Engine, ip: &str) -> u64 {
    let a = answer(reading(0.0, Ask::Nothing), reading(0.0, Ask::Nothing));
    decide_answering(e, &scripted(ip), T0, &a, &mut Vec::new()).session.unwrap()
}

#[test]
fn a_cached_answer_is_used_whatever_the_band() {
    let mut e = engine(&banded());
    let ip = "203.0.113.63";
    let mut asked = Vec::new();
    let a = answer(reading(0.9, Ask::Nothing), reading(0.0, Ask::Nothing));
    decide_answering(&mut e, &scripted(ip), T0, &a, &mut asked);
    assert_eq!(asked.len(), 1);
    let d = decide_answering(&mut e, &page(ip), T0 + 1_000, &a, &mut asked);
    assert_eq!(asked.len(), 1, "answered from the cache");
    assert!(d.reasons.contains(&"vendor_crowdsec"), "{d:?}");
}

#[test]
fn a_score_band_that_is_not_a_range_is_a_policy_error_with_its_path() {
    for band in [json!([0.8, 0.2]), json!([0.1]), json!([0, 2]), json!("low")] {
        let p = policy(json!({"vendor_signals": {"score_band": band}}));
        let errors: Vec<String> = botgate::policy::parse(p.as_bytes()).errors().map(|d| d.to_string()).collect();
        assert!(errors.iter().any(|e| e.contains("vendor_signals.score_band")), "{band}: {errors:?}");
    }
}

#[test]
fn which_clients_are_sampled_cannot_be_worked_out_from_the_source_code() {
    // An attacker with many addresses would use only those a public hash leaves out of the
    // sample; the draw is keyed by the policy's secret instead.
    let p = policy(json!({"vendor_signals": {"sample_rate": 0.5}}));
    let mut e = engine(&p);
    let (mut public_out, mut asked_of_them) = (0, 0);
    for i in 0..200u32 {
        let ip = format!("{}.{}", ["203.0.113", "198.51.100"][i as usize / 100], i % 100 + 100);
        let draw = botgate::base::fasthash::hash(&[b"vendor-sample", ip.as_bytes()]) % 10_000;
        if draw < 5_000 {
            continue;
        }
        public_out += 1;
        let mut asked = Vec::new();
        decide_answering(&mut e, &page(&ip), T0, &Answer::Failed, &mut asked);
        asked_of_them += usize::from(!asked.is_empty());
    }
    assert!(public_out > 50, "{public_out}");
    assert!(asked_of_them * 4 > public_out, "{asked_of_them} of {public_out} asked");
}

#[test]
fn a_stream_decision_lapses_at_its_duration_even_while_the_api_cannot_be_reached() {
    use botgate::policy::feeds::{check_at, go_duration_ms, load_at, Kind, List};
    let stream = br#"{"new": [
        {"id": 1, "type": "ban", "scope": "Ip", "value": "192.0.2.7", "duration": "1m30.5s"},
        {"id": 2, "type": "ban", "scope": "Ip", "value": "192.0.2.8", "duration": "3h59m58.123456789s"},
        {"id": 3, "type": "ban", "scope": "Ip", "value": "192.0.2.9", "duration": "-5s"}
    ], "deleted": null}"#;
    let (shared, _) = check_at(Kind::Decisions, Some(200), stream, T0).unwrap();
    let banned = |at: u64| {
        let (list, next) = load_at(Kind::Decisions, &shared, at).unwrap();
        let List::Decisions(sets) = list else { panic!("decisions") };
        let ips: Vec<bool> =
            ["192.0.2.7", "192.0.2.8", "192.0.2.9"].iter().map(|ip| sets.0.contains(ip.parse().unwrap())).collect();
        (ips, next)
    };
    // The Local API last answered at T0; nothing newer arrives (it is down).
    assert_eq!(banned(T0 + 1_000), (vec![true, true, false], Some(T0 + 90_500)));
    assert_eq!(banned(T0 + 90_500), (vec![false, true, false], Some(T0 + 14_398_123)));
    assert_eq!(go_duration_ms("1h"), Some(3_600_000));
    assert_eq!(go_duration_ms("250ms"), Some(250));
    for bad in ["", "4d", "h", "1x"] {
        assert_eq!(go_duration_ms(bad), None, "{bad}");
    }
}
