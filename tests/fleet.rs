//! Fleet-wide per-address limits (issue 17 item 1) through the engine: two engines (two Envoys)
//! whose counts meet in a shared store as Redis keeps them, and the policy's mistakes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::checks::fleet::Batch;
use botgate::decision::record::Verdict;
use botgate::engine::Engine;
use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;

fn policy(fleet: bool) -> String {
    let mut p: Value = serde_json::from_str(&keyed_example()).unwrap();
    p["ip_rate_limit"]["max_requests"] = json!(20);
    p["ip_rate_limit"]["fleet"] = json!(fleet);
    p["global_rate_limit"] = json!({"max_requests": 100000, "window_seconds": 60});
    p["fleet"] = json!({"cluster": "fleet"});
    p.to_string()
}

/// Redis as the fleet's scripts use it: each key moved up by its count, the totals answered.
fn sync(store: &mut HashMap<String, u64>, e: &mut Engine, now: u64) {
    let Some(batch): Option<Batch> = e.fleet_batch(now) else { return };
    let totals = batch
        .counts
        .iter()
        .map(|(c, n)| {
            let v = store.entry(format!("{c}:{}", batch.window)).or_default();
            *v += u64::from(*n);
            *v
        })
        .collect();
    e.fleet_answer(batch, Some(totals));
}

/// `n` pages from one address alternating between the engines, synced every second; how many
/// the limits let by.
fn alternate(fleet: bool, n: u64) -> usize {
    let (mut a, mut b) = (engine(&policy(fleet)), engine(&policy(fleet)));
    let mut store = HashMap::new();
    let mut admitted = 0;
    for i in 0..n {
        let now = T0 + i * 100;
        if i % 10 == 0 {
            sync(&mut store, &mut a, now);
            sync(&mut store, &mut b, now);
        }
        let e = if i % 2 == 0 { &mut a } else { &mut b };
        let d = send(e, &page_navigation(&format!("/p/{i}"), "203.0.113.85"), now, 200);
        admitted += usize::from(d.verdict != Verdict::RateLimited);
    }
    admitted
}

#[test]
fn a_client_alternating_between_two_envoys_is_limited_at_the_fleet_rate() {
    let with = alternate(true, 60);
    assert!((20..=26).contains(&with), "{with} let by under a fleet-wide 20/min");
    assert_eq!(alternate(false, 60), 40, "each Envoy alone gives it its own 20");
}

#[test]
fn a_sync_that_never_left_keeps_its_counts_and_one_lost_on_the_way_drops_them() {
    let mut a = engine(&policy(true));
    for i in 0..5u64 {
        send(&mut a, &page_navigation(&format!("/p/{i}"), "203.0.113.86"), T0 + i, 200);
    }
    let batch = a.fleet_batch(T0 + 10).unwrap();
    a.fleet_unsent(batch);
    let again = a.fleet_batch(T0 + 20).unwrap();
    assert_eq!(again.counts.iter().map(|(_, n)| n).sum::<u32>(), 5);
    a.fleet_answer(again, None);
    assert!(a.fleet_batch(T0 + 30).is_none(), "Redis may have counted it: not sent twice");
}

#[test]
fn fleet_mistakes_are_policy_errors_with_their_paths() {
    let mut p: Value = serde_json::from_str(&policy(true)).unwrap();
    p.as_object_mut().unwrap().remove("fleet");
    p["global_rate_limit"]["fleet"] = json!(true);
    let errors: Vec<String> =
        botgate::policy::parse(p.to_string().as_bytes()).errors().map(|d| d.to_string()).collect();
    for path in ["ip_rate_limit.fleet", "global_rate_limit.fleet"] {
        assert!(errors.iter().any(|e| e.contains(path)), "{path}: {errors:?}");
    }
    let errors: Vec<String> =
        botgate::policy::parse(br#"{"fleet": {"timeout_ms": 100}}"#).errors().map(|d| d.to_string()).collect();
    assert!(errors.iter().any(|e| e.contains("fleet.cluster")), "{errors:?}");
}
