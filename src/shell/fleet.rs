//! The fleet's shared counts ([`crate::checks::fleet`]) through webdis: once a second each
//! engine's counts since the last sync go out as one call from the root context, and the
//! fleet's totals come back. A call that cannot be made keeps its counts for the next sync; one
//! that fails on its way (Redis or webdis down, a timeout: Envoy answers 504) drops them, as
//! Redis may have counted them. The worker's own limit applies meanwhile.

use crate::checks::fleet::{self, Batch};
use crate::engine::Engines;
use proxy_wasm::hostcalls;
use std::collections::HashMap;
use std::time::Duration;

/// Syncs on their way: callout token → (engine, what it carries).
#[derive(Default)]
pub struct FleetCalls {
    sent: HashMap<u32, (usize, Batch)>,
}

impl FleetCalls {
    /// Sends each engine's counts, one call per engine (none while its last is on its way).
    pub fn sync(&mut self, engines: &mut Engines, now: u64) {
        for i in 0..engines.len() {
            if self.sent.values().any(|(e, _)| *e == i) {
                continue;
            }
            let Some(engine) = engines.get(i) else { continue };
            let Some(config) = engine.policy().fleet.clone() else { continue };
            let window_ms = engine.policy().ip_rate_limit.map_or(60_000, |l| l.window_ms);
            let Some(batch) = engine.fleet_batch(now) else { continue };
            let body = fleet::webdis_body(&batch, window_ms);
            let headers = vec![
                (":method", "POST"),
                (":path", "/"),
                (":authority", config.authority.as_str()),
                ("content-type", "text/plain"),
            ];
            let timeout = Duration::from_millis(config.timeout_ms);
            match hostcalls::dispatch_http_call(&config.cluster, headers, Some(body.as_bytes()), vec![], timeout) {
                Ok(token) => {
                    self.sent.insert(token, (i, batch));
                }
                Err(e) => {
                    log::warn!("botgate: fleet: cannot call cluster {:?}: {e:?}", config.cluster);
                    engine.fleet_unsent(batch);
                }
            }
        }
    }

    /// A sync's answer; `false` if the token is not a sync's.
    pub fn on_response(&mut self, token: u32, status: Option<u32>, body: &[u8], engines: &mut Engines) -> bool {
        let Some((i, batch)) = self.sent.remove(&token) else { return false };
        let totals = (status == Some(200)).then(|| fleet::parse_totals(body)).flatten();
        if totals.is_none() {
            log::debug!("botgate: fleet sync failed (status {status:?}); counts kept for the next");
        }
        if let Some(engine) = engines.get(i) {
            engine.fleet_answer(batch, totals);
        }
        true
    }
}
