//! The deterministic simulator: a whole cluster in one process, driven by a seed.
//!
//! Every node is a real [`Node`] state machine with two real storage engines ([`Lsm`] over a
//! [`SimDisk`], or any other [`MachineDisk`]: its data and its hints) and a skewable clock. Messages cross a seeded
//! [`network`] with latency, loss, duplication, reordering and partitions. Disks have latency,
//! syncs are grouped (group commit), flushes and compactions run as steppable events, and a crash
//! loses what was not synced. A client [`workload`] and scripted operations feed the cluster;
//! every operation lands in the [`history`] checker; everything that happens lands in the
//! [`log`], which the page draws and golden scripts print.
//!
//! All randomness comes from one generator seeded by [`SimConfig::seed`], every draw uses integer
//! arithmetic and every collection iterates in a fixed order: the same seed and the same calls
//! give the identical event log, natively and in WebAssembly.
//!
//! Membership is gossip with phi-accrual detection when [`SimConfig::gossip`] is set, as on
//! real nodes. Otherwise it is an oracle: when a node crashes, restarts or is cut off by a
//! partition, the nodes that would notice are told after [`SimConfig::detection_ms`] through
//! [`Input::PeerStatus`], the same input a failure detector feeds; the data-path golden
//! scripts use it so that their traces show the data path only.
//!
//! Faults a test or the page injects: [`Sim::crash`] (the disks lose what was not synced; clients
//! waiting on that coordinator get an error), [`Sim::restart`] (recovery from the disks),
//! [`Sim::partition`], [`Sim::heal`], [`Sim::set_skew`] and [`Sim::set_network`].
//!
//! Events are ordered by `(time, sequence)` in a binary heap; events for a node carry its
//! incarnation and are dropped if it crashed since. [`Sim::snapshot`] gives every node's state,
//! storage statistics, hints and beliefs, and the messages in flight, for the page to draw.
//!
//! [`Sim`] is generic over the disk ([`MachineDisk`], made by a [`DiskFactory`]); [`Sim::new`]
//! uses [`SimDisk`]s, the browser [`Sim::with_disks`]. Monomorphised, the generic costs nothing
//! measurable: the simulator benchmark's `--quick` run executes 342.6 M instructions against
//! 344.2 M for the same run on the simulator before it was generic (callgrind).

mod error;
pub mod history;
mod inspect;
pub mod live_check;
pub mod log;
mod machine_disk;
pub mod network;
mod resume;
pub mod script;
mod storage;
pub mod trace;
pub mod workload;

pub use error::SimError;
pub use inspect::label;
use inspect::label_short;
pub use machine_disk::{DiskFactory, MachineDisk, sim_disks};
pub use resume::{MachineState, SimState};

use crate::DetRng;
use crate::node::{
    ClientError, ClientOp, Input, Node, NodeConfig, NodeError, NodeEvent, Output, QuorumError,
    StorageResult, StoreId, Timer, check_quorums,
};
use crate::ring::Ring;
use crate::storage::{Cell, Job, Lsm, LsmConfig, LsmStats, SimDisk, StorageError, SyncPolicy};
use crate::wire::{Message, MessageKind};
use crate::{Millis, NodeId};
use history::History;
use log::{EventLog, OpId, OpKind, SimEvent};
use network::{DropReason, NetworkConfig, Partitions};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use workload::WorkloadConfig;

/// Everything a simulation is made of. A run is reproduced by its config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// The seed every random choice comes from.
    pub seed: u64,
    /// Nodes, named `n1` … `nN`.
    pub nodes: u32,
    /// Replicas per key.
    pub n: usize,
    /// Write quorum.
    pub w: usize,
    /// Read quorum.
    pub r: usize,
    /// Tokens per node on the ring.
    pub vnodes: u32,
    /// When replicas sync their WAL.
    pub sync: SyncPolicy,
    /// The network.
    pub network: NetworkConfig,
    /// Time for a write to reach the WAL and memtable.
    pub disk_write_ms: u64,
    /// Time for a WAL sync.
    pub disk_sync_ms: u64,
    /// Time for a read.
    pub disk_read_ms: u64,
    /// Time per step of a flush or compaction.
    pub job_step_ms: u64,
    /// How long a coordinator waits for W or R answers.
    pub request_timeout_ms: u64,
    /// How long until peers learn that a node went down or came back.
    pub detection_ms: u64,
    /// Each node's storage engine.
    pub lsm: LsmConfig,
    /// Hints a node may hold.
    pub hints_max: u64,
    /// Hints older than this are dropped.
    pub hint_ttl_ms: u64,
    /// How often hints are offered back.
    pub hint_replay_interval_ms: u64,
    /// How often each node repairs one of its ranges with a replica (0: no anti-entropy).
    pub anti_entropy_interval_ms: u64,
    /// Depth of the anti-entropy Merkle trees (2^depth leaves per range).
    pub merkle_depth: u8,
    /// Gossip membership and failure detection, or `None` for an oracle that tells nodes of
    /// crashes, partitions and ring changes after `detection_ms`.
    pub gossip: Option<crate::membership::GossipConfig>,
    /// The client workload.
    pub workload: WorkloadConfig,
    /// Events the log keeps (older ones are dropped; the hash covers all).
    pub log_capacity: usize,
    /// Explicit ring tokens per node, instead of tokens drawn from the seed (scenarios that
    /// follow the design notes place nodes by hand).
    pub tokens: Option<Vec<(NodeId, Vec<crate::ring::Token>)>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        let mut lsm = LsmConfig::small_for_tests();
        lsm.memtable_bytes_max = 64 << 10;
        lsm.compaction.l1_bytes_max = 256 << 10;
        lsm.compaction.table_bytes_target = 64 << 10;
        lsm.table.block_bytes = 4096;
        lsm.value_bytes_max = 64 << 10;
        // Tombstones must outlive every repair (hint replay, read repair) that could still
        // deliver an older version; simulated runs last seconds.
        lsm.tombstone_grace_ms = 3600 * 1000;
        SimConfig {
            seed: 1,
            nodes: 5,
            n: 3,
            w: 2,
            r: 2,
            vnodes: 8,
            sync: SyncPolicy::Always,
            network: NetworkConfig::default(),
            disk_write_ms: 1,
            disk_sync_ms: 2,
            disk_read_ms: 1,
            job_step_ms: 1,
            request_timeout_ms: 500,
            detection_ms: 50,
            lsm,
            hints_max: 10_000,
            hint_ttl_ms: 3600 * 1000,
            hint_replay_interval_ms: 500,
            anti_entropy_interval_ms: 1_000,
            merkle_depth: 6,
            gossip: None,
            workload: WorkloadConfig::default(),
            log_capacity: 100_000,
            tokens: None,
        }
    }
}

impl SimConfig {
    /// The node ids, `n1` … `nN`.
    pub fn node_ids(&self) -> Vec<NodeId> {
        (1..=self.nodes).map(NodeId).collect()
    }

    /// Gossip settings scaled for simulation: 100 ms rounds, a peer Suspect after about 2 s of
    /// silence and Dead 1 s later.
    pub fn fast_gossip() -> crate::membership::GossipConfig {
        let mut g = crate::membership::GossipConfig {
            gossip_interval_ms: 100,
            dead_after_ms: 1_000,
            ..crate::membership::GossipConfig::default()
        };
        g.phi.initial_interval_ms = 100;
        g
    }

    fn node_config(
        &self,
        id: NodeId,
        joining: bool,
        generation: u64,
    ) -> Result<NodeConfig, QuorumError> {
        let membership = match &self.gossip {
            None => crate::node::Membership::Oracle,
            Some(config) => crate::node::Membership::Gossip {
                seeds: self.node_ids().into_iter().take(3).collect(),
                config: config.clone(),
            },
        };
        Ok(NodeConfig {
            membership,
            joining,
            generation,
            address: format!("sim://{id}"),
            seed: self.seed ^ u64::from(id.0).rotate_left(17),
            join_delay_ms: self.gossip.as_ref().map_or(0, |g| 5 * g.gossip_interval_ms),
            request_timeout_ms: self.request_timeout_ms,
            value_bytes_max: self.lsm.value_bytes_max,
            hints_max: self.hints_max,
            hint_ttl_ms: self.hint_ttl_ms,
            hint_replay_interval_ms: self.hint_replay_interval_ms,
            anti_entropy_interval_ms: self.anti_entropy_interval_ms,
            merkle_depth: self.merkle_depth,
            anti_entropy_idle_timeout_ms: 4 * self.request_timeout_ms,
            tokens: match &self.tokens {
                Some(all) => all
                    .iter()
                    .find(|(n, _)| *n == id)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default(),
                None => crate::ring::node_tokens(id, self.vnodes, self.seed),
            },
            ..NodeConfig::new(id, self.n, self.w, self.r)?
        })
    }
}

/// Scheduled work. Node events carry the node's incarnation: after a crash, events meant for
/// the previous incarnation are discarded.
#[derive(Debug)]
enum Event {
    Deliver {
        id: u64,
        from: NodeId,
        to: NodeId,
        msg: Message,
    },
    Dropped {
        id: u64,
        from: NodeId,
        to: NodeId,
        reason: DropReason,
    },
    Timer {
        node: NodeId,
        incarnation: u64,
        timer: Timer,
    },
    StorageDone {
        node: NodeId,
        incarnation: u64,
        op: u64,
        result: StorageResult,
    },
    SyncDone {
        node: NodeId,
        incarnation: u64,
    },
    IntervalSync {
        node: NodeId,
        incarnation: u64,
    },
    JobStep {
        node: NodeId,
        incarnation: u64,
    },
    Client {
        op: OpId,
        node: NodeId,
        client_op: ClientOp,
    },
    PeerStatus {
        to: NodeId,
        about: NodeId,
        up: bool,
    },
    RingChanged {
        to: NodeId,
        members: Vec<(NodeId, Vec<crate::ring::Token>)>,
    },
    Stop {
        node: NodeId,
        incarnation: u64,
    },
    WorkloadTick,
}

impl Event {
    /// Work that keeps a request moving (as opposed to periodic timers and the workload).
    fn is_activity(&self) -> bool {
        !matches!(
            self,
            Event::Timer { .. }
                | Event::WorkloadTick
                | Event::IntervalSync { .. }
                | Event::PeerStatus { .. }
                | Event::RingChanged { .. }
                | Event::Stop { .. }
        )
    }
}

#[derive(Debug)]
struct Scheduled {
    at: Millis,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One simulated machine: the node, its two storage engines on their disks, its clock skew.
struct SimNode<D: MachineDisk> {
    node: Option<Node>,
    incarnation: u64,
    data: Option<Lsm<D>>,
    hints: Option<Lsm<D>>,
    data_disk: D,
    hint_disk: D,
    skew_ms: i64,
    /// Writes waiting for their store's next WAL sync.
    sync_waiting: crate::node::SyncWaiters,
    sync_scheduled: bool,
    /// Writes waiting, in order, for a store whose writes stall behind flushes.
    stalled: std::collections::VecDeque<storage::StalledWrite>,
    job: Option<(StoreId, Job<D>)>,
    /// The node left the ring gracefully: it does not restart.
    left: bool,
    /// The node is joining (it streams before it serves); cleared once it has joined.
    joining: bool,
    /// The ring the node knew when it crashed: it restarts with it, as a native node restarts
    /// with the ring its state file remembers, and then learns what changed meanwhile.
    last_ring: Option<Ring>,
    /// The removals the node knew of when it crashed ([`Node::removed`]), remembered with the
    /// ring: it starts with them and gossips them again.
    last_removed: Vec<(NodeId, u64)>,
}

impl<D: MachineDisk> SimNode<D> {
    fn lsm(&mut self, store: StoreId) -> Option<&mut Lsm<D>> {
        match store {
            StoreId::Data => self.data.as_mut(),
            StoreId::Hints => self.hints.as_mut(),
        }
    }
}

/// A node's state for drawing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeSnapshot {
    /// The node.
    pub id: NodeId,
    /// Whether it runs.
    pub up: bool,
    /// Its clock's offset from true time.
    pub skew_ms: i64,
    /// Peers it believes down.
    pub believes_down: Vec<NodeId>,
    /// Requests it is coordinating.
    pub in_flight: usize,
    /// Hints it holds, per owner.
    pub hints_held: BTreeMap<NodeId, u64>,
    /// Its data store.
    pub storage: Option<LsmStats>,
}

/// The whole cluster's state for drawing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterSnapshot {
    /// Simulated time.
    pub now: Millis,
    /// Every node.
    pub nodes: Vec<NodeSnapshot>,
    /// Messages in flight: id, from, to, kind, sent, arrives.
    pub in_flight: Vec<(u64, NodeId, NodeId, MessageKind, Millis, Millis)>,
    /// Cut links.
    pub partitions: Vec<(NodeId, NodeId)>,
}

/// A simulated cluster. See the module docs. Its machines run on [`SimDisk`] unless it was
/// built with [`Sim::with_disks`].
pub struct Sim<D: MachineDisk = SimDisk> {
    config: SimConfig,
    now: Millis,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: BTreeMap<NodeId, SimNode<D>>,
    /// Makes the disks of new machines.
    disks: DiskFactory<D>,
    ring: Ring,
    rng: DetRng,
    log: EventLog,
    history: History,
    partitions: Partitions,
    /// What each node was last told about each peer: (observer, subject) -> up.
    told: BTreeMap<(NodeId, NodeId), bool>,
    /// Messages in flight: id -> (from, to, kind, sent, arrives).
    flying: BTreeMap<u64, (NodeId, NodeId, MessageKind, Millis, Millis)>,
    next_msg: u64,
    next_op: OpId,
    workload_ops: u64,
    /// Which client operation each message, storage operation and log entry belongs to.
    tags: trace::Tags,
}

impl Sim<SimDisk> {
    /// Builds the cluster described by `config`, every node up, at time zero, its machines on
    /// [`SimDisk`]s.
    pub fn new(config: SimConfig) -> Result<Sim, SimError> {
        Sim::with_disks(config, sim_disks())
    }
}

impl<D: MachineDisk> Sim<D> {
    /// Builds the cluster described by `config`, every node up, at time zero, its machines on
    /// the disks `disks` makes.
    pub fn with_disks(config: SimConfig, disks: DiskFactory<D>) -> Result<Sim<D>, SimError> {
        check_quorums(config.n, config.w, config.r).map_err(NodeError::from)?;
        let ids = config.node_ids();
        let ring = match &config.tokens {
            Some(tokens) => Ring::new(tokens.iter().cloned()),
            None => Ring::build(&ids, config.vnodes, config.seed),
        };
        let rng = DetRng::seed_from_u64(config.seed);
        let mut sim = Sim::blank(config, ring, disks, Millis(0), rng);
        for id in ids {
            sim.insert_machine(id);
            sim.start_node(id)?;
        }
        if sim.config.workload.ops_per_sec > 0 {
            sim.schedule(Millis(0), Event::WorkloadTick);
        }
        Ok(sim)
    }

    /// A cluster with no machine yet, at time `now`.
    fn blank(
        config: SimConfig,
        ring: Ring,
        disks: DiskFactory<D>,
        now: Millis,
        rng: DetRng,
    ) -> Sim<D> {
        Sim {
            now,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: BTreeMap::new(),
            disks,
            ring,
            rng,
            log: EventLog::new(config.log_capacity),
            history: History::default(),
            partitions: Partitions::default(),
            told: BTreeMap::new(),
            flying: BTreeMap::new(),
            next_msg: 1,
            next_op: 1,
            workload_ops: 0,
            tags: trace::Tags::default(),
            config,
        }
    }

    /// A fresh machine for `id`: empty disks seeded from the cluster seed, not yet started.
    fn insert_machine(&mut self, id: NodeId) {
        let seed = self.config.seed ^ (u64::from(id.0) << 32);
        let data_disk = (self.disks)(id, StoreId::Data, seed);
        let hint_disk = (self.disks)(id, StoreId::Hints, seed ^ 0x5eed);
        self.nodes.insert(
            id,
            SimNode {
                node: None,
                incarnation: 0,
                data: None,
                hints: None,
                data_disk,
                hint_disk,
                skew_ms: 0,
                sync_waiting: crate::node::SyncWaiters::default(),
                sync_scheduled: false,
                stalled: std::collections::VecDeque::new(),
                job: None,
                left: false,
                joining: false,
                last_ring: None,
                last_removed: Vec::new(),
            },
        );
    }

    /// Adds a new node `id` with tokens drawn from the seed and asks it to join: it learns the
    /// ring, pulls the ranges it gains from their replicas, and once it has them every node is
    /// told the new ring (after the detection delay).
    pub fn add_node(&mut self, id: NodeId) -> Result<(), SimError> {
        if self.nodes.contains_key(&id) {
            return Ok(());
        }
        self.insert_machine(id);
        self.history.topology_change(self.now);
        if let Some(n) = self.nodes.get_mut(&id) {
            n.joining = true;
        }
        self.start_node(id)?;
        self.update_views();
        Ok(())
    }

    /// Asks `node` to leave gracefully: it hands its ranges to their new owners, then stops.
    pub fn leave(&mut self, node: NodeId) {
        if self.is_up(node) {
            self.history.topology_change(self.now);
            self.input(node, Input::Leave);
        }
    }

    /// Every node's ring changes: `node` joined or left. Nodes hear it after the detection
    /// delay, as they would through gossip.
    fn ring_changed(&mut self, node: NodeId, joined: bool) {
        self.history.topology_change(self.now);
        self.ring = if joined {
            let tokens = crate::ring::node_tokens(node, self.config.vnodes, self.config.seed);
            self.ring.with_node(node, tokens)
        } else {
            self.ring.without_node(node)
        };
        let members: Vec<(NodeId, Vec<crate::ring::Token>)> = self
            .ring
            .nodes()
            .iter()
            .map(|n| (*n, self.ring.tokens_of(*n)))
            .collect();
        if joined && let Some(n) = self.nodes.get_mut(&node) {
            n.joining = false;
        }
        if let Some(g) = &self.config.gossip {
            // Gossip carries the change. A leaving node keeps gossiping for a few rounds so that
            // everyone hears it left, then stops.
            if !joined {
                let at = Millis(self.now.0 + 10 * g.gossip_interval_ms);
                let incarnation = self.incarnation(node);
                self.schedule(at, Event::Stop { node, incarnation });
            }
            return;
        }
        let at = Millis(self.now.0 + self.config.detection_ms);
        for id in self.node_ids() {
            if id != node {
                let members = members.clone();
                self.schedule(at, Event::RingChanged { to: id, members });
            }
        }
        if !joined {
            self.stop(node);
        }
    }

    /// Clients waiting on `node`, which just went away, lose their connection.
    fn disconnect_clients(&mut self, node: NodeId) {
        let orphaned: Vec<OpId> = self
            .history
            .ops()
            .filter(|o| o.node == node && o.completed.is_none())
            .map(|o| o.id)
            .collect();
        for op in orphaned {
            self.client_done(op, node, Err(ClientError::NodeDown));
        }
    }

    /// A node that has handed everything over shuts down for good.
    fn stop(&mut self, node: NodeId) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.node = None;
            n.left = true;
            n.incarnation += 1;
        }
        self.disconnect_clients(node);
        self.log.push(self.now, SimEvent::NodeStopped { node });
        self.update_views();
    }

    /// An operator removes `node` (a dead member that will not come back), through `via`:
    /// gossip spreads it, or the oracle tells everyone. A node that is down when it is removed
    /// is gone for good: it is never restarted, and what only its disks held is lost.
    pub fn remove_node(&mut self, node: NodeId, via: NodeId) {
        self.history.topology_change(self.now);
        self.ring = self.ring.without_node(node);
        if !self.is_up(node)
            && let Some(n) = self.nodes.get_mut(&node)
        {
            n.left = true;
        }
        if self.config.gossip.is_some() {
            self.input(via, Input::Remove { node });
        } else {
            for id in self.node_ids() {
                if self.is_up(id) {
                    self.input(id, Input::Remove { node });
                }
            }
        }
        let description = format!("operator removes {node} through {via}");
        self.log.push(self.now, SimEvent::Fault { description });
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Simulated time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The event log.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Every client operation so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The node ids.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Whether `node` is running.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.nodes.get(&node).is_some_and(|n| n.node.is_some())
    }

    /// A node's state machine, if it runs.
    pub fn node(&self, node: NodeId) -> Option<&Node> {
        self.nodes.get(&node).and_then(|n| n.node.as_ref())
    }

    /// A node's newest stored cell for `key` in its data store (for checks and the UI).
    pub fn stored(&self, node: NodeId, key: &[u8]) -> Option<Cell> {
        let sim_node = self.nodes.get(&node)?;
        sim_node.data.as_ref()?.get(key).ok().flatten()
    }

    fn local(&self, node: NodeId) -> Millis {
        let skew = self.nodes.get(&node).map_or(0, |n| n.skew_ms);
        Millis(self.now.0.saturating_add_signed(skew))
    }

    fn incarnation(&self, node: NodeId) -> u64 {
        self.nodes.get(&node).map_or(0, |n| n.incarnation)
    }

    fn schedule(&mut self, at: Millis, event: Event) {
        let seq = self.seq;
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at: at.max(self.now),
            seq,
            event,
        }));
    }

    // ---- nodes: start, crash, restart ------------------------------------------------------

    fn start_node(&mut self, id: NodeId) -> Result<(), SimError> {
        let (joining, incarnation) = self
            .nodes
            .get(&id)
            .map_or((false, 0), |n| (n.joining, n.incarnation));
        let generation = (self.now.0 << 16) + incarnation + 1;
        let mut node_config = self
            .config
            .node_config(id, joining, generation)
            .map_err(NodeError::from)?;
        if let Some(n) = self.nodes.get(&id) {
            node_config.removed = n.last_removed.clone();
        }
        // The engines run the cluster's sync policy: the shared storage code decides by it
        // whether a write waits for a sync.
        let lsm_config = LsmConfig {
            sync: self.config.sync,
            ..self.config.lsm.clone()
        };
        let hint_config = crate::node::hint_store_config(&lsm_config);
        let local = self.local(id);
        let current = self.ring.clone();
        let Some(sim_node) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        // A machine whose storage does not open stays down, remembering its ring.
        let (data, _) = Lsm::open(sim_node.data_disk.clone(), lsm_config)?;
        let (hints, _) = Lsm::open(sim_node.hint_disk.clone(), hint_config)?;
        let ring = sim_node
            .last_ring
            .clone()
            .unwrap_or_else(|| current.clone());
        let missed_ring_change = ring != current;
        let (node, outputs) = Node::new(node_config, ring, local)?;
        sim_node.last_ring = None;
        sim_node.data = Some(data);
        sim_node.hints = Some(hints);
        sim_node.incarnation += 1;
        sim_node.node = Some(node);
        self.log.push(self.now, SimEvent::NodeUp { node: id });
        self.apply(id, outputs);
        if missed_ring_change {
            // Until it learns the current ring it routes by the old one: a membership change
            // for the checker, as a join or leave is.
            self.history.topology_change(self.now);
        }
        if missed_ring_change && self.config.gossip.is_none() {
            // The oracle tells it the ring it missed, as it tells everyone of a change.
            let at = Millis(self.now.0 + self.config.detection_ms);
            let members = current
                .nodes()
                .iter()
                .map(|n| (*n, current.tokens_of(*n)))
                .collect();
            self.schedule(at, Event::RingChanged { to: id, members });
        }
        if let SyncPolicy::IntervalMs(ms) = self.config.sync {
            let incarnation = self.incarnation(id);
            self.schedule(
                Millis(self.now.0 + ms),
                Event::IntervalSync {
                    node: id,
                    incarnation,
                },
            );
        }
        Ok(())
    }

    /// Crashes `node`: it stops, and its disks lose whatever was not synced.
    pub fn crash(&mut self, node: NodeId) {
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return;
        };
        let Some(crashed) = sim_node.node.take() else {
            return;
        };
        sim_node.last_ring = Some(crashed.ring().clone());
        sim_node.last_removed = crashed.removed();
        sim_node.data = None;
        sim_node.hints = None;
        sim_node.job = None;
        sim_node.sync_waiting.clear();
        sim_node.sync_scheduled = false;
        sim_node.stalled.clear();
        sim_node.incarnation += 1;
        sim_node.data_disk.crash();
        sim_node.hint_disk.crash();
        self.tags.crashed(node);
        self.log.push(self.now, SimEvent::NodeDown { node });
        if !self.config.sync.acks_after_sync() {
            self.history.data_loss(self.now);
        }
        self.disconnect_clients(node);
        self.update_views();
    }

    /// Restarts a crashed `node` from what its disks kept.
    pub fn restart(&mut self, node: NodeId) -> Result<(), SimError> {
        let left = self.nodes.get(&node).is_none_or(|n| n.left);
        if self.is_up(node) || left {
            return Ok(());
        }
        self.start_node(node)?;
        // A fresh node knows nothing of who is down: tell it now, as a failure detector would
        // after its first rounds.
        self.told.retain(|(observer, _), _| *observer != node);
        self.update_views();
        Ok(())
    }

    /// Cuts links between groups `a` and `b` (only a → b if `one_way`).
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId], one_way: bool) {
        self.partitions.split(a, b, one_way);
        let show = |g: &[NodeId]| {
            g.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let arrow = if one_way { "->" } else { "|" };
        let description = format!("partition {} {arrow} {}", show(a), show(b));
        self.log.push(self.now, SimEvent::Fault { description });
        self.update_views();
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.partitions.heal();
        self.log.push(
            self.now,
            SimEvent::Fault {
                description: "heal".to_string(),
            },
        );
        self.update_views();
    }

    /// Runs a major compaction on `node`'s data store at its local time: every expired
    /// tombstone that nothing older could still need is purged (an operator's `compact`). The
    /// flushes and compactions it ran are logged, as background ones are (a compaction into
    /// the deepest level as from the level above it).
    pub fn compact(&mut self, node: NodeId) -> Result<(), StorageError> {
        let local = self.local(node);
        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return Ok(());
        };
        sim_node.job = None;
        let Some(lsm) = sim_node.data.as_mut() else {
            return Ok(());
        };
        let before = lsm.stats();
        let result = lsm.compact_all(local);
        let after = lsm.stats();
        let store = crate::node::StoreId::Data;
        for _ in before.flushes..after.flushes {
            self.log.push(self.now, SimEvent::Flush { node, store });
        }
        let deepest = after.levels.iter().rposition(|l| l.tables > 0).unwrap_or(1);
        for _ in before.compactions..after.compactions {
            let level = deepest.saturating_sub(1);
            self.log
                .push(self.now, SimEvent::Compaction { node, store, level });
        }
        result
    }

    /// Whether every replica of every key in `keys` holds the same newest version, by the
    /// current ring: `Err` names the first key whose replicas disagree.
    pub fn replicas_agree<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), String> {
        for key in keys {
            let replicas = self
                .ring
                .preference_list(crate::ring::key_token(key), self.config.n);
            let versions: Vec<(NodeId, Option<crate::storage::Version>)> = replicas
                .iter()
                .map(|&r| (r, self.stored(r, key).map(|c| c.version)))
                .collect();
            if versions.windows(2).any(|w| w[0].1 != w[1].1) {
                return Err(format!(
                    "replicas of {} disagree: {versions:?}",
                    String::from_utf8_lossy(key)
                ));
            }
        }
        Ok(())
    }

    /// Sets `node`'s clock offset from true time.
    pub fn set_skew(&mut self, node: NodeId, skew_ms: i64) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.skew_ms = skew_ms;
            let description = format!("{node} clock skew {skew_ms:+} ms");
            self.log.push(self.now, SimEvent::Fault { description });
        }
    }

    /// Changes the network's behaviour (loss, latency...).
    pub fn set_network(&mut self, network: NetworkConfig) {
        self.config.network = network;
    }

    /// Changes the workload; a rate of zero stops it.
    pub fn set_workload(&mut self, workload: WorkloadConfig) {
        let was_off = self.config.workload.ops_per_sec == 0;
        self.config.workload = workload;
        if was_off && self.config.workload.ops_per_sec > 0 {
            self.schedule(self.now, Event::WorkloadTick);
        }
    }

    /// The oracle: what each running node should believe about each peer (up, reachable to
    /// it), and news of every change after the detection delay.
    fn update_views(&mut self) {
        if self.config.gossip.is_some() {
            return;
        }
        let ids = self.node_ids();
        for &observer in &ids {
            if !self.is_up(observer) {
                continue;
            }
            for &subject in &ids {
                if subject == observer {
                    continue;
                }
                let up = self.is_up(subject) && !self.partitions.is_cut(subject, observer);
                let known = self.told.get(&(observer, subject)).copied().unwrap_or(true);
                if known != up {
                    self.told.insert((observer, subject), up);
                    let at = Millis(self.now.0 + self.config.detection_ms);
                    self.schedule(
                        at,
                        Event::PeerStatus {
                            to: observer,
                            about: subject,
                            up,
                        },
                    );
                }
            }
        }
    }

    // ---- client operations ------------------------------------------------------------------

    /// Sends a client operation to coordinator `node` now; returns its id.
    pub fn client(&mut self, node: NodeId, op: ClientOp) -> OpId {
        let id = self.next_op;
        self.next_op += 1;
        let kind = match op {
            ClientOp::Put { .. } => OpKind::Put,
            ClientOp::Get { .. } => OpKind::Get,
            ClientOp::Delete { .. } => OpKind::Delete,
        };
        let key = op.key().to_vec();
        self.log.push(
            self.now,
            SimEvent::ClientBegin {
                op: id,
                node,
                kind,
                key: key.clone(),
            },
        );
        self.history.invoke(id, kind, key, node, self.now);
        self.schedule(
            self.now,
            Event::Client {
                op: id,
                node,
                client_op: op,
            },
        );
        id
    }

    fn client_done(&mut self, op: OpId, node: NodeId, result: crate::node::ClientResult) {
        self.log.push(
            self.now,
            SimEvent::ClientDone {
                op,
                node,
                result: result.clone(),
            },
        );
        self.history.complete(op, self.now, result);
    }

    // ---- running --------------------------------------------------------------------------

    /// Runs the next event; `false` when nothing is scheduled.
    pub fn step(&mut self) -> bool {
        let Some(Reverse(next)) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(next.at);
        self.run_event(next.event);
        true
    }

    /// Runs every event up to time `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Millis) {
        while self.queue.peek().is_some_and(|Reverse(s)| s.at <= t) {
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// Runs for `ms` of simulated time.
    pub fn run_for(&mut self, ms: u64) {
        self.run_until(Millis(self.now.0 + ms));
    }

    /// Runs until no message, storage operation or client request is pending (periodic timers
    /// and the workload aside), or `max_ms` passes. Returns whether it went quiet.
    pub fn run_until_quiet(&mut self, max_ms: u64) -> bool {
        let deadline = Millis(self.now.0 + max_ms);
        loop {
            if self.is_quiet() {
                return true;
            }
            match self.queue.peek() {
                Some(Reverse(s)) if s.at <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return false;
                }
            }
        }
    }

    /// Runs until operation `op` has completed, or `max_ms` passes.
    pub fn run_until_done(&mut self, op: OpId, max_ms: u64) -> bool {
        let deadline = Millis(self.now.0 + max_ms);
        while self.history.op(op).is_some_and(|o| o.completed.is_none()) {
            match self.queue.peek() {
                Some(Reverse(s)) if s.at <= deadline => {
                    self.step();
                }
                _ => return false,
            }
        }
        true
    }

    fn run_event(&mut self, event: Event) {
        match event {
            Event::Deliver { id, from, to, msg } => {
                if !self.is_up(to) {
                    return self.drop_message(id, from, to, DropReason::NodeDown);
                }
                self.flying.remove(&id);
                let tag = self.tags.message_done(id);
                self.log
                    .push(self.now, SimEvent::MessageDelivered { id, from, to });
                self.tag_last_entry(tag);
                self.input_caused(to, Input::Message { from, msg }, tag);
            }
            Event::Dropped {
                id,
                from,
                to,
                reason,
            } => self.drop_message(id, from, to, reason),
            Event::Timer {
                node,
                incarnation,
                timer,
            } => {
                if self.incarnation(node) == incarnation {
                    self.input(node, Input::Timer(timer));
                }
            }
            Event::StorageDone {
                node,
                incarnation,
                op,
                result,
            } => {
                if self.incarnation(node) == incarnation {
                    self.input(node, Input::Storage { op, result });
                }
            }
            Event::SyncDone { node, incarnation } => {
                if self.incarnation(node) == incarnation {
                    self.sync_done(node);
                }
            }
            Event::IntervalSync { node, incarnation } => {
                if self.incarnation(node) == incarnation {
                    self.interval_sync(node);
                }
            }
            Event::JobStep { node, incarnation } => {
                if self.incarnation(node) == incarnation {
                    self.job_step(node);
                }
            }
            Event::Client {
                op,
                node,
                client_op,
            } => {
                if self.is_up(node) {
                    self.input(
                        node,
                        Input::Client {
                            client: op,
                            op: client_op,
                        },
                    );
                } else {
                    self.client_done(op, node, Err(ClientError::NodeDown));
                }
            }
            Event::PeerStatus { to, about, up } => {
                if self.is_up(to) {
                    self.input(to, Input::PeerStatus { node: about, up });
                }
            }
            Event::RingChanged { to, members } => {
                if self.is_up(to) {
                    self.input(to, Input::RingChanged { members });
                }
            }
            Event::Stop { node, incarnation } => {
                if self.incarnation(node) == incarnation {
                    self.stop(node);
                }
            }
            Event::WorkloadTick => self.workload_tick(),
        }
    }

    fn drop_message(&mut self, id: u64, from: NodeId, to: NodeId, reason: DropReason) {
        let kind = self.flying.remove(&id).map_or(MessageKind::Write, |f| f.2);
        let tag = self.tags.message_done(id);
        self.log.push(
            self.now,
            SimEvent::MessageDropped {
                id,
                from,
                to,
                kind,
                reason,
            },
        );
        self.tag_last_entry(tag);
    }

    /// Tags the entry just logged with client operation `op` (see [`trace`]).
    fn tag_last_entry(&mut self, op: Option<OpId>) {
        if let Some(op) = op {
            let end = self.log.total();
            let oldest = self.log.entries().front().map_or(0, |e| e.seq);
            self.tags.entries(end.saturating_sub(1), end, op, oldest);
        }
    }

    /// Feeds `input` to `node`. A client request is tagged with its operation, a storage
    /// completion with the operation its request belonged to (see [`trace`]).
    fn input(&mut self, node: NodeId, input: Input) {
        let cause = match &input {
            Input::Client { client, .. } => Some(*client),
            Input::Storage { op, .. } => self.tags.storage_done(node, *op),
            _ => None,
        };
        self.input_caused(node, input, cause);
    }

    /// Feeds `input` to `node`; what it does inherits `cause`.
    fn input_caused(&mut self, node: NodeId, input: Input, cause: Option<OpId>) {
        let local = self.local(node);
        let outputs = match self.nodes.get_mut(&node).and_then(|n| n.node.as_mut()) {
            Some(n) => n.handle(local, input),
            None => return,
        };
        let previous = std::mem::replace(&mut self.tags.cause, cause);
        let start = self.log.total();
        self.apply(node, outputs);
        if let Some(op) = cause {
            let oldest = self.log.entries().front().map_or(0, |e| e.seq);
            self.tags.entries(start, self.log.total(), op, oldest);
        }
        self.tags.cause = previous;
    }

    fn apply(&mut self, node: NodeId, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, msg } => self.send(node, to, msg),
                Output::Reply { client, result } => self.client_done(client, node, result),
                Output::SetTimer { at, timer } => {
                    let skew = self.nodes.get(&node).map_or(0, |n| n.skew_ms);
                    let global = Millis(at.0.saturating_add_signed(-skew));
                    let incarnation = self.incarnation(node);
                    self.schedule(
                        global,
                        Event::Timer {
                            node,
                            incarnation,
                            timer,
                        },
                    );
                }
                Output::Storage { op, storage } => {
                    self.tags.storage_started(node, op);
                    self.storage(node, op, storage);
                }
                Output::Event(event) => {
                    let ring_change = match event {
                        NodeEvent::Joined => Some(true),
                        NodeEvent::Left => Some(false),
                        _ => None,
                    };
                    self.log.push(self.now, SimEvent::Node { node, event });
                    if let Some(joined) = ring_change {
                        self.ring_changed(node, joined);
                    }
                }
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let id = self.next_msg;
        self.next_msg += 1;
        self.tags.sent(id);
        let fate = network::fate(
            &self.config.network,
            &self.partitions,
            &mut self.rng,
            from,
            to,
        );
        let arrives = Millis(self.now.0 + fate.latency_ms);
        let kind = msg.kind();
        let label = label(&msg);
        self.log.push(
            self.now,
            SimEvent::MessageSent {
                id,
                from,
                to,
                kind,
                label,
                arrives,
            },
        );
        self.flying.insert(id, (from, to, kind, self.now, arrives));
        // What crosses the wire: a message a partition or loss drops is never encoded.
        let (dropped, msg) = match fate.dropped {
            Some(reason) => (Some(reason), None),
            None => Self::over_the_wire(from, to, msg),
        };
        if let (Some(dup_ms), Some(msg)) = (fate.duplicate_ms, &msg) {
            let dup = self.next_msg;
            self.next_msg += 1;
            self.tags.sent(dup);
            let label = format!("{} (duplicate)", label_short(msg));
            let dup_at = Millis(self.now.0 + dup_ms);
            self.log.push(
                self.now,
                SimEvent::MessageSent {
                    id: dup,
                    from,
                    to,
                    kind,
                    label,
                    arrives: dup_at,
                },
            );
            self.flying.insert(dup, (from, to, kind, self.now, dup_at));
            self.schedule(
                dup_at,
                Event::Deliver {
                    id: dup,
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
        match (dropped, msg) {
            (None, Some(msg)) => self.schedule(arrives, Event::Deliver { id, from, to, msg }),
            (reason, _) => self.schedule(
                arrives,
                Event::Dropped {
                    id,
                    from,
                    to,
                    reason: reason.unwrap_or(DropReason::Undecodable),
                },
            ),
        }
    }

    /// The message `to` receives from `from` ([`network::carry`]; a message to oneself is
    /// handed over as it is), or why it is dropped.
    fn over_the_wire(
        from: NodeId,
        to: NodeId,
        msg: Message,
    ) -> (Option<DropReason>, Option<Message>) {
        if from == to {
            return (None, Some(msg));
        }
        match network::carry(&msg) {
            Ok((received, _)) => (None, Some(received)),
            Err(reason) => (Some(reason), None),
        }
    }

    // ---- workload ---------------------------------------------------------------------------

    fn workload_tick(&mut self) {
        let rate = u64::from(self.config.workload.ops_per_sec);
        if rate == 0 {
            return;
        }
        // One tick per 10 ms (or per op when slower), with the remainder carried by counting.
        let tick_ms = (1000 / rate).clamp(1, 10);
        let due = (self.now.0 + tick_ms) * rate / 1000 - self.now.0 * rate / 1000;
        let up: Vec<NodeId> = self
            .node_ids()
            .into_iter()
            .filter(|n| self.is_up(*n))
            .collect();
        for _ in 0..due {
            if up.is_empty() {
                break;
            }
            let coordinator = up[self.rng.random_range(0..up.len())];
            self.workload_ops += 1;
            let op = workload::next_op(&self.config.workload, &mut self.rng, self.workload_ops);
            self.client(coordinator, op);
        }
        self.schedule(Millis(self.now.0 + tick_ms), Event::WorkloadTick);
    }
}
