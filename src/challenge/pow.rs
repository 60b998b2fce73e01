//! Proof of work: `sha256(challenge + solution)` in hex must start with `difficulty` zeros.
//!
//! Challenges are stateless and signed — `v1.<nonce>.<difficulty>.<expiry ms>.<binding>.<mac>`,
//! the MAC an HMAC-SHA256 over everything before it — so any worker, and any Envoy sharing the
//! key, can verify one. Single use within an Envoy is the shell's job (shared data, CAS on the
//! nonce); this module says which nonce to consume. Solutions are checked for form and length
//! before anything is hashed.

use crate::base::mac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Longest challenge accepted back from a client.
pub const MAX_CHALLENGE_LEN: usize = 256;
/// Longest solution accepted: a decimal counter.
pub const MAX_SOLUTION_LEN: usize = 20;
/// Hashes per millisecond of a fast native solver: a solve that beats it was precomputed or very
/// lucky (it is flagged, not refused).
const FAST_HASHES_PER_MS: u64 = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowError {
    Malformed,
    BadSolution,
    Signature,
    Expired,
    Binding,
    /// The hash does not have the leading zeros.
    Unsolved,
}

/// A verified solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solved {
    pub nonce: String,
    pub difficulty: u8,
    /// Milliseconds between issue and solve.
    pub solve_ms: u64,
    /// When the challenge expires (until then its nonce must stay spent).
    pub expires_ms: u64,
    /// Solved impossibly fast after issue.
    pub suspicious: bool,
}

/// The difficulty for a challenge: `base` (4), one more per earlier failure (up to two), one
/// more for a high score; never above 6 on a first attempt, never above 7.
pub fn difficulty(base: u8, failures: u8, score: f64) -> u8 {
    let d = base.saturating_add(failures.min(2)).saturating_add(u8::from(score >= 0.6));
    if failures == 0 {
        d.min(6)
    } else {
        d.min(7)
    }
}

/// Issues a challenge. `nonce` must be unpredictable (16 random bytes, hex).
pub fn issue(key: &[u8], nonce: &str, difficulty: u8, expires_ms: u64, binding: &str) -> String {
    let body = format!("v1.{nonce}.{difficulty}.{expires_ms}.{binding}");
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac::sign(key, body.as_bytes())))
}

/// Verifies `solution` for `challenge` against any of `keys`, at `now_ms`, for this client.
pub fn verify(
    challenge: &str,
    solution: &str,
    keys: &[&[u8]],
    now_ms: u64,
    ttl_ms: u64,
    binding: &str,
) -> Result<Solved, PowError> {
    if challenge.len() > MAX_CHALLENGE_LEN || !challenge.is_ascii() {
        return Err(PowError::Malformed);
    }
    if solution.is_empty() || solution.len() > MAX_SOLUTION_LEN || !solution.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PowError::BadSolution);
    }
    let (body, tag) = challenge.rsplit_once('.').ok_or(PowError::Malformed)?;
    let fields: Vec<&str> = body.split('.').collect();
    let [version, nonce, difficulty, expires, bound] = fields.as_slice() else {
        return Err(PowError::Malformed);
    };
    let difficulty: u8 = difficulty.parse().map_err(|_| PowError::Malformed)?;
    let expires: u64 = expires.parse().map_err(|_| PowError::Malformed)?;
    if *version != "v1" || nonce.is_empty() || !(1..=8).contains(&difficulty) {
        return Err(PowError::Malformed);
    }
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| PowError::Malformed)?;
    if !mac::verify_any(keys.iter().copied(), body.as_bytes(), &tag) {
        return Err(PowError::Signature);
    }
    // Binding before expiry: an expired puzzle is known to be this client's own (it counts
    // against the session), a foreign one never does.
    if !mac::constant_time_eq(bound.as_bytes(), binding.as_bytes()) {
        return Err(PowError::Binding);
    }
    if expires <= now_ms {
        return Err(PowError::Expired);
    }
    if !meets(challenge, solution, difficulty) {
        return Err(PowError::Unsolved);
    }
    let solve_ms = now_ms.saturating_sub(expires.saturating_sub(ttl_ms));
    let suspicious = impossibly_fast(difficulty, solve_ms);
    Ok(Solved { nonce: (*nonce).to_string(), difficulty, solve_ms, expires_ms: expires, suspicious })
}

/// Whether a solve beat what a fast native solver (50 million hashes/s) needs on average,
/// 16^difficulty hashes: under 1 ms at difficulty 4, 20 ms at 5, 335 ms at 6.
fn impossibly_fast(difficulty: u8, solve_ms: u64) -> bool {
    solve_ms < (16u64.saturating_pow(u32::from(difficulty)) / FAST_HASHES_PER_MS).max(1)
}

/// Whether `sha256(challenge + solution)` in hex starts with `difficulty` zeros.
pub fn meets(challenge: &str, solution: &str, difficulty: u8) -> bool {
    let digest = Sha256::new().chain_update(challenge.as_bytes()).chain_update(solution.as_bytes()).finalize();
    let zeros = usize::from(difficulty);
    digest.iter().enumerate().all(|(i, byte)| {
        let (hi, lo) = (byte >> 4, byte & 0xf);
        (2 * i >= zeros || hi == 0) && (2 * i + 1 >= zeros || lo == 0)
    })
}

/// Finds a solution by counting up (what the browser's worker and `botgate pow solve` do).
pub fn solve(challenge: &str, difficulty: u8) -> Option<String> {
    (0u64..u64::MAX).map(|n| n.to_string()).find(|s| meets(challenge, s, difficulty))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"pow-key-0123456789abcdef";
    const NOW: u64 = 1_795_305_600_000;
    const TTL: u64 = 300_000;

    fn challenge(d: u8) -> String {
        issue(KEY, "00112233445566778899aabbccddeeff", d, NOW + TTL, "bind1")
    }

    #[test]
    fn solve_and_verify() {
        let c = challenge(3);
        let s = solve(&c, 3).unwrap();
        let ok = verify(&c, &s, &[b"other-key-0000000000", KEY], NOW + 2_000, TTL, "bind1").unwrap();
        assert_eq!(ok.difficulty, 3);
        assert_eq!(ok.solve_ms, 2_000);
        assert!(!ok.suspicious);
        assert!(verify(&c, &s, &[KEY], NOW, TTL, "bind1").unwrap().suspicious, "solved at the instant of issue");
    }

    #[test]
    fn edge_cases_are_refused() {
        let c = challenge(3);
        let s = solve(&c, 3).unwrap();
        let v = |c: &str, s: &str, now, b| verify(c, s, &[KEY], now, TTL, b);
        assert_eq!(v(&c, &s, NOW + TTL, "bind1"), Err(PowError::Expired));
        assert_eq!(v(&c, &s, NOW, "bind2"), Err(PowError::Binding));
        assert_eq!(v(&c.replace(".3.", ".1."), &s, NOW, "bind1"), Err(PowError::Signature), "difficulty lowered");
        assert_eq!(verify(&c, &s, &[b"wrong-key-0000000000"], NOW, TTL, "bind1"), Err(PowError::Signature));
        for bad in ["", "12a", "-1", "1.5", &"9".repeat(MAX_SOLUTION_LEN + 1)] {
            assert_eq!(v(&c, bad, NOW, "bind1"), Err(PowError::BadSolution), "{bad:.25}");
        }
        for bad in ["", "v1", "a.b.c", &"x".repeat(MAX_CHALLENGE_LEN + 1), "v2.n.3.1.b.sig", "v1.n.99.1.b.sig"] {
            assert_eq!(v(bad, "1", NOW, "bind1"), Err(PowError::Malformed), "{bad:.25}");
        }
        let unsolved = (0..).map(|n: u32| n.to_string()).find(|s| !meets(&c, s, 3)).unwrap();
        assert_eq!(v(&c, &unsolved, NOW, "bind1"), Err(PowError::Unsolved));
    }

    #[test]
    fn meets_counts_hex_zeros() {
        // sha256("abc") = ba7816bf…: no leading zero.
        assert!(meets("ab", "c", 0));
        assert!(!meets("ab", "c", 1));
    }

    #[test]
    fn difficulty_policy() {
        assert_eq!(difficulty(4, 0, 0.1), 4);
        assert_eq!(difficulty(4, 0, 0.7), 5);
        assert_eq!(difficulty(6, 0, 0.9), 6, "never above 6 on a first attempt");
        assert_eq!(difficulty(4, 5, 0.9), 7);
    }
}
