//! [`FileDisk`]: the [`Disk`] of a native node, one real file per name in one directory.
//!
//! The storage engine in `ringstore-core` does all its I/O through [`Disk`]; this is the
//! implementation that makes it durable on a real machine. Each method maps to one POSIX
//! call: `append` is a `write` on a file opened with `O_APPEND` (a `pwrite` once the file is
//! preallocated, see below), `sync` is `fdatasync`, `sync_dir` is an `fsync` of the directory,
//! `read_at` is `pread`, `rename` is `rename(2)`, `truncate` and `preallocate` are `ftruncate`.
//! These give exactly the contract the engine relies on: contents are durable after `sync`,
//! names after `sync_dir`, and `rename` atomically replaces.
//!
//! Open file handles are cached (up to [`HANDLES_MAX`]) so that the WAL's many small appends
//! and the SSTables' many reads do not reopen files. A `LOCK` file in the directory holds an
//! exclusive advisory lock for as long as any clone of the [`FileDisk`] lives, so two nodes
//! (or two opens in one process) never write the same directory.
//!
//! **Preallocation.** [`Disk::preallocate`] extends the file with `ftruncate` (a sparse tail of
//! zeros, as fjall does for its journal), so that each later `fdatasync` of a record written into
//! that space does not also have to commit a new file size: on ext4 that is ~1.5× more synced
//! appends per second. The file's *logical* length (what was appended) is then kept in its cached
//! handle, which writes with `pwrite` at that length instead of `O_APPEND`, and which is never
//! evicted from the cache (the logical length lives nowhere else). `len`, `read_at`, `append`,
//! `truncate`, `rename` and `delete` all see the logical length. A new `FileDisk` on the same
//! directory (after a crash or a restart) does not know it: the file then reads back with its
//! zero tail, which WAL recovery cuts as a torn tail.

use ringstore_core::storage::{Disk, DiskError, DiskOp};
use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The lock file's name; it is not a storage file and never appears in [`Disk::list`].
pub const LOCK_FILE: &str = "LOCK";

/// How many open file handles are cached; past this the cache is emptied (except for the
/// handles of preallocated files, which hold their logical length) and refilled on use.
pub const HANDLES_MAX: usize = 512;

/// A directory of real files behind the [`Disk`] trait. Cloning gives another handle to the
/// same directory; the directory stays locked until the last clone is dropped.
#[derive(Clone)]
pub struct FileDisk {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// The open directory, for `sync_dir`.
    dir_handle: File,
    /// Holds the exclusive lock on [`LOCK_FILE`]; released when dropped.
    _lock: File,
    handles: Mutex<HashMap<String, Arc<Handle>>>,
}

/// An open file in the handle cache.
struct Handle {
    file: File,
    /// `None`: the file's size is its length and `file` appends with `O_APPEND`. `Some`: the
    /// file was preallocated; this is its logical length, where appends go (with `pwrite`, as
    /// `file` is then opened without `O_APPEND`) and where reads end. Its size may be larger.
    logical_len: Option<Mutex<u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values hold no invariant a panicking holder could break halfway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for FileDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileDisk")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl FileDisk {
    /// Opens `dir` as a disk, creating it if needed, and locks it against other opens. Fails
    /// with [`io::ErrorKind::WouldBlock`] if another `FileDisk` (in this or another process)
    /// holds the directory.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<FileDisk> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "storage directory {} is in use: another FileDisk holds {}",
                        dir.display(),
                        lock_path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        let dir_handle = File::open(&dir)?;
        Ok(FileDisk {
            inner: Arc::new(Inner {
                dir,
                dir_handle,
                _lock: lock,
                handles: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The directory this disk lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.inner.dir.join(name)
    }

    fn handles(&self) -> MutexGuard<'_, HashMap<String, Arc<Handle>>> {
        lock(&self.inner.handles)
    }

    /// The cached handle of `name`, opening it (read + append) if it is not cached.
    fn handle(&self, op: DiskOp, name: &str) -> Result<Arc<Handle>, DiskError> {
        check_name(op, name)?;
        let mut handles = self.handles();
        if let Some(file) = handles.get(name) {
            return Ok(Arc::clone(file));
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(self.path(name))
            .map_err(|e| io_error(op, name, e))?;
        Ok(cache(&mut handles, name, file))
    }
}

/// Caches a plain (`O_APPEND`) handle of `name`.
fn cache(handles: &mut HashMap<String, Arc<Handle>>, name: &str, file: File) -> Arc<Handle> {
    if handles.len() >= HANDLES_MAX {
        // Preallocated files stay: their handle is the only record of their logical length.
        handles.retain(|_, handle| handle.logical_len.is_some());
    }
    let handle = Arc::new(Handle {
        file,
        logical_len: None,
    });
    handles.insert(name.to_string(), Arc::clone(&handle));
    handle
}

/// Rejects names that are not a plain file name inside the directory.
fn check_name(op: DiskOp, name: &str) -> Result<(), DiskError> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.contains('/') {
        "it contains '/'"
    } else if name.contains('\0') {
        "it contains a NUL byte"
    } else if name == "." || name == ".." {
        "it names a directory"
    } else if name == LOCK_FILE {
        "LOCK is reserved for the directory lock"
    } else {
        return Ok(());
    };
    Err(DiskError::Io {
        op,
        name: name.to_string(),
        message: format!("not a plain file name: {why}"),
    })
}

fn io_error(op: DiskOp, name: &str, e: io::Error) -> DiskError {
    match e.kind() {
        // A sync that finds no space is a failed sync (the kernel may have dropped the dirty
        // pages): an I/O error, not the recoverable full disk of a write.
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            if !matches!(op, DiskOp::Sync | DiskOp::SyncDir) =>
        {
            DiskError::Full {
                op,
                name: name.to_string(),
            }
        }
        io::ErrorKind::NotFound => DiskError::NotFound {
            name: name.to_string(),
        },
        io::ErrorKind::AlreadyExists => DiskError::AlreadyExists {
            name: name.to_string(),
        },
        _ => DiskError::Io {
            op,
            name: name.to_string(),
            message: e.to_string(),
        },
    }
}

/// `write_all` on a file opened with `O_APPEND`, except that a write that fails part way (a
/// full disk) is cut back off, so a failed append leaves the file as it was (the contract of
/// [`DiskError::Full`]).
fn append_all(file: &File, data: &[u8]) -> io::Result<()> {
    let mut written = 0;
    while written < data.len() {
        match (&*file).write(&data[written..]) {
            Ok(0) => {
                let e = io::Error::from(io::ErrorKind::WriteZero);
                return Err(cut_back(file, written, e));
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(cut_back(file, written, e)),
        }
    }
    Ok(())
}

/// Cuts the `written` bytes of a failed append off the end of `file`; returns the append's
/// error (or the cut's, which leaves the tail for recovery to cut as torn).
fn cut_back(file: &File, written: usize, e: io::Error) -> io::Error {
    if written == 0 {
        return e;
    }
    let cut = file
        .metadata()
        .and_then(|m| file.set_len(m.len().saturating_sub(written as u64)));
    match cut {
        Ok(()) => e,
        Err(cut) => io::Error::other(format!("{e}; cutting the partial write failed: {cut}")),
    }
}

impl Disk for FileDisk {
    fn create(&self, name: &str) -> Result<(), DiskError> {
        check_name(DiskOp::Create, name)?;
        let mut handles = self.handles();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(self.path(name))
            .map_err(|e| io_error(DiskOp::Create, name, e))?;
        cache(&mut handles, name, file);
        Ok(())
    }

    fn append(&self, name: &str, data: &[u8]) -> Result<(), DiskError> {
        let handle = self.handle(DiskOp::Append, name)?;
        let result = match &handle.logical_len {
            None => append_all(&handle.file, data),
            Some(logical_len) => {
                // A failed write leaves its bytes past the logical length, where the next
                // append overwrites them.
                let mut logical_len = lock(logical_len);
                let written = handle.file.write_all_at(data, *logical_len);
                if written.is_ok() {
                    *logical_len += data.len() as u64;
                }
                written
            }
        };
        result.map_err(|e| io_error(DiskOp::Append, name, e))
    }

    fn sync(&self, name: &str) -> Result<(), DiskError> {
        let handle = self.handle(DiskOp::Sync, name)?;
        handle
            .file
            .sync_data()
            .map_err(|e| io_error(DiskOp::Sync, name, e))
    }

    fn sync_dir(&self) -> Result<(), DiskError> {
        self.inner
            .dir_handle
            .sync_all()
            .map_err(|e| io_error(DiskOp::SyncDir, "", e))
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let handle = self.handle(DiskOp::Read, name)?;
        let len = buf.len() as u64;
        let out_of_bounds = |file_len: u64| {
            offset
                .checked_add(len)
                .is_none_or(|end| end > file_len)
                .then(|| DiskError::OutOfBounds {
                    name: name.to_string(),
                    offset,
                    len,
                    file_len,
                })
        };
        if let Some(logical_len) = &handle.logical_len {
            // The preallocated zeros past the logical length are not part of the file.
            if let Some(err) = out_of_bounds(*lock(logical_len)) {
                return Err(err);
            }
        }
        let Err(err) = handle.file.read_exact_at(buf, offset) else {
            return Ok(());
        };
        // A short read (or an offset the OS rejects) past the end is the caller's mistake,
        // reported with the real length; anything else is the device's.
        let file_len = handle
            .file
            .metadata()
            .map_err(|e| io_error(DiskOp::Read, name, e))?
            .len();
        Err(out_of_bounds(file_len).unwrap_or_else(|| io_error(DiskOp::Read, name, err)))
    }

    fn len(&self, name: &str) -> Result<u64, DiskError> {
        check_name(DiskOp::Len, name)?;
        let cached = self.handles().get(name).cloned();
        if let Some(handle) = cached
            && let Some(logical_len) = &handle.logical_len
        {
            return Ok(*lock(logical_len));
        }
        let meta =
            std::fs::metadata(self.path(name)).map_err(|e| io_error(DiskOp::Len, name, e))?;
        if !meta.is_file() {
            return Err(DiskError::Io {
                op: DiskOp::Len,
                name: name.to_string(),
                message: "not a regular file".to_string(),
            });
        }
        Ok(meta.len())
    }

    /// Regular files with UTF-8 names, sorted; the lock file and anything else are skipped.
    fn list(&self) -> Result<Vec<String>, DiskError> {
        let list_error = |e| io_error(DiskOp::List, "", e);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.inner.dir).map_err(list_error)? {
            let entry = entry.map_err(list_error)?;
            if !entry.file_type().map_err(list_error)?.is_file() {
                continue;
            }
            match entry.file_name().into_string() {
                Ok(name) if name != LOCK_FILE => names.push(name),
                _ => {}
            }
        }
        names.sort();
        Ok(names)
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), DiskError> {
        check_name(DiskOp::Rename, from)?;
        check_name(DiskOp::Rename, to)?;
        // Holding the cache lock keeps the cache in step with the namespace.
        let mut handles = self.handles();
        std::fs::rename(self.path(from), self.path(to))
            .map_err(|e| io_error(DiskOp::Rename, from, e))?;
        if from != to {
            handles.remove(to);
            if let Some(file) = handles.remove(from) {
                handles.insert(to.to_string(), file);
            }
        }
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), DiskError> {
        check_name(DiskOp::Delete, name)?;
        let mut handles = self.handles();
        std::fs::remove_file(self.path(name)).map_err(|e| io_error(DiskOp::Delete, name, e))?;
        handles.remove(name);
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> Result<(), DiskError> {
        let handle = self.handle(DiskOp::Truncate, name)?;
        let truncate_error = |e| io_error(DiskOp::Truncate, name, e);
        match &handle.logical_len {
            None => handle.file.set_len(len).map_err(truncate_error),
            Some(logical_len) => {
                // Cuts the preallocated zeros too: the file's size is its length again. The
                // handle keeps writing at the logical length, which is now that size.
                let mut logical_len = lock(logical_len);
                handle.file.set_len(len).map_err(truncate_error)?;
                *logical_len = len;
                Ok(())
            }
        }
    }

    /// Extends the file to `bytes` with `ftruncate` (a sparse zero tail) if it is shorter, and
    /// from then on keeps its logical length in its cached handle. See the module docs.
    ///
    /// The first preallocation must not race an append to the same file from another thread
    /// (which may still hold the old `O_APPEND` handle and would write past the zeros); the WAL
    /// preallocates a segment it just created, before any other thread can know its name.
    fn preallocate(&self, name: &str, bytes: u64) -> Result<(), DiskError> {
        let op = DiskOp::Preallocate;
        let handle = self.handle(op, name)?;
        let physical_len = |file: &File| {
            file.metadata()
                .map(|meta| meta.len())
                .map_err(|e| io_error(op, name, e))
        };
        if let Some(logical_len) = &handle.logical_len {
            let _appends = lock(logical_len);
            if physical_len(&handle.file)? < bytes {
                handle
                    .file
                    .set_len(bytes)
                    .map_err(|e| io_error(op, name, e))?;
            }
            return Ok(());
        }
        // Switch to a handle without O_APPEND (through which `pwrite` would ignore the offset
        // on Linux), under the cache lock so that no other operation sees the switch halfway.
        let mut handles = self.handles();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(name))
            .map_err(|e| io_error(op, name, e))?;
        let len = physical_len(&file)?;
        if len >= bytes {
            return Ok(());
        }
        file.set_len(bytes).map_err(|e| io_error(op, name, e))?;
        handles.insert(
            name.to_string(),
            Arc::new(Handle {
                file,
                logical_len: Some(Mutex::new(len)),
            }),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (tempfile::TempDir, FileDisk) {
        let dir = tempfile::tempdir().unwrap();
        let disk = FileDisk::open(dir.path().join("data")).unwrap();
        (dir, disk)
    }

    #[test]
    fn open_creates_the_directory_and_hides_the_lock() {
        let (_tmp, disk) = fresh();
        assert!(disk.dir().join(LOCK_FILE).is_file());
        assert_eq!(disk.list().unwrap(), Vec::<String>::new());
        std::fs::create_dir(disk.dir().join("subdir")).unwrap();
        disk.create("a").unwrap();
        assert_eq!(disk.list().unwrap(), ["a"], "only regular files, no LOCK");
    }

    #[test]
    fn non_plain_names_are_rejected() {
        let (_tmp, disk) = fresh();
        for (name, why) in [
            ("", "empty"),
            ("a/b", "'/'"),
            ("../x", "'/'"),
            ("a\0b", "NUL"),
            (".", "directory"),
            ("..", "directory"),
            ("LOCK", "reserved"),
        ] {
            match disk.create(name) {
                Err(DiskError::Io {
                    op: DiskOp::Create,
                    message,
                    ..
                }) => {
                    assert!(message.contains(why), "{name:?}: {message}");
                }
                other => panic!("{name:?} should be rejected, got {other:?}"),
            }
        }
        assert!(matches!(
            disk.len("LOCK"),
            Err(DiskError::Io {
                op: DiskOp::Len,
                ..
            })
        ));
        assert!(matches!(
            disk.rename("a", "../a"),
            Err(DiskError::Io {
                op: DiskOp::Rename,
                ..
            })
        ));
    }

    #[test]
    fn contents_survive_reopening() {
        let (tmp, disk) = fresh();
        disk.create("wal").unwrap();
        disk.append("wal", b"record").unwrap();
        disk.sync("wal").unwrap();
        disk.sync_dir().unwrap();
        let clone = disk.clone();
        drop(disk);
        assert!(
            FileDisk::open(tmp.path().join("data")).is_err(),
            "a clone still holds the lock"
        );
        drop(clone);
        let disk = FileDisk::open(tmp.path().join("data")).unwrap();
        assert_eq!(disk.read_all("wal").unwrap(), b"record");
    }

    #[test]
    fn second_open_fails_with_a_clear_error() {
        let (tmp, _disk) = fresh();
        let err = FileDisk::open(tmp.path().join("data")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[test]
    fn cached_handles_follow_rename_and_delete() {
        let (_tmp, disk) = fresh();
        disk.create("a").unwrap();
        disk.append("a", b"1").unwrap();
        disk.create("b").unwrap();
        disk.append("b", b"old").unwrap();
        disk.rename("a", "b").unwrap();
        disk.append("b", b"2").unwrap();
        assert_eq!(std::fs::read(disk.dir().join("b")).unwrap(), b"12");
        disk.delete("b").unwrap();
        disk.create("b").unwrap();
        disk.append("b", b"3").unwrap();
        assert_eq!(std::fs::read(disk.dir().join("b")).unwrap(), b"3");
    }

    #[test]
    fn handle_cache_is_bounded() {
        let (_tmp, disk) = fresh();
        for i in 0..HANDLES_MAX + 10 {
            disk.create(&format!("f{i:04}")).unwrap();
        }
        assert!(disk.handles().len() <= HANDLES_MAX);
        disk.append("f0000", b"still works").unwrap();
        assert_eq!(disk.read_all("f0000").unwrap(), b"still works");
    }

    #[test]
    fn read_past_the_end_reports_the_real_length() {
        let (_tmp, disk) = fresh();
        disk.create("a").unwrap();
        disk.append("a", b"12345").unwrap();
        assert_eq!(
            disk.read_vec("a", 4, 2),
            Err(DiskError::OutOfBounds {
                name: "a".into(),
                offset: 4,
                len: 2,
                file_len: 5
            })
        );
        assert!(matches!(
            disk.read_vec("a", u64::MAX, 1),
            Err(DiskError::OutOfBounds { .. })
        ));
    }

    fn physical_len(disk: &FileDisk, name: &str) -> u64 {
        std::fs::metadata(disk.dir().join(name)).unwrap().len()
    }

    #[test]
    fn preallocated_file_keeps_its_logical_length_through_cache_churn_rename_and_truncate() {
        let (_tmp, disk) = fresh();
        disk.create("w").unwrap();
        disk.append("w", b"head").unwrap();
        disk.preallocate("w", 1 << 20).unwrap();
        assert_eq!(physical_len(&disk, "w"), 1 << 20, "the space is reserved");
        assert_eq!(disk.len("w").unwrap(), 4);
        disk.append("w", b"|tail").unwrap();
        assert_eq!(physical_len(&disk, "w"), 1 << 20, "appends go inside it");
        assert!(matches!(
            disk.read_vec("w", 8, 2),
            Err(DiskError::OutOfBounds { file_len: 9, .. })
        ));

        // Emptying the handle cache must not forget the logical length.
        for i in 0..HANDLES_MAX + 10 {
            disk.create(&format!("f{i:04}")).unwrap();
        }
        assert!(disk.handles().len() <= HANDLES_MAX);
        assert_eq!(disk.len("w").unwrap(), 9);
        disk.append("w", b"!").unwrap();
        assert_eq!(disk.read_all("w").unwrap(), b"head|tail!");

        disk.rename("w", "f0000").unwrap();
        assert_eq!(disk.len("f0000").unwrap(), 10);
        disk.append("f0000", b"?").unwrap();
        assert_eq!(disk.read_all("f0000").unwrap(), b"head|tail!?");
        assert_eq!(physical_len(&disk, "f0000"), 1 << 20);

        disk.truncate("f0000", 4).unwrap();
        assert_eq!(physical_len(&disk, "f0000"), 4, "truncate drops the zeros");
        disk.append("f0000", b"+").unwrap();
        assert_eq!(std::fs::read(disk.dir().join("f0000")).unwrap(), b"head+");

        disk.delete("f0000").unwrap();
        disk.create("f0000").unwrap();
        disk.append("f0000", b"new").unwrap();
        assert_eq!(disk.len("f0000").unwrap(), 3);
        assert_eq!(physical_len(&disk, "f0000"), 3);
    }

    #[test]
    fn preallocating_less_than_the_size_changes_nothing() {
        let (_tmp, disk) = fresh();
        disk.create("w").unwrap();
        disk.append("w", b"0123456789").unwrap();
        disk.preallocate("w", 4).unwrap();
        disk.append("w", b"ab").unwrap();
        assert_eq!(
            std::fs::read(disk.dir().join("w")).unwrap(),
            b"0123456789ab"
        );
        assert!(matches!(
            disk.preallocate("missing", 1 << 20),
            Err(DiskError::NotFound { .. })
        ));
    }

    #[test]
    fn a_reopened_disk_sees_the_zero_tail_of_a_preallocated_file() {
        let (tmp, disk) = fresh();
        disk.create("w").unwrap();
        disk.preallocate("w", 4096).unwrap();
        disk.append("w", b"synced").unwrap();
        disk.sync("w").unwrap();
        disk.sync_dir().unwrap();
        drop(disk);
        let disk = FileDisk::open(tmp.path().join("data")).unwrap();
        assert_eq!(disk.len("w").unwrap(), 4096);
        let bytes = disk.read_all("w").unwrap();
        assert_eq!(&bytes[..6], b"synced");
        assert!(bytes[6..].iter().all(|&b| b == 0));
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<FileDisk>();
    }
}
