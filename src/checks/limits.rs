//! Global and per-client rate limits as rolling windows, per worker.
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

    /// Admits the request or says which limit it hit. The per-client limit is checked first,
    /// so one client's excess does not spend the global budget. `static_asset`: the path is a
    /// static asset's, which a limit counts only when told to.
    pub fn check(&mut self, ip: Option<IpAddr>, static_asset: bool, now: u64) -> Result<(), Limited> {
        let counted = |l: &RateLimit| l.static_assets || !static_asset;
        if let (Some(limit), Some(ip)) = (self.per_ip, ip) {
            let (table, max) = if counted(&limit) {
                (&mut self.clients, limit.max_requests)
            } else {
                (&mut self.assets, limit.max_requests.saturating_mul(ASSET_ALLOWANCE))
            };
            let window = table.get_or_insert_with(ip, || RollingWindow::for_limit(max));
            window.admit(now, max, limit.window_ms).map_err(|r| limited(Scope::Ip, r))?;
        }
        if let Some((limit, window)) = self.global.as_mut().filter(|(l, _)| counted(l)) {
            window.admit(now, limit.max_requests, limit.window_ms).map_err(|r| limited(Scope::Global, r))?;
        }
        Ok(())
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
    fn per_ip_then_global() {
        let mut rl = RateLimiter::new(
            Some(RateLimit { max_requests: 5, window_ms: 1000, static_assets: true }),
            Some(RateLimit { max_requests: 2, window_ms: 1000, static_assets: true }),
            100,
        );
        assert!(rl.check(ip("1.1.1.1"), false, 0).is_ok());
        assert!(rl.check(ip("1.1.1.1"), false, 0).is_ok());
        assert_eq!(rl.check(ip("1.1.1.1"), false, 0).unwrap_err().scope, Scope::Ip);
        assert!(rl.check(ip("2.2.2.2"), false, 0).is_ok());
        assert!(rl.check(ip("2.2.2.2"), false, 0).is_ok());
        assert!(rl.check(ip("3.3.3.3"), false, 0).is_ok());
        assert_eq!(rl.check(ip("4.4.4.4"), false, 0).unwrap_err().scope, Scope::Global);
    }

    #[test]
    fn a_million_addresses_stay_under_the_cap() {
        let mut rl = RateLimiter::new(
            None,
            Some(RateLimit { max_requests: 40, window_ms: 60_000, static_assets: true }),
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
