//! TEST-ONLY: a minimal in-memory [`Disk`] for the SSTable tests.
//!
//! It has no fault model and no durability model (every write is immediately "durable"); the
//! engine's real simulated disk lives elsewhere. It only lets tests write a table and then read
//! it back, or poke at its bytes.

use crate::storage::{Disk, DiskError, DiskOp};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Files by name, shared by every clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct MemDisk {
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl MemDisk {
    pub(crate) fn new() -> MemDisk {
        MemDisk::default()
    }

    fn files(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bytes of `name` (panics if it does not exist: tests only).
    pub(crate) fn bytes(&self, name: &str) -> Vec<u8> {
        self.files()[name].clone()
    }

    /// Replaces (or creates) `name` with `bytes`.
    pub(crate) fn put(&self, name: &str, bytes: Vec<u8>) {
        self.files().insert(name.to_string(), bytes);
    }
}

fn not_found(name: &str) -> DiskError {
    DiskError::NotFound {
        name: name.to_string(),
    }
}

impl Disk for MemDisk {
    fn create(&self, name: &str) -> Result<(), DiskError> {
        let mut files = self.files();
        if files.contains_key(name) {
            return Err(DiskError::AlreadyExists {
                name: name.to_string(),
            });
        }
        files.insert(name.to_string(), Vec::new());
        Ok(())
    }

    fn append(&self, name: &str, data: &[u8]) -> Result<(), DiskError> {
        self.files()
            .get_mut(name)
            .ok_or_else(|| not_found(name))?
            .extend_from_slice(data);
        Ok(())
    }

    fn sync(&self, name: &str) -> Result<(), DiskError> {
        self.len(name).map(|_| ())
    }

    fn sync_dir(&self) -> Result<(), DiskError> {
        Ok(())
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let files = self.files();
        let file = files.get(name).ok_or_else(|| not_found(name))?;
        let out_of_bounds = || DiskError::OutOfBounds {
            name: name.to_string(),
            offset,
            len: buf.len() as u64,
            file_len: file.len() as u64,
        };
        let start = usize::try_from(offset).map_err(|_| out_of_bounds())?;
        let end = start.checked_add(buf.len()).ok_or_else(out_of_bounds)?;
        let src = file.get(start..end).ok_or_else(out_of_bounds)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn len(&self, name: &str) -> Result<u64, DiskError> {
        self.files()
            .get(name)
            .map(|f| f.len() as u64)
            .ok_or_else(|| not_found(name))
    }

    fn list(&self) -> Result<Vec<String>, DiskError> {
        Ok(self.files().keys().cloned().collect())
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), DiskError> {
        let mut files = self.files();
        let data = files.remove(from).ok_or_else(|| not_found(from))?;
        files.insert(to.to_string(), data);
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), DiskError> {
        self.files()
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name))
    }

    fn truncate(&self, name: &str, len: u64) -> Result<(), DiskError> {
        let mut files = self.files();
        let file = files.get_mut(name).ok_or_else(|| not_found(name))?;
        let len = usize::try_from(len).map_err(|_| DiskError::Io {
            op: DiskOp::Truncate,
            name: name.to_string(),
            message: "length does not fit in memory".to_string(),
        })?;
        file.truncate(len);
        Ok(())
    }
}
