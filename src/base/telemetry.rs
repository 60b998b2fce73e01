//! Metric names and the per-worker tallies behind them.
//!
//! The engine only bumps counters in an array; the shell defines the metrics once and flushes
//! the deltas on its tick, so a request costs no metric host calls. Names follow Envoy's stats
//! convention (`name.label.value`); the shipped `stats_tags` turn them into Prometheus labels,
//! e.g. `botgate_requests_total{outcome="block"}`. Label values never contain dots.

macro_rules! counters {
    ($($variant:ident => $name:literal,)*) => {
        /// Every counter botgate exports.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Counter { $($variant,)* }
        pub const COUNTER_NAMES: &[&str] = &[$($name,)*];
        const ALL: &[Counter] = &[$(Counter::$variant,)*];
    };
}

counters! {
    RequestsAllow => "botgate_requests_total.outcome.allow",
    RequestsPass => "botgate_requests_total.outcome.pass",
    RequestsWouldBlock => "botgate_requests_total.outcome.would_block",
    RequestsWouldChallenge => "botgate_requests_total.outcome.would_challenge",
    RequestsBlock => "botgate_requests_total.outcome.block",
    RequestsRateLimited => "botgate_requests_total.outcome.rate_limited",
    RequestsChallenge => "botgate_requests_total.outcome.challenge",
    RateLimitedGlobal => "botgate_rate_limited_total.scope.global",
    RateLimitedIp => "botgate_rate_limited_total.scope.ip",
    FlaggedFingerprint => "botgate_flagged_total.detector.fingerprint_repeat",
    FlaggedNearDuplicate => "botgate_flagged_total.detector.near_duplicate_body",
    ExcusedPageCall => "botgate_flagged_total.detector.excused_page_call",
    BlockedBotDetector => "botgate_blocked_total.tier.block.reason.bot_detector",
    BlockedScore => "botgate_blocked_total.tier.block.reason.bot_score",
    BlockedThreatIntel => "botgate_blocked_total.tier.block.reason.threat_intel",
    BlockedSequence => "botgate_blocked_total.tier.block.reason.impossible_sequence",
    BlockedChallengeFailed => "botgate_blocked_total.tier.block.reason.challenge_failed",
    AllowMonitoring => "botgate_allowlisted_total.condition.internal_monitoring",
    AllowCiCd => "botgate_allowlisted_total.condition.owned_ci_cd",
    AllowApi => "botgate_allowlisted_total.condition.allowlisted_api_consumer",
    ApiContractExceeded => "botgate_rate_limited_total.scope.api_contract",
    ChallengesPowIssued => "botgate_challenges_total.type.proof_of_work.result.issued",
    ChallengesWebauthnIssued => "botgate_challenges_total.type.webauthn_step_up.result.issued",
    ChallengesPowPassed => "botgate_challenges_total.type.proof_of_work.result.passed",
    ChallengesWebauthnPassed => "botgate_challenges_total.type.webauthn_step_up.result.passed",
    ChallengesPowFailed => "botgate_challenges_total.type.proof_of_work.result.failed",
    ChallengesWebauthnFailed => "botgate_challenges_total.type.webauthn_step_up.result.failed",
    ChallengesPowTooFast => "botgate_challenges_total.type.proof_of_work.result.too_fast",
    ChallengeFailExpired => "botgate_challenge_failures_total.reason.expired",
    ChallengeFailReplayed => "botgate_challenge_failures_total.reason.replayed",
    ChallengeFailBinding => "botgate_challenge_failures_total.reason.wrong_client",
    ChallengeFailInvalid => "botgate_challenge_failures_total.reason.invalid",
    ClearanceAccepted => "botgate_clearance_total.result.accepted",
    ClearanceRefused => "botgate_clearance_total.result.refused",
    RequestsServe => "botgate_requests_total.outcome.serve",
    EvictionsSessions => "botgate_evictions_total.table.sessions",
    EvictionsClients => "botgate_evictions_total.table.clients",
    EvictionsFingerprints => "botgate_evictions_total.table.fingerprints",
    EvictionsBodies => "botgate_evictions_total.table.bodies",
    XffInvalid => "botgate_xff_invalid_total",
    XffUntrusted => "botgate_xff_untrusted_total",
    NonceStoreUnavailable => "botgate_nonce_store_total.result.unavailable",
    NonceStoreEvicted => "botgate_nonce_store_total.result.evicted",
    ChallengeIgnoredForeign => "botgate_challenge_ignored_total.reason.foreign",
    ChallengeIgnoredCrossSite => "botgate_challenge_ignored_total.reason.cross_site",
    BeaconInjected => "botgate_beacon_total.result.injected",
    BeaconSkipped => "botgate_beacon_total.result.skipped",
    BeaconAccepted => "botgate_beacon_total.result.accepted",
    BeaconAutomation => "botgate_beacon_total.result.automation",
    BeaconRefused => "botgate_beacon_total.result.refused",
    BodyTruncated => "botgate_body_truncated_total",
    AllowCrawler => "botgate_allowlisted_total.condition.verified_search_crawler",
    BlockedCrawler => "botgate_blocked_total.tier.block.reason.crawler_refused",
    BlockedCrawlerImpersonation => "botgate_blocked_total.tier.block.reason.crawler_impersonation",
    BlockedCrawlerRobots => "botgate_blocked_total.tier.block.reason.robots_disallowed",
    BlockedSignature => "botgate_blocked_total.tier.block.reason.signature_invalid",
    BlockedVendor => "botgate_blocked_total.tier.block.reason.vendor",
    VendorOutOfBand => "botgate_vendor_skipped_total.reason.score_band",
    BlockedRateIp => "botgate_blocked_total.tier.rate_limit.reason.ip",
    BlockedRateGlobal => "botgate_blocked_total.tier.rate_limit.reason.global",
    BlockedRateCrawler => "botgate_blocked_total.tier.rate_limit.reason.crawler",
    BlockedRateApiContract => "botgate_blocked_total.tier.rate_limit.reason.api_contract",
    BlockedChallengePow => "botgate_blocked_total.tier.challenge.reason.proof_of_work",
    BlockedChallengeWebauthn => "botgate_blocked_total.tier.challenge.reason.webauthn_step_up",
    FalsePositiveReports => "botgate_false_positive_reports_total",
    AnswersThrottle => "botgate_answers_total.answer.throttle.mode.enforce",
    AnswersTarpit => "botgate_answers_total.answer.tarpit.mode.enforce",
    AnswersDecoy => "botgate_answers_total.answer.decoy.mode.enforce",
    AnswersWouldThrottle => "botgate_answers_total.answer.throttle.mode.observe",
    AnswersWouldTarpit => "botgate_answers_total.answer.tarpit.mode.observe",
    AnswersWouldDecoy => "botgate_answers_total.answer.decoy.mode.observe",
    AnswersDelayFull => "botgate_answers_total.answer.delay_full.mode.enforce",
    RateLimitedFleet => "botgate_rate_limited_total.scope.fleet",
    BlockedRateFleet => "botgate_blocked_total.tier.rate_limit.reason.fleet",
    FleetSyncOk => "botgate_fleet_sync_total.result.ok",
    FleetSyncFailed => "botgate_fleet_sync_total.result.failed",
    FleetUntracked => "botgate_fleet_untracked_total",
    FleetSpendFresh => "botgate_fleet_spends_total.result.fresh",
    FleetSpendReplayed => "botgate_fleet_spends_total.result.replayed",
    FleetSpendUnconfirmed => "botgate_fleet_spends_total.result.unconfirmed",
    FleetSpendBusy => "botgate_fleet_spends_total.result.busy",
    FleetFailuresSyncOk => "botgate_fleet_failures_sync_total.result.ok",
    FleetFailuresSyncFailed => "botgate_fleet_failures_sync_total.result.failed",
    FleetFailuresShared => "botgate_fleet_failures_shared_total",
    FleetFailuresLearned => "botgate_fleet_failures_learned_total",
    FleetFailuresDropped => "botgate_fleet_failures_dropped_total",
    RateLimitedCrawler => "botgate_rate_limited_total.scope.crawler",
    CrawlerLookupFailed => "botgate_crawler_lookups_total.result.failed",
    CalloutDnsAnswered => "botgate_callouts_total.service.dns.result.answered",
    CalloutDnsFailed => "botgate_callouts_total.service.dns.result.failed",
}

impl Counter {
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn all() -> &'static [Counter] {
        ALL
    }
    pub fn name(self) -> &'static str {
        COUNTER_NAMES.get(self.index()).copied().unwrap_or("botgate_unknown")
    }
}

/// Gauges, set from the engine's table sizes on each tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    TrackedClients,
    TrackedFingerprints,
    TrackedBodies,
    TrackedSessions,
    /// Estimated bytes held by the engine's tables.
    StateBytes,
    /// The worker VM's linear memory, as the host sees it (wasm only).
    MemoryBytes,
}

pub const GAUGE_NAMES: &[&str] = &[
    "botgate_tracked_entries.table.clients",
    "botgate_tracked_entries.table.fingerprints",
    "botgate_tracked_entries.table.bodies",
    "botgate_tracked_entries.table.sessions",
    "botgate_state_bytes",
    "botgate_memory_bytes",
];

/// Bot scores are recorded ×1000 (histograms take whole numbers).
pub const SCORE_HISTOGRAM: &str = "botgate_score";
/// Milliseconds a lookup's callouts took (both DNS queries of a verification).
pub const CALLOUT_HISTOGRAM: &str = "botgate_callout_duration_ms.service.dns";
/// Milliseconds from a puzzle's issue to its accepted solution.
pub const SOLVE_HISTOGRAM: &str = "botgate_challenge_solve_ms";

/// Counter deltas since the last flush; `named`: counters whose names come from the policy
/// (a crawler's), few and bounded by it.
#[derive(Debug, Clone)]
pub struct Tally {
    counts: Vec<u64>,
    named: Vec<(String, u64)>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally { counts: vec![0; COUNTER_NAMES.len()], named: Vec::new() }
    }
}

impl Tally {
    pub fn bump(&mut self, c: Counter) {
        self.add(c, 1);
    }

    pub fn add(&mut self, c: Counter, n: u64) {
        if let Some(slot) = self.counts.get_mut(c.index()) {
            *slot += n;
        }
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.counts.get(c.index()).copied().unwrap_or(0)
    }

    /// Counts one under a name the policy made (see [`Tally`]).
    pub fn bump_named(&mut self, name: &str) {
        match self.named.iter_mut().find(|(n, _)| n == name) {
            Some((_, count)) => *count += 1,
            None => self.named.push((name.to_string(), 1)),
        }
    }

    /// Takes the pending named deltas.
    pub fn drain_named(&mut self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.named)
    }

    pub fn named(&self, name: &str) -> u64 {
        self.named.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c)
    }

    /// Takes the pending deltas, leaving zeros.
    pub fn drain(&mut self) -> Vec<(Counter, u64)> {
        let out = Counter::all().iter().map(|&c| (c, self.get(c))).filter(|(_, n)| *n > 0).collect();
        self.counts.iter_mut().for_each(|n| *n = 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prometheus_safe_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for name in COUNTER_NAMES.iter().chain(GAUGE_NAMES) {
            assert!(name.starts_with("botgate_"));
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'),
                "{name}"
            );
            assert!(seen.insert(*name), "duplicate {name}");
        }
        assert_eq!(COUNTER_NAMES.len(), Counter::all().len());
    }

    #[test]
    fn drain_returns_and_resets() {
        let mut t = Tally::default();
        t.bump(Counter::RequestsBlock);
        t.add(Counter::EvictionsClients, 5);
        assert_eq!(t.drain(), vec![(Counter::RequestsBlock, 1), (Counter::EvictionsClients, 5)]);
        assert!(t.drain().is_empty());
    }
}
