//! Building blocks that know nothing of requests: hashing, MACs and keys, CIDR sets, bounded
//! tables and memos, rolling windows, the counters table.

pub mod calendar;
pub mod fasthash;
pub mod iptable;
pub mod lru;
pub mod mac;
pub mod memo;
pub mod telemetry;
pub mod window;
