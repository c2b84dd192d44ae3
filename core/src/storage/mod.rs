//! Each node's storage engine: a log-structured merge tree over the [`Disk`] abstraction.
//!
//! A write goes to the write-ahead log ([`wal`]) and then into the sorted in-memory
//! [`memtable`]. A full memtable is frozen and flushed into an immutable SSTable ([`sstable`]);
//! compaction ([`compaction`]) merges SSTables level by level, dropping shadowed versions and,
//! after a grace period, tombstones. The [`manifest`] records which SSTables are live so that
//! the set changes atomically across crashes. [`Lsm`] ties these together.
//!
//! The engine is synchronous and does no I/O except through its [`Disk`]; flushes and
//! compactions are steppable jobs ([`jobs`]), so the simulator can run them as events and the
//! native node on a background thread.

mod cell;
pub mod codec;
pub mod compaction;
mod config;
mod disk;
mod engine;
mod error;
pub mod frame;
pub mod jobs;
pub mod manifest;
pub mod memtable;
mod sim_disk;
pub mod sstable;
mod stats;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod wal;

pub use cell::{CLIENT_KEY_BYTES_MAX, Cell, KEY_BYTES_MAX, VALUE_BYTES_LIMIT, Version, check_key};
pub use compaction::CompactionConfig;
pub use config::{LsmConfig, SYNC_INTERVAL_MS_MAX, SyncPolicy, SyncPolicyError};
pub use disk::{Disk, DiskError, DiskOp};
pub use engine::{FilteredPage, Lsm, RecoveryReport, SCAN_LIMIT_MAX};
pub use error::StorageError;
pub use jobs::{Job, JobKind};
pub use sim_disk::{FaultConfig, SimDisk, SimDiskStats};
pub use sstable::{
    BlockCache, Table, TableIter, TableMeta, TableOptions, TableWriter, key_hash,
    parse_table_file_name, table_file_name,
};
pub use stats::{LevelStats, LsmStats};
pub use wal::{Lsn, SyncTicket, WalWriter};
