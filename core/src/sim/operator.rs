//! What a test, the page or an operator does to a running cluster: add a machine, start,
//! crash and restart nodes, have one leave or be removed, cut and heal links, force a
//! compaction, skew a clock, change the network and the workload. Crashes and restarts go
//! through the machine's disks (a crash loses what was not synced); membership changes reach
//! the other nodes through the oracle after the detection delay, or through gossip.

use super::log::{OpId, SimEvent};
use super::network::NetworkConfig;
use super::queue::Event;
use super::workload::WorkloadConfig;
use super::{MachineDisk, Sim, SimError, SimNode};
use crate::node::{ClientError, Input, Node, NodeError, StoreId};
use crate::storage::{Lsm, LsmConfig, StorageError, SyncPolicy};
use crate::{Millis, NodeId};

impl<D: MachineDisk> Sim<D> {
    /// A fresh machine for `id`: empty disks seeded from the cluster seed, not yet started.
    pub(super) fn insert_machine(&mut self, id: NodeId) {
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
    pub(super) fn ring_changed(&mut self, node: NodeId, joined: bool) {
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
    pub(super) fn disconnect_clients(&mut self, node: NodeId) {
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
    pub(super) fn stop(&mut self, node: NodeId) {
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

    pub(super) fn start_node(&mut self, id: NodeId) -> Result<(), SimError> {
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
    pub(super) fn update_views(&mut self) {
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
}
