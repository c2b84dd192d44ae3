//! The simulated machines' storage: each node's two engines ([`Lsm`](crate::storage::Lsm) over
//! [`SimDisk`](crate::storage::SimDisk)) driven as the node asks, with disk latency, group
//! commit (one WAL sync per store completes every write of that store waiting for it), interval
//! syncs, and flushes and compactions run one step per event.
//!
//! What each operation does and how it completes is the core's shared storage code
//! ([`crate::node::apply_write`], [`crate::node::SyncWaiters`], [`crate::node::run_read`]), the
//! same the native node runs: this module only decides *when* (after the modelled latencies).
//! A write that finds writes stalled behind flushes waits, with every write after it, until a
//! background job is installed (back-pressure, as a native writer thread waits); a failed
//! sync fails only the writes of the store it synced. A failed interval sync is not ignored:
//! it poisons the engine (as on a native node), and every later write of that store is refused.

use super::log::SimEvent;
use super::{Event, Sim};
use crate::node::{
    Input, StorageOp, StorageResult, StoreId, WriteOutcome, apply_write, run_read, sync_completions,
};
use crate::storage::{Cell, JobKind, StorageFailure, SyncPolicy};
use crate::{Millis, NodeId};

/// A batch to write, and the key the trace shows for it (a single write's).
type LoggedBatch = (Vec<(Vec<u8>, Cell)>, Option<Vec<u8>>);

/// A write waiting for a stalled store: its operation, store and batch.
pub(super) type StalledWrite = (u64, StoreId, LoggedBatch);

impl<D: super::MachineDisk> Sim<D> {
    /// Runs one storage operation for `node`. Reads complete after the disk's read latency;
    /// writes as [`apply_write`] says (see the module docs).
    pub(super) fn storage(&mut self, node: NodeId, op: u64, storage: StorageOp) {
        let read_ms = self.config.disk_read_ms;
        // The trace shows a client's or replica's single write, not a stream's batches.
        let logged = match &storage {
            StorageOp::Write { key, .. } => Some(key.clone()),
            _ => None,
        };
        let read = match storage.into_write() {
            Ok((store, batch)) => return self.write(node, op, store, (batch, logged)),
            Err(read) => read,
        };
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return;
        };
        let (Some(data), Some(hints)) = (sim_node.data.as_ref(), sim_node.hints.as_ref()) else {
            return;
        };
        let result = run_read(data, hints, read);
        self.complete_storage(node, op, read_ms, result);
    }

    /// Applies a write, or queues it behind writes already waiting for a stalled store.
    fn write(&mut self, node: NodeId, op: u64, store: StoreId, batch: LoggedBatch) {
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return;
        };
        if !sim_node.stalled.is_empty() {
            sim_node.stalled.push_back((op, store, batch));
            return;
        }
        self.apply_write(node, op, store, batch);
    }

    /// Applies a write now; `false` if it was stalled (then it waits, first in line).
    fn apply_write(&mut self, node: NodeId, op: u64, store: StoreId, batch: LoggedBatch) -> bool {
        let write_ms = self.config.disk_write_ms;
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return true;
        };
        let Some(lsm) = sim_node.lsm(store) else {
            return true;
        };
        let (batch, logged) = batch;
        match apply_write(lsm, batch, |_| {}) {
            WriteOutcome::Applied { lsn, await_sync } => {
                if let Some(key) = logged {
                    self.log
                        .push(self.now, SimEvent::DiskWrite { node, store, key });
                }
                if await_sync {
                    self.wait_for_sync(node, store, op, lsn);
                } else {
                    self.complete_storage(node, op, write_ms, StorageResult::Written);
                }
                self.maybe_start_job(node);
                true
            }
            WriteOutcome::Stalled(batch) => {
                sim_node.stalled.push_front((op, store, (batch, logged)));
                self.maybe_start_job(node);
                false
            }
            WriteOutcome::Failed(e) => {
                let failed = StorageResult::Failed(StorageFailure::from(&e));
                self.complete_storage(node, op, write_ms, failed);
                true
            }
        }
    }

    /// Applies the writes that waited for a stalled store, in order, until one stalls again.
    fn resume_stalled(&mut self, node: NodeId) {
        loop {
            let Some(sim_node) = self.nodes.get_mut(&node) else {
                return;
            };
            let Some((op, store, batch)) = sim_node.stalled.pop_front() else {
                return;
            };
            if !self.apply_write(node, op, store, batch) {
                return;
            }
        }
    }

    /// Feeds `result` back to `node` after `delay_ms` (to the same incarnation only).
    fn complete_storage(&mut self, node: NodeId, op: u64, delay_ms: u64, result: StorageResult) {
        let incarnation = self.incarnation(node);
        let at = Millis(self.now.0 + delay_ms);
        self.schedule(
            at,
            Event::StorageDone {
                node,
                incarnation,
                op,
                result,
            },
        );
    }

    /// Adds a write to the group waiting for its store's next WAL sync, scheduling the node's
    /// next sync.
    fn wait_for_sync(&mut self, node: NodeId, store: StoreId, op: u64, lsn: u64) {
        let incarnation = self.incarnation(node);
        let at = Millis(self.now.0 + self.config.disk_sync_ms);
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return;
        };
        sim_node.sync_waiting.wait(store, op, lsn);
        if !sim_node.sync_scheduled {
            sim_node.sync_scheduled = true;
            self.schedule(at, Event::SyncDone { node, incarnation });
        }
    }

    /// Group commit: one WAL sync per store makes every write of that store waiting for it
    /// durable at once; a store's failed sync fails only its own writes.
    pub(super) fn sync_done(&mut self, node: NodeId) {
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return;
        };
        sim_node.sync_scheduled = false;
        let mut completions = Vec::new();
        for store in [StoreId::Data, StoreId::Hints] {
            if !sim_node.sync_waiting.waiting(store) {
                continue;
            }
            let (ops, _upto) = sim_node.sync_waiting.take(store);
            let result = match sim_node.lsm(store) {
                Some(lsm) => lsm.sync_wal(),
                None => continue,
            };
            completions.extend(sync_completions(ops, &result));
        }
        self.log.push(
            self.now,
            SimEvent::DiskSync {
                node,
                writes: completions.len(),
            },
        );
        // The sync belongs to every operation whose write it made durable.
        let mut ops: Vec<_> = completions
            .iter()
            .filter_map(|(op, _)| self.tags.storage(node, *op))
            .collect();
        ops.sort_unstable();
        ops.dedup();
        for op in ops {
            self.tag_last_entry(Some(op));
        }
        for (op, result) in completions {
            self.input(node, Input::Storage { op, result });
        }
    }

    pub(super) fn interval_sync(&mut self, node: NodeId) {
        let SyncPolicy::IntervalMs(ms) = self.config.sync else {
            return;
        };
        let local = self.local(node);
        let incarnation = self.incarnation(node);
        if let Some(sim_node) = self.nodes.get_mut(&node) {
            for store in [StoreId::Data, StoreId::Hints] {
                let Some(lsm) = sim_node.lsm(store) else {
                    continue;
                };
                match lsm.sync_wal_at(local) {
                    Ok(()) => {}
                    // A failed sync poisoned the engine (writes it acknowledged may be lost,
                    // as the policy allows): every later write of the store is refused with
                    // that reason, as on a native node. A full disk wrote nothing: the
                    // buffered batches wait for the next sync.
                    Err(e) => debug_assert!(
                        lsm.poisoned().is_some() || lsm.write_stalled() || e.is_disk_full(),
                        "{e:?}"
                    ),
                }
            }
        }
        self.log
            .push(self.now, SimEvent::DiskSync { node, writes: 0 });
        self.schedule(
            Millis(self.now.0 + ms),
            Event::IntervalSync { node, incarnation },
        );
    }

    pub(super) fn maybe_start_job(&mut self, node: NodeId) {
        let local = self.local(node);
        let incarnation = self.incarnation(node);
        let step_ms = self.config.job_step_ms;
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return;
        };
        if sim_node.job.is_some() {
            return;
        }
        for store in [StoreId::Data, StoreId::Hints] {
            let Some(lsm) = sim_node.lsm(store) else {
                continue;
            };
            if let Ok(Some(job)) = lsm.next_job(local) {
                sim_node.job = Some((store, job));
                self.schedule(
                    Millis(self.now.0 + step_ms),
                    Event::JobStep { node, incarnation },
                );
                return;
            }
        }
    }

    pub(super) fn job_step(&mut self, node: NodeId) {
        let incarnation = self.incarnation(node);
        let step_ms = self.config.job_step_ms;
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return;
        };
        let Some((store, mut job)) = sim_node.job.take() else {
            return;
        };
        match job.step() {
            Ok(false) => {
                sim_node.job = Some((store, job));
                self.schedule(
                    Millis(self.now.0 + step_ms),
                    Event::JobStep { node, incarnation },
                );
            }
            Ok(true) => {
                let kind = job.kind().clone();
                let installed = sim_node.lsm(store).map(|lsm| lsm.install(job));
                if let Some(Ok(())) = installed {
                    let event = match kind {
                        JobKind::Flush { .. } => SimEvent::Flush { node, store },
                        JobKind::Compact { level, .. } | JobKind::Move { level } => {
                            SimEvent::Compaction { node, store, level }
                        }
                    };
                    self.log.push(self.now, event);
                }
                self.resume_stalled(node);
                self.maybe_start_job(node);
            }
            Err(_) => {
                if let Some(lsm) = sim_node.lsm(store) {
                    lsm.abort(job);
                }
                // Writes may wait for this flush: try again (a step later).
                self.maybe_start_job(node);
            }
        }
    }
}
