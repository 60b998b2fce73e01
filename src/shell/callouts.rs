//! Lookups as HTTP callouts: forward-confirmed reverse DNS over DNS-over-HTTPS (RFC 8484, POST
//! of `application/dns-message`) through the policy's resolver cluster.
//!
//! One lookup per address at a time on a worker: a request that needs an answer already being
//! looked up joins its waiters, and all of them are resumed by the one answer
//! ([`super::settle`]). Answers (a confirmed name, or none) are kept in shared data for their
//! TTL, so every worker of the Envoy uses them; failures are not shared (the engine remembers
//! them briefly per worker). The whole verification has one budget (`timeout_ms`): the second
//! query gets what the first left, and the tick ends any lookup past it (an owner whose client
//! left takes its callout's answer with it). At most [`MAX_IN_FLIGHT`] lookups run per worker; a
//! request beyond that is decided without its answer (unverified, never allowed).

use crate::checks::fcrdns::{Fcrdns, Next, Outcome};
use crate::engine::lookups::Answer;
use crate::policy::crawlers::DnsOverHttps;
use proxy_wasm::hostcalls;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// Lookups in flight per worker.
pub const MAX_IN_FLIGHT: usize = 256;
/// Shared-data slots for answers (keys cannot be deleted, so their number is fixed).
const SLOTS: u64 = 4096;
/// Past its deadline, how long a lookup is given before the tick ends it.
const GRACE_MS: u64 = 250;
/// Requests one lookup may hold waiting (more are decided without it).
const MAX_WAITERS: usize = 64;

struct InFlight {
    fcrdns: Fcrdns,
    doh: DnsOverHttps,
    /// Context ids of the requests waiting for it (its owner first).
    waiters: Vec<u32>,
    started_ms: u64,
    deadline_ms: u64,
}

/// What asking gave.
pub enum Asked {
    /// From another worker's answer in shared data.
    Known(Answer),
    /// The request waits (a callout was sent, or one for the same address is on its way).
    Waiting,
    /// No callout could be sent: decide without the answer and remember nothing against the
    /// client (why, for the metric).
    Failed(&'static str),
}

/// A finished lookup: its answer, who waited, and how long it took.
pub struct Finished {
    /// `dns` or `vendors` (which counters it moves).
    pub service: &'static str,
    pub answer: Answer,
    pub waiters: Vec<u32>,
    pub elapsed_ms: u64,
    /// Why it failed (a metric label), if it did.
    pub failure: Option<&'static str>,
}

#[derive(Default)]
pub struct Callouts {
    in_flight: HashMap<String, InFlight>,
    /// Callout token → the address it is about.
    tokens: HashMap<u32, String>,
}

impl Callouts {
    /// Asks for the FCrDNS of `key` (an address) for the request `context`.
    pub fn ask(&mut self, key: &str, doh: &DnsOverHttps, suffixes: &[String], context: u32, now: u64) -> Asked {
        if let Some(a) = shared_get(key, now) {
            return Asked::Known(a);
        }
        if let Some(f) = self.in_flight.get_mut(key) {
            if f.waiters.len() >= MAX_WAITERS {
                return Asked::Failed("busy");
            }
            f.waiters.push(context);
            return Asked::Waiting;
        }
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            return Asked::Failed("busy");
        }
        let Ok(ip) = key.parse::<IpAddr>() else { return Asked::Failed("bad_key") };
        let (fcrdns, query) = Fcrdns::start(ip, suffixes);
        let Some(token) = send(doh, &query, doh.timeout_ms) else { return Asked::Failed("dispatch") };
        self.tokens.insert(token, key.to_string());
        let f = InFlight {
            fcrdns,
            doh: doh.clone(),
            waiters: vec![context],
            started_ms: now,
            deadline_ms: now + doh.timeout_ms,
        };
        self.in_flight.insert(key.to_string(), f);
        Asked::Waiting
    }

    /// Takes the resolver's answer to callout `token`: the next query is sent, or the lookup is
    /// finished (and its answer shared). `None` while it goes on, or for an unknown token.
    pub fn on_response(
        &mut self,
        token: u32,
        status: Option<u32>,
        body: &[u8],
        now: u64,
    ) -> Option<(String, Finished)> {
        let key = self.tokens.remove(&token)?;
        let f = self.in_flight.get_mut(&key)?;
        let outcome = match f.fcrdns.on_reply(status, body) {
            Next::Ask(query) => {
                let left = f.deadline_ms.saturating_sub(now);
                match (left > 0).then(|| send(&f.doh, &query, left)).flatten() {
                    Some(t) => {
                        self.tokens.insert(t, key);
                        return None;
                    }
                    None => Outcome::Failed(if left == 0 { "timeout" } else { "dispatch" }),
                }
            }
            Next::Done(o) => o,
        };
        let f = self.in_flight.remove(&key)?;
        let (answer, failure) = match outcome {
            Outcome::Confirmed(name) => (Answer::Value(name), None),
            Outcome::Refuted => (Answer::NotFound, None),
            Outcome::Failed(why) => (Answer::Failed, Some(why)),
        };
        let ttl_s = match answer {
            Answer::Value(_) => f.doh.cache_seconds,
            Answer::NotFound => f.doh.negative_cache_seconds,
            Answer::Failed => 0,
        };
        if ttl_s > 0 {
            shared_put(&key, &answer, now + ttl_s * 1000);
        }
        let elapsed_ms = now.saturating_sub(f.started_ms);
        Some((key, Finished { service: "dns", answer, waiters: f.waiters, elapsed_ms, failure }))
    }

    /// Lookups past their budget (their callouts lost or late): finished as failed.
    pub fn expired(&mut self, now: u64) -> Vec<(String, Finished)> {
        let late: Vec<String> =
            self.in_flight.iter().filter(|(_, f)| now > f.deadline_ms + GRACE_MS).map(|(k, _)| k.clone()).collect();
        self.tokens.retain(|_, k| !late.contains(k));
        late.into_iter()
            .filter_map(|k| {
                let f = self.in_flight.remove(&k)?;
                let elapsed_ms = now.saturating_sub(f.started_ms);
                Some((
                    k,
                    Finished {
                        service: "dns",
                        answer: Answer::Failed,
                        waiters: f.waiters,
                        elapsed_ms,
                        failure: Some("timeout"),
                    },
                ))
            })
            .collect()
    }

    /// Forgets a request that no longer waits (its client left); a lookup nobody waits for
    /// any more gives its place back (its answer, if it comes, is dropped: Envoy cancels the
    /// callouts of a context that is gone).
    pub fn forget(&mut self, context: u32) {
        for f in self.in_flight.values_mut() {
            f.waiters.retain(|w| *w != context);
        }
        let abandoned: Vec<String> =
            self.in_flight.iter().filter(|(_, f)| f.waiters.is_empty()).map(|(k, _)| k.clone()).collect();
        for k in &abandoned {
            self.in_flight.remove(k);
        }
        self.tokens.retain(|_, k| !abandoned.contains(k));
    }
}

/// Sends one DNS message to the resolver; the callout's token.
fn send(doh: &DnsOverHttps, query: &[u8], timeout_ms: u64) -> Option<u32> {
    let headers = vec![
        (":method", "POST"),
        (":path", doh.path.as_str()),
        (":authority", doh.authority.as_str()),
        ("content-type", "application/dns-message"),
        ("accept", "application/dns-message"),
    ];
    match hostcalls::dispatch_http_call(&doh.cluster, headers, Some(query), vec![], Duration::from_millis(timeout_ms)) {
        Ok(token) => Some(token),
        Err(e) => {
            log::warn!("botgate: DNS-over-HTTPS callout to cluster {:?} failed: {e:?}", doh.cluster);
            None
        }
    }
}

/// The shared-data key of an address's answer: one of [`SLOTS`] (a colliding address
/// overwrites; its reader checks the address).
fn slot(key: &str) -> String {
    format!("botgate/v1/fcrdns/{}", crate::base::fasthash::hash(&[key.as_bytes()]) % SLOTS)
}

/// A shared answer still fresh at `now`: `expires V|N address [name]`.
fn shared_get(key: &str, now: u64) -> Option<Answer> {
    let (Some(bytes), _) = hostcalls::get_shared_data(&slot(key)).ok()? else { return None };
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(4, ' ');
    let expires: u64 = parts.next()?.parse().ok()?;
    let kind = parts.next()?;
    if parts.next()? != key || now >= expires {
        return None;
    }
    match kind {
        "V" => Some(Answer::Value(parts.next()?.to_string())),
        "N" => Some(Answer::NotFound),
        _ => None,
    }
}

fn shared_put(key: &str, answer: &Answer, expires: u64) {
    let text = match answer {
        Answer::Value(name) => format!("{expires} V {key} {name}"),
        Answer::NotFound => format!("{expires} N {key}"),
        Answer::Failed => return,
    };
    let _ = hostcalls::set_shared_data(&slot(key), Some(text.as_bytes()), None);
}
