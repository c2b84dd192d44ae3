//! A node's configuration ([`NodeConfig`]): its identity and address, its quorums (validated
//! once, by [`NodeConfig::new`], for every host), its timeouts and intervals, the bound on
//! every queue, its membership and tokens, and the seed of its own random choices.

use super::{Membership, QuorumError, antientropy, check_quorums};
use crate::NodeId;
use serde::{Deserialize, Serialize};

/// A node's configuration. Every queue has a bound here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// Replicas per key.
    pub n: usize,
    /// Default write quorum.
    pub w: usize,
    /// Default read quorum.
    pub r: usize,
    /// How long a coordinator waits for W or R answers.
    pub request_timeout_ms: u64,
    /// Requests a coordinator may have in flight.
    pub requests_in_flight_max: usize,
    /// The largest value accepted.
    pub value_bytes_max: usize,
    /// Hints this node may hold for others.
    pub hints_max: u64,
    /// Hints older than this are dropped rather than replayed (keep it under the tombstone
    /// grace period, or a replayed hint could resurrect a purged delete).
    pub hint_ttl_ms: u64,
    /// How often hints are offered back to owners that are up.
    pub hint_replay_interval_ms: u64,
    /// Hints replayed per owner per round.
    pub hint_replay_batch: usize,
    /// This node's ring tokens (used when it joins).
    pub tokens: Vec<crate::ring::Token>,
    /// How often this node repairs one of its ranges with another replica (0: never). A full
    /// cycle over its ranges must fit in the tombstone grace period, or a deleted key can come
    /// back from a replica that missed the delete.
    pub anti_entropy_interval_ms: u64,
    /// Depth of the Merkle trees; every node of a cluster must use the same.
    pub merkle_depth: u8,
    /// A repair session that receives nothing for this long is given up.
    pub anti_entropy_idle_timeout_ms: u64,
    /// Anti-entropy's budget: keys its range scans may load per second on average (tree
    /// builds and leaf loads, for the sessions this node starts and those it answers); a node
    /// over budget starts its next session only once the debt is paid (0: no budget). See
    /// `node/antientropy.rs`.
    pub anti_entropy_keys_per_sec: u64,
    /// How this node learns membership: gossip, or an oracle (its driver).
    pub membership: Membership,
    /// Larger at every start of this node (its start time in ms works): lets peers tell a
    /// restart from a stale message.
    pub generation: u64,
    /// How peers reach this node (opaque to the core: `host:port`, a URL).
    pub address: String,
    /// Seed of this node's own random choices (gossip peers).
    pub seed: u64,
    /// Whether this node starts by joining: it streams the ranges it gains before serving.
    pub joining: bool,
    /// Under gossip, how long a joining node listens before it computes what to stream (so that
    /// it knows the ring).
    pub join_delay_ms: u64,
    /// Members an operator removed, with the removal's generation, as this node knew them when
    /// it last stopped ([`Node::removed`](super::Node::removed), kept beside the remembered
    /// ring). The node starts with them as removed and gossips the removal again, so a removal
    /// taken through this node survives a crash before it had spread.
    pub removed: Vec<(NodeId, u64)>,
}

impl NodeConfig {
    /// Defaults for node `id` with `n` replicas per key and the default quorums `w` and `r`,
    /// which must fit ([`check_quorums`]).
    pub fn new(id: NodeId, n: usize, w: usize, r: usize) -> Result<NodeConfig, QuorumError> {
        check_quorums(n, w, r)?;
        Ok(NodeConfig {
            id,
            n,
            w,
            r,
            request_timeout_ms: 1_000,
            requests_in_flight_max: 10_000,
            value_bytes_max: 1 << 20,
            hints_max: 100_000,
            hint_ttl_ms: 3 * 3600 * 1000,
            hint_replay_interval_ms: 1_000,
            hint_replay_batch: 64,
            tokens: Vec::new(),
            anti_entropy_interval_ms: 10_000,
            merkle_depth: crate::antientropy::DEPTH_DEFAULT,
            anti_entropy_idle_timeout_ms: antientropy::AE_SESSION_TIMEOUT_MS,
            anti_entropy_keys_per_sec: 0,
            membership: Membership::Oracle,
            generation: 0,
            address: String::new(),
            seed: u64::from(id.0),
            joining: false,
            join_delay_ms: 3_000,
            removed: Vec::new(),
        })
    }
}
