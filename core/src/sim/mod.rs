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
//! [`Input::PeerStatus`](crate::node::Input::PeerStatus), the same input a failure detector feeds; the data-path golden
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
//!
//! The code: `mod.rs` holds [`Sim`]'s state and getters; `config` the [`SimConfig`]; `queue`
//! the scheduled events; `drive` the drive loop (stepping, running, carrying outputs out,
//! client operations, the workload); `operator` what is done to the cluster from outside
//! (start, crash, restart, join, leave, remove, partition, heal, skew); `inspect` the
//! observation API (snapshots, stored values, replica agreement) and message labels; `storage`
//! the storage driver and `resume` saving and restoring a whole simulation.

mod config;
mod drive;
mod error;
mod fork;
pub mod history;
mod inspect;
pub mod live_check;
pub mod log;
mod machine_disk;
pub mod network;
mod operator;
mod queue;
mod resume;
pub mod script;
mod storage;
pub mod trace;
pub mod workload;

pub use config::SimConfig;
pub use error::SimError;
use inspect::label_short;
pub use inspect::{ClusterSnapshot, NodeSnapshot, label};
pub use machine_disk::{DiskFactory, MachineDisk, sim_disks};
use queue::{Event, Scheduled};
pub use resume::{MachineState, SimState};

use crate::DetRng;
use crate::node::{Node, NodeError, StoreId, check_quorums};
use crate::ring::Ring;
use crate::storage::{Cell, Job, Lsm, SimDisk};
use crate::wire::MessageKind;
use crate::{Millis, NodeId};
use history::History;
use log::{EventLog, OpId};
use network::Partitions;
use rand::SeedableRng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

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
            history: History::new(config.n),
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
}
