//! Saving the whole simulated cluster to IndexedDB and resuming it, in plain Rust over the
//! records of [`crate::records`] (the IndexedDB calls themselves are in `idb.rs`).
//!
//! A save is one transaction holding a consistent cut of the cluster: every machine's disks'
//! durable changes since the previous save ([`IdbDisk::take_changes`]) and the cluster record
//! ([`ClusterRecord`]: the options the page opened with, the simulator's [`SimState`] with its
//! configuration, time, ring, skews and partitions, and a save counter). Opening the database
//! again resumes exactly that cut: every node that was running recovers from its disks as
//! after a crash (see `ringstore_core::sim::Sim::resume` for what does not survive).
//!
//! Saves may be asked for while an earlier one is still being written. Each takes its batch at
//! once (so the disks count those changes as saved), and batches are written in order through a
//! [`SaveQueue`]: one write at a time, everything queued meanwhile coalesced into the next
//! transaction. A failed write puts its batch back in front of the queue, so nothing is lost
//! and the order holds; if failures pile past [`QUEUE_BYTES_MAX`], the queue is dropped and the
//! next save rewrites the whole cluster into a cleared database instead.

use crate::cluster::{ClusterOptions, SimCluster};
use crate::idb_disk::{IdbDisk, InodeId, SavedSize};
use crate::records::{
    Batch, DiskKey, Key, Kind, SavedError, cluster_key, decode_file, decode_namespace,
    decode_value, hex,
};
use ringstore_core::node::StoreId;
use ringstore_core::sim::SimState;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The largest amount of unwritten batches kept while IndexedDB keeps failing; past it they are
/// dropped and the next save rewrites everything.
pub const QUEUE_BYTES_MAX: u64 = 64 << 20;

/// The cluster record's payload (postcard, format version 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The options the cluster was made with: `Cluster.open` resumes only when they match.
    pub options: ClusterOptions,
    /// The simulator's state beside its disks.
    pub state: SimState,
    /// Saves made so far, this one included.
    pub saves: u64,
}

/// A saved cluster, loaded and checked, ready to resume.
#[derive(Debug)]
pub struct Saved {
    /// The cluster record.
    pub record: ClusterRecord,
    /// Every disk that holds anything.
    pub disks: BTreeMap<DiskKey, IdbDisk>,
    /// Records and bytes (keys and values) read.
    pub records: u64,
    /// Bytes of keys and values read.
    pub bytes: u64,
}

#[derive(Default)]
struct LoadedDisk {
    names: BTreeMap<String, InodeId>,
    has_namespace: bool,
    lens: BTreeMap<InodeId, u64>,
    extents: BTreeMap<InodeId, Vec<(u64, Vec<u8>)>>,
}

/// Checks and assembles saved records (in any order). `Ok(None)` for an empty database.
/// Anything damaged, foreign or inconsistent is a [`SavedError`]; nothing is changed.
pub fn load<K, V>(records: impl IntoIterator<Item = (K, V)>) -> Result<Option<Saved>, SavedError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let loaded = load_disks(records)?;
    if loaded.records == 0 {
        return Ok(None);
    }
    let record = loaded
        .cluster
        .ok_or_else(|| SavedError::Inconsistent("there is no cluster record".to_string()))?;
    let machines: Vec<_> = record.state.machines.iter().map(|m| m.id).collect();
    if let Some(disk) = loaded.disks.keys().find(|d| !machines.contains(&d.node)) {
        return Err(inconsistent(*disk, "belongs to no machine of the cluster"));
    }
    Ok(Some(Saved {
        record,
        disks: loaded.disks,
        records: loaded.records,
        bytes: loaded.bytes,
    }))
}

/// Records checked and assembled, before they are matched to a cluster.
#[derive(Debug, Default)]
pub struct LoadedRecords {
    /// The cluster record, if there is one.
    pub cluster: Option<ClusterRecord>,
    /// Every disk that has records.
    pub disks: BTreeMap<DiskKey, IdbDisk>,
    /// Records read.
    pub records: u64,
    /// Bytes of keys and values read.
    pub bytes: u64,
}

/// Checks every record and assembles the disks (what [`load`] does before it looks at the
/// cluster record; a disk's tests use it alone).
pub fn load_disks<K, V>(
    records: impl IntoIterator<Item = (K, V)>,
) -> Result<LoadedRecords, SavedError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut out = LoadedRecords::default();
    let mut disks: BTreeMap<DiskKey, LoadedDisk> = BTreeMap::new();
    for (key, value) in records {
        let (key, value) = (key.as_ref(), value.as_ref());
        out.records += 1;
        out.bytes += (key.len() + value.len()) as u64;
        let (decoded, payload) = decode_value(key, value)?;
        match decoded {
            Key::Cluster => {
                let r: ClusterRecord =
                    postcard::from_bytes(payload).map_err(|e| SavedError::Corrupt {
                        key: hex(key),
                        reason: format!("cluster record: {e}"),
                    })?;
                out.cluster = Some(r);
            }
            Key::Namespace(disk) => {
                let d = disks.entry(disk).or_default();
                d.names = decode_namespace(key, payload)?;
                d.has_namespace = true;
            }
            Key::File(disk, inode) => {
                let len = decode_file(key, payload)?;
                disks.entry(disk).or_default().lens.insert(inode, len);
            }
            Key::Extent(disk, inode, offset) => {
                let d = disks.entry(disk).or_default();
                d.extents
                    .entry(inode)
                    .or_default()
                    .push((offset, payload.to_vec()));
            }
        }
    }
    for (disk, loaded) in disks {
        out.disks.insert(disk, assemble(disk, loaded)?);
    }
    Ok(out)
}

fn inconsistent(disk: DiskKey, what: &str) -> SavedError {
    let store = match disk.store {
        StoreId::Data => "data",
        StoreId::Hints => "hint",
    };
    SavedError::Inconsistent(format!("{}'s {store} disk {what}", disk.node))
}

/// One disk from its records: every named inode has a file record, every file record and
/// extent a name, and the extents tile each file exactly.
fn assemble(disk: DiskKey, mut loaded: LoadedDisk) -> Result<IdbDisk, SavedError> {
    if !loaded.has_namespace {
        return Err(inconsistent(disk, "has files but no namespace record"));
    }
    let mut files = BTreeMap::new();
    for (name, &inode) in &loaded.names {
        let len = loaded.lens.remove(&inode).ok_or_else(|| {
            inconsistent(
                disk,
                &format!("names {name:?} (inode {inode}) without its file record"),
            )
        })?;
        let mut extents = loaded.extents.remove(&inode).unwrap_or_default();
        extents.sort_by_key(|(offset, _)| *offset);
        let mut data = Vec::new();
        let mut starts = Vec::with_capacity(extents.len());
        for (offset, bytes) in extents {
            if offset != data.len() as u64 || bytes.is_empty() {
                return Err(inconsistent(
                    disk,
                    &format!(
                        "file {name:?}: an extent at {offset} where {} was expected",
                        data.len()
                    ),
                ));
            }
            starts.push(offset);
            data.extend_from_slice(&bytes);
        }
        if data.len() as u64 != len {
            return Err(inconsistent(
                disk,
                &format!(
                    "file {name:?}: extents hold {} of its {len} bytes",
                    data.len()
                ),
            ));
        }
        if files.insert(inode, (data, starts)).is_some() {
            return Err(inconsistent(disk, &format!("inode {inode} has two names")));
        }
    }
    if let Some(inode) = loaded.lens.keys().chain(loaded.extents.keys()).next() {
        return Err(inconsistent(
            disk,
            &format!("holds inode {inode}, which no name refers to"),
        ));
    }
    Ok(IdbDisk::loaded(loaded.names, files))
}

/// Resumes a loaded cluster: the saved disks go back to their machines and every running node
/// recovers from them.
pub fn resume(saved: Saved) -> Result<SimCluster, SavedError> {
    let Saved { record, disks, .. } = saved;
    let mut disks = disks;
    let factory = Box::new(move |node, store, _seed| {
        disks.remove(&DiskKey { node, store }).unwrap_or_default()
    });
    let sim = ringstore_core::sim::Sim::resume(record.state, factory)
        .map_err(|e| SavedError::Recovery(e.to_string()))?;
    let mut cluster = SimCluster::from_sim(record.options, sim);
    cluster.saves = record.saves;
    Ok(cluster)
}

/// Takes the next save's batch from `cluster`: every disk's durable changes since the last
/// batch and the cluster record. With `everything`, the batch clears the database first and
/// writes the whole durable state.
pub fn take_batch(cluster: &mut SimCluster, everything: bool) -> Result<Batch, SavedError> {
    // A cluster the timeline replaced holds a copy whose disks remember saves of another
    // moment: it rewrites everything.
    let everything = everything || std::mem::take(&mut cluster.rewrite_saved);
    let mut batch = Batch::default();
    if everything {
        batch.clear();
    }
    for (node, data, hints) in cluster.sim.disks() {
        for (store, disk) in [(StoreId::Data, data), (StoreId::Hints, hints)] {
            if everything {
                disk.forget_saved();
            }
            disk.take_changes(DiskKey { node, store }, &mut batch);
        }
    }
    cluster.saves += 1;
    let record = ClusterRecord {
        options: cluster.options.clone(),
        state: cluster.sim.state(),
        saves: cluster.saves,
    };
    let payload = postcard::to_allocvec(&record).map_err(|e| SavedError::Backend(e.to_string()))?;
    batch.put(cluster_key(), Kind::Cluster, &payload);
    Ok(batch)
}

/// What IndexedDB holds for `cluster`, as of the last batch taken.
pub fn saved_size(cluster: &SimCluster) -> SavedSize {
    let mut total = SavedSize {
        bytes: 0,
        records: u64::from(cluster.saves > 0),
    };
    for (_, data, hints) in cluster.sim.disks() {
        for disk in [data, hints] {
            let size = disk.saved_size();
            total.bytes += size.bytes;
            total.records += size.records;
        }
    }
    total
}

/// Batches waiting to be written, in order (see the module docs).
#[derive(Debug, Default)]
pub struct SaveQueue {
    batches: VecDeque<Batch>,
    bytes: u64,
    rewrite_everything: bool,
}

impl SaveQueue {
    /// Queues the batch of a save.
    pub fn push(&mut self, batch: Batch) {
        self.bytes += batch.bytes;
        self.batches.push_back(batch);
    }

    /// Everything queued, as one batch for one transaction; `None` if nothing is.
    pub fn take(&mut self) -> Option<Batch> {
        let mut merged = self.batches.pop_front()?;
        while let Some(next) = self.batches.pop_front() {
            merged.extend(next);
        }
        self.bytes = 0;
        Some(merged)
    }

    /// A write of `batch` failed: it goes back in front of the queue, unless the queue would
    /// pass [`QUEUE_BYTES_MAX`], in which case everything is dropped and
    /// [`SaveQueue::must_rewrite_everything`] says so until the next save.
    pub fn failed(&mut self, batch: Batch) {
        if self.bytes + batch.bytes > QUEUE_BYTES_MAX {
            self.batches.clear();
            self.bytes = 0;
            self.rewrite_everything = true;
        } else {
            self.bytes += batch.bytes;
            self.batches.push_front(batch);
        }
    }

    /// Whether the next save must rewrite everything (and clears the flag).
    pub fn must_rewrite_everything(&mut self) -> bool {
        std::mem::take(&mut self.rewrite_everything)
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// What saving has cost so far, for the page to show (`cluster.persistStats()`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistStats {
    /// Whether this cluster was resumed from saved state (else it started fresh).
    pub resumed: bool,
    /// Records read when the cluster was opened.
    pub loaded_records: u64,
    /// Bytes (keys and values) read when the cluster was opened.
    pub loaded_bytes: u64,
    /// Milliseconds `Cluster.open` took: reading, checking, and every node's recovery.
    pub open_ms: f64,
    /// Transactions committed.
    pub commits: u64,
    /// Records put by the last committed transaction.
    pub last_records: u64,
    /// Bytes (keys and values) put by the last committed transaction.
    pub last_bytes: u64,
    /// Milliseconds the last transaction took, from its start to its commit.
    pub last_ms: f64,
    /// Bytes put by every committed transaction.
    pub total_bytes: u64,
    /// File bytes the database holds (as of the last save taken).
    pub saved_bytes: u64,
    /// Records the database holds (as of the last save taken).
    pub saved_records: u64,
    /// Bytes of saves taken but not yet committed.
    pub queued_bytes: u64,
}

impl PersistStats {
    /// Counts a committed transaction of `batch` that took `ms`.
    pub fn committed(&mut self, batch: &Batch, ms: f64) {
        self.commits += 1;
        self.last_records = batch.puts;
        self.last_bytes = batch.bytes;
        self.last_ms = ms;
        self.total_bytes += batch.bytes;
    }
}

/// Runs `cluster` until client operation `op` finished (at most 2 simulated seconds) and
/// returns its outcome; for the host and browser tests.
#[cfg(test)]
pub(crate) fn finish(cluster: &mut SimCluster, op: u64) -> String {
    for _ in 0..200 {
        if let Some(result) = cluster.result_of(op) {
            return result;
        }
        cluster.run_for(10);
    }
    panic!("operation {op} did not finish");
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[path = "persist_tests.rs"]
mod tests;
