//! Botgate's metrics in Envoy's stats: counters flushed from the engine's tally on the tick,
//! gauges of the tables' sizes, and the score and solve-time histograms.

use crate::base::telemetry::{Tally, CALLOUT_HISTOGRAM, COUNTER_NAMES, GAUGE_NAMES, SCORE_HISTOGRAM, SOLVE_HISTOGRAM};
use crate::engine::Footprint;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::collections::HashMap;

/// Metric ids, defined once per worker VM.
///
/// Every worker's VM (and the main thread's) shares one stat per name, so gauges are moved by
/// each VM's own change: the exported value is the sum over the VMs.
#[derive(Default)]
pub struct Metrics {
    counters: Vec<u32>,
    gauges: Vec<u32>,
    reported: Vec<u64>,
    pub score: Option<u32>,
    pub solve_ms: Option<u32>,
    pub callout_ms: Option<u32>,
    /// Counters named by the policy (a crawler's), defined when first counted.
    named: HashMap<String, u32>,
    /// `botgate_policy_info{hash}` of the policy this VM runs (1 per VM).
    policy_info: Option<u32>,
}

impl Metrics {
    pub fn define() -> Metrics {
        let define = |t, n: &str| hostcalls::define_metric(t, n).ok();
        Metrics {
            counters: COUNTER_NAMES.iter().filter_map(|n| define(MetricType::Counter, n)).collect(),
            gauges: GAUGE_NAMES.iter().filter_map(|n| define(MetricType::Gauge, n)).collect(),
            reported: vec![0; GAUGE_NAMES.len()],
            score: define(MetricType::Histogram, SCORE_HISTOGRAM),
            solve_ms: define(MetricType::Histogram, SOLVE_HISTOGRAM),
            callout_ms: define(MetricType::Histogram, CALLOUT_HISTOGRAM),
            named: HashMap::new(),
            policy_info: None,
        }
    }

    /// Takes this VM's 1 back from `botgate_policy_info`.
    pub fn drop_policy_info(&mut self) {
        if let Some(old) = self.policy_info.take() {
            let _ = hostcalls::increment_metric(old, -1);
        }
    }

    /// Moves this VM's 1 in `botgate_policy_info` to the loaded policy's hash.
    pub fn policy_info(&mut self, hash: &str) {
        self.drop_policy_info();
        let name = format!("botgate_policy_info.hash.{hash}");
        self.policy_info = hostcalls::define_metric(MetricType::Gauge, &name).ok();
        if let Some(id) = self.policy_info {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    pub fn flush(&mut self, tally: &mut Tally) {
        for (counter, n) in tally.drain() {
            if let Some(&id) = self.counters.get(counter.index()) {
                let _ = hostcalls::increment_metric(id, n as i64);
            }
        }
        for (name, n) in tally.drain_named() {
            let id = match self.named.get(&name) {
                Some(id) => Some(*id),
                None => hostcalls::define_metric(MetricType::Counter, &name).ok().inspect(|id| {
                    self.named.insert(name.clone(), *id);
                }),
            };
            if let Some(id) = id {
                let _ = hostcalls::increment_metric(id, n as i64);
            }
        }
    }

    pub fn set_gauges(&mut self, f: Footprint) {
        let memory = (core::arch::wasm32::memory_size(0) as u64) * 65_536;
        // In the order of GAUGE_NAMES.
        let values =
            [f.clients as u64, f.fingerprints as u64, f.bodies as u64, f.sessions as u64, f.state_bytes as u64, memory];
        for ((id, seen), v) in self.gauges.iter().zip(self.reported.iter_mut()).zip(values) {
            if v != *seen && hostcalls::increment_metric(*id, v as i64 - *seen as i64).is_ok() {
                *seen = v;
            }
        }
    }
}
