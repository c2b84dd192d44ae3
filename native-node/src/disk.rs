//! [`FileDisk`]: the [`Disk`] of a native node, one real file per name in one directory.
//!
//! The storage engine in `ringstore-core` does all its I/O through [`Disk`]; this is the
//! implementation that makes it durable on a real machine. Each method maps to one POSIX
//! call: `append` is a `write` on a file opened with `O_APPEND`, `sync` is `fdatasync`,
//! `sync_dir` is an `fsync` of the directory, `read_at` is `pread`, `rename` is `rename(2)`,
//! `truncate` is `ftruncate`. These give exactly the contract the engine relies on: contents
//! are durable after `sync`, names after `sync_dir`, and `rename` atomically replaces.
//!
//! Open file handles are cached (up to [`HANDLES_MAX`]) so that the WAL's many small appends
//! and the SSTables' many reads do not reopen files. A `LOCK` file in the directory holds an
//! exclusive advisory lock for as long as any clone of the [`FileDisk`] lives, so two nodes
//! (or two opens in one process) never write the same directory.

use ringstore_core::storage::{Disk, DiskError, DiskOp};
use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The lock file's name; it is not a storage file and never appears in [`Disk::list`].
pub const LOCK_FILE: &str = "LOCK";

/// How many open file handles are cached; past this the cache is emptied and refilled on use.
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
    handles: Mutex<HashMap<String, Arc<File>>>,
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

    fn handles(&self) -> MutexGuard<'_, HashMap<String, Arc<File>>> {
        // The map holds no invariant a panicking holder could break halfway.
        self.inner.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached handle of `name`, opening it (read + append) if it is not cached.
    fn handle(&self, op: DiskOp, name: &str) -> Result<Arc<File>, DiskError> {
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

fn cache(handles: &mut HashMap<String, Arc<File>>, name: &str, file: File) -> Arc<File> {
    if handles.len() >= HANDLES_MAX {
        handles.clear();
    }
    let file = Arc::new(file);
    handles.insert(name.to_string(), Arc::clone(&file));
    file
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
        let file = self.handle(DiskOp::Append, name)?;
        (&*file)
            .write_all(data)
            .map_err(|e| io_error(DiskOp::Append, name, e))
    }

    fn sync(&self, name: &str) -> Result<(), DiskError> {
        let file = self.handle(DiskOp::Sync, name)?;
        file.sync_data()
            .map_err(|e| io_error(DiskOp::Sync, name, e))
    }

    fn sync_dir(&self) -> Result<(), DiskError> {
        self.inner
            .dir_handle
            .sync_all()
            .map_err(|e| io_error(DiskOp::SyncDir, "", e))
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let file = self.handle(DiskOp::Read, name)?;
        let Err(err) = file.read_exact_at(buf, offset) else {
            return Ok(());
        };
        // A short read (or an offset the OS rejects) past the end is the caller's mistake,
        // reported with the real length; anything else is the device's.
        let file_len = file
            .metadata()
            .map_err(|e| io_error(DiskOp::Read, name, e))?
            .len();
        let len = buf.len() as u64;
        if offset.checked_add(len).is_none_or(|end| end > file_len) {
            return Err(DiskError::OutOfBounds {
                name: name.to_string(),
                offset,
                len,
                file_len,
            });
        }
        Err(io_error(DiskOp::Read, name, err))
    }

    fn len(&self, name: &str) -> Result<u64, DiskError> {
        check_name(DiskOp::Len, name)?;
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
        let file = self.handle(DiskOp::Truncate, name)?;
        file.set_len(len)
            .map_err(|e| io_error(DiskOp::Truncate, name, e))
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

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<FileDisk>();
    }
}
