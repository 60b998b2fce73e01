//! Attacks on CrowdSec stream mode from its review (each failed before its fix): a ban skipped
//! on tiers the live sources are not asked on, a large stream refused whole, a wide IPv6 range, a
//! ban written as an IPv4-mapped address, and the bouncer key in `{:?}`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use botgate::decision::record::Verdict;
use botgate::engine::lookups::Answer;
use botgate::policy::feeds::{check, load, Kind, List, MAX_BODY};
use common::*;
use serde_json::json;

fn sets(stream: &str) -> std::sync::Arc<(botgate::base::iptable::IpSet, botgate::base::iptable::IpSet)> {
    let (shared, _) = check(Kind::Decisions, Some(200), stream.as_bytes()).unwrap();
    match load(Kind::Decisions, &shared).unwrap() {
        List::Decisions(s) => s,
        _ => panic!(),
    }
}

/// F1: a ban written IPv4-mapped never matches the IPv4 client (IpSet::new does not canonicalise).
#[test]
fn mapped_v6_ban_blocks_the_v4_client() {
    let s = sets(r#"{"new":[{"type":"ban","scope":"Ip","value":"::ffff:192.0.2.7"}]}"#);
    assert!(s.0.contains("192.0.2.7".parse().unwrap()));
}

/// F2: decisions skip check_width: 2400::/6 (1/8 of global unicast) is accepted, a blocklist refuses it.
#[test]
fn a_wide_v6_range_decision_is_refused_like_a_blocklist() {
    assert!(botgate::policy::feeds::parse(Kind::Blocklist, b"2400::/6\n").is_err());
    let r = check(Kind::Decisions, Some(200), br#"{"new":[{"type":"ban","scope":"Range","value":"2400::/6"}]}"#);
    assert!(r.is_err(), "{r:?}");
}

/// F3: a realistic stream of 100k decisions (< MAX_PREFIXES) exceeds the 8 MiB the shell reads,
/// so the truncated JSON is refused whole and no ban ever loads.
#[test]
fn a_hundred_thousand_decision_stream_fits_the_body_cap() {
    let d = r#"{"duration":"167h59m","id":123456789,"origin":"CAPI","scenario":"crowdsecurity/http-bad-user-agent","scope":"Ip","type":"ban","value":"203.0.113.77"}"#;
    let body = format!("{{\"deleted\":[],\"new\":[{}]}}", vec![d; 100_000].join(","));
    let cut = &body.as_bytes()[..body.len().min(MAX_BODY + 1)];
    let r = check(Kind::Decisions, Some(200), cut);
    assert!(r.is_ok(), "{} bytes: {r:?}", body.len());
}

/// F4: Debug of the policy's feed carries the bouncer key in clear.
#[test]
fn feed_debug_does_not_print_the_bouncer_key() {
    let p = with_resolver(json!({"vendors": [
        {"name": "crowdsec", "type": "crowdsec", "cluster": "crowdsec", "api_key": "S3CRET-BOUNCER", "stream": true}]}));
    let e = engine(&p);
    let f = e.policy().feeds().find(|f| f.name == "crowdsec").unwrap().clone();
    assert!(!format!("{f:?}").contains("S3CRET-BOUNCER"));
}

/// F5: a CrowdSec ban is skipped on every tier not in endpoint_tiers (a free local lookup).
#[test]
fn a_stream_ban_applies_outside_the_listed_tiers() {
    let p = with_resolver(json!({"vendors": [
        {"name": "crowdsec", "type": "crowdsec", "cluster": "crowdsec", "api_key": "k", "stream": true}],
        "vendor_signals": {"endpoint_tiers": ["critical"]}}));
    let mut e = engine(&p);
    let feed = e.policy().feeds().find(|f| f.name == "crowdsec").unwrap().clone();
    let (shared, _) =
        check(Kind::Decisions, Some(200), br#"{"new":[{"type":"ban","scope":"Ip","value":"192.0.2.7"}]}"#).unwrap();
    e.load_feed(&feed.id(), &load(Kind::Decisions, &shared).unwrap());
    let mut asked = Vec::new();
    let d =
        decide_answering(&mut e, &page_navigation("/", "192.0.2.7"), 1_795_305_600_000, &Answer::Failed, &mut asked);
    assert_eq!(d.verdict, Verdict::Block, "{d:?}");
}
