//! `fleet`: where the Envoys of a fleet share their per-client counts (a Redis behind Debian's
//! `webdis`, its HTTP front end, reached through an Envoy cluster), and which limits are
//! fleet-wide (`ip_rate_limit.fleet: true`).
//!
//! ```json
//! "fleet": {"cluster": "fleet", "timeout_ms": 500},
//! "ip_rate_limit": {"max_requests": 40, "window_seconds": 60, "fleet": true}
//! ```

use super::reader::Obj;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    pub cluster: String,
    /// The `:authority` of the calls (the cluster's name by default).
    pub authority: String,
    pub timeout_ms: u64,
}

pub(super) fn read(o: Obj<'_>) -> Option<Fleet> {
    let cluster = o.string("cluster").map(str::to_string);
    let authority = o.string("authority").map(str::to_string);
    let timeout_ms = o.u64_in("timeout_ms", 500, 10, 5_000);
    let path = o.child_path("cluster");
    let ctx = o.ctx;
    o.finish();
    let Some(cluster) = cluster.filter(|c| !c.is_empty()) else {
        ctx.error(&path, "the Envoy cluster of the fleet's webdis is required");
        return None;
    };
    Some(Fleet { authority: authority.unwrap_or_else(|| cluster.clone()), cluster, timeout_ms })
}
