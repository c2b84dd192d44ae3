//! The simulated machines' storage: each node's two engines ([`Lsm`] over [`SimDisk`]) driven
//! as the node asks, with disk latency, group commit (one WAL sync completes every write
//! waiting for it), interval syncs, and flushes and compactions run one step per event.

use super::log::SimEvent;
use super::{Event, Sim};
use crate::node::{Input, StorageOp, StorageResult, StoreId};
use crate::storage::{JobKind, StorageError, SyncPolicy};
use crate::{Millis, NodeId};
use std::collections::BTreeMap;

impl Sim {
    // ---- storage ----------------------------------------------------------------------------

    pub(super) fn storage(&mut self, node: NodeId, op: u64, storage: StorageOp) {
        let incarnation = self.incarnation(node);
        let now = self.now;
        let local = self.local(node);
        let sync = self.config.sync;
        let (write_ms, read_ms, sync_ms) = (
            self.config.disk_write_ms,
            self.config.disk_read_ms,
            self.config.disk_sync_ms,
        );
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return;
        };
        match storage {
            StorageOp::Write { store, key, cell } => {
                let Some(lsm) = sim_node.lsm(store) else {
                    return;
                };
                let mut result = lsm.write(&key, cell.clone());
                if matches!(result, Err(StorageError::WriteStall { .. })) {
                    // Background work fell behind: finish it now, then retry.
                    let _ = lsm.run_background(local);
                    result = lsm.write(&key, cell);
                }
                match result {
                    Ok(_) => {
                        self.log.push(now, SimEvent::DiskWrite { node, store, key });
                        let Some(sim_node) = self.nodes.get_mut(&node) else {
                            return;
                        };
                        if sync.acks_after_sync() {
                            sim_node.sync_waiting.push(op);
                            if !sim_node.sync_scheduled {
                                sim_node.sync_scheduled = true;
                                self.schedule(
                                    Millis(now.0 + sync_ms),
                                    Event::SyncDone { node, incarnation },
                                );
                            }
                        } else {
                            let result = StorageResult::Written;
                            self.schedule(
                                Millis(now.0 + write_ms),
                                Event::StorageDone {
                                    node,
                                    incarnation,
                                    op,
                                    result,
                                },
                            );
                        }
                        self.maybe_start_job(node);
                    }
                    Err(e) => {
                        let result = StorageResult::Failed(e.to_string());
                        self.schedule(
                            Millis(now.0 + write_ms),
                            Event::StorageDone {
                                node,
                                incarnation,
                                op,
                                result,
                            },
                        );
                    }
                }
            }
            StorageOp::Read { key } => {
                let result = match sim_node.data.as_ref().map(|l| l.get(&key)) {
                    Some(Ok(cell)) => StorageResult::Read(cell),
                    Some(Err(e)) => StorageResult::Failed(e.to_string()),
                    None => return,
                };
                self.schedule(
                    Millis(now.0 + read_ms),
                    Event::StorageDone {
                        node,
                        incarnation,
                        op,
                        result,
                    },
                );
            }
            StorageOp::ScanHints { owner, limit } => {
                let start = owner.0.to_be_bytes();
                let end = owner.0.checked_add(1).map(|e| e.to_be_bytes());
                let result = match sim_node
                    .hints
                    .as_ref()
                    .map(|l| l.scan(&start, end.as_ref().map(|e| &e[..]), usize::MAX))
                {
                    Some(Ok(entries)) => StorageResult::Hints(
                        entries
                            .into_iter()
                            .filter(|(_, c)| !c.is_tombstone())
                            .take(limit)
                            .collect(),
                    ),
                    Some(Err(e)) => StorageResult::Failed(e.to_string()),
                    None => return,
                };
                self.schedule(
                    Millis(now.0 + read_ms),
                    Event::StorageDone {
                        node,
                        incarnation,
                        op,
                        result,
                    },
                );
            }
            StorageOp::CountHints => {
                let mut counts = BTreeMap::new();
                if let Some(Ok(entries)) = sim_node
                    .hints
                    .as_ref()
                    .map(|l| l.scan(&[0], None, usize::MAX))
                {
                    for (key, cell) in entries {
                        if let (false, Some(owner)) = (cell.is_tombstone(), key.get(..4)) {
                            let mut id = [0u8; 4];
                            id.copy_from_slice(owner);
                            *counts.entry(NodeId(u32::from_be_bytes(id))).or_insert(0u64) += 1;
                        }
                    }
                }
                let result = StorageResult::HintCounts(counts);
                self.schedule(
                    Millis(now.0 + read_ms),
                    Event::StorageDone {
                        node,
                        incarnation,
                        op,
                        result,
                    },
                );
            }
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
                failed = Some(e.to_string());
            }
        }
        self.log.push(
            self.now,
            SimEvent::DiskSync {
                node,
                writes: waiting.len(),
            },
        );
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
