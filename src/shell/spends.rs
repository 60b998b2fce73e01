//! Solutions spent in the fleet's Redis ([`crate::engine::spends`]): one `SET … NX` through
//! webdis per nonce, from the context of the request that submitted it. Requests submitting the
//! same nonce on this worker meanwhile join it (the answer lets them all go to this Envoy's own
//! store, where one wins). Envoy ends a call at the fleet's `timeout_ms`; a call that fails
//! (Redis down, a timeout, a garbled reply) is an answer too
//! ([`crate::challenge::nonces::FleetSpend::Unconfirmed`]). A spend this worker cannot wait for
//! (no room, or the request that made the call left and Envoy cancelled it) is answered
//! [`Answer::NotFound`]: not judged, sent again by the client. Never unconfirmed, or a flood of
//! copies would let one through on every Envoy.

use super::callouts::{Asked, Finished};
use crate::engine::lookups::{Answer, Lookup};
use crate::engine::spends;
use crate::formats::webdis;
use crate::policy::fleet::Fleet;
use proxy_wasm::hostcalls;
use std::collections::HashMap;
use std::time::Duration;

/// Spends on their way per worker (calls whose owner left aside); past it, a solution is not
/// judged until it is sent again.
const MAX_IN_FLIGHT: usize = 256;
/// Requests one spend may hold waiting.
const MAX_WAITERS: usize = 16;

struct InFlight {
    token: u32,
    waiters: Vec<u32>,
    started_ms: u64,
    deadline_ms: u64,
    /// Its owner left (Envoy cancelled the call with its context): the others are not judged.
    orphaned: bool,
}

/// Past its deadline, how long a spend is given before the tick ends it (its owner left, and
/// Envoy cancelled the call with its context).
const GRACE_MS: u64 = 250;

#[derive(Default)]
pub struct Spends {
    /// Nonce's Redis key → its call.
    in_flight: HashMap<String, InFlight>,
}

impl Spends {
    /// Spends the nonce `q` names for the request `context`.
    pub fn ask(&mut self, q: &Lookup, fleet: &Fleet, context: u32, now: u64) -> Asked {
        let Some((key, ttl_ms)) = spends::redis_spend(q) else { return Asked::Known(Answer::NotFound) };
        if let Some(f) = self.in_flight.get_mut(&key).filter(|f| !f.orphaned) {
            if f.waiters.len() >= MAX_WAITERS {
                return Asked::Known(Answer::NotFound);
            }
            f.waiters.push(context);
            return Asked::Waiting;
        }
        // A call whose owner left is made again by this request, for those waiting on it too.
        let orphan = self.in_flight.remove(&key);
        let live = self.in_flight.values().filter(|f| !f.orphaned).count();
        if live >= MAX_IN_FLIGHT {
            if let Some(o) = orphan {
                self.in_flight.insert(key, o);
            }
            return Asked::Known(Answer::NotFound);
        }
        let mut waiters = vec![context];
        waiters.extend(orphan.as_ref().map(|o| o.waiters.clone()).unwrap_or_default());
        let path = webdis::set_nx_path(&key, ttl_ms);
        let headers = vec![(":method", "GET"), (":path", path.as_str()), (":authority", fleet.authority.as_str())];
        let timeout = Duration::from_millis(fleet.timeout_ms);
        match hostcalls::dispatch_http_call(&fleet.cluster, headers, None, vec![], timeout) {
            Ok(token) => {
                let deadline_ms = now + fleet.timeout_ms;
                let f = InFlight { token, waiters, started_ms: now, deadline_ms, orphaned: false };
                self.in_flight.insert(key, f);
                Asked::Waiting
            }
            Err(e) => {
                // The cluster cannot be called: Redis is out of reach, as when it is down.
                log::warn!("botgate: fleet: cannot call cluster {:?}: {e:?}", fleet.cluster);
                if let Some(o) = orphan {
                    self.in_flight.insert(key, o);
                }
                Asked::Known(Answer::Failed)
            }
        }
    }

    /// The answer to callout `token`, if it is a spend's.
    pub fn on_response(&mut self, token: u32, status: Option<u32>, body: &[u8], now: u64) -> Option<Finished> {
        let key = self.in_flight.iter().find(|(_, f)| f.token == token).map(|(k, _)| k.clone())?;
        let f = self.in_flight.remove(&key)?;
        let set = (status == Some(200)).then(|| webdis::set_nx_answer(body)).flatten();
        if set.is_none() {
            log::debug!("botgate: fleet spend failed (status {status:?}); spent in this Envoy only");
        }
        let answer = spends::spend_answer(set);
        let failure = (answer == Answer::Failed).then_some("fleet");
        Some(Finished {
            service: "fleet",
            answer,
            waiters: f.waiters,
            elapsed_ms: now.saturating_sub(f.started_ms),
            failure,
        })
    }

    /// Spends past their deadline, or whose owner left: finished, unconfirmed (Redis did not
    /// answer in time) or not judged (the call went with its owner).
    pub fn expired(&mut self, now: u64) -> Vec<Finished> {
        let late: Vec<String> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.orphaned || now > f.deadline_ms + GRACE_MS)
            .map(|(k, _)| k.clone())
            .collect();
        late.iter()
            .filter_map(|k| self.in_flight.remove(k))
            .map(|f| Finished {
                service: "fleet",
                answer: if f.orphaned { Answer::NotFound } else { Answer::Failed },
                waiters: f.waiters,
                elapsed_ms: now.saturating_sub(f.started_ms),
                failure: Some("timeout"),
            })
            .collect()
    }

    /// Forgets a request that no longer waits (its client left). When it made the call, Envoy
    /// cancels it: the requests that joined it are let go, not judged, on the next tick.
    pub fn forget(&mut self, context: u32) {
        for f in self.in_flight.values_mut() {
            f.orphaned |= f.waiters.first() == Some(&context);
            f.waiters.retain(|w| *w != context);
        }
        self.in_flight.retain(|_, f| !f.waiters.is_empty());
    }
}
