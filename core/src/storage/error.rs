//! The storage engine's error type. Each variant says whether the engine's state changed.

use super::codec::FormatError;
use super::disk::DiskError;

/// Why a storage operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The disk failed. For a write, the record may or may not be in the WAL; the engine stops
    /// accepting writes ([`StorageError::Poisoned`]) until it is reopened and recovers.
    #[error("disk: {0}")]
    Disk(#[from] DiskError),
    /// A file's bytes are corrupt (checksum, magic, version or layout). Nothing was changed.
    #[error("{file} is corrupt at byte {offset}: {source}")]
    Corrupt {
        /// The file.
        file: String,
        /// Where the bad structure starts.
        offset: u64,
        /// What is wrong with it.
        source: FormatError,
    },
    /// The key is empty: every key has at least one byte. Nothing was changed.
    #[error("empty key")]
    KeyEmpty,
    /// The key is longer than the limit. Nothing was changed.
    #[error("key of {len} bytes is over the limit of {max}")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value is larger than the configured limit. Nothing was changed.
    #[error("value of {len} bytes is over the limit of {max}")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The memtable is full and the flush backlog is at its bound: the write was not applied.
    /// Retry after a flush job has been installed.
    #[error("write stalled: {frozen} memtables waiting for flush")]
    WriteStall {
        /// Memtables waiting to be flushed.
        frozen: usize,
    },
    /// An earlier disk failure left the engine in an unknown state; nothing was changed.
    /// Reopen the engine to recover from its files.
    #[error("storage engine is poisoned by an earlier failure: {0}")]
    Poisoned(String),
    /// A table writer cannot write this table: it has no entries, or one of its blocks would
    /// pass 4 GiB. The partial table file was deleted (best effort); nothing else was changed.
    #[error("cannot write table {file}: {reason}")]
    TableNotWritable {
        /// The table file.
        file: String,
        /// Why.
        reason: String,
    },
    /// A background job was installed into an engine that did not create it, or twice.
    /// Nothing was changed.
    #[error("stale or foreign background job")]
    StaleJob,
}
