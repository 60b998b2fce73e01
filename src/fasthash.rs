//! A fast 64-bit hash for internal table keys (sessions, client shapes, path ids), eight bytes a
//! step: SHA-256 costs microseconds per request inside a Wasm VM, this costs nanoseconds.
//!
//! It is not collision-resistant against someone who knows it, so it names nothing an attacker
//! gains by colliding with: a crafted collision merges two anonymous sessions' counters, it never
//! allowlists or unblocks. Fingerprints, which decide blocks, stay on SHA-256.

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xbf58_476d_1ce4_e5b9;

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

/// Hashes `parts` (length-prefixed, so parts cannot run into each other).
pub fn hash(parts: &[&[u8]]) -> u64 {
    let mut h = K0;
    for part in parts {
        h = fold(h ^ part.len() as u64, K1);
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
    }
    fold(h, K0)
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
