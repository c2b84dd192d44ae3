//! A deterministic mini-simulation of many [`Gossiper`]s, for the convergence tests and the
//! `gossip_detection` example.
//!
//! It exists so the membership protocol can be measured on its own, before (and independently
//! of) the cluster simulator in [`crate::sim`]: no storage, no coordinator, only gossip.
//!
//! **Model.** Time is discrete (ms). Each node ticks every `gossip_interval_ms` at its own
//! seeded offset inside the interval, so rounds are not in lock-step. Every message takes a
//! seeded latency in `latency_ms` and is lost with probability `loss_ppm` / 10⁶, or dropped if
//! a partition separates sender and receiver. A crashed node neither ticks nor answers; a
//! restarted one is a fresh [`Gossiper`] with a larger generation that knows only the seeds.
//! Everything is drawn from one seed, so a run replays exactly.

use super::{GossipConfig, GossipError, GossipEvent, GossipMsg, Gossiper, MemberStatus, Verdict};
use crate::DetRng;
use crate::ring::node_tokens;
use crate::{Millis, NodeId};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

/// A mini-simulation's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Nodes `n1..=nN` started at time 0.
    pub nodes: usize,
    /// Seeds: `n1..=n<seeds>`.
    pub seeds: usize,
    /// Everything random is drawn from this.
    pub seed: u64,
    /// Probability, in parts per million, that a message is lost.
    pub loss_ppm: u32,
    /// Message latency, drawn uniformly from this range (ms).
    pub latency_ms: (u64, u64),
    /// Ring tokens per node (they make the deltas realistically large).
    pub vnodes: u32,
    /// The gossipers' settings.
    pub gossip: GossipConfig,
    /// Events kept in [`GossipSim::events`] at most (later ones are counted, not kept).
    pub events_max: usize,
}

impl SimConfig {
    /// `nodes` nodes, 3 seeds, no loss, 1–20 ms latency, 16 vnodes, default gossip settings.
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            nodes,
            seeds: 3,
            seed,
            loss_ppm: 0,
            latency_ms: (1, 20),
            vnodes: 16,
            gossip: GossipConfig::default(),
            events_max: 100_000,
        }
    }
}

#[derive(Debug)]
enum SimEvent {
    Tick {
        node: NodeId,
        incarnation: u64,
    },
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: GossipMsg,
    },
}

#[derive(Debug)]
struct SimNode {
    gossiper: Gossiper,
    rng: DetRng,
    up: bool,
    incarnation: u64,
}

/// Many gossipers on a simulated network.
#[derive(Debug)]
pub struct GossipSim {
    config: SimConfig,
    net_rng: DetRng,
    nodes: BTreeMap<NodeId, SimNode>,
    queue: BTreeMap<(Millis, u64), SimEvent>,
    seq: u64,
    now: Millis,
    /// While partitioned: one side (messages between it and the rest are dropped).
    side: Option<BTreeSet<NodeId>>,
    events: Vec<(Millis, NodeId, GossipEvent)>,
    events_dropped: u64,
    messages_sent: u64,
}

impl GossipSim {
    /// Starts `config.nodes` nodes at time 0, each knowing only the seeds. Fails if the gossip
    /// settings are refused by [`Gossiper::new`].
    pub fn new(config: SimConfig) -> Result<GossipSim, GossipError> {
        let mut sim = GossipSim {
            net_rng: DetRng::seed_from_u64(config.seed),
            config,
            nodes: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            now: Millis(0),
            side: None,
            events: Vec::new(),
            events_dropped: 0,
            messages_sent: 0,
        };
        for i in 1..=sim.config.nodes {
            sim.start(NodeId(i as u32))?;
        }
        Ok(sim)
    }

    /// The current simulated time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The gossip interval.
    pub fn interval_ms(&self) -> u64 {
        self.config.gossip.gossip_interval_ms
    }

    /// Node `node`'s gossiper, if it was ever started.
    pub fn gossiper(&self, node: NodeId) -> Option<&Gossiper> {
        self.nodes.get(&node).map(|n| &n.gossiper)
    }

    /// The nodes that are up.
    pub fn up_nodes(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.up)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Every event so far (up to `events_max`), with the time and the node that logged it.
    pub fn events(&self) -> &[(Millis, NodeId, GossipEvent)] {
        &self.events
    }

    /// Messages sent so far (including lost ones).
    pub fn messages_sent(&self) -> u64 {
        self.messages_sent
    }

    /// Stops `node`: it no longer ticks or answers; messages to it are lost.
    pub fn crash(&mut self, node: NodeId) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.up = false;
        }
    }

    /// Starts (or restarts) `node` now, as a fresh gossiper with a larger generation, Alive at
    /// once.
    pub fn start(&mut self, node: NodeId) -> Result<(), GossipError> {
        let c = &self.config;
        let seeds: Vec<NodeId> = (1..=c.seeds.min(c.nodes))
            .map(|i| NodeId(i as u32))
            .collect();
        let tokens = node_tokens(node, c.vnodes, c.seed);
        let (generation, incarnation) = match self.nodes.get(&node) {
            Some(old) => (
                (self.now.0 + 1).max(old.gossiper.generation() + 1),
                old.incarnation + 1,
            ),
            None => (self.now.0 + 1, 0),
        };
        let address = format!("sim://{node}");
        let mut gossiper =
            Gossiper::new(node, generation, address, tokens, seeds, c.gossip.clone())?;
        gossiper.set_status(MemberStatus::Alive)?;
        let mut rng = DetRng::seed_from_u64(c.seed ^ (u64::from(node.0) << 32) ^ incarnation);
        let offset = rng.random_range(0..c.gossip.gossip_interval_ms);
        self.nodes.insert(
            node,
            SimNode {
                gossiper,
                rng,
                up: true,
                incarnation,
            },
        );
        self.schedule(
            Millis(self.now.0 + offset),
            SimEvent::Tick { node, incarnation },
        );
        Ok(())
    }

    /// Changes `node`'s own status through its gossiper (see [`Gossiper::set_status`]).
    pub fn set_status(&mut self, node: NodeId, status: MemberStatus) -> Result<(), GossipError> {
        match self.nodes.get_mut(&node) {
            Some(n) => n.gossiper.set_status(status),
            None => Err(GossipError::CannotRemove(node)),
        }
    }

    /// Cuts the network between `side` and every other node.
    pub fn partition(&mut self, side: &[NodeId]) {
        self.side = Some(side.iter().copied().collect());
    }

    /// Heals the partition.
    pub fn heal(&mut self) {
        self.side = None;
    }

    /// Runs every event up to and including `until`.
    pub fn run_until(&mut self, until: Millis) {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > until {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            self.now = at;
            self.step(event);
        }
        self.now = self.now.max(until);
    }

    /// Runs `rounds` gossip intervals.
    pub fn run_rounds(&mut self, rounds: u64) {
        let until = Millis(self.now.0 + rounds * self.interval_ms());
        self.run_until(until);
    }

    /// Whether every up node knows every up node, and all up nodes agree on the member set and
    /// every member's self-reported status.
    pub fn converged(&self) -> bool {
        let up = self.up_nodes();
        let mut views = up.iter().filter_map(|&n| self.gossiper(n)).map(|g| {
            g.members()
                .iter()
                .map(|(&id, s)| (id, s.status))
                .collect::<BTreeMap<NodeId, MemberStatus>>()
        });
        let Some(first) = views.next() else {
            return true;
        };
        up.iter().all(|n| first.contains_key(n)) && views.all(|v| v == first)
    }

    /// Runs whole rounds until [`GossipSim::converged`], at most `rounds_max`; returns the
    /// rounds it took.
    pub fn run_until_converged(&mut self, rounds_max: u64) -> Option<u64> {
        for round in 0..=rounds_max {
            if self.converged() {
                return Some(round);
            }
            self.run_rounds(1);
        }
        None
    }

    /// Every up node's verdict on `target` now (`target` itself excluded).
    pub fn verdicts_on(&self, target: NodeId) -> Vec<Option<Verdict>> {
        self.up_nodes()
            .into_iter()
            .filter(|&n| n != target)
            .filter_map(|n| self.gossiper(n))
            .map(|g| g.verdict(target, self.now))
            .collect()
    }

    fn step(&mut self, event: SimEvent) {
        let now = self.now;
        match event {
            SimEvent::Tick { node, incarnation } => {
                let interval = self.interval_ms();
                let Some(n) = self.nodes.get_mut(&node) else {
                    return;
                };
                if !n.up || n.incarnation != incarnation {
                    return;
                }
                let out = n.gossiper.tick(now, &mut n.rng);
                self.schedule(
                    Millis(now.0 + interval),
                    SimEvent::Tick { node, incarnation },
                );
                self.after(node, out);
            }
            SimEvent::Deliver { from, to, msg } => {
                let Some(n) = self.nodes.get_mut(&to) else {
                    return;
                };
                if !n.up {
                    return;
                }
                let out = n.gossiper.handle(now, from, msg);
                self.after(to, out);
            }
        }
    }

    /// Sends `node`'s messages and logs its events.
    fn after(&mut self, node: NodeId, out: Vec<(NodeId, GossipMsg)>) {
        if let Some(n) = self.nodes.get_mut(&node) {
            for e in n.gossiper.drain_events() {
                if self.events.len() < self.config.events_max {
                    self.events.push((self.now, node, e));
                } else {
                    self.events_dropped += 1;
                }
            }
        }
        for (to, msg) in out {
            self.messages_sent += 1;
            let (lo, hi) = self.config.latency_ms;
            let latency = self.net_rng.random_range(lo..=hi.max(lo));
            let lost = self.config.loss_ppm > 0
                && self.net_rng.random_range(0..1_000_000) < self.config.loss_ppm;
            let cut = self
                .side
                .as_ref()
                .is_some_and(|s| s.contains(&node) != s.contains(&to));
            if !lost && !cut {
                self.schedule(
                    Millis(self.now.0 + latency),
                    SimEvent::Deliver {
                        from: node,
                        to,
                        msg,
                    },
                );
            }
        }
    }

    fn schedule(&mut self, at: Millis, event: SimEvent) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }
}

/// How long the cluster took to notice one crash (see [`rounds_until_all_know_failure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectionReport {
    /// Rounds from cold start until every node knew every node.
    pub converge_rounds: u64,
    /// Rounds (gossip intervals, rounded up) from the crash until every live node said
    /// Suspect (or Dead).
    pub suspect_rounds: u64,
    /// The same in simulated ms (to the nearest 100 ms step, rounded up).
    pub suspect_ms: u64,
    /// Rounds from the crash until every live node said Dead.
    pub dead_rounds: u64,
    /// The same in simulated ms.
    pub dead_ms: u64,
}

/// Starts `nodes` gossipers with `fanout`, runs until they all know each other, warms the
/// failure detectors up for 30 rounds, crashes the last node and measures how long it takes
/// until every live node's verdict on it is Suspect, then Dead. Default settings otherwise
/// (1 s interval, φ threshold 8, Dead 10 s after Suspect), no loss. `None` if it did not
/// converge or detect within generous bounds (which would be a bug).
pub fn rounds_until_all_know_failure(
    nodes: usize,
    fanout: usize,
    seed: u64,
) -> Option<DetectionReport> {
    if nodes < 2 {
        return None;
    }
    let mut config = SimConfig::new(nodes, seed);
    config.gossip.fanout = fanout;
    config.events_max = 0;
    let mut sim = GossipSim::new(config).ok()?;
    let converge_rounds = sim.run_until_converged(20 * log2_ceil(nodes) + 50)?;
    sim.run_rounds(30);
    let victim = NodeId(nodes as u32);
    let crashed_at = sim.now();
    sim.crash(victim);

    let step_ms = 100;
    let interval = sim.interval_ms();
    let limit_ms = 200 * interval;
    let mut suspect_ms = None;
    let mut elapsed = 0;
    while elapsed < limit_ms {
        elapsed += step_ms;
        sim.run_until(Millis(crashed_at.0 + elapsed));
        let verdicts = sim.verdicts_on(victim);
        if suspect_ms.is_none()
            && verdicts
                .iter()
                .all(|v| matches!(v, Some(Verdict::Suspect | Verdict::Dead)))
        {
            suspect_ms = Some(elapsed);
        }
        if verdicts.iter().all(|v| *v == Some(Verdict::Dead)) {
            let suspect_ms = suspect_ms.unwrap_or(elapsed);
            return Some(DetectionReport {
                converge_rounds,
                suspect_rounds: suspect_ms.div_ceil(interval),
                suspect_ms,
                dead_rounds: elapsed.div_ceil(interval),
                dead_ms: elapsed,
            });
        }
    }
    None
}

/// ⌈log₂ n⌉ (0 for n ≤ 1), with integer arithmetic.
pub fn log2_ceil(n: usize) -> u64 {
    if n <= 1 {
        0
    } else {
        u64::from(usize::BITS - (n - 1).leading_zeros())
    }
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
