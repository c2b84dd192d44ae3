//! Each node's storage engine: a log-structured merge tree over the [`Disk`] abstraction.
//!
//! A write goes to the write-ahead log ([`wal`]) and then into the sorted in-memory
//! [`memtable`]. A full memtable is frozen and flushed into an immutable SSTable ([`sstable`]);
//! compaction ([`compaction`]) merges SSTables level by level, dropping shadowed versions and,
//! after a grace period, tombstones. The [`manifest`] records which SSTables are live so that
//! the set changes atomically across crashes. [`Lsm`] ties these together.
//!
//! The engine is synchronous and does no I/O except through its [`Disk`]; flushes and
//! compactions are steppable jobs, so the simulator can run them as events and the native node
//! on a background thread.

mod cell;
pub mod codec;
mod disk;
mod error;
mod sim_disk;
pub mod sstable;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use cell::{Cell, KEY_BYTES_MAX, VALUE_BYTES_LIMIT, Version, check_key};
pub use disk::{Disk, DiskError, DiskOp};
pub use error::StorageError;
pub use sim_disk::{FaultConfig, SimDisk, SimDiskStats};
pub use sstable::{
    BlockCache, Table, TableIter, TableMeta, TableOptions, TableWriter, key_hash,
    parse_table_file_name, table_file_name,
};
