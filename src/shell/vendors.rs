//! The vendor sources as HTTP callouts: for a client's lookup, every source is asked at once
//! through its cluster; the requests waiting for that client are resumed when all have answered
//! or the slowest timeout has passed, with what each said ([`crate::engine::vendors`]).
//!
//! A source that keeps failing is skipped for a while (a circuit breaker: after
//! [`TRIP_AFTER`] failures in a row it is left alone for [`OPEN_MS`], then tried again with
//! one round), and reads as missing meanwhile: a vendor's outage costs its requests nothing but
//! its signal. Per worker, like the rounds themselves.

use super::callouts::{Asked, Finished};
use crate::engine::lookups::Answer;
use crate::engine::vendors::{encode, Breaker, SourceAnswer, OPEN_MS, TRIP_AFTER};
use crate::formats::vendors;
use crate::policy::vendors::{Adapter, Source, Vendors};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::collections::HashMap;
use std::time::Duration;

/// Clients whose round is on its way, per worker; requests one round may hold.
const MAX_ROUNDS: usize = 256;
const MAX_WAITERS: usize = 64;
/// Past the slowest timeout, how long a round is given before the tick ends it.
const GRACE_MS: u64 = 250;

struct Round {
    sources: Vec<Source>,
    answers: Vec<Option<Result<vendors::Reading, String>>>,
    /// The sources this round probes (their circuits half open).
    probes: Vec<bool>,
    waiters: Vec<u32>,
    started_ms: u64,
    deadline_ms: u64,
}

#[derive(Default)]
pub struct VendorCalls {
    rounds: HashMap<String, Round>,
    /// Callout token → (client, source index).
    tokens: HashMap<u32, (String, usize)>,
    breakers: HashMap<String, Breaker>,
    /// Each source's last good answer (for the age gauge).
    last_good: HashMap<String, u64>,
    ages: HashMap<String, Option<u32>>,
    /// Each source's `botgate_vendor_duration_ms{vendor}` histogram.
    durations: HashMap<String, Option<u32>>,
}

impl VendorCalls {
    /// Asks every source about `key` (a client address) for the request `context`.
    pub fn ask(&mut self, ip: &str, config: &Vendors, context: u32, now: u64) -> Asked {
        // A round is for one set of sources: another profile's joins its own.
        let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        let key = &format!("{}|{ip}", names.join(","));
        if let Some(r) = self.rounds.get_mut(key) {
            if r.waiters.len() >= MAX_WAITERS {
                return Asked::Failed("busy");
            }
            r.waiters.push(context);
            return Asked::Waiting;
        }
        if self.rounds.len() >= MAX_ROUNDS {
            return Asked::Failed("busy");
        }
        let live: Vec<Source> = config.sources.iter().filter(|s| s.live()).cloned().collect();
        let mut round = Round {
            answers: vec![None; live.len()],
            probes: vec![false; live.len()],
            sources: live,
            waiters: vec![context],
            started_ms: now,
            deadline_ms: now + config.timeout_ms(),
        };
        for (i, s) in round.sources.iter().enumerate() {
            let b = self.breakers.entry(s.name.clone()).or_default();
            let probe = b.half_open(now);
            let skipped = match b.admit(now).then(|| send(s, ip)) {
                Some(Some(token)) => {
                    self.tokens.insert(token, (key.to_string(), i));
                    if let Some(p) = round.probes.get_mut(i) {
                        *p = probe;
                    }
                    continue;
                }
                None => "circuit_open",
                Some(None) => "dispatch",
            };
            if let Some(slot) = round.answers.get_mut(i) {
                *slot = Some(Err(skipped.into()));
            }
        }
        if round.answers.iter().all(Option::is_some) {
            // Nothing was sent: decide now, every source missing.
            return Asked::Known(Answer::Value(encode(&self.close(round, now).1)));
        }
        self.rounds.insert(key.to_string(), round);
        Asked::Waiting
    }

    /// A source's answer; the round when it was the last one awaited.
    pub fn on_response(&mut self, token: u32, status: Option<u32>, body: &[u8], now: u64) -> Option<Finished> {
        let (key, i) = self.tokens.remove(&token)?;
        let round = self.rounds.get_mut(&key)?;
        let source = round.sources.get(i)?;
        let id = *self.durations.entry(source.name.clone()).or_insert_with(|| {
            let name = format!("botgate_vendor_duration_ms.vendor.{}", source.name);
            hostcalls::define_metric(MetricType::Histogram, &name).ok()
        });
        if let Some(id) = id {
            let _ = hostcalls::record_metric(id, now.saturating_sub(round.started_ms));
        }
        let result = match &source.adapter {
            Adapter::CrowdSec { .. } => vendors::crowdsec(status, body),
            Adapter::HttpJson { score_pointer, reasons_pointer, .. } => {
                vendors::http_json(status, body, score_pointer, reasons_pointer.as_deref())
            }
        };
        if let Some(slot) = round.answers.get_mut(i) {
            *slot = Some(result.map_err(|why| reason_of(&why).to_string()));
        }
        if round.answers.iter().any(Option::is_none) {
            return None;
        }
        let round = self.rounds.remove(&key)?;
        Some(self.finish(round, now))
    }

    /// Rounds past their slowest timeout: the sources that did not answer are missing.
    pub fn expired(&mut self, now: u64) -> Vec<Finished> {
        let late: Vec<String> =
            self.rounds.iter().filter(|(_, r)| now > r.deadline_ms + GRACE_MS).map(|(k, _)| k.clone()).collect();
        self.tokens.retain(|_, (k, _)| !late.contains(k));
        let rounds: Vec<Round> = late.iter().filter_map(|k| self.rounds.remove(k)).collect();
        rounds.into_iter().map(|r| self.finish(r, now)).collect()
    }

    /// A request that no longer waits; a round nobody waits for gives its place back (and its
    /// probes: the next round asks the half-open sources).
    pub fn forget(&mut self, context: u32, now: u64) {
        for r in self.rounds.values_mut() {
            r.waiters.retain(|w| *w != context);
        }
        let abandoned: Vec<String> =
            self.rounds.iter().filter(|(_, r)| r.waiters.is_empty()).map(|(k, _)| k.clone()).collect();
        for k in &abandoned {
            let Some(r) = self.rounds.remove(k) else { continue };
            for ((s, probe), answer) in r.sources.iter().zip(&r.probes).zip(&r.answers) {
                if *probe && answer.is_none() {
                    self.breakers.entry(s.name.clone()).or_default().release(now);
                }
            }
        }
        self.tokens.retain(|_, (k, _)| !abandoned.contains(k));
    }

    /// The age of each source's last good answer, as gauges (set on the tick).
    pub fn report_ages(&mut self, config: Option<&Vendors>, now: u64) {
        for s in config.map(|c| c.sources.as_slice()).unwrap_or_default() {
            let id = *self.ages.entry(s.name.clone()).or_insert_with(|| {
                hostcalls::define_metric(MetricType::Gauge, &format!("botgate_vendor_age_seconds.vendor.{}", s.name))
                    .ok()
            });
            if let (Some(id), Some(at)) = (id, self.last_good.get(&s.name)) {
                let _ = hostcalls::record_metric(id, now.saturating_sub(*at) / 1000);
            }
        }
    }

    fn finish(&mut self, round: Round, now: u64) -> Finished {
        let started = round.started_ms;
        let (waiters, answers) = self.close(round, now);
        let failure = answers.iter().all(|a| a.result.is_err()).then_some("vendors_missing");
        let elapsed_ms = now.saturating_sub(started);
        Finished { service: "vendors", answer: Answer::Value(encode(&answers)), waiters, elapsed_ms, failure }
    }

    /// The round's answers (a source not heard from timed out), its breakers moved, counted.
    fn close(&mut self, round: Round, now: u64) -> (Vec<u32>, Vec<SourceAnswer>) {
        let mut out = Vec::with_capacity(round.sources.len());
        for (s, a) in round.sources.iter().zip(round.answers) {
            let result = a.unwrap_or_else(|| Err("timeout".into()));
            let b = self.breakers.entry(s.name.clone()).or_default();
            match &result {
                Ok(_) => {
                    b.answered();
                    self.last_good.insert(s.name.clone(), now);
                }
                Err(why) if why == "circuit_open" => {}
                Err(_) => {
                    if b.failed(now) {
                        log::warn!(
                            "botgate: vendor {:?} failed {TRIP_AFTER} times in a row: skipped for {} s",
                            s.name,
                            OPEN_MS / 1000
                        );
                    }
                }
            }
            let label = match &result {
                Ok(_) => "answered",
                Err(why) => why.as_str(),
            };
            count(&format!("botgate_vendor_answers_total.vendor.{}.result.{label}", s.name));
            out.push(SourceAnswer { name: s.name.clone(), result });
        }
        (round.waiters, out)
    }
}

/// A failure as a metric label.
fn reason_of(why: &str) -> &'static str {
    match why {
        // Envoy answers a callout past its timeout with a 504 of its own.
        "status 504" => "timeout",
        w if w.starts_with("status") => "http_status",
        "no response" => "reset",
        _ => "garbage",
    }
}

fn count(name: &str) {
    if let Ok(id) = hostcalls::define_metric(MetricType::Counter, name) {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

fn send(s: &Source, ip: &str) -> Option<u32> {
    let path = s.path(ip);
    let mut headers = vec![(":method", "GET"), (":path", path.as_str()), (":authority", s.authority.as_str())];
    let key;
    if let Adapter::CrowdSec { api_key } = &s.adapter {
        key = String::from_utf8_lossy(api_key).into_owned();
        headers.push(("x-api-key", key.as_str()));
    }
    headers.push(("accept", "application/json"));
    match hostcalls::dispatch_http_call(&s.cluster, headers, None, vec![], Duration::from_millis(s.timeout_ms)) {
        Ok(token) => Some(token),
        Err(e) => {
            log::warn!("botgate: vendor {:?}: cannot call cluster {:?}: {e:?}", s.name, s.cluster);
            None
        }
    }
}
