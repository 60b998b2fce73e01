//! Who a request is for, worked out once: its session (named by the session cookie or header,
//! else a genuine visitor cookie, else the client's fingerprint), the sessions whose penalties it
//! carries, and the visitor cookie handed to a session that has none.

use super::visit::Visit;
use super::Engine;
use crate::challenge::gate::{self, Who};
use crate::identity::session_id::{anonymous_key, repeated_sessions, session_key, SessionKey};
use crate::identity::visitor::{self, Presented};
use crate::request::fetch;
use crate::request::head::Head;
use std::net::IpAddr;

/// A request's session, and what it answers for.
pub(super) struct Identity {
    pub key: SessionKey,
    /// The request's genuine visitor cookie.
    pub visitor: Option<Presented>,
    /// Other sessions whose penalties the request carries without writing to them.
    pub answers_for: Vec<u64>,
    /// A signed-in session that, when new, starts from the anonymous session the request would
    /// otherwise have (not a cross-site sub-resource's split session).
    pub inherits: bool,
}

impl Engine {
    /// The identify stage: the request's session, created or renewed, with the penalties it
    /// inherits.
    pub(super) fn identify(&mut self, v: &mut Visit<'_>) {
        let id = self.session_of(v.head, v.client.keyed);
        let (inherited_failure, inherited_score) = self.penalties(&id.answers_for, v.now);
        if id.inherits && self.sessions.peek_mut(id.key.id).is_none() {
            // A new signed-in session starts from the anonymous session it came from: a person
            // keeps the pages their visit has shown, a client cannot shed its failures or its
            // score by sending a session cookie it made up. (Its id is a keyed hash: made only
            // for a session botgate has not seen.)
            let from = anonymous_key(&self.ids, v.head, v.client.keyed, id.visitor.map(|p| p.id));
            // Failed on another Envoy: what it hands on is that failure.
            self.fleet_failure(from, v.now);
            self.sessions.inherit(from.id, id.key.id, id.visitor.is_some());
        }
        self.fleet_failure(id.key, v.now);
        let session = self.sessions.get(id.key, v.now);
        if let (Some(p), false) = (id.visitor, id.key.authenticated) {
            session.visitor_tag = Some(p.tag);
        }
        v.key = id.key;
        v.visitor = id.visitor;
        v.inherited = (inherited_failure, inherited_score);
    }

    /// The request's genuine visitor cookie. The HMAC is checked once per session; after that
    /// the session's copy of the checked tag stands for it.
    fn visitor(&mut self, head: &Head) -> Option<Presented> {
        let p = self.visitors.presented(head)?;
        let known = self
            .sessions
            .peek_mut(p.id)
            .and_then(|s| s.visitor_tag)
            .is_some_and(|t| crate::base::mac::constant_time_eq(&t, &p.tag));
        (known || self.visitors.genuine(&p)).then_some(p)
    }

    /// The request's session: named by the session cookie or header, else by a genuine visitor
    /// cookie, else by the client's fingerprint.
    ///
    /// A sub-resource another site made the browser fetch ([`fetch::foreign_subresource`])
    /// carries the user's cookies and address but not the user's intent: it belongs to a
    /// session of its own, so a hostile page cannot drive someone's score up or spend their
    /// challenge attempts with `<img>` and `fetch`.
    ///
    /// `answers_for`: the main session of such a split (a bot cannot shed its failures by
    /// claiming to be cross-site), and the sessions of a repeated session cookie's other values.
    pub(super) fn session_of(&mut self, head: &Head, keyed: Option<IpAddr>) -> Identity {
        let visitor = self.visitor(head);
        let mut key = session_key(&self.policy.session, &self.ids, head, keyed, visitor.map(|v| v.id));
        let mut answers_for = repeated_sessions(&self.policy.session, head);
        let mut inherits = key.authenticated;
        if fetch::foreign_subresource(head) {
            answers_for.push(key.id);
            if inherits {
                // It carries the anonymous session's penalties too (a made-up cookie claiming to
                // be cross-site sheds nothing), without starting from it.
                answers_for.push(anonymous_key(&self.ids, head, keyed, visitor.map(|v| v.id)).id);
                inherits = false;
            }
            key.id = self.ids.hash(&[b"cross-site", &key.id.to_le_bytes()]);
        }
        Identity { key, visitor, answers_for, inherits }
    }

    /// The strictest of the sessions a request answers for: failed for good, and the highest
    /// score.
    pub(super) fn penalties(&mut self, sessions: &[u64], now: u64) -> (bool, f64) {
        let (mut failed, mut score) = (false, 0.0f64);
        if let Some(f) = &self.failures {
            failed = sessions.iter().any(|id| f.is_failed(*id, now));
        }
        for s in sessions.iter().filter_map(|id| self.sessions.peek_mut(*id).map(|s| (s.challenge_failed, s.score))) {
            failed |= s.0;
            score = score.max(if s.0 { 1.0 } else { s.1 });
        }
        (failed, score)
    }

    /// A session another Envoy of the fleet saw fail for good fails here too (it is not
    /// published again).
    pub(super) fn fleet_failure(&mut self, key: SessionKey, now: u64) {
        if self.failures.as_ref().is_some_and(|f| f.is_failed(key.id, now)) {
            let s = self.sessions.get(key, now);
            s.challenge_failed = true;
            s.failure_shared = true;
        }
    }

    /// The session a pass clears and its token names: an anonymous session without a visitor
    /// cookie is handed one with the pass, so the token is bound to that visitor (one solve
    /// clears one browser, not everyone behind its network with its user agent).
    pub(super) fn adopt_visitor(&mut self, key: SessionKey, who: &Who) -> (SessionKey, Who, Option<String>) {
        if key.authenticated || key.visitor || !self.visitors.enabled() {
            return (key, who.clone(), None);
        }
        let id = self.fork_visitor(key.id, who.now);
        let adopted = SessionKey { id, authenticated: false, visitor: true };
        let who = Who { sid: gate::sid(adopted), ..who.clone() };
        (adopted, who, self.visitors.cookie(id))
    }

    /// A navigation that goes through without a visitor cookie is handed one (a shared session
    /// hands out a bounded number a minute): its session then follows it to its next address
    /// (see [`visitor`]).
    /// A visitor cookie for this session, when it should get one: the cookie, and the key of
    /// the session it names from now on.
    pub(super) fn hand_visitor(&mut self, key: SessionKey, now: u64) -> Option<(String, SessionKey)> {
        if !self.visitors.enabled() {
            return None;
        }
        if !self.sessions.peek_mut(key.id).is_some_and(|s| s.hand_visitor(now)) {
            return None;
        }
        let id = self.fork_visitor(key.id, now);
        let cookie = self.visitors.cookie(id)?;
        Some((cookie, SessionKey { id, authenticated: false, visitor: true }))
    }

    /// A fresh visitor id, its session a copy of `from`.
    fn fork_visitor(&mut self, from: u64, now: u64) -> u64 {
        self.visitors_handed += 1;
        let id = visitor::fresh_id(from, now, self.visitors_handed);
        self.sessions.fork(from, id);
        id
    }
}
