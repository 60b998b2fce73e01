//! Attacks on vendor signals by score band (issue 14 review): a made-up session id, a score
//! smoothed back into the band, an abandoned half-open probe, a stale session read as failed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod common;

use botgate::decision::record::Verdict;
use botgate::engine::lookups::Answer;
use botgate::engine::vendors::{encode, Breaker, SourceAnswer, OPEN_MS};
use botgate::formats::vendors::{Ask, Reading};
use common::*;
use serde_json::json;

fn banded() -> String {
    std::env::set_var("BOTGATE_TEST_CROWDSEC_KEY", "test-bouncer-key");
    with_resolver(json!({
        "vendors": [
            {"name": "crowdsec", "type": "crowdsec", "cluster": "crowdsec", "api_key_env": "BOTGATE_TEST_CROWDSEC_KEY"}
        ],
        "vendor_signals": {"score_band": [0.3, 0.75]}
    }))
}

fn crowdsec(score: f64, ask: Ask) -> Answer {
    Answer::Value(encode(&[SourceAnswer {
        name: "crowdsec".into(),
        result: Ok(Reading { score, scored: true, reasons: vec!["seen".into()], ask }),
    }]))
}

/// Chrome's user agent and language (the anonymous session's fingerprint), with hints that
/// contradict it and no accept header: header score 0.6, inside the band.
fn unsure(ip: &str) -> Req {
    Req::new("GET", "/", ip)
        .header("user-agent", CHROME)
        .header("accept-language", "en-GB,en;q=0.9")
        .header("sec-ch-ua", "\"Chromium\";v=\"126\", \"Google Chrome\";v=\"126\"")
        .header("sec-ch-ua-mobile", "?1")
}

fn page(ip: &str) -> Req {
    page_navigation("/", ip)
}

/// An address whose anonymous session botgate is unsure of (0.6); the vendor said nothing then,
/// and bans it now (the first answer has aged out of the 60 s cache).
fn unsure_then_banned(ip: &str) -> botgate::engine::Engine {
    let mut e = engine(&banded());
    let mut asked = Vec::new();
    let d = decide_answering(&mut e, &unsure(ip), T0, &crowdsec(0.0, Ask::Nothing), &mut asked);
    assert_eq!(asked.len(), 1, "setup is in band: {d:?}");
    e
}

#[test]
fn control_the_unsure_session_is_looked_up_and_the_ban_blocks() {
    let ip = "203.0.113.90";
    let mut e = unsure_then_banned(ip);
    let mut asked = Vec::new();
    let d = decide_answering(&mut e, &page(ip), T0 + 61_000, &crowdsec(1.0, Ask::Block), &mut asked);
    assert_eq!(asked.len(), 1, "{d:?}");
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
}

#[test]
fn a_made_up_session_header_escapes_the_band_but_keeps_the_inherited_score() {
    let ip = "203.0.113.91";
    let mut e = unsure_then_banned(ip);
    let mut asked = Vec::new();
    // A fresh made-up session id: in_band reads the new session (absent: 0) and clean headers,
    // while identify() then starts the session from the anonymous one (Sessions::inherit).
    let r = page(ip).header("x-session-id", "made-up-1");
    let d = decide_answering(&mut e, &r, T0 + 61_000, &crowdsec(1.0, Ask::Block), &mut asked);
    // (Unasked, it passed at 0.42: inside the band.)
    assert_eq!(asked.len(), 1, "the band reads the session it inherits from: {d:?}");
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
}

#[test]
fn a_session_above_the_band_is_smoothed_into_it_and_passes_unasked() {
    let mut e = engine(&banded());
    let ip = "203.0.113.92";
    let ban = crowdsec(1.0, Ask::Block);
    let sid = "mine";
    // No user agent, accept or language, and a client hint no such client sends: header score
    // 0.88 (blocked, and above the band: never looked up).
    let bad = || Req::new("GET", "/", ip).header("x-session-id", sid).header("sec-ch-ua", "\"Chromium\";v=\"126\"");
    let clean = || page(ip).header("x-session-id", sid);
    let mut passed_unasked = Vec::new();
    for round in 0..6u64 {
        let t = T0 + round * 10_000;
        let mut asked = Vec::new();
        for i in 0..3 {
            let d = decide_answering(&mut e, &bad(), t + i * 1_000, &ban, &mut asked);
            assert_ne!(d.verdict, Verdict::Pass, "{d:?}");
        }
        let d = decide_answering(&mut e, &clean(), t + 3_000, &ban, &mut asked);
        if asked.is_empty() && d.verdict == Verdict::Pass {
            passed_unasked.push((round, d.score));
        }
    }
    assert!(passed_unasked.is_empty(), "vendor-banned client passed, never asked: {passed_unasked:?}");
    let _ = sid;
}

#[test]
fn an_abandoned_half_open_probe_holds_the_circuit_for_another_open_period() {
    let mut b = Breaker::default();
    for i in 0..5 {
        b.failed(i);
    }
    let half_open = 4 + OPEN_MS;
    assert!(b.half_open(half_open) && b.admit(half_open), "the probe is sent");
    assert!(!b.admit(half_open + 1), "one probe at a time");
    // Its only waiter resets the stream: VendorCalls::forget drops the round and releases the
    // probe (neither answered() nor failed() is ever called for it).
    b.release(half_open + 5_000);
    assert!(b.admit(half_open + 5_000), "the next round probes, not one an open period later");
}

#[test]
fn a_session_idle_past_its_lifetime_still_counts_as_failed_at_the_band_check() {
    let mut e = engine(&banded());
    let ip = "203.0.113.93";
    let scripted = || Req::new("GET", "/", ip).header("user-agent", CHROME);
    let session =
        decide_answering(&mut e, &scripted(), T0, &crowdsec(0.0, Ask::Nothing), &mut Vec::new()).session.unwrap();
    e.fail_challenge(session);
    // 30 min 1 s later (the example's session ttl): identify() starts the session afresh, but
    // in_band peeks the stale one (Sessions::peek_mut ignores the ttl) and reads 1.0.
    let mut asked = Vec::new();
    let d = decide_answering(&mut e, &scripted(), T0 + 1_801_000, &crowdsec(1.0, Ask::Block), &mut asked);
    // (Unasked, it passed at 0.40: inside the band.)
    assert_eq!(asked.len(), 1, "a stale session reads as none: {d:?}");
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
}

#[test]
fn a_round_in_which_no_source_spoke_is_not_cached_against_the_client() {
    // A banned client that met an open circuit must not ride its all-missing answer for the
    // whole cache TTL once the source is back.
    let mut e = engine(&banded());
    let ip = "203.0.113.94";
    let missing =
        Answer::Value(encode(&[SourceAnswer { name: "crowdsec".into(), result: Err("circuit_open".into()) }]));
    let scripted = || Req::new("GET", "/", ip).header("user-agent", CHROME);
    let mut asked = Vec::new();
    decide_answering(&mut e, &scripted(), T0, &missing, &mut asked);
    let d = decide_answering(&mut e, &scripted(), T0 + 1_000, &crowdsec(1.0, Ask::Block), &mut asked);
    assert_eq!(asked.len(), 2, "asked again: {d:?}");
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
}
