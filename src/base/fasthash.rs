//! A fast 64-bit hash for internal table keys (sessions, client shapes, path ids), eight bytes a
//! step: SHA-256 costs microseconds per request inside a Wasm VM, this costs nanoseconds.
//!
//! It is not collision-resistant against someone who knows it, so it only names things where a
//! crafted collision gains an attacker nothing: merging two anonymous sessions' counters, or
//! counting an attacker's requests against another client's fingerprint — which needs that
//! client's exact fields (its address, user agent and, with the seed's fields, its
//! `authorization`), and at worst flags that client for one window. It never allowlists or
//! unblocks anyone.

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xbf58_476d_1ce4_e5b9;

/// Multiply and fold the high bits down. 64-bit only: a 128-bit product is a library call
/// (`__multi3`) in Wasm.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let m = a.wrapping_mul(b);
    m ^ (m >> 29) ^ (m >> 47)
}

/// Hashes `parts` (length-prefixed, so parts cannot run into each other).
pub fn hash(parts: &[&[u8]]) -> u64 {
    let mut h = FastHasher::new();
    for part in parts {
        h.part(part);
    }
    h.finish()
}

/// A `BuildHasher` for the engine's tables, seeded at random once per VM (from the standard
/// library's random hasher keys) so crafted keys cannot pile into one bucket, and several times
/// cheaper than SipHash inside a Wasm VM.
#[derive(Clone)]
pub struct Seeded(u64);

impl Default for Seeded {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        thread_local! {
            static SEED: u64 = {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u64(K0);
                h.finish()
            };
        }
        Seeded(SEED.with(|s| *s))
    }
}

impl std::hash::BuildHasher for Seeded {
    type Hasher = SeededHasher;
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher(self.0)
    }
}

pub struct SeededHasher(u64);

impl std::hash::Hasher for SeededHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = FastHasher(self.0);
        h.part(bytes);
        self.0 = h.0;
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = fold(self.0 ^ n, K1);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        fold(self.0, K0)
    }
}

/// The streaming form of [`hash`].
pub struct FastHasher(u64);

impl Default for FastHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl FastHasher {
    pub fn new() -> Self {
        FastHasher(K0)
    }

    /// Adds one length-prefixed part.
    pub fn part(&mut self, part: &[u8]) {
        let mut h = fold(self.0 ^ part.len() as u64, K1);
        let mut chunks = part.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = fold(h ^ u64::from_le_bytes(w), K1);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(rest) {
                *d = *s;
            }
            h = fold(h ^ u64::from_le_bytes(w) ^ 0xff, K1);
        }
        self.0 = h;
    }

    pub fn finish(self) -> u64 {
        fold(self.0, K0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_delimited_and_bits_spread() {
        assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"a", b"bc"]));
        assert_ne!(hash(&[b""]), hash(&[]));
        let a = hash(&[b"user-agent: x"]);
        let b = hash(&[b"user-agent: y"]);
        assert!((a ^ b).count_ones() > 16, "{:x} {:x}", a, b);
    }
}
