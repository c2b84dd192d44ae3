//! The simulator's event log: what a UI draws and a golden script prints.
//!
//! Every event is appended with its simulated time. The log keeps the most recent
//! `capacity` entries (a bound: long runs must not grow without limit), counts every entry,
//! and folds each one into a running XXH3 hash, so two runs can be compared for determinism
//! without keeping their whole logs.

use super::network::DropReason;
use crate::node::{ClientResult, NodeEvent, StoreId};
use crate::wire::MessageKind;
use crate::{Millis, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A client operation's id in the simulation.
pub type OpId = u64;

/// The kind of a client operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    /// PUT.
    Put,
    /// GET.
    Get,
    /// DELETE.
    Delete,
}

/// Something that happened in the simulation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimEvent {
    /// A message left `from`; it arrives (or would) at `arrives`.
    MessageSent {
        /// Message id, unique in the run.
        id: u64,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// Kind, for colour.
        kind: MessageKind,
        /// A one-line description, e.g. `Put user123=Alice ts=1.000`.
        label: String,
        /// Arrival time.
        arrives: Millis,
    },
    /// A message arrived.
    MessageDelivered {
        /// Message id.
        id: u64,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
    },
    /// A message was dropped.
    MessageDropped {
        /// Message id.
        id: u64,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// Kind, for colour.
        kind: MessageKind,
        /// Why.
        reason: DropReason,
    },
    /// A write reached a node's WAL and memtable.
    DiskWrite {
        /// The node.
        node: NodeId,
        /// Data or hints.
        store: StoreId,
        /// The key.
        key: Vec<u8>,
    },
    /// A node synced its WAL, making `writes` waiting writes durable (group commit).
    DiskSync {
        /// The node.
        node: NodeId,
        /// Writes the sync covered.
        writes: usize,
    },
    /// A memtable was flushed to an L0 SSTable.
    Flush {
        /// The node.
        node: NodeId,
        /// Data or hints.
        store: StoreId,
    },
    /// SSTables were compacted.
    Compaction {
        /// The node.
        node: NodeId,
        /// Data or hints.
        store: StoreId,
        /// Source level.
        level: usize,
    },
    /// A node started or restarted.
    NodeUp {
        /// The node.
        node: NodeId,
    },
    /// A node crashed (its unsynced writes are lost).
    NodeDown {
        /// The node.
        node: NodeId,
    },
    /// A node stopped after leaving the ring gracefully.
    NodeStopped {
        /// The node.
        node: NodeId,
    },
    /// A client sent an operation to a coordinator.
    ClientBegin {
        /// Operation id.
        op: OpId,
        /// The coordinator.
        node: NodeId,
        /// PUT, GET or DELETE.
        kind: OpKind,
        /// The key.
        key: Vec<u8>,
    },
    /// A client operation finished.
    ClientDone {
        /// Operation id.
        op: OpId,
        /// The coordinator.
        node: NodeId,
        /// The outcome.
        result: ClientResult,
    },
    /// A protocol event inside a node.
    Node {
        /// The node.
        node: NodeId,
        /// What happened.
        event: NodeEvent,
    },
    /// A fault was injected or healed (partition, heal, skew, loss...), described in words.
    Fault {
        /// What changed.
        description: String,
    },
}

/// One logged event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Sequence number in the run, from 0.
    pub seq: u64,
    /// Simulated time.
    pub time: Millis,
    /// What happened.
    pub event: SimEvent,
}

/// The bounded event log with its running hash.
#[derive(Clone)]
pub struct EventLog {
    entries: VecDeque<LogEntry>,
    capacity: usize,
    total: u64,
    hasher: xxhash_rust::xxh3::Xxh3,
    /// Where each entry is encoded for the hash, reused (it grows to the largest entry).
    scratch: Vec<u8>,
}

impl core::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EventLog")
            .field("held", &self.entries.len())
            .field("total", &self.total)
            .field("hash", &self.hash())
            .finish()
    }
}

impl EventLog {
    /// A log keeping the last `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        EventLog {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            total: 0,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            scratch: vec![0; 256],
        }
    }

    /// Entries held (at most the capacity).
    pub fn held(&self) -> usize {
        self.entries.len()
    }

    /// A copy holding only the newest `keep` of the entries held (the hash, the count and the
    /// capacity are the same): a snapshot of a run kept for later
    /// ([`super::Sim::fork_keeping_log`]) holds less, and copying it costs less.
    pub fn copy_newest(&self, keep: usize) -> EventLog {
        let skip = self.entries.len().saturating_sub(keep);
        EventLog {
            entries: self.entries.iter().skip(skip).cloned().collect(),
            capacity: self.capacity,
            total: self.total,
            hasher: self.hasher.clone(),
            scratch: vec![0; 256],
        }
    }

    /// Appends an event at `time`.
    pub fn push(&mut self, time: Millis, event: SimEvent) {
        let entry = LogEntry {
            seq: self.total,
            time,
            event,
        };
        // The entry's postcard encoding, in the reused buffer: no allocation per event.
        match postcard::to_slice(&entry, &mut self.scratch) {
            Ok(bytes) => self.hasher.update(bytes),
            Err(_) => {
                if let Ok(bytes) = postcard::to_allocvec(&entry) {
                    self.hasher.update(&bytes);
                    self.scratch = vec![0; bytes.len().saturating_mul(2)];
                }
            }
        }
        self.total += 1;
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// Entries still held, oldest first.
    pub fn entries(&self) -> &VecDeque<LogEntry> {
        &self.entries
    }

    /// Entries with `seq >= from`, still held.
    pub fn since(&self, from: u64) -> impl Iterator<Item = &LogEntry> {
        let skip = self
            .entries
            .front()
            .map_or(0, |first| from.saturating_sub(first.seq)) as usize;
        self.entries.iter().skip(skip)
    }

    /// Events logged since the start.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// A hash of every event logged since the start.
    pub fn hash(&self) -> u64 {
        self.hasher.digest()
    }
}

/// Shows a version's timestamp (microseconds) in milliseconds: `100`, or `100.001` when a
/// coordinator issued several versions within one millisecond.
pub fn show_ts(ts: u64) -> String {
    if ts.is_multiple_of(1000) {
        format!("{}", ts / 1000)
    } else {
        format!("{}.{:03}", ts / 1000, ts % 1000)
    }
}

/// Shows bytes as text when printable, else as hex; long ones are cut.
pub fn show_bytes(bytes: &[u8]) -> String {
    const SHOWN: usize = 24;
    let cut = bytes.len() > SHOWN;
    let head = &bytes[..bytes.len().min(SHOWN)];
    let mut s = if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(head).into_owned()
    } else {
        head.iter().map(|b| format!("{b:02x}")).collect()
    };
    if cut {
        s.push('…');
    }
    s
}

impl SimEvent {
    /// The event as one trace line (without the time), in the design notes' style:
    /// `n2 -> n3 Put user123=Alice ts=1.000`.
    pub fn trace(&self) -> String {
        match self {
            SimEvent::MessageSent {
                from, to, label, ..
            } => format!("{from} -> {to} {label}"),
            SimEvent::MessageDelivered { from, to, .. } => format!("{from} -> {to} delivered"),
            SimEvent::MessageDropped {
                from, to, reason, ..
            } => {
                format!("{from} -> {to} dropped ({})", reason.name())
            }
            SimEvent::DiskWrite {
                node,
                store: StoreId::Data,
                key,
            } => {
                format!("{node} WAL append + memtable {}", show_bytes(key))
            }
            SimEvent::DiskWrite {
                node,
                store: StoreId::Hints,
                key,
            } => match crate::node::split_hint_key(key) {
                Some((owner, k)) => format!("{node} hint store append ({owner}) {}", show_bytes(k)),
                None => format!("{node} hint store append {}", show_bytes(key)),
            },
            SimEvent::DiskSync { node, writes } => format!("{node} WAL sync ({writes} writes)"),
            SimEvent::Flush { node, store } => format!("{node} flush {store:?} memtable to L0"),
            SimEvent::Compaction { node, store, level } => {
                format!("{node} compact {store:?} L{level} -> L{}", level + 1)
            }
            SimEvent::NodeUp { node } => format!("{node} up"),
            SimEvent::NodeDown { node } => format!("{node} crashed"),
            SimEvent::NodeStopped { node } => format!("{node} stopped (left the ring)"),
            SimEvent::ClientBegin {
                node, kind, key, ..
            } => {
                format!("client -> {node} {kind:?} {}", show_bytes(key))
            }
            SimEvent::ClientDone { node, result, .. } => {
                format!("{node} -> client {}", show_result(result))
            }
            SimEvent::Node { node, event } => format!("{node} {}", show_node_event(event)),
            SimEvent::Fault { description } => description.clone(),
        }
    }
}

/// A client result in words: `ok ts=1.000 acks=2`, `Alice ts=1.000`, `not found`, `error ...`.
pub fn show_result(result: &ClientResult) -> String {
    use crate::node::ClientOk;
    match result {
        Ok(ClientOk::Written {
            version,
            acks,
            hinted: 0,
        }) => {
            format!("ok ts={} acks={acks}", show_ts(version.ts_micros))
        }
        Ok(ClientOk::Written {
            version,
            acks,
            hinted,
        }) => {
            format!(
                "ok ts={} acks={acks} ({hinted} hinted)",
                show_ts(version.ts_micros)
            )
        }
        Ok(ClientOk::Found { version, value }) => {
            format!("{} ts={}", show_bytes(value), show_ts(version.ts_micros))
        }
        Ok(ClientOk::NotFound { version: Some(v) }) => {
            format!("not found (deleted at ts={})", show_ts(v.ts_micros))
        }
        Ok(ClientOk::NotFound { version: None }) => "not found".to_string(),
        Err(e) => format!("error: {e}"),
    }
}

/// A protocol event in words, as the trace writes it after the node's name.
pub fn show_node_event(event: &NodeEvent) -> String {
    match event {
        NodeEvent::RequestStarted {
            targets,
            preference,
            ..
        } => {
            let pref: Vec<String> = preference.iter().map(|n| n.to_string()).collect();
            let stand_ins: Vec<String> = targets
                .iter()
                .filter_map(|(t, h)| h.map(|owner| format!("{t} for {owner}")))
                .collect();
            if stand_ins.is_empty() {
                format!("coordinates: replicas [{}]", pref.join(", "))
            } else {
                format!(
                    "coordinates: replicas [{}], stand-ins {}",
                    pref.join(", "),
                    stand_ins.join(", ")
                )
            }
        }
        NodeEvent::ReadRepair {
            key,
            replica,
            version,
        } => {
            format!(
                "read repair: {replica} is stale for {}, sending ts={}",
                show_bytes(key),
                show_ts(version.ts_micros)
            )
        }
        NodeEvent::JoinStarted { ranges } => format!("joining: pulls {ranges} ranges"),
        NodeEvent::Joined => "joined: serves its ranges".to_string(),
        NodeEvent::LeaveStarted { ranges } => format!("leaving: hands over {ranges} ranges"),
        NodeEvent::Left => "left the ring".to_string(),
        NodeEvent::StreamStarted { range, from, to } => {
            format!(
                "stream {} {from} -> {to} started",
                super::inspect::show_range(range)
            )
        }
        NodeEvent::StreamDone {
            range,
            from,
            to,
            keys,
            bytes,
        } => format!(
            "stream {} {from} -> {to} done: {keys} keys, {bytes} bytes",
            super::inspect::show_range(range)
        ),
        NodeEvent::StreamFailed {
            range,
            from,
            to,
            reason,
        } => format!(
            "stream {} {from} -> {to} FAILED: {reason}",
            super::inspect::show_range(range)
        ),
        NodeEvent::Membership(e) => show_gossip_event(e),
        NodeEvent::RingChanged { nodes } => format!("ring now has {nodes} nodes"),
        NodeEvent::RepairDone {
            range,
            peer,
            bytes,
            keys_repaired,
        } => format!(
            "anti-entropy with {peer} over {} done: {bytes} bytes, {keys_repaired} keys repaired here",
            super::inspect::show_range(range)
        ),
        NodeEvent::RepairFailed {
            range,
            peer,
            reason,
        } => format!(
            "anti-entropy with {peer} over {} failed: {reason}",
            super::inspect::show_range(range)
        ),
        NodeEvent::HintStored { owner, key } => {
            format!("stores hint for {owner}: {}", show_bytes(key))
        }
        NodeEvent::HintReplayed { owner, key } => {
            format!("hint for {owner} replayed: {}", show_bytes(key))
        }
        NodeEvent::HintDropped { owner, key, reason } => {
            format!("hint for {owner} dropped ({reason}): {}", show_bytes(key))
        }
        NodeEvent::MembershipRefused { error } => format!("membership refused: {error}"),
    }
}

fn show_gossip_event(event: &crate::membership::GossipEvent) -> String {
    use crate::membership::GossipEvent as G;
    match event {
        G::Joined { node, status } => format!("gossip: learns of {node} ({status:?})"),
        G::PeerUp { node } => format!("gossip: {node} is alive again"),
        G::PeerSuspect { node, phi } => format!("gossip: suspects {node} (phi {phi:.1})"),
        G::PeerDown { node } => format!("gossip: {node} is dead"),
        G::PeerRestarted { node, .. } => format!("gossip: {node} restarted"),
        G::StatusChanged { node, status } => format!("gossip: {node} is {status:?}"),
        G::PeerLeft { node } => format!("gossip: {node} left"),
        G::PeerRemoved { node } => format!("gossip: {node} was removed"),
        G::Refuted { generation } => format!("gossip: refuted a removal (generation {generation})"),
        G::EventsDropped { count } => format!("gossip: {count} events dropped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_bounded_but_hashes_everything() {
        let mut a = EventLog::new(3);
        let mut b = EventLog::new(100);
        for i in 0..10 {
            let e = SimEvent::NodeUp { node: NodeId(i) };
            a.push(Millis(u64::from(i)), e.clone());
            b.push(Millis(u64::from(i)), e);
        }
        assert_eq!(a.entries().len(), 3);
        assert_eq!(a.total(), 10);
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.since(8).map(|e| e.seq).collect::<Vec<_>>(), vec![8, 9]);
        b.push(Millis(10), SimEvent::NodeDown { node: NodeId(1) });
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn bytes_show_as_text_or_hex() {
        assert_eq!(show_bytes(b"user123"), "user123");
        assert_eq!(show_bytes(&[0, 255]), "00ff");
        assert_eq!(show_bytes(&[b'a'; 30]).chars().count(), 25);
        assert_eq!(show_ts(12_345), "12.345");
        assert_eq!(show_ts(100_000), "100");
    }
}
