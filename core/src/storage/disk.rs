//! The one disk abstraction every storage file goes through.
//!
//! The engine names files with flat names (`wal-0000000000000003.log`, `sst-…`, `MANIFEST`) in
//! one directory. Three implementations exist: real files (`ringstore-node`), the simulated disk
//! ([`super::SimDisk`]) that models durability and faults, and the browser's IndexedDB-backed
//! disk (`ringstore-web`).
//!
//! # Contract (what the engine relies on)
//!
//! * Files are append-only byte sequences: [`Disk::create`], [`Disk::append`], and
//!   [`Disk::truncate`] (only used to cut a torn WAL tail).
//! * [`Disk::sync`] makes a file's *contents* durable, up to the bytes appended so far.
//! * [`Disk::sync_dir`] makes the *namespace* durable: creations, renames and deletions done so far.
//!   Until then a crash may undo them (as on a real file system without a directory fsync).
//! * [`Disk::rename`] atomically replaces the destination.
//! * Reads see every write, synced or not.
//! * [`Disk::preallocate`] is only a hint about a file's future size: it never changes what
//!   `len`, `read_at` or `append` see. A disk may reserve space so that a later `sync` of bytes
//!   appended into it need not also commit a new file size (cheaper on real file systems). The
//!   price, on such a disk, is that after a *crash or restart* a preallocated file may read back
//!   longer than what was appended, padded with zero bytes; only the WAL preallocates, and its
//!   recovery cuts such a zero tail like any torn tail.
//!
//! An asynchronously persisting store (IndexedDB) can back this contract: it keeps every file in
//! memory, loads everything when it is opened, and persists synced contents and namespace changes
//! in order after `sync`/`sync_dir` return. A crash of the disk (as the host models it) loses
//! at most what was not yet synced, which is exactly what the contract allows; the death of the
//! host itself loses what was not yet persisted, and because persistence is in order what
//! survives is the durable state of an earlier instant: a crash at that instant. The browser's
//! disk (`ringstore-web`'s `IdbDisk`) persists the whole simulated cluster that way, one
//! consistent cut per save.
//!
//! All methods take `&self`: implementations use interior mutability, so that table readers and
//! background jobs can share a cheap [`Clone`] handle to the same disk.

use core::fmt;

/// What went wrong in a disk operation. No variant leaves a file half-changed except
/// [`DiskError::Io`] on `append`, after which the file's tail is unspecified until reopened.
/// [`DiskError::Full`] in particular changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    /// The file does not exist. Nothing was changed.
    #[error("file {name:?} not found")]
    NotFound {
        /// File name.
        name: String,
    },
    /// `create` on a name that exists. Nothing was changed.
    #[error("file {name:?} already exists")]
    AlreadyExists {
        /// File name.
        name: String,
    },
    /// A read past the end of the file. Nothing was changed.
    #[error("read of {len} bytes at {offset} past the end of {name:?} ({file_len} bytes)")]
    OutOfBounds {
        /// File name.
        name: String,
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The device has no space left (`ENOSPC`) for an `append` (or a `create` or
    /// `preallocate`). Nothing was changed: an append that fails this way leaves no bytes, so
    /// the same append may be retried once space is freed.
    #[error("{op} on {name:?} failed: no space left on the device")]
    Full {
        /// The operation.
        op: DiskOp,
        /// File name.
        name: String,
    },
    /// The device failed (a real I/O error or an injected fault).
    #[error("{op} on {name:?} failed: {message}")]
    Io {
        /// The operation: `append`, `sync`, `read`, ...
        op: DiskOp,
        /// File name (empty for directory operations).
        name: String,
        /// What the device said.
        message: String,
    },
}

/// A disk operation, named in errors and in fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiskOp {
    /// [`Disk::create`].
    Create,
    /// [`Disk::append`].
    Append,
    /// [`Disk::sync`].
    Sync,
    /// [`Disk::sync_dir`].
    SyncDir,
    /// [`Disk::read_at`].
    Read,
    /// [`Disk::len`].
    Len,
    /// [`Disk::list`].
    List,
    /// [`Disk::rename`].
    Rename,
    /// [`Disk::delete`].
    Delete,
    /// [`Disk::truncate`].
    Truncate,
    /// [`Disk::preallocate`].
    Preallocate,
}

impl fmt::Display for DiskOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            DiskOp::Create => "create",
            DiskOp::Append => "append",
            DiskOp::Sync => "sync",
            DiskOp::SyncDir => "sync_dir",
            DiskOp::Read => "read",
            DiskOp::Len => "len",
            DiskOp::List => "list",
            DiskOp::Rename => "rename",
            DiskOp::Delete => "delete",
            DiskOp::Truncate => "truncate",
            DiskOp::Preallocate => "preallocate",
        };
        f.write_str(s)
    }
}

/// A directory of append-only files. See the module docs for the durability contract.
pub trait Disk: Clone {
    /// Creates an empty file. Fails with [`DiskError::AlreadyExists`] if `name` exists.
    fn create(&self, name: &str) -> Result<(), DiskError>;
    /// Appends `data` to the end of `name`.
    fn append(&self, name: &str, data: &[u8]) -> Result<(), DiskError>;
    /// Makes the contents of `name` appended so far durable.
    fn sync(&self, name: &str) -> Result<(), DiskError>;
    /// Makes creations, renames and deletions done so far durable.
    fn sync_dir(&self) -> Result<(), DiskError>;
    /// Fills `buf` with the bytes of `name` starting at `offset`; all of `buf` or an error.
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// The length of `name` in bytes, including unsynced appends.
    fn len(&self, name: &str) -> Result<u64, DiskError>;
    /// Every file name, sorted.
    fn list(&self) -> Result<Vec<String>, DiskError>;
    /// Atomically renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &str, to: &str) -> Result<(), DiskError>;
    /// Deletes `name`.
    fn delete(&self, name: &str) -> Result<(), DiskError>;
    /// Cuts `name` to `len` bytes (used to drop a torn WAL tail). Durable after `sync`.
    /// A `len` past the end extends the file with zeros, as `ftruncate` does; the engine never
    /// asks for that.
    fn truncate(&self, name: &str, len: u64) -> Result<(), DiskError>;

    /// A hint that `name` will grow to about `bytes`, so the disk may reserve the space now.
    /// It must not change the file's logical contents: `len`, `read_at` and `append` behave
    /// exactly as if it had not been called, for as long as this disk handle lives. After a
    /// crash or a reopen, the file may read back with a tail of zero bytes up to `bytes` (see
    /// the module docs); `truncate` to the logical length drops the reservation for good.
    /// The default does nothing, which is always correct.
    fn preallocate(&self, name: &str, bytes: u64) -> Result<(), DiskError> {
        let _ = (name, bytes);
        Ok(())
    }

    /// Reads `len` bytes of `name` at `offset` into a new vector.
    fn read_vec(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let mut buf = vec![0; len];
        self.read_at(name, offset, &mut buf)?;
        Ok(buf)
    }

    /// Reads the whole of `name`.
    fn read_all(&self, name: &str) -> Result<Vec<u8>, DiskError> {
        let len = self.len(name)?;
        let len = usize::try_from(len).map_err(|_| DiskError::Io {
            op: DiskOp::Read,
            name: name.to_string(),
            message: format!("file of {len} bytes does not fit in memory"),
        })?;
        self.read_vec(name, 0, len)
    }

    /// Whether `name` exists.
    fn exists(&self, name: &str) -> Result<bool, DiskError> {
        match self.len(name) {
            Ok(_) => Ok(true),
            Err(DiskError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
