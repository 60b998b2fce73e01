//! A bounded map with least-recently-used eviction, O(1) per operation.
//!
//! Entries live in a slab linked in recency order, so touching, inserting, evicting and
//! sweeping expired entries from the old end never scan the table.

use std::collections::HashMap;
use std::hash::Hash;

const NIL: u32 = u32::MAX;

struct Node<K, V> {
    key: K,
    value: V,
    prev: u32,
    next: u32,
}

pub struct Lru<K, V> {
    map: HashMap<K, u32, crate::base::fasthash::Seeded>,
    nodes: Vec<Node<K, V>>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    cap: usize,
    evictions: u64,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    pub fn new(cap: usize) -> Self {
        let cap = cap.clamp(1, NIL as usize - 1);
        Lru { map: HashMap::default(), nodes: Vec::new(), free: Vec::new(), head: NIL, tail: NIL, cap, evictions: 0 }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Entries dropped because the table was full.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The value for `key`, marked as just used.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let idx = *self.map.get(key)?;
        self.touch(idx);
        self.nodes.get_mut(idx as usize).map(|n| &mut n.value)
    }

    /// Reads without changing recency.
    pub fn peek(&self, key: &K) -> Option<&V> {
        let idx = *self.map.get(key)?;
        self.nodes.get(idx as usize).map(|n| &n.value)
    }

    /// The value for `key`, inserted with `make` if absent (evicting the least recently used
    /// entry when full), marked as just used.
    #[allow(clippy::indexing_slicing)] // `idx` was just found in, or written to, our own slab
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let idx = match self.map.get(&key) {
            Some(&idx) => {
                self.touch(idx);
                idx
            }
            None => self.insert_new(key, make()),
        };
        &mut self.nodes[idx as usize].value
    }

    fn insert_new(&mut self, key: K, value: V) -> u32 {
        if self.map.len() >= self.cap && self.pop_oldest().is_some() {
            self.evictions += 1;
        }
        let node = Node { key: key.clone(), value, prev: NIL, next: NIL };
        let idx = match self.free.pop() {
            Some(idx) => {
                if let Some(slot) = self.nodes.get_mut(idx as usize) {
                    *slot = node;
                }
                idx
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.map.insert(key, idx);
        self.push_front(idx);
        idx
    }

    /// Removes the least recently used entry.
    fn pop_oldest(&mut self) -> Option<&V> {
        let idx = self.tail;
        if idx == NIL {
            return None;
        }
        self.unlink(idx);
        self.free.push(idx);
        let node = self.nodes.get(idx as usize)?;
        self.map.remove(&node.key);
        Some(&node.value)
    }

    /// Removes `key`'s entry, if any.
    pub fn remove(&mut self, key: &K) {
        if let Some(idx) = self.map.remove(key) {
            self.unlink(idx);
            self.free.push(idx);
        }
    }

    /// The least recently used entry's value.
    pub fn oldest(&self) -> Option<&V> {
        self.nodes.get(self.tail as usize).map(|n| &n.value)
    }

    /// Drops entries from the old end while `expired` says so; returns how many went.
    /// When expiry follows last use (as it does for rolling windows), this is exact.
    pub fn sweep(&mut self, mut expired: impl FnMut(&V) -> bool, max: usize) -> usize {
        let mut n = 0;
        while n < max && self.oldest().is_some_and(&mut expired) {
            self.pop_oldest();
            n += 1;
        }
        n
    }

    fn touch(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink(idx);
            self.push_front(idx);
        }
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = match self.nodes.get(idx as usize) {
            Some(n) => (n.prev, n.next),
            None => return,
        };
        match self.nodes.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.nodes.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_front(&mut self, idx: u32) {
        let old_head = self.head;
        if let Some(n) = self.nodes.get_mut(idx as usize) {
            n.prev = NIL;
            n.next = old_head;
        }
        match self.nodes.get_mut(old_head as usize) {
            Some(h) => h.prev = idx,
            None => self.tail = idx,
        }
        self.head = idx;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut lru = Lru::new(2);
        *lru.get_or_insert_with(1, || 10) += 0;
        lru.get_or_insert_with(2, || 20);
        lru.get_mut(&1);
        lru.get_or_insert_with(3, || 30);
        assert!(lru.peek(&2).is_none());
        assert_eq!(lru.peek(&1), Some(&10));
        assert_eq!(lru.evictions(), 1);
        assert_eq!(lru.len(), 2);
    }

    #[test]
    fn sweep_stops_at_first_live_entry() {
        let mut lru = Lru::new(10);
        for k in 0..5 {
            lru.get_or_insert_with(k, || k);
        }
        assert_eq!(lru.sweep(|v| *v < 3, 100), 3);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.evictions(), 0);
        lru.get_or_insert_with(9, || 9);
        assert_eq!(lru.peek(&9), Some(&9));
    }

    proptest! {
        #[test]
        fn never_exceeds_capacity_and_keeps_recent(cap in 1usize..20, keys in proptest::collection::vec(0u16..64, 0..300)) {
            let mut lru = Lru::new(cap);
            for k in &keys {
                lru.get_or_insert_with(*k, || *k);
                prop_assert!(lru.len() <= cap);
                prop_assert_eq!(lru.peek(k), Some(k));
            }
            // The `cap` most recent distinct keys are all present.
            let mut recent = Vec::new();
            for k in keys.iter().rev() {
                if !recent.contains(k) { recent.push(*k); }
                if recent.len() == cap { break; }
            }
            for k in recent { prop_assert!(lru.peek(&k).is_some()); }
        }
    }
}
