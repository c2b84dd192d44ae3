//! The storage engine's configuration: sizes, bounds, policies. Every buffer has a bound here.

use super::compaction::CompactionConfig;
use super::sstable::TableOptions;
use crate::Millis;
use serde::{Deserialize, Serialize};

/// When the WAL is synced. The node chooses; the engine only reports when a sync is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncPolicy {
    /// Every write is durable before it is acknowledged (writes waiting together share a sync).
    Always,
    /// The WAL is synced every so many milliseconds; a crash loses at most that much.
    IntervalMs(u64),
    /// The WAL is synced only when it rotates; a crash may lose the current memtable's writes.
    Never,
}

impl SyncPolicy {
    /// Whether a write under this policy is acknowledged only once durable.
    pub fn acks_after_sync(self) -> bool {
        matches!(self, SyncPolicy::Always)
    }

    /// Whether a sync is due at `now`, given the last sync and whether anything is unsynced.
    pub fn sync_due(self, now: Millis, last_sync: Millis, unsynced: bool) -> bool {
        unsynced
            && match self {
                SyncPolicy::Always => true,
                SyncPolicy::IntervalMs(ms) => now.saturating_sub(last_sync).0 >= ms,
                SyncPolicy::Never => false,
            }
    }
}

/// The longest interval [`SyncPolicy::IntervalMs`] may have when parsed from text: a minute.
pub const SYNC_INTERVAL_MS_MAX: u64 = 60_000;

/// Why a text is not a sync policy. Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad sync policy {0:?}: always, never or interval:MS with MS from 1 to {SYNC_INTERVAL_MS_MAX}"
)]
pub struct SyncPolicyError(pub String);

/// The one spelling of a sync policy, for scripts, the page and its URL: `always`, `never` or
/// `interval:MS`, with MS from 1 to [`SYNC_INTERVAL_MS_MAX`].
impl std::str::FromStr for SyncPolicy {
    type Err = SyncPolicyError;

    fn from_str(s: &str) -> Result<SyncPolicy, SyncPolicyError> {
        match s {
            "always" => Ok(SyncPolicy::Always),
            "never" => Ok(SyncPolicy::Never),
            _ => s
                .strip_prefix("interval:")
                .and_then(|ms| ms.parse::<u64>().ok())
                .filter(|ms| (1..=SYNC_INTERVAL_MS_MAX).contains(ms))
                .map(SyncPolicy::IntervalMs)
                .ok_or_else(|| SyncPolicyError(s.to_string())),
        }
    }
}

/// Writes the spelling [`SyncPolicy::from_str`](std::str::FromStr) reads.
impl std::fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncPolicy::Always => f.write_str("always"),
            SyncPolicy::Never => f.write_str("never"),
            SyncPolicy::IntervalMs(ms) => write!(f, "interval:{ms}"),
        }
    }
}

/// Everything [`super::Lsm`] can be tuned by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsmConfig {
    /// A memtable is frozen (and a flush becomes due) when it, or the WAL segment logging its
    /// writes, holds this many bytes (so the WAL is bounded when overwrites keep it small).
    pub memtable_bytes_max: usize,
    /// Frozen memtables waiting for a flush; past this, writes stall.
    pub frozen_memtables_max: usize,
    /// L0 tables past which writes stall until compaction catches up.
    pub l0_stall_tables: usize,
    /// The leveled compaction policy.
    pub compaction: CompactionConfig,
    /// SSTable block size and bloom filter density.
    pub table: TableOptions,
    /// Bytes of decoded data blocks kept in memory.
    pub block_cache_bytes: u64,
    /// A tombstone is kept at least this long after its timestamp before compaction may drop it.
    /// Anti-entropy must run more often than this, or a deleted key can come back.
    pub tombstone_grace_ms: u64,
    /// The largest value accepted, in bytes (at most [`super::VALUE_BYTES_LIMIT`]).
    pub value_bytes_max: usize,
    /// When the WAL is synced.
    pub sync: SyncPolicy,
}

impl Default for LsmConfig {
    fn default() -> Self {
        LsmConfig {
            memtable_bytes_max: 64 << 20,
            frozen_memtables_max: 2,
            l0_stall_tables: 20,
            compaction: CompactionConfig::default(),
            table: TableOptions::default(),
            block_cache_bytes: 32 << 20,
            tombstone_grace_ms: 10 * 24 * 3600 * 1000,
            value_bytes_max: 1 << 20,
            sync: SyncPolicy::Always,
        }
    }
}

impl LsmConfig {
    /// Tiny sizes so that a few hundred writes exercise flushes, every level and compaction.
    pub fn small_for_tests() -> Self {
        LsmConfig {
            memtable_bytes_max: 4 << 10,
            frozen_memtables_max: 2,
            l0_stall_tables: 12,
            compaction: CompactionConfig {
                l0_trigger: 3,
                l1_bytes_max: 16 << 10,
                level_multiplier: 4,
                table_bytes_target: 4 << 10,
            },
            table: TableOptions {
                block_bytes: 512,
                bloom_bits_per_key: 10,
            },
            block_cache_bytes: 64 << 10,
            tombstone_grace_ms: 1000,
            value_bytes_max: 4 << 10,
            sync: SyncPolicy::Always,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{SYNC_INTERVAL_MS_MAX, SyncPolicy};

    #[test]
    fn a_sync_policy_reads_back_what_it_writes_and_bounds_the_interval() {
        for policy in [
            SyncPolicy::Always,
            SyncPolicy::Never,
            SyncPolicy::IntervalMs(1),
            SyncPolicy::IntervalMs(SYNC_INTERVAL_MS_MAX),
        ] {
            assert_eq!(policy.to_string().parse(), Ok(policy));
        }
        assert_eq!("interval:100".parse(), Ok(SyncPolicy::IntervalMs(100)));
        for bad in [
            "",
            "sometimes",
            "interval:",
            "interval:0",
            "interval:60001",
            "interval:-5",
        ] {
            assert!(bad.parse::<SyncPolicy>().is_err(), "{bad:?}");
        }
    }
}
