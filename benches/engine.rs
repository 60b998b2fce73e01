//! Native micro-benchmarks of the engine's hot pieces (`cargo bench --bench engine`):
//! threat-intel lookups in a 100,000-prefix list, path normalisation, the behavioural score, a
//! whole request.
//! Each figure is the median of 7 runs of many iterations.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // benchmark code

use botgate::base::iptable::IpSet;
use botgate::engine::{drive, Engine};
use botgate::request::head::Head;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

fn median_ns(iters: u64, mut f: impl FnMut(u64)) -> f64 {
    // BENCH_QUICK: one short run, for instruction counts under callgrind.
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let iters = if quick { (iters / 100).max(1) } else { iters };
    let mut runs: Vec<f64> = (0..if quick { 1 } else { 7 })
        .map(|_| {
            let t = Instant::now();
            for i in 0..iters {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^ (x << 17)
}

fn main() {
    // 100,000 random IPv4 prefixes between /16 and /32, plus 20,000 IPv6 /48s.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut nets = Vec::new();
    for _ in 0..100_000 {
        seed = xorshift(seed);
        let len = 16 + (seed >> 59) as u8 % 17;
        nets.push(ipnet::IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(seed as u32), len).unwrap().trunc()));
    }
    for i in 0..20_000u128 {
        let addr = std::net::Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 80));
        nets.push(ipnet::IpNet::V6(ipnet::Ipv6Net::new(addr, 48).unwrap()));
    }
    let t = Instant::now();
    let set = IpSet::new(&nets);
    let build_ms = t.elapsed().as_secs_f64() * 1000.0;
    let probes: Vec<IpAddr> = (0..4096u64).map(|i| IpAddr::from(Ipv4Addr::from(xorshift(i + 1) as u32))).collect();
    let hits = probes.iter().filter(|p| set.contains(**p)).count();
    let lookup = median_ns(2_000_000, |i| {
        black_box(set.contains(black_box(probes[(i & 4095) as usize])));
    });
    println!(
        "threat intel: {} prefixes -> {} ranges, built in {build_ms:.0} ms; lookup {lookup:.0} ns (hits {hits}/4096)",
        nets.len(),
        set.ranges()
    );

    // Path normalisation, once per request: an already normal path is one scan, no allocation.
    for path in ["/account/orders/1234/invoice.pdf", "/static/..;/Account//orders/./%31234;jsessionid=ab"] {
        let ns = median_ns(2_000_000, |_| {
            black_box(botgate::request::path::normalise(black_box(path.as_bytes()), true));
        });
        println!("path normalisation: {ns:.0} ns for {path}");
    }

    let mut policy = botgate::policy::parse(include_bytes!("../envoy/policy.example.json")).policy.unwrap();
    // Without rate limits every request takes the whole path (scoring, sessions, tiers).
    policy.global_rate_limit = None;
    policy.ip_rate_limit = None;
    let mut engine = Engine::new(policy);
    let head = |i: u64| {
        Head::from_pairs([
            (":method", "GET".to_string()),
            (":path", format!("/products/{}", i % 500)),
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36".to_string()),
            ("accept", "text/html".to_string()),
            ("accept-language", "en".to_string()),
            ("x-forwarded-for", format!("203.0.{}.{}", (i / 256) % 256, i % 256)),
        ])
    };
    let heads: Vec<Head> = (0..65_536u64).map(head).collect();
    let request_iters = std::env::var("BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let request = median_ns(request_iters, |i| {
        black_box(
            drive::decide(&mut engine, &heads[(i & 65_535) as usize], None, 1_795_305_600_000 + i).evidence("id"),
        );
    });
    println!("whole request (example policy, GET, decision and evidence): {request:.0} ns");

    // The same with clearance keys, so the visitor cookie is on: browsers that send theirs back
    // (checked once per session, then by digest), and clients that never keep it.
    let mut keyed = botgate::policy::parse(include_bytes!("../envoy/policy.example.json")).policy.unwrap();
    keyed.global_rate_limit = None;
    keyed.ip_rate_limit = None;
    let key = botgate::challenge::token::Key { id: "current".into(), secret: vec![7; 32] };
    keyed.tiers.clearance.keys = vec![key.clone()];
    let visitors = botgate::identity::visitor::Visitors::new(keyed.session.visitor.clone(), vec![key], false);
    let mut engine = Engine::new(keyed);
    let with_cookie: Vec<Head> = (0..65_536u64)
        .map(|i| {
            let mut h = head(i);
            let set = visitors.cookie(xorshift(i % 4096 + 1)).unwrap();
            h.push(b"cookie", set.split(';').next().unwrap().as_bytes());
            h
        })
        .collect();
    let returning = median_ns(request_iters, |i| {
        black_box(
            drive::decide(&mut engine, &with_cookie[(i & 65_535) as usize], None, 1_795_305_600_000 + i).evidence("id"),
        );
    });
    let cookieless = median_ns(request_iters, |i| {
        black_box(
            drive::decide(&mut engine, &heads[(i & 65_535) as usize], None, 1_795_305_600_000 + i).evidence("id"),
        );
    });
    let mut plain = Engine::new({
        let mut p = botgate::policy::parse(include_bytes!("../envoy/policy.example.json")).policy.unwrap();
        p.global_rate_limit = None;
        p.ip_rate_limit = None;
        p
    });
    let unkeyed = median_ns(request_iters, |i| {
        black_box(
            drive::decide(&mut plain, &with_cookie[(i & 65_535) as usize], None, 1_795_305_600_000 + i).evidence("id"),
        );
    });
    println!("same cookie-carrying requests, no keys: {unkeyed:.0} ns");
    let check = median_ns(200_000, |i| {
        let p = visitors.presented(&with_cookie[(i & 65_535) as usize]).unwrap();
        black_box(visitors.genuine(&p));
    });
    println!(
        "whole request with the visitor cookie on: returned cookie {returning:.0} ns, never kept {cookieless:.0} ns; \
         HMAC check of a cookie {check:.0} ns"
    );

    // Challenge verification (issue 4's target: each under 5 µs).
    let key: &[u8] = b"pow-key-0123456789abcdef";
    let challenge = botgate::challenge::pow::issue(key, "00112233445566778899aabbccddeeff", 4, u64::MAX / 2, "bind");
    let solution = botgate::challenge::pow::solve(&challenge, 4).unwrap();
    let pow = median_ns(200_000, |_| {
        black_box(
            botgate::challenge::pow::verify(black_box(&challenge), &solution, &[key], 1_000, 300_000, "bind").is_ok(),
        );
    });
    let tkey = botgate::challenge::token::Key { id: "k".into(), secret: b"token-key-0123456789abcdef".to_vec() };
    let claims = botgate::challenge::token::Claims {
        iat: 1_000,
        exp: 1_000_000,
        scope: "session".into(),
        sid: "7cd773bdaf8e1592".into(),
        amr: "pow".into(),
        bnd: "22803c3a1199d07b".into(),
    };
    let token = botgate::challenge::token::mint(&tkey, &claims);
    let expect = botgate::challenge::token::Expect { now: 2_000, sid: "7cd773bdaf8e1592", bnd: "22803c3a1199d07b" };
    let tok = median_ns(200_000, |_| {
        black_box(botgate::challenge::token::verify(black_box(&token), std::slice::from_ref(&tkey), &expect).is_ok());
    });
    println!("proof-of-work verify (difficulty 4): {pow:.0} ns; clearance token verify: {tok:.0} ns");

    // The user agent's signals (issue 10.8): the automation list over a browser's user agent
    // (no hit: the whole list is ruled out) and over a crawler's; the header signals as a whole.
    let browser = b"mozilla/5.0 (linux; android 10; k) applewebkit/537.36 (khtml, like gecko) chrome/126.0.0.0 mobile safari/537.36";
    let crawler = b"mozilla/5.0 (compatible; semrushbot/7~bl; +http://www.semrush.com/bot.html)";
    let _ = botgate::request::user_agent::is_automation(b"warm up");
    let list_browser = median_ns(2_000_000, |_| {
        black_box(botgate::request::user_agent::is_automation(black_box(browser)));
    });
    let list_crawler = median_ns(2_000_000, |_| {
        black_box(botgate::request::user_agent::is_automation(black_box(crawler)));
    });
    let shaped = median_ns(2_000_000, |_| {
        black_box(botgate::request::user_agent::browser_shaped(black_box(browser)));
    });
    let nav = heads[0].clone();
    let mut signals = Vec::with_capacity(16);
    let headers = median_ns(2_000_000, |_| {
        signals.clear();
        let n = black_box(&nav);
        botgate::score::headers::header_signals(n, botgate::request::fetch::fetch_kind(n), &mut signals);
        black_box(&signals);
    });
    println!(
        "user agent: automation list {list_browser:.0} ns on a browser, {list_crawler:.0} ns on a crawler; \
         browser shape {shaped:.0} ns; header signals of a navigation {headers:.0} ns"
    );
}
