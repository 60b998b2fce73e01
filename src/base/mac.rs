//! HMAC-SHA256 and constant-time comparison: the one place CI signatures, proof-of-work
//! challenges and clearance tokens sign and check.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A named secret (`kid` and bytes): clearance keys, which sign tokens, puzzles and visitor
/// cookies. A building block here so the policy can hold keys without importing what uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    pub secret: Vec<u8>,
}

impl Key {
    /// The id of a key generated at start because the policy configured none.
    pub const GENERATED_ID: &'static str = "generated";

    /// A random 256-bit key (for a policy without clearance keys).
    pub fn generated() -> Key {
        Key::generated_from(random::<32>().to_vec())
    }

    pub fn generated_from(secret: Vec<u8>) -> Key {
        Key { id: Key::GENERATED_ID.into(), secret }
    }
}

/// `N` random bytes: WASI `random_get` in Envoy, the OS natively. Without an entropy source
/// (never seen), still unique per worker and time; what they key stays unforgeable only with
/// entropy, so the failure is loud in the fallback's own doc, not silent in the bytes.
pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if getrandom::fill(&mut b).is_err() {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let seed = (u128::from(n) ^ t.rotate_left(64)).to_le_bytes();
        for (counter, chunk) in b.chunks_mut(32).enumerate() {
            // Not through the keyed cache: each seed is used once.
            let block = Hmac::<Sha256>::new_from_slice(&seed)
                .map(|mut m| {
                    m.update(&(counter as u64).to_le_bytes());
                    m.finalize().into_bytes().to_vec()
                })
                .unwrap_or_default();
            for (o, i) in chunk.iter_mut().zip(block) {
                *o = i;
            }
        }
    }
    b
}

/// HMAC-SHA256 of `message` under `key` (empty only if the key were refused, which HMAC never does).
pub fn sign(key: &[u8], message: &[u8]) -> Vec<u8> {
    match keyed(key) {
        Some(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        None => Vec::new(),
    }
}

/// Keys whose HMAC state (the key padded and hashed into the inner and outer states) was made
/// already: a worker signs and checks with the same few keys on every request, and making the
/// state is half of a short message's HMAC.
const KEYED_CACHE: usize = 16;

thread_local! {
    static KEYED: std::cell::RefCell<Vec<(Vec<u8>, Hmac<Sha256>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A fresh HMAC for `key`, from the cache of keyed states.
fn keyed(key: &[u8]) -> Option<Hmac<Sha256>> {
    KEYED
        .with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            // Least recently used first: a hit moves to the back.
            if let Some(i) = cache.iter().position(|(k, _)| k.as_slice() == key) {
                let entry = cache.remove(i);
                let mac = entry.1.clone();
                cache.push(entry);
                return Some(mac);
            }
            let mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
            if cache.len() >= KEYED_CACHE {
                cache.remove(0);
            }
            cache.push((key.to_vec(), mac.clone()));
            Some(mac)
        })
        .or_else(|| Hmac::<Sha256>::new_from_slice(key).ok())
}

/// Forgets the cached keyed states (a new policy: keys no longer in use leave memory).
pub fn forget_keys() {
    KEYED.with(|cache| {
        if let Ok(mut cache) = cache.try_borrow_mut() {
            cache.clear();
        }
    });
}

/// Whether `tag` is the HMAC of `message` under any of `keys`; each comparison is constant-time.
pub fn verify_any<'k>(keys: impl IntoIterator<Item = &'k [u8]>, message: &[u8], tag: &[u8]) -> bool {
    any_key(keys, message, |mac| mac.verify_slice(tag).is_ok())
}

/// Whether `tag` is the first `tag.len()` bytes (at least 12) of the HMAC of `message` under any
/// of `keys`; each comparison is constant-time.
pub fn verify_truncated<'k>(keys: impl IntoIterator<Item = &'k [u8]>, message: &[u8], tag: &[u8]) -> bool {
    (12..=32).contains(&tag.len()) && any_key(keys, message, |mac| mac.verify_truncated_left(tag).is_ok())
}

/// Runs `check` on the HMAC of `message` under every key (all of them: the time taken does not
/// say which key matched).
fn any_key<'k>(keys: impl IntoIterator<Item = &'k [u8]>, message: &[u8], check: impl Fn(Hmac<Sha256>) -> bool) -> bool {
    let mut valid = false;
    for key in keys {
        if let Some(mut mac) = keyed(key) {
            mac.update(message);
            valid |= check(mac);
        }
    }
    valid
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn hex(bytes: &[u8]) -> String {
    let digit = |n: u8| char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 });
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 0xf));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn every_key_signs_with_its_own_state_however_many_are_in_use() {
        let keys: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 32 + usize::from(i % 3)]).collect();
        for round in 0..3 {
            for (i, k) in keys.iter().enumerate().filter(|(i, _)| round == 0 || i % (round + 1) == 0) {
                let mut direct = Hmac::<Sha256>::new_from_slice(k).unwrap();
                direct.update(b"message");
                assert_eq!(sign(k, b"message"), direct.finalize().into_bytes().to_vec(), "key {i}");
                assert!(verify_any([k.as_slice()], b"message", &sign(k, b"message")));
            }
        }
        forget_keys();
        assert!(!verify_any([keys[0].as_slice()], b"message", &sign(&keys[1], b"message")));
        assert_eq!(hex(&[0x00, 0x9f, 0xff]), "009fff");
    }
}
