//! `fleet`: where the Envoys of a fleet share state (a Redis behind Debian's `webdis`, its HTTP
//! front end, reached through an Envoy cluster): per-client counts for the limits marked
//! fleet-wide (`ip_rate_limit.fleet: true`), spent proof-of-work solutions (`single_use`), and
//! sessions that failed their challenges (`share_failures`).
//!
//! ```json
//! "fleet": {"cluster": "fleet", "timeout_ms": 500, "single_use": true, "share_failures": true,
//!           "local_puzzle_seconds": 30},
//! "ip_rate_limit": {"max_requests": 40, "window_seconds": 60, "fleet": true}
//! ```
//!
//! While Redis cannot confirm a solution is fresh, a solution is spent in its Envoy only, and
//! only a puzzle issued in the last `local_puzzle_seconds` is taken: the window in which one
//! solution could be replayed on every Envoy shrinks to that.

use super::reader::Obj;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    pub cluster: String,
    /// The `:authority` of the calls (the cluster's name by default).
    pub authority: String,
    pub timeout_ms: u64,
    /// A solution accepted by one Envoy is refused by every other.
    pub single_use: bool,
    /// A session that failed its challenges is blocked by every Envoy.
    pub share_failures: bool,
    /// The lifetime of a puzzle whose single use Redis cannot confirm (ms).
    pub local_puzzle_ms: u64,
}

pub(super) fn read(o: Obj<'_>) -> Option<Fleet> {
    let cluster = o.string("cluster").map(str::to_string);
    let authority = o.string("authority").map(str::to_string);
    let timeout_ms = o.u64_in("timeout_ms", 500, 10, 5_000);
    let single_use = o.bool("single_use", true);
    let share_failures = o.bool("share_failures", true);
    let local_puzzle_ms = o.u64_in("local_puzzle_seconds", 30, 5, 3_600) * 1000;
    let path = o.child_path("cluster");
    let ctx = o.ctx;
    o.finish();
    let Some(cluster) = cluster.filter(|c| !c.is_empty()) else {
        ctx.error(&path, "the Envoy cluster of the fleet's webdis is required");
        return None;
    };
    Some(Fleet {
        authority: authority.unwrap_or_else(|| cluster.clone()),
        cluster,
        timeout_ms,
        single_use,
        share_failures,
        local_puzzle_ms,
    })
}
