//! The storage engine's error type. Each variant says whether the engine's state changed.

use super::codec::FormatError;
use super::disk::DiskError;

/// Why a storage operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The disk failed. For a write, the record may or may not be in the WAL; the engine stops
    /// accepting writes ([`StorageError::Poisoned`]) until it is reopened and recovers. Except
    /// a full disk ([`DiskError::Full`]) met while appending a batch or writing the WAL buffer
    /// before a sync: then nothing was changed, the engine goes on, and the write may be
    /// retried once space is freed (see [`StorageError::is_disk_full`]).
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

impl StorageError {
    /// Whether this is a full disk ([`DiskError::Full`]).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StorageError::Disk(DiskError::Full { .. }))
    }
}

/// Why a storage operation failed, as a node reports it to its driver, its peers and its
/// clients: a [`StorageError`] sorted by what the caller can do about it. Each variant says
/// whether the operation changed the store's state and whether retrying it can succeed
/// ([`StorageFailure::retryable`]); the text is the engine's own message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
pub enum StorageFailure {
    /// The disk is full. Nothing was changed; retryable once space is freed (the engine goes
    /// on: no restart is needed).
    #[error("disk full: {0}")]
    DiskFull(String),
    /// The store is busy: writes wait for flushes, or the storage queue is full. Nothing was
    /// changed; retryable soon.
    #[error("storage busy: {0}")]
    Busy(String),
    /// The engine refuses writes after an earlier failure (a failed sync, a panic while it was
    /// held): its state in memory may not match its files. Nothing was changed by this
    /// operation; not retryable on this node until it restarts and recovers from its files.
    #[error("storage engine poisoned: {0}")]
    Poisoned(String),
    /// The disk failed during this operation. A write may or may not be in the log (state may
    /// have changed), and the engine is poisoned now; not retryable.
    #[error("disk error: {0}")]
    Disk(String),
    /// Stored bytes are corrupt. Nothing was changed; not retryable.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The operation itself is invalid (a key or value out of bounds, a write sent where only
    /// reads run). Nothing was changed; not retryable.
    #[error("refused: {0}")]
    Refused(String),
}

impl StorageFailure {
    /// Whether the same operation may succeed later on this node without a restart.
    pub fn retryable(&self) -> bool {
        matches!(self, StorageFailure::DiskFull(_) | StorageFailure::Busy(_))
    }

    /// Whether the failed operation may have changed the store's state.
    pub fn state_may_have_changed(&self) -> bool {
        matches!(self, StorageFailure::Disk(_))
    }

    /// Whether the node cannot take writes until something changes (space is freed, or the
    /// node restarts): what a readiness check reports.
    pub fn blocks_writes(&self) -> bool {
        matches!(
            self,
            StorageFailure::DiskFull(_) | StorageFailure::Poisoned(_) | StorageFailure::Disk(_)
        )
    }
}

impl From<&StorageError> for StorageFailure {
    fn from(e: &StorageError) -> Self {
        let text = e.to_string();
        match e {
            StorageError::Disk(DiskError::Full { .. }) => StorageFailure::DiskFull(text),
            StorageError::Disk(_) | StorageError::TableNotWritable { .. } => {
                StorageFailure::Disk(text)
            }
            StorageError::Corrupt { .. } => StorageFailure::Corrupt(text),
            StorageError::KeyEmpty
            | StorageError::KeyTooLong { .. }
            | StorageError::ValueTooLarge { .. } => StorageFailure::Refused(text),
            StorageError::WriteStall { .. } | StorageError::StaleJob => StorageFailure::Busy(text),
            StorageError::Poisoned(why) => StorageFailure::Poisoned(why.clone()),
        }
    }
}

impl From<StorageError> for StorageFailure {
    fn from(e: StorageError) -> Self {
        StorageFailure::from(&e)
    }
}
