//! botgate's own endpoints under `/.well-known/botgate/`: the pages' assets, `verify` (a
//! browser's solution) and `pow` (the step-up page's fallback to a proof of work). They run after
//! the head stages, like any page: a listed or limited client gets nothing from them.

use super::act::{blocked, passed};
use super::identify::Identity;
use super::Engine;
use crate::base::telemetry::Counter;
use crate::challenge::gate::{Judged, Who};
use crate::challenge::nonces::FleetSpend;
use crate::challenge::{back, beacon};
use crate::decision::record::{Decision, Reply, Verdict};
use crate::identity::client::Client;
use crate::identity::session_id::SessionKey;
use crate::policy::ChallengeType;
use crate::request::fetch::{self, Fetch};
use crate::request::head::Head;

impl Engine {
    /// botgate's own endpoints: assets, `verify` (a browser's solution) and `pow` (the step-up
    /// page's fallback to a proof of work).
    pub(super) fn own_endpoint(
        &mut self,
        rest: &[u8],
        head: &Head,
        client: Client,
        spent: Option<FleetSpend>,
        now: u64,
    ) -> Decision {
        let mut d = Decision::pass(client.ip);
        d.verdict = Verdict::Serve;
        match rest {
            r if r == beacon::ENDPOINT => self.beacon_endpoint(&mut d, head, client, now),
            r if r == crate::challenge::pages::REPORT => self.report_endpoint(&mut d, head, client, now),
            b"verify" | b"pow" if !fetch::same_origin(head) => {
                // A cross-site link, form or redirect: nobody's challenge is touched.
                self.tally.bump(Counter::ChallengeIgnoredCrossSite);
                d.reasons.push("cross_site_request");
                d.answer = Some(Box::new(Reply::json(403, "cross_site_request", &d.reasons, head.request_id())));
            }
            b"verify" | b"pow" => {
                let Identity { key, answers_for, .. } = self.session_of(head, client.keyed);
                self.fleet_failure(key, now);
                if self.penalties(&answers_for, now).0 && !self.observing(false) {
                    blocked(&mut d, &mut self.tally);
                    return self.record(d);
                }
                d.session = Some(key.id);
                d.authenticated = key.authenticated;
                let back = back::query_param(head.query(), "return").filter(|r| back::safe_return(r).is_some());
                let who = Who::new(key, head, client.ip, now);
                if rest == b"verify" {
                    self.verify_endpoint(&mut d, head, key, &who, back, spent);
                } else {
                    self.pow_endpoint(&mut d, head, key, &who, back);
                }
            }
            _ => {
                d.answer = Some(Box::new(match crate::challenge::pages::asset(rest) {
                    Some(a) => Reply {
                        status: 200,
                        headers: vec![
                            ("content-type", a.content_type.to_string()),
                            ("cache-control", "public, max-age=3600".to_string()),
                            ("x-content-type-options", "nosniff".to_string()),
                        ],
                        body: a.body.to_string(),
                    },
                    None => Reply::json(404, "not_found", &[], head.request_id()),
                }))
            }
        }
        self.record(d)
    }

    /// A person says a challenge stopped them wrongly (the form on the challenge pages): counted
    /// in `botgate_false_positive_reports_total` once per session botgate challenged, from a
    /// same-origin POST only, so neither another site nor a client that was never stopped can
    /// run the count up. The answer is the same either way.
    fn report_endpoint(&mut self, d: &mut Decision, head: &Head, client: Client, now: u64) {
        if head.method() != b"POST" || !fetch::same_origin(head) {
            d.reasons.push("cross_site_request");
            d.answer = Some(Box::new(Reply::json(403, "cross_site_request", &d.reasons, head.request_id())));
            return;
        }
        let Identity { key, .. } = self.session_of(head, client.keyed);
        d.session = Some(key.id);
        let counted = self.sessions.peek_mut(key.id).is_some_and(|s| {
            let first = s.challenged && !s.reported;
            s.reported |= first;
            first
        }) && self.first_report_within_the_hour(client, now);
        if counted {
            self.tally.bump(Counter::FalsePositiveReports);
        }
        d.reasons.push(if counted { "false_positive_report" } else { "false_positive_report_ignored" });
        // The request it names, as the access log can be searched for it.
        let id = back::query_param(head.query(), "id").unwrap_or_default();
        let id: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(64).collect();
        d.detail = Some(id.clone()).filter(|i| !i.is_empty());
        d.answer = Some(Box::new(Reply {
            status: 200,
            headers: vec![
                ("content-type", "text/html; charset=utf-8".to_string()),
                ("cache-control", "no-store".to_string()),
                ("content-security-policy", crate::challenge::pages::CSP.to_string()),
            ],
            body: crate::challenge::pages::reported(&id),
        }));
    }

    /// One counted report per client address an hour: sessions a client can make up (a session
    /// id, a visitor cookie) copy the challenge they came from, and must not each report it.
    fn first_report_within_the_hour(&mut self, client: Client, now: u64) -> bool {
        let Some(ip) = client.keyed.or(client.ip) else { return false };
        let last = self.reports.get_or_insert_with(ip, || 0);
        let first = *last == 0 || now.saturating_sub(*last) >= 3_600_000;
        if first {
            *last = now.max(1);
        }
        first
    }

    /// A page's beacon ([`crate::challenge::beacon`]): sent by the page's own script, so a
    /// same-origin POST; checked for this session and client, spent once, then its traits are
    /// the session's. Answers carry no detail a forger could learn from beyond the reason.
    fn beacon_endpoint(&mut self, d: &mut Decision, head: &Head, client: Client, now: u64) {
        if head.method() != b"POST" || !fetch::same_origin(head) {
            return self.refuse_beacon(d, head, "cross_site_request");
        }
        let Identity { key, .. } = self.session_of(head, client.keyed);
        let who = Who::new(key, head, client.ip, now);
        let token = back::query_param(head.query(), "t").unwrap_or_default();
        let keys: Vec<&[u8]> = self.gate.clearance.keys.iter().map(|k| k.secret.as_slice()).collect();
        let (nonce, issued_s) = match beacon::check(&keys, &who, &token) {
            Ok(checked) => checked,
            Err(r) => return self.refuse_beacon(d, head, r.reason()),
        };
        d.session = Some(key.id);
        let session = self.sessions.get(key, now);
        if !session.beacon.spend(nonce, issued_s) {
            return self.refuse_beacon(d, head, "beacon_replayed");
        }
        let traits = beacon::reported(head.query());
        session.beacon.answer();
        if key.visitor || key.authenticated {
            session.beacon.driven |= traits & beacon::traits::DRIVEN != 0;
            session.beacon.inconsistent |= traits & !beacon::traits::DRIVEN != 0;
        }
        // An anonymous session without a cookie is everyone on this address with this browser:
        // what one of them reports is not recorded against the rest (challenging the shared
        // session would spend its attempts until everyone behind the address is blocked). A
        // bot that drops its cookies escapes this signal, not the others.
        self.tally.bump(if traits != 0 { Counter::BeaconAutomation } else { Counter::BeaconAccepted });
        d.reasons.push(if traits != 0 { "automation_reported" } else { "beacon_accepted" });
        d.detail = (traits != 0).then(|| beacon::describe(traits));
        d.answer = Some(Box::new(Reply {
            status: 204,
            headers: vec![("cache-control", "no-store".into())],
            body: String::new(),
        }));
    }

    /// A beacon refused: `403` with its one reason, and counted.
    fn refuse_beacon(&mut self, d: &mut Decision, head: &Head, reason: &'static str) {
        self.tally.bump(Counter::BeaconRefused);
        d.reasons.push(reason);
        d.answer = Some(Box::new(Reply::json(403, reason, &d.reasons, head.request_id())));
    }

    /// The shell added the beacon's script to a page of this session.
    pub fn beacon_sent(&mut self, session: u64, now: u64) {
        self.tally.bump(Counter::BeaconInjected);
        if let Some(s) = self.sessions.peek_mut(session) {
            s.beacon.sent(now);
        }
    }

    /// A browser's solution: a pass sets the cookie and continues to the page first asked for;
    /// a failure sends it back for a new puzzle, until the session has failed for good; anything
    /// that is not this session's own puzzle changes nothing (and creates no session).
    fn verify_endpoint(
        &mut self,
        d: &mut Decision,
        head: &Head,
        key: SessionKey,
        who: &Who,
        back: Option<String>,
        spent: Option<FleetSpend>,
    ) {
        let q = head.query();
        let (Some(c), Some(s)) = (back::query_param(q, "challenge"), back::query_param(q, "solution")) else {
            d.answer = Some(Box::new(Reply::json(400, "missing challenge or solution", &[], head.request_id())));
            return;
        };
        let observe = self.observing(false);
        let (failed, passed_nonce) =
            self.sessions.peek_mut(key.id).map_or((false, 0), |s| (s.challenge_failed, s.passed_nonce));
        if failed && !observe {
            return blocked(d, &mut self.tally);
        }
        match self.gate.judge(&c, &s, who, passed_nonce, spent, &mut self.tally) {
            Judged::Solved(solved) => {
                let (key, who, visitor) = self.adopt_visitor(key, who);
                let session = self.sessions.get(key, who.now);
                passed(d, &self.gate.pass(&solved, session, &who), &self.gate);
                let cookie = d.clearance.take().map(|c| c.0);
                let mut headers = vec![("cache-control", "no-store".to_string())];
                headers.extend(cookie.map(|c| ("set-cookie", c)));
                headers.extend(visitor.map(|c| ("set-cookie", c)));
                d.answer = Some(Box::new(match back {
                    Some(back) => {
                        headers.push(("location", back));
                        Reply { status: 303, headers, body: String::new() }
                    }
                    None => verified_page(headers),
                }));
            }
            Judged::Failed(reason) => {
                d.reasons.push(reason);
                let session = self.sessions.get(key, who.now);
                self.gate.fail(session);
                if session.challenge_failed && !observe {
                    return blocked(d, &mut self.tally);
                }
                d.answer = Some(Box::new(try_again(d, head, back)));
            }
            Judged::AlreadyPassed => {
                // The solver's own reload: it passed already; show it so again.
                d.reasons.push("pow_already_passed");
                d.answer = Some(Box::new(match back {
                    Some(back) => redirect(back),
                    None => verified_page(vec![("cache-control", "no-store".to_string())]),
                }));
            }
            Judged::Deferred(reason, puzzle) => {
                if let Some(session) = self.sessions.peek_mut(key.id) {
                    self.gate.refund(session, puzzle);
                }
                d.reasons.push(reason);
                d.answer = Some(Box::new(try_again(d, head, back)));
            }
            Judged::Ignored(reason) => {
                d.reasons.push(reason);
                d.answer = Some(Box::new(try_again(d, head, back)));
            }
        }
    }

    /// The step-up page's fallback: a proof of work for this session.
    /// Only for a page navigation of a session with a step-up pending: an `<img>` pointing here
    /// (in user content on the site itself, say) spends nobody's attempts.
    fn pow_endpoint(&mut self, d: &mut Decision, head: &Head, key: SessionKey, who: &Who, back: Option<String>) {
        let pending = self.sessions.peek_mut(key.id).map(|s| (s.challenge_failed, s.step_up_pending));
        let navigation = matches!(fetch::fetch_kind(head), Fetch::Navigation { .. });
        if self.observing(false) || !navigation || !pending.is_some_and(|p| p.1) {
            // Nothing to fall back from (or nothing is challenged in observe mode): straight back.
            d.reasons.push("no_step_up_pending");
            d.answer = Some(Box::new(redirect(back.unwrap_or_else(|| "/".to_string()))));
            return;
        }
        if pending.is_some_and(|p| p.0) {
            return blocked(d, &mut self.tally);
        }
        d.verdict = Verdict::Challenge(ChallengeType::ProofOfWork);
        d.reasons.push("step_up_fallback");
        self.issue(d, ChallengeType::ProofOfWork, key.id, head, who, back);
    }
}

/// The "check passed" page, with `headers` (the cookies of a pass).
fn verified_page(mut headers: Vec<(&'static str, String)>) -> Reply {
    headers.push(("content-type", "text/html; charset=utf-8".to_string()));
    headers.push(("content-security-policy", crate::challenge::pages::CSP.to_string()));
    Reply { status: 200, headers, body: crate::challenge::pages::verified() }
}

/// A solution that did not pass: back to the page for a new puzzle, or the reasons as JSON.
fn try_again(d: &Decision, head: &Head, back: Option<String>) -> Reply {
    match back {
        Some(back) => redirect(back),
        None => Reply::json(401, "challenge", &d.reasons, head.request_id()),
    }
}

/// `303 See Other` to a path already checked by [`back::safe_return`].
fn redirect(location: String) -> Reply {
    Reply {
        status: 303,
        headers: vec![("location", location), ("cache-control", "no-store".to_string())],
        body: String::new(),
    }
}
