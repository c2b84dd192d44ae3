//! The block cache shared by every open table: verified, decoded data blocks, bounded in bytes.
//!
//! A block enters the cache only after its checksum and layout were verified, so a hit costs a
//! hash lookup and an `Arc` clone. The cache is keyed by `(table id, block index)`; table ids are
//! never reused, so a deleted table's blocks simply age out. It uses `quick_cache`'s sharded
//! CLOCK-Pro cache with a fixed shard count and a seedless hasher of its own, so nothing about it depends on
//! the machine or on ambient randomness.

use super::block::DataBlock;
use core::hash::{BuildHasherDefault, Hasher};
use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Cache key: `(table id, block index)`.
type BlockKey = (u64, u32);

/// Bytes charged per cached block on top of its contents (key, `Arc` and bookkeeping).
const BLOCK_OVERHEAD_BYTES: u64 = 64;
/// Shards of the underlying cache; fixed rather than derived from the core count.
const SHARDS: usize = 8;

#[derive(Clone, Copy, Debug)]
struct BlockWeighter;

impl quick_cache::Weighter<BlockKey, Arc<DataBlock>> for BlockWeighter {
    fn weight(&self, _key: &BlockKey, block: &Arc<DataBlock>) -> u64 {
        block.weight() as u64 + BLOCK_OVERHEAD_BYTES
    }
}

/// A seedless hasher for [`BlockKey`]s: the two integers are mixed in and the result run
/// through MurmurHash3's 64-bit finalizer, so every bit of the output depends on every input
/// bit. Cheaper than a general byte hasher for a 12-byte key, and deterministic.
#[derive(Clone, Copy, Debug, Default)]
struct BlockKeyHasher(u64);

impl BlockKeyHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(29) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Hasher for BlockKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.mix(u64::from(b)));
    }
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

type Inner = quick_cache::sync::Cache<
    BlockKey,
    Arc<DataBlock>,
    BlockWeighter,
    BuildHasherDefault<BlockKeyHasher>,
>;

/// A cache of decoded data blocks shared (through an `Arc`) by every table of an engine.
pub struct BlockCache {
    /// `None` when the capacity is zero: nothing is cached.
    inner: Option<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl BlockCache {
    /// A cache holding up to about `capacity_bytes` of blocks (0 disables caching).
    pub fn new(capacity_bytes: u64) -> BlockCache {
        let inner = (capacity_bytes > 0).then(|| {
            let estimated_blocks = (capacity_bytes / 4096).clamp(16, 1 << 24) as usize;
            let options = quick_cache::OptionsBuilder::new()
                .shards(SHARDS)
                .estimated_items_capacity(estimated_blocks)
                .weight_capacity(capacity_bytes)
                .build();
            match options {
                Ok(options) => Some(Inner::with_options(
                    options,
                    BlockWeighter,
                    BuildHasherDefault::default(),
                    Default::default(),
                )),
                // Only reachable if a required option were missing above.
                Err(_) => None,
            }
        });
        BlockCache {
            inner: inner.flatten(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Lookups that found their block.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that did not.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// The cached block, counting a hit or a miss.
    pub(crate) fn get(&self, table: u64, block: u32) -> Option<Arc<DataBlock>> {
        let found = self.inner.as_ref().and_then(|c| c.get(&(table, block)));
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches a verified block.
    pub(crate) fn insert(&self, table: u64, index: u32, block: Arc<DataBlock>) {
        if let Some(c) = &self.inner {
            c.insert((table, index), block);
        }
    }

    /// A separate cache of `capacity_bytes` (the capacity this one was made with) holding the
    /// same blocks (shared: they are immutable) and the same hit and miss counts: for
    /// [`crate::storage::Lsm::fork`].
    pub(crate) fn fork(&self, capacity_bytes: u64) -> BlockCache {
        let copy = BlockCache::new(capacity_bytes);
        if let (Some(from), Some(to)) = (&self.inner, &copy.inner) {
            for (key, block) in from.iter() {
                to.insert(key, block);
            }
        }
        copy.hits.store(self.hits(), Ordering::Relaxed);
        copy.misses.store(self.misses(), Ordering::Relaxed);
        copy
    }
}

impl core::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlockCache")
            .field("enabled", &self.inner.is_some())
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::storage::sstable::block::DataBlockBuilder;
    use crate::storage::{Cell, Version};

    fn block(value_bytes: usize) -> Arc<DataBlock> {
        let mut b = DataBlockBuilder::default();
        b.add(b"k", &Cell::put(Version::default(), vec![7; value_bytes]));
        Arc::new(DataBlock::decode(b.seal().to_vec()).unwrap())
    }

    #[test]
    fn block_cache_counts_hits_and_misses() {
        let cache = BlockCache::new(1 << 20);
        assert!(cache.get(1, 0).is_none());
        cache.insert(1, 0, block(10));
        assert!(cache.get(1, 0).is_some());
        assert!(cache.get(2, 0).is_none());
        assert_eq!((cache.hits(), cache.misses()), (1, 2));
    }

    #[test]
    fn block_cache_stays_within_its_byte_bound() {
        let cache = BlockCache::new(64 << 10);
        for i in 0..100 {
            cache.insert(1, i, block(4000));
        }
        let resident = (0..100).filter(|&i| cache.get(1, i).is_some()).count();
        assert!(
            resident > 0 && resident <= 16,
            "{resident} blocks of 4 KB resident in 64 KB"
        );
    }

    #[test]
    fn block_cache_of_zero_bytes_caches_nothing() {
        let cache = BlockCache::new(0);
        cache.insert(1, 0, block(10));
        assert!(cache.get(1, 0).is_none());
    }

    #[test]
    fn block_cache_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<BlockCache>();
    }
}
