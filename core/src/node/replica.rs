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
//! the owner acknowledges, the hint is marked consumed. The node counts the hints it holds per
//! owner as the set of their hint-store keys (listed from the store at start, then kept as hints
//! are stored and consumed), so a second write to a key already hinted for the same owner, which
//! replaces the hint, is not counted twice. Hints are bounded in number
//! (`hints_max`: past it, a hinted write is refused and does not count towards W) and in age
//! (`hint_ttl_ms`: older hints are dropped, not replayed, because replaying a write older than
//! the tombstone grace period could resurrect a purged delete).
//!
//! **Writes a node hands on.** A data write for a key this node is handing over, or no longer
//! replicates (see `stream.rs`), is stored in the data store and as a hint for each node
//! [`Node::handover_receivers`] names, in one *ack group*: the coordinator is acknowledged once
//! every write of the group is durable (or told the first failure). A leaving node replays
//! every hint it holds before it leaves: to the owner when it is up, otherwise to another
//! stand-in (`hint_for` kept), and a hint whose owner is no longer in the ring goes to the
//! key's first live replica instead.
//!
//! A hint's stored value is the original cell, encoded with postcard; the hint store's own
//! version of the entry is the original version. The encoding adds at most
//! [`HINT_OVERHEAD_BYTES`] to the value, and the hint store accepts values that much larger than
//! the data store ([`hint_store_config`]), so any value a client may write can be hinted; the
//! largest value a client may write is [`CLIENT_VALUE_BYTES_MAX`], short of the engine's
//! [`VALUE_BYTES_LIMIT`] by that overhead. A hint the node cannot store (refused by its store,
//! or the hint store full) is reported with [`NodeEvent::HintDropped`]. Consuming a hint writes a tombstone at
//! `Version { ts_micros: original ts_micros, node: NodeId::HINT_CONSUMED }`, which beats the hint it consumes
//! but not a newer hint for the same key.

use super::{Lifecycle, Node, NodeEvent, StorageOp, StorageResult, StorageWait, StoreId, Timer};
use crate::ring::key_token;
use crate::storage::{Cell, LsmConfig, StorageFailure, VALUE_BYTES_LIMIT, Version};
use crate::wire::{Message, ReplicaError, ReqId, WritePurpose};
use crate::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet};

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

/// Bytes a hint's stored value takes at most beyond the value it holds: postcard's encoding of
/// the cell's version (a varint `u64` and `u32`, at most 15 bytes), the option tag (1) and the
/// value's length (a varint, at most 10).
pub const HINT_OVERHEAD_BYTES: usize = 32;

/// The largest value a client may write: every value must fit in a hint, which is
/// [`HINT_OVERHEAD_BYTES`] longer, under the engine's [`VALUE_BYTES_LIMIT`].
pub const CLIENT_VALUE_BYTES_MAX: usize = VALUE_BYTES_LIMIT - HINT_OVERHEAD_BYTES;

/// The hint store's engine configuration, from the data store's: values up to
/// [`HINT_OVERHEAD_BYTES`] larger (a hint holds an encoded cell), and no tombstone grace (a
/// consumed hint is never read again).
pub fn hint_store_config(data: &LsmConfig) -> LsmConfig {
    LsmConfig {
        tombstone_grace_ms: 0,
        value_bytes_max: data
            .value_bytes_max
            .saturating_add(HINT_OVERHEAD_BYTES)
            .min(VALUE_BYTES_LIMIT),
        ..data.clone()
    }
}

/// Hint bookkeeping: the hints each owner has here, and replays in flight.
#[derive(Clone, Debug, Default)]
pub(super) struct HintBook {
    /// The hint-store keys of the live hints, by owner (at most `hints_max`), each with the
    /// newest version stored under it since the start (`None`: listed at the start, version
    /// not known). A replay acknowledged for an older version leaves a newer hint live.
    live: BTreeMap<NodeId, BTreeMap<Vec<u8>, Option<Version>>>,
    /// How many of them each owner has (no owner without one).
    counts: BTreeMap<NodeId, u64>,
    /// Replay request seq -> (owner, hint-store key, original cell).
    replays: BTreeMap<u64, (NodeId, Vec<u8>, Cell)>,
    /// Owners whose hints are being scanned.
    scanning: std::collections::BTreeSet<NodeId>,
    /// Whether the count of hints left from before the start is known.
    counted: bool,
}

/// Replica writes acknowledged together: a write and the hints that hand it on.
#[derive(Clone, Debug, Default)]
pub(super) struct AckGroups {
    next: u64,
    groups: BTreeMap<u64, AckGroup>,
}

#[derive(Clone, Debug)]
struct AckGroup {
    /// Writes not yet completed.
    remaining: usize,
    /// The first failure, if any.
    failed: Option<ReplicaError>,
}

impl HintBook {
    pub(super) fn counts(&self) -> &BTreeMap<NodeId, u64> {
        &self.counts
    }

    /// Takes the live hints listed from the store at start (hints stored since are kept).
    pub(super) fn set_keys(&mut self, keys: BTreeSet<Vec<u8>>) {
        for key in keys {
            if let Some((owner, _)) = split_hint_key(&key) {
                self.live
                    .entry(owner)
                    .or_default()
                    .entry(key)
                    .or_insert(None);
            }
        }
        self.recount();
        self.counted = true;
    }

    /// A hint for `owner` under hint-store key `hkey` at `version` is stored (new, or replacing
    /// one: the store keeps the newer of the two).
    fn stored(&mut self, owner: NodeId, hkey: Vec<u8>, version: Version) {
        let newest = self
            .live
            .entry(owner)
            .or_default()
            .entry(hkey)
            .or_insert(None);
        *newest = Some(newest.map_or(version, |v| v.max(version)));
        self.recount_owner(owner);
    }

    /// The hint under `hkey` at `version` is consumed. A newer hint stored under the same key
    /// meanwhile (while the replay of this one was in flight) stays live: the consumed marker
    /// does not cover it in the store either.
    fn consumed(&mut self, owner: NodeId, hkey: &[u8], version: Version) {
        if let Some(keys) = self.live.get_mut(&owner)
            && keys
                .get(hkey)
                .is_some_and(|newest| newest.is_none_or(|v| v <= version))
        {
            keys.remove(hkey);
        }
        self.recount_owner(owner);
    }

    /// `owner` has no live hint left here.
    fn cleared(&mut self, owner: NodeId) {
        self.live.remove(&owner);
        self.recount_owner(owner);
    }

    fn recount_owner(&mut self, owner: NodeId) {
        match self.live.get(&owner).map_or(0, BTreeMap::len) {
            0 => {
                self.live.remove(&owner);
                self.counts.remove(&owner);
            }
            n => {
                self.counts.insert(owner, n as u64);
            }
        }
    }

    fn recount(&mut self) {
        let owners: Vec<NodeId> = self.live.keys().copied().collect();
        for owner in owners {
            self.recount_owner(owner);
        }
    }

    /// Whether `owner` already has a hint under `hkey` (storing it again adds none).
    fn holds(&self, owner: NodeId, hkey: &[u8]) -> bool {
        self.live
            .get(&owner)
            .is_some_and(|keys| keys.contains_key(hkey))
    }

    /// Whether this node is known to hold no hint (for a leaving node: all handed on).
    pub(super) fn handed_on(&self) -> bool {
        self.counted && self.counts.is_empty()
    }

    fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub(super) fn is_replay(&self, seq: u64) -> bool {
        self.replays.contains_key(&seq)
    }
}

/// The stored value of a hint: the original cell, encoded with postcard.
fn encode_hint(cell: &Cell) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(cell)
}

/// The original cell a hint-store value holds (`None` if the bytes are not one).
pub fn decode_hint(bytes: &[u8]) -> Option<Cell> {
    postcard::from_bytes(bytes).ok()
}

impl Node {
    pub(super) fn on_replicate(
        &mut self,
        from: NodeId,
        req: ReqId,
        key: Vec<u8>,
        cell: Cell,
        hint_for: Option<NodeId>,
    ) {
        if self.lifecycle == Lifecycle::Left {
            let msg = Message::ReplicateAck {
                req,
                result: Err(ReplicaError::Left),
            };
            return self.send(from, msg);
        }
        let hint_owner = hint_for.filter(|owner| *owner != self.config.id);
        match hint_owner {
            Some(owner) => self.store_replica_write(from, req, key, cell, Some(owner), vec![]),
            None => {
                let receivers = self.handover_receivers(&key);
                if receivers.is_empty() {
                    return self.store_replica_write(from, req, key, cell, None, receivers);
                }
                // A version this node already holds was handed on when it arrived (or is
                // covered by the range's handover): only a newer one is, so two nodes that
                // each see the other as the key's holder do not send it back and forth.
                let op = StorageOp::Read { key: key.clone() };
                let wait = StorageWait::HandOnCheck {
                    coordinator: from,
                    req,
                    key,
                    cell,
                    receivers,
                };
                self.storage_op(op, wait);
            }
        }
    }

    /// A write to hand on, once this node's own copy of the key is read.
    pub(super) fn on_hand_on_check(
        &mut self,
        coordinator: NodeId,
        req: ReqId,
        key: Vec<u8>,
        cell: Cell,
        receivers: Vec<NodeId>,
        result: StorageResult,
    ) {
        if let StorageResult::Read(Some(held)) = &result
            && held.version >= cell.version
        {
            let msg = Message::ReplicateAck {
                req,
                result: Ok(()),
            };
            self.send(coordinator, msg);
            return self.maybe_finish_leave();
        }
        self.store_replica_write(coordinator, req, key, cell, None, receivers);
    }

    /// Stores a replica write: as a hint for `hint_owner`, or in the data store and as a hint
    /// for each of `receivers`; the coordinator is acknowledged once all are durable.
    fn store_replica_write(
        &mut self,
        from: NodeId,
        req: ReqId,
        key: Vec<u8>,
        cell: Cell,
        hint_owner: Option<NodeId>,
        receivers: Vec<NodeId>,
    ) {
        let hinted: Vec<NodeId> = hint_owner.into_iter().chain(receivers).collect();
        if !hinted.is_empty() {
            // A hint replacing one already held for the same owner and key adds none.
            let added = hinted
                .iter()
                .filter(|owner| !self.hints.holds(**owner, &hint_key(**owner, &key)))
                .count();
            let hints_after = self.hints.total() + added as u64;
            if hints_after > self.config.hints_max {
                let reason = format!("hint store full ({} hints)", self.config.hints_max);
                return self.refuse_hints(from, req, &key, hinted, reason, ReplicaError::HintsFull);
            }
        }
        let stored_hint = if hinted.is_empty() {
            None
        } else {
            match encode_hint(&cell) {
                Ok(bytes) => Some(Cell::put(cell.version, bytes)),
                Err(e) => {
                    let reason = format!("the hint cannot be encoded: {e}");
                    let error = ReplicaError::Storage(StorageFailure::Refused(reason.clone()));
                    return self.refuse_hints(from, req, &key, hinted, reason, error);
                }
            }
        };
        let writes = hinted.len() + usize::from(hint_owner.is_none());
        let group = (writes > 1).then(|| self.acks.open(writes));
        for (owner, stored_hint) in hinted.into_iter().zip(stored_hint.iter().cycle()) {
            let wait = StorageWait::ReplicaWrite {
                coordinator: from,
                req,
                hint: Some((owner, key.clone(), cell.version)),
                group,
            };
            let op = StorageOp::Write {
                store: StoreId::Hints,
                key: hint_key(owner, &key),
                cell: stored_hint.clone(),
            };
            self.storage_op(op, wait);
        }
        if hint_owner.is_none() {
            let wait = StorageWait::ReplicaWrite {
                coordinator: from,
                req,
                hint: None,
                group,
            };
            let op = StorageOp::Write {
                store: StoreId::Data,
                key,
                cell,
            };
            self.storage_op(op, wait);
        }
    }

    /// Refuses a write that needed hints for `hinted`: reports each dropped hint and answers
    /// the coordinator with `error`. Nothing is stored.
    fn refuse_hints(
        &mut self,
        from: NodeId,
        req: ReqId,
        key: &[u8],
        hinted: Vec<NodeId>,
        reason: String,
        error: ReplicaError,
    ) {
        for owner in hinted {
            self.event(NodeEvent::HintDropped {
                owner,
                key: key.to_vec(),
                reason: reason.clone(),
            });
        }
        let msg = Message::ReplicateAck {
            req,
            result: Err(error),
        };
        self.send(from, msg);
    }

    pub(super) fn on_replica_write_done(
        &mut self,
        now: Millis,
        coordinator: NodeId,
        req: ReqId,
        hint: Option<(NodeId, Vec<u8>, Version)>,
        group: Option<u64>,
        result: StorageResult,
    ) {
        let result = match result {
            StorageResult::Written => {
                if let Some((owner, key, version)) = hint {
                    self.hints.stored(owner, hint_key(owner, &key), version);
                    self.event(NodeEvent::HintStored { owner, key });
                    if group.is_some() {
                        // A write handed on: deliver it now rather than at the next round.
                        self.replay_hints_to(now, owner);
                    }
                }
                Ok(())
            }
            StorageResult::Failed(why) => {
                if let Some((owner, key, _)) = hint {
                    let reason = format!("the hint store refused it: {why}");
                    self.event(NodeEvent::HintDropped { owner, key, reason });
                }
                Err(ReplicaError::Storage(why))
            }
            other => Err(ReplicaError::Storage(StorageFailure::Refused(format!(
                "unexpected storage result {other:?}"
            )))),
        };
        let result = match group {
            Some(g) => match self.acks.complete(g, result) {
                Some(done) => done,
                None => return,
            },
            None => result,
        };
        self.send(coordinator, Message::ReplicateAck { req, result });
        self.maybe_finish_leave();
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
            other => Err(ReplicaError::Storage(StorageFailure::Refused(format!(
                "unexpected storage result {other:?}"
            )))),
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

    /// Starts handing `owner`'s hints on, if it has hints here, no replay of them is already
    /// under way, and they have somewhere to go: the owner is up, or has left the ring (its
    /// keys' replicas take them), or this node is leaving (another stand-in takes them).
    pub(super) fn replay_hints_to(&mut self, _now: Millis, owner: NodeId) {
        let has_hints = self.hints.counts.get(&owner).is_some_and(|c| *c > 0);
        let busy = self.hints.scanning.contains(&owner)
            || self.hints.replays.values().any(|(o, _, _)| *o == owner);
        let somewhere = self.believes_up(owner)
            || !self.ring.contains_node(owner)
            || self.lifecycle == Lifecycle::Leaving;
        if !has_hints || busy || !somewhere {
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
            self.hints.cleared(owner);
            return self.maybe_finish_leave();
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
            if original.version.ts_micros / 1000 + self.config.hint_ttl_ms < now.0 {
                self.event(NodeEvent::HintDropped {
                    owner,
                    key,
                    reason: format!("older than the hint TTL of {} ms", self.config.hint_ttl_ms),
                });
                self.consume_hint(owner, hkey, stored.version);
                continue;
            }
            let Some((to, hint_for)) = self.replay_target(owner, &key) else {
                continue;
            };
            let req = self.req_id();
            self.hints
                .replays
                .insert(req.seq, (owner, hkey, original.clone()));
            let msg = Message::Replicate {
                req,
                key,
                cell: original,
                hint_for,
                purpose: WritePurpose::HintReplay,
            };
            self.send(to, msg);
            self.set_timer(
                Millis(now.0 + self.config.request_timeout_ms),
                Timer::RequestTimeout(req.seq),
            );
        }
    }

    pub(super) fn on_hint_replay_ack(
        &mut self,
        now: Millis,
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
            // A newer hint stored while this one was in flight: hand it on now, not at the
            // next round.
            self.replay_hints_to(now, owner);
        }
    }

    /// Where a hint for `owner` goes, and as a hint for whom: the owner when it is up; the
    /// key's first live replica when the owner is no longer in the ring; while this node is
    /// leaving and the owner is down, the next live node clockwise (a stand-in keeps it as a
    /// hint for the owner). `None`: nowhere yet.
    fn replay_target(&self, owner: NodeId, key: &[u8]) -> Option<(NodeId, Option<NodeId>)> {
        let me = self.config.id;
        let token = key_token(key);
        let usable = |node: &NodeId| {
            self.believes_up(*node) && (*node != me || self.lifecycle != Lifecycle::Leaving)
        };
        if !self.ring.contains_node(owner) {
            return self
                .ring
                .preference_list(token, self.config.n)
                .into_iter()
                .find(usable)
                .map(|to| (to, None));
        }
        if self.believes_up(owner) {
            return Some((owner, None));
        }
        if self.lifecycle == Lifecycle::Leaving {
            return self
                .ring
                .walk(token)
                .find(|node| *node != owner && *node != me && usable(node))
                .map(|to| (to, Some(owner)));
        }
        None
    }

    /// Forgets a replay whose owner never answered (called from the request timeout).
    pub(super) fn expire_hint_replay(&mut self, seq: u64) -> bool {
        self.hints.replays.remove(&seq).is_some()
    }

    fn consume_hint(&mut self, owner: NodeId, hkey: Vec<u8>, version: Version) {
        self.hints.consumed(owner, &hkey, version);
        self.maybe_finish_leave();
        let marker = Cell::tombstone(Version {
            ts_micros: version.ts_micros,
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

impl AckGroups {
    /// A group of `writes` replica writes that are acknowledged together.
    fn open(&mut self, writes: usize) -> u64 {
        let id = self.next;
        self.next += 1;
        self.groups.insert(
            id,
            AckGroup {
                remaining: writes,
                failed: None,
            },
        );
        id
    }

    /// Records one write of group `id`; once all are done, the acknowledgement to send.
    fn complete(
        &mut self,
        id: u64,
        result: Result<(), ReplicaError>,
    ) -> Option<Result<(), ReplicaError>> {
        let group = self.groups.get_mut(&id)?;
        if let Err(e) = result {
            group.failed.get_or_insert(e);
        }
        group.remaining = group.remaining.saturating_sub(1);
        if group.remaining > 0 {
            return None;
        }
        let group = self.groups.remove(&id)?;
        Some(group.failed.map_or(Ok(()), Err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ts_micros: u64) -> Version {
        Version {
            ts_micros,
            node: NodeId(5),
        }
    }

    #[test]
    fn a_replay_acknowledged_for_an_older_version_leaves_the_newer_hint_live() {
        let owner = NodeId(2);
        let hkey = hint_key(owner, b"key8");
        let mut book = HintBook::default();
        book.set_keys(BTreeSet::new());
        book.stored(owner, hkey.clone(), v(2_913_000));
        // The replay of 2913 is in flight when 2919 is stored under the same key.
        book.stored(owner, hkey.clone(), v(2_919_000));
        book.consumed(owner, &hkey, v(2_913_000));
        assert_eq!(book.counts().get(&owner), Some(&1));
        assert!(!book.handed_on());
        book.consumed(owner, &hkey, v(2_919_000));
        assert!(book.counts().is_empty());
        assert!(book.handed_on());
        // A hint listed at the start (version not known) is consumed by any replay of it.
        book.set_keys(BTreeSet::from([hkey.clone()]));
        book.consumed(owner, &hkey, v(1));
        assert!(book.handed_on());
    }
}
