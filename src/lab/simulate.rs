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
//! challenged or blocked.

use super::bots::{campaign, low_and_slow, variant_order, CAMPAIGNS, LOW_AND_SLOW};
use super::clients::Rng;
use super::humans::human;
use crate::engine::Engine;
use crate::policy::Policy;
use std::fmt::Write as _;

/// People browsing the worker while each campaign runs.
const BACKGROUND_HUMANS: u64 = 40;

pub struct Report {
    pub humans: u64,
    pub humans_acted_on: u64,
    /// Per class: (name, runs, detected).
    pub campaigns: Vec<(&'static str, u64, u64)>,
    /// Human sessions by how they browse: (kind, sessions, challenged or blocked).
    pub human_kinds: Vec<(&'static str, u64, u64)>,
    /// Low-and-slow scrapers by tool and by proxy rotation: (variant, runs, detected).
    pub scraper_variants: Vec<(&'static str, u64, u64)>,
}

fn tally(rows: &mut Vec<(&'static str, u64, u64)>, name: &'static str, hit: bool) {
    match rows.iter_mut().find(|r| r.0 == name) {
        Some(r) => {
            r.1 += 1;
            r.2 += u64::from(hit);
        }
        None => rows.push((name, 1, u64::from(hit))),
    }
}

impl Report {
    pub fn human_rate(&self) -> f64 {
        self.humans_acted_on as f64 / self.humans.max(1) as f64
    }

    pub fn bot_pass_rate(&self) -> f64 {
        let (runs, detected) = self.campaigns.iter().fold((0, 0), |(r, d), c| (r + c.1, d + c.2));
        (runs - detected) as f64 / runs.max(1) as f64
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
        for (name, n, acted) in &self.human_kinds {
            let _ = writeln!(s, "  humans {name:<52} {acted}/{n} challenged or blocked");
        }
        for (name, runs, detected) in &self.campaigns {
            let _ = writeln!(s, "bot campaign {name:<45} detected {detected}/{runs}");
        }
        for (name, runs, detected) in &self.scraper_variants {
            let _ = writeln!(s, "  low-and-slow {name:<52} detected {detected}/{runs}");
        }
        let _ = writeln!(s, "bot campaigns undetected: {:.1}% (target < 5%)", 100.0 * self.bot_pass_rate());
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
        tally(&mut human_kinds, kind, hit);
    }
    human_kinds.sort_by_key(|r| r.0);
    let mut scraper_variants = Vec::new();
    let mut campaigns = Vec::new();
    for (kind, name) in CAMPAIGNS.iter().enumerate() {
        let mut detected = 0;
        for run in 0..per_kind {
            let mut engine = Engine::new(policy.clone());
            // Human background traffic shares the worker with the attack: enough people for the
            // site's rendering share to be heard (`Rendering::WARM_UP` sessions), as on any site
            // with traffic; each person has one vote, signed in or not.
            for i in 0..BACKGROUND_HUMANS {
                let _ = human(&mut engine, &mut rng, 1_000_000 + i, start + i * 1_000);
            }
            let hit = if *name == LOW_AND_SLOW {
                let (hit, v) = low_and_slow(&mut engine, &mut rng, start + run * 7);
                for row in [Some(v.tool), Some(v.rotation), v.stack, Some(v.jar), v.traced].into_iter().flatten() {
                    tally(&mut scraper_variants, row, hit);
                }
                hit
            } else {
                campaign(&mut engine, &mut rng, kind, start + run * 7)
            };
            detected += u64::from(hit);
        }
        campaigns.push((*name, per_kind, detected));
    }
    scraper_variants.sort_by_key(|r| variant_order(r.0));
    Report { humans, humans_acted_on: acted, campaigns, human_kinds, scraper_variants }
}
