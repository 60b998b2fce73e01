//! Impossible request sequences: steps no documented client flow takes.
//!
//! A `requires_prior` rule is checked against one bit per rule in the session (set when the prior
//! step is seen), so sessions stay small. A `max_per_second` rule counts matching requests per
//! client address in a one-second rolling window.

use crate::base::lru::Lru;
use crate::base::window::RollingWindow;
use crate::identity::session::Session;
use crate::policy::{SequenceCheck, SequenceRule};
use std::net::IpAddr;

pub struct Sequences {
    rules: Vec<SequenceRule>,
    rates: Lru<(usize, IpAddr), RollingWindow>,
}

impl Sequences {
    pub fn new(rules: Vec<SequenceRule>, max_clients: usize) -> Self {
        Sequences { rules: rules.into_iter().take(32).collect(), rates: Lru::new(max_clients) }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Records the request in the session and names the first rule it breaks.
    pub fn check(
        &mut self,
        session: &mut Session,
        method: &[u8],
        path: &[u8],
        ip: Option<IpAddr>,
        now: u64,
    ) -> Option<&str> {
        let mut broken = None;
        for (i, rule) in self.rules.iter().enumerate() {
            let bit = 1u32 << i;
            let violated = rule.when.matches(method, path)
                && match &rule.check {
                    SequenceCheck::RequiresPrior(_) => session.seen_steps & bit == 0,
                    SequenceCheck::MaxPerSecond(max) => ip.is_some_and(|ip| {
                        let w = self.rates.get_or_insert_with((i, ip), || RollingWindow::for_limit(*max + 1));
                        w.record(now, 1000, *max as usize + 1) > *max
                    }),
                };
            if let SequenceCheck::RequiresPrior(prior) = &rule.check {
                if prior.matches(method, path) {
                    session.seen_steps |= bit;
                }
            }
            if violated && broken.is_none() {
                broken = Some(rule.name.as_str());
            }
        }
        broken
    }

    pub fn sweep(&mut self, now: u64, max: usize) -> usize {
        self.rates.sweep(|w| w.last().is_none_or(|t| t + 1000 <= now), max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::plane_defaults;

    #[test]
    fn checkout_needs_a_cart_and_logins_have_a_speed_limit() {
        let mut seq = Sequences::new(plane_defaults(), 100);
        let mut s = Session::default();
        let ip = "192.0.2.1".parse().ok();
        assert_eq!(seq.check(&mut s, b"POST", b"/checkout", ip, 0), Some("checkout_without_cart"));
        assert_eq!(seq.check(&mut s, b"GET", b"/cart", ip, 1), None);
        assert_eq!(seq.check(&mut s, b"POST", b"/checkout", ip, 2), None);
        let hits = (0..600).filter(|i| seq.check(&mut s, b"POST", b"/login", ip, 10 + i / 2).is_some()).count();
        assert_eq!(hits, 100, "500 per second pass, the rest break the rule");
    }
}
