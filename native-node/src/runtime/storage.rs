//! The node's storage threads: where the core's [`StorageOp`]s run, so that a slow disk, a
//! sync or a compaction never stalls the node task.
//!
//! ```text
//!  node task ──try_send──► data writers (2 threads) ─┐   each takes every queued write (up
//!            ──try_send──► hint writer  (1 thread)  ─┤   to WRITE_BATCH_MAX), appends them,
//!            ──try_send──► readers      (2 threads) ─┤   then one wait_durable for the last:
//!            ──try_send──► scanner      (1 thread)  ─┤   one fdatasync for the whole group
//!  node task ◄── completions (Vec per batch) ─────────┘
//! ```
//!
//! Point reads (a client's GET at a replica) and scans (anti-entropy's trees and leaves,
//! streaming, hint replay) have separate queues and threads: a scan walks the key space (a
//! token range's keys are spread over all of it) and would otherwise hold up every GET queued
//! behind it. The scanner serves every range scan it finds queued together with one walk
//! ([`scan_ranges`]): an anti-entropy session loads up to eight leaves at a time.
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

use crate::store::Store;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use ringstore_core::node::{StorageOp, StorageResult, StoreId, run_read, scan_ranges};
use ringstore_core::storage::Cell;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::mpsc::UnboundedSender;

/// Operations queued per queue at most.
pub const STORAGE_QUEUE_MAX: usize = 8_192;
/// Writes applied together before one wait for durability.
pub const WRITE_BATCH_MAX: usize = 1_024;
/// Reads taken together (one completion message for all).
pub const READ_BATCH_MAX: usize = 64;
const DATA_WRITERS: usize = 2;
const READERS: usize = 2;

/// Completed operations, in one message per batch.
pub type Completions = Vec<(u64, StorageResult)>;

struct WriteJob {
    op: u64,
    batch: Vec<(Vec<u8>, Cell)>,
}

struct ReadJob {
    op: u64,
    storage: StorageOp,
}

/// Handles to the storage threads. Dropping it closes the queues; the threads finish what is
/// queued and exit (join them with [`StorageThreads::join`]).
pub struct StorageThreads {
    data: Sender<WriteJob>,
    hints: Sender<WriteJob>,
    reads: Sender<ReadJob>,
    scans: Sender<ReadJob>,
    threads: Vec<JoinHandle<()>>,
}

impl StorageThreads {
    /// Starts the threads over the node's two stores; completions go to `done`.
    pub fn start(
        data: Arc<Store>,
        hints: Arc<Store>,
        done: UnboundedSender<Completions>,
    ) -> std::io::Result<StorageThreads> {
        let (data_tx, data_rx) = bounded(STORAGE_QUEUE_MAX);
        let (hints_tx, hints_rx) = bounded(STORAGE_QUEUE_MAX);
        let (reads_tx, reads_rx) = bounded(STORAGE_QUEUE_MAX);
        let (scans_tx, scans_rx) = bounded(STORAGE_QUEUE_MAX);
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
        Ok(StorageThreads {
            data: data_tx,
            hints: hints_tx,
            reads: reads_tx,
            scans: scans_tx,
            threads,
        })
    }

    /// Queues an operation; if its queue is full, gives back the failure to feed the node.
    pub fn submit(&self, op: u64, storage: StorageOp) -> Result<(), StorageResult> {
        let full = || StorageResult::Failed("storage queue full".to_string());
        let sent = match storage.into_write() {
            Ok((store, batch)) => {
                let queue = match store {
                    StoreId::Data => &self.data,
                    StoreId::Hints => &self.hints,
                };
                queue.try_send(WriteJob { op, batch }).map_err(is_full)
            }
            Err(storage) => {
                let queue = match storage {
                    StorageOp::Read { .. } => &self.reads,
                    _ => &self.scans,
                };
                queue.try_send(ReadJob { op, storage }).map_err(is_full)
            }
        };
        sent.map_err(|_| full())
    }

    /// Closes the queues and waits for the threads to finish what was queued.
    pub fn join(self) {
        let StorageThreads {
            data,
            hints,
            reads,
            scans,
            threads,
        } = self;
        drop((data, hints, reads, scans));
        for t in threads {
            let _ = t.join();
        }
    }
}

fn is_full<T>(_: TrySendError<T>) {}

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
        let mut results: Completions = jobs
            .into_iter()
            .map(|job| match store.append(job.batch) {
                Ok(lsn) => {
                    last = Some(last.map_or(lsn, |l: u64| l.max(lsn)));
                    (job.op, StorageResult::Written)
                }
                Err(e) => (job.op, StorageResult::Failed(e.to_string())),
            })
            .collect();
        if acks_after_sync
            && let Some(lsn) = last
            && let Err(e) = store.wait_durable(lsn)
        {
            for (_, result) in &mut results {
                if matches!(result, StorageResult::Written) {
                    *result = StorageResult::Failed(e.to_string());
                }
            }
        }
        if done.send(results).is_err() {
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
        if done.send(results).is_err() {
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
                    Some(Err(e)) => results.push((job.op, StorageResult::Failed(e.to_string()))),
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
                    .map(|op| (op, StorageResult::Failed(e.to_string()))),
            ),
        }
        if done.send(results).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::NodeId;
    use ringstore_core::storage::{LsmConfig, Version};

    #[test]
    fn writes_are_durable_before_they_complete_and_reads_see_them() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            Arc::new(Store::open(&dir.path().join(name), LsmConfig::default()).unwrap())
        };
        let (data, hints) = (open("data"), open("hints"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let threads = StorageThreads::start(data.clone(), hints.clone(), tx).unwrap();
        let v = Version {
            ts: 5,
            node: NodeId(1),
        };
        for i in 0..100u64 {
            let op = StorageOp::Write {
                store: StoreId::Data,
                key: format!("k{i}").into_bytes(),
                cell: Cell::put(v, b"v".to_vec()),
            };
            threads.submit(i, op).unwrap();
        }
        let mut written = 0;
        while written < 100 {
            let batch = rx.blocking_recv().unwrap();
            for (_, r) in batch {
                assert_eq!(r, StorageResult::Written);
                written += 1;
            }
        }
        let stats = data.stats();
        assert_eq!(stats.durable_lsn, stats.last_lsn, "completed means durable");
        threads
            .submit(
                1000,
                StorageOp::Read {
                    key: b"k7".to_vec(),
                },
            )
            .unwrap();
        let batch = rx.blocking_recv().unwrap();
        assert_eq!(
            batch,
            vec![(1000, StorageResult::Read(Some(Cell::put(v, b"v".to_vec()))))]
        );
        threads.join();
    }
}
