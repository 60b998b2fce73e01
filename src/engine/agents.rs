//! Signed agents (Web Bot Auth), on the head before a user agent's claim is read: a request
//! signed as an agent the policy knows is that agent's claim, proven by the signature alone.
//!
//! A valid signature over this request by a key in the agent's fetched directory proves the
//! claim (`verified=signature`), and the agent then gets what the policy says for it, like a
//! proven crawler. A signature that is forged, tampered, expired, valid for too long or replayed
//! is the block tier (`signature_invalid`): only the key holder could have made a valid one, so
//! a failed one is someone pretending. A signature that fails the profile before its agent is
//! known (expired, malformed, valid too long, no nonce) is noted among the reasons and scored
//! (`signature_invalid`), since it may be an agent the policy does not know. What cannot be
//! decided (a key not in the directory yet, a directory not fetched yet, an algorithm or
//! component this verifier does not implement, an agent the policy does not know) proves
//! nothing either way. In both of these the user agent claims as usual: an unprovable signature
//! never stands in for an impersonation's check.

use super::crawlers::{Claim, Proof};
use super::{Engine, Pending};
use crate::challenge::nonces::Consume;
use crate::formats::signature::{self, Candidate, Headers, Verdict, Why};
use crate::request::head::Head;

/// The request's fields as the verifier reads them.
struct Fields<'a>(&'a Head);

impl Headers for Fields<'_> {
    /// A line that is not UTF-8 is kept as a replacement character, which no signature base
    /// accepts: skipping it would let a covered field carry a line the signer never signed.
    fn values(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.0
            .iter()
            .filter(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| std::str::from_utf8(v).unwrap_or("\u{FFFD}"))
            .collect()
    }
}

/// What a request's signature says.
pub(super) enum Signed {
    /// No Web Bot Auth signature, or one that proves nothing either way: the user agent claims.
    Nothing,
    /// A signature that fails the profile before its agent is known (expired, malformed, valid
    /// too long): noted among the reasons, and the user agent claims.
    Noted(&'static str),
    /// Signed as the crawler at this index: proven, or refuted (forged, tampered, replayed).
    Claim(Claim),
}

impl Engine {
    /// Reads the request's Web Bot Auth signature (cheap checks first, the Ed25519
    /// verification last, only for an agent the policy knows whose keys are here).
    pub(super) fn signed(&mut self, head: &Head, now: u64) -> Signed {
        let Some(policy) = self.policy.crawlers.as_ref().and_then(|c| c.signatures) else { return Signed::Nothing };
        let fields = Fields(head);
        if !signature::is_signed(&fields) {
            return Signed::Nothing;
        }
        let text = |name: &str, or: &'static str| {
            head.first(name).and_then(|v| std::str::from_utf8(v).ok()).filter(|v| !v.is_empty()).unwrap_or(or)
        };
        let authority = head.first(":authority").or_else(|| head.first("host")).unwrap_or_default();
        let request = signature::Request {
            method: text(":method", "GET"),
            scheme: text(":scheme", "https"),
            authority: std::str::from_utf8(authority).unwrap_or(""),
            target: text(":path", "/"),
            headers: &fields,
        };
        let candidate = match signature::select(&request, &policy, now / 1000) {
            Ok(c) => c,
            Err(why) if why.is_unverified() || why == Why::NoWebBotAuthTag => return Signed::Nothing,
            Err(why) => return Signed::Noted(why.as_str()),
        };
        let Some(i) = self.signer_of(&candidate) else { return Signed::Nothing };
        // A signed agent wearing another crawler's user agent is judged by that claim.
        let crawlers = self.policy.crawlers.as_ref();
        if crawlers.and_then(|c| c.claimed(head.first("user-agent").unwrap_or_default())).is_some_and(|j| j != i) {
            return Signed::Nothing;
        }
        let require_nonce = crawlers.is_some_and(|c| c.require_nonce);
        if require_nonce && candidate.nonce().is_none() {
            return Signed::Noted("no_nonce");
        }
        match self.prove(i, &candidate, now) {
            // What proves nothing never stands in for the user agent's claim.
            Proof::Unchecked => Signed::Nothing,
            proof => Signed::Claim(Claim { crawler: i, proof }),
        }
    }

    /// The crawler the signature is by: the one signing as its `Signature-Agent` origin, or,
    /// with no agent named, the one whose directory holds its key.
    fn signer_of(&self, c: &Candidate) -> Option<usize> {
        let list = &self.policy.crawlers.as_ref()?.list;
        match c.agent() {
            Some(agent) => list.iter().position(|x| x.signer.as_ref().is_some_and(|s| s.origin == agent.origin)),
            None => list.iter().position(|x| x.signer.as_ref().is_some_and(|s| s.keys.get(c.keyid()).is_some())),
        }
    }

    fn prove(&mut self, i: usize, c: &Candidate, now: u64) -> Proof {
        let Some(keys) = self.policy.crawlers.as_ref().and_then(|t| t.list.get(i)).and_then(|x| x.signer.as_ref())
        else {
            return Proof::Unchecked;
        };
        let keys = keys.keys.clone();
        match c.verify(&keys) {
            Verdict::Valid { keyid, nonce: Some(nonce), expires, .. } => {
                let skew_ms = self.policy.crawlers.as_ref().and_then(|t| t.signatures).map_or(0, |p| p.skew) * 1000;
                // Once per key and nonce, by every worker, until it expires.
                // 32 hex digits, like a puzzle's nonce (the shared store's shape).
                let h = |tag: &[u8]| crate::base::fasthash::hash(&[tag, keyid.as_bytes(), nonce.as_bytes()]);
                let spent = format!("{:016x}{:016x}", h(b"wba-1"), h(b"wba-2"));
                match self.gate.spend_once(&spent, expires * 1000 + skew_ms, now) {
                    Consume::Fresh | Consume::FreshEvicting => Proof::Signature,
                    Consume::Replayed => Proof::BadSignature("replayed"),
                    Consume::Unavailable => Proof::Unchecked,
                }
            }
            Verdict::Valid { .. } => Proof::Signature,
            Verdict::Invalid(why) if why.is_unverified() => Proof::Unchecked,
            Verdict::Invalid(why) => Proof::BadSignature(why.as_str()),
        }
    }
}

/// Takes a proven or refuted signed claim into `p` (it replaces whatever the user agent says);
/// `false` when the user agent's claim is still to be read.
pub(super) fn take(p: &mut Pending, signed: Signed) -> bool {
    match signed {
        Signed::Nothing => false,
        Signed::Noted(why) => {
            p.bad_signature = Some(why);
            false
        }
        Signed::Claim(c) => {
            p.claim = Some(c);
            true
        }
    }
}
