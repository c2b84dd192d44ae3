//! A ringstore node as a sans-IO state machine: coordinator and replica in one.
//!
//! [`Node::handle`] takes the node's local time and one [`Input`] (a client request, a message
//! from a peer, a timer, the result of a storage operation, a liveness verdict) and returns the
//! [`Output`]s it wants done: messages to send, replies to clients, timers to set, storage
//! operations to run, events to log. It never touches a disk, socket or clock itself, so the
//! simulator, the native node and the browser drive the same code.
//!
//! # Drive loop
//!
//! ```text
//! loop {
//!     let input = next input (client, network, timer, storage completion, liveness);
//!     for output in node.handle(local_now, input) {
//!         Send      => deliver to the peer (a message to self too: the coordinator is often a replica)
//!         Reply     => answer the client
//!         SetTimer  => call back with Input::Timer at that local time (stale timers are ignored)
//!         Storage   => run it on the node's storage; feed back Input::Storage with its result,
//!                      a write only once it is as durable as the sync policy requires
//!         Event     => log it
//!     }
//! }
//! ```
//!
//! The coordinator's logic is in `coordinator.rs`, the replica's and hinted handoff's in
//! `replica.rs`; what each storage operation reads is defined once for every driver in
//! `storage_io.rs`. The types of the interface are beside them: client operations and their
//! errors in `client`, inputs, outputs, timers and storage operations in `io`, logged events
//! in `event`, the configuration in `config` (all re-exported here).

mod antientropy;
mod client;
mod config;
mod config_check;
mod coordinator;
mod event;
mod io;
mod membership;
mod replica;
mod storage_io;
mod stream;
#[cfg(test)]
mod tests;

use crate::ring::Ring;
use crate::storage::{Cell, Version};
use crate::wire::{Message, ReqId};
use crate::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet};

pub use antientropy::{AE_SESSION_TIMEOUT_MS, AntiEntropyStats, RESPONDER_SESSIONS_MAX};
use client::check_client_key;
pub use client::{ClientError, ClientId, ClientOk, ClientOp, ClientResult, Consistency};
pub use config::NodeConfig;
pub use config_check::{NodeError, QuorumError, check_quorums};
pub use coordinator::resolve_lww;
pub use event::NodeEvent;
pub use io::{Input, Output, StorageOp, StorageResult, StoreId, Timer};
pub use membership::Membership;
pub use replica::{
    CLIENT_VALUE_BYTES_MAX, HINT_OVERHEAD_BYTES, decode_hint, hint_key, hint_store_config,
    split_hint_key,
};
pub use storage_io::{
    RangePage, ReadStore, SyncWaiters, WriteBatch, WriteOutcome, apply_write, run_read, scan_range,
    scan_ranges, sync_completions,
};
pub use stream::{
    Lifecycle, OFFER_RETRY_MS, STREAM_PAGE_BYTES_TARGET, STREAM_PAGE_KEYS, STREAM_PAGE_TIMEOUT_MS,
};

/// What a storage operation's completion is for.
#[derive(Clone, Debug)]
enum StorageWait {
    /// A replica write (to the data store, or a hint for `hint`'s owner, key and version);
    /// ack `req` to `coordinator`, alone or, with `group`, once every write of the group is
    /// done.
    ReplicaWrite {
        coordinator: NodeId,
        req: ReqId,
        hint: Option<(NodeId, Vec<u8>, Version)>,
        group: Option<u64>,
    },
    /// A replica write to hand on to `receivers`, waiting for this node's own copy of the
    /// key (see `replica.rs`).
    HandOnCheck {
        coordinator: NodeId,
        req: ReqId,
        key: Vec<u8>,
        cell: Cell,
        receivers: Vec<NodeId>,
    },
    /// A replica read for `req`.
    ReplicaRead { coordinator: NodeId, req: ReqId },
    /// A scan of hints for `owner`.
    HintScan { owner: NodeId },
    /// Marking a replayed hint consumed.
    HintConsumed,
    /// Counting hints at start.
    HintCount,
    /// A page to serve to a node pulling `range`.
    StreamServe {
        to: NodeId,
        session: u64,
        range: crate::ring::Range,
    },
    /// A received page being stored; then ask for `next`.
    StreamStore { session: u64, next: Option<Vec<u8>> },
    /// A page of a range scan for a repair session.
    RepairScan {
        key: antientropy::SessionKey,
        range: crate::ring::Range,
        purpose: antientropy::ScanPurpose,
    },
    /// A write of a newer version found by a repair session.
    RepairWrite,
}

/// A ringstore node. See the module docs.
#[derive(Clone, Debug)]
pub struct Node {
    config: NodeConfig,
    ring: Ring,
    /// The ring this node started with; gossip adds and removes members from it.
    base_ring: Ring,
    gossip: Option<crate::membership::Gossiper>,
    /// What the gossiped ring was last built from (see `after_gossip_ring`).
    ring_inputs: Option<membership::RingInputs>,
    /// The gossiper's [`crate::membership::Gossiper::ring_epoch`] when `ring_inputs` was
    /// last checked.
    ring_epoch: Option<u64>,
    rng: crate::DetRng,
    down: BTreeSet<NodeId>,
    /// `down` was changed by an input, not from gossip, since gossip's last look at it: the
    /// next look compares every member (see `after_gossip`).
    down_from_input: bool,
    next_seq: u64,
    last_ts: u64,
    writes: BTreeMap<u64, coordinator::PendingWrite>,
    reads: BTreeMap<u64, coordinator::PendingRead>,
    storage: BTreeMap<u64, StorageWait>,
    hints: replica::HintBook,
    acks: replica::AckGroups,
    lifecycle: Lifecycle,
    streams: stream::Streams,
    ae: antientropy::AntiEntropy,
    out: Vec<Output>,
}

impl Node {
    /// A node starting (or restarting) at local time `now` with `ring`. The outputs start hint
    /// handoff: counting hints left from before a restart, and the replay timer. Refuses a
    /// configuration that cannot work (N/W/R, or membership the gossiper refuses).
    pub fn new(
        config: NodeConfig,
        ring: Ring,
        now: Millis,
    ) -> Result<(Node, Vec<Output>), NodeError> {
        check_quorums(config.n, config.w, config.r)?;
        let seed = config.seed;
        let mut node = Node {
            config,
            base_ring: ring.clone(),
            ring,
            gossip: None,
            ring_inputs: None,
            ring_epoch: None,
            rng: <crate::DetRng as rand::SeedableRng>::seed_from_u64(seed),
            down: BTreeSet::new(),
            down_from_input: false,
            next_seq: 1,
            last_ts: 0,
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            storage: BTreeMap::new(),
            hints: replica::HintBook::default(),
            acks: replica::AckGroups::default(),
            lifecycle: Lifecycle::Normal,
            streams: stream::Streams::default(),
            ae: antientropy::AntiEntropy::default(),
            out: Vec::new(),
        };
        node.storage_op(StorageOp::CountHints, StorageWait::HintCount);
        node.set_timer(
            Millis(now.0 + node.config.hint_replay_interval_ms),
            Timer::HintReplay,
        );
        node.start_membership(now)?;
        if node.config.joining {
            node.lifecycle = Lifecycle::Joining;
            let delay = match node.config.membership {
                Membership::Oracle => 0,
                Membership::Gossip { .. } => node.config.join_delay_ms,
            };
            node.set_timer(Millis(now.0 + delay), Timer::JoinStart);
        }
        let ae = node.config.anti_entropy_interval_ms;
        if ae > 0 {
            // Spread the nodes' first repairs over one interval.
            let offset = u64::from(node.config.id.0).wrapping_mul(7919) % ae;
            node.set_timer(Millis(now.0 + ae + offset), Timer::AntiEntropy);
        }
        let out = std::mem::take(&mut node.out);
        Ok((node, out))
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The ring this node routes by.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Whether this node currently believes `node` is up.
    pub fn believes_up(&self, node: NodeId) -> bool {
        node == self.config.id || !self.down.contains(&node)
    }

    /// Requests this node is coordinating.
    pub fn in_flight(&self) -> usize {
        self.writes.len() + self.reads.len()
    }

    /// Where this node is in its life in the cluster.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Members an operator removed, with the removal's generation: what a driver keeps with
    /// the ring it remembers, and gives back in [`NodeConfig::removed`] at the next start.
    /// Empty under an oracle (its driver tells every node of a removal).
    pub fn removed(&self) -> Vec<(NodeId, u64)> {
        self.gossip
            .as_ref()
            .map(|g| g.removed())
            .unwrap_or_default()
    }

    /// Hints held, per owner (as far as this node has counted).
    pub fn hints_held(&self) -> &BTreeMap<NodeId, u64> {
        self.hints.counts()
    }

    /// Handles one input at local time `now`; returns what to do.
    pub fn handle(&mut self, now: Millis, input: Input) -> Vec<Output> {
        match input {
            Input::Client { client, op } => self.on_client(now, client, op),
            Input::Message { from, msg } => self.on_message(now, from, msg),
            Input::Timer(Timer::RequestTimeout(seq)) => self.on_request_timeout(seq),
            Input::Timer(Timer::HintReplay) => self.on_hint_replay_timer(now),
            Input::Timer(Timer::AntiEntropy) => self.on_anti_entropy_timer(now),
            Input::Timer(Timer::AntiEntropyTimeout { initiator, session }) => {
                self.on_anti_entropy_timeout(now, initiator, session)
            }
            Input::Timer(Timer::StreamTimeout { session, attempt }) => {
                self.on_stream_timeout(now, session, attempt)
            }
            Input::Timer(Timer::OfferRetry { session, attempt }) => {
                self.on_offer_retry(now, session, attempt)
            }
            Input::Timer(Timer::GossipTick) => self.on_gossip_tick(now),
            Input::Timer(Timer::JoinStart) => self.start_join(now),
            Input::Leave => self.start_leave(now),
            Input::Remove { node } => self.on_remove(node),
            Input::RingChanged { members } => {
                self.ring_inputs = None;
                let new = Ring::new(members);
                let old = std::mem::replace(&mut self.ring, new.clone());
                if old != new {
                    self.hand_over_lost_ranges(now, &old, &new);
                }
            }
            Input::Storage { op, result } => self.on_storage(now, op, result),
            Input::PeerStatus { node, up } => {
                self.down_from_input = true;
                self.on_peer_status(now, node, up);
            }
        }
        std::mem::take(&mut self.out)
    }

    fn on_message(&mut self, now: Millis, from: NodeId, msg: Message) {
        match msg {
            Message::Replicate {
                req,
                key,
                cell,
                hint_for,
                purpose: _,
            } => {
                self.on_replicate(from, req, key, cell, hint_for);
            }
            Message::ReplicateAck { req, result } => self.on_replicate_ack(now, from, req, result),
            Message::Read { req, key } => self.on_read(from, req, key),
            Message::ReadReply { req, result } => self.on_read_reply(from, req, result),
            Message::StreamRequest {
                session,
                range,
                after,
            } => self.on_stream_request(from, session, range, after),
            Message::StreamBatch {
                session,
                entries,
                next,
                ..
            } => self.on_stream_batch(now, from, session, entries, next),
            Message::StreamOffer { session, range } => {
                self.on_stream_offer(now, from, session, range)
            }
            Message::StreamDone { session, .. } => self.on_stream_done(from, session),
            Message::StreamRefused {
                session, reason, ..
            } => self.on_stream_refused(now, from, session, reason),
            Message::AntiEntropy {
                initiator,
                session,
                msg,
            } => self.on_anti_entropy_message(now, from, initiator, session, msg),
            Message::Gossip(msg) => self.on_gossip(now, from, msg),
        }
    }

    /// Records a verdict on a peer, from an oracle or the failure detector.
    pub(super) fn on_peer_status(&mut self, now: Millis, node: NodeId, up: bool) {
        if node == self.config.id {
            return;
        }
        if up {
            if self.down.remove(&node) {
                // An owner is back: offer its hints now rather than at the next round.
                self.replay_hints_to(now, node);
            }
        } else {
            self.down.insert(node);
        }
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn req_id(&mut self) -> ReqId {
        ReqId {
            coordinator: self.config.id,
            seq: self.next_seq(),
        }
    }

    /// The next LWW version from this coordinator's clock: microseconds, strictly increasing
    /// even when the clock stands still or steps back.
    fn next_version(&mut self, now: Millis) -> Version {
        let ts = (now.0.saturating_mul(1000)).max(self.last_ts + 1);
        self.last_ts = ts;
        Version {
            ts_micros: ts,
            node: self.config.id,
        }
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.out.push(Output::Send { to, msg });
    }

    fn reply(&mut self, client: ClientId, result: ClientResult) {
        self.out.push(Output::Reply { client, result });
    }

    fn set_timer(&mut self, at: Millis, timer: Timer) {
        self.out.push(Output::SetTimer { at, timer });
    }

    fn event(&mut self, event: NodeEvent) {
        self.out.push(Output::Event(event));
    }

    fn storage_op(&mut self, storage: StorageOp, wait: StorageWait) {
        let op = self.next_seq();
        self.storage.insert(op, wait);
        self.out.push(Output::Storage { op, storage });
    }

    fn on_storage(&mut self, now: Millis, op: u64, result: StorageResult) {
        let Some(wait) = self.storage.remove(&op) else {
            return;
        };
        match wait {
            StorageWait::ReplicaWrite {
                coordinator,
                req,
                hint,
                group,
            } => {
                self.on_replica_write_done(now, coordinator, req, hint, group, result);
            }
            StorageWait::HandOnCheck {
                coordinator,
                req,
                key,
                cell,
                receivers,
            } => self.on_hand_on_check(coordinator, req, key, cell, receivers, result),
            StorageWait::ReplicaRead { coordinator, req } => {
                self.on_replica_read_done(coordinator, req, result);
            }
            StorageWait::HintScan { owner } => self.on_hint_scan(now, owner, result),
            StorageWait::HintConsumed | StorageWait::RepairWrite => {}
            StorageWait::RepairScan {
                key,
                range,
                purpose,
            } => self.on_repair_scan(key, range, purpose, result),
            StorageWait::StreamServe { to, session, range } => {
                self.on_stream_served(to, session, range, result)
            }
            StorageWait::StreamStore { session, next } => {
                if matches!(result, StorageResult::Written) {
                    self.on_stream_page_stored(now, session, next);
                }
            }
            StorageWait::HintCount => {
                if let StorageResult::HintKeys(keys) = result {
                    self.hints.set_keys(keys);
                    self.maybe_finish_leave();
                }
            }
        }
    }
}
