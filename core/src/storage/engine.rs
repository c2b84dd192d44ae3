//! [`Lsm`]: the storage engine that ties the WAL, memtables, SSTables and manifest together.
//!
//! * **Writes** ([`Lsm::write`], [`Lsm::write_batch`]) append a batch to the WAL and apply it to
//!   the active memtable. When the memtable is full it is frozen and the WAL rotates. It is
//!   full when it holds [`LsmConfig::memtable_bytes_max`](super::LsmConfig::memtable_bytes_max)
//!   bytes, or when its WAL segment does: overwrites of a few hot keys replace cells in place and
//!   keep the memtable small, but every one is logged, so without the second bound the WAL (and
//!   the replay at the next open) would grow without limit.
//! * **Durability** is the host's call, guided by the [`SyncPolicy`](super::SyncPolicy): [`Lsm::sync_wal`] in one
//!   step, or [`Lsm::begin_sync`]/[`Lsm::complete_sync`] around a sync run without the engine.
//! * **Reads** ([`Lsm::get`], [`Lsm::scan`]) reconcile every source by LWW version: the answer
//!   is the greatest version among the memtables and tables, not the most recently written
//!   file. Sources whose newest version is older than the best found so far are skipped.
//! * **Background work** (flushes and compactions, see [`super::jobs`]) is taken with
//!   [`Lsm::next_job`], stepped without any borrow of the engine, and committed with
//!   [`Lsm::install`].
//! * **Recovery** ([`Lsm::open`]) reads the manifest, opens its tables (a corrupt one is a
//!   typed error), deletes files no manifest refers to, replays the WAL and cuts a torn tail
//!   (never inside what a clean close sealed: damage there is [`StorageError::Corrupt`]).

use super::cell::{Cell, Version, check_key};
use super::compaction::{MergeIter, Source};
use super::config::LsmConfig;
use super::manifest::{LEVELS, Manifest, ManifestState};
use super::memtable::Memtable;
use super::sstable::{self, BlockCache, Table, key_hash};
use super::stats::{LevelStats, LsmStats};
use super::wal::{self, Lsn, SyncTicket, WalWriter};
use super::{Disk, StorageError};
use crate::Millis;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

mod read;

/// Bytes of a new WAL segment: its header.
const SEGMENT_HEADER_BYTES: u64 = super::frame::HEADER_BYTES as u64;

/// The most entries one [`Lsm::scan`] returns.
pub const SCAN_LIMIT_MAX: usize = 100_000;

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// A frozen memtable waiting to be flushed.
#[derive(Debug)]
pub(super) struct Frozen {
    pub(super) mem: Arc<Memtable>,
    /// WAL segments up to this one hold its writes.
    pub(super) wal_end_seq: u64,
    pub(super) flushing: bool,
}

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryReport {
    /// Whether the database was created by this open.
    pub created: bool,
    /// Tables opened.
    pub tables: usize,
    /// WAL segments replayed.
    pub wal_segments: usize,
    /// WAL batches replayed into the memtable.
    pub batches_replayed: u64,
    /// Bytes of torn WAL tail cut off.
    pub torn_bytes_truncated: u64,
    /// Files deleted because no manifest refers to them (left by a crash mid-flush or
    /// mid-compaction).
    pub orphans_deleted: Vec<String>,
}

/// Counters behind [`LsmStats`].
#[derive(Clone, Debug, Default)]
pub(super) struct Counters {
    pub(super) user_bytes_written: u64,
    pub(super) flushes: u64,
    pub(super) compactions: u64,
    pub(super) trivial_moves: u64,
    pub(super) flush_bytes_written: u64,
    pub(super) compaction_bytes_written: u64,
    pub(super) tombstones_purged: u64,
    pub(super) versions_dropped: u64,
    pub(super) write_stalls: u64,
    pub(super) wal_syncs: u64,
    pub(super) wal_torn_bytes_cut: u64,
}

/// A log-structured merge tree over a [`Disk`]. See the module docs.
#[derive(Debug)]
pub struct Lsm<D: Disk> {
    pub(super) disk: D,
    pub(super) config: LsmConfig,
    pub(super) wal: WalWriter<D>,
    pub(super) active: Memtable,
    pub(super) frozen: VecDeque<Frozen>,
    /// Tables per level: L0 oldest first; deeper levels sorted by key.
    pub(super) levels: Vec<Vec<Arc<Table<D>>>>,
    pub(super) manifest: Manifest<D>,
    pub(super) cache: Arc<BlockCache>,
    pub(super) next_table_id: Arc<AtomicU64>,
    /// Live WAL segments and their sizes, oldest first (the current one last).
    pub(super) wal_segments: BTreeMap<u64, u64>,
    /// Running jobs: id -> tables they read.
    pub(super) jobs: BTreeMap<u64, Vec<u64>>,
    pub(super) next_job_id: u64,
    pub(super) instance: u64,
    /// Per level, the largest key last compacted out of it.
    pub(super) cursors: Vec<Vec<u8>>,
    pub(super) counters: Counters,
    pub(super) poisoned: Option<String>,
    last_sync: Millis,
}

/// A page of [`Lsm::scan_filtered`]: the keys kept with their cells, and the key (inclusive) to
/// resume from (`None`: the walk reached its end).
pub type FilteredPage = (Vec<(Vec<u8>, Cell)>, Option<Vec<u8>>);

impl<D: Disk> Lsm<D> {
    /// Opens the database on `disk`, creating it if the disk holds no ringstore files, and
    /// recovers from whatever a crash left.
    pub fn open(disk: D, config: LsmConfig) -> Result<(Lsm<D>, RecoveryReport), StorageError> {
        let mut report = RecoveryReport::default();
        let manifest = match Manifest::open(disk.clone())? {
            Some(m) => m,
            None => {
                let files = disk.list()?;
                if let Some(stray) = files.iter().find(|f| {
                    sstable::parse_table_file_name(f).is_some()
                        || wal::parse_segment_file_name(f).is_some()
                }) {
                    return Err(StorageError::Corrupt {
                        file: super::manifest::MANIFEST_FILE.to_string(),
                        offset: 0,
                        source: super::codec::FormatError::Invalid {
                            what: "manifest",
                            detail: format!("missing, but data files exist (e.g. {stray})"),
                        },
                    });
                }
                report.created = true;
                let mut state = ManifestState::empty();
                state.next_table_id = 1;
                state.wal_start = 1;
                Manifest::create(disk.clone(), state)?
            }
        };
        let state = manifest.state().clone();
        let cache = Arc::new(BlockCache::new(config.block_cache_bytes));

        let mut levels: Vec<Vec<Arc<Table<D>>>> = vec![Vec::new(); LEVELS];
        let mut live_tables = BTreeSet::new();
        for (level, metas) in state.levels.iter().enumerate() {
            for meta in metas {
                let table = Table::open(disk.clone(), meta.id, cache.clone())?;
                live_tables.insert(meta.id);
                levels[level].push(Arc::new(table));
                report.tables += 1;
            }
        }

        // Files no manifest refers to: outputs of a flush or compaction that never committed,
        // inputs whose deletion a crash undid, WAL segments already flushed.
        let mut segments = Vec::new();
        let mut max_table_id = 0;
        for name in disk.list()? {
            if let Some(id) = sstable::parse_table_file_name(&name) {
                max_table_id = max_table_id.max(id);
                if !live_tables.contains(&id) {
                    disk.delete(&name)?;
                    report.orphans_deleted.push(name);
                }
            } else if let Some(seq) = wal::parse_segment_file_name(&name) {
                if seq < state.wal_start {
                    disk.delete(&name)?;
                    report.orphans_deleted.push(name);
                } else {
                    segments.push(seq);
                }
            }
        }

        // Replay the WAL into a fresh memtable.
        let mut active = Memtable::new();
        let mut last_lsn = state.flushed_lsn;
        let mut wal_segments = BTreeMap::new();
        let mut live_bytes = 0;
        for (i, &seq) in segments.iter().enumerate() {
            let name = wal::segment_file_name(seq);
            let is_last = i + 1 == segments.len();
            let sealed = super::manifest::WalSeal::sealed_bytes(state.wal_sealed, seq);
            let replayed = wal::replay_segment(&disk, &name, last_lsn, is_last, sealed)?;
            if replayed.valid_bytes < SEGMENT_HEADER_BYTES {
                // Not even the header became durable: the segment never held a synced write.
                disk.delete(&name)?;
                report.torn_bytes_truncated += replayed.torn_bytes;
                continue;
            }
            if replayed.torn_bytes > 0 {
                disk.truncate(&name, replayed.valid_bytes)?;
                report.torn_bytes_truncated += replayed.torn_bytes;
            }
            if replayed.torn_bytes > 0 || is_last {
                // Always for the last segment: an earlier open may have cut its tail and failed
                // to sync the cut. The segment created next makes it an older segment, where a
                // tail a crash brought back would be corruption.
                disk.sync(&name)?;
            }
            for (lsn, entries) in replayed.batches {
                for (key, cell) in entries {
                    active.insert(&key, cell, lsn);
                }
                last_lsn = lsn;
                report.batches_replayed += 1;
            }
            report.wal_segments += 1;
            wal_segments.insert(seq, replayed.valid_bytes);
            live_bytes += replayed.valid_bytes;
        }
        let next_seq = segments
            .last()
            .map_or(state.wal_start, |s| s + 1)
            .max(state.wal_start);
        let mut wal = WalWriter::create(
            disk.clone(),
            next_seq,
            last_lsn,
            live_bytes,
            wal::wal_preallocate_bytes(config.memtable_bytes_max),
        )?;
        wal_segments.insert(next_seq, SEGMENT_HEADER_BYTES);
        // Makes the deletions and truncations above and the new segment's name durable.
        disk.sync_dir()?;
        wal.dir_synced();

        let next_table_id = state.next_table_id.max(max_table_id + 1);
        let lsm = Lsm {
            disk,
            config,
            wal,
            active,
            frozen: VecDeque::new(),
            levels,
            manifest,
            cache,
            next_table_id: Arc::new(AtomicU64::new(next_table_id)),
            wal_segments,
            jobs: BTreeMap::new(),
            next_job_id: 1,
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            cursors: vec![Vec::new(); LEVELS],
            counters: Counters {
                wal_torn_bytes_cut: report.torn_bytes_truncated,
                ..Counters::default()
            },
            poisoned: None,
            last_sync: Millis(0),
        };
        Ok((lsm, report))
    }

    /// A separate engine in the same state over `disk`, a copy of this engine's disk (see
    /// [`crate::sim::MachineDisk::fork`]): the same memtables, tables, WAL position, manifest,
    /// counters and cached blocks, so that both go on exactly alike given the same calls.
    /// Refused (`None`) while a flush or compaction runs: a job's half-written table and open
    /// iterators are not copied.
    pub fn fork(&self, disk: D) -> Option<Lsm<D>> {
        if !self.jobs.is_empty() || self.frozen.iter().any(|f| f.flushing) {
            return None;
        }
        let cache = Arc::new(self.cache.fork(self.config.block_cache_bytes));
        let levels = self
            .levels
            .iter()
            .map(|level| {
                level
                    .iter()
                    .map(|t| Arc::new(t.with_disk(disk.clone(), cache.clone())))
                    .collect()
            })
            .collect();
        Some(Lsm {
            wal: self.wal.with_disk(disk.clone()),
            manifest: self.manifest.with_disk(disk.clone()),
            disk,
            config: self.config.clone(),
            active: self.active.clone(),
            frozen: self
                .frozen
                .iter()
                .map(|f| Frozen {
                    mem: f.mem.clone(),
                    wal_end_seq: f.wal_end_seq,
                    flushing: f.flushing,
                })
                .collect(),
            levels,
            cache,
            next_table_id: Arc::new(AtomicU64::new(self.next_table_id.load(Ordering::Relaxed))),
            wal_segments: self.wal_segments.clone(),
            jobs: self.jobs.clone(),
            next_job_id: self.next_job_id,
            instance: self.instance,
            cursors: self.cursors.clone(),
            counters: self.counters.clone(),
            poisoned: self.poisoned.clone(),
            last_sync: self.last_sync,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &LsmConfig {
        &self.config
    }

    /// The disk handle (for running a [`SyncTicket`] outside the engine).
    pub fn disk(&self) -> &D {
        &self.disk
    }

    pub(super) fn check_writable(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            Some(why) => Err(StorageError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    pub(super) fn poison<T>(&mut self, err: StorageError) -> Result<T, StorageError> {
        self.poisoned.get_or_insert_with(|| err.to_string());
        Err(err)
    }

    /// Stops the engine accepting writes, for a reason found outside it: a host whose thread
    /// panicked while holding the engine may have left a batch half applied. Every later write
    /// and sync fails with [`StorageError::Poisoned`] naming the first reason; reads go on.
    /// Reopening the engine recovers from its files.
    pub fn poison_for(&mut self, why: impl Into<String>) {
        self.poisoned.get_or_insert_with(|| why.into());
    }

    /// Why the engine stopped accepting writes, if it did (see [`StorageError::Poisoned`]).
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// Whether writes would stall now (the memtable is full and the flush backlog is at its
    /// bound, or L0 is too deep).
    pub fn write_stalled(&self) -> bool {
        (self.active_full() && self.frozen.len() >= self.config.frozen_memtables_max)
            || self.levels[0].len() >= self.config.l0_stall_tables
    }

    /// Whether the active memtable is full: it, or its WAL segment, holds
    /// `memtable_bytes_max` bytes (see the module docs).
    fn active_full(&self) -> bool {
        let max = self.config.memtable_bytes_max;
        let segment = self.wal_segments.get(&self.wal.seq()).copied().unwrap_or(0);
        self.active.bytes() >= max || segment >= max as u64
    }

    /// Writes one cell. See [`Lsm::write_batch`].
    pub fn write(&mut self, key: &[u8], cell: Cell) -> Result<Lsn, StorageError> {
        self.write_batch(vec![(key.to_vec(), cell)])
    }

    /// Appends a batch to the WAL and applies it to the memtable, atomically across a crash.
    /// Returns the batch's LSN; it is durable once [`Lsm::durable_lsn`] reaches it. A cell older
    /// than the stored version of its key is logged but does not win.
    pub fn write_batch(&mut self, batch: Vec<(Vec<u8>, Cell)>) -> Result<Lsn, StorageError> {
        self.write_batch_noting_new(batch, |_| {})
    }

    /// [`Lsm::write_batch`], calling `new_key` for each key the active memtable did not hold
    /// before (a host keeping its own index of keys adds only those: a key already in the
    /// memtable was seen when it got there).
    pub fn write_batch_noting_new(
        &mut self,
        batch: Vec<(Vec<u8>, Cell)>,
        mut new_key: impl FnMut(&[u8]),
    ) -> Result<Lsn, StorageError> {
        self.check_writable()?;
        for (key, cell) in &batch {
            check_key(key)?;
            let len = cell.value.as_ref().map_or(0, Vec::len);
            let max = self.config.value_bytes_max.min(super::VALUE_BYTES_LIMIT);
            if len > max {
                return Err(StorageError::ValueTooLarge { len, max });
            }
        }
        if batch.is_empty() {
            return Ok(self.wal.last_lsn());
        }
        if self.write_stalled() {
            self.counters.write_stalls += 1;
            return Err(StorageError::WriteStall {
                frozen: self.frozen.len(),
            });
        }
        let refs: Vec<(&[u8], &Cell)> = batch.iter().map(|(k, c)| (k.as_slice(), c)).collect();
        let before = self.wal.live_bytes();
        // Under a policy that acknowledges after a sync, the batch goes to the disk before the
        // memtable: a full disk then refuses it while nothing holds it (the batch is taken back
        // and the engine goes on), so a write that failed is never read.
        let lsn = match self.wal.append(&refs, self.config.sync.acks_after_sync()) {
            Ok(lsn) => lsn,
            Err(e) if e.is_disk_full() => return Err(e),
            Err(e) => return self.poison(e),
        };
        let grown = self.wal.live_bytes() - before;
        if let Some(bytes) = self.wal_segments.get_mut(&self.wal.seq()) {
            *bytes += grown;
        }
        for (key, cell) in batch {
            self.counters.user_bytes_written += (key.len() + cell.footprint()) as u64;
            let held = self.active.len();
            self.active.insert(&key, cell, lsn);
            if self.active.len() > held {
                new_key(&key);
            }
        }
        if self.active_full() && self.frozen.len() < self.config.frozen_memtables_max {
            self.freeze_memtable()?;
        }
        Ok(lsn)
    }

    /// Freezes the active memtable (if it holds anything) so that a flush job can write it out,
    /// and starts a new WAL segment.
    pub fn freeze_memtable(&mut self) -> Result<(), StorageError> {
        self.check_writable()?;
        if self.active.is_empty() {
            return Ok(());
        }
        let old_seq = self.wal.seq();
        let new_seq = old_seq + 1;
        if let Err(e) = self.wal.rotate(new_seq) {
            return self.poison(e);
        }
        self.counters.wal_syncs += 1;
        self.wal_segments.insert(new_seq, SEGMENT_HEADER_BYTES);
        let mem = std::mem::take(&mut self.active);
        self.frozen.push_back(Frozen {
            mem: Arc::new(mem),
            wal_end_seq: old_seq,
            flushing: false,
        });
        Ok(())
    }

    /// Frozen memtables waiting for (or in) a flush.
    pub fn frozen_memtables(&self) -> usize {
        self.frozen.len()
    }

    /// Whether background work remains: a frozen memtable, a running job, or a due compaction.
    pub fn background_pending(&self) -> bool {
        if !self.frozen.is_empty() || !self.jobs.is_empty() {
            return true;
        }
        self.pick_compaction_task(&BTreeSet::new()).is_some()
    }

    /// The compaction the leveled policy would run next, leaving tables in `busy` alone.
    pub(super) fn pick_compaction_task(
        &self,
        busy: &BTreeSet<u64>,
    ) -> Option<super::compaction::CompactionTask> {
        let metas: Vec<Vec<super::sstable::TableMeta>> = self
            .levels
            .iter()
            .map(|tables| tables.iter().map(|t| t.meta().clone()).collect())
            .collect();
        super::compaction::pick_compaction(&metas, busy, &self.config.compaction, &self.cursors)
    }

    /// Remembers `now` as the time of the last WAL sync, for [`SyncPolicy::IntervalMs`](super::SyncPolicy::IntervalMs).
    pub fn note_sync(&mut self, now: Millis) {
        self.last_sync = now;
    }

    /// The LSN of the last batch written.
    pub fn last_lsn(&self) -> Lsn {
        self.wal.last_lsn()
    }

    /// Every batch up to this LSN is durable.
    pub fn durable_lsn(&self) -> Lsn {
        self.wal.durable_lsn()
    }

    /// Whether the sync policy calls for a WAL sync at `now`.
    pub fn sync_due(&self, now: Millis) -> bool {
        self.config
            .sync
            .sync_due(now, self.last_sync, self.wal.has_unsynced())
    }

    /// Makes every batch written so far durable (one disk sync however many batches).
    pub fn sync_wal(&mut self) -> Result<(), StorageError> {
        self.check_writable()?;
        if let Some(ticket) = self.begin_sync()? {
            let result = WalWriter::run_sync(&self.disk, &ticket);
            self.complete_sync(&ticket, result)?;
        }
        Ok(())
    }

    /// Like [`Lsm::sync_wal`], and remembers `now` as the last sync for [`SyncPolicy::IntervalMs`](super::SyncPolicy::IntervalMs).
    pub fn sync_wal_at(&mut self, now: Millis) -> Result<(), StorageError> {
        self.sync_wal()?;
        self.last_sync = now;
        Ok(())
    }

    /// First half of a sync run outside the engine: writes buffered WAL bytes and returns what
    /// to sync with [`WalWriter::run_sync`], or `None` if everything is durable already.
    pub fn begin_sync(&mut self) -> Result<Option<SyncTicket>, StorageError> {
        self.check_writable()?;
        match self.wal.begin_sync() {
            Ok(t) => Ok(t),
            // Nothing was written: the buffered batches wait for the next sync.
            Err(e) if e.is_disk_full() => Err(e),
            Err(e) => self.poison(e),
        }
    }

    /// Second half: records the outcome of the sync. A failed sync poisons the engine: after a
    /// failed fsync the kernel may have dropped the dirty pages, so nothing can be trusted.
    pub fn complete_sync(
        &mut self,
        ticket: &SyncTicket,
        result: Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        match result {
            Ok(()) => {
                self.wal.complete_sync(ticket);
                self.counters.wal_syncs += 1;
                Ok(())
            }
            Err(e) => {
                self.wal.fail_sync(ticket);
                self.poison(e)
            }
        }
    }

    /// The tables of every level with their key ranges and versions, one line each (debugging).
    pub fn debug_levels(&self) -> String {
        let mut out = String::new();
        for (level, tables) in self.levels.iter().enumerate() {
            for t in tables {
                let m = t.meta();
                out.push_str(&format!(
                    "L{level} #{} [{}..{}] entries {} versions {:?}..{:?}\n",
                    m.id,
                    String::from_utf8_lossy(&m.min_key),
                    String::from_utf8_lossy(&m.max_key),
                    m.entries,
                    m.min_version,
                    m.max_version
                ));
            }
        }
        out.push_str(&format!(
            "memtable {} keys, {} frozen\n",
            self.active.len(),
            self.frozen.len()
        ));
        out
    }

    /// What the engine holds and has done, for the UI and metrics.
    pub fn stats(&self) -> LsmStats {
        let c = &self.counters;
        let levels: Vec<LevelStats> = self
            .levels
            .iter()
            .map(|tables| LevelStats {
                tables: tables.len(),
                bytes: tables.iter().map(|t| t.meta().file_bytes).sum(),
                entries: tables.iter().map(|t| t.meta().entries).sum(),
            })
            .collect();
        let disk_bytes =
            self.wal.bytes_appended_total() + c.flush_bytes_written + c.compaction_bytes_written;
        LsmStats {
            wal_bytes: self.wal.live_bytes(),
            wal_segments: self.wal_segments.len(),
            last_lsn: self.wal.last_lsn(),
            durable_lsn: self.wal.durable_lsn(),
            wal_syncs: c.wal_syncs,
            memtable_entries: self.active.len(),
            memtable_bytes: self.active.bytes(),
            frozen_memtables: self.frozen.len(),
            frozen_entries: self.frozen.iter().map(|f| f.mem.len()).sum(),
            levels,
            flushes: c.flushes,
            compactions: c.compactions,
            trivial_moves: c.trivial_moves,
            running_jobs: self.jobs.len(),
            user_bytes_written: c.user_bytes_written,
            wal_bytes_written: self.wal.bytes_appended_total(),
            flush_bytes_written: c.flush_bytes_written,
            compaction_bytes_written: c.compaction_bytes_written,
            write_amplification: if c.user_bytes_written == 0 {
                0.0
            } else {
                disk_bytes as f64 / c.user_bytes_written as f64
            },
            tombstones_purged: c.tombstones_purged,
            versions_dropped: c.versions_dropped,
            write_stalls: c.write_stalls,
            block_cache_hits: self.cache.hits(),
            block_cache_misses: self.cache.misses(),
            manifest_bytes: self.manifest.file_bytes(),
            poisoned: self.poisoned.clone(),
            wal_torn_bytes_cut: c.wal_torn_bytes_cut,
        }
    }

    /// Runs every due flush and compaction to completion, in this thread (tests, the simulator's
    /// simple mode, the storage demo).
    pub fn run_background(&mut self, now: Millis) -> Result<(), StorageError> {
        while let Some(job) = self.next_job(now)? {
            self.run_job(job)?;
        }
        Ok(())
    }

    /// Steps `job` to completion in this thread and installs it (or aborts it on error).
    pub fn run_job(&mut self, mut job: super::Job<D>) -> Result<(), StorageError> {
        loop {
            match job.step() {
                Ok(true) => return self.install(job),
                Ok(false) => {}
                Err(e) => {
                    self.abort(job);
                    return Err(e);
                }
            }
        }
    }

    /// Flushes everything, then runs a major compaction (see [`Lsm::major_compaction_job`]) in
    /// this thread.
    pub fn compact_all(&mut self, now: Millis) -> Result<(), StorageError> {
        self.flush_all(now)?;
        match self.major_compaction_job(now)? {
            Some(job) => self.run_job(job),
            None => Ok(()),
        }
    }

    /// Shuts down cleanly: seals the WAL (see [`Lsm::seal_wal`]) so that a reopen loses
    /// nothing and finds no torn tail. (Dropping an engine without closing it is a crash for
    /// whatever was not synced.)
    pub fn close(mut self) -> Result<(), StorageError> {
        self.seal_wal()
    }

    /// Makes every batch written so far durable, like [`Lsm::sync_wal`], cuts the current
    /// WAL segment back to what was written, giving back its preallocated space, and records
    /// its length in the manifest: what a clean shutdown does. A reopen then treats damage in
    /// the sealed bytes as corruption, not as a torn tail (see [`super::wal`]). Writes may go
    /// on afterwards.
    pub fn seal_wal(&mut self) -> Result<(), StorageError> {
        self.check_writable()?;
        if let Err(e) = self.wal.seal() {
            return self.poison(e);
        }
        self.counters.wal_syncs += 1;
        if let Err(e) = self
            .manifest
            .seal_wal(self.wal.seq(), self.wal.written_bytes())
        {
            return self.poison(e);
        }
        Ok(())
    }

    /// Freezes the memtable and runs every flush and compaction to completion.
    pub fn flush_all(&mut self, now: Millis) -> Result<(), StorageError> {
        self.freeze_memtable()?;
        self.run_background(now)
    }
}
