//! Background jobs: flushing a frozen memtable to L0, and compacting tables down a level.
//!
//! A job is taken from the engine with [`Lsm::next_job`], advanced with [`Job::step`] (each
//! step handles at most [`STEP_ENTRIES`] entries and holds no borrow of the engine, so a
//! simulator can interleave steps with other events and a native host can run them on another
//! thread) and committed with [`Lsm::install`], which makes the output files durable, records
//! the change in the manifest in one atomic edit, and only then deletes what it replaced.
//! [`Lsm::abort`] gives up a failed job and deletes its partial output.

use super::cell::Version;
use super::compaction::{CompactionTask, MergeIter, tombstone_purgeable};
use super::engine::{Frozen, Lsm};
use super::manifest::Edit;
use super::memtable::Memtable;
use super::sstable::{Table, TableIter, TableMeta, TableOptions, TableWriter, table_file_name};
use super::{Disk, StorageError, wal};
use crate::Millis;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Entries handled by one [`Job::step`].
pub const STEP_ENTRIES: usize = 2048;

/// What a job does, for logs and the UI.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum JobKind {
    /// Writes a frozen memtable to a new L0 table.
    Flush {
        /// Entries in the memtable.
        entries: usize,
    },
    /// Merges tables of `level` into `level + 1`.
    Compact {
        /// Source level.
        level: usize,
        /// Tables read.
        inputs: usize,
    },
    /// Moves one table down a level without rewriting it.
    Move {
        /// Source level.
        level: usize,
    },
}

/// Outputs of a finished step sequence.
struct Output<D: Disk> {
    meta: TableMeta,
    table: Arc<Table<D>>,
}

enum Work<D: Disk> {
    Flush {
        mem: Arc<Memtable>,
        resume: Option<Vec<u8>>,
        writer: Option<TableWriter<D>>,
        output: Option<Output<D>>,
        done: bool,
    },
    Compact {
        task: CompactionTask,
        merge: MergeIter<TableIter<D>>,
        writer: Option<TableWriter<D>>,
        outputs: Vec<Output<D>>,
        now_ms: u64,
        grace_ms: u64,
        purge_below: Option<Version>,
        purged: u64,
        done: bool,
    },
    Move {
        task: CompactionTask,
    },
}

/// What a job needs from the engine to write tables, without borrowing it.
struct JobContext<D: Disk> {
    disk: D,
    options: TableOptions,
    table_bytes_target: u64,
    next_table_id: Arc<AtomicU64>,
    cache: Arc<super::sstable::BlockCache>,
}

impl<D: Disk> JobContext<D> {
    fn new_writer(&self) -> Result<TableWriter<D>, StorageError> {
        let id = self.next_table_id.fetch_add(1, Ordering::Relaxed);
        TableWriter::create(self.disk.clone(), id, self.options.clone())
    }

    fn finish_writer(&self, writer: TableWriter<D>) -> Result<Output<D>, StorageError> {
        let meta = writer.finish()?;
        let table = Table::open(self.disk.clone(), meta.id, self.cache.clone())?;
        Ok(Output {
            meta,
            table: Arc::new(table),
        })
    }
}

/// A flush or compaction in progress. See the module docs.
pub struct Job<D: Disk> {
    id: u64,
    instance: u64,
    kind: JobKind,
    ctx: JobContext<D>,
    work: Work<D>,
}

impl<D: Disk> core::fmt::Debug for Job<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish()
    }
}

impl<D: Disk> Job<D> {
    /// What this job does.
    pub fn kind(&self) -> &JobKind {
        &self.kind
    }

    /// Advances the job by at most [`STEP_ENTRIES`] entries. Returns `true` once it is finished
    /// and ready for [`Lsm::install`].
    pub fn step(&mut self) -> Result<bool, StorageError> {
        let ctx = &self.ctx;
        match &mut self.work {
            Work::Move { .. } => Ok(true),
            Work::Flush { done: true, .. } | Work::Compact { done: true, .. } => Ok(true),
            Work::Flush {
                mem,
                resume,
                writer,
                output,
                done,
            } => {
                let start = match resume {
                    Some(k) => Bound::Excluded(k.as_slice()),
                    None => Bound::Unbounded,
                };
                let mut last = None;
                for (key, cell) in mem.range_from(start).take(STEP_ENTRIES) {
                    if writer.is_none() {
                        *writer = Some(ctx.new_writer()?);
                    }
                    if let Some(w) = writer.as_mut() {
                        w.add(key, cell)?;
                    }
                    last = Some(key.clone());
                }
                match last {
                    Some(k) => *resume = Some(k),
                    None => {
                        if let Some(w) = writer.take() {
                            *output = Some(ctx.finish_writer(w)?);
                        }
                        *done = true;
                    }
                }
                Ok(*done)
            }
            Work::Compact {
                merge,
                writer,
                outputs,
                now_ms,
                grace_ms,
                purge_below,
                purged,
                done,
                ..
            } => {
                for _ in 0..STEP_ENTRIES {
                    let Some(item) = merge.next() else {
                        if let Some(w) = writer.take() {
                            outputs.push(ctx.finish_writer(w)?);
                        }
                        *done = true;
                        return Ok(true);
                    };
                    let (key, cell) = item?;
                    if tombstone_purgeable(&cell, *purge_below, *now_ms, *grace_ms) {
                        *purged += 1;
                        continue;
                    }
                    if writer.is_none() {
                        *writer = Some(ctx.new_writer()?);
                    }
                    let full = match writer.as_mut() {
                        Some(w) => {
                            w.add(&key, &cell)?;
                            w.estimated_file_bytes() >= ctx.table_bytes_target
                        }
                        None => false,
                    };
                    if full && let Some(w) = writer.take() {
                        outputs.push(ctx.finish_writer(w)?);
                    }
                }
                Ok(false)
            }
        }
    }

    fn output_files(&self) -> Vec<String> {
        let mut files = Vec::new();
        match &self.work {
            Work::Flush {
                output: Some(o), ..
            } => files.push(table_file_name(o.meta.id)),
            Work::Compact { outputs, .. } => {
                files.extend(outputs.iter().map(|o| table_file_name(o.meta.id)));
            }
            _ => {}
        }
        files
    }
}

fn overlaps_range(min_a: &[u8], max_a: &[u8], min_b: &[u8], max_b: &[u8]) -> bool {
    min_a <= max_b && max_a >= min_b
}

impl<D: Disk> Lsm<D> {
    fn busy_tables(&self) -> std::collections::BTreeSet<u64> {
        self.jobs.values().flatten().copied().collect()
    }

    fn job(&mut self, kind: JobKind, tables: Vec<u64>, work: Work<D>) -> Job<D> {
        let id = self.next_job_id;
        self.next_job_id += 1;
        self.jobs.insert(id, tables);
        Job {
            id,
            instance: self.instance,
            kind,
            ctx: JobContext {
                disk: self.disk.clone(),
                options: self.config.table.clone(),
                table_bytes_target: self.config.compaction.table_bytes_target,
                next_table_id: self.next_table_id.clone(),
                cache: self.cache.clone(),
            },
            work,
        }
    }

    /// The next background job that is due, if any: the oldest frozen memtable's flush first,
    /// then the most urgent compaction. Several jobs may run at once (a flush beside a
    /// compaction); they never share tables.
    pub fn next_job(&mut self, now: Millis) -> Result<Option<Job<D>>, StorageError> {
        self.check_writable()?;
        if let Some(frozen) = self.frozen.front_mut()
            && !frozen.flushing
        {
            frozen.flushing = true;
            let mem = frozen.mem.clone();
            let kind = JobKind::Flush { entries: mem.len() };
            let work = Work::Flush {
                mem,
                resume: None,
                writer: None,
                output: None,
                done: false,
            };
            return Ok(Some(self.job(kind, Vec::new(), work)));
        }
        let busy = self.busy_tables();
        let Some(task) = self.pick_compaction_task(&busy) else {
            return Ok(None);
        };
        Ok(Some(self.compaction_job(task, now, true)))
    }

    /// A major compaction: every table merged into the deepest level that holds data (at least
    /// L1), dropping every shadowed version and every tombstone past its grace period that no
    /// memtable could still need. `None` while another job holds a table. The operator's
    /// `compact` command and the tests use it; leveled compaction never needs it.
    pub fn major_compaction_job(&mut self, now: Millis) -> Result<Option<Job<D>>, StorageError> {
        self.check_writable()?;
        if !self.jobs.is_empty() {
            return Ok(None);
        }
        let inputs: Vec<u64> = self.levels.iter().flatten().map(|t| t.meta().id).collect();
        if inputs.is_empty() {
            return Ok(None);
        }
        let deepest = self
            .levels
            .iter()
            .rposition(|l| !l.is_empty())
            .unwrap_or(1)
            .max(1);
        let task = CompactionTask {
            level: 0,
            output_level: deepest,
            inputs,
            overlapping: Vec::new(),
            score_percent: 0,
        };
        Ok(Some(self.compaction_job(task, now, false)))
    }

    fn compaction_job(&mut self, task: CompactionTask, now: Millis, allow_move: bool) -> Job<D> {
        let tables: Vec<u64> = task.all_inputs().collect();
        if allow_move && task.is_trivial_move() {
            let kind = JobKind::Move { level: task.level };
            return self.job(kind, tables, Work::Move { task });
        }
        let inputs: Vec<Arc<Table<D>>> = self
            .levels
            .iter()
            .flatten()
            .filter(|t| tables.contains(&t.meta().id))
            .cloned()
            .collect();
        let min = inputs
            .iter()
            .map(|t| t.meta().min_key.clone())
            .min()
            .unwrap_or_default();
        let max = inputs
            .iter()
            .map(|t| t.meta().max_key.clone())
            .max()
            .unwrap_or_default();
        // The oldest version any source outside this compaction could hold for these keys.
        let mut purge_below: Option<Version> = None;
        let mut lower = |v: Option<Version>| {
            if let Some(v) = v {
                purge_below = Some(purge_below.map_or(v, |p| p.min(v)));
            }
        };
        for t in self.levels.iter().flatten() {
            let m = t.meta();
            if !tables.contains(&m.id) && overlaps_range(&m.min_key, &m.max_key, &min, &max) {
                lower(Some(m.min_version));
            }
        }
        let mems = std::iter::once(&self.active).chain(self.frozen.iter().map(|f| f.mem.as_ref()));
        for mem in mems {
            if let Some((lo, hi)) = mem.key_range()
                && overlaps_range(lo, hi, &min, &max)
            {
                lower(mem.min_version());
            }
        }
        let merge = MergeIter::new(inputs.iter().map(|t| t.iter(None, false)).collect());
        let kind = JobKind::Compact {
            level: task.level,
            inputs: tables.len(),
        };
        let work = Work::Compact {
            task,
            merge,
            writer: None,
            outputs: Vec::new(),
            now_ms: now.0,
            grace_ms: self.config.tombstone_grace_ms,
            purge_below,
            purged: 0,
            done: false,
        };
        self.job(kind, tables, work)
    }

    fn take_job(&mut self, job: &Job<D>) -> Result<(), StorageError> {
        if job.instance != self.instance || self.jobs.remove(&job.id).is_none() {
            return Err(StorageError::StaleJob);
        }
        Ok(())
    }

    /// Gives up a job (after a failed step): deletes its partial outputs and frees its tables.
    pub fn abort(&mut self, job: Job<D>) {
        if self.take_job(&job).is_err() {
            return;
        }
        let mut files = job.output_files();
        let writers = match job.work {
            Work::Flush { writer, .. } | Work::Compact { writer, .. } => writer,
            Work::Move { .. } => None,
        };
        if let Some(w) = writers {
            // Best effort: an orphan left behind is deleted at the next open.
            let _ = w.abandon();
        }
        if let JobKind::Flush { .. } = job.kind
            && let Some(f) = self.frozen.front_mut()
        {
            f.flushing = false;
        }
        for f in files.drain(..) {
            // Best effort too: a file no manifest names is deleted at the next open.
            let _ = self.disk.delete(&f);
        }
    }

    /// Commits a finished job: output files made durable, one manifest edit, then the files it
    /// replaced deleted. A disk failure here poisons the engine (reopen to recover).
    pub fn install(&mut self, job: Job<D>) -> Result<(), StorageError> {
        let finished = match &job.work {
            Work::Flush { done, .. } | Work::Compact { done, .. } => *done,
            Work::Move { .. } => true,
        };
        if !finished || job.instance != self.instance || !self.jobs.contains_key(&job.id) {
            return Err(StorageError::StaleJob);
        }
        self.take_job(&job)?;
        match self.install_work(job.work) {
            Ok(()) => Ok(()),
            Err(e) => self.poison(e),
        }
    }

    fn install_work(&mut self, work: Work<D>) -> Result<(), StorageError> {
        let next_table_id = self.next_table_id.load(Ordering::Relaxed);
        let state = self.manifest.state().clone();
        match work {
            Work::Flush { mem, output, .. } => {
                let wal_end_seq = match self.frozen.front() {
                    Some(Frozen {
                        mem: front,
                        wal_end_seq,
                        ..
                    }) if Arc::ptr_eq(front, &mem) => *wal_end_seq,
                    _ => return Err(StorageError::StaleJob),
                };
                let mut edit = Edit {
                    next_table_id,
                    wal_start: wal_end_seq + 1,
                    flushed_lsn: state.flushed_lsn.max(mem.last_lsn()),
                    ..Edit::default()
                };
                if let Some(o) = &output {
                    self.disk.sync_dir()?;
                    edit.added.push((0, o.meta.clone()));
                }
                self.manifest.apply(edit)?;
                self.frozen.pop_front();
                if let Some(o) = output {
                    self.counters.flush_bytes_written += o.meta.file_bytes;
                    self.levels[0].push(o.table);
                }
                self.counters.flushes += 1;
                let obsolete: Vec<u64> = self
                    .wal_segments
                    .range(..=wal_end_seq)
                    .map(|(s, _)| *s)
                    .collect();
                for seq in obsolete {
                    if let Some(bytes) = self.wal_segments.remove(&seq) {
                        self.wal.segments_deleted(bytes);
                    }
                    self.disk.delete(&wal::segment_file_name(seq))?;
                }
            }
            Work::Move { task } => {
                let Some(table) = self.remove_tables(&task.inputs).pop() else {
                    return Err(StorageError::StaleJob);
                };
                let edit = Edit {
                    next_table_id,
                    wal_start: state.wal_start,
                    flushed_lsn: state.flushed_lsn,
                    added: vec![(task.output_level as u8, table.meta().clone())],
                    removed: task.inputs.clone(),
                };
                if let Err(e) = self.manifest.apply(edit) {
                    self.levels[task.level].push(table);
                    self.sort_level(task.level);
                    return Err(e);
                }
                self.cursors[task.level] = table.meta().max_key.clone();
                self.levels[task.output_level].push(table);
                self.sort_level(task.output_level);
                self.counters.trivial_moves += 1;
            }
            Work::Compact {
                task,
                outputs,
                purged,
                ..
            } => {
                self.disk.sync_dir()?;
                let removed: Vec<u64> = task.all_inputs().collect();
                let edit = Edit {
                    next_table_id,
                    wal_start: state.wal_start,
                    flushed_lsn: state.flushed_lsn,
                    added: outputs
                        .iter()
                        .map(|o| (task.output_level as u8, o.meta.clone()))
                        .collect(),
                    removed: removed.clone(),
                };
                self.manifest.apply(edit)?;
                let old = self.remove_tables(&removed);
                let entries_in: u64 = old.iter().map(|t| t.meta().entries).sum();
                let entries_out: u64 = outputs.iter().map(|o| o.meta.entries).sum();
                if let Some(max) = old
                    .iter()
                    .filter(|t| task.inputs.contains(&t.meta().id))
                    .map(|t| t.meta().max_key.clone())
                    .max()
                {
                    self.cursors[task.level] = max;
                }
                for o in outputs {
                    self.counters.compaction_bytes_written += o.meta.file_bytes;
                    self.levels[task.output_level].push(o.table);
                }
                self.sort_level(task.output_level);
                self.counters.compactions += 1;
                self.counters.tombstones_purged += purged;
                self.counters.versions_dropped += entries_in.saturating_sub(entries_out + purged);
                for t in old {
                    self.disk.delete(&table_file_name(t.meta().id))?;
                }
            }
        }
        Ok(())
    }

    fn remove_tables(&mut self, ids: &[u64]) -> Vec<Arc<Table<D>>> {
        let mut removed = Vec::new();
        for level in &mut self.levels {
            level.retain(|t| {
                if ids.contains(&t.meta().id) {
                    removed.push(t.clone());
                    false
                } else {
                    true
                }
            });
        }
        removed
    }

    fn sort_level(&mut self, level: usize) {
        if level == 0 {
            self.levels[0].sort_by_key(|t| t.meta().id);
        } else {
            self.levels[level].sort_by(|a, b| a.meta().min_key.cmp(&b.meta().min_key));
        }
    }
}
