//! The simulator's event queue: the work scheduled for a time ([`Event`]: a delivery, a
//! timer, a storage completion, a client operation, news for the oracle membership...),
//! ordered by `(time, sequence)` so that equal times run in the order they were scheduled.
//! Node events carry the node's incarnation, so those of a crashed incarnation are dropped.

use super::log::OpId;
use super::network::DropReason;
use crate::node::{ClientOp, StorageResult, Timer};
use crate::wire::Message;
use crate::{Millis, NodeId};

/// Scheduled work. Node events carry the node's incarnation: after a crash, events meant for
/// the previous incarnation are discarded.
#[derive(Clone, Debug)]
pub(super) enum Event {
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
    pub(super) fn is_activity(&self) -> bool {
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

#[derive(Clone, Debug)]
pub(super) struct Scheduled {
    pub(super) at: Millis,
    pub(super) seq: u64,
    pub(super) event: Event,
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
