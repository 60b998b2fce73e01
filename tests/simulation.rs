//! The traffic simulator's figures for the example policy, as targets that must keep holding.

use botgate::simulate::{promoted, run, CAMPAIGNS};

fn example() -> botgate::policy::Policy {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/policy.example.json")).unwrap_or_default();
    botgate::policy::parse(&text).policy.unwrap_or_default()
}

#[test]
fn under_a_tenth_of_a_percent_of_human_sessions_are_challenged() {
    for policy in [example(), promoted(&example())] {
        let r = run(&policy, 10_000, 0, 11);
        assert!(r.human_rate() < 0.001, "{}", r.render());
    }
}

#[test]
fn every_campaign_visible_in_request_behaviour_is_detected() {
    let r = run(&promoted(&example()), 200, 10, 5);
    for (name, runs, detected) in &r.campaigns {
        if *name == "low-and-slow residential scraper" {
            // The documented blind spot: real browser headers, residential addresses, human pace.
            continue;
        }
        assert_eq!(detected, runs, "{name} escaped:\n{}", r.render());
    }
    assert_eq!(r.campaigns.len(), CAMPAIGNS.len());
}
