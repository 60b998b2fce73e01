//! HMAC-SHA256 and constant-time comparison: the one place CI signatures, proof-of-work
//! challenges and clearance tokens sign and check.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of `message` under `key` (empty only if the key were refused, which HMAC never does).
pub fn sign(key: &[u8], message: &[u8]) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
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
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) {
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
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
