//! The traffic simulator's figures for the example policy, as targets that must keep holding.

use botgate::lab::bots::{CAMPAIGNS, COLD_UNRENDERED_STICKY, LOW_AND_SLOW};
use botgate::lab::simulate::{promoted, run};

fn example() -> botgate::policy::Policy {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/policy.example.json")).unwrap_or_default();
    botgate::policy::parse(&text).policy.unwrap_or_default()
}

#[test]
fn under_a_tenth_of_a_percent_of_human_sessions_are_challenged() {
    for policy in [example(), promoted(&example())] {
        let r = run(&policy, 10_000, 0, 11);
        assert!(r.human_rate() < 0.001, "{}", r.render());
        // The people who open every page from outside the site or never run scripts are in the
        // mix, and none of them is challenged for it.
        for k in &r.human_kinds {
            if !k.name.contains("header-stripping") {
                assert_eq!(k.detected, 0, "{}: {}/{}\n{}", k.name, k.detected, k.runs, r.render());
            }
        }
    }
}

#[test]
fn every_campaign_visible_in_request_behaviour_is_detected() {
    let r = run(&promoted(&example()), 200, 10, 5);
    for c in &r.campaigns {
        if c.name == LOW_AND_SLOW {
            continue;
        }
        assert_eq!(c.detected, c.runs, "{} escaped:\n{}", c.name, r.render());
    }
    assert_eq!(r.campaigns.len(), CAMPAIGNS.len());
}

/// The seed's targets with the example policy once the warn-first rollout is over: under 0.1%
/// of human sessions challenged, under 5% of bot campaigns undetected (BENCHMARKS.md has the
/// figures on more seeds and larger runs).
#[test]
fn the_seeds_targets_hold_once_the_rollout_is_over() {
    let r = run(&promoted(&example()), 10_000, 100, 7);
    assert!(r.human_rate() < 0.001, "{}", r.render());
    assert!(r.bot_pass_rate() < 0.05, "{}", r.render());
}

fn variant(r: &botgate::lab::simulate::Report, name: &str) -> botgate::lab::simulate::Row {
    r.scraper_variants.iter().find(|v| v.name == name).copied().unwrap_or(botgate::lab::simulate::Row {
        name: "",
        runs: 0,
        detected: 0,
        held: 0,
    })
}

/// The independent yardstick's measure: a campaign is held when at least 90% of its requests
/// after its first 20 are refused. Scrapers rotating residential addresses, a new session with
/// each, are held by what their sessions share (`campaign_landings`), and the people who share
/// their browser's shape and arrive while the campaign's traces are fresh are not refused for it.
#[test]
fn rotating_scrapers_are_held_and_people_sharing_their_shape_are_spared() {
    let r = run(&promoted(&example()), 2_000, 60, 5);
    let scrapers = r.campaigns.iter().find(|c| c.name == LOW_AND_SLOW).copied();
    let held = scrapers.map_or(0.0, |c| c.held as f64 / c.runs.max(1) as f64);
    assert!(held >= 0.85, "{}", r.render());
    let dropped = variant(&r, "cookies dropped at each new address");
    assert!(dropped.runs >= 10 && dropped.held * 10 >= dropped.runs * 8, "{}", r.render());
    assert!(r.bystanders >= 1_000 && r.bystander_rate() < 0.002, "{}", r.render());
}

/// A scraper that keeps its cookies while its proxy rotates keeps its session too: the
/// visitor cookie names it from address to address, and `address_hopping` sees the pool.
#[test]
fn scrapers_keeping_cookies_across_addresses_are_caught() {
    let r = run(&promoted(&example()), 200, 60, 5);
    let v = variant(&r, "cookies kept across addresses");
    assert!(v.runs >= 15 && v.detected * 10 >= v.runs * 8, "{}", r.render());
}

#[test]
fn low_and_slow_scrapers_on_sticky_addresses_are_mostly_caught() {
    let r = run(&promoted(&example()), 200, 60, 5);
    let v = variant(&r, COLD_UNRENDERED_STICKY);
    assert!(v.runs >= 10 && v.detected * 10 >= v.runs * 8, "{}", r.render());
    assert!(r.bot_pass_rate() < 0.10, "{}", r.render());
}

/// HTTP clients on a TLS stack the example policy lists are caught whatever their rotation (a
/// browser's user agent on Python's or Node's handshake is named at the first request); the
/// ones impersonating a browser's handshake are left to the behaviour signals.
#[test]
fn http_clients_on_listed_tls_stacks_are_caught_whatever_their_rotation() {
    let r = run(&promoted(&example()), 200, 60, 5);
    let listed = r.scraper_variants.iter().filter(|v| v.name.contains("TLS") && !v.name.contains("not listed"));
    let mut seen = 0;
    for v in listed.filter(|v| !v.name.contains("impersonating")) {
        assert_eq!(v.detected, v.runs, "{}\n{}", v.name, r.render());
        seen += v.runs;
    }
    assert!(seen >= 10, "{}", r.render());
}
