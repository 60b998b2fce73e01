//! Waiting as an explicit state: what the engine answers for a request, and what a paused
//! request carries until the shell resumes it.
//!
//! [`super::Engine::begin`] runs the head stages once (client, allow tier, threat intel, rate
//! limits) and answers a [`Step`]: decided, or waiting for a lookup or for the body. Each wait is
//! its own type and is resumed by its own call ([`super::Engine::resume_lookup`],
//! [`super::Engine::resume_body`]), so a request waiting for one thing cannot be resumed with
//! another. What the head stages found travels in the wait ([`Pending`]), so resuming never
//! repeats them: a rate-limit count, a spent CI signature or an API contract's request is taken
//! once per request, however long it waits.

use super::lookups::{Answer, Lookup};
use crate::checks::limits::Limited;
use crate::decision::record::Decision;
use crate::identity::client::Client;
use crate::request::head::Head;

/// What the engine answers for a request.
#[derive(Debug)]
pub enum Step {
    Decided(Decision),
    /// Resume with the lookup's answer, or [`Answer::Failed`] when it could not be had (the
    /// request is then decided without it).
    NeedLookup(LookupWait),
    /// Resume with the body (up to the policy's `max_body_bytes`).
    NeedBody(BodyWait),
}

/// A request waiting for the answer to [`LookupWait::question`].
#[derive(Debug)]
pub struct LookupWait {
    pub(super) pending: Pending,
    pub(super) question: Lookup,
}

impl LookupWait {
    /// What to ask (the shell's callout).
    pub fn question(&self) -> &Lookup {
        &self.question
    }
}

/// A request waiting for its body; every lookup it needed is answered.
#[derive(Debug)]
pub struct BodyWait(pub(super) Pending);

/// What the head stages learnt, carried through every wait to the decision.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The engine that made the wait (see [`super::Engine::resume_lookup`]).
    pub(super) generation: u64,
    pub(super) client: Client,
    pub(super) has_body: bool,
    pub(super) limited: Option<Limited>,
    /// A static asset's request (not a navigation), which the limits count only when told to.
    pub(super) asset: bool,
    /// Observe-mode blocks found in the head stages (threat intel, an API contract).
    pub(super) observed: Vec<&'static str>,
    /// Allow-tier checks that were attempted and failed.
    pub(super) refused: Vec<&'static str>,
    /// The normalised path when it differs from the path as sent (see [`crate::request::path`]).
    pub(super) path: Option<Vec<u8>>,
    /// Askers passed so far (answered, or with nothing to ask for this request).
    pub(super) asked: usize,
    /// Each answer with the index of the asker that asked it.
    pub(super) answers: Vec<(usize, Answer)>,
    /// The crawler the user agent claims, and how far its proof got ([`super::crawlers`]).
    pub(super) claim: Option<super::crawlers::Claim>,
    /// A Web Bot Auth signature that failed before its agent was known: why ([`super::agents`]).
    pub(super) bad_signature: Option<&'static str>,
    /// The recognised bot's label, for the decision.
    pub(super) bot: Option<Box<crate::decision::record::BotLabel>>,
    /// A challenge the head stages ask for whatever the score (a crawler the policy challenges).
    pub(super) must_pass: Option<&'static str>,
    /// The fleet was asked about the request's solution, or it had none to ask about
    /// ([`super::spends`]); what the fleet said, if it was asked.
    pub(super) spend_checked: bool,
    pub(super) spent: Option<crate::challenge::nonces::FleetSpend>,
}

impl Pending {
    /// The path the rules compare: normalised once, on the head.
    pub(super) fn path<'a>(&'a self, head: &'a Head) -> &'a [u8] {
        self.path.as_deref().unwrap_or(head.path())
    }
}
