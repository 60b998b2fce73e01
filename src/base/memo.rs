//! A small direct-mapped cache of answers keyed by exact bytes (a user agent): a worker sees the
//! same few user agents again and again, and working an answer out (scanning a rule list)
//! costs more than the rest of a request's header work. Fixed size; a key that rotates per
//! request costs one slot's overwrite, and a slot is only ever answered for the same bytes.

/// Slots per memo.
const SLOTS: usize = 256;
/// Longest key kept (longer ones are worked out each time).
const MAX_KEY: usize = 512;

pub struct Memo<V> {
    slots: Vec<Option<(Box<[u8]>, V)>>,
}

impl<V: Copy> Default for Memo<V> {
    fn default() -> Self {
        Memo { slots: Vec::new() }
    }
}

impl<V: Copy> Memo<V> {
    /// The answer for `key`, from the cache or from `work`.
    pub fn get(&mut self, key: &[u8], work: impl FnOnce() -> V) -> V {
        if key.len() > MAX_KEY {
            return work();
        }
        let slot = slot_of(key);
        if let Some(Some((kept, v))) = self.slots.get(slot) {
            if **kept == *key {
                return *v;
            }
        }
        let v = work();
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || None);
        }
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Some((key.into(), v));
        }
        v
    }
}

/// A key's slot: its length and its first and last eight bytes, mixed.
fn slot_of(key: &[u8]) -> usize {
    let word = |b: &[u8]| b.iter().take(8).fold(0u64, |w, x| w << 8 | u64::from(*x));
    let tail = key.get(key.len().saturating_sub(8)..).unwrap_or(b"");
    let mixed = (word(key) ^ word(tail).rotate_left(29) ^ key.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 56) as usize % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_only_ever_given_for_the_same_bytes() {
        let mut m = Memo::default();
        let keys: Vec<Vec<u8>> = (0..2_000u32).map(|i| format!("agent-{i}").into_bytes()).collect();
        for _ in 0..2 {
            for k in &keys {
                assert_eq!(m.get(k, || k.len()), k.len());
                assert_eq!(m.get(k, || usize::MAX), k.len(), "a hit right after its miss");
            }
        }
        let long = vec![b'a'; MAX_KEY + 1];
        assert_eq!(m.get(&long, || 7), 7);
        assert_eq!(m.get(&long, || 8), 8, "not kept");
    }
}
