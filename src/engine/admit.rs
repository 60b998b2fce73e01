//! The head stages after the client is known: the allow tier, the block tier on what the head
//! shows (threat intel), the rate limits. Each decides the request or notes what observe mode let
//! through; none runs twice for a request, however long it then waits.

use super::{Engine, Pending};
use crate::base::telemetry::Counter;
use crate::checks::allow::Allow;
use crate::checks::limits::{Limited, Scope};
use crate::decision::record::{Decision, Verdict};
use crate::decision::ruling::{block_tier, Facts};
use crate::request::fetch;
use crate::request::head::Head;
use std::net::IpAddr;

impl Engine {
    /// The allow tier: monitoring, signed CI/CD calls, API consumers within their contract.
    pub(super) fn allow(&mut self, head: &Head, p: &mut Pending, now: u64) -> Option<Decision> {
        let client = p.client.ip;
        match self.allowlist.check(&self.policy.tiers, head, client, now) {
            Allow::Yes { condition, key } => Some(self.allowed(client, condition, key)),
            Allow::OverContract { key, retry_after_ms } => {
                self.tally.bump(Counter::ApiContractExceeded);
                let limited = Limited { scope: Scope::Ip, retry_after_ms };
                let mut d = rate_limited(client, limited, "api_contract_exceeded");
                d.detail = Some(key);
                if !self.observing(false) {
                    return Some(self.record(d));
                }
                p.observed.push("api_contract_exceeded");
                None
            }
            Allow::No { reasons } => {
                p.refused = reasons;
                None
            }
        }
    }

    fn allowed(&mut self, client: Option<IpAddr>, condition: &'static str, key: Option<String>) -> Decision {
        self.tally.bump(match condition {
            "internal_monitoring" => Counter::AllowMonitoring,
            "owned_ci_cd" => Counter::AllowCiCd,
            _ => Counter::AllowApi,
        });
        let mut d = Decision::pass(client);
        d.verdict = Verdict::Allow;
        d.reasons.push(condition);
        d.detail = key;
        self.record(d)
    }

    /// The block tier on the head: what is known before anything is counted or scored (the
    /// client on a threat-intel list). The rest of the tier runs after the score
    /// ([`crate::decision::ruling`]).
    pub(super) fn block_on_head(&mut self, p: &mut Pending, head: &Head, now: u64) -> Option<Decision> {
        let client = p.client.ip;
        let list = client.and_then(|ip| self.policy.blocklists.iter().find(|l| l.contains(ip)))?;
        let r = block_tier(&self.policy.tiers, &Facts::on_head(&list.name), None)?;
        if self.observing(r.observe) {
            p.observed.push(r.reason);
            return None;
        }
        self.tally.bump(r.counter);
        let mut d = Decision::pass(client);
        d.verdict = Verdict::Block;
        d.score = 1.0;
        d.reasons.push(r.reason);
        d.detail = Some(list.name.clone());
        self.grade(&mut d, r.answer, head, now);
        Some(self.record(d))
    }

    /// The per-client rate limit (static assets counted where the policy says). `beacon`: the
    /// request is a page's beacon to botgate's own endpoint, counted with the page's assets, not
    /// as a request of its own (another spelling of its path goes upstream: a page like any other).
    pub(super) fn limit(&mut self, p: &mut Pending, head: &Head, beacon: bool, now: u64) -> Option<Decision> {
        // A page navigation is never an asset, whatever its path (an upstream may serve pages at
        // `/product.php/x.css`); the headers are read only for an asset's path.
        p.asset = beacon
            || fetch::is_static_asset(p.path(head))
                && !matches!(fetch::fetch_kind(head), fetch::Fetch::Navigation { .. });
        let l = match self.limiter.check(p.client.keyed, p.asset, now) {
            Ok(()) => self.fleet_limit(p, now)?,
            Err(l) => l,
        };
        self.tally.bump(if l.scope == Scope::Fleet { Counter::RateLimitedFleet } else { Counter::RateLimitedIp });
        if !self.observing(false) {
            let mut d = rate_limited(p.client.ip, l, rate_limit_reason(l.scope));
            if self.policy.ip_rate_limit.is_some_and(|r| r.throttle) {
                self.grade(&mut d, crate::policy::answers::Refusal::Throttle, head, now);
            }
            return Some(self.record(d));
        }
        p.limited = Some(l);
        None
    }

    /// The global limit, last: a request bound for the upstream is admitted by its score, the
    /// most suspicious shed first as the budget fills ([`crate::checks::limits`]). A challenge
    /// or block answered here costs the upstream nothing and is not counted.
    pub(super) fn shed(&mut self, p: &Pending, head: &Head, d: &mut Decision, now: u64) {
        if d.verdict != Verdict::Pass {
            return;
        }
        let Err(l) = self.limiter.shed(d.score, p.asset, now) else { return };
        self.tally.bump(Counter::RateLimitedGlobal);
        d.reasons.push(rate_limit_reason(l.scope));
        if self.policy.global_rate_limit.is_some_and(|r| r.throttle) {
            self.grade(d, crate::policy::answers::Refusal::Throttle, head, now);
        }
        if self.observing(false) {
            d.would = d.would.or(Some(Verdict::RateLimited));
            return;
        }
        d.verdict = Verdict::RateLimited;
        d.retry_after_s = l.retry_after_ms.div_ceil(1000);
        d.follow_up = None;
        d.visitor = None;
        d.beacon = None;
    }
}

pub(super) fn rate_limit_reason(scope: Scope) -> &'static str {
    match scope {
        Scope::Global => "rate_limit_global",
        Scope::Ip => "rate_limit_ip",
        Scope::Fleet => "rate_limit_fleet",
    }
}

impl Engine {
    /// The per-address limit across the fleet, for a request the worker's own limit admitted
    /// (static assets count as they do for the worker's limit).
    fn fleet_limit(&mut self, p: &Pending, now: u64) -> Option<Limited> {
        let counts = self.fleet.as_mut()?;
        let client = p.client.keyed?;
        if p.asset && !self.policy.ip_rate_limit.is_some_and(|l| l.static_assets) {
            return None;
        }
        let retry_after_ms = counts.count(client, now)?;
        Some(Limited { scope: Scope::Fleet, retry_after_ms })
    }
}

fn rate_limited(client: Option<IpAddr>, l: Limited, reason: &'static str) -> Decision {
    let mut d = Decision::pass(client);
    d.verdict = Verdict::RateLimited;
    d.reasons.push(reason);
    d.retry_after_s = l.retry_after_ms.div_ceil(1000);
    d
}
