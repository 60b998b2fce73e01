//! Fleet-wide per-client counts: each worker counts its own requests, and once a second sends
//! what it counted since ([`FleetCounts::take_batch`]) to a shared Redis, which answers with the
//! fleet's totals ([`FleetCounts::absorb`]). A client over the limit across every worker of
//! every Envoy is limited here, within about a second's traffic of the exact moment.
//!
//! Counts are per fixed window (`window_ms`, aligned to the epoch, as Redis keys them), and
//! every request counts, refused ones too: a client that keeps flooding stays limited. When
//! Redis cannot be reached, the worker's own rolling limit still applies and the unsent counts
//! are kept (bounded) for the next sync: nothing is lost, and the fleet converges when it is back.

use crate::base::lru::Lru;
use crate::formats::webdis;
use std::collections::HashMap;
use std::net::IpAddr;

/// Clients counted between two syncs, at most (a flood of new addresses beyond it is counted
/// locally only until the next sync makes room).
pub const MAX_PENDING: usize = 4096;
/// Clients sent in one sync, at most: all of them, so a flood of new addresses must bring more
/// than [`MAX_PENDING`] a second to a worker before any client goes uncounted fleet-wide (a call
/// is then about 200 KB).
pub const MAX_BATCH: usize = MAX_PENDING;

/// What one sync sends: whose counts (the policy or profile), the window, and each client's
/// count since the last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub scope: String,
    pub window: u64,
    pub counts: Vec<(IpAddr, u32)>,
}

pub struct FleetCounts {
    window_ms: u64,
    max: u32,
    pending: HashMap<IpAddr, u32>,
    pending_window: u64,
    /// Each client's fleet total, as Redis last said, and for which window.
    totals: Lru<IpAddr, (u64, u64)>,
    /// The policy or profile these counts are for (part of the key: a profile's limit is its own).
    scope: String,
    /// Requests of clients the pending table had no room for (counted by this worker only).
    pub untracked: u64,
}

impl FleetCounts {
    pub fn new(window_ms: u64, max: u32, cap: usize) -> Self {
        FleetCounts {
            window_ms: window_ms.max(1),
            max,
            pending: HashMap::new(),
            pending_window: 0,
            totals: Lru::new(cap.max(1)),
            scope: String::from("base"),
            untracked: 0,
        }
    }

    /// Names the profile these counts are for (the base policy's are `base`).
    pub fn set_scope(&mut self, scope: &str) {
        self.scope = scope_name(scope);
    }

    fn window(&self, now: u64) -> u64 {
        now / self.window_ms
    }

    /// Counts a request of `client` at `now`; `Some(ms)` until the window ends when the fleet's
    /// count (its last total plus what this worker counted since) is over the limit.
    pub fn count(&mut self, client: IpAddr, now: u64) -> Option<u64> {
        let window = self.window(now);
        if window != self.pending_window {
            // Counts of a window gone by no longer limit anyone.
            self.pending.clear();
            self.pending_window = window;
        }
        let room = self.pending.len() < MAX_PENDING;
        let mine = match self.pending.get_mut(&client) {
            Some(n) => {
                *n = n.saturating_add(1);
                *n
            }
            None if room => {
                self.pending.insert(client, 1);
                1
            }
            None => {
                self.untracked += 1;
                1
            }
        };
        let synced = self.totals.get_mut(&client).filter(|(w, _)| *w == window).map_or(0, |(_, n)| *n);
        (synced.saturating_add(u64::from(mine)) > u64::from(self.max)).then(|| (window + 1) * self.window_ms - now)
    }

    /// What to send now (up to [`MAX_BATCH`] clients), taken out of the pending counts.
    pub fn take_batch(&mut self, now: u64) -> Option<Batch> {
        if self.pending.is_empty() || self.pending_window != self.window(now) {
            self.pending.clear();
            return None;
        }
        let clients: Vec<IpAddr> = self.pending.keys().take(MAX_BATCH).copied().collect();
        let counts = clients.into_iter().filter_map(|c| self.pending.remove(&c).map(|n| (c, n))).collect();
        Some(Batch { scope: self.scope.clone(), window: self.pending_window, counts })
    }

    /// Redis's totals for a batch (in its order).
    pub fn absorb(&mut self, batch: &Batch, totals: &[u64]) {
        for ((client, _), total) in batch.counts.iter().zip(totals) {
            *self.totals.get_or_insert_with(*client, || (batch.window, 0)) = (batch.window, *total);
        }
    }

    /// A batch that never left (the call could not be made): its counts wait for the next sync
    /// (in the same window). One that left and got no answer is dropped instead: Redis may have
    /// counted it, and counting it twice would refuse honest clients.
    pub fn restore(&mut self, batch: Batch) {
        if batch.window != self.pending_window {
            return;
        }
        for (client, n) in batch.counts {
            if self.pending.len() < MAX_PENDING || self.pending.contains_key(&client) {
                *self.pending.entry(client).or_default() += n;
            }
        }
    }

    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }
}

/// A policy's or profile's name as the fleet's Redis keys carry it (letters, digits, `-`, `_`).
pub fn scope_name(profile: &str) -> String {
    profile.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).collect()
}

/// The Lua script one sync runs: each client's key moved up by its count, kept two windows.
const SCRIPT: &str = "local r={} for i=1,#KEYS do r[i]=redis.call('INCRBY',KEYS[i],ARGV[i]) \
                      redis.call('PEXPIRE',KEYS[i],ARGV[#ARGV]) end return r";

/// A batch as webdis's POST body: `EVAL/<script>/<n>/<keys…>/<counts…>/<ttl>`.
pub fn webdis_body(batch: &Batch, window_ms: u64) -> String {
    let keys: Vec<String> =
        batch.counts.iter().map(|(c, _)| format!("botgate:rl:{}:{c}:{}", batch.scope, batch.window)).collect();
    let mut args: Vec<String> = batch.counts.iter().map(|(_, n)| n.to_string()).collect();
    args.push((2 * window_ms).to_string());
    webdis::eval_body(SCRIPT, &keys, &args)
}

/// webdis's answer, `{"EVAL": [totals…]}`; anything else is no answer.
pub fn parse_totals(body: &[u8]) -> Option<Vec<u64>> {
    webdis::eval_array(body)?.iter().map(serde_json::Value::as_u64).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_over_the_fleets_total_is_limited_until_its_window_ends() {
        let mut f = FleetCounts::new(60_000, 10, 100);
        let c = ip("203.0.113.1");
        for i in 0..4 {
            assert_eq!(f.count(c, 1_000 + i), None);
        }
        let batch = f.take_batch(2_000).unwrap();
        assert_eq!(batch.counts, vec![(c, 4)]);
        // Another Envoy counted 6 more: the fleet's total is 10.
        f.absorb(&batch, &[10]);
        assert_eq!(f.count(c, 3_000), Some(57_000), "the 11th in the fleet");
        assert_eq!(f.count(c, 60_000), None, "a new window");
    }

    #[test]
    fn counts_that_could_not_be_sent_wait_for_the_next_sync() {
        let mut f = FleetCounts::new(60_000, 100, 100);
        let c = ip("203.0.113.2");
        f.count(c, 1_000);
        f.count(c, 1_001);
        let batch = f.take_batch(1_500).unwrap();
        f.count(c, 1_600);
        f.restore(batch);
        assert_eq!(f.take_batch(2_000).unwrap().counts, vec![(c, 3)]);
        assert!(f.take_batch(2_500).is_none());
    }

    #[test]
    fn a_flood_of_new_addresses_cannot_grow_the_pending_counts_without_bound() {
        let mut f = FleetCounts::new(60_000, 100, 100);
        for i in 0..(MAX_PENDING as u32 + 500) {
            f.count(IpAddr::from(i.to_be_bytes()), 1_000);
        }
        assert_eq!(f.pending.len(), MAX_PENDING);
        assert_eq!(f.take_batch(1_000).unwrap().counts.len(), MAX_BATCH);
        assert_eq!(f.untracked, 500);
    }

    #[test]
    fn a_batch_is_one_eval_for_webdis_and_its_answer_the_totals() {
        let batch =
            Batch { scope: "base".into(), window: 7, counts: vec![(ip("203.0.113.1"), 3), (ip("2001:db8::"), 1)] };
        let body = webdis_body(&batch, 60_000);
        let parts: Vec<&str> = body.split('/').collect();
        assert_eq!(parts[0], "EVAL");
        assert_eq!(
            &parts[2..],
            [
                "2",
                "botgate%3Arl%3Abase%3A203.0.113.1%3A7",
                "botgate%3Arl%3Abase%3A2001%3Adb8%3A%3A%3A7",
                "3",
                "1",
                "120000"
            ]
        );
        assert_eq!(parse_totals(br#"{"EVAL":[12,1]}"#), Some(vec![12, 1]));
        for bad in [&br#"{"EVAL":null}"#[..], b"<html>", br#"{"EVAL":["x"]}"#] {
            assert_eq!(parse_totals(bad), None);
        }
    }
}
