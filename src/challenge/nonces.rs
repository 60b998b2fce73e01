//! Single use of proof-of-work nonces: the store a solution is spent in.

use std::collections::HashMap;

/// Single use of proof-of-work nonces. In Envoy the shell backs this with shared data, so a
/// solution is spent for every worker at once; natively (tests, the CLI) a bounded map.
pub trait NonceStore {
    /// Spends `nonce` (whose challenge expires at `expires_ms`).
    fn consume(&mut self, nonce: &str, expires_ms: u64, now_ms: u64) -> Consume;
    /// Whether `nonce` is spent here already (a replay needs no word from the fleet).
    fn is_spent(&self, nonce: &str, expires_ms: u64) -> bool;
    /// Drops what has expired.
    fn sweep(&mut self, _now_ms: u64) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consume {
    Fresh,
    /// Fresh, and the oldest spent nonces made room for it (the store was full).
    FreshEvicting,
    Replayed,
    /// The store could not answer (failing): the solution is not accepted, and nothing counts
    /// against the client.
    Unavailable,
}

/// What the fleet's Redis said of a solution's nonce (`fleet.single_use`), before it is spent
/// in the Envoy's own store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetSpend {
    /// Spent now, first in the fleet.
    Fresh,
    /// Another Envoy spent it: a replay.
    Replayed,
    /// Redis could not say (down, slow, garbled): spent locally only, and taken only from a
    /// puzzle issued within `fleet.local_puzzle_seconds`.
    Unconfirmed,
    /// Redis was not asked: no room for another spend on its way, or the call was lost with
    /// the request that made it (a copy of this one). The solution is not judged: the client
    /// sends it again.
    Busy,
}

/// The per-engine store: nonces until their challenge expires, at most `cap` of them; when full,
/// the expired and then the soonest-expiring make room (a full store must not refuse honest
/// solvers).
pub struct MemoryNonces {
    spent: HashMap<String, u64>,
    cap: usize,
}

impl MemoryNonces {
    pub fn new(cap: usize) -> Self {
        MemoryNonces { spent: HashMap::new(), cap: cap.max(1) }
    }
}

impl NonceStore for MemoryNonces {
    fn consume(&mut self, nonce: &str, expires_ms: u64, now_ms: u64) -> Consume {
        if self.spent.contains_key(nonce) {
            return Consume::Replayed;
        }
        let mut outcome = Consume::Fresh;
        if self.spent.len() >= self.cap {
            self.sweep(now_ms);
        }
        if self.spent.len() >= self.cap {
            let oldest = self.spent.iter().min_by_key(|(_, exp)| **exp).map(|(n, _)| n.clone());
            if let Some(n) = oldest {
                self.spent.remove(&n);
            }
            outcome = Consume::FreshEvicting;
        }
        self.spent.insert(nonce.to_string(), expires_ms);
        outcome
    }

    fn is_spent(&self, nonce: &str, _expires_ms: u64) -> bool {
        self.spent.contains_key(nonce)
    }

    fn sweep(&mut self, now_ms: u64) {
        self.spent.retain(|_, exp| *exp > now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_nonce_store_makes_room_instead_of_refusing() {
        let mut store = MemoryNonces::new(2);
        assert_eq!(store.consume("a", 10_000, 0), Consume::Fresh);
        assert_eq!(store.consume("b", 20_000, 0), Consume::Fresh);
        assert_eq!(store.consume("c", 30_000, 0), Consume::FreshEvicting);
        assert_eq!(store.consume("c", 30_000, 0), Consume::Replayed);
        assert_eq!(store.consume("b", 20_000, 0), Consume::Replayed, "the soonest-expiring went first");
    }
}
