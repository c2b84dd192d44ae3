//! An in-memory [`Disk`] that models what survives a power loss, and injects seeded faults.
//!
//! The simulator and the storage engine's tests run on `SimDisk` so that crash recovery can be
//! tested deterministically: the same seed and the same sequence of calls always give the same
//! results, including which unsynced bytes a [`SimDisk::crash`] keeps.
//!
//! # Durability model
//!
//! * **Files are inodes.** Each inode has its *current* contents (what reads see), its
//!   *durable* contents (as of the last [`Disk::sync`] of that file), and the list of content
//!   operations done since then, in order: "append these bytes" and "truncate to this length".
//!   `sync(name)` applies them all to the durable contents and clears the list.
//! * **The namespace** (name -> inode) has a *current* and a *durable* version too. `create`,
//!   `rename` and `delete` change the current one and are recorded, in order, as pending
//!   namespace operations; [`Disk::sync_dir`] makes the current namespace durable. A file's
//!   contents and its name are made durable independently, as on a POSIX file system: a
//!   synced file whose creation was not dir-synced may vanish in a crash.
//! * **[`SimDisk::crash`]** is a power loss. For each inode, in inode order, it starts from the
//!   durable contents and replays a seeded-random prefix of the pending content operations
//!   (`k` of them, `k` uniform in `0..=pending`). If [`FaultConfig::torn_writes`] is set and
//!   the first operation not replayed is an append, a random prefix of its bytes (possibly
//!   none) survives: a torn write. The namespace becomes the durable namespace plus a random
//!   prefix of the pending namespace operations, so creations, renames and deletions survive
//!   in the order they were made, and a rename is all-or-nothing. Inodes no longer named are
//!   gone. Afterwards nothing is pending: every file's current contents are durable.
//!
//! So after a crash: synced bytes of a dir-synced name are always there; unsynced bytes may be
//! lost, only from the end (a prefix of the operations survives); the last surviving unsynced
//! append may be torn; a name not yet dir-synced may point to its old inode or to none.
//!
//! # Faults
//!
//! [`FaultConfig`] gives per-million probabilities, drawn from the seeded generator on each
//! call (no draw is made for a probability of zero, so a fault-free disk's crashes do not
//! depend on how often it was read):
//!
//! * `append_error_ppm`: [`Disk::append`] fails with [`DiskError::Io`]; a random prefix of the
//!   data (possibly none) was appended anyway, unsynced, as a failed write may leave.
//! * `sync_error_ppm`: [`Disk::sync`] or [`Disk::sync_dir`] fails; nothing became durable.
//! * `read_error_ppm`: [`Disk::read_at`] fails with [`DiskError::Io`].
//! * `read_bit_flip_ppm`: [`Disk::read_at`] succeeds but one random bit of the returned buffer
//!   is flipped: transient corruption on the way from the device; the stored bytes are intact.
//! * `capacity_bytes` (zero: unbounded): a full disk. An append that would take the bytes of
//!   every file past it fails with [`DiskError::Full`] and appends nothing, as `ENOSPC` on a
//!   real disk does (the native disk cuts off what a failed write left).
//!
//! Persistent corruption at rest is injected explicitly with [`SimDisk::flip_bit`].
//! Operations on names that do not exist fail with [`DiskError::NotFound`] before any fault is
//! drawn.

use super::disk::{Disk, DiskError, DiskOp};
use crate::DetRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// Which faults a [`SimDisk`] injects. Probabilities are per million calls.
/// The default injects none and lets crashes tear the last unsynced write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Chance that an append fails with an I/O error, leaving a random prefix of its data.
    pub append_error_ppm: u32,
    /// Chance that a `sync` or `sync_dir` fails, making nothing durable.
    pub sync_error_ppm: u32,
    /// Chance that a read fails with an I/O error.
    pub read_error_ppm: u32,
    /// Chance that a read returns its buffer with one bit flipped.
    pub read_bit_flip_ppm: u32,
    /// Whether a crash may keep only a prefix of the first unsynced append it drops.
    pub torn_writes: bool,
    /// The bytes all files may hold together; an append past it fails with
    /// [`DiskError::Full`]. Zero: unbounded.
    pub capacity_bytes: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            append_error_ppm: 0,
            sync_error_ppm: 0,
            read_error_ppm: 0,
            read_bit_flip_ppm: 0,
            torn_writes: true,
            capacity_bytes: 0,
        }
    }
}

/// Counters of what a [`SimDisk`] was asked to do, for tests and simulator reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SimDiskStats {
    /// `append` calls on existing files, failed ones included.
    pub appends: u64,
    /// Bytes actually appended (a failed append counts the prefix it left).
    pub bytes_appended: u64,
    /// `sync` calls on existing files, failed ones included.
    pub syncs: u64,
    /// `sync_dir` calls, failed ones included.
    pub sync_dirs: u64,
    /// `read_at` calls within bounds of existing files, failed ones included.
    pub reads: u64,
    /// Bytes returned by successful reads.
    pub bytes_read: u64,
    /// Faults injected by [`FaultConfig`] (crash tearing is not counted).
    pub faults_injected: u64,
    /// Calls to [`SimDisk::crash`].
    pub crashes: u64,
}

/// An in-memory disk with a precise crash model and seeded fault injection. See the module
/// docs for the model. Cloning gives another handle to the same disk.
#[derive(Clone, Debug)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

type InodeId = u64;

/// A change to a file's contents not yet made durable.
#[derive(Clone, Debug)]
enum ContentOp {
    Append(Vec<u8>),
    Truncate(u64),
}

/// A change to the namespace not yet made durable.
#[derive(Clone, Debug)]
enum NamespaceOp {
    Create { name: String, inode: InodeId },
    Rename { from: String, to: String },
    Delete { name: String },
}

#[derive(Clone, Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<ContentOp>,
}

#[derive(Clone, Debug)]
struct State {
    rng: DetRng,
    faults: FaultConfig,
    stats: SimDiskStats,
    inodes: BTreeMap<InodeId, Inode>,
    next_inode: InodeId,
    names: BTreeMap<String, InodeId>,
    durable_names: BTreeMap<String, InodeId>,
    pending_names: Vec<NamespaceOp>,
}

fn apply_content_op(contents: &mut Vec<u8>, op: ContentOp) {
    match op {
        ContentOp::Append(bytes) => contents.extend_from_slice(&bytes),
        ContentOp::Truncate(len) => contents.resize(usize_len(len), 0),
    }
}

fn apply_namespace_op(names: &mut BTreeMap<String, InodeId>, op: NamespaceOp) {
    match op {
        NamespaceOp::Create { name, inode } => {
            names.insert(name, inode);
        }
        NamespaceOp::Rename { from, to } => {
            if let Some(inode) = names.remove(&from) {
                names.insert(to, inode);
            }
        }
        NamespaceOp::Delete { name } => {
            names.remove(&name);
        }
    }
}

/// A length as `usize`; lengths of in-memory files always fit, so larger values saturate.
fn usize_len(len: u64) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

fn not_found(name: &str) -> DiskError {
    DiskError::NotFound {
        name: name.to_string(),
    }
}

fn injected(op: DiskOp, name: &str, what: &str) -> DiskError {
    DiskError::Io {
        op,
        name: name.to_string(),
        message: format!("injected fault: {what}"),
    }
}

impl State {
    fn new(seed: u64, faults: FaultConfig) -> State {
        State {
            rng: DetRng::seed_from_u64(seed),
            faults,
            stats: SimDiskStats::default(),
            inodes: BTreeMap::new(),
            next_inode: 0,
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            pending_names: Vec::new(),
        }
    }

    /// Draws whether a fault with this per-million probability happens now.
    fn roll(&mut self, ppm: u32) -> bool {
        if ppm == 0 {
            return false;
        }
        let hit = self.rng.random_range(0..1_000_000u32) < ppm;
        if hit {
            self.stats.faults_injected += 1;
        }
        hit
    }

    fn inode_id(&self, name: &str) -> Result<InodeId, DiskError> {
        self.names.get(name).copied().ok_or_else(|| not_found(name))
    }

    fn inode_mut(&mut self, name: &str) -> Result<&mut Inode, DiskError> {
        let id = self.inode_id(name)?;
        self.inodes.get_mut(&id).ok_or_else(|| not_found(name))
    }

    fn inode(&self, name: &str) -> Result<&Inode, DiskError> {
        let id = self.inode_id(name)?;
        self.inodes.get(&id).ok_or_else(|| not_found(name))
    }

    fn alloc_inode(&mut self, inode: Inode) -> InodeId {
        let id = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(id, inode);
        id
    }

    /// Drops inodes that no namespace version, current, durable or pending, can name.
    fn collect_garbage(&mut self) {
        let mut live: BTreeSet<InodeId> = self.names.values().copied().collect();
        live.extend(self.durable_names.values().copied());
        live.extend(self.pending_names.iter().filter_map(|op| match op {
            NamespaceOp::Create { inode, .. } => Some(*inode),
            _ => None,
        }));
        self.inodes.retain(|id, _| live.contains(id));
    }

    fn append(&mut self, name: &str, data: &[u8]) -> Result<(), DiskError> {
        self.inode_id(name)?;
        self.stats.appends += 1;
        if self.faults.capacity_bytes > 0 {
            let used: u64 = self.inodes.values().map(|i| i.data.len() as u64).sum();
            if used + data.len() as u64 > self.faults.capacity_bytes {
                self.stats.faults_injected += 1;
                return Err(DiskError::Full {
                    op: DiskOp::Append,
                    name: name.to_string(),
                });
            }
        }
        let (kept, result) = if self.roll(self.faults.append_error_ppm) {
            let kept = self.rng.random_range(0..=data.len());
            (kept, Err(injected(DiskOp::Append, name, "append failed")))
        } else {
            (data.len(), Ok(()))
        };
        self.stats.bytes_appended += kept as u64;
        if kept > 0 {
            let bytes = data[..kept].to_vec();
            let inode = self.inode_mut(name)?;
            inode.data.extend_from_slice(&bytes);
            inode.pending.push(ContentOp::Append(bytes));
        }
        result
    }

    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        self.inode_id(name)?;
        self.stats.syncs += 1;
        if self.roll(self.faults.sync_error_ppm) {
            return Err(injected(DiskOp::Sync, name, "sync failed"));
        }
        let inode = self.inode_mut(name)?;
        for op in std::mem::take(&mut inode.pending) {
            apply_content_op(&mut inode.durable, op);
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        self.stats.sync_dirs += 1;
        if self.roll(self.faults.sync_error_ppm) {
            return Err(injected(DiskOp::SyncDir, "", "directory sync failed"));
        }
        self.durable_names = self.names.clone();
        self.pending_names.clear();
        self.collect_garbage();
        Ok(())
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let data = &self.inode(name)?.data;
        let file_len = data.len() as u64;
        let len = buf.len() as u64;
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= file_len)
            .ok_or_else(|| DiskError::OutOfBounds {
                name: name.to_string(),
                offset,
                len,
                file_len,
            })?;
        buf.copy_from_slice(&data[usize_len(offset)..usize_len(end)]);
        self.stats.reads += 1;
        if self.roll(self.faults.read_error_ppm) {
            return Err(injected(DiskOp::Read, name, "read failed"));
        }
        if !buf.is_empty() && self.roll(self.faults.read_bit_flip_ppm) {
            let byte = self.rng.random_range(0..buf.len());
            let bit = self.rng.random_range(0..8u32);
            buf[byte] ^= 1 << bit;
        }
        self.stats.bytes_read += len;
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let inode = self.inode_id(from)?;
        if from == to {
            return Ok(());
        }
        self.names.remove(from);
        self.names.insert(to.to_string(), inode);
        self.pending_names.push(NamespaceOp::Rename {
            from: from.to_string(),
            to: to.to_string(),
        });
        Ok(())
    }

    fn crash(&mut self) {
        self.stats.crashes += 1;
        let torn_writes = self.faults.torn_writes;
        for inode in self.inodes.values_mut() {
            let mut pending = std::mem::take(&mut inode.pending).into_iter();
            let keep = match pending.len() {
                0 => 0,
                n => self.rng.random_range(0..=n),
            };
            for op in pending.by_ref().take(keep) {
                apply_content_op(&mut inode.durable, op);
            }
            if let (true, Some(ContentOp::Append(bytes))) = (torn_writes, pending.next()) {
                let torn_len = self.rng.random_range(0..bytes.len());
                inode.durable.extend_from_slice(&bytes[..torn_len]);
            }
            inode.data = inode.durable.clone();
        }
        let pending = std::mem::take(&mut self.pending_names);
        let keep = match pending.len() {
            0 => 0,
            n => self.rng.random_range(0..=n),
        };
        for op in pending.into_iter().take(keep) {
            apply_namespace_op(&mut self.durable_names, op);
        }
        self.names = self.durable_names.clone();
        self.collect_garbage();
    }

    fn flip_bit(&mut self, name: &str, offset: u64, bit: u8) -> Result<(), DiskError> {
        let inode = self.inode_mut(name)?;
        let file_len = inode.data.len() as u64;
        if offset >= file_len {
            return Err(DiskError::OutOfBounds {
                name: name.to_string(),
                offset,
                len: 1,
                file_len,
            });
        }
        let mask = 1u8 << (bit % 8);
        let at = usize_len(offset);
        inode.data[at] ^= mask;
        if let Some(byte) = inode.durable.get_mut(at) {
            *byte ^= mask;
        }
        // Unsynced appends that cover the offset carry the corruption too, so that every
        // version a crash could leave has it.
        let mut len = inode.durable.len();
        for op in &mut inode.pending {
            match op {
                ContentOp::Append(bytes) => {
                    if let Some(byte) = at.checked_sub(len).and_then(|i| bytes.get_mut(i)) {
                        *byte ^= mask;
                    }
                    len += bytes.len();
                }
                ContentOp::Truncate(to) => len = usize_len(*to),
            }
        }
        Ok(())
    }

    fn insert_durable_file(&mut self, name: &str, bytes: Vec<u8>) {
        let inode = self.alloc_inode(Inode {
            data: bytes.clone(),
            durable: bytes,
            pending: vec![],
        });
        self.names.insert(name.to_string(), inode);
        self.durable_names.insert(name.to_string(), inode);
        self.collect_garbage();
    }
}

impl SimDisk {
    /// An empty disk that injects no faults (crashes still tear unsynced writes).
    pub fn new(seed: u64) -> SimDisk {
        SimDisk::with_faults(seed, FaultConfig::default())
    }

    /// An empty disk injecting `faults`, drawn from a generator seeded with `seed`.
    pub fn with_faults(seed: u64, faults: FaultConfig) -> SimDisk {
        SimDisk {
            state: Arc::new(Mutex::new(State::new(seed, faults))),
        }
    }

    /// A disk holding `image` (name -> contents) as durable files, as a host that persists
    /// [`SimDisk::durable_image`] elsewhere loads it at start. Injects no faults.
    pub fn from_image(seed: u64, image: BTreeMap<String, Vec<u8>>) -> SimDisk {
        let disk = SimDisk::new(seed);
        {
            let mut state = disk.lock();
            for (name, bytes) in image {
                state.insert_durable_file(&name, bytes);
            }
        }
        disk
    }

    /// A separate disk with a copy of everything this one holds (files, what is durable,
    /// pending changes, statistics and its fault generator's position): the two then go on
    /// independently, and alike given the same calls.
    pub fn fork(&self) -> SimDisk {
        SimDisk {
            state: Arc::new(Mutex::new(self.lock().clone())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves no half-done update the model cares about.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the fault configuration from now on.
    pub fn set_faults(&self, faults: FaultConfig) {
        self.lock().faults = faults;
    }

    /// Simulates a power loss and restart: see the module docs for what survives. Afterwards
    /// every file's contents and the namespace are durable.
    pub fn crash(&self) {
        self.lock().crash();
    }

    /// Flips bit `bit % 8` of the byte at `offset` in `name`, in the current contents and in
    /// every version a crash could leave: persistent corruption at rest. Fails with
    /// [`DiskError::NotFound`], or [`DiskError::OutOfBounds`] if `offset` is past the end.
    pub fn flip_bit(&self, name: &str, offset: u64, bit: u8) -> Result<(), DiskError> {
        self.lock().flip_bit(name, offset, bit)
    }

    /// Creates or replaces `name` as a file whose contents and name are already durable, for
    /// test fixtures. Meant for setting up a disk before use: a pending rename or delete of
    /// `name` would still apply to it in a crash.
    pub fn insert_durable_file(&self, name: &str, bytes: Vec<u8>) {
        self.lock().insert_durable_file(name, bytes);
    }

    /// The durable namespace with each file's durable contents: what a crash that keeps
    /// nothing pending would leave.
    pub fn durable_image(&self) -> BTreeMap<String, Vec<u8>> {
        let state = self.lock();
        state
            .durable_names
            .iter()
            .filter_map(|(name, id)| {
                state
                    .inodes
                    .get(id)
                    .map(|inode| (name.clone(), inode.durable.clone()))
            })
            .collect()
    }

    /// What this disk was asked to do so far.
    pub fn stats(&self) -> SimDiskStats {
        self.lock().stats.clone()
    }
}

impl Disk for SimDisk {
    fn create(&self, name: &str) -> Result<(), DiskError> {
        let mut state = self.lock();
        if state.names.contains_key(name) {
            return Err(DiskError::AlreadyExists {
                name: name.to_string(),
            });
        }
        let inode = state.alloc_inode(Inode::default());
        state.names.insert(name.to_string(), inode);
        state.pending_names.push(NamespaceOp::Create {
            name: name.to_string(),
            inode,
        });
        Ok(())
    }

    fn append(&self, name: &str, data: &[u8]) -> Result<(), DiskError> {
        self.lock().append(name, data)
    }

    fn sync(&self, name: &str) -> Result<(), DiskError> {
        self.lock().sync(name)
    }

    fn sync_dir(&self) -> Result<(), DiskError> {
        self.lock().sync_dir()
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.lock().read_at(name, offset, buf)
    }

    fn len(&self, name: &str) -> Result<u64, DiskError> {
        Ok(self.lock().inode(name)?.data.len() as u64)
    }

    fn list(&self) -> Result<Vec<String>, DiskError> {
        Ok(self.lock().names.keys().cloned().collect())
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), DiskError> {
        self.lock().rename(from, to)
    }

    fn delete(&self, name: &str) -> Result<(), DiskError> {
        let mut state = self.lock();
        state.names.remove(name).ok_or_else(|| not_found(name))?;
        state.pending_names.push(NamespaceOp::Delete {
            name: name.to_string(),
        });
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> Result<(), DiskError> {
        let mut state = self.lock();
        let inode = state.inode_mut(name)?;
        inode.data.resize(usize_len(len), 0);
        inode.pending.push(ContentOp::Truncate(len));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
