//! Single use across the fleet (`fleet.single_use`): before a solution is judged, the fleet's
//! Redis is asked to spend its nonce (`SET … NX`, one round trip through webdis). A solution
//! another Envoy took is then a replay here too.
//!
//! Only a solution that would clear its sender, and that this Envoy has not spent already, is
//! asked about: a wrong, foreign or forged one is judged as ever without a word to Redis (nobody
//! can spend another's puzzle in Redis, or fill it with junk), and a local replay needs none. So
//! each solved puzzle costs Redis at most one call per Envoy. When Redis cannot answer, the
//! solution is spent in this Envoy only and taken only from a young puzzle
//! ([`FleetSpend::Unconfirmed`]): degraded, never open.

use super::lookups::{Answer, Lookup};
use super::{Engine, Pending, Step};
use crate::base::telemetry::Counter;
use crate::challenge::back;
use crate::challenge::gate::{self, Who};
use crate::challenge::nonces::FleetSpend;
use crate::request::fetch;
use crate::request::head::Head;

/// The lookup service of a spend (the shell sends it to the fleet's webdis).
pub const FLEET_SPEND: &str = "fleet_spend";
/// How long past its puzzle's expiry a spent nonce stays in Redis (the clock skew between Envoys
/// it covers).
const CLOCK_SLACK_MS: u64 = 60_000;

/// The Redis key and lifetime (ms) a spend question sets: the nonce stays spent until its
/// puzzle expires.
pub fn redis_spend(question: &Lookup) -> Option<(String, u64)> {
    let (nonce, ttl) = spend_of(question)?;
    let well_formed = nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then(|| (format!("botgate:n:{nonce}"), ttl))
}

/// A spend question's nonce and lifetime (ms): its key is `<nonce>:<ttl>`.
fn spend_of(question: &Lookup) -> Option<(&str, u64)> {
    let (nonce, ttl) = question.key.split_once(':').filter(|_| question.service == FLEET_SPEND)?;
    Some((nonce, ttl.parse().ok()?))
}

/// A spend's answer as the shell hands it in: `fresh`, `spent`, or a failure (Redis down,
/// slow or garbled). The shell answers [`Answer::NotFound`] for a spend it could not wait for
/// (no room, or its call went with another request): not judged.
pub fn spend_answer(set: Option<bool>) -> Answer {
    match set {
        Some(true) => Answer::Value("fresh".into()),
        Some(false) => Answer::Value("spent".into()),
        None => Answer::Failed,
    }
}

impl Engine {
    /// The fleet's question for the solution this request submits (`own`: the own endpoint it
    /// is for; `None`, a page with a solution in its headers), asked once per request.
    pub(super) fn spend_question(
        &mut self,
        head: &Head,
        p: &mut Pending,
        own: Option<&[u8]>,
        now: u64,
    ) -> Option<Lookup> {
        if std::mem::replace(&mut p.spend_checked, true) || !self.policy.fleet.as_ref().is_some_and(|f| f.single_use) {
            return None;
        }
        let q = head.query();
        let (challenge, solution) = match own {
            // What the endpoint would refuse before judging never reaches Redis: another site's
            // link, a session failed for good.
            Some(b"verify") if fetch::same_origin(head) => {
                (back::query_param(q, "challenge")?, back::query_param(q, "solution")?)
            }
            Some(_) => return None,
            None => gate::header_submission(head).map(|(c, s)| (c.to_string(), s.to_string()))?,
        };
        let id = self.session_of(head, p.client.keyed);
        self.fleet_failure(id.key, now);
        let failed = self.sessions.peek_mut(id.key.id).is_some_and(|s| s.challenge_failed);
        if failed || self.penalties(&id.answers_for, now).0 {
            return None;
        }
        let who = Who::new(id.key, head, p.client.ip, now);
        let (nonce, expires_ms) = self.gate.unspent(&challenge, &solution, &who)?;
        if self.replayed_elsewhere.get_mut(&gate::nonce_id(&nonce)).is_some_and(|until| *until > now) {
            // Another Envoy has it: a replay, known without asking again.
            p.spent = Some(FleetSpend::Replayed);
            return None;
        }
        // Kept past the puzzle's expiry by the clock skew an Envoy may have: an Envoy whose clock
        // lags still takes the puzzle for that long.
        let ttl = expires_ms.saturating_sub(now).max(1) + CLOCK_SLACK_MS;
        Some(Lookup { service: FLEET_SPEND, key: format!("{nonce}:{ttl}") })
    }

    /// Resumes a request with the fleet's word on its solution (`None`: the call could not be
    /// made): its own endpoint answers, or the rest of its waits follow.
    pub(super) fn after_spend(
        &mut self,
        mut p: Pending,
        head: &Head,
        question: &Lookup,
        answer: Option<&Answer>,
        now: u64,
    ) -> Step {
        let spent = match answer {
            Some(Answer::Value(v)) if v == "fresh" => FleetSpend::Fresh,
            Some(Answer::Value(v)) if v == "spent" => FleetSpend::Replayed,
            Some(Answer::Failed) => FleetSpend::Unconfirmed,
            // No room to ask, or the call went with another request: asked again next time (an
            // unconfirmed spend would let a copy through on every Envoy).
            Some(Answer::NotFound) | Some(Answer::Value(_)) | None => FleetSpend::Busy,
        };
        self.tally.bump(match spent {
            FleetSpend::Fresh => Counter::FleetSpendFresh,
            FleetSpend::Replayed => Counter::FleetSpendReplayed,
            FleetSpend::Unconfirmed => Counter::FleetSpendUnconfirmed,
            FleetSpend::Busy => Counter::FleetSpendBusy,
        });
        if let (FleetSpend::Replayed, Some((nonce, ttl))) = (spent, spend_of(question)) {
            let until = now + ttl;
            *self.replayed_elsewhere.get_or_insert_with(gate::nonce_id(nonce), || until) = until;
        }
        p.spent = Some(spent);
        match head.path().strip_prefix(gate::PREFIX.as_bytes()) {
            Some(rest) => Step::Decided(self.own_endpoint(rest, head, p.client, p.spent, now)),
            None => self.proceed(p, head, now),
        }
    }
}
