//! The challenge tier's mechanics: issuing proof-of-work puzzles and step-up requests, checking
//! solutions and clearance tokens, and botgate's own endpoints under `/.well-known/botgate/`.
//!
//! A session that passes a challenge is *cleared*: it holds a clearance token (cookie
//! `botgate_clearance` or header `x-botgate-clearance`) and, in the worker that saw the pass, a
//! `cleared_until` mark. A cleared session skips the challenge tier until the token expires; block
//! rules still apply. Failed, expired or replayed submissions count against the session; after
//! `max_failures` of them, or `max_attempts` puzzles issued without a pass, the session is
//! `challenge_failed` and blocked for its remaining lifetime.
//!
//! Token claims: `sid` is the signed-in session's id (`x-botgate-session`, the hex id botgate
//! logs) or `anon` for anonymous clients, whose token is tied to the client by `bnd` alone;
//! `bnd` is [`crate::token::client_binding`], the user agent and the client's /16 (IPv4) or /32
//! (IPv6): a phone moving between cells of one carrier keeps its clearance, a token copied to
//! another network or browser does not verify.

use crate::policy::tiers::{ChallengeSettings, Clearance};
use crate::pow::{self, PowError};
use crate::session::{Session, SessionKey};
use crate::signals::Head;
use crate::telemetry::{Counter, Tally};
use crate::token::{self, Claims, Expect};
use std::collections::HashMap;
use std::net::IpAddr;

pub const PREFIX: &str = "/.well-known/botgate/";
pub const COOKIE: &str = "botgate_clearance";
pub const CLEARANCE_HEADER: &str = "x-botgate-clearance";
pub const POW_CHALLENGE_HEADER: &str = "x-botgate-pow-challenge";
pub const POW_SOLUTION_HEADER: &str = "x-botgate-pow-solution";
/// Longest `return` path carried through a challenge.
pub const MAX_RETURN_LEN: usize = 2048;

/// Single use of proof-of-work nonces. In Envoy the shell backs this with shared data, so a
/// solution is spent for every worker at once; natively (tests, the CLI) a bounded map.
pub trait NonceStore {
    /// Spends `nonce` (whose challenge expires at `expires_ms`).
    fn consume(&mut self, nonce: &str, expires_ms: u64, now_ms: u64) -> Consume;
    /// Drops what has expired.
    fn sweep(&mut self, _now_ms: u64) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consume {
    Fresh,
    Replayed,
    /// The store could not answer (full or failing): the solution is not accepted.
    Unavailable,
}

/// The per-engine store: nonces until their challenge expires, at most `cap` of them.
pub struct MemoryNonces {
    spent: HashMap<String, u64>,
    cap: usize,
}

impl MemoryNonces {
    pub fn new(cap: usize) -> Self {
        MemoryNonces { spent: HashMap::new(), cap }
    }
}

impl NonceStore for MemoryNonces {
    fn consume(&mut self, nonce: &str, expires_ms: u64, now_ms: u64) -> Consume {
        if self.spent.contains_key(nonce) {
            return Consume::Replayed;
        }
        if self.spent.len() >= self.cap {
            self.sweep(now_ms);
            if self.spent.len() >= self.cap {
                return Consume::Unavailable;
            }
        }
        self.spent.insert(nonce.to_string(), expires_ms);
        Consume::Fresh
    }

    fn sweep(&mut self, now_ms: u64) {
        self.spent.retain(|_, exp| *exp > now_ms);
    }
}

/// A proof-of-work solution that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    pub solve_ms: u64,
    pub suspicious: bool,
    /// The clearance token minted for the session.
    pub token: Option<String>,
}

/// The challenge machinery of one engine: its settings, keys and nonce store.
pub struct Gate {
    pub settings: ChallengeSettings,
    pub clearance: Clearance,
    nonces: Box<dyn NonceStore>,
}

impl Gate {
    pub fn new(settings: ChallengeSettings, clearance: Clearance) -> Self {
        Gate { settings, clearance, nonces: Box::new(MemoryNonces::new(100_000)) }
    }

    pub fn set_nonce_store(&mut self, store: Box<dyn NonceStore>) {
        self.nonces = store;
    }

    pub fn sweep(&mut self, now_ms: u64) {
        self.nonces.sweep(now_ms);
    }

    /// Whether challenges can be passed at all (keys are configured).
    pub fn armed(&self) -> bool {
        !self.clearance.keys.is_empty()
    }

    fn ttl_ms(&self) -> u64 {
        self.settings.expires_seconds * 1000
    }

    /// A new puzzle for `session`, or `None` when the session has had its last one (it is then
    /// marked `challenge_failed`).
    pub fn issue_pow(&self, session: &mut Session, score: f64, bnd: &str, now: u64) -> Option<(String, u8)> {
        let key = self.clearance.keys.first()?;
        if !self.spend_attempt(session) {
            return None;
        }
        let difficulty = pow::difficulty(self.settings.difficulty, session.failed_challenges, score);
        let challenge = pow::issue(&key.secret, &nonce(), difficulty, now + self.ttl_ms(), bnd);
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

    /// Checks a submitted solution; a pass clears the session and mints its token, a failure
    /// counts against it.
    pub fn check_pow(
        &mut self,
        challenge: &str,
        solution: &str,
        who: &Who,
        session: &mut Session,
        tally: &mut Tally,
    ) -> Result<Passed, &'static str> {
        let outcome = self.verify_pow(challenge, solution, &who.bnd, who.now);
        match outcome {
            Ok(solved) => {
                tally.bump(Counter::ChallengesPowPassed);
                if solved.suspicious {
                    tally.bump(Counter::ChallengesPowTooFast);
                }
                let token = self.clear(session, who, "pow");
                Ok(Passed { solve_ms: solved.solve_ms, suspicious: solved.suspicious, token })
            }
            Err(reason) => {
                tally.bump(Counter::ChallengesPowFailed);
                tally.bump(failure_counter(reason));
                self.fail(session);
                Err(reason)
            }
        }
    }

    fn verify_pow(
        &mut self,
        challenge: &str,
        solution: &str,
        bnd: &str,
        now: u64,
    ) -> Result<pow::Solved, &'static str> {
        let keys: Vec<&[u8]> = self.clearance.keys.iter().map(|k| k.secret.as_slice()).collect();
        let solved = pow::verify(challenge, solution, &keys, now, self.ttl_ms(), bnd).map_err(pow_reason)?;
        match self.nonces.consume(&solved.nonce, solved.expires_ms, now) {
            Consume::Fresh => Ok(solved),
            Consume::Replayed => Err("pow_replayed"),
            Consume::Unavailable => Err("pow_store_unavailable"),
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
    pub fn cleared(&self, head: &Head, who: &Who, session: &mut Session, tally: &mut Tally) -> bool {
        if session.cleared_until > who.now && session.cleared_for == who.binding_hash() {
            return true;
        }
        let Some(raw) = presented_token(head) else { return false };
        let Ok(text) = std::str::from_utf8(raw) else { return false };
        let expect = Expect { now: who.now / 1000, sid: &who.sid, bnd: &who.bnd };
        match token::verify(text, &self.clearance.keys, &expect) {
            Ok(claims) => {
                tally.bump(Counter::ClearanceAccepted);
                if claims.amr == "webauthn" {
                    tally.bump(Counter::ChallengesWebauthnPassed);
                }
                session.cleared_until = claims.exp.saturating_mul(1000);
                session.cleared_for = who.binding_hash();
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

/// Who a challenge or token is for.
#[derive(Debug, Clone)]
pub struct Who {
    pub sid: String,
    pub bnd: String,
    pub now: u64,
}

impl Who {
    pub fn new(key: SessionKey, head: &Head, client: Option<IpAddr>, now: u64) -> Who {
        Who { sid: sid(key), bnd: token::client_binding(head.first("user-agent").unwrap_or(b""), client), now }
    }

    /// The binding as the session remembers it: a session that follows its visitor cookie to
    /// another network is not cleared there by a pass on the first.
    pub fn binding_hash(&self) -> u64 {
        crate::fasthash::hash(&[self.bnd.as_bytes()])
    }
}

/// The token's `sid` for a session: its id when signed in, `anon` otherwise.
pub fn sid(key: SessionKey) -> String {
    if key.authenticated {
        key.hex()
    } else {
        "anon".to_string()
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
pub fn presented_token(head: &Head) -> Option<&[u8]> {
    crate::session::cookie(head, COOKIE).or_else(|| head.first(CLEARANCE_HEADER)).filter(|t| !t.is_empty())
}

/// A solution sent with an API request (`x-botgate-pow-challenge` + `x-botgate-pow-solution`).
pub fn header_submission(head: &Head) -> Option<(&str, &str)> {
    let c = std::str::from_utf8(head.first(POW_CHALLENGE_HEADER)?).ok()?;
    let s = std::str::from_utf8(head.first(POW_SOLUTION_HEADER)?).ok()?;
    Some((c.trim(), s.trim()))
}

/// Whether the client wants HTML (a browser navigation).
pub fn wants_html(head: &Head) -> bool {
    head.first("accept").is_some_and(|a| a.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

/// Where to continue after a challenge: the request's own path and query, for a GET.
pub fn return_path(head: &Head) -> Option<String> {
    if head.method() != b"GET" {
        return None;
    }
    let full = std::str::from_utf8(head.first(":path")?).ok()?;
    safe_return(full).map(str::to_string)
}

/// A same-site path: starts with one `/`, no scheme-relative `//` or `/\`, no control bytes,
/// bounded length. Anything else is dropped (no open redirects).
pub fn safe_return(p: &str) -> Option<&str> {
    let b = p.as_bytes();
    let ok = b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && p.len() <= MAX_RETURN_LEN
        && b.iter().all(|c| (0x21..0x7f).contains(c));
    ok.then_some(p)
}

/// The value of query parameter `name`, percent-decoded.
pub fn query_param(query: &[u8], name: &str) -> Option<String> {
    query.split(|b| *b == b'&').find_map(|pair| {
        let eq = pair.iter().position(|b| *b == b'=')?;
        (pair.get(..eq)? == name.as_bytes()).then(|| percent_decode(pair.get(eq + 1..).unwrap_or(b"")))?
    })
}

fn percent_decode(v: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        match b {
            b'%' => {
                let hex = v.get(i + 1..i + 3)?;
                let s = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(s, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// 16 random bytes, hex: unpredictable, so a solution cannot be computed before its puzzle.
pub fn nonce() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No entropy source: still unique per worker and time (the MAC keeps it unforgeable).
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        b = (u128::from(n) ^ t.rotate_left(64)).to_le_bytes();
    }
    crate::mac::hex(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Key;

    fn gate() -> Gate {
        let clearance = Clearance { keys: vec![Key { id: "k".into(), secret: vec![7; 32] }], ..Clearance::default() };
        Gate::new(ChallengeSettings { difficulty: 2, ..ChallengeSettings::default() }, clearance)
    }

    fn who(now: u64) -> Who {
        Who { sid: "anon".into(), bnd: "b1".into(), now }
    }

    #[test]
    fn a_solution_clears_once_and_is_then_spent() {
        let mut g = gate();
        let mut s = Session::default();
        let mut t = Tally::default();
        let (c, d) = g.issue_pow(&mut s, 0.4, "b1", 1_000).unwrap();
        assert_eq!(d, 2);
        let sol = pow::solve(&c, d).unwrap();
        let passed = g.check_pow(&c, &sol, &who(3_000), &mut s, &mut t).unwrap();
        assert_eq!(passed.solve_ms, 2_000);
        assert!(s.cleared_until > 3_000);
        assert!(passed.token.is_some());
        let mut other = Session::default();
        assert_eq!(g.check_pow(&c, &sol, &who(3_500), &mut other, &mut t), Err("pow_replayed"));
        assert_eq!(other.failed_challenges, 1);
        assert_eq!(t.get(Counter::ChallengesPowPassed), 1);
        assert_eq!(t.get(Counter::ChallengeFailReplayed), 1);
        // The pass holds for the client it was earned by, not for the session on another network.
        let head = Head::from_pairs([(":path", "/")]);
        assert!(g.cleared(&head, &who(4_000), &mut s, &mut t));
        let elsewhere = Who { bnd: "b2".into(), ..who(4_000) };
        assert!(!g.cleared(&head, &elsewhere, &mut s, &mut t));
    }

    #[test]
    fn failures_and_endless_reloads_end_in_challenge_failed() {
        let mut g = gate();
        let mut s = Session::default();
        let mut t = Tally::default();
        for i in 0..3 {
            let (c, _) = g.issue_pow(&mut s, 0.4, "b1", 1_000).unwrap();
            assert_eq!(g.check_pow(&c, "x", &who(2_000 + i), &mut s, &mut t), Err("pow_malformed"));
        }
        assert!(s.challenge_failed, "three failures");
        let mut reloader = Session::default();
        let issued = (0..50).take_while(|_| g.issue_pow(&mut reloader, 0.4, "b1", 1_000).is_some()).count();
        assert_eq!(issued, 10, "max_attempts");
        assert!(reloader.challenge_failed);
    }

    #[test]
    fn expired_and_rebound_solutions_fail() {
        let mut g = gate();
        let mut s = Session::default();
        let mut t = Tally::default();
        let (c, d) = g.issue_pow(&mut s, 0.4, "b1", 1_000).unwrap();
        let sol = pow::solve(&c, d).unwrap();
        let late = who(1_000 + 300_000);
        assert_eq!(g.check_pow(&c, &sol, &late, &mut s, &mut t), Err("pow_expired"));
        let elsewhere = Who { bnd: "b2".into(), ..who(2_000) };
        assert_eq!(g.check_pow(&c, &sol, &elsewhere, &mut s, &mut t), Err("pow_wrong_client"));
        assert_eq!(t.get(Counter::ChallengeFailExpired), 1);
    }

    #[test]
    fn return_paths_stay_on_site() {
        assert_eq!(safe_return("/a?b=c"), Some("/a?b=c"));
        for bad in ["//evil.example/", "/\\evil", "https://evil.example/", "", "/a b", "/\u{7f}"] {
            assert_eq!(safe_return(bad), None, "{bad:?}");
        }
        assert_eq!(query_param(b"x=1&return=%2Fcart%3Fa%3D1&y", "return").as_deref(), Some("/cart?a=1"));
        assert_eq!(query_param(b"return=%zz", "return"), None);
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 32);
    }
}
