//! The node task: the one task that owns the core's [`Node`] and drives it.
//!
//! It is the core's drive loop (`ringstore_core::node`, "Drive loop") on tokio: take one
//! input, hand it to `Node::handle` with this node's clock, and carry out every output
//! without waiting on anything:
//!
//! - `Send` to itself is fed straight back (the coordinator is often a replica); to a peer it
//!   is queued on that peer's [`Link`] (`try_send`: a full queue drops and counts);
//! - `Reply` completes the waiting HTTP request's oneshot;
//! - `SetTimer` goes into a heap of deadlines the loop sleeps on;
//! - `Storage` runs here when it can without waiting (a write appended, a read answered from
//!   memory), and is otherwise queued on the storage threads (`try_send`: a full queue fails
//!   the operation at once); its completion comes back as an input;
//! - `Event` is logged, counted, published on the feed, and a ring change is persisted.
//!
//! Inputs come from bounded channels, served in priority order: storage completions, due
//! timers, peer messages, control commands, then new client requests (work in progress
//! finishes before new work starts). Nothing here holds a lock across an await.

use super::storage::{Completions, StorageThreads};
use super::{ClientCall, Control};
use crate::feed::Feed;
use crate::metrics::Metrics;
use crate::peer::link::Link;
use crate::peer::{PeerContext, PeerInbound};
use crate::state::{NodeState, RingMember};
use crate::store::wall_clock;
use crate::view::{self, NodeView};
use ringstore_core::membership::GossipEvent;
use ringstore_core::node::{ClientId, Input, Node, NodeEvent, Output, Timer};
use ringstore_core::ui::Direction;
use ringstore_core::ui::DropCause;
use ringstore_core::wire::Message;
use ringstore_core::{Millis, NodeId};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

/// Client requests taken in one turn of the loop at most (then peers get a turn).
const CLIENT_BATCH: usize = 64;
/// Peer batches taken in one turn at most.
const PEER_BATCH: usize = 64;

/// Everything the node task owns.
pub struct Driver {
    pub(super) node: Node,
    pub(super) skew_ms: i64,
    pub(super) timers: BinaryHeap<Reverse<(Millis, u64, Timer)>>,
    pub(super) timer_seq: u64,
    pub(super) clients: HashMap<ClientId, oneshot::Sender<ringstore_core::node::ClientResult>>,
    pub(super) next_client: ClientId,
    pub(super) links: BTreeMap<NodeId, Link>,
    /// Addresses remembered from the last run's ring (the state file).
    pub(super) addresses: BTreeMap<NodeId, String>,
    /// Addresses peers gave in their handshakes, and seeds reached: the freshest there are (a
    /// restarted peer may listen elsewhere before gossip says so).
    pub(super) heard: BTreeMap<NodeId, String>,
    pub(super) partitioned: BTreeSet<NodeId>,
    pub(super) storage: StorageThreads,
    pub(super) pending: VecDeque<Input>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) feed: Feed,
    pub(super) peer_ctx: PeerContext,
    pub(super) fault_injection: bool,
    /// The state file's contents, sent to the persister when the ring changes.
    pub(super) state: NodeState,
    pub(super) persist: watch::Sender<NodeState>,
}

/// The node task's inputs.
pub struct Inputs {
    pub(super) completions: mpsc::UnboundedReceiver<Completions>,
    pub(super) peers: mpsc::Receiver<PeerInbound>,
    pub(super) control: mpsc::Receiver<Control>,
    pub(super) clients: mpsc::Receiver<ClientCall>,
}

impl Driver {
    /// This node's clock as the core sees it: the wall clock plus the injected skew.
    fn now(&self) -> Millis {
        Millis(wall_clock().0.saturating_add_signed(self.skew_ms))
    }

    /// Runs until a `Shutdown` command or every input channel closes; returns the storage
    /// threads for the caller to join.
    pub async fn run(mut self, mut inputs: Inputs, outputs: Vec<Output>) -> StorageThreads {
        self.apply(outputs);
        self.drain_pending();
        // One timer, re-armed only when the earliest deadline (or the clock skew) changes.
        let sleep = tokio::time::sleep(std::time::Duration::from_secs(3600));
        tokio::pin!(sleep);
        // `None`: to be armed; `Some(None)`: armed for no timer (an hour away).
        let mut armed: Option<Option<(Millis, i64)>> = None;
        loop {
            let next = Some(
                self.timers
                    .peek()
                    .map(|Reverse((at, _, _))| (*at, self.skew_ms)),
            );
            if next != armed {
                let delay = self.next_timer_delay();
                sleep.as_mut().reset(tokio::time::Instant::now() + delay);
                armed = next;
            }
            tokio::select! {
                biased;
                Some(done) = inputs.completions.recv() => {
                    if let Some(store) = done.synced {
                        self.storage.sync_done(store);
                    }
                    for (op, result) in done.ops {
                        self.pending.push_back(Input::Storage { op, result });
                    }
                }
                () = &mut sleep => {
                    armed = None;
                    self.fire_timers();
                }
                Some(batch) = inputs.peers.recv() => {
                    self.on_peer_batch(batch);
                    for _ in 1..PEER_BATCH {
                        match inputs.peers.try_recv() {
                            Ok(b) => self.on_peer_batch(b),
                            Err(_) => break,
                        }
                    }
                }
                Some(control) = inputs.control.recv() => {
                    if !self.on_control(control) {
                        break;
                    }
                }
                Some(call) = inputs.clients.recv() => {
                    self.on_client(call);
                    for _ in 1..CLIENT_BATCH {
                        match inputs.clients.try_recv() {
                            Ok(c) => self.on_client(c),
                            Err(_) => break,
                        }
                    }
                }
                else => break,
            }
            self.drain_pending();
        }
        self.storage
    }

    fn next_timer_delay(&self) -> std::time::Duration {
        match self.timers.peek() {
            Some(Reverse((at, _, _))) => {
                std::time::Duration::from_millis(at.saturating_sub(self.now()).0)
            }
            None => std::time::Duration::from_secs(3600),
        }
    }

    fn fire_timers(&mut self) {
        let now = self.now();
        while let Some(Reverse((at, _, timer))) = self.timers.peek().cloned() {
            if at > now {
                break;
            }
            self.timers.pop();
            if timer == Timer::GossipTick {
                self.metrics.gossip_rounds.inc();
            }
            self.pending.push_back(Input::Timer(timer));
        }
    }

    fn on_peer_batch(&mut self, batch: PeerInbound) {
        let from = batch.from;
        let cut = self.partitioned.contains(&from);
        let now = self.now().0;
        for msg in batch.msgs {
            if cut {
                self.metrics.dropped(msg.kind(), DropCause::Partition);
                continue;
            }
            self.metrics.received(msg.kind());
            self.feed
                .message(now, Direction::Received, from, &msg, None);
            self.pending.push_back(Input::Message { from, msg });
        }
    }

    fn on_client(&mut self, call: ClientCall) {
        let client = self.next_client;
        self.next_client += 1;
        self.clients.insert(client, call.reply);
        self.pending.push_back(Input::Client {
            client,
            op: call.op,
        });
    }

    /// Handles a command; `false` stops the loop.
    fn on_control(&mut self, control: Control) -> bool {
        match control {
            Control::View(reply) => {
                let _ = reply.send(self.view());
            }
            Control::Partition(peers) => {
                info!(
                    "{}: fault injection: partitioned from {peers:?}",
                    self.node.id()
                );
                self.partitioned.extend(peers);
            }
            Control::Heal => {
                info!("{}: fault injection: healed", self.node.id());
                self.partitioned.clear();
            }
            Control::ClockSkew(ms) => {
                info!("{}: fault injection: clock skew {ms:+} ms", self.node.id());
                self.skew_ms = ms;
            }
            Control::PeerHello { id, address } => self.learn_address(id, address, None),
            Control::SeedResolved { id, address, ws } => {
                if id != self.node.id() {
                    self.node.add_seed(id);
                    self.learn_address(id, address, Some(*ws));
                }
            }
            Control::Shutdown => return false,
        }
        true
    }

    /// Records how to reach `id` (from its handshake, or a seed just reached), opening or
    /// re-pointing its link.
    fn learn_address(
        &mut self,
        id: NodeId,
        address: String,
        ws: Option<crate::peer::link::WsClient>,
    ) {
        self.heard.insert(id, address.clone());
        match self.links.get(&id) {
            Some(link) => link.set_address(address),
            None if ws.is_some() => {
                let link = Link::spawn(self.peer_ctx.clone(), id, address, ws);
                self.links.insert(id, link);
            }
            None => {}
        }
    }

    /// Where to reach `id`: what it said in its handshake, else what gossip says, else what
    /// the state file remembers.
    fn address_of(&self, id: NodeId) -> Option<String> {
        if let Some(a) = self.heard.get(&id) {
            return Some(a.clone());
        }
        let gossiped = self
            .node
            .gossiper()
            .and_then(|g| g.members().get(&id))
            .map(|m| m.address.clone())
            .filter(|a| !a.is_empty());
        gossiped.or_else(|| self.addresses.get(&id).cloned())
    }

    /// Feeds every pending input to the node, carrying out what it asks.
    /// Handles every pending input, then starts the syncs that writes appended meanwhile wait
    /// for (what completes at once is handled too).
    fn drain_pending(&mut self) {
        loop {
            self.handle_pending();
            let now = self.storage.start_syncs();
            if now.is_empty() {
                break;
            }
            for (op, result) in now {
                self.pending.push_back(Input::Storage { op, result });
            }
        }
        self.metrics
            .in_flight
            .set(i64::try_from(self.node.in_flight()).unwrap_or(i64::MAX));
    }

    fn handle_pending(&mut self) {
        while let Some(input) = self.pending.pop_front() {
            let gossip = matches!(
                input,
                Input::Message {
                    msg: Message::Gossip(_),
                    ..
                } | Input::Timer(Timer::GossipTick)
            );
            let now = self.now();
            let outputs = self.node.handle(now, input);
            self.apply(outputs);
            if gossip {
                self.after_gossip();
            }
        }
        // The count changes without an event too (a replay round that finds nothing left).
        let held = self.node.hints_held().values().sum::<u64>();
        self.metrics
            .hints_held
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    /// Gossip may have told of a member's new address: re-point its link (an address heard in
    /// a handshake stays first).
    fn after_gossip(&mut self) {
        let changed: Vec<(NodeId, String)> = self
            .links
            .iter()
            .filter_map(|(&id, link)| {
                let a = self.address_of(id)?;
                (a != link.address()).then_some((id, a))
            })
            .collect();
        for (id, address) in changed {
            if let Some(link) = self.links.get(&id) {
                info!("{}: {id} now at {address}", self.node.id());
                link.set_address(address);
            }
        }
    }

    fn apply(&mut self, outputs: Vec<Output>) {
        let me = self.node.id();
        for output in outputs {
            match output {
                Output::Send { to, msg } if to == me => {
                    self.pending.push_back(Input::Message { from: me, msg });
                }
                Output::Send { to, msg } => self.send(to, msg),
                Output::Reply { client, result } => {
                    if let Some(reply) = self.clients.remove(&client) {
                        let _ = reply.send(result);
                    }
                }
                Output::SetTimer { at, timer } => {
                    self.timer_seq += 1;
                    self.timers.push(Reverse((at, self.timer_seq, timer)));
                }
                Output::Storage { op, storage } => {
                    if let Some(result) = self.storage.run(op, storage) {
                        self.pending.push_back(Input::Storage { op, result });
                    }
                }
                Output::Event(event) => self.on_event(event),
            }
        }
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        let now = self.now().0;
        let kind = msg.kind();
        if self.partitioned.contains(&to) {
            self.metrics.dropped(kind, DropCause::Partition);
            self.feed
                .message(now, Direction::Sent, to, &msg, Some(DropCause::Partition));
            return;
        }
        if !self.links.contains_key(&to) {
            let Some(address) = self.address_of(to) else {
                self.metrics.dropped(kind, DropCause::NoRoute);
                self.feed
                    .message(now, Direction::Sent, to, &msg, Some(DropCause::NoRoute));
                return;
            };
            let link = Link::spawn(self.peer_ctx.clone(), to, address, None);
            self.links.insert(to, link);
        }
        let Some(link) = self.links.get(&to) else {
            return;
        };
        if !link.has_room() {
            self.metrics.dropped(kind, DropCause::QueueFull);
            self.feed
                .message(now, Direction::Sent, to, &msg, Some(DropCause::QueueFull));
            return;
        }
        self.feed.message(now, Direction::Sent, to, &msg, None);
        match link.send(msg) {
            Ok(()) => self.metrics.sent(kind),
            // Only a link whose task ended (it never does while the node runs) refuses here.
            Err((_, reason)) => self.metrics.dropped(kind, reason),
        }
    }

    fn on_event(&mut self, event: NodeEvent) {
        let me = self.node.id();
        let m = &self.metrics;
        match &event {
            NodeEvent::ReadRepair { replica, .. } => {
                m.read_repairs.inc();
                debug!("{me}: read repair sent to {replica}");
            }
            NodeEvent::HintStored { owner, .. } => {
                m.hints_stored.inc();
                debug!("{me}: stored a hint for {owner}");
            }
            NodeEvent::HintReplayed { owner, key } => {
                m.hints_replayed.inc();
                info!(
                    "{me}: hint replayed to {owner} ({})",
                    String::from_utf8_lossy(key)
                );
            }
            NodeEvent::HintDropped { owner, reason, .. } => {
                m.hints_dropped.inc();
                warn!("{me}: hint for {owner} dropped: {reason}");
            }
            NodeEvent::StreamFailed {
                range,
                from,
                to,
                reason,
            } => {
                error!(
                    "{me}: streaming {range} from {from} to {to} failed, not asked again: {reason}"
                );
            }
            NodeEvent::MembershipRefused { error } => {
                warn!("{me}: membership refused: {error}");
            }
            NodeEvent::RepairDone {
                range,
                peer,
                bytes,
                keys_repaired,
            } => {
                m.anti_entropy_sessions.inc();
                m.anti_entropy_bytes.inc_by(*bytes);
                m.anti_entropy_keys_repaired.inc_by(*keys_repaired);
                if *keys_repaired > 0 {
                    info!(
                        "{me}: repair done with {peer} over {range}: {keys_repaired} keys repaired, {bytes} bytes"
                    );
                } else {
                    debug!("{me}: repair done with {peer} over {range}: in sync, {bytes} bytes");
                }
            }
            NodeEvent::RepairFailed {
                range,
                peer,
                reason,
            } => {
                m.anti_entropy_failures.inc();
                debug!("{me}: repair with {peer} over {range} failed: {reason}");
            }
            NodeEvent::JoinStarted { ranges } => {
                info!("{me}: joining: pulling {ranges} ranges");
            }
            NodeEvent::Joined => {
                info!("{me}: joined the ring");
                self.state.joined = true;
                self.persist_ring();
            }
            NodeEvent::LeaveStarted { ranges } => {
                info!("{me}: leaving: handing over {ranges} ranges")
            }
            NodeEvent::Left => info!("{me}: left the ring"),
            NodeEvent::StreamStarted { range, from, to } => {
                info!("{me}: streaming {range} from {from} to {to}");
            }
            NodeEvent::StreamDone {
                range,
                from,
                to,
                keys,
                bytes,
            } => {
                if *to == me {
                    m.stream_keys.inc_by(*keys);
                }
                info!("{me}: streamed {range} from {from} to {to}: {keys} keys, {bytes} bytes");
            }
            NodeEvent::RingChanged { nodes } => {
                info!("{me}: ring changed: {nodes} nodes");
                self.persist_ring();
            }
            NodeEvent::Membership(e) => log_membership(me, e),
            NodeEvent::RequestStarted { .. } => {}
        }
        self.feed.event(self.now().0, &event);
    }

    /// Sends the current ring to the persister (it writes the state file off this task).
    fn persist_ring(&mut self) {
        let ring = self.node.ring();
        self.state.ring = ring
            .nodes()
            .iter()
            .map(|&id| RingMember {
                id,
                tokens: ring.tokens_of(id),
                address: self.address_of(id).unwrap_or_default(),
            })
            .collect();
        self.state.removed = self.node.removed();
        let _ = self.persist.send(self.state.clone());
    }

    fn view(&self) -> NodeView {
        let v = view::build(
            &self.node,
            &view::DriverState {
                now: self.now(),
                skew_ms: self.skew_ms,
                partitioned: &self.partitioned,
                addresses: &self.addresses,
                fault_injection: self.fault_injection,
                traffic: self.feed.traffic(),
            },
        );
        self.metrics.set_members(v.state_counts());
        v
    }
}

fn log_membership(me: NodeId, e: &GossipEvent) {
    match e {
        GossipEvent::Joined { node, status } => {
            info!("{me}: {node} joined the cluster ({status:?})")
        }
        GossipEvent::PeerUp { node } => info!("{me}: {node} is up"),
        GossipEvent::PeerSuspect { node, phi } => info!("{me}: {node} is suspect (phi {phi:.1})"),
        GossipEvent::PeerDown { node } => info!("{me}: {node} is down"),
        GossipEvent::PeerRestarted {
            node, generation, ..
        } => {
            info!("{me}: {node} restarted (generation {generation})")
        }
        GossipEvent::StatusChanged { node, status } => info!("{me}: {node} is now {status:?}"),
        GossipEvent::PeerLeft { node } => info!("{me}: {node} left the cluster"),
        GossipEvent::PeerRemoved { node } => info!("{me}: {node} was removed"),
        GossipEvent::Refuted { generation } => {
            warn!("{me}: refuted a removal or stale state of itself (generation {generation})")
        }
        GossipEvent::EventsDropped { count } => debug!("{me}: {count} gossip events dropped"),
    }
}

/// Keeps the state file in step with the ring: writes the newest state each time it changes,
/// on a blocking thread (an fsync must not stall the node task).
pub async fn persister(dir: std::path::PathBuf, mut rx: watch::Receiver<NodeState>) {
    while rx.changed().await.is_ok() {
        let state = rx.borrow_and_update().clone();
        let dir = dir.clone();
        let written = tokio::task::spawn_blocking(move || crate::state::store(&dir, &state)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!("could not write the node state: {e}"),
            Err(e) => warn!("could not write the node state: {e}"),
        }
    }
}
