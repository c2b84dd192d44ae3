//! The node's storage: what the node task runs itself, and the threads that take what would
//! make it wait, so that a slow disk, a sync or a compaction never stalls the node task.
//!
//! ```text
//!            ┌─ in memory, lock free at once: run here, completed at once ───────────────┐
//!  node task ┤  (a write appended to the WAL buffer and memtable; a read answered from     │
//!            │   the memtables or the block cache)                                        │
//!            │      └─ under --sync always: the WAL buffer written, then ► syncer ─┐  │
//!            │         (1 per store: the fdatasync, one at a time) ─────────────────┤  │
//!            └─ otherwise: try_send ──► data writers (2 threads) ─┐  one fdatasync for ├──┘
//!                          try_send ──► hint writer  (1 thread)  ─┤  every LSN queued │
//!                          try_send ──► readers      (2 threads) ─┤  while the last   │
//!                          try_send ──► scanner      (1 thread)  ─┤  one ran          │
//!  node task ◄── completions (Vec per batch) ─────────────────────┴───────────────────┘
//! ```
//!
//! **Inline first.** Appending a write takes microseconds (the WAL buffer and the memtable) and
//! so does a read that the memtables or the block cache answer; handing either to a thread and
//! back costs more than the work, twice a wake-up of a sleeping thread, and on a busy machine
//! the scheduler's delay on top. So [`StorageThreads::run`] tries them on the node task through
//! [`Store::try_append`] and [`Store::try_get_in_memory`], which never wait (not for the
//! engine's lock, a stalled memtable or a disk read), and queues only what they decline.
//! Large batches (streaming, repair) always go to a writer.
//!
//! **Pipelined group commit.** Under `--sync always` an inline write completes only once it is
//! durable. The node task keeps the writes it appended waiting; once it has handled everything
//! ready, if no sync of that store is running, it starts one ([`StorageThreads::start_syncs`]):
//! it writes the WAL buffer to the OS ([`Store::try_begin_sync`], a write, not a sync) and
//! hands the ticket and the waiting writes to the store's syncer, which runs the `fdatasync`
//! ([`Store::finish_sync`]) and completes them all. Writes appended meanwhile wait for the
//! next one, which starts as soon as this one is done: one sync at a time, each carrying
//! everything that arrived during the last, and the engine's lock is never held across a
//! system call on the syncer's side. (If the lock is taken when the sync should start, the
//! syncer leads it instead, through [`Store::wait_durable`].) At most one job per store is
//! queued for a syncer; the writes waiting are bounded by the requests in flight.
//!
//! Point reads that need the disk and scans (anti-entropy's trees and leaves, streaming, hint
//! replay) have separate queues and threads: a scan walks the key space (a token range's keys
//! are spread over all of it) and would otherwise hold up every GET queued behind it. The
//! scanner serves every range scan it finds queued together with one walk ([`scan_ranges`]):
//! an anti-entropy session loads up to eight leaves at a time.
//!
//! Every queue is bounded ([`STORAGE_QUEUE_MAX`] operations each). The node task never blocks
//! on one: an operation that finds its queue full fails at once
//! ([`StorageResult::Failed`]), which the replica reports to its coordinator as a refusal
//! (Dynamo's quorums cope with a refusal like with a loss). The completion channel is
//! unbounded in type but bounded by construction: it holds at most one batch per operation
//! queued or running, and those are bounded.
//!
//! Reads run [`run_read`], the same code as the simulator's; writes differ only in how they
//! are made durable (here: real group commit through [`Store::wait_durable`]).
//!
//! A writer takes every write queued (up to [`WRITE_BATCH_MAX`]), [`Store::append`]s each, then
//! waits once ([`Store::wait_durable`]) for the last. `ringstore_storage_inline_total` and
//! `ringstore_storage_queued_total` count which way each operation went.
//!
//! **Range scans** cost a walk of the whole store, since keys are ordered by bytes and a token
//! range's keys are spread over all of them. Three things keep that cheap: `Lsm::scan_filtered`
//! walks a bounded step and copies only the keys a filter keeps (at most a page of them); the
//! scanner answers every range scan queued together with one walk; and the data store keeps a
//! token index ([`crate::token_index`]), from which a range with few enough keys (a Merkle leaf, a
//! small vnode range) is answered by point reads of exactly its keys. With 3 nodes at N = 3 every
//! range has the same replicas, so the repair range is the whole ring (a walk) and its 1,024
//! leaves come from the index.

use crate::metrics::Metrics;
use crate::store::{Store, TryAppend};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use ringstore_core::node::{
    StorageOp, StorageResult, StoreId, SyncWaiters, run_read, scan_ranges, sync_completions,
};
use ringstore_core::storage::{Cell, StorageFailure, SyncTicket};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::mpsc::UnboundedSender;

/// Operations queued per queue at most.
pub const STORAGE_QUEUE_MAX: usize = 8_192;
/// Writes applied together before one wait for durability.
pub const WRITE_BATCH_MAX: usize = 1_024;
/// Reads taken together (one completion message for all).
pub const READ_BATCH_MAX: usize = 64;
/// Writes of one batch at most that the node task appends itself (larger ones go to a writer).
pub const INLINE_BATCH_MAX: usize = 64;
const DATA_WRITERS: usize = 2;
const READERS: usize = 2;

/// Completed operations, in one message per batch.
#[derive(Debug, Default)]
pub struct Completions {
    /// Each operation's id and result.
    pub ops: Vec<(u64, StorageResult)>,
    /// Set by a syncer: the node task's sync of this store has finished (it may start the
    /// next).
    pub synced: Option<StoreId>,
}

impl Completions {
    fn of(ops: Vec<(u64, StorageResult)>) -> Completions {
        Completions { ops, synced: None }
    }
}

struct WriteJob {
    op: u64,
    batch: Vec<(Vec<u8>, Cell)>,
}

/// Inline writes for a syncer to make durable.
struct SyncJob {
    /// The writes' operation ids.
    ops: Vec<u64>,
    how: SyncHow,
}

enum SyncHow {
    /// The node task wrote the WAL buffer: run this ticket's `fdatasync`.
    Ticket(SyncTicket),
    /// The node task found the engine locked: wait (and lead a sync) until this LSN is durable.
    Upto(u64),
}

struct ReadJob {
    op: u64,
    storage: StorageOp,
}

/// Handles to the storage threads. Dropping it closes the queues; the threads finish what is
/// queued and exit (join them with [`StorageThreads::join`]).
pub struct StorageThreads {
    data_store: Arc<Store>,
    hint_store: Arc<Store>,
    data: Sender<WriteJob>,
    hints: Sender<WriteJob>,
    data_sync: Sender<SyncJob>,
    hints_sync: Sender<SyncJob>,
    reads: Sender<ReadJob>,
    scans: Sender<ReadJob>,
    threads: Vec<JoinHandle<()>>,
    metrics: Arc<Metrics>,
    /// Inline writes waiting for their store's sync (the core's group-commit bookkeeping).
    unsynced: SyncWaiters,
    /// Per store (data, hints): a sync started by the node task is running.
    sync_in_flight: [bool; 2],
}

fn slot(store: StoreId) -> usize {
    match store {
        StoreId::Data => 0,
        StoreId::Hints => 1,
    }
}

impl StorageThreads {
    /// Starts the threads over the node's two stores; completions go to `done`.
    pub fn start(
        data: Arc<Store>,
        hints: Arc<Store>,
        done: UnboundedSender<Completions>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<StorageThreads> {
        let (data_tx, data_rx) = bounded(STORAGE_QUEUE_MAX);
        let (hints_tx, hints_rx) = bounded(STORAGE_QUEUE_MAX);
        let (reads_tx, reads_rx) = bounded(STORAGE_QUEUE_MAX);
        let (scans_tx, scans_rx) = bounded(STORAGE_QUEUE_MAX);
        let (data_sync_tx, data_sync_rx) = bounded(STORAGE_QUEUE_MAX);
        let (hints_sync_tx, hints_sync_rx) = bounded(STORAGE_QUEUE_MAX);
        let mut threads = Vec::new();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name).spawn(f)
        };
        for i in 0..DATA_WRITERS {
            let (store, rx, done) = (data.clone(), data_rx.clone(), done.clone());
            threads.push(spawn(
                format!("ringstore-data-writer-{i}"),
                Box::new(move || writer(&store, &rx, &done)),
            )?);
        }
        {
            let (store, rx, done) = (hints.clone(), hints_rx, done.clone());
            threads.push(spawn(
                "ringstore-hint-writer".into(),
                Box::new(move || writer(&store, &rx, &done)),
            )?);
        }
        for i in 0..READERS {
            let (data, hints, rx, done) =
                (data.clone(), hints.clone(), reads_rx.clone(), done.clone());
            threads.push(spawn(
                format!("ringstore-reader-{i}"),
                Box::new(move || reader(&data, &hints, &rx, &done)),
            )?);
        }
        {
            let (data, hints, done) = (data.clone(), hints.clone(), done.clone());
            threads.push(spawn(
                "ringstore-scanner".into(),
                Box::new(move || scanner(&data, &hints, &scans_rx, &done)),
            )?);
        }
        for (name, store, id, rx) in [
            ("ringstore-data-syncer", &data, StoreId::Data, data_sync_rx),
            (
                "ringstore-hint-syncer",
                &hints,
                StoreId::Hints,
                hints_sync_rx,
            ),
        ] {
            let (store, done) = (store.clone(), done.clone());
            threads.push(spawn(
                name.into(),
                Box::new(move || syncer(&store, id, &rx, &done)),
            )?);
        }
        Ok(StorageThreads {
            data_store: data,
            hint_store: hints,
            data: data_tx,
            hints: hints_tx,
            data_sync: data_sync_tx,
            hints_sync: hints_sync_tx,
            reads: reads_tx,
            scans: scans_tx,
            threads,
            metrics,
            unsynced: SyncWaiters::default(),
            sync_in_flight: [false; 2],
        })
    }

    /// Runs an operation: at once when it can without waiting (see the module docs), else on a
    /// storage thread. `Some` is its result now; `None` means it comes on the completion
    /// channel. A queue found full fails the operation at once, like a refusal.
    pub fn run(&mut self, op: u64, storage: StorageOp) -> Option<StorageResult> {
        let storage = match storage {
            StorageOp::Read { key } => match self.data_store.try_get_in_memory(&key) {
                Some(result) => {
                    self.metrics.storage_inline.inc();
                    return Some(result.map_or_else(
                        |e| StorageResult::Failed(StorageFailure::from(&e)),
                        StorageResult::Read,
                    ));
                }
                None => StorageOp::Read { key },
            },
            storage => storage,
        };
        let storage = match storage.into_write() {
            Ok((store, batch)) if batch.len() <= INLINE_BATCH_MAX => {
                match self.try_inline_write(op, store, batch) {
                    Ok(done) => return done,
                    Err(batch) => return self.queue_write(op, store, batch),
                }
            }
            Ok((store, batch)) => return self.queue_write(op, store, batch),
            Err(storage) => storage,
        };
        self.metrics.storage_queued.inc();
        let queue = match storage {
            StorageOp::Read { .. } => &self.reads,
            _ => &self.scans,
        };
        let sent = queue.try_send(ReadJob { op, storage });
        sent.err().map(|e| self.full(e))
    }

    /// Appends on the node task. `Ok(Some)`: done (or failed) now; `Ok(None)`: appended, and
    /// the syncer completes it once durable; `Err`: declined, the batch back.
    #[allow(clippy::type_complexity)]
    fn try_inline_write(
        &mut self,
        op: u64,
        store: StoreId,
        batch: Vec<(Vec<u8>, Cell)>,
    ) -> Result<Option<StorageResult>, Vec<(Vec<u8>, Cell)>> {
        let target = match store {
            StoreId::Data => &self.data_store,
            StoreId::Hints => &self.hint_store,
        };
        let lsn = match target.try_append(batch) {
            TryAppend::Appended { lsn, await_sync } => {
                self.metrics.storage_inline.inc();
                if !await_sync {
                    return Ok(Some(StorageResult::Written));
                }
                lsn
            }
            TryAppend::Failed(e) => {
                return Ok(Some(StorageResult::Failed(StorageFailure::from(&e))));
            }
            TryAppend::Busy(batch) => return Err(batch),
        };
        // Appended, acknowledged once a sync covers it (see `start_syncs`).
        self.unsynced.wait(store, op, lsn);
        Ok(None)
    }

    /// Starts a sync of each store that has inline writes waiting and none of the node task's
    /// syncs running: every write appended while the previous sync ran shares this one. The
    /// node task calls it once it has handled what was ready, and again when a sync finishes
    /// (a [`Completions::synced`]). Returns what completed at once (nothing was left to sync,
    /// or the sync could not start).
    pub fn start_syncs(&mut self) -> Vec<(u64, StorageResult)> {
        let mut now = Vec::new();
        for store in [StoreId::Data, StoreId::Hints] {
            if self.sync_in_flight[slot(store)] || !self.unsynced.waiting(store) {
                continue;
            }
            let (target, syncer) = match store {
                StoreId::Data => (&self.data_store, &self.data_sync),
                StoreId::Hints => (&self.hint_store, &self.hints_sync),
            };
            let (ops, upto) = self.unsynced.take(store);
            let how = match target.try_begin_sync() {
                Some(Ok(Some(ticket))) => SyncHow::Ticket(ticket),
                // Another thread's sync covered them already.
                Some(Ok(None)) => {
                    now.extend(ops.into_iter().map(|op| (op, StorageResult::Written)));
                    continue;
                }
                Some(Err(e)) => {
                    now.extend(sync_completions(ops, &Err(e)));
                    continue;
                }
                // The engine is locked: the syncer waits for it instead of the node task.
                None => SyncHow::Upto(upto),
            };
            match syncer.try_send(SyncJob { ops, how }) {
                Ok(()) => self.sync_in_flight[slot(store)] = true,
                // Appended but never acknowledged (it may still become durable, as any write
                // that fails after reaching a replica may).
                Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                    self.metrics.storage_queue_full.inc();
                    let failed = StorageResult::Failed(StorageFailure::Busy(
                        "storage queue full".to_string(),
                    ));
                    now.extend(job.ops.into_iter().map(|op| (op, failed.clone())));
                }
            }
        }
        now
    }

    /// A syncer finished the node task's sync of `store`.
    pub fn sync_done(&mut self, store: StoreId) {
        self.sync_in_flight[slot(store)] = false;
    }

    fn queue_write(
        &self,
        op: u64,
        store: StoreId,
        batch: Vec<(Vec<u8>, Cell)>,
    ) -> Option<StorageResult> {
        self.metrics.storage_queued.inc();
        let queue = match store {
            StoreId::Data => &self.data,
            StoreId::Hints => &self.hints,
        };
        let sent = queue.try_send(WriteJob { op, batch });
        sent.err().map(|e| self.full(e))
    }

    /// The failure of an operation whose queue was full (or closed), counted.
    fn full<T>(&self, _: TrySendError<T>) -> StorageResult {
        self.metrics.storage_queue_full.inc();
        StorageResult::Failed(StorageFailure::Busy("storage queue full".to_string()))
    }

    /// Closes the queues and waits for the threads to finish what was queued.
    pub fn join(self) {
        let StorageThreads {
            data,
            hints,
            data_sync,
            hints_sync,
            reads,
            scans,
            threads,
            ..
        } = self;
        drop((data, hints, data_sync, hints_sync, reads, scans));
        for t in threads {
            let _ = t.join();
        }
    }
}

fn take_batch<T>(rx: &Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = rx.recv().ok()?;
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Group commit: applies every queued write, then waits once for the last one to be durable.
fn writer(store: &Store, rx: &Receiver<WriteJob>, done: &UnboundedSender<Completions>) {
    let acks_after_sync = store.sync_policy().acks_after_sync();
    while let Some(jobs) = take_batch(rx, WRITE_BATCH_MAX) {
        let mut last = None;
        let mut results: Vec<(u64, StorageResult)> = jobs
            .into_iter()
            .map(|job| match store.append(job.batch) {
                Ok(lsn) => {
                    last = Some(last.map_or(lsn, |l: u64| l.max(lsn)));
                    (job.op, StorageResult::Written)
                }
                Err(e) => (job.op, StorageResult::Failed(StorageFailure::from(&e))),
            })
            .collect();
        if acks_after_sync
            && let Some(lsn) = last
            && let Err(e) = store.wait_durable(lsn)
        {
            for (_, result) in &mut results {
                if matches!(result, StorageResult::Written) {
                    *result = StorageResult::Failed(StorageFailure::from(&e));
                }
            }
        }
        if done.send(Completions::of(results)).is_err() {
            return;
        }
    }
}

/// Pipelined group commit, the slow half: runs the node task's syncs one at a time (the node
/// task starts the next only once this one is done, so the writes appended meanwhile share it).
fn syncer(store: &Store, id: StoreId, rx: &Receiver<SyncJob>, done: &UnboundedSender<Completions>) {
    while let Ok(job) = rx.recv() {
        let result = match &job.how {
            SyncHow::Ticket(ticket) => store.finish_sync(ticket),
            SyncHow::Upto(lsn) => store.wait_durable(*lsn),
        };
        let ops = sync_completions(job.ops, &result);
        let completions = Completions {
            ops,
            synced: Some(id),
        };
        if done.send(completions).is_err() {
            return;
        }
    }
}

fn reader(
    data: &Store,
    hints: &Store,
    rx: &Receiver<ReadJob>,
    done: &UnboundedSender<Completions>,
) {
    while let Some(jobs) = take_batch(rx, READ_BATCH_MAX) {
        let results = jobs
            .into_iter()
            .map(|job| (job.op, run_read(data, hints, job.storage)))
            .collect();
        if done.send(Completions::of(results)).is_err() {
            return;
        }
    }
}

/// Like [`reader`], but a narrow range scan is answered from the data store's token index
/// ([`Store::scan_range_indexed`]) and the other range scans of a batch share one walk.
fn scanner(
    data: &Store,
    hints: &Store,
    rx: &Receiver<ReadJob>,
    done: &UnboundedSender<Completions>,
) {
    while let Some(jobs) = take_batch(rx, READ_BATCH_MAX) {
        let mut results = Vec::with_capacity(jobs.len());
        let mut ranges = Vec::new();
        let mut range_ops = Vec::new();
        for job in jobs {
            match job.storage {
                StorageOp::ScanRange {
                    range,
                    after,
                    limit,
                } => match data.scan_range_indexed(range, after.as_deref(), limit) {
                    Some(Ok((entries, next))) => {
                        results.push((job.op, StorageResult::Range { entries, next }));
                    }
                    Some(Err(e)) => {
                        results.push((job.op, StorageResult::Failed(StorageFailure::from(&e))))
                    }
                    None => {
                        range_ops.push(job.op);
                        ranges.push((range, after, limit));
                    }
                },
                storage => results.push((job.op, run_read(data, hints, storage))),
            }
        }
        match scan_ranges(data, ranges) {
            Ok(pages) => results.extend(
                range_ops
                    .into_iter()
                    .zip(pages)
                    .map(|(op, (entries, next))| (op, StorageResult::Range { entries, next })),
            ),
            Err(e) => results.extend(
                range_ops
                    .into_iter()
                    .map(|op| (op, StorageResult::Failed(StorageFailure::from(&e)))),
            ),
        }
        if done.send(Completions::of(results)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::NodeId;
    use ringstore_core::storage::{LsmConfig, SyncPolicy, Version};
    use tokio::sync::mpsc::UnboundedReceiver;

    const V: Version = Version {
        ts_micros: 5,
        node: NodeId(1),
    };

    fn start(
        dir: &std::path::Path,
        sync: SyncPolicy,
    ) -> (
        Arc<Store>,
        StorageThreads,
        UnboundedReceiver<Completions>,
        Arc<Metrics>,
    ) {
        let config = LsmConfig {
            sync,
            ..LsmConfig::default()
        };
        let open = |name: &str| Arc::new(Store::open(&dir.join(name), config.clone()).unwrap());
        let (data, hints) = (open("data"), open("hints"));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let metrics = Arc::new(Metrics::new());
        let threads = StorageThreads::start(data.clone(), hints, tx, metrics.clone()).unwrap();
        (data, threads, rx, metrics)
    }

    fn write(i: u64) -> StorageOp {
        StorageOp::Write {
            store: StoreId::Data,
            key: format!("k{i}").into_bytes(),
            cell: Cell::put(V, b"v".to_vec()),
        }
    }

    fn read(key: &str) -> StorageOp {
        StorageOp::Read {
            key: key.as_bytes().to_vec(),
        }
    }

    /// Waits for `count` completions, starting syncs as the node task does.
    fn completions(
        threads: &mut StorageThreads,
        rx: &mut UnboundedReceiver<Completions>,
        count: usize,
    ) -> Vec<(u64, StorageResult)> {
        let mut all = Vec::new();
        let mut syncs = 0;
        loop {
            all.extend(threads.start_syncs());
            if all.len() >= count {
                break;
            }
            let done = rx.blocking_recv().unwrap();
            if let Some(store) = done.synced {
                syncs += 1;
                threads.sync_done(store);
            }
            all.extend(done.ops);
        }
        assert!(syncs <= count, "at most a sync per write");
        all
    }

    #[test]
    fn under_sync_always_inline_writes_complete_only_once_durable_and_reads_see_them() {
        let dir = tempfile::tempdir().unwrap();
        let (data, mut threads, mut rx, metrics) = start(dir.path(), SyncPolicy::Always);
        for i in 0..100u64 {
            // Appended at once, completed by the syncer.
            assert_eq!(threads.run(i, write(i)), None);
        }
        let before = data.stats();
        assert_eq!(
            before.durable_lsn, 0,
            "nothing is synced before the node task asks"
        );
        let done = completions(&mut threads, &mut rx, 100);
        assert_eq!(done.len(), 100);
        assert!(done.iter().all(|(_, r)| *r == StorageResult::Written));
        let stats = data.stats();
        assert_eq!(stats.durable_lsn, stats.last_lsn, "completed means durable");
        assert_eq!(
            stats.wal_syncs, 1,
            "all of them appended before it share one sync"
        );
        // A write appended while a sync runs waits for the next one.
        assert_eq!(threads.run(200, write(200)), None);
        assert!(threads.start_syncs().is_empty());
        assert_eq!(threads.run(201, write(201)), None);
        assert!(threads.start_syncs().is_empty(), "one sync at a time");
        let done = completions(&mut threads, &mut rx, 2);
        assert!(done.iter().all(|(_, r)| *r == StorageResult::Written));
        assert_eq!(data.stats().durable_lsn, data.stats().last_lsn);
        // In the memtable: answered on the spot.
        assert_eq!(
            threads.run(1000, read("k7")),
            Some(StorageResult::Read(Some(Cell::put(V, b"v".to_vec()))))
        );
        assert_eq!(
            threads.run(1001, read("absent")),
            Some(StorageResult::Read(None))
        );
        assert_eq!(metrics.storage_inline.get(), 104);
        assert_eq!(metrics.storage_queued.get(), 0);
        threads.join();
    }

    #[test]
    fn what_would_wait_goes_to_the_threads_with_the_same_answers() {
        let dir = tempfile::tempdir().unwrap();
        let (data, mut threads, mut rx, metrics) = start(dir.path(), SyncPolicy::Never);
        // Without syncs to wait for, an inline write is done at once.
        assert_eq!(threads.run(1, write(1)), Some(StorageResult::Written));
        // A large batch (streaming, repair) goes to a writer.
        let entries: Vec<_> = (100..100 + INLINE_BATCH_MAX as u64 + 1)
            .map(|i| (format!("k{i}").into_bytes(), Cell::put(V, b"w".to_vec())))
            .collect();
        assert_eq!(threads.run(2, StorageOp::WriteBatch { entries }), None);
        assert_eq!(
            completions(&mut threads, &mut rx, 1),
            vec![(2, StorageResult::Written)]
        );
        assert_eq!(metrics.storage_queued.get(), 1);
        // Flushed to a table whose blocks are not cached: the read needs the disk, so a
        // reader answers it; that read cached the block, so the next is answered inline.
        data.flush().unwrap();
        let want = Some(StorageResult::Read(Some(Cell::put(V, b"v".to_vec()))));
        assert_eq!(threads.run(3, read("k1")), None);
        assert_eq!(
            completions(&mut threads, &mut rx, 1),
            vec![(3, want.clone().unwrap())]
        );
        assert_eq!(metrics.storage_queued.get(), 2);
        assert_eq!(threads.run(4, read("k1")), want);
        // Scans always go to the scanner.
        assert_eq!(threads.run(5, StorageOp::CountHints), None);
        assert!(matches!(
            completions(&mut threads, &mut rx, 1)[..],
            [(5, StorageResult::HintKeys(_))]
        ));
        threads.join();
    }
}
