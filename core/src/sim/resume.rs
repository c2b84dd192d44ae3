//! Saving and resuming a whole simulated cluster: what a host (the browser) stores beside the
//! machines' disks so that it can rebuild the same cluster later.
//!
//! [`Sim::state`] captures the cluster's configuration as it is now (the [`SimConfig`] with
//! every network and workload change applied), its simulated time, its ring, each machine's
//! clock skew and whether it runs, has left or is joining, and the cut links. [`Sim::resume`]
//! rebuilds the cluster at that time from that state and from the machines' disks: every
//! machine that was running restarts and recovers from its disks exactly as after a crash (WAL
//! replay, torn tails cut), so a resume is a crash of the whole cluster at the moment the state
//! and the disks were saved. What does not survive, by design: messages in flight, timers,
//! pending storage operations, client operations in progress, the event log and the history
//! checker (they start empty), failure detectors' samples (nodes learn of each other again),
//! and a graceful leave in progress (the node comes back as a member). A join in progress starts
//! over. Random draws continue from a generator seeded by the cluster seed and the resume time.

use super::SimError;
use super::log::SimEvent;
use super::{DiskFactory, Event, MachineDisk, Sim, SimConfig};
use crate::ring::{Ring, Token};
use crate::{DetRng, Millis, NodeId};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// One machine of a saved cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineState {
    /// The node.
    pub id: NodeId,
    /// Whether its node was running (it restarts on resume) or crashed (it stays down).
    pub up: bool,
    /// It left the ring gracefully and never restarts.
    pub left: bool,
    /// It was joining: on resume it starts its join over.
    pub joining: bool,
    /// Its clock's offset from true time.
    pub skew_ms: i64,
    /// How many times it started: a resumed node's gossip generation is newer than any before.
    pub incarnation: u64,
}

/// Everything about a cluster that its disks do not hold. See the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimState {
    /// The configuration, with the network and workload as last set.
    pub config: SimConfig,
    /// Simulated time.
    pub now: Millis,
    /// The ring: every member and its tokens.
    pub ring: Vec<(NodeId, Vec<Token>)>,
    /// Every machine, in id order.
    pub machines: Vec<MachineState>,
    /// Cut links, `from → to`.
    pub cut_links: Vec<(NodeId, NodeId)>,
}

/// Mixed into the seed of a resumed cluster's generator, so that it differs from the one a
/// fresh cluster with the same seed starts with.
const RESUME_SEED_SALT: u64 = 0x7265_7375_6d65_0001;

impl<D: MachineDisk> Sim<D> {
    /// The cluster's state to save beside its disks (see the module docs).
    pub fn state(&self) -> SimState {
        SimState {
            config: self.config.clone(),
            now: self.now,
            ring: self
                .ring
                .nodes()
                .iter()
                .map(|n| (*n, self.ring.tokens_of(*n)))
                .collect(),
            machines: self
                .nodes
                .iter()
                .map(|(&id, n)| MachineState {
                    id,
                    up: n.node.is_some(),
                    left: n.left,
                    joining: n.joining,
                    skew_ms: n.skew_ms,
                    incarnation: n.incarnation,
                })
                .collect(),
            cut_links: self.partitions.links().copied().collect(),
        }
    }

    /// Rebuilds a saved cluster at its saved time: `disks` must hand back each machine's saved
    /// disks (it is called for every machine of `state`, in id order, data then hints, and later
    /// for machines that join). Every machine that was up recovers from its disks; the others
    /// stay down. Fails if a storage engine refuses its disk (corruption), with nothing started.
    pub fn resume(state: SimState, disks: DiskFactory<D>) -> Result<Sim<D>, SimError> {
        let SimState {
            config,
            now,
            ring,
            machines,
            cut_links,
        } = state;
        let rng = DetRng::seed_from_u64(config.seed ^ now.0.rotate_left(32) ^ RESUME_SEED_SALT);
        let mut sim = Sim::blank(config, Ring::new(ring), disks, now, rng);
        for m in &machines {
            sim.insert_machine(m.id);
            if let Some(n) = sim.nodes.get_mut(&m.id) {
                n.left = m.left;
                n.joining = m.joining;
                n.skew_ms = m.skew_ms;
                n.incarnation = m.incarnation;
            }
        }
        for (from, to) in cut_links {
            sim.partitions.split(&[from], &[to], true);
        }
        let description = format!("cluster resumed from its saved state at {now}");
        sim.log.push(now, SimEvent::Fault { description });
        for m in machines.iter().filter(|m| m.up && !m.left) {
            sim.start_node(m.id)?;
        }
        sim.update_views();
        if sim.config.workload.ops_per_sec > 0 {
            sim.schedule(now, Event::WorkloadTick);
        }
        Ok(sim)
    }

    /// Every machine's disks: `(node, data disk, hint disk)`, in id order (for a host that
    /// persists them).
    pub fn disks(&self) -> impl Iterator<Item = (NodeId, &D, &D)> {
        self.nodes
            .iter()
            .map(|(&id, n)| (id, &n.data_disk, &n.hint_disk))
    }
}
