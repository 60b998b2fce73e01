//! A small direct-mapped cache of answers keyed by exact bytes (a user agent): a worker sees the
//! same few user agents again and again, and working an answer out (scanning a rule list)
//! costs more than the rest of a request's header work. Fixed size; a key that rotates per
//! request costs one slot's overwrite, and a slot is only ever answered for the same bytes. The
//! whole key picks the slot, through the VM's seeded hash: user agents that differ only in a
//! version number do not share one.

/// Slots per memo.
const SLOTS: usize = 256;
/// Longest key kept (longer ones are worked out each time).
const MAX_KEY: usize = 512;

pub struct Memo<V> {
    slots: Vec<Option<(Box<[u8]>, V)>>,
    /// Seeded per VM: nobody can pick user agents that evict the common ones.
    seed: crate::base::fasthash::Seeded,
}

impl<V: Copy> Default for Memo<V> {
    fn default() -> Self {
        Memo { slots: Vec::new(), seed: crate::base::fasthash::Seeded::default() }
    }
}

impl<V: Copy> Memo<V> {
    /// The answer for `key`, from the cache or from `work`.
    pub fn get(&mut self, key: &[u8], work: impl FnOnce() -> V) -> V {
        if key.len() > MAX_KEY {
            return work();
        }
        let slot = (std::hash::BuildHasher::hash_one(&self.seed, key) % SLOTS as u64) as usize;
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
