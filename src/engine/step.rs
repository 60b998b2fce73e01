//! Waiting as an explicit state: what the engine answers for a request, and what a paused
//! request carries until the shell resumes it.
//!
//! [`super::Engine::begin`] runs the head stages once (client, allow tier, threat intel, rate
//! limits) and answers a [`Step`]: decided, or waiting for the body or for a lookup. The paused
//! request ([`Pending`]) records the stage it stopped at and what the head stages found, so
//! resuming never repeats them: a rate-limit count, a spent CI signature or an API contract's
//! request is taken once per request, however long it waits.

use super::lookups::{Answer, Lookup};
use crate::checks::limits::Limited;
use crate::decision::record::Decision;
use crate::identity::client::Client;
use crate::request::head::Head;

/// What the engine answers for a request.
#[derive(Debug)]
pub enum Step {
    Decided(Decision),
    /// Resume with [`Resume::Body`] (up to the policy's `max_body_bytes`).
    NeedBody(Pending),
    /// Resume with [`Resume::Answer`]: the lookup's answer, or [`Answer::Failed`] when it
    /// could not be had (the request is then decided without it).
    NeedLookup(Pending, Lookup),
}

/// What the shell resumes a paused request with.
#[derive(Debug)]
pub enum Resume<'a> {
    Body(&'a [u8]),
    Answer(Answer),
}

/// Where a paused request stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Asking the lookups its stages need (the next unanswered one).
    Lookups,
    /// Waiting for the body, when the detector reads it.
    Body,
}

/// What the head stages learnt, carried through every wait to the decision.
#[derive(Debug, Clone)]
pub struct Pending {
    pub(super) stage: Stage,
    pub(super) client: Client,
    pub(super) has_body: bool,
    pub(super) limited: Option<Limited>,
    /// Observe-mode blocks found in the head stages (threat intel, an API contract).
    pub(super) observed: Vec<&'static str>,
    /// Allow-tier checks that were attempted and failed.
    pub(super) refused: Vec<&'static str>,
    /// The normalised path when it differs from the path as sent (see [`crate::request::path`]).
    pub(super) path: Option<Vec<u8>>,
    /// Askers passed so far (answered, or with nothing to ask for this request).
    pub(super) asked: usize,
    /// The lookups answered so far and their answers, in asking order.
    pub(super) answers: Vec<(Lookup, Answer)>,
}

impl Pending {
    /// Where the request stopped.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The path the rules compare: normalised once, on the head.
    pub(super) fn path<'a>(&'a self, head: &'a Head) -> &'a [u8] {
        self.path.as_deref().unwrap_or(head.path())
    }
}
