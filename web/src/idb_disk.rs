//! The browser's disk: the core's [`Disk`] held in memory and saved to IndexedDB incrementally.
//!
//! The core is synchronous and IndexedDB is not, so the disk keeps every file in memory (loaded
//! from IndexedDB when the page opens) and the host saves its *durable* state later, in one
//! IndexedDB transaction per [`crate::persist`] call, in the order the changes were made. What
//! a save writes is computed from the difference between the durable state and what IndexedDB
//! already holds, never queued operation by operation, so the pending work is bounded by the
//! disk's own size however long the page waits between saves.
//!
//! # Durability model
//!
//! The same as [`SimDisk`](ringstore_core::storage::SimDisk)'s, at its strictest: a file's
//! contents become durable at [`Disk::sync`] and the namespace (creations, renames, deletions)
//! at [`Disk::sync_dir`]; [`IdbDisk::crash`] keeps exactly the durable state and loses every
//! unsynced change (SimDisk's outcome when its seeded crash keeps none of the pending
//! operations; no torn writes, so a crash clicked in the page loses exactly what was not
//! synced, the same every time). A page reload is a crash of every disk at the moment of the
//! last completed save.
//!
//! Memory: a file's durable contents are not a second copy. They are the current contents'
//! first `stable` bytes (bytes below the lowest point the file was cut to since its last sync)
//! followed by `lost_tail`, the durable bytes a truncate cut off (empty except between a
//! truncate below the synced length and the next sync: only recovery truncates).
//!
//! # What IndexedDB holds for a disk ([`crate::records`] has the byte layouts)
//!
//! * one namespace record: the durable names and the inode each names;
//! * per durable inode, a file record (its length) and *extents*: its bytes in pieces of at
//!   most [`EXTENT_BYTES_MAX`], keyed by inode and offset, tiling the file.
//!
//! A save writes only what changed: the bytes appended since the last save as new extents
//! (extending the last extent instead while it is shorter than [`EXTENT_MERGE_BYTES`], so a
//! WAL synced after every write does not leave one tiny record per save), a new file record
//! when the length changed, the namespace record when a `sync_dir` changed it, and deletions of
//! the records of inodes that left the durable namespace. Renames rewrite no data (extents are
//! keyed by inode). Only a truncate below the saved length rewrites, from the start of the
//! extent it cuts. So a WAL segment costs about its appended bytes and an SSTable is written
//! once.

mod contents;

use crate::records::{Batch, DiskKey};
use contents::Contents;
use ringstore_core::sim::MachineDisk;
use ringstore_core::storage::{Disk, DiskError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// The largest extent record, in bytes of file data.
pub const EXTENT_BYTES_MAX: usize = 64 << 10;

/// A save extends the last extent of a file (rewriting it) instead of starting a new one while
/// that extent is shorter than this: at most this many bytes are rewritten per file and save,
/// and a file has at most one extent shorter than this.
pub const EXTENT_MERGE_BYTES: usize = 4 << 10;

/// An inode number, unique within one disk for its whole saved life.
pub type InodeId = u64;

/// What IndexedDB holds for one inode, as of the last batch taken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SavedFile {
    /// Whether a file record exists.
    recorded: bool,
    /// The saved length.
    len: u64,
    /// Start offsets of the saved extents, increasing; each extent ends where the next starts,
    /// the last at `len`.
    extents: Vec<u64>,
    /// The saved copy equals the durable contents on `[0, clean)`.
    clean: u64,
}

#[derive(Clone, Debug, Default)]
struct Inode {
    /// In chunks shared with the inode's copies in forks of this disk ([`MachineDisk::fork`])
    /// until either side changes them: a sealed WAL segment or a table is never copied, and an
    /// append copies at most the last chunk.
    data: Contents,
    /// `data[..stable]` are the durable contents' first bytes.
    stable: usize,
    /// The durable contents past `stable`, which `data` no longer has (after a truncate).
    lost_tail: Vec<u8>,
    saved: SavedFile,
}

impl Inode {
    fn durable_len(&self) -> usize {
        self.stable + self.lost_tail.len()
    }

    /// The durable bytes in `[start, end)`.
    fn durable_bytes(&self, start: usize, end: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(end.saturating_sub(start));
        if start < self.stable {
            out = self.data.to_vec(start, end.min(self.stable));
        }
        if end > self.stable {
            let from = start.max(self.stable) - self.stable;
            out.extend_from_slice(&self.lost_tail[from..end - self.stable]);
        }
        out
    }

    fn sync(&mut self) {
        self.saved.clean = self.saved.clean.min(self.stable as u64);
        self.stable = self.data.len();
        self.lost_tail.clear();
    }

    fn truncate(&mut self, len: usize) {
        if len < self.stable {
            let mut tail = self.data.to_vec(len, self.stable);
            tail.append(&mut self.lost_tail);
            self.lost_tail = tail;
            self.stable = len;
        }
        self.data.resize(len);
    }

    fn crash(&mut self) {
        self.data.resize(self.stable);
        self.data.append(&self.lost_tail);
        self.lost_tail = Vec::new();
        self.stable = self.data.len();
    }

    /// Adds to `batch` what makes the saved copy equal the durable contents.
    fn save(&mut self, disk: DiskKey, inode: InodeId, batch: &mut Batch) {
        let durable = self.durable_len() as u64;
        let saved = &self.saved;
        if saved.recorded && saved.clean == saved.len && saved.len == durable {
            return;
        }
        let clean = saved.clean.min(saved.len).min(durable);
        let rewrite_from = match saved.extents.iter().rposition(|&s| s <= clean) {
            None => 0,
            Some(i) => {
                let start = saved.extents[i];
                let last = i + 1 == saved.extents.len();
                let short = saved.len - start < EXTENT_MERGE_BYTES as u64;
                if clean == saved.len && !(last && short && durable > saved.len) {
                    saved.len
                } else {
                    start
                }
            }
        };
        if rewrite_from < self.saved.len {
            batch.delete_extents_from(disk, inode, rewrite_from);
        }
        self.saved.extents.retain(|&s| s < rewrite_from);
        let mut at = rewrite_from as usize;
        let end = durable as usize;
        while at < end {
            let piece_end = (at + EXTENT_BYTES_MAX).min(end);
            batch.put_extent(disk, inode, at as u64, &self.durable_bytes(at, piece_end));
            self.saved.extents.push(at as u64);
            at = piece_end;
        }
        if !self.saved.recorded || self.saved.len != durable {
            batch.put_file(disk, inode, durable);
        }
        self.saved.recorded = true;
        self.saved.len = durable;
        self.saved.clean = durable;
    }
}

#[derive(Clone, Debug, Default)]
struct State {
    inodes: BTreeMap<InodeId, Inode>,
    next_inode: InodeId,
    names: BTreeMap<String, InodeId>,
    durable_names: BTreeMap<String, InodeId>,
    /// A create, rename or delete since the last `sync_dir`.
    names_changed: bool,
    /// The durable namespace differs from the saved one.
    names_unsaved: bool,
    /// Saved inodes that no name refers to any more: their records go at the next save.
    saved_orphans: BTreeSet<InodeId>,
}

/// Counts of what a disk holds in IndexedDB, as of the last batch taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SavedSize {
    /// File bytes saved.
    pub bytes: u64,
    /// Records saved (namespace, file and extent records).
    pub records: u64,
}

fn not_found(name: &str) -> DiskError {
    DiskError::NotFound {
        name: name.to_string(),
    }
}

impl State {
    fn inode_mut(&mut self, name: &str) -> Result<&mut Inode, DiskError> {
        let id = *self.names.get(name).ok_or_else(|| not_found(name))?;
        self.inodes.get_mut(&id).ok_or_else(|| not_found(name))
    }

    fn inode(&self, name: &str) -> Result<&Inode, DiskError> {
        let id = *self.names.get(name).ok_or_else(|| not_found(name))?;
        self.inodes.get(&id).ok_or_else(|| not_found(name))
    }

    /// Drops inodes no name refers to, remembering the saved ones for deletion.
    fn collect_garbage(&mut self) {
        let live: BTreeSet<InodeId> = self
            .names
            .values()
            .chain(self.durable_names.values())
            .copied()
            .collect();
        let orphans = &mut self.saved_orphans;
        self.inodes.retain(|id, inode| {
            let keep = live.contains(id);
            if !keep && inode.saved.recorded {
                orphans.insert(*id);
            }
            keep
        });
    }
}

/// The browser's disk. See the module docs. Cloning gives another handle to the same disk.
#[derive(Clone, Debug, Default)]
pub struct IdbDisk {
    state: Arc<Mutex<State>>,
}

impl IdbDisk {
    /// An empty disk with nothing saved.
    pub fn new() -> IdbDisk {
        IdbDisk::default()
    }

    /// A disk as loaded from IndexedDB: `names` (name -> inode) and each inode's contents and
    /// extent starts, all durable and saved. The caller has checked that every named inode has
    /// contents and that the extents tile them.
    pub fn loaded(
        names: BTreeMap<String, InodeId>,
        files: BTreeMap<InodeId, (Vec<u8>, Vec<u64>)>,
    ) -> IdbDisk {
        let mut state = State {
            next_inode: files.keys().next_back().map_or(0, |id| id + 1),
            durable_names: names.clone(),
            names,
            ..State::default()
        };
        for (id, (data, extents)) in files {
            let len = data.len() as u64;
            let saved = SavedFile {
                recorded: true,
                len,
                extents,
                clean: len,
            };
            let stable = data.len();
            let mut contents = Contents::default();
            contents.append(&data);
            let inode = Inode {
                data: contents,
                stable,
                lost_tail: Vec::new(),
                saved,
            };
            state.inodes.insert(id, inode);
        }
        state.collect_garbage();
        IdbDisk {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves no half-done update the model cares about.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A power loss: everything not synced is lost (see the module docs).
    pub fn crash(&self) {
        let mut state = self.lock();
        for inode in state.inodes.values_mut() {
            inode.crash();
        }
        state.names = state.durable_names.clone();
        state.names_changed = false;
        state.collect_garbage();
    }

    /// Adds to `batch`, under `disk`'s keys, every change that makes the saved copy equal this
    /// disk's durable state, and from then on counts those changes as saved. If the batch is
    /// not committed, call [`IdbDisk::forget_saved`] before the next save.
    pub fn take_changes(&self, disk: DiskKey, batch: &mut Batch) {
        let mut guard = self.lock();
        let state = &mut *guard;
        for inode in std::mem::take(&mut state.saved_orphans) {
            batch.delete_file(disk, inode);
        }
        for &id in state.durable_names.values() {
            if let Some(inode) = state.inodes.get_mut(&id) {
                inode.save(disk, id, batch);
            }
        }
        if state.names_unsaved {
            batch.put_namespace(disk, &state.durable_names);
            state.names_unsaved = false;
        }
    }

    /// Bytes of file contents this disk holds that are not in `seen` (contents shared with
    /// a fork count once), adding them to `seen` (by address).
    pub fn unshared_bytes(&self, seen: &mut std::collections::BTreeSet<usize>) -> u64 {
        let state = self.lock();
        let mut bytes = 0;
        for inode in state.inodes.values() {
            bytes += inode.lost_tail.len() as u64;
            for (chunk, len) in inode.data.chunks() {
                if seen.insert(chunk) {
                    bytes += len as u64;
                }
            }
        }
        bytes
    }

    /// Forgets what was saved, so that the next [`IdbDisk::take_changes`] writes the whole
    /// durable state (after a failed save, into a cleared database).
    pub fn forget_saved(&self) {
        let mut state = self.lock();
        for inode in state.inodes.values_mut() {
            inode.saved = SavedFile::default();
        }
        state.saved_orphans.clear();
        state.names_unsaved = true;
    }

    /// What IndexedDB holds for this disk, as of the last batch taken.
    pub fn saved_size(&self) -> SavedSize {
        let state = self.lock();
        let files = state.inodes.values().filter(|i| i.saved.recorded);
        let (bytes, records) = files.fold((0, 0), |(b, r), i| {
            (b + i.saved.len, r + 1 + i.saved.extents.len() as u64)
        });
        let namespace = u64::from(!state.durable_names.is_empty() || state.names_unsaved);
        SavedSize {
            bytes,
            records: records + namespace,
        }
    }

    /// The durable namespace with each file's durable contents (what a crash would leave).
    pub fn durable_image(&self) -> BTreeMap<String, Vec<u8>> {
        let state = self.lock();
        let named = state.durable_names.iter();
        named
            .filter_map(|(name, id)| {
                let inode = state.inodes.get(id)?;
                Some((name.clone(), inode.durable_bytes(0, inode.durable_len())))
            })
            .collect()
    }
}

impl MachineDisk for IdbDisk {
    fn crash(&self) {
        IdbDisk::crash(self);
    }

    /// A copy of the files and of what the copy in IndexedDB holds, as of now: for the
    /// timeline's snapshots (`crate::timeline`), which never save.
    fn fork(&self) -> Self {
        IdbDisk {
            state: Arc::new(Mutex::new(self.lock().clone())),
        }
    }
}

impl Disk for IdbDisk {
    fn create(&self, name: &str) -> Result<(), DiskError> {
        let mut state = self.lock();
        if state.names.contains_key(name) {
            return Err(DiskError::AlreadyExists {
                name: name.to_string(),
            });
        }
        let id = state.next_inode;
        state.next_inode += 1;
        state.inodes.insert(id, Inode::default());
        state.names.insert(name.to_string(), id);
        state.names_changed = true;
        Ok(())
    }

    fn append(&self, name: &str, data: &[u8]) -> Result<(), DiskError> {
        self.lock().inode_mut(name)?.data.append(data);
        Ok(())
    }

    fn sync(&self, name: &str) -> Result<(), DiskError> {
        self.lock().inode_mut(name)?.sync();
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), DiskError> {
        let mut state = self.lock();
        if state.names_changed {
            state.durable_names = state.names.clone();
            state.names_changed = false;
            state.names_unsaved = true;
            state.collect_garbage();
        }
        Ok(())
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let state = self.lock();
        let data = &state.inode(name)?.data;
        let file_len = data.len() as u64;
        let len = buf.len() as u64;
        let out_of_bounds = || DiskError::OutOfBounds {
            name: name.to_string(),
            offset,
            len,
            file_len,
        };
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= file_len)
            .ok_or_else(out_of_bounds)?;
        let (start, end) = (
            usize::try_from(offset).map_err(|_| out_of_bounds())?,
            usize::try_from(end).map_err(|_| out_of_bounds())?,
        );
        debug_assert_eq!(end - start, buf.len());
        data.read(start, buf);
        Ok(())
    }

    fn len(&self, name: &str) -> Result<u64, DiskError> {
        Ok(self.lock().inode(name)?.data.len() as u64)
    }

    fn list(&self) -> Result<Vec<String>, DiskError> {
        Ok(self.lock().names.keys().cloned().collect())
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), DiskError> {
        let mut state = self.lock();
        let id = *state.names.get(from).ok_or_else(|| not_found(from))?;
        if from != to {
            state.names.remove(from);
            state.names.insert(to.to_string(), id);
            state.names_changed = true;
        }
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), DiskError> {
        let mut state = self.lock();
        state.names.remove(name).ok_or_else(|| not_found(name))?;
        state.names_changed = true;
        state.collect_garbage();
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> Result<(), DiskError> {
        let mut state = self.lock();
        let inode = state.inode_mut(name)?;
        let len = usize::try_from(len).map_err(|_| DiskError::Io {
            op: ringstore_core::storage::DiskOp::Truncate,
            name: name.to_string(),
            message: format!("length {len} does not fit in memory"),
        })?;
        inode.truncate(len);
        Ok(())
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[path = "idb_disk_tests.rs"]
mod tests;
