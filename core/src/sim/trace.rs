//! Following one client operation through the cluster: which operation each message, storage
//! write and log entry belongs to, so that a UI can highlight an operation's whole path
//! (coordinator, replicas, WAL appends and syncs, acks, read repair).
//!
//! Tags are *causal*: the input a node handles carries the tag of what caused it (a client
//! request, a message tagged with an operation, the completion of a storage operation that was
//! tagged), and everything that input makes the node do inherits it: the messages it sends, the
//! storage operations it asks for and the log entries it produces. A group-commit sync carries
//! the tags of every write it made durable. Tags are bookkeeping beside the simulation: nothing
//! reads them to decide anything, so a run is the same with or without them, and they are not
//! part of the event log or its hash.
//!
//! Every table is bounded: message and storage tags live only while the message is in flight or
//! the storage operation pending (a crash clears the node's), and log-entry tags only while the
//! log still holds their entry.

use super::log::OpId;
use crate::Millis;
use crate::NodeId;
use crate::wire::MessageKind;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// A message on its way, with what a UI shows of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlyingMessage {
    /// Message id, as in the event log.
    pub id: u64,
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// Kind, for colour.
    pub kind: MessageKind,
    /// When it was sent.
    pub sent: Millis,
    /// When it arrives (or is dropped).
    pub arrives: Millis,
    /// The client operation it belongs to, if any.
    pub op: Option<OpId>,
}

/// The causal tags of a run. See the module docs.
#[derive(Clone, Debug, Default)]
pub(super) struct Tags {
    /// Messages in flight that belong to an operation.
    messages: BTreeMap<u64, OpId>,
    /// Pending storage operations that belong to an operation: (node, storage op id).
    storage: BTreeMap<(NodeId, u64), OpId>,
    /// Log entries that belong to an operation, in sequence order: (seq, op).
    entries: VecDeque<(u64, OpId)>,
    /// The tag of the input being handled.
    pub(super) cause: Option<OpId>,
}

/// Log-entry tags kept at most (beyond what the log holds, the oldest go first).
const ENTRY_TAGS_MAX: usize = 1 << 18;

impl Tags {
    /// Tags message `id` with the current cause.
    pub(super) fn sent(&mut self, id: u64) {
        if let Some(op) = self.cause {
            self.messages.insert(id, op);
        }
    }

    /// The operation message `id` belongs to.
    pub(super) fn message(&self, id: u64) -> Option<OpId> {
        self.messages.get(&id).copied()
    }

    /// Message `id` arrived or died: its tag is no longer needed once read.
    pub(super) fn message_done(&mut self, id: u64) -> Option<OpId> {
        self.messages.remove(&id)
    }

    /// Tags a storage operation `node` asked for with the current cause.
    pub(super) fn storage_started(&mut self, node: NodeId, op: u64) {
        if let Some(tag) = self.cause {
            self.storage.insert((node, op), tag);
        }
    }

    /// The operation a storage operation belonged to (forgetting it: it completed).
    pub(super) fn storage_done(&mut self, node: NodeId, op: u64) -> Option<OpId> {
        self.storage.remove(&(node, op))
    }

    /// The operation a pending storage operation belongs to.
    pub(super) fn storage(&self, node: NodeId, op: u64) -> Option<OpId> {
        self.storage.get(&(node, op)).copied()
    }

    /// `node` crashed: its pending storage operations will never complete.
    pub(super) fn crashed(&mut self, node: NodeId) {
        self.storage.retain(|(n, _), _| *n != node);
    }

    /// Tags log entries `from..to` with `op`; `oldest` is the oldest sequence the log holds.
    pub(super) fn entries(&mut self, from: u64, to: u64, op: OpId, oldest: u64) {
        for seq in from..to {
            self.entries.push_back((seq, op));
        }
        while self
            .entries
            .front()
            .is_some_and(|&(seq, _)| seq < oldest || self.entries.len() > ENTRY_TAGS_MAX)
        {
            self.entries.pop_front();
        }
    }

    /// A copy whose log-entry tags start at sequence `oldest` (for a copy of the simulation
    /// whose log holds only the entries from there on).
    pub(super) fn copy_since(&self, oldest: u64) -> Tags {
        let skip = self.entries.partition_point(|&(seq, _)| seq < oldest);
        Tags {
            messages: self.messages.clone(),
            storage: self.storage.clone(),
            entries: self.entries.iter().skip(skip).copied().collect(),
            cause: self.cause,
        }
    }

    /// Sequence numbers of the log entries tagged with `op`, oldest first.
    pub(super) fn entries_of(&self, op: OpId) -> impl Iterator<Item = u64> + '_ {
        self.entries
            .iter()
            .filter(move |&&(_, o)| o == op)
            .map(|&(seq, _)| seq)
    }
}

impl<D: super::MachineDisk> super::Sim<D> {
    /// Messages in flight, with the operation each belongs to, in id order.
    pub fn flying(&self) -> impl Iterator<Item = FlyingMessage> + '_ {
        self.flying
            .iter()
            .map(|(&id, &(from, to, kind, sent, arrives))| FlyingMessage {
                id,
                from,
                to,
                kind,
                sent,
                arrives,
                op: self.tags.message(id),
            })
    }

    /// Every log entry still held that belongs to client operation `op`, oldest first: its
    /// begin and end, the coordinator's decisions, every message of it, the replicas' WAL
    /// appends and the syncs that made them durable, and any read repair it caused.
    pub fn op_trace(&self, op: OpId) -> Vec<&super::log::LogEntry> {
        use super::log::SimEvent;
        let tagged: std::collections::BTreeSet<u64> = self.tags.entries_of(op).collect();
        self.log
            .entries()
            .iter()
            .filter(|e| {
                tagged.contains(&e.seq)
                    || matches!(&e.event,
                        SimEvent::ClientBegin { op: o, .. } | SimEvent::ClientDone { op: o, .. }
                        if *o == op)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::NodeId;
    use crate::node::ClientOp;
    use crate::sim::log::SimEvent;
    use crate::sim::script::{Command, start_cluster};

    fn notes_cluster(extra: &str) -> crate::sim::Sim {
        let line =
            format!("cluster nodes=5 n=3 w=2 r=2 seed=1 layout=notes latency=2..4 tail=0 {extra}");
        let Ok(Command::Cluster(config)) = Command::parse(line.trim()) else {
            panic!("cluster line");
        };
        start_cluster(*config).unwrap()
    }

    #[test]
    fn an_operation_trace_follows_the_put_to_every_replica_and_back() {
        let mut sim = notes_cluster("");
        // Background noise from another operation must not show in the trace.
        let other = sim.client(
            NodeId(1),
            ClientOp::Put {
                key: b"other".to_vec(),
                value: b"x".to_vec(),
                consistency: None,
            },
        );
        let op = sim.client(
            NodeId(2),
            ClientOp::Put {
                key: b"user123".to_vec(),
                value: b"Alice".to_vec(),
                consistency: None,
            },
        );
        assert!(sim.run_until_done(op, 1_000));
        sim.run_until_quiet(1_000);
        let lines: Vec<String> = sim.op_trace(op).iter().map(|e| e.event.trace()).collect();
        let has = |s: &str| lines.iter().any(|l| l.contains(s));
        assert!(has("client -> n2 Put user123"), "{lines:#?}");
        assert!(has("n2 coordinates: replicas [n3, n4, n5]"), "{lines:#?}");
        for r in ["n3", "n4", "n5"] {
            assert!(has(&format!("n2 -> {r} Put user123=Alice")), "{lines:#?}");
            assert!(
                has(&format!("{r} WAL append + memtable user123")),
                "{lines:#?}"
            );
            assert!(has(&format!("{r} WAL sync")), "{lines:#?}");
            assert!(has(&format!("{r} -> n2 delivered")), "{lines:#?}");
        }
        assert!(has("n2 -> client ok"), "{lines:#?}");
        assert!(!has("other"), "{lines:#?}");
        // The other operation has its own trace.
        let theirs: Vec<String> = sim
            .op_trace(other)
            .iter()
            .map(|e| e.event.trace())
            .collect();
        assert!(theirs.iter().any(|l| l.contains("Put other=x")));
        assert!(!theirs.iter().any(|l| l.contains("user123")));
    }

    #[test]
    fn in_flight_messages_carry_their_operation_and_read_repair_is_followed() {
        let mut sim = notes_cluster("detect=100000");
        let put = |v: &str| ClientOp::Put {
            key: b"user123".to_vec(),
            value: v.as_bytes().to_vec(),
            consistency: None,
        };
        let first = sim.client(NodeId(2), put("Alice"));
        sim.run_until_done(first, 1_000);
        sim.run_until_quiet(1_000);
        sim.partition(&[NodeId(2)], &[NodeId(4)], false);
        let second = sim.client(NodeId(2), put("Alice2"));
        sim.run_until_done(second, 1_000);
        sim.run_until_quiet(1_000);
        sim.heal();
        let get = sim.client(
            NodeId(2),
            ClientOp::Get {
                key: b"user123".to_vec(),
                consistency: Some(crate::node::Consistency::All),
            },
        );
        // The read's messages are in flight, tagged with it.
        sim.step();
        sim.step();
        let flying: Vec<_> = sim.flying().filter(|m| m.op == Some(get)).collect();
        assert!(!flying.is_empty());
        assert!(flying.iter().all(|m| m.from == NodeId(2)));
        sim.run_until_done(get, 1_000);
        sim.run_until_quiet(1_000);
        let trace = sim.op_trace(get);
        assert!(trace.iter().any(|e| matches!(&e.event,
            SimEvent::Node { event: crate::node::NodeEvent::ReadRepair { replica, .. }, .. }
            if *replica == NodeId(4))));
        assert!(
            trace
                .iter()
                .any(|e| e.event.trace().contains("n2 -> n4 Repair user123=Alice2"))
        );
        assert!(
            trace
                .iter()
                .any(|e| e.event.trace().contains("n4 WAL append"))
        );
        // Nothing is left in the tables once the operations are over.
        assert!(sim.tags.messages.is_empty());
        assert!(sim.flying().all(|m| m.op.is_none()));
    }
}
