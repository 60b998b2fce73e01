//! The challenge tier's mechanics: issuing proof-of-work puzzles and step-up requests, checking
//! solutions and clearance tokens, and botgate's own endpoints under `/.well-known/botgate/`.
//!
//! A session that passes a challenge is *cleared*: it holds a clearance token (cookie
//! `botgate_clearance` or header `x-botgate-clearance`) and, in the worker that saw the pass, a
//! `cleared_until` mark. A cleared session skips the challenge tier until the token expires; block
//! rules still apply.
//!
//! Only a session's own puzzle can count against it. A puzzle is bound to the client (user agent
//! and network) *and* to the session it was issued to; a wrong answer to it or an expired one is
//! a failure, and after `max_failures` of them, or `max_attempts` puzzles issued without a pass,
//! the session is `challenge_failed` and blocked for its remaining lifetime. Anything else —
//! malformed input, a forged or foreign puzzle, a replay (it earns nothing, and only its own
//! session can send it: a reload on another worker or Envoy), a nonce store or fleet that cannot
//! answer — changes nothing for the session (it is counted), so a third party cannot spend
//! someone's attempts.
//! botgate's endpoints that change state also refuse requests that are not same-origin
//! ([`same_origin`]), and never redirect into themselves ([`safe_return`]).
//!
//! Token claims: `sid` names the session the pass was earned by — the signed-in session's id
//! (`x-botgate-session`, the hex id botgate logs), `v<id>` for a visitor (its signed visitor
//! cookie, handed out with the pass), `a<id>` for an anonymous session without one — and `bnd`
//! is [`crate::challenge::token::client_binding`], the user agent and the client's /16 (IPv4) or /32
//! (IPv6): a phone moving between cells of one carrier keeps its clearance, a token copied to
//! another visitor, network or browser does not verify.

use super::nonces::{Consume, FleetSpend, MemoryNonces, NonceStore};
use crate::base::telemetry::{Counter, Tally};
use crate::challenge::pow::{self, PowError};
use crate::challenge::token::{self, Claims, Expect};
use crate::identity::session::Session;
use crate::identity::session_id::SessionKey;
use crate::policy::tiers::{ChallengeSettings, Clearance};
use crate::request::head::Head;
use std::net::IpAddr;

pub const PREFIX: &str = "/.well-known/botgate/";
pub const COOKIE: &str = crate::policy::tiers::CLEARANCE_COOKIE;
pub const CLEARANCE_HEADER: &str = "x-botgate-clearance";
pub const POW_CHALLENGE_HEADER: &str = "x-botgate-pow-challenge";
pub const POW_SOLUTION_HEADER: &str = "x-botgate-pow-solution";

/// A proof-of-work solution that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    pub solve_ms: u64,
    pub suspicious: bool,
    /// The clearance token minted for the session.
    pub token: Option<String>,
}

/// What a submitted solution is worth to the session that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// Correct and fresh, for this session's puzzle: it clears.
    Solved(pow::Solved),
    /// This session's genuine puzzle, wrongly answered, expired or replayed: counts against it.
    Failed(&'static str),
    /// Not this session's puzzle (malformed, forged, another client's or session's), or the
    /// nonce store could not answer: nothing happens to the session.
    Ignored(&'static str),
    /// The puzzle this session last passed, sent again (a reload of the "check passed" page, a
    /// restored tab): it earns nothing and costs nothing.
    AlreadyPassed,
    /// This session's solved puzzle, not judged for a reason that is not the solver's (the
    /// fleet had no room to spend it, or could not confirm an old puzzle spent once): nothing
    /// happens to the session, and the attempt the puzzle used is given back, once per puzzle
    /// ([`Gate::refund`]). Its reason and the puzzle's [`nonce_id`].
    Deferred(&'static str, u64),
}

/// The challenge machinery of one engine: its settings, keys and nonce store.
pub struct Gate {
    pub settings: ChallengeSettings,
    pub clearance: Clearance,
    nonces: Box<dyn NonceStore>,
    /// The lifetime of a puzzle whose single use the fleet cannot confirm (ms; see
    /// [`FleetSpend::Unconfirmed`]).
    pub local_puzzle_ms: u64,
}

impl Gate {
    /// `clearance` must hold a key (the engine generates one when the policy has none).
    pub fn new(settings: ChallengeSettings, clearance: Clearance) -> Self {
        let local_puzzle_ms = settings.expires_seconds * 1000;
        Gate { settings, clearance, nonces: Box::new(MemoryNonces::new(100_000)), local_puzzle_ms }
    }

    /// The fleet's shorter lifetime for a puzzle it cannot confirm spent once (`None`: no fleet).
    pub fn with_local_puzzle_ms(mut self, ms: Option<u64>) -> Self {
        if let Some(ms) = ms {
            self.local_puzzle_ms = ms.min(self.ttl_ms());
        }
        self
    }

    pub fn set_nonce_store(&mut self, store: Box<dyn NonceStore>) {
        self.nonces = store;
    }

    pub fn sweep(&mut self, now_ms: u64) {
        self.nonces.sweep(now_ms);
    }

    fn ttl_ms(&self) -> u64 {
        self.settings.expires_seconds * 1000
    }

    /// A new puzzle for `session` (bound to `who`), or `None` when the session has had its last
    /// one (it is then marked `challenge_failed`). `counted`: whether it spends an attempt (see
    /// [`own_request`]).
    pub fn issue_pow(&self, session: &mut Session, score: f64, who: &Who, counted: bool) -> Option<(String, u8)> {
        let key = self.clearance.keys.first()?;
        if counted && !self.spend_attempt(session) {
            return None;
        }
        let difficulty = pow::difficulty(self.settings.difficulty, session.failed_challenges, score);
        let challenge = pow::issue(&key.secret, &nonce(), difficulty, who.now + self.ttl_ms(), &who.puzzle_binding());
        Some((challenge, difficulty))
    }

    /// Counts a step-up or puzzle handed out; false once the session is out of attempts.
    pub fn spend_attempt(&self, session: &mut Session) -> bool {
        if session.challenges_issued >= self.settings.max_attempts {
            session.challenge_failed = true;
            return false;
        }
        session.challenges_issued += 1;
        true
    }

    /// Spends a one-time value of another kind (a signed agent's nonce) in the same store, so
    /// every worker sees it spent.
    pub fn spend_once(&mut self, nonce: &str, expires_ms: u64, now_ms: u64) -> Consume {
        self.nonces.consume(nonce, expires_ms, now_ms)
    }

    /// Spends a solution's nonce in this Envoy, unless the fleet saw it spent elsewhere: that is a
    /// replay, and this Envoy's store is left alone (a copy sent to another worker at the same
    /// time, to which Redis said fresh, still passes).
    fn spend(&mut self, nonce: &str, expires_ms: u64, now_ms: u64, fleet: Option<FleetSpend>) -> Consume {
        match fleet {
            Some(FleetSpend::Replayed) => Consume::Replayed,
            _ => self.nonces.consume(nonce, expires_ms, now_ms),
        }
    }

    /// A submitted solution that would clear `who`, and is not spent in this Envoy yet: the one
    /// the fleet is asked about (a wrong, foreign or forged one never reaches Redis, so nobody
    /// can spend another's puzzle there or fill it with junk). Its nonce, and when its puzzle
    /// expires.
    pub fn unspent(&self, challenge: &str, solution: &str, who: &Who) -> Option<(String, u64)> {
        let keys: Vec<&[u8]> = self.clearance.keys.iter().map(|k| k.secret.as_slice()).collect();
        let solved = pow::verify(challenge, solution, &keys, who.now, self.ttl_ms(), &who.puzzle_binding()).ok()?;
        (!self.nonces.is_spent(&solved.nonce, solved.expires_ms)).then_some((solved.nonce, solved.expires_ms))
    }

    /// Judges a submitted solution for the session `who` names, spending its nonce when it is
    /// genuine and solved. `passed_nonce`: the session's last passed puzzle ([`nonce_id`]), whose
    /// solution sent again (a reload of the "check passed" page, a restored tab) is a no-op, not
    /// a replay. `fleet`: what the fleet said of it (`None`: not asked, single use is this
    /// Envoy's). Counted here; the session is not touched.
    pub fn judge(
        &mut self,
        challenge: &str,
        solution: &str,
        who: &Who,
        passed_nonce: u64,
        fleet: Option<FleetSpend>,
        tally: &mut Tally,
    ) -> Judged {
        let keys: Vec<&[u8]> = self.clearance.keys.iter().map(|k| k.secret.as_slice()).collect();
        let judged = match pow::verify(challenge, solution, &keys, who.now, self.ttl_ms(), &who.puzzle_binding()) {
            Err(e @ (PowError::Unsolved | PowError::Expired)) => Judged::Failed(pow_reason(e)),
            Err(e) => Judged::Ignored(pow_reason(e)),
            // Not judged now: Redis had no room for it; sent again, it will be.
            Ok(solved) if fleet == Some(FleetSpend::Busy) => {
                Judged::Deferred("pow_fleet_busy", nonce_id(&solved.nonce))
            }
            // Unconfirmed by the fleet: a puzzle older than the local lifetime is not taken, and
            // not held against the solver (a slow phone is not failed for Redis being down).
            Ok(solved) if fleet == Some(FleetSpend::Unconfirmed) && solved.solve_ms >= self.local_puzzle_ms => {
                Judged::Deferred(UNCONFIRMED_TOO_OLD, nonce_id(&solved.nonce))
            }
            Ok(solved) => match self.spend(&solved.nonce, solved.expires_ms, who.now, fleet) {
                Consume::Fresh => Judged::Solved(solved),
                Consume::FreshEvicting => {
                    tally.bump(Counter::NonceStoreEvicted);
                    Judged::Solved(solved)
                }
                Consume::Replayed if nonce_id(&solved.nonce) == passed_nonce => Judged::AlreadyPassed,
                // A replay earns nothing, and only the session the puzzle is bound to can send
                // it: counted, but not held against the session (a reload of the "check passed"
                // page on another worker or Envoy must not fail the person who solved it).
                Consume::Replayed => {
                    tally.bump(Counter::ChallengesPowFailed);
                    tally.bump(Counter::ChallengeFailReplayed);
                    Judged::Ignored("pow_replayed")
                }
                Consume::Unavailable => {
                    tally.bump(Counter::NonceStoreUnavailable);
                    Judged::Ignored("pow_store_unavailable")
                }
            },
        };
        match &judged {
            Judged::Solved(s) => {
                tally.bump(Counter::ChallengesPowPassed);
                if s.suspicious {
                    tally.bump(Counter::ChallengesPowTooFast);
                }
            }
            Judged::Failed(reason) => {
                tally.bump(Counter::ChallengesPowFailed);
                tally.bump(failure_counter(reason));
            }
            Judged::Ignored("pow_store_unavailable" | "pow_replayed")
            | Judged::AlreadyPassed
            | Judged::Deferred(..) => {}
            Judged::Ignored(_) => tally.bump(Counter::ChallengeIgnoredForeign),
        }
        judged
    }

    /// Clears the session for a solved puzzle and mints its token.
    pub fn pass(&self, solved: &pow::Solved, session: &mut Session, who: &Who) -> Passed {
        session.passed_nonce = nonce_id(&solved.nonce);
        let token = self.clear(session, who, "pow");
        Passed { solve_ms: solved.solve_ms, suspicious: solved.suspicious, token }
    }

    /// Gives back the attempt a deferred puzzle used ([`Judged::Deferred`]), once per puzzle: a
    /// busy or unreachable fleet cannot run a session out of attempts, and one puzzle sent again
    /// and again gives back one attempt, not one per copy.
    pub fn refund(&self, session: &mut Session, puzzle: u64) {
        if session.refunded_nonce != puzzle {
            session.refunded_nonce = puzzle;
            session.challenges_issued = session.challenges_issued.saturating_sub(1);
        }
    }

    /// Counts a failed or expired challenge; enough of them fail the session for good.
    pub fn fail(&self, session: &mut Session) {
        session.failed_challenges = session.failed_challenges.saturating_add(1);
        if session.failed_challenges >= self.settings.max_failures {
            session.challenge_failed = true;
        }
    }

    /// Marks the session cleared and mints its token.
    fn clear(&self, session: &mut Session, who: &Who, amr: &str) -> Option<String> {
        let ttl_s = self.clearance.ttl_minutes * 60;
        session.cleared_until = who.now + ttl_s * 1000;
        session.cleared_for = who.binding_hash();
        session.cleared_webauthn = amr == "webauthn";
        session.failed_challenges = 0;
        session.challenges_issued = 0;
        let key = self.clearance.keys.first()?;
        let iat = who.now / 1000;
        let claims = Claims {
            iat,
            exp: iat + ttl_s,
            scope: "session".into(),
            sid: who.sid.clone(),
            amr: amr.into(),
            bnd: who.bnd.clone(),
        };
        Some(token::mint(key, &claims))
    }

    /// Whether the session is cleared: by this worker's memory of a pass, or by a valid token.
    /// `webauthn_only`: only a WebAuthn step-up clears (a proof of work cannot stand in).
    pub fn cleared(
        &self,
        head: &Head,
        who: &Who,
        session: &mut Session,
        webauthn_only: bool,
        tally: &mut Tally,
    ) -> bool {
        let strong_enough = |webauthn: bool| webauthn || !webauthn_only;
        if session.cleared_until > who.now
            && session.cleared_for == who.binding_hash()
            && strong_enough(session.cleared_webauthn)
        {
            return true;
        }
        let Some(raw) = presented_token(head) else { return false };
        let Ok(text) = std::str::from_utf8(raw) else { return false };
        let expect = Expect { now: who.now / 1000, sid: &who.sid, bnd: &who.bnd };
        match token::verify(text, &self.clearance.keys, &expect) {
            Ok(claims) => {
                let webauthn = claims.amr == "webauthn";
                if webauthn && session.step_up_pending {
                    tally.bump(Counter::ChallengesWebauthnPassed);
                    session.step_up_pending = false;
                }
                if !strong_enough(webauthn) {
                    return false;
                }
                tally.bump(Counter::ClearanceAccepted);
                session.cleared_until = claims.exp.saturating_mul(1000);
                session.cleared_for = who.binding_hash();
                session.cleared_webauthn = webauthn;
                true
            }
            Err(_) => {
                tally.bump(Counter::ClearanceRefused);
                false
            }
        }
    }

    /// The `Set-Cookie` value carrying `token`.
    pub fn cookie(&self, token: &str) -> String {
        let secure = if self.clearance.cookie_secure { "; Secure" } else { "" };
        format!("{COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}", self.clearance.ttl_minutes * 60)
    }
}

/// A solution Redis could not spend, from a puzzle older than the fleet's local lifetime: not
/// taken, and the attempt it used is given back ([`Judged::Deferred`]).
pub const UNCONFIRMED_TOO_OLD: &str = "pow_unconfirmed_too_old";

/// A puzzle nonce as a session remembers it (never 0).
pub fn nonce_id(nonce: &str) -> u64 {
    crate::base::fasthash::hash(&[nonce.as_bytes()]).max(1)
}

/// Who a challenge or token is for.
#[derive(Debug, Clone)]
pub struct Who {
    /// The session, as tokens name it (see the module docs).
    pub sid: String,
    pub bnd: String,
    pub now: u64,
}

impl Who {
    pub fn new(key: SessionKey, head: &Head, client: Option<IpAddr>, now: u64) -> Who {
        Who { sid: sid(key), bnd: token::client_binding(head.first("user-agent").unwrap_or(b""), client), now }
    }

    /// What a puzzle is bound to: the client and the session it was issued to, so only that
    /// session's own puzzle can count against it.
    fn puzzle_binding(&self) -> String {
        format!("{}-{}", self.bnd, self.sid)
    }

    /// The binding as the session remembers it: a session that follows its visitor cookie to
    /// another network is not cleared there by a pass on the first.
    fn binding_hash(&self) -> u64 {
        crate::base::fasthash::hash(&[self.bnd.as_bytes()])
    }
}

/// The token's `sid` for a session: its id when signed in, `v<id>` for a visitor, `a<id>` for
/// an anonymous session without a visitor cookie.
pub fn sid(key: SessionKey) -> String {
    match (key.authenticated, key.visitor) {
        (true, _) => key.hex(),
        (false, true) => format!("v{}", key.hex()),
        (false, false) => format!("a{}", key.hex()),
    }
}

fn pow_reason(e: PowError) -> &'static str {
    match e {
        PowError::Malformed | PowError::BadSolution => "pow_malformed",
        PowError::Signature => "pow_forged",
        PowError::Expired => "pow_expired",
        PowError::Binding => "pow_wrong_client",
        PowError::Unsolved => "pow_unsolved",
    }
}

fn failure_counter(reason: &str) -> Counter {
    match reason {
        "pow_expired" => Counter::ChallengeFailExpired,
        "pow_replayed" => Counter::ChallengeFailReplayed,
        "pow_wrong_client" => Counter::ChallengeFailBinding,
        _ => Counter::ChallengeFailInvalid,
    }
}

/// The clearance token the request presents: the cookie, else the header.
fn presented_token(head: &Head) -> Option<&[u8]> {
    head.cookie(COOKIE).or_else(|| head.first(CLEARANCE_HEADER)).filter(|t| !t.is_empty())
}

/// A solution sent with an API request (`x-botgate-pow-challenge` + `x-botgate-pow-solution`).
pub fn header_submission(head: &Head) -> Option<(&str, &str)> {
    let c = std::str::from_utf8(head.first(POW_CHALLENGE_HEADER)?).ok()?;
    let s = std::str::from_utf8(head.first(POW_SOLUTION_HEADER)?).ok()?;
    Some((c.trim(), s.trim()))
}

/// 16 random bytes, hex: unpredictable, so a solution cannot be computed before its puzzle.
pub fn nonce() -> String {
    crate::base::mac::hex(&crate::base::mac::random::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::token::Key;

    fn gate() -> Gate {
        let clearance = Clearance { keys: vec![Key { id: "k".into(), secret: vec![7; 32] }], ..Clearance::default() };
        Gate::new(ChallengeSettings { difficulty: 2, ..ChallengeSettings::default() }, clearance)
    }

    fn who(now: u64) -> Who {
        Who { sid: "a01".into(), bnd: "b1".into(), now }
    }

    /// What the engine does with a judgement.
    fn submit(
        g: &mut Gate,
        c: &str,
        sol: &str,
        who: &Who,
        s: &mut Session,
        t: &mut Tally,
    ) -> Result<Passed, &'static str> {
        match g.judge(c, sol, who, s.passed_nonce, None, t) {
            Judged::Solved(solved) => Ok(g.pass(&solved, s, who)),
            Judged::Failed(r) => {
                g.fail(s);
                Err(r)
            }
            Judged::Ignored(r) | Judged::Deferred(r, _) => Err(r),
            Judged::AlreadyPassed => Err("pow_already_passed"),
        }
    }

    #[test]
    fn a_solution_clears_once_and_is_then_spent() {
        let mut g = gate();
        let mut s = Session::default();
        let mut t = Tally::default();
        let (c, d) = g.issue_pow(&mut s, 0.4, &who(1_000), true).unwrap();
        assert_eq!(d, 2);
        let sol = pow::solve(&c, d).unwrap();
        let passed = submit(&mut g, &c, &sol, &who(3_000), &mut s, &mut t).unwrap();
        assert_eq!(passed.solve_ms, 2_000);
        assert!(s.cleared_until > 3_000);
        assert!(passed.token.is_some());
        let mut again = Session::default();
        assert_eq!(submit(&mut g, &c, &sol, &who(3_500), &mut again, &mut t), Err("pow_replayed"));
        assert_eq!(again.failed_challenges, 0, "a replay earns nothing and costs nothing");
        assert_eq!(t.get(Counter::ChallengesPowPassed), 1);
        assert_eq!(t.get(Counter::ChallengeFailReplayed), 1);
        // The pass holds for the client it was earned by, not for the session on another network.
        let head = Head::from_pairs([(":path", "/")]);
        assert!(g.cleared(&head, &who(4_000), &mut s, false, &mut t));
        let elsewhere = Who { bnd: "b2".into(), ..who(4_000) };
        assert!(!g.cleared(&head, &elsewhere, &mut s, false, &mut t));
        // A proof of work does not stand in where WebAuthn is required.
        assert!(!g.cleared(&head, &who(4_000), &mut s, true, &mut t));
    }

    #[test]
    fn failures_and_endless_reloads_end_in_challenge_failed() {
        let mut g = gate();
        let mut s = Session::default();
        let mut t = Tally::default();
        for i in 0..3 {
            let (c, d) = g.issue_pow(&mut s, 0.4, &who(1_000), true).unwrap();
            let wrong = (0..).map(|n: u32| n.to_string()).find(|x| !pow::meets(&c, x, d)).unwrap();
            assert_eq!(submit(&mut g, &c, &wrong, &who(2_000 + i), &mut s, &mut t), Err("pow_unsolved"));
        }
        assert!(s.challenge_failed, "three failures");
        let mut reloader = Session::default();
        let issued = (0..50).take_while(|_| g.issue_pow(&mut reloader, 0.4, &who(1_000), true).is_some()).count();
        assert_eq!(issued, 10, "max_attempts");
        assert!(reloader.challenge_failed);
    }

    #[test]
    fn only_a_sessions_own_genuine_puzzle_can_count_against_it() {
        let mut g = gate();
        let mut victim = Session::default();
        let mut t = Tally::default();
        let (theirs, _) =
            g.issue_pow(&mut Session::default(), 0.4, &Who { sid: "a02".into(), ..who(1_000) }, true).unwrap();
        for junk in ["x", "", "v1.a.4.1.b.sig", &theirs.replace("v1.", "v1.0"), &theirs] {
            for _ in 0..5 {
                let r = submit(&mut g, junk, "12345", &who(2_000), &mut victim, &mut t);
                assert!(r.is_err());
            }
        }
        assert_eq!(victim.failed_challenges, 0, "malformed, forged and foreign puzzles are no-ops");
        assert!(!victim.challenge_failed);
        assert_eq!(t.get(Counter::ChallengesPowFailed), 0);
        assert!(t.get(Counter::ChallengeIgnoredForeign) >= 20);
    }

    #[test]
    fn expired_and_rebound_solutions_fail() {
        let mut g = gate();
        let mut s = Session::default();
        let mut t = Tally::default();
        let (c, d) = g.issue_pow(&mut s, 0.4, &who(1_000), true).unwrap();
        let sol = pow::solve(&c, d).unwrap();
        let late = who(1_000 + 300_000);
        assert_eq!(submit(&mut g, &c, &sol, &late, &mut s, &mut t), Err("pow_expired"));
        assert_eq!(s.failed_challenges, 1, "an expired puzzle of one's own counts");
        let elsewhere = Who { bnd: "b2".into(), ..who(2_000) };
        assert_eq!(submit(&mut g, &c, &sol, &elsewhere, &mut s, &mut t), Err("pow_wrong_client"));
        assert_eq!(s.failed_challenges, 1, "another client's puzzle does not");
        assert_eq!(t.get(Counter::ChallengeFailExpired), 1);
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 32);
    }
}
