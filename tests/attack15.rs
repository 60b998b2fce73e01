//! Attacks on fleet-wide limits (issue 17 review): a slow Redis counting a batch again on every
//! retry, profiles sharing one key, a full pending table, a hostile total.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use botgate::checks::fleet::{webdis_body, Batch, FleetCounts};
use botgate::decision::record::Verdict;
use botgate::engine::{routes::Engines, Engine};
use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;

fn policy(max: u32) -> Value {
    let mut p: Value = serde_json::from_str(&keyed_example()).unwrap();
    p["ip_rate_limit"]["max_requests"] = json!(max);
    p["ip_rate_limit"]["fleet"] = json!(true);
    p["global_rate_limit"] = json!({"max_requests": 100000, "window_seconds": 60});
    p["fleet"] = json!({"cluster": "fleet"});
    p
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Redis running the EVAL of the real webdis body: INCRBY per key, totals back.
fn redis(store: &mut HashMap<String, u64>, batch: &Batch) -> Vec<u64> {
    let body = webdis_body(batch, 60_000);
    let parts: Vec<&str> = body.split('/').collect();
    let n: usize = parts[2].parse().unwrap();
    (0..n)
        .map(|i| {
            let v = store.entry(decode(parts[3 + i])).or_default();
            *v += parts[3 + n + i].parse::<u64>().unwrap();
            *v
        })
        .collect()
}

fn sync(store: &mut HashMap<String, u64>, e: &mut Engine, now: u64) {
    if let Some(b) = e.fleet_batch(now) {
        let t = redis(store, &b);
        e.fleet_answer(b, Some(t));
    }
}

/// Redis executes the EVAL, but its answer comes after `timeout_ms`: Envoy reports a failure.
fn slow_sync(store: &mut HashMap<String, u64>, e: &mut Engine, now: u64) {
    if let Some(b) = e.fleet_batch(now) {
        redis(store, &b);
        e.fleet_answer(b, None);
    }
}

fn page(e: &mut Engine, ip: &str, i: u64, now: u64) -> bool {
    send(e, &page_navigation(&format!("/p/{i}"), ip), now, 200).verdict != Verdict::RateLimited
}

#[test]
fn a_slow_redis_counts_a_batch_again_on_every_retry() {
    // One client, 1 page a second, max 40/min. For 10 s Redis applies every EVAL but answers
    // after timeout_ms (Envoy: 504), then it is healthy again.
    let mut e = Engine::new(botgate::policy::parse(policy(40).to_string().as_bytes()).policy.unwrap());
    let mut store = HashMap::new();
    let mut admitted = 0;
    for i in 0..30u64 {
        let now = T0 + i * 1_000;
        admitted += usize::from(page(&mut e, "203.0.113.90", i, now));
        if i < 10 {
            slow_sync(&mut store, &mut e, now + 500)
        } else {
            sync(&mut store, &mut e, now + 500)
        }
    }
    let total: u64 = store.values().sum();
    assert!(total <= 30, "Redis holds {total} for 30 requests");
    assert_eq!(admitted, 30, "a client at 30/min under 40/min was refused {} times", 30 - admitted);
}

#[test]
fn profiles_share_the_fleet_key_so_api_calls_spend_the_page_budget() {
    let mut p = policy(20);
    p["profiles"] = json!({"api": {"ip_rate_limit": {"max_requests": 1000}}});
    let mut engines = Engines::new(botgate::policy::parse(p.to_string().as_bytes()).policy.unwrap());
    let mut store = HashMap::new();
    let ip = "203.0.113.91";
    // 100 API calls on the `api` profile (limit 1000): all fine.
    for i in 0..100u64 {
        assert!(page(engines.get(1).unwrap(), ip, i, T0 + i * 10));
    }
    sync(&mut store, engines.get(1).unwrap(), T0 + 1_000);
    // Then 2 pages on the base policy (limit 20).
    let base = engines.get(0).unwrap();
    assert!(page(base, ip, 1000, T0 + 1_100));
    sync(&mut store, base, T0 + 2_000);

    assert!(page(base, ip, 1001, T0 + 2_100), "the 2nd page of the window was fleet-limited");
}

#[test]
fn a_full_pending_table_leaves_new_clients_uncounted_fleet_wide() {
    // 512 new addresses a second per worker keep `pending` full; the attacker's own address
    // then alternates between two Envoys at 10 pages a second under a fleet-wide 20/min.
    let mk = || Engine::new(botgate::policy::parse(policy(20).to_string().as_bytes()).policy.unwrap());
    let (mut a, mut b) = (mk(), mk());
    let mut store = HashMap::new();
    let mut filler = 0u32;
    let mut fill = |e: &mut Engine, now: u64, n: u32| {
        for _ in 0..n {
            filler += 1;
            let ip = format!("2001:db8:{:x}:{:x}::1", filler >> 16, filler & 0xffff);
            page(e, &ip, 0, now);
        }
    };
    fill(&mut a, T0, 4096);
    fill(&mut b, T0, 4096);
    let mut admitted = 0;
    for i in 0..60u64 {
        let now = T0 + 100 + i * 100;
        if i % 10 == 0 {
            sync(&mut store, &mut a, now);
            sync(&mut store, &mut b, now);
            fill(&mut a, now, 512);
            fill(&mut b, now, 512);
        }
        let e = if i % 2 == 0 { &mut a } else { &mut b };
        admitted += usize::from(page(e, "203.0.113.92", i, now + 1));
    }
    assert!(admitted <= 26, "{admitted} let by under a fleet-wide 20/min (40 = no fleet)");
}

#[test]
fn a_hostile_total_near_u64_max_does_not_panic_or_wrap() {
    let mut f = FleetCounts::new(60_000, 10, 100);
    let c = "203.0.113.93".parse().unwrap();
    f.count(c, 1_000);
    let b = f.take_batch(1_000).unwrap();
    f.absorb(&b, &[u64::MAX]);
    assert!(f.count(c, 1_001).is_some());
}
