//! The fleet's shared state through webdis, once a second from the root context, one call per
//! engine and kind:
//! - counts ([`crate::checks::fleet`]): each engine's counts since the last sync go out and the
//!   fleet's totals come back. A call that cannot be made keeps its counts for the next sync;
//!   one that fails on its way (Redis or webdis down, a timeout: Envoy answers 504) drops them,
//!   as Redis may have counted them. The worker's own limit applies meanwhile.
//! - failed sessions ([`crate::checks::failed_sessions`]): the engine's new failures go out and
//!   the fleet's come back; a round without an answer keeps its failures for the next.

use crate::checks::failed_sessions::{self, Round};
use crate::checks::fleet::{self, Batch};
use crate::engine::{Engine, Engines};
use crate::policy::fleet::Fleet;
use proxy_wasm::hostcalls;
use std::collections::HashMap;
use std::time::Duration;

/// What a call carries.
enum Carried {
    Counts(Batch),
    Failures(Round),
}

/// Calls on their way: callout token → (engine, what it carries).
#[derive(Default)]
pub struct FleetCalls {
    sent: HashMap<u32, (usize, Carried)>,
}

impl FleetCalls {
    /// Sends each engine's counts and failures, one call per engine and kind (none while its
    /// last is on its way).
    pub fn sync(&mut self, engines: &mut Engines, now: u64) {
        for i in 0..engines.len() {
            let Some(engine) = engines.get(i) else { continue };
            let Some(config) = engine.policy().fleet.clone() else { continue };
            let window_ms = engine.policy().ip_rate_limit.map_or(60_000, |l| l.window_ms);
            let session_ms = engine.policy().session.ttl_ms;
            if !self.busy(i, true) {
                if let Some(batch) = engine.fleet_batch(now) {
                    let body = fleet::webdis_body(&batch, window_ms);
                    self.send(engine, i, &config, &body, Carried::Counts(batch), now);
                }
            }
            if !self.busy(i, false) {
                if let Some(round) = engine.failures_round() {
                    let body = failed_sessions::webdis_body(&round, session_ms);
                    self.send(engine, i, &config, &body, Carried::Failures(round), now);
                }
            }
        }
    }

    /// Whether the engine's last call of this kind (`counts`, or failures) is on its way.
    fn busy(&self, engine: usize, counts: bool) -> bool {
        self.sent.values().any(|(e, c)| *e == engine && matches!(c, Carried::Counts(_)) == counts)
    }

    fn send(&mut self, engine: &mut Engine, i: usize, config: &Fleet, body: &str, carried: Carried, now: u64) {
        let headers = vec![
            (":method", "POST"),
            (":path", "/"),
            (":authority", config.authority.as_str()),
            ("content-type", "text/plain"),
        ];
        let timeout = Duration::from_millis(config.timeout_ms);
        match hostcalls::dispatch_http_call(&config.cluster, headers, Some(body.as_bytes()), vec![], timeout) {
            Ok(token) => {
                self.sent.insert(token, (i, carried));
            }
            Err(e) => {
                log::warn!("botgate: fleet: cannot call cluster {:?}: {e:?}", config.cluster);
                match carried {
                    Carried::Counts(batch) => engine.fleet_unsent(batch),
                    Carried::Failures(round) => engine.failures_answer(round, None, now),
                }
            }
        }
    }

    /// A call's answer; `false` if the token is not one of these calls.
    pub fn on_response(
        &mut self,
        token: u32,
        status: Option<u32>,
        body: &[u8],
        engines: &mut Engines,
        now: u64,
    ) -> bool {
        let Some((i, carried)) = self.sent.remove(&token) else { return false };
        let Some(engine) = engines.get(i) else { return true };
        match carried {
            Carried::Counts(batch) => {
                let totals = (status == Some(200)).then(|| fleet::parse_totals(body)).flatten();
                if totals.is_none() {
                    log::debug!("botgate: fleet sync failed (status {status:?}); counts kept for the next");
                }
                engine.fleet_answer(batch, totals);
            }
            Carried::Failures(round) => {
                let pulled = (status == Some(200)).then(|| failed_sessions::parse_pulled(body)).flatten();
                if pulled.is_none() {
                    log::debug!("botgate: fleet failures round failed (status {status:?}); kept for the next");
                }
                engine.failures_answer(round, pulled, now);
            }
        }
        true
    }
}
