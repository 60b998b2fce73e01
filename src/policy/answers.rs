//! Graduated answers: between letting a request through and refusing it outright, botgate can
//! slow it (`throttle`: forwarded after a delay, for rate limits), keep the client waiting for
//! its refusal (`tarpit`), or hand it something plausible and useless (`decoy`: a 200 a scraper
//! files away, marked in the evidence). Seed 001: "throttle suspicious traffic, and waste an
//! attacker's resources with deceptive answers".
//!
//! ```json
//! "answers": {"throttle_ms": 2000, "tarpit_ms": 8000, "max_delayed": 256},
//! "ip_rate_limit": {"max_requests": 40, "window_seconds": 60, "answer": "throttle"},
//! "tiers": {"block": {"conditions": [{"bot_score_above": 0.85, "answer": "tarpit"}]}}
//! ```
//!
//! A delayed request holds a slot of the worker's `max_delayed`; with every slot taken, a
//! throttled request is refused (429) and a tarpitted one answered at once, so a flood can never
//! hold Envoy's connections through botgate.

use super::reader::Obj;

/// How a refusal is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Refusal {
    /// At once: 403 (a block) or 429 (a limit).
    #[default]
    Refuse,
    /// A rate limit only: forwarded after `throttle_ms`.
    Throttle,
    /// The refusal after `tarpit_ms`.
    Tarpit,
    /// A plausible 200 with nothing of value.
    Decoy,
}

impl Refusal {
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Refuse => "refuse",
            Refusal::Throttle => "throttle",
            Refusal::Tarpit => "tarpit",
            Refusal::Decoy => "decoy",
        }
    }
}

/// The delays, and how many requests one worker may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answers {
    pub throttle_ms: u64,
    pub tarpit_ms: u64,
    pub max_delayed: usize,
}

impl Default for Answers {
    fn default() -> Self {
        Answers { throttle_ms: 2_000, tarpit_ms: 8_000, max_delayed: 256 }
    }
}

pub(super) fn read(o: Obj<'_>) -> Answers {
    let d = Answers::default();
    let a = Answers {
        throttle_ms: o.u64_in("throttle_ms", d.throttle_ms, 100, 10_000),
        tarpit_ms: o.u64_in("tarpit_ms", d.tarpit_ms, 100, 30_000),
        max_delayed: o.u64_in("max_delayed", d.max_delayed as u64, 1, 10_000) as usize,
    };
    o.finish();
    a
}

/// A rule's `answer`, among `allowed` (its JSON-path error otherwise).
pub(super) fn refusal(o: &Obj<'_>, allowed: &[&'static str]) -> Refusal {
    match o.choice("answer", "refuse", allowed) {
        "throttle" => Refusal::Throttle,
        "tarpit" => Refusal::Tarpit,
        "decoy" => Refusal::Decoy,
        _ => Refusal::Refuse,
    }
}
