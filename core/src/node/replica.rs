//! The replica side, and hinted handoff.
//!
//! A replica applies a [`Message::Replicate`] through its storage engine (WAL, then memtable;
//! LWW, so an older version does not win) and acknowledges once the write is as durable as its
//! sync policy requires; it answers a [`Message::Read`] with its newest cell.
//!
//! **Hinted handoff.** A node that receives a write with `hint_for: Some(owner)` stands in for
//! an owner believed down: it stores the write durably in its *hint store* under
//! `owner id (4 bytes, big-endian) ++ key` and counts it. Every `hint_replay_interval_ms`, and
//! as soon as an owner is seen up again, it scans that owner's hints and sends each back as a
//! write (purpose `HintReplay`, with the write's original version, so LWW is unchanged); when
//! the owner acknowledges, the hint is marked consumed. Hints are bounded in number
//! (`hints_max`: past it, a hinted write is refused and does not count towards W) and in age
//! (`hint_ttl_ms`: older hints are dropped, not replayed, because replaying a write older than
//! the tombstone grace period could resurrect a purged delete).
//!
//! A hint's stored value is the original cell, encoded with postcard; the hint store's own
//! version of the entry is the original version. Consuming a hint writes a tombstone at
//! `Version { ts: original ts, node: NodeId::HINT_CONSUMED }`, which beats the hint it consumes
//! but not a newer hint for the same key.

use super::{Node, NodeEvent, StorageOp, StorageResult, StorageWait, StoreId, Timer};
use crate::storage::{Cell, Version};
use crate::wire::{Message, ReplicaError, ReqId, WritePurpose};
use crate::{Millis, NodeId};
use std::collections::BTreeMap;

impl NodeId {
    /// Reserved: the writer of hint-consumed markers in the hint store. No node has this id.
    pub const HINT_CONSUMED: NodeId = NodeId(u32::MAX);
}

/// The hint-store key of `key` held for `owner`.
pub fn hint_key(owner: NodeId, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len());
    out.extend_from_slice(&owner.0.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// Splits a hint-store key into owner and key.
pub fn split_hint_key(hint_key: &[u8]) -> Option<(NodeId, &[u8])> {
    let (owner, key) = hint_key.split_at_checked(4)?;
    let owner = u32::from_be_bytes(owner.try_into().ok()?);
    Some((NodeId(owner), key))
}

/// Hint bookkeeping: how many hints each owner has here, and replays in flight.
#[derive(Debug, Default)]
pub(super) struct HintBook {
    counts: BTreeMap<NodeId, u64>,
    /// Replay request seq -> (owner, hint-store key, original cell).
    replays: BTreeMap<u64, (NodeId, Vec<u8>, Cell)>,
    /// Owners whose hints are being scanned.
    scanning: std::collections::BTreeSet<NodeId>,
}

impl HintBook {
    pub(super) fn counts(&self) -> &BTreeMap<NodeId, u64> {
        &self.counts
    }

    pub(super) fn set_counts(&mut self, counts: BTreeMap<NodeId, u64>) {
        self.counts = counts.into_iter().filter(|(_, c)| *c > 0).collect();
    }

    fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub(super) fn is_replay(&self, seq: u64) -> bool {
        self.replays.contains_key(&seq)
    }
}

fn encode_hint(cell: &Cell) -> Vec<u8> {
    postcard::to_allocvec(cell).unwrap_or_default()
}

/// The original cell a hint-store value holds (`None` if the bytes are not one).
pub fn decode_hint(bytes: &[u8]) -> Option<Cell> {
    postcard::from_bytes(bytes).ok()
}

impl Node {
    pub(super) fn on_replicate(
        &mut self,
        now: Millis,
        from: NodeId,
        req: ReqId,
        key: Vec<u8>,
        cell: Cell,
        hint_for: Option<NodeId>,
    ) {
        match hint_for {
            Some(owner) if owner != self.config.id => {
                if self.hints.total() >= self.config.hints_max {
                    self.event(NodeEvent::HintDropped {
                        owner,
                        key: key.clone(),
                        reason: format!("hint store full ({} hints)", self.config.hints_max),
                    });
                    let msg = Message::ReplicateAck {
                        req,
                        result: Err(ReplicaError::HintsFull),
                    };
                    return self.send(from, msg);
                }
                let stored = Cell::put(cell.version, encode_hint(&cell));
                let wait = StorageWait::ReplicaWrite {
                    coordinator: from,
                    req,
                    hint: Some((owner, key.clone())),
                };
                let op = StorageOp::Write {
                    store: StoreId::Hints,
                    key: hint_key(owner, &key),
                    cell: stored,
                };
                self.storage_op(op, wait);
            }
            _ => {
                self.forward_if_handed_over(now, &key, &cell);
                let wait = StorageWait::ReplicaWrite {
                    coordinator: from,
                    req,
                    hint: None,
                };
                self.storage_op(
                    StorageOp::Write {
                        store: StoreId::Data,
                        key,
                        cell,
                    },
                    wait,
                );
            }
        }
    }

    pub(super) fn on_replica_write_done(
        &mut self,
        coordinator: NodeId,
        req: ReqId,
        hint: Option<(NodeId, Vec<u8>)>,
        result: StorageResult,
    ) {
        let result = match result {
            StorageResult::Written => {
                if let Some((owner, key)) = hint {
                    *self.hints.counts.entry(owner).or_insert(0) += 1;
                    self.event(NodeEvent::HintStored { owner, key });
                }
                Ok(())
            }
            StorageResult::Failed(why) => Err(ReplicaError::Storage(why)),
            other => Err(ReplicaError::Storage(format!(
                "unexpected storage result {other:?}"
            ))),
        };
        self.send(coordinator, Message::ReplicateAck { req, result });
    }

    pub(super) fn on_read(&mut self, from: NodeId, req: ReqId, key: Vec<u8>) {
        self.storage_op(
            StorageOp::Read { key },
            StorageWait::ReplicaRead {
                coordinator: from,
                req,
            },
        );
    }

    pub(super) fn on_replica_read_done(
        &mut self,
        coordinator: NodeId,
        req: ReqId,
        result: StorageResult,
    ) {
        let result = match result {
            StorageResult::Read(cell) => Ok(cell),
            StorageResult::Failed(why) => Err(ReplicaError::Storage(why)),
            other => Err(ReplicaError::Storage(format!(
                "unexpected storage result {other:?}"
            ))),
        };
        self.send(coordinator, Message::ReadReply { req, result });
    }

    pub(super) fn on_hint_replay_timer(&mut self, now: Millis) {
        let owners: Vec<NodeId> = self.hints.counts.keys().copied().collect();
        for owner in owners {
            self.replay_hints_to(now, owner);
        }
        self.set_timer(
            Millis(now.0 + self.config.hint_replay_interval_ms),
            Timer::HintReplay,
        );
    }

    /// Starts handing `owner`'s hints back, if it is up, has hints here, and no replay to it is
    /// already under way.
    pub(super) fn replay_hints_to(&mut self, _now: Millis, owner: NodeId) {
        let has_hints = self.hints.counts.get(&owner).is_some_and(|c| *c > 0);
        let busy = self.hints.scanning.contains(&owner)
            || self.hints.replays.values().any(|(o, _, _)| *o == owner);
        if !has_hints || busy || !self.believes_up(owner) {
            return;
        }
        self.hints.scanning.insert(owner);
        let limit = self.config.hint_replay_batch;
        self.storage_op(
            StorageOp::ScanHints { owner, limit },
            StorageWait::HintScan { owner },
        );
    }

    pub(super) fn on_hint_scan(&mut self, now: Millis, owner: NodeId, result: StorageResult) {
        self.hints.scanning.remove(&owner);
        let StorageResult::Hints(entries) = result else {
            return;
        };
        if entries.is_empty() {
            self.hints.counts.remove(&owner);
            return;
        }
        for (hkey, stored) in entries {
            let Some((_, key)) = split_hint_key(&hkey) else {
                continue;
            };
            let key = key.to_vec();
            let Some(original) = stored.value.as_deref().and_then(decode_hint) else {
                self.consume_hint(owner, hkey, stored.version);
                continue;
            };
            if original.version.ts / 1000 + self.config.hint_ttl_ms < now.0 {
                self.event(NodeEvent::HintDropped {
                    owner,
                    key,
                    reason: format!("older than the hint TTL of {} ms", self.config.hint_ttl_ms),
                });
                self.consume_hint(owner, hkey, stored.version);
                continue;
            }
            let req = self.req_id();
            self.hints
                .replays
                .insert(req.seq, (owner, hkey, original.clone()));
            let msg = Message::Replicate {
                req,
                key,
                cell: original,
                hint_for: None,
                purpose: WritePurpose::HintReplay,
            };
            self.send(owner, msg);
            self.set_timer(
                Millis(now.0 + self.config.request_timeout_ms),
                Timer::RequestTimeout(req.seq),
            );
        }
    }

    pub(super) fn on_hint_replay_ack(
        &mut self,
        _now: Millis,
        seq: u64,
        result: Result<(), ReplicaError>,
    ) {
        let Some((owner, hkey, original)) = self.hints.replays.remove(&seq) else {
            return;
        };
        if result.is_ok() {
            if let Some((_, key)) = split_hint_key(&hkey) {
                self.event(NodeEvent::HintReplayed {
                    owner,
                    key: key.to_vec(),
                });
            }
            self.consume_hint(owner, hkey, original.version);
        }
    }

    /// Forgets a replay whose owner never answered (called from the request timeout).
    pub(super) fn expire_hint_replay(&mut self, seq: u64) -> bool {
        self.hints.replays.remove(&seq).is_some()
    }

    fn consume_hint(&mut self, owner: NodeId, hkey: Vec<u8>, version: Version) {
        if let Some(c) = self.hints.counts.get_mut(&owner) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.hints.counts.remove(&owner);
            }
        }
        let marker = Cell::tombstone(Version {
            ts: version.ts,
            node: NodeId::HINT_CONSUMED,
        });
        self.storage_op(
            StorageOp::Write {
                store: StoreId::Hints,
                key: hkey,
                cell: marker,
            },
            StorageWait::HintConsumed,
        );
    }
}
