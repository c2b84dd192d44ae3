//! The simulated machines' storage: each node's two engines ([`Lsm`] over [`SimDisk`]) driven
//! as the node asks, with disk latency, group commit (one WAL sync completes every write
//! waiting for it), interval syncs, and flushes and compactions run one step per event.

use super::log::SimEvent;
use super::{Event, Sim};
use crate::node::{Input, StorageOp, StorageResult, StoreId, run_read};
use crate::storage::{JobKind, StorageError, StorageFailure, SyncPolicy};
use crate::{Millis, NodeId};

impl<D: super::MachineDisk> Sim<D> {
    /// Runs one storage operation for `node`. Reads and, unless every write waits for a sync,
    /// writes complete after the disk's latency; under `SyncPolicy::Always` a write joins the
    /// group waiting for the next WAL sync.
    pub(super) fn storage(&mut self, node: NodeId, op: u64, storage: StorageOp) {
        let local = self.local(node);
        let (write_ms, read_ms) = (self.config.disk_write_ms, self.config.disk_read_ms);
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return;
        };
        let (delay_ms, result) = match storage {
            StorageOp::Write { store, key, cell } => {
                let Some(lsm) = sim_node.lsm(store) else {
                    return;
                };
                match write_retrying(lsm, vec![(key.clone(), cell)], local) {
                    Ok(()) => {
                        self.log
                            .push(self.now, SimEvent::DiskWrite { node, store, key });
                        return self.write_applied(node, op);
                    }
                    Err(e) => (write_ms, StorageResult::Failed(e.into())),
                }
            }
            StorageOp::WriteBatch { entries } => {
                let Some(lsm) = sim_node.data.as_mut() else {
                    return;
                };
                match write_retrying(lsm, entries, local) {
                    Ok(()) => return self.write_applied(node, op),
                    Err(e) => (write_ms, StorageResult::Failed(e.into())),
                }
            }
            read => {
                let (Some(data), Some(hints)) = (sim_node.data.as_ref(), sim_node.hints.as_ref())
                else {
                    return;
                };
                (read_ms, run_read(data, hints, read))
            }
        };
        self.complete_storage(node, op, delay_ms, result);
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

    /// A write reached the WAL and memtable: under `SyncPolicy::Always` it waits for the next
    /// group sync, otherwise it completes after the disk's write latency.
    fn write_applied(&mut self, node: NodeId, op: u64) {
        if self.config.sync.acks_after_sync() {
            self.wait_for_sync(node, op);
            return self.maybe_start_job(node);
        }
        self.maybe_start_job(node);
        self.complete_storage(node, op, self.config.disk_write_ms, StorageResult::Written);
    }

    /// Adds a write to the group waiting for `node`'s next WAL sync, scheduling that sync.
    fn wait_for_sync(&mut self, node: NodeId, op: u64) {
        let incarnation = self.incarnation(node);
        let at = Millis(self.now.0 + self.config.disk_sync_ms);
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return;
        };
        sim_node.sync_waiting.push(op);
        if !sim_node.sync_scheduled {
            sim_node.sync_scheduled = true;
            self.schedule(at, Event::SyncDone { node, incarnation });
        }
    }

    /// Group commit: one WAL sync per store makes every waiting write durable at once.
    pub(super) fn sync_done(&mut self, node: NodeId) {
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return;
        };
        sim_node.sync_scheduled = false;
        let waiting = std::mem::take(&mut sim_node.sync_waiting);
        let mut failed = None;
        for store in [StoreId::Data, StoreId::Hints] {
            if let Some(lsm) = sim_node.lsm(store)
                && let Err(e) = lsm.sync_wal()
            {
                failed = Some(StorageFailure::from(&e));
            }
        }
        self.log.push(
            self.now,
            SimEvent::DiskSync {
                node,
                writes: waiting.len(),
            },
        );
        // The sync belongs to every operation whose write it made durable.
        let mut ops: Vec<_> = waiting
            .iter()
            .filter_map(|op| self.tags.storage(node, *op))
            .collect();
        ops.sort_unstable();
        ops.dedup();
        for op in ops {
            self.tag_last_entry(Some(op));
        }
        for op in waiting {
            let result = match &failed {
                None => StorageResult::Written,
                Some(e) => StorageResult::Failed(e.clone()),
            };
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
                if let Some(lsm) = sim_node.lsm(store) {
                    let _ = lsm.sync_wal_at(local);
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
                self.maybe_start_job(node);
            }
            Err(_) => {
                if let Some(lsm) = sim_node.lsm(store) {
                    lsm.abort(job);
                }
            }
        }
    }
}

/// Applies a batch; when background work has fallen behind (a write stall), finishes it at
/// once and retries, as a host waiting for its flush threads would.
fn write_retrying<D: crate::storage::Disk>(
    lsm: &mut crate::storage::Lsm<D>,
    batch: Vec<(Vec<u8>, crate::storage::Cell)>,
    now: Millis,
) -> Result<(), StorageError> {
    match lsm.write_batch(batch.clone()) {
        Err(StorageError::WriteStall { .. }) => {
            lsm.run_background(now)?;
            lsm.write_batch(batch).map(|_| ())
        }
        other => other.map(|_| ()),
    }
}
