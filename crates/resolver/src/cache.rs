//! The answer cache: entries keyed by (lower-cased question name, type, class), bounded by
//! count and bytes. Eviction is CLOCK (second chance): a ring of keys; an entry used since
//! the hand last passed survives one more round. That is LRU-ish at O(1) per insert,
//! without touching a list on every hit.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::message::Stored;
use crate::policy::{AnswerShape, EntryView};

/// Bookkeeping bytes counted per entry on top of its key and wire bytes.
const ENTRY_OVERHEAD_BYTES: usize = 128;

/// One cached answer and its stale-on-empty state.
#[derive(Debug, Clone)]
pub struct Entry {
    pub answer: Arc<Stored>,
    pub stored_at_ms: u64,
    pub hits: u32,
    /// Set while the (positive) answer is held against upstreams that now say empty.
    pub empty_since_ms: Option<u64>,
    pub last_check_ms: u64,
    referenced: bool,
}

impl Entry {
    pub fn new(answer: Arc<Stored>, now_ms: u64) -> Entry {
        Entry {
            answer,
            stored_at_ms: now_ms,
            hits: 0,
            empty_since_ms: None,
            last_check_ms: now_ms,
            referenced: false,
        }
    }

    /// What the policy sees.
    pub fn view(&self) -> EntryView {
        EntryView {
            stored_at_ms: self.stored_at_ms,
            ttl_secs: self.answer.ttl_secs,
            hits: self.hits,
            empty_since_ms: self.empty_since_ms,
            last_check_ms: self.last_check_ms,
        }
    }

    pub fn shape(&self) -> AnswerShape {
        if self.answer.kind.is_empty() {
            AnswerShape::Empty
        } else {
            AnswerShape::Records
        }
    }

    fn bytes(&self, key: &[u8]) -> usize {
        ENTRY_OVERHEAD_BYTES
            + 2 * key.len()
            + self.answer.bytes.len()
            + 4 * self.answer.ttl_offsets.len()
    }
}

/// The bounded cache.
#[derive(Debug)]
pub struct Cache {
    entries: HashMap<Box<[u8]>, Entry>,
    ring: VecDeque<Box<[u8]>>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl Cache {
    pub fn new(max_entries: usize, max_bytes: usize) -> Cache {
        Cache {
            entries: HashMap::new(),
            ring: VecDeque::new(),
            bytes: 0,
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The entry for `key`, counted as a use (a hit and a second chance).
    pub fn get(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let entry = self.entries.get_mut(key)?;
        entry.hits = entry.hits.saturating_add(1);
        entry.referenced = true;
        Some(entry)
    }

    /// The entry for `key` without counting a use.
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// The entry for `key`, to change its bookkeeping, without counting a use.
    pub fn peek_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.entries.get_mut(key)
    }

    /// Stores `entry` under `key`, replacing what was there, then evicts down to the bounds.
    pub fn insert(&mut self, key: &[u8], mut entry: Entry) {
        let added = entry.bytes(key);
        match self.entries.get_mut(key) {
            Some(old) => {
                self.bytes = self.bytes - old.bytes(key) + added;
                entry.hits = old.hits;
                entry.referenced = true;
                *old = entry;
            }
            None => {
                self.bytes += added;
                self.entries.insert(key.into(), entry);
                self.ring.push_back(key.into());
            }
        }
        self.evict();
    }

    fn evict(&mut self) {
        // Each entry loses its second chance at most once per pass: two passes bound the loop.
        let mut budget = 2 * self.ring.len() + 1;
        while (self.entries.len() > self.max_entries || self.bytes > self.max_bytes) && budget > 0 {
            budget -= 1;
            let Some(key) = self.ring.pop_front() else {
                return;
            };
            let more_than_one = self.entries.len() > 1;
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            if entry.referenced && more_than_one {
                entry.referenced = false;
                self.ring.push_back(key);
                continue;
            }
            if let Some(entry) = self.entries.remove(&key) {
                self.bytes -= entry.bytes(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::AnswerKind;

    fn answer(size: usize) -> Arc<Stored> {
        Arc::new(Stored {
            bytes: vec![0; size],
            ttl_offsets: Vec::new(),
            kind: AnswerKind::Positive,
            ttl_secs: 60,
        })
    }

    #[test]
    fn the_cache_never_holds_more_entries_than_its_bound() {
        let mut cache = Cache::new(3, usize::MAX);
        for i in 0..10u8 {
            cache.insert(&[i], Entry::new(answer(10), 0));
            assert!(cache.len() <= 3);
        }
    }

    #[test]
    fn the_cache_never_holds_more_bytes_than_its_bound() {
        let mut cache = Cache::new(1_000, 2_000);
        for i in 0..50u8 {
            cache.insert(&[i], Entry::new(answer(300), 0));
            assert!(cache.bytes() <= 2_000, "{} bytes", cache.bytes());
        }
        assert!(!cache.is_empty());
    }

    #[test]
    fn an_entry_used_since_the_last_sweep_survives_eviction() {
        let mut cache = Cache::new(2, usize::MAX);
        cache.insert(b"a", Entry::new(answer(10), 0));
        cache.insert(b"b", Entry::new(answer(10), 0));
        assert!(cache.get(b"a").is_some());
        cache.insert(b"c", Entry::new(answer(10), 0));
        assert!(cache.peek(b"a").is_some());
        assert!(cache.peek(b"b").is_none());
    }

    #[test]
    fn replacing_an_entry_keeps_its_popularity_and_byte_count_right() {
        let mut cache = Cache::new(10, usize::MAX);
        cache.insert(b"a", Entry::new(answer(10), 0));
        cache.get(b"a");
        cache.get(b"a");
        let before = cache.bytes();
        cache.insert(b"a", Entry::new(answer(20), 5));
        assert_eq!(cache.peek(b"a").map(|e| e.hits), Some(2));
        assert_eq!(cache.bytes(), before + 10);
        assert_eq!(cache.len(), 1);
    }
}
