//! Looking at a simulation from outside: the snapshot a UI draws, what nodes store, and
//! one-line descriptions of messages for traces.

use super::Sim;
use super::log::{show_bytes, show_ts};
use crate::Millis;
use crate::NodeId;
use crate::node::Node;
use crate::storage::LsmStats;
use crate::storage::{Cell, Lsm};
use crate::wire::Message;
use crate::wire::MessageKind;
use serde::Serialize;
use std::collections::BTreeMap;
use std::collections::BTreeSet;

/// A node's state for drawing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeSnapshot {
    /// The node.
    pub id: NodeId,
    /// Whether it runs.
    pub up: bool,
    /// Its clock's offset from true time.
    pub skew_ms: i64,
    /// Peers it believes down.
    pub believes_down: Vec<NodeId>,
    /// Requests it is coordinating.
    pub in_flight: usize,
    /// Hints it holds, per owner.
    pub hints_held: BTreeMap<NodeId, u64>,
    /// Its data store.
    pub storage: Option<LsmStats>,
}

/// The whole cluster's state for drawing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterSnapshot {
    /// Simulated time.
    pub now: Millis,
    /// Every node.
    pub nodes: Vec<NodeSnapshot>,
    /// Messages in flight: id, from, to, kind, sent, arrives.
    pub in_flight: Vec<(u64, NodeId, NodeId, MessageKind, Millis, Millis)>,
    /// Cut links.
    pub partitions: Vec<(NodeId, NodeId)>,
}

impl<D: super::MachineDisk> Sim<D> {
    /// Whether every replica of every key in `keys` holds the same newest version, by the
    /// current ring: `Err` names the first key whose replicas disagree.
    pub fn replicas_agree<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), String> {
        for key in keys {
            let replicas = self
                .ring
                .preference_list(crate::ring::key_token(key), self.config.n);
            let versions: Vec<(NodeId, Option<crate::storage::Version>)> = replicas
                .iter()
                .map(|&r| (r, self.stored(r, key).map(|c| c.version)))
                .collect();
            if versions.windows(2).any(|w| w[0].1 != w[1].1) {
                return Err(format!(
                    "replicas of {} disagree: {versions:?}",
                    String::from_utf8_lossy(key)
                ));
            }
        }
        Ok(())
    }

    /// A node's data disk (for tests that look at its files).
    pub fn data_disk(&self, node: NodeId) -> Option<&D> {
        Some(&self.nodes.get(&node)?.data_disk)
    }

    /// A running node's data store (for the UI and for tests).
    pub fn data_store(&self, node: NodeId) -> Option<&Lsm<D>> {
        self.nodes.get(&node)?.data.as_ref()
    }

    /// A running node's hint store (for the UI).
    pub fn hint_store(&self, node: NodeId) -> Option<&Lsm<D>> {
        self.nodes.get(&node)?.hints.as_ref()
    }

    /// Whether `node` left the ring gracefully (it will not restart).
    pub fn has_left(&self, node: NodeId) -> bool {
        self.nodes.get(&node).is_some_and(|n| n.left)
    }

    /// Whether `node` is still joining (streaming the ranges it gains).
    pub fn is_joining(&self, node: NodeId) -> bool {
        self.nodes.get(&node).is_some_and(|n| n.joining)
    }

    /// `node`'s clock: simulated time plus its skew.
    pub fn local_time(&self, node: NodeId) -> crate::Millis {
        self.local(node)
    }

    /// Whether nothing is pending but periodic timers and the workload: no message in flight,
    /// no storage operation and no client request waiting (what `run_until_quiet` waits for).
    pub fn is_quiet(&self) -> bool {
        !self
            .queue
            .iter()
            .any(|std::cmp::Reverse(s)| s.event.is_activity())
    }

    // ---- inspection -------------------------------------------------------------------------

    /// The cluster's state for drawing.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let nodes = self
            .nodes
            .iter()
            .map(|(&id, n)| NodeSnapshot {
                id,
                up: n.node.is_some(),
                skew_ms: n.skew_ms,
                believes_down: n
                    .node
                    .as_ref()
                    .map(|node| {
                        self.nodes
                            .keys()
                            .copied()
                            .filter(|p| !node.believes_up(*p))
                            .collect()
                    })
                    .unwrap_or_default(),
                in_flight: n.node.as_ref().map_or(0, Node::in_flight),
                hints_held: n
                    .node
                    .as_ref()
                    .map(|node| node.hints_held().clone())
                    .unwrap_or_default(),
                storage: n.data.as_ref().map(Lsm::stats),
            })
            .collect();
        ClusterSnapshot {
            now: self.now,
            nodes,
            in_flight: self
                .flying
                .iter()
                .map(|(&id, &(from, to, kind, sent, arrives))| (id, from, to, kind, sent, arrives))
                .collect(),
            partitions: self.partitions.links().copied().collect(),
        }
    }

    /// Nodes that hold (in their data store) a version of `key` at least `version`... for
    /// every key written: the newest version any node's data or hint store holds.
    pub fn newest_stored(&self, key: &[u8]) -> Option<Cell> {
        let mut best: Option<Cell> = None;
        for (&id, n) in self.nodes.iter().filter(|(_, n)| !n.left) {
            let mut candidates = Vec::new();
            if let Some(c) = self.stored(id, key) {
                candidates.push(c);
            }
            if let Some(hints) = n.hints.as_ref() {
                for owner in self.nodes.keys() {
                    let hk = crate::node::hint_key(*owner, key);
                    if let Ok(Some(c)) = hints.get(&hk)
                        && let Some(orig) = c.value.as_deref().and_then(crate::node::decode_hint)
                    {
                        candidates.push(orig);
                    }
                }
            }
            for c in candidates {
                if best.as_ref().is_none_or(|b| c.version > b.version) {
                    best = Some(c);
                }
            }
        }
        best
    }

    /// Nodes currently down.
    pub fn down_nodes(&self) -> BTreeSet<NodeId> {
        self.nodes
            .keys()
            .copied()
            .filter(|n| !self.is_up(*n))
            .collect()
    }
}

pub(super) fn label_short(msg: &Message) -> &'static str {
    match msg {
        Message::Replicate { .. } => "Put",
        Message::ReplicateAck { .. } => "Ack",
        Message::Read { .. } => "Get",
        Message::ReadReply { .. } => "GetReply",
        Message::StreamRequest { .. } => "StreamRequest",
        Message::StreamBatch { .. } => "StreamBatch",
        Message::StreamOffer { .. } => "StreamOffer",
        Message::StreamDone { .. } => "StreamDone",
        Message::StreamRefused { .. } => "StreamRefused",
        Message::AntiEntropy { .. } => "AntiEntropy",
        Message::Gossip(_) => "Gossip",
    }
}

/// A token range in a short form: `(3fa2…, 7c01…]`.
pub fn show_range(range: &crate::ring::Range) -> String {
    format!("({:04x}…, {:04x}…]", range.start.0 >> 48, range.end.0 >> 48)
}

/// A message in one line, as the design notes write them: `Put user123=Alice ts=1.000`.
pub fn label(msg: &Message) -> String {
    use crate::wire::WritePurpose;
    match msg {
        Message::Replicate {
            key,
            cell,
            hint_for,
            purpose,
            ..
        } => {
            let verb = match (purpose, hint_for) {
                (WritePurpose::ReadRepair, _) => "Repair",
                (WritePurpose::HintReplay, _) => "HintReplay",
                (_, Some(_)) => "HintedPut",
                (_, None) if cell.is_tombstone() => "Delete",
                _ => "Put",
            };
            let value = match &cell.value {
                Some(v) => format!("={}", show_bytes(v)),
                None if verb == "Delete" => String::new(),
                None => " (tombstone)".to_string(),
            };
            let hint = hint_for
                .map(|o| format!(" hint-for={o}"))
                .unwrap_or_default();
            format!(
                "{verb} {}{value} ts={}{hint}",
                show_bytes(key),
                show_ts(cell.version.ts_micros)
            )
        }
        Message::ReplicateAck { result: Ok(()), .. } => "Ack".to_string(),
        Message::ReplicateAck { result: Err(e), .. } => format!("Nack ({e:?})"),
        Message::Read { key, .. } => format!("Get {}", show_bytes(key)),
        Message::ReadReply {
            result: Ok(Some(cell)),
            ..
        } => match &cell.value {
            Some(v) => format!(
                "GetReply {} ts={}",
                show_bytes(v),
                show_ts(cell.version.ts_micros)
            ),
            None => format!("GetReply tombstone ts={}", show_ts(cell.version.ts_micros)),
        },
        Message::ReadReply {
            result: Ok(None), ..
        } => "GetReply none".to_string(),
        Message::StreamRequest { range, after, .. } => match after {
            None => format!("StreamRequest {}", show_range(range)),
            Some(k) => format!(
                "StreamRequest {} after {}",
                show_range(range),
                show_bytes(k)
            ),
        },
        Message::StreamBatch {
            range,
            entries,
            next,
            ..
        } => format!(
            "StreamBatch {} {} keys{}",
            show_range(range),
            entries.len(),
            if next.is_some() { ", more" } else { ", last" }
        ),
        Message::StreamOffer { range, .. } => format!("StreamOffer {}", show_range(range)),
        Message::StreamDone { keys, bytes, .. } => format!("StreamDone {keys} keys {bytes} bytes"),
        Message::StreamRefused { range, reason, .. } => {
            format!("StreamRefused {}: {reason}", show_range(range))
        }
        Message::AntiEntropy { msg, .. } => format!("AE {}", ae_label(msg)),
        Message::Gossip(msg) => match msg {
            crate::membership::GossipMsg::Syn { digests } => {
                format!("GossipSyn ({} digests)", digests.len())
            }
            crate::membership::GossipMsg::Ack { deltas, requests } => {
                format!(
                    "GossipAck ({} deltas, {} requests)",
                    deltas.len(),
                    requests.len()
                )
            }
            crate::membership::GossipMsg::Ack2 { deltas } => {
                format!("GossipAck2 ({} deltas)", deltas.len())
            }
        },
        Message::ReadReply { result: Err(e), .. } => format!("GetReply error ({e:?})"),
    }
}

fn ae_label(msg: &crate::antientropy::AeMsg) -> String {
    use crate::antientropy::AeMsg;
    match msg {
        AeMsg::Request {
            range,
            level,
            indexes,
            ..
        } => {
            format!(
                "Request {} level {level} ({} nodes)",
                show_range(range),
                indexes.len()
            )
        }
        AeMsg::Hashes { level, hashes, .. } => format!("Hashes level {level} ({})", hashes.len()),
        AeMsg::Digests { leaf, digests, .. } => {
            format!("Digests leaf {leaf} ({} keys)", digests.len())
        }
        AeMsg::Repair {
            leaf,
            entries,
            want,
            ..
        } => {
            format!(
                "Repair leaf {leaf} ({} newer, {} wanted)",
                entries.len(),
                want.len()
            )
        }
        AeMsg::Entries { leaf, entries, .. } => format!("Entries leaf {leaf} ({})", entries.len()),
        AeMsg::Done { range, .. } => format!("Done {}", show_range(range)),
        AeMsg::Abort { reason, .. } => format!("Abort ({reason})"),
    }
}
