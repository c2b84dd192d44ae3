//! What a node reports for logging and drawing ([`NodeEvent`]): everything worth showing that
//! is not a message or a storage operation (requests started, read repairs, hints stored,
//! replayed and dropped, joins, leaves and streams, membership and ring changes, repair
//! sessions done or failed).

use super::ClientId;
use crate::NodeId;
use crate::storage::Version;
use serde::{Deserialize, Serialize};

/// Something worth logging and drawing that is not a message or a storage operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeEvent {
    /// A client request was accepted and sent to replicas.
    RequestStarted {
        /// The client request.
        client: ClientId,
        /// The nodes contacted (with the owner each stands in for, if it is a stand-in).
        targets: Vec<(NodeId, Option<NodeId>)>,
        /// The key's preference list.
        preference: Vec<NodeId>,
    },
    /// A read saw a stale replica and sent it the newest version.
    ReadRepair {
        /// The key.
        key: Vec<u8>,
        /// The stale replica.
        replica: NodeId,
        /// The version it was sent.
        version: Version,
    },
    /// This node stored a hint for an unreachable owner.
    HintStored {
        /// The owner.
        owner: NodeId,
        /// The key.
        key: Vec<u8>,
    },
    /// A hint was handed back to its owner and deleted here.
    HintReplayed {
        /// The owner.
        owner: NodeId,
        /// The key.
        key: Vec<u8>,
    },
    /// This node started joining: it pulls `ranges` token ranges from their current replicas.
    JoinStarted {
        /// Ranges to pull.
        ranges: usize,
    },
    /// Every range arrived: this node is a full member and serves its ranges.
    Joined,
    /// This node started leaving: it hands `ranges` token ranges to their new owners.
    LeaveStarted {
        /// Ranges to hand over.
        ranges: usize,
    },
    /// Every range was handed over: this node has left the ring.
    Left,
    /// A range started streaming from `from` to `to`.
    StreamStarted {
        /// The token range.
        range: crate::ring::Range,
        /// The sender.
        from: NodeId,
        /// The receiver.
        to: NodeId,
    },
    /// A range finished streaming.
    StreamDone {
        /// The token range.
        range: crate::ring::Range,
        /// The sender.
        from: NodeId,
        /// The receiver.
        to: NodeId,
        /// Keys moved.
        keys: u64,
        /// Bytes moved (keys and cells).
        bytes: u64,
    },
    /// A range could not be received: every node asked refused it (see
    /// [`Message::StreamRefused`](crate::wire::Message::StreamRefused)). It is not asked for again; a joining node stays joining.
    StreamFailed {
        /// The token range.
        range: crate::ring::Range,
        /// The last node asked.
        from: NodeId,
        /// The receiver (this node).
        to: NodeId,
        /// Why the last node refused it.
        reason: String,
    },
    /// Membership news from gossip and the failure detector.
    Membership(crate::membership::GossipEvent),
    /// This node's ring changed (a member joined, left or was removed).
    RingChanged {
        /// Nodes in the ring now.
        nodes: usize,
    },
    /// An anti-entropy session with `peer` over `range` completed.
    RepairDone {
        /// The range compared.
        range: crate::ring::Range,
        /// The other replica.
        peer: NodeId,
        /// Bytes exchanged both ways.
        bytes: u64,
        /// Keys this node wrote because the peer had a newer version.
        keys_repaired: u64,
    },
    /// An anti-entropy session failed or timed out.
    RepairFailed {
        /// The range.
        range: crate::ring::Range,
        /// The other replica.
        peer: NodeId,
        /// Why.
        reason: String,
    },
    /// A hint was dropped: older than the hint TTL, or refused because the hint store is full.
    HintDropped {
        /// The owner.
        owner: NodeId,
        /// The key.
        key: Vec<u8>,
        /// Why.
        reason: String,
    },
    /// The membership refused an operator's removal (of this node, or of a member it does not
    /// know) or a status this node announced. Nothing changed: not the ring, not the gossip.
    MembershipRefused {
        /// What was refused, and why.
        error: crate::membership::GossipError,
    },
}
