//! The per-worker engine: policy plus the rolling state, driven one request at a time.
//!
//! `begin` runs on the request head (client identity, rate limits) and either decides or asks
//! for the body; `finish` runs the detector and decides. `tick` sweeps expired state. Nothing
//! here touches the host: the shell hands in bytes and a clock and carries out the decision.

use crate::decide::{Decision, Verdict};
use crate::detect::Detector;
use crate::policy::{DetectorAction, Mode, Policy};
use crate::ratelimit::{Limited, RateLimiter, Scope};
use crate::signals::{client_ip, Head, IpSource};
use crate::telemetry::{Counter, Tally};
use std::net::IpAddr;

/// Most expired entries dropped per table per tick (keeps each tick short).
const SWEEP_BATCH: usize = 20_000;

pub struct Engine {
    policy: Policy,
    limiter: RateLimiter,
    detector: Option<Detector>,
    /// Counter deltas for the shell to flush.
    pub tally: Tally,
    reported_evictions: [u64; 3],
}

/// The head-phase result.
pub enum Begin {
    Decided(Decision),
    /// The detector needs the body; call `finish` with it.
    NeedBody(Pending),
}

/// What `begin` learnt, carried to `finish`.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    client: Option<IpAddr>,
    limited: Option<Limited>,
}

/// Sizes of the worker's tables, for gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    pub clients: usize,
    pub fingerprints: usize,
    pub bodies: usize,
    pub state_bytes: usize,
}

impl Engine {
    pub fn new(policy: Policy) -> Self {
        let limits = policy.limits;
        Engine {
            limiter: RateLimiter::new(
                policy.global_rate_limit,
                policy.ip_rate_limit,
                limits.max_clients,
            ),
            detector: policy
                .bot_detector
                .clone()
                .map(|d| Detector::new(d, &limits)),
            policy,
            tally: Tally::default(),
            reported_evictions: [0; 3],
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether requests with a body wait for it before the decision.
    pub fn needs_body(&self) -> bool {
        self.detector.as_ref().is_some_and(Detector::needs_body)
    }

    /// Whether the peer address is needed: `x-forwarded-for` cannot name the client.
    pub fn needs_peer(&self, head: &Head) -> bool {
        client_ip(head, self.policy.trust_proxy_depth).0.is_none()
    }

    pub fn begin(&mut self, head: &Head, has_body: bool, now: u64) -> Begin {
        let (client, source) = client_ip(head, self.policy.trust_proxy_depth);
        if source == IpSource::BadForwardedFor {
            self.tally.bump(Counter::XffInvalid);
        }
        let limited = self.limiter.check(client, now).err();
        let pending = Pending { client, limited };
        if let Some(l) = limited {
            self.tally.bump(match l.scope {
                Scope::Global => Counter::RateLimitedGlobal,
                Scope::Ip => Counter::RateLimitedIp,
            });
            if self.policy.mode == Mode::Enforce {
                return Begin::Decided(self.record(rate_limited(client, l)));
            }
        }
        if has_body && self.needs_body() {
            return Begin::NeedBody(pending);
        }
        Begin::Decided(self.finish(pending, head, b"", now))
    }

    /// Decides with the body (empty when there is none).
    pub fn finish(&mut self, pending: Pending, head: &Head, body: &[u8], now: u64) -> Decision {
        let mut d = Decision::pass(pending.client);
        if let Some(l) = pending.limited {
            // Only reached in observe mode: the limit is recorded, the request passes.
            d.would = Some(Verdict::RateLimited);
            d.reasons.push(rate_limit_reason(l.scope));
        }
        if let Some(det) = &mut self.detector {
            let hit = det.observe(head, pending.client, body, now);
            d.fingerprint = Some(hit.fingerprint);
            d.fingerprint_count = hit.count;
            d.similarity = hit.near_duplicate;
            if hit.flagged {
                d.score = 0.9;
                d.reasons.push("fingerprint_repeat");
                self.tally.bump(Counter::FlaggedFingerprint);
                if hit.near_duplicate.is_some() {
                    d.reasons.push("near_duplicate_body");
                    self.tally.bump(Counter::FlaggedNearDuplicate);
                }
                let enforce = det.config().action == DetectorAction::Block
                    && self.policy.mode == Mode::Enforce;
                if enforce {
                    d.verdict = Verdict::Block;
                    self.tally.bump(Counter::BlockedBotDetector);
                } else {
                    d.would = Some(Verdict::Block);
                }
            }
        }
        self.record(d)
    }

    fn record(&mut self, d: Decision) -> Decision {
        self.tally.bump(match (d.verdict, d.would) {
            (Verdict::Pass, Some(_)) => Counter::RequestsWouldBlock,
            (Verdict::Pass, None) => Counter::RequestsPass,
            (Verdict::Block, _) => Counter::RequestsBlock,
            (Verdict::RateLimited, _) => Counter::RequestsRateLimited,
        });
        d
    }

    /// Sweeps expired state and moves eviction counts into the tally.
    pub fn tick(&mut self, now: u64) -> Footprint {
        self.limiter.sweep(now, SWEEP_BATCH);
        if let Some(d) = &mut self.detector {
            d.sweep(now, SWEEP_BATCH);
        }
        let (fp_ev, body_ev) = self.detector.as_ref().map_or((0, 0), Detector::evictions);
        let totals = [self.limiter.evictions(), fp_ev, body_ev];
        let counters = [
            Counter::EvictionsClients,
            Counter::EvictionsFingerprints,
            Counter::EvictionsBodies,
        ];
        for ((total, seen), counter) in totals
            .iter()
            .zip(self.reported_evictions.iter_mut())
            .zip(counters)
        {
            self.tally.add(counter, total - *seen);
            *seen = *total;
        }
        self.footprint()
    }

    pub fn footprint(&self) -> Footprint {
        let (fingerprints, bodies) = self.detector.as_ref().map_or((0, 0), Detector::tracked);
        Footprint {
            clients: self.limiter.tracked_clients(),
            fingerprints,
            bodies,
            state_bytes: self.limiter.heap_bytes()
                + self.detector.as_ref().map_or(0, Detector::heap_bytes),
        }
    }
}

fn rate_limit_reason(scope: Scope) -> &'static str {
    match scope {
        Scope::Global => "rate_limit_global",
        Scope::Ip => "rate_limit_ip",
    }
}

fn rate_limited(client: Option<IpAddr>, l: Limited) -> Decision {
    let mut d = Decision::pass(client);
    d.verdict = Verdict::RateLimited;
    d.reasons.push(rate_limit_reason(l.scope));
    d.retry_after_s = l.retry_after_ms.div_ceil(1000);
    d
}
