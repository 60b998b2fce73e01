//! Global and per-client rate limits as rolling windows, per worker.
//!
//! The per-client limit is checked on the head, before anything else is spent on the request.
//! The global limit caps what reaches the upstream and is checked last, once the request is
//! scored: as its budget fills, the most suspicious requests are shed first (see
//! [`RateLimiter::shed`]), so a flood refuses itself before it refuses whoever arrives next.
//!
//! Envoy runs one VM per worker thread, so these limits hold per worker: size them as the
//! desired total divided by `--concurrency` (or run one worker where exactness matters).

use crate::base::lru::Lru;
use crate::base::window::{Refused, RollingWindow};
use crate::policy::RateLimit;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Ip,
    /// The per-address limit counted across the fleet ([`super::fleet`]).
    Fleet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub scope: Scope,
    pub retry_after_ms: u64,
}

pub struct RateLimiter {
    global: Option<(RateLimit, RollingWindow)>,
    per_ip: Option<RateLimit>,
    clients: Lru<IpAddr, RollingWindow>,
    /// Each client's static assets, when its limit does not count them: a window of their own.
    assets: Lru<IpAddr, RollingWindow>,
}

/// A client's static assets, when not counted with its pages, are limited at this many times its
/// page limit: a person's heavy pages pass, a flood of them (or of pages the upstream serves at
/// asset-looking paths) does not go unlimited.
pub const ASSET_ALLOWANCE: u32 = 10;

impl RateLimiter {
    pub fn new(global: Option<RateLimit>, per_ip: Option<RateLimit>, max_clients: usize) -> Self {
        RateLimiter {
            global: global.map(|g| (g, RollingWindow::for_limit(g.max_requests))),
            per_ip,
            clients: Lru::new(max_clients),
            assets: Lru::new(max_clients),
        }
    }

    /// Admits the request under its client's limit or says when to come back. `static_asset`:
    /// the path is a static asset's, which the limit counts only when told to.
    pub fn check(&mut self, ip: Option<IpAddr>, static_asset: bool, now: u64) -> Result<(), Limited> {
        let (Some(limit), Some(ip)) = (self.per_ip, ip) else { return Ok(()) };
        let (table, max) = if limit.static_assets || !static_asset {
            (&mut self.clients, limit.max_requests)
        } else {
            (&mut self.assets, limit.max_requests.saturating_mul(ASSET_ALLOWANCE))
        };
        let window = table.get_or_insert_with(ip, || RollingWindow::for_limit(max));
        window.admit(now, max, limit.window_ms).map_err(|r| limited(Scope::Ip, r))
    }

    /// Admits a request bound for the upstream under the global limit, by its `score`: below
    /// [`SHED_FROM`] of the budget everyone is admitted; above it a request must score under a
    /// bar that falls from 1 to 0 as the budget runs out (see [`bar`]). A flood scoring 0.4
    /// stops itself at two thirds of the budget and leaves the rest to people scoring near 0.
    /// Only what is admitted is counted, so the shed part of a flood spends nothing.
    pub fn shed(&mut self, score: f64, static_asset: bool, now: u64) -> Result<(), Limited> {
        let Some((limit, window)) = self.global.as_mut() else { return Ok(()) };
        if static_asset && !limit.static_assets {
            return Ok(());
        }
        let load = window.load(now, limit.max_requests, limit.window_ms);
        if load >= SHED_FROM && score >= bar(load) {
            let retry_after_ms = window.retry_after(now, limit.window_ms);
            return Err(Limited { scope: Scope::Global, retry_after_ms });
        }
        window.admit(now, limit.max_requests, limit.window_ms).map_err(|r| limited(Scope::Global, r))
    }

    /// Forgets clients idle for a whole window.
    pub fn sweep(&mut self, now: u64, max: usize) -> usize {
        let Some(limit) = self.per_ip else { return 0 };
        let idle = |w: &RollingWindow| w.last().is_none_or(|t| t + limit.window_ms <= now);
        self.clients.sweep(idle, max) + self.assets.sweep(idle, max)
    }

    pub fn tracked_clients(&self) -> usize {
        self.clients.len()
    }

    pub fn evictions(&self) -> u64 {
        self.clients.evictions() + self.assets.evictions()
    }

    /// Estimated bytes: table slots plus each window's log.
    pub fn heap_bytes(&self) -> usize {
        let log = |max: u32| 64 + (max.min(crate::base::window::EXACT_LIMIT) as usize) * 8;
        let max = self.per_ip.map_or(0, |l| l.max_requests);
        self.clients.len() * log(max) + self.assets.len() * log(max.saturating_mul(ASSET_ALLOWANCE))
    }
}

/// Share of the global budget open to any score.
pub const SHED_FROM: f64 = 0.5;

/// The score a request must stay under at `load` (the share of the global budget spent): the
/// square of the share left above [`SHED_FROM`], so the bar falls fast at first: a suspicious
/// request is shed early, a clean one (scoring near 0) keeps its place to the end.
fn bar(load: f64) -> f64 {
    let left = ((1.0 - load) / (1.0 - SHED_FROM)).clamp(0.0, 1.0);
    left * left
}

fn limited(scope: Scope, r: Refused) -> Limited {
    Limited { scope, retry_after_ms: r.retry_after_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn per_client_limits_are_apart() {
        let mut rl = RateLimiter::new(
            None,
            Some(RateLimit { max_requests: 2, window_ms: 1000, static_assets: true, throttle: false, fleet: false }),
            100,
        );
        assert!(rl.check(ip("1.1.1.1"), false, 0).is_ok());
        assert!(rl.check(ip("1.1.1.1"), false, 0).is_ok());
        assert_eq!(rl.check(ip("1.1.1.1"), false, 0).unwrap_err().scope, Scope::Ip);
        assert!(rl.check(ip("2.2.2.2"), false, 0).is_ok());
        assert!(rl.check(ip("1.1.1.1"), false, 1000).is_ok());
    }

    #[test]
    fn the_global_limit_sheds_by_score_as_it_fills() {
        let global =
            RateLimit { max_requests: 100, window_ms: 60_000, static_assets: false, throttle: false, fleet: false };
        let mut rl = RateLimiter::new(Some(global), None, 10);
        let suspicious = (0..200).filter(|&i| rl.shed(0.4, false, i).is_ok()).count();
        assert_eq!(suspicious, 69, "a flood scoring 0.4 stops itself near two thirds");
        let clean = (0..200).filter(|&i| rl.shed(0.0, false, 1_000 + i).is_ok()).count();
        assert_eq!(clean, 31, "the rest of the budget is left to clean requests, and no more");
        assert!(rl.shed(0.0, true, 2_000).is_ok(), "static assets are not counted here");
        assert_eq!(rl.shed(0.0, false, 2_000).unwrap_err().retry_after_ms, 58_000, "when the first leaves");
        assert!(rl.shed(0.9, false, 62_000).is_ok(), "the window rolls on");
    }

    #[test]
    fn a_million_addresses_stay_under_the_cap() {
        let mut rl = RateLimiter::new(
            None,
            Some(RateLimit { max_requests: 40, window_ms: 60_000, static_assets: true, throttle: false, fleet: false }),
            10_000,
        );
        for i in 0u32..1_000_000 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(rl.check(Some(addr), false, u64::from(i / 1000)).is_ok());
        }
        assert_eq!(rl.tracked_clients(), 10_000);
        assert_eq!(rl.evictions(), 990_000);
        assert_eq!(rl.sweep(1_000_000, usize::MAX), 10_000);
    }
}
