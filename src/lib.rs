//! botgate: a bot-mitigation filter for Envoy, as a pure engine and a thin proxy-wasm shell.
//!
//! A request's way through botgate, in request order (one folder per stage; ARCHITECTURE.md
//! has the picture):
//!
//! 1. `shell`     Envoy's callbacks: read the head, strip client `x-botgate-*` headers (wasm only)
//! 2. `request`   the request view: head, path, fetch kind and origin, cookies, user agent
//! 3. `identity`  who it is from: client address (trusted proxies, IPv6 prefix), later its session
//! 4. `checks`    on the head, once: allow tier, threat intel (`decision::ruling`), per-client limit
//! 5. `engine`    waits as an explicit state: for lookups, then the body (`engine::step`)
//! 6. `checks`    the detector (fingerprints, near-duplicate bodies), request sequences
//! 7. `score`     signals from head, handshake, session and campaign view, combined with reasons
//! 8. `decision`  the ruling: block tier, then the endpoint's challenge ladder (`decision::ruling`)
//! 9. `challenge` act on it: clearance, puzzles, step-up, tokens, pages, the page's beacon token,
//!    botgate's own endpoints; then the global limit sheds the most suspicious (`checks::limits`)
//! 10. `decision` the record, the local reply, the evidence (verdict headers and access log)
//! 11. `shell`    carry it out: reply or forward, then feed the response status back, and add the
//!     beacon's script to an HTML page (`challenge::inject`)
//!
//! Layers, lowest first: `base` (building blocks), `formats` (robots.txt, HTTP message
//! signatures and key directories: what comes from outside) and `request`, then `policy` (validated
//! settings), then the stages (`identity`; `checks`, `score`, `challenge`; `decision`), then
//! `engine`, which runs them; `shell` and `lab` (native only: the simulator) drive the engine.
//! A lower layer never imports a higher one (`tests/layers.rs`).
//!
//! The engine never calls the host: it is driven by plain values (a head, a clock, a body,
//! lookup answers), so it is tested natively through `engine::drive`, the one way requests are
//! sent by tests, the simulator, the fuzz targets and the benchmarks.

pub mod base;
pub mod challenge;
pub mod checks;
pub mod decision;
pub mod engine;
pub mod formats;
pub mod identity;
#[cfg(not(target_arch = "wasm32"))]
pub mod lab;
pub mod policy;
pub mod request;
pub mod score;

#[cfg(target_arch = "wasm32")]
mod shell;
