//! Proof-of-work nonces spent in Envoy's shared data, for every worker at once.

use crate::challenge::nonces::{Consume, NonceStore};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// Proof-of-work nonces spent in Envoy's shared data, so a solution is spent for every worker.
///
/// Shared data has no delete, so keys are a fixed ring: `botgate/v1/pow/<slot>/<shard>`, a slot
/// per minute of expiry (64 of them, longer than the longest challenge lifetime) and a shard per
/// nonce's first hex digit. A value is `<epoch>:` and the spent nonces; a value from an older
/// epoch is stale and counts as empty. Spending is get, then set with the CAS value: of two
/// workers spending one nonce, exactly one wins.
pub struct SharedNonces;

const NONCE_SLOT_MS: u64 = 60_000;
const NONCE_SLOTS: u64 = 64;
const NONCE_SHARDS: &[u8; 16] = b"0123456789abcdef";
/// Spent nonces per key (2,048 × 16 shards per minute of expiries); past it, the oldest eighth
/// of them is dropped.
const NONCES_PER_KEY: usize = 2048;
const NONCE_LEN: usize = 32;

impl SharedNonces {
    fn key(slot: u64, shard: u8) -> String {
        format!("botgate/v1/pow/{slot}/{}", char::from(shard))
    }

    /// Creates the ring's keys once, so every later write goes through CAS (a set on a missing
    /// key ignores CAS).
    pub fn prepare() {
        for slot in 0..NONCE_SLOTS {
            for &shard in NONCE_SHARDS {
                let key = Self::key(slot, shard);
                if let Ok((None, None)) = hostcalls::get_shared_data(&key) {
                    let _ = hostcalls::set_shared_data(&key, Some(b"0:"), None);
                }
            }
        }
    }
}

impl NonceStore for SharedNonces {
    fn is_spent(&self, nonce: &str, expires_ms: u64) -> bool {
        let Some(&shard) = nonce.as_bytes().first() else { return false };
        let epoch = expires_ms / NONCE_SLOT_MS;
        let key = Self::key(epoch % NONCE_SLOTS, shard.to_ascii_lowercase());
        let Ok((Some(value), _)) = hostcalls::get_shared_data(&key) else { return false };
        let spent = value.strip_prefix(format!("{epoch}:").as_bytes()).unwrap_or(b"");
        spent.chunks(NONCE_LEN).any(|n| n == nonce.as_bytes())
    }

    fn consume(&mut self, nonce: &str, expires_ms: u64, _now_ms: u64) -> Consume {
        let (Some(&shard), true) = (nonce.as_bytes().first(), nonce.len() == NONCE_LEN) else {
            return Consume::Unavailable;
        };
        let epoch = expires_ms / NONCE_SLOT_MS;
        let key = Self::key(epoch % NONCE_SLOTS, shard.to_ascii_lowercase());
        for _ in 0..8 {
            let Ok((value, cas)) = hostcalls::get_shared_data(&key) else { return Consume::Unavailable };
            let value = value.unwrap_or_default();
            let prefix = format!("{epoch}:");
            let spent = value.strip_prefix(prefix.as_bytes()).unwrap_or(b"");
            if spent.chunks(NONCE_LEN).any(|n| n == nonce.as_bytes()) {
                return Consume::Replayed;
            }
            // Full: the oldest spent nonces make room (a full store must not refuse honest
            // solvers; counted, and the alert rules watch it).
            let full = spent.len() / NONCE_LEN >= NONCES_PER_KEY;
            let kept = if full { spent.get(NONCE_LEN * (NONCES_PER_KEY / 8)..).unwrap_or(b"") } else { spent };
            let mut next = Vec::with_capacity(prefix.len() + kept.len() + NONCE_LEN);
            next.extend_from_slice(prefix.as_bytes());
            next.extend_from_slice(kept);
            next.extend_from_slice(nonce.as_bytes());
            match hostcalls::set_shared_data(&key, Some(&next), cas) {
                Ok(()) if full => return Consume::FreshEvicting,
                Ok(()) => return Consume::Fresh,
                Err(Status::CasMismatch) => continue,
                Err(_) => return Consume::Unavailable,
            }
        }
        Consume::Unavailable
    }
}
