//! A traffic simulator: labelled human sessions and bot campaigns driven through the engine,
//! to measure the false-positive and false-negative rates of a policy
//! (`botgate simulate POLICY.json`).
//!
//! Humans browse with real browser headers and fetch metadata, irregular think times, varied
//! pages, the sub-resources their pages load (or not: warm caches, no scripts), occasional typos
//! and 404s; some open every page from search results or bookmarks, some send no referer or no
//! fetch metadata, a few arrive through proxies that strip headers. Bots follow the campaigns of
//! the bot-management write-ups: credential stuffing (one address, and hundreds of rotating
//! ones), scraping, inventory hoarding, crawler impersonation, prompt floods, a headless browser
//! at /login, and low-and-slow residential-proxy scrapers whose tool and proxy rotation are drawn
//! at random per campaign. A session or campaign is "detected" when any of its requests was
//! challenged or blocked; a campaign is "held" when at least 90% of its requests after its first
//! 20 were (the independent yardstick's measure: detection that lets most of the work through
//! is not protection). People who arrive just after each campaign (bystanders) are measured
//! too: whatever groups a campaign by the shape it shares with people must not refuse them.

use super::bots::{campaign, low_and_slow, variant_order, CAMPAIGNS, LOW_AND_SLOW};
use super::clients::{watch, Rng};
use super::humans::human;
use crate::engine::Engine;
use crate::policy::Policy;
use std::fmt::Write as _;

/// People browsing the worker while each campaign runs.
const BACKGROUND_HUMANS: u64 = 40;
/// People arriving right after each campaign, while its traces are fresh.
const BYSTANDERS: u64 = 40;

/// A row of the report: how many ran, how many were detected (challenged or blocked at least
/// once) and how many held (see [`super::clients::Watch::held`]).
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub name: &'static str,
    pub runs: u64,
    pub detected: u64,
    pub held: u64,
}

pub struct Report {
    pub humans: u64,
    pub humans_acted_on: u64,
    /// People who arrived just after a campaign, and how many of them were challenged or blocked.
    pub bystanders: u64,
    pub bystanders_acted_on: u64,
    /// Per class.
    pub campaigns: Vec<Row>,
    /// Human sessions by how they browse (`detected`: challenged or blocked).
    pub human_kinds: Vec<Row>,
    /// Low-and-slow scrapers by tool, proxy rotation, TLS stack and cookie jar.
    pub scraper_variants: Vec<Row>,
}

fn tally(rows: &mut Vec<Row>, name: &'static str, hit: bool, held: bool) {
    let i = rows.iter().position(|r| r.name == name).unwrap_or_else(|| {
        rows.push(Row { name, runs: 0, detected: 0, held: 0 });
        rows.len() - 1
    });
    if let Some(r) = rows.get_mut(i) {
        r.runs += 1;
        r.detected += u64::from(hit);
        r.held += u64::from(held);
    }
}

impl Report {
    pub fn human_rate(&self) -> f64 {
        self.humans_acted_on as f64 / self.humans.max(1) as f64
    }

    pub fn bot_pass_rate(&self) -> f64 {
        let (runs, detected) = self.campaigns.iter().fold((0, 0), |(r, d), c| (r + c.runs, d + c.detected));
        (runs - detected) as f64 / runs.max(1) as f64
    }

    /// Campaigns not held: fewer than 90% of their requests after the first 20 refused.
    pub fn bot_unheld_rate(&self) -> f64 {
        let (runs, held) = self.campaigns.iter().fold((0, 0), |(r, h), c| (r + c.runs, h + c.held));
        (runs - held) as f64 / runs.max(1) as f64
    }

    pub fn bystander_rate(&self) -> f64 {
        self.bystanders_acted_on as f64 / self.bystanders.max(1) as f64
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "human sessions: {} challenged or blocked of {} ({:.3}%; target < 0.1%)",
            self.humans_acted_on,
            self.humans,
            100.0 * self.human_rate()
        );
        for r in &self.human_kinds {
            let _ = writeln!(s, "  humans {:<52} {}/{} challenged or blocked", r.name, r.detected, r.runs);
        }
        let _ = writeln!(
            s,
            "bystanders (people arriving just after a campaign): {} challenged or blocked of {} ({:.3}%)",
            self.bystanders_acted_on,
            self.bystanders,
            100.0 * self.bystander_rate()
        );
        for r in &self.campaigns {
            let _ = writeln!(
                s,
                "bot campaign {:<45} detected {}/{} held {}/{}",
                r.name, r.detected, r.runs, r.held, r.runs
            );
        }
        for r in &self.scraper_variants {
            let _ = writeln!(
                s,
                "  low-and-slow {:<52} detected {}/{} held {}/{}",
                r.name, r.detected, r.runs, r.held, r.runs
            );
        }
        let _ = writeln!(s, "bot campaigns undetected: {:.1}% (target < 5%)", 100.0 * self.bot_pass_rate());
        let _ = writeln!(
            s,
            "bot campaigns not held (< 90% refused after their first 20 requests): {:.1}% (target < 5%)",
            100.0 * self.bot_unheld_rate()
        );
        s
    }
}

/// The policy as it will be once the warn-first rollout is over: enforce mode, detector blocking.
pub fn promoted(policy: &Policy) -> Policy {
    let mut p = policy.clone();
    p.mode = crate::policy::Mode::Enforce;
    if let Some(d) = &mut p.bot_detector {
        d.action = crate::policy::DetectorAction::Block;
    }
    p
}

/// Runs `humans` human sessions and `per_kind` campaigns of each kind, interleaved in time,
/// each campaign against a fresh worker (as separate attacks would meet fresh windows).
///
/// The global rate limit is left out: it caps a worker's total capacity, whoever sends, and the
/// simulated worker sees far more traffic than one worker would.
pub fn run(policy: &Policy, humans: u64, per_kind: u64, seed: u64) -> Report {
    let mut policy = policy.clone();
    policy.global_rate_limit = None;
    // Keys usually come from the environment; a deployment has them, so the simulation does too.
    if policy.tiers.clearance.keys.is_empty() {
        policy.tiers.clearance.keys =
            vec![crate::challenge::token::Key { id: "simulation".into(), secret: vec![0x5a; 32] }];
    }
    let policy = &policy;
    let mut rng = Rng::new(seed);
    let mut engine = Engine::new(policy.clone());
    let start = 1_795_305_600_000u64;
    let mut acted = 0;
    let mut human_kinds = Vec::new();
    for i in 0..humans {
        // Humans arrive a few per second: their sessions overlap in the same worker.
        let (hit, kind) = human(&mut engine, &mut rng, i, start + i * 300);
        acted += u64::from(hit);
        tally(&mut human_kinds, kind, hit, hit);
    }
    human_kinds.sort_by_key(|r| r.name);
    let (mut bystanders, mut bystanders_acted_on) = (0, 0);
    let mut scraper_variants = Vec::new();
    let mut campaigns = Vec::new();
    for (kind, name) in CAMPAIGNS.iter().enumerate() {
        for run in 0..per_kind {
            let mut engine = Engine::new(policy.clone());
            // Human background traffic shares the worker with the attack: enough people for the
            // site's rendering share to be heard (`Rendering::WARM_UP` sessions), as on any site
            // with traffic; each person has one vote, signed in or not.
            for i in 0..BACKGROUND_HUMANS {
                let _ = human(&mut engine, &mut rng, 1_000_000 + i, start + i * 1_000);
            }
            let _ = watch();
            if std::env::var_os("BOTGATE_SIMULATE_DEBUG").is_some() {
                eprintln!("== campaign {name}, run {run}");
            }
            let (hit, variant) = if *name == LOW_AND_SLOW {
                let (hit, v) = low_and_slow(&mut engine, &mut rng, start + run * 7);
                (hit, Some(v))
            } else {
                (campaign(&mut engine, &mut rng, kind, start + run * 7), None)
            };
            let w = watch();
            tally(&mut campaigns, name, hit, w.held());
            if let (Some(v), Some(_)) = (&variant, std::env::var_os("BOTGATE_SIMULATE_DEBUG")) {
                eprintln!("== variant {} / {} / {} / {}", v.tool, v.rotation, v.jar, v.stack.unwrap_or("-"));
            }
            if let Some(v) = variant {
                for row in [Some(v.tool), Some(v.rotation), v.stack, Some(v.jar), v.traced].into_iter().flatten() {
                    tally(&mut scraper_variants, row, hit, w.held());
                }
            }
            if std::env::var_os("BOTGATE_SIMULATE_DEBUG").is_some() {
                eprintln!("== bystanders after {name}, run {run}");
            }
            for i in 0..BYSTANDERS {
                let (hit, _) = human(&mut engine, &mut rng, 2_000_000 + i, w.last_now + 1_000 + i * 1_000);
                bystanders += 1;
                bystanders_acted_on += u64::from(hit);
            }
        }
    }
    scraper_variants.sort_by_key(|r| variant_order(r.name));
    Report { humans, humans_acted_on: acted, bystanders, bystanders_acted_on, campaigns, human_kinds, scraper_variants }
}
