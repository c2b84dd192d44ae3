//! [`TokenIndex`]: every key of a data store by its ring token, so that a scan of a narrow
//! token range costs the range's keys rather than a walk of the whole store.
//!
//! The engine orders keys by bytes; a token range's keys are spread over the whole key space,
//! so [`scan_range`](ringstore_core::node::scan_range) walks all of it. Anti-entropy loads its
//! Merkle leaves that way, each 1/1,024 of a repair range: under a write load most leaves
//! differ, and a node holding 100,000 keys spent more than half its CPU walking its store for
//! them (docs/benchmarks.md). The index answers those scans from the leaf's own keys.
//!
//! It holds `(token, key)` for every key ever written to the store since it opened (built from
//! a full scan at open, then kept up by [`Store::append`](crate::Store::append), which adds
//! only the keys new to the active memtable: the others were added when they got there), so
//! it is a superset of the store's keys: a key whose tombstone was purged by compaction stays
//! until the next start, and a lookup of it finds nothing and skips it. Its memory is bounded
//! by the store's key count: about 80 bytes plus the key per key.

use ringstore_core::ring::{Range, key_token};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

/// A range with more candidate keys than this is scanned by walking the store instead: dense
/// ranges (a whole repair range) cost about the same either way, and a walk copies less.
pub const INDEXED_SCAN_KEYS_MAX: usize = 8_192;

/// The keys of each token: nearly always one (64-bit tokens rarely collide).
type Keys = BTreeMap<u64, Vec<Vec<u8>>>;

/// Every key of a store, ordered by token (see the module docs).
#[derive(Debug, Default)]
pub struct TokenIndex {
    keys: Mutex<Keys>,
    /// Keys held, for [`TokenIndex::len`].
    count: std::sync::atomic::AtomicUsize,
}

impl TokenIndex {
    fn lock(&self) -> MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds keys (already present ones are left as they are). A key already held costs a
    /// lookup, no allocation; tokens are hashed before the lock is taken.
    pub fn insert<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) {
        let keys: Vec<(u64, &[u8])> = keys.into_iter().map(|k| (key_token(k).0, k)).collect();
        let mut added = 0;
        let mut map = self.lock();
        for (token, key) in keys {
            let held = map.entry(token).or_default();
            if !held.iter().any(|k| k.as_slice() == key) {
                held.push(key.to_vec());
                added += 1;
            }
        }
        drop(map);
        self.count
            .fetch_add(added, std::sync::atomic::Ordering::Relaxed);
    }

    /// Adds one key, like [`TokenIndex::insert`].
    pub fn insert_key(&self, key: &[u8]) {
        let token = key_token(key).0;
        let mut map = self.lock();
        let held = map.entry(token).or_default();
        if !held.iter().any(|k| k.as_slice() == key) {
            held.push(key.to_vec());
            drop(map);
            self.count
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys whose token is in `range`, sorted by bytes; `None` if there are more than
    /// `max` (walk the store instead).
    pub fn keys_in(&self, range: Range, max: usize) -> Option<Vec<Vec<u8>>> {
        let map = self.lock();
        let (start, end) = (range.start.0, range.end.0);
        // A range is (start, end], wrapping; start == end is the whole ring.
        let pieces: Vec<(Bound<u64>, Bound<u64>)> = if start < end {
            vec![(Bound::Excluded(start), Bound::Included(end))]
        } else {
            vec![
                (Bound::Excluded(start), Bound::Unbounded),
                (Bound::Unbounded, Bound::Included(end)),
            ]
        };
        // References first: a range over the bound is refused before any key is copied.
        let mut out: Vec<&[u8]> = Vec::new();
        for piece in pieces {
            for (_, keys) in map.range(piece) {
                if out.len() + keys.len() > max {
                    return None;
                }
                out.extend(keys.iter().map(Vec::as_slice));
            }
        }
        out.sort_unstable();
        Some(out.into_iter().map(<[u8]>::to_vec).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::ring::Token;

    #[test]
    fn keys_in_a_range_are_those_whose_token_it_contains() {
        let index = TokenIndex::default();
        let keys: Vec<Vec<u8>> = (0..2000).map(|i| format!("k{i}").into_bytes()).collect();
        index.insert(keys.iter().map(Vec::as_slice));
        index.insert(keys.iter().take(10).map(Vec::as_slice));
        assert_eq!(index.len(), 2000, "a key is held once");
        let third = u64::MAX / 3;
        let ranges = [
            Range::new(Token(third), Token(2 * third)),
            Range::new(Token(2 * third), Token(third)),
            Range::new(Token(7), Token(7)),
            Range::new(key_token(&keys[3]), key_token(&keys[3])),
            Range::new(Token(0), key_token(&keys[5])),
            Range::new(key_token(&keys[5]), Token(u64::MAX)),
        ];
        for range in ranges {
            let mut expected: Vec<Vec<u8>> = keys
                .iter()
                .filter(|k| range.contains(key_token(k)))
                .cloned()
                .collect();
            expected.sort();
            assert_eq!(index.keys_in(range, 5000), Some(expected), "{range:?}");
        }
        assert_eq!(index.keys_in(Range::new(Token(1), Token(1)), 100), None);
    }

    /// Pages through `range` with `page`, as anti-entropy does.
    fn pages(
        page: impl Fn(Option<Vec<u8>>) -> ringstore_core::node::RangePage,
    ) -> Vec<Vec<(Vec<u8>, ringstore_core::storage::Cell)>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let (entries, next) = page(after);
            out.push(entries);
            match next {
                Some(c) => after = Some(c),
                None => return out,
            }
        }
    }

    #[test]
    fn an_indexed_range_scan_answers_as_the_walk_does_before_and_after_a_reopen() {
        use crate::Store;
        use ringstore_core::NodeId;
        use ringstore_core::node::scan_range;
        use ringstore_core::storage::{Cell, LsmConfig, Version};
        let dir = tempfile::tempdir().unwrap();
        let config = LsmConfig::default;
        let v = |ts| Version {
            ts_micros: ts,
            node: NodeId(1),
        };
        let store = Store::open_indexed(dir.path(), config()).unwrap();
        for i in 0..3000u64 {
            let cell = if i % 10 == 0 {
                Cell::tombstone(v(i + 1))
            } else {
                Cell::put(v(i + 1), b"value".to_vec())
            };
            store.write(format!("key{i}").as_bytes(), cell).unwrap();
        }
        let third = u64::MAX / 3;
        let ranges = [
            Range::new(Token(third), Token(third + third / 100)),
            Range::new(Token(2 * third), Token(7)),
            Range::new(Token(7), Token(7)),
        ];
        let check = |store: &Store| {
            for range in ranges {
                for limit in [1, 10, 1024] {
                    let walked = pages(|after| scan_range(store, range, after, limit).unwrap());
                    let indexed = pages(|after| {
                        store
                            .scan_range_indexed(range, after.as_deref(), limit)
                            .expect("within the index's bound")
                            .unwrap()
                    });
                    assert_eq!(indexed, walked, "{range:?} limit {limit}");
                }
            }
        };
        check(&store);
        store.close().unwrap();
        let store = Store::open_indexed(dir.path(), config()).unwrap();
        check(&store);
        let plain = Store::open(&dir.path().join("other"), config()).unwrap();
        assert!(plain.scan_range_indexed(ranges[0], None, 10).is_none());
    }
}
