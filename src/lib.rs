//! botgate: a bot-mitigation filter for Envoy, as a pure engine and a thin proxy-wasm shell.
//!
//! The engine (every module but `filter`) is plain Rust driven by plain values: a request view,
//! a clock reading, lookup answers. It never calls the host, so it is tested natively. The shell
//! (`filter`, wasm only) turns Envoy callbacks into engine calls and engine steps into host calls.

pub mod allow;
pub mod behaviour;
pub mod challenge;
pub mod decide;
pub mod detect;
pub mod engine;
pub mod fasthash;
pub mod iptable;
pub mod lru;
pub mod mac;
pub mod pages;
pub mod paths;
pub mod policy;
pub mod pow;
pub mod ratelimit;
pub mod sequence;
pub mod session;
pub mod signals;
pub mod similarity;
pub mod simulate;
pub mod telemetry;
pub mod tls;
pub mod token;
pub mod ua;
pub mod visitor;
pub mod window;

#[cfg(target_arch = "wasm32")]
mod filter;
