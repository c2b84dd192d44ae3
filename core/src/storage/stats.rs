//! Statistics the storage engine exposes to the UI and to metrics.

use serde::{Deserialize, Serialize};

/// One level of the LSM tree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelStats {
    /// Tables in the level.
    pub tables: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Their total entries (keys, tombstones included).
    pub entries: u64,
}

/// A snapshot of [`super::Lsm`]'s state and counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LsmStats {
    /// Bytes of live WAL segments.
    pub wal_bytes: u64,
    /// Live WAL segments.
    pub wal_segments: usize,
    /// LSN of the last batch written.
    pub last_lsn: u64,
    /// Every batch up to this LSN is durable.
    pub durable_lsn: u64,
    /// WAL syncs done (each may cover many writes: group commit).
    pub wal_syncs: u64,
    /// Keys in the active memtable.
    pub memtable_entries: usize,
    /// Bytes in the active memtable.
    pub memtable_bytes: usize,
    /// Frozen memtables waiting for a flush.
    pub frozen_memtables: usize,
    /// Keys in frozen memtables.
    pub frozen_entries: usize,
    /// Per level, L0 first.
    pub levels: Vec<LevelStats>,
    /// Flushes done.
    pub flushes: u64,
    /// Compactions done (trivial moves excluded).
    pub compactions: u64,
    /// Tables moved down a level without a rewrite.
    pub trivial_moves: u64,
    /// Background jobs running.
    pub running_jobs: usize,
    /// Bytes of keys and cells written by users.
    pub user_bytes_written: u64,
    /// Bytes appended to the WAL.
    pub wal_bytes_written: u64,
    /// Bytes of tables written by flushes.
    pub flush_bytes_written: u64,
    /// Bytes of tables written by compactions.
    pub compaction_bytes_written: u64,
    /// (WAL + flush + compaction bytes) / user bytes.
    pub write_amplification: f64,
    /// Tombstones dropped by compaction after their grace period.
    pub tombstones_purged: u64,
    /// Shadowed versions dropped by compaction.
    pub versions_dropped: u64,
    /// Writes refused because flushes or compactions were behind.
    pub write_stalls: u64,
    /// Block cache hits.
    pub block_cache_hits: u64,
    /// Block cache misses.
    pub block_cache_misses: u64,
    /// Size of the manifest file.
    pub manifest_bytes: u64,
    /// Why the engine stopped accepting writes, if it did.
    pub poisoned: Option<String>,
    /// Bytes of torn WAL tail cut off when the engine was opened (writes that never became
    /// durable; see [`super::wal`]).
    pub wal_torn_bytes_cut: u64,
}
