//! The simulation's configuration ([`SimConfig`]): the seed, the cluster's size and quorums,
//! its storage, network, membership and workload settings, and the node configuration each
//! machine starts with.

use super::network::NetworkConfig;
use super::workload::WorkloadConfig;
use crate::NodeId;
use crate::node::{NodeConfig, QuorumError};
use crate::storage::{LsmConfig, SyncPolicy};
use serde::{Deserialize, Serialize};

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

    pub(super) fn node_config(
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
