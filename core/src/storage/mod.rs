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
//!
//! # Disk faults: what the engine survives, and how
//!
//! Errors are typed ([`StorageError`]); a node reports them to its peers and clients as a
//! [`StorageFailure`], which says whether the operation changed anything and whether a retry
//! can succeed.
//!
//! * **A full disk while writing the log is recovered without a restart.** Under a policy that
//!   acknowledges after a sync, a batch is written to the WAL file (without a sync) before it
//!   touches the memtable, so a disk with no space ([`DiskError::Full`], which by the
//!   [`Disk`] contract leaves no bytes behind) refuses it while nothing else holds it: the
//!   batch is taken back, the engine is not poisoned, the write is never readable, and the
//!   same write succeeds once space is freed. Batches buffered under the other policies stay
//!   buffered and are written by a later sync.
//! * **A full disk in a flush or compaction** aborts that job (its partial table is deleted);
//!   the frozen memtables wait, and writes stall ([`StorageError::WriteStall`]) until a retry
//!   of the job succeeds. A full disk while the WAL rotates or the manifest is appended
//!   poisons the engine, as any other failure there does: the new segment or record may be
//!   half on disk.
//! * **A failed sync poisons the engine, and only a restart recovers it.** After a failed
//!   `fsync`/`fdatasync` the kernel may have dropped the dirty pages and marked them clean, so
//!   a later sync can succeed without the data ever reaching the disk: neither the engine's
//!   memory nor a retried sync says what is durable. The engine therefore refuses every later
//!   write and sync ([`StorageError::Poisoned`]) and the host reopens it, which recovers from
//!   what the files hold (the node restarts). Reads go on meanwhile.
//! * **Damage at rest** is found by checksums and reported as [`StorageError::Corrupt`]. A torn
//!   WAL tail (a crash during an unsynced append) is cut and counted
//!   ([`LsmStats::wal_torn_bytes_cut`]); damage in what a clean close sealed is corruption, not
//!   a tear (see [`wal`]).

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
pub use error::{StorageError, StorageFailure};
pub use jobs::{Job, JobKind};
pub use sim_disk::{FaultConfig, SimDisk, SimDiskStats};
pub use sstable::{
    BlockCache, Table, TableIter, TableMeta, TableOptions, TableWriter, key_hash,
    parse_table_file_name, table_file_name,
};
pub use stats::{LevelStats, LsmStats};
pub use wal::{Lsn, SyncTicket, WalWriter};
