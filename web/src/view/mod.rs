//! The view model: everything the page draws, in plain data, whatever the state comes from.
//!
//! The renderer ([`crate::render`]) and the layout ([`crate::layout`]) read only this. The
//! simulator fills it through [`sim_source`], and live mode fills the same types from real
//! nodes' UI sockets ([`crate::live`]), so nothing here names the simulator.
//!
//! It is updated in two rates: per-frame data (time, messages in flight, the events
//! that animate: drops, WAL appends, syncs, flushes) every frame, and the slower per-node state
//! (what peers think of each node, storage, hints) a few times a second. Everything is bounded:
//! at most [`MESSAGES_MAX`] messages and [`EFFECTS_MAX`] animations are kept.

pub mod gossip;
pub mod merkle;
pub mod moving;
pub mod sim_source;
pub mod storage;

use ringstore_core::wire::MessageKind;
use serde::Serialize;

/// Messages drawn at most (the oldest in flight are dropped from the picture beyond it).
pub const MESSAGES_MAX: usize = 4_096;
/// Short-lived animations (deaths, disk flashes) kept at most.
pub const EFFECTS_MAX: usize = 512;
/// How long a death or disk flash stays on screen, in real milliseconds.
pub const EFFECT_MS: f64 = 900.0;

/// A node's own state (the truth in a simulation; what the node says of itself when live).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Running and serving.
    Up,
    /// Crashed (or unreachable, live).
    Down,
    /// Streaming the ranges it gains before it serves them.
    Joining,
    /// Handing its ranges over.
    Leaving,
    /// Left the ring.
    Left,
}

/// What the other nodes think of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Seen {
    /// Peers that believe it alive.
    pub alive: u32,
    /// Peers that suspect it (phi over the threshold).
    pub suspect: u32,
    /// Peers that believe it dead or down.
    pub dead: u32,
    /// The highest phi any running peer has for it (gossip only).
    pub phi_max: Option<f64>,
}

impl Seen {
    /// The verdict most peers share: `alive`, `suspect` or `dead` (`alive` with no peers).
    pub fn consensus(&self) -> &'static str {
        if self.dead > self.alive && self.dead >= self.suspect {
            "dead"
        } else if self.suspect + self.dead > self.alive {
            "suspect"
        } else if self.suspect + self.dead > 0 {
            "doubted"
        } else {
            "alive"
        }
    }
}

/// A node's storage, in the numbers the picture shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StorageView {
    /// Bytes of live WAL.
    pub wal_bytes: u64,
    /// Every WAL batch up to this LSN is durable; `last_lsn` is the newest.
    pub durable_lsn: u64,
    /// The newest LSN.
    pub last_lsn: u64,
    /// Keys in the active memtable.
    pub memtable_entries: usize,
    /// Bytes in the active memtable.
    pub memtable_bytes: usize,
    /// SSTables per level, L0 first.
    pub tables: Vec<usize>,
    /// Bytes per level.
    pub level_bytes: Vec<u64>,
    /// Flushes done.
    pub flushes: u64,
    /// Compactions done.
    pub compactions: u64,
    /// WAL syncs done.
    pub syncs: u64,
    /// Write amplification so far.
    pub write_amplification: f64,
}

/// One node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeView {
    /// Node id (`n{id}`).
    pub id: u32,
    /// Its own state.
    pub status: Status,
    /// What the others think of it.
    pub seen: Seen,
    /// Its data store, when it runs.
    pub storage: Option<StorageView>,
    /// Hints it holds for others.
    pub hints: u64,
    /// Its clock's offset.
    pub skew_ms: i64,
    /// Requests it coordinates now.
    pub coordinating: usize,
}

/// One peer's opinion of another, for the node panel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Opinion {
    /// The peer holding the opinion.
    pub observer: u32,
    /// `alive`, `suspect`, `dead` or `left`.
    pub verdict: &'static str,
    /// Its phi, under gossip.
    pub phi: Option<f64>,
}

/// A message on its way.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MessageView {
    /// Id, as in the event log.
    pub id: u64,
    /// Sender.
    pub from: u32,
    /// Receiver.
    pub to: u32,
    /// Colour class.
    pub kind: MessageKind,
    /// Cluster time sent (ms).
    pub sent_ms: f64,
    /// Cluster time it arrives (ms).
    pub arrives_ms: f64,
    /// The client operation it belongs to, if known.
    pub op: Option<u64>,
}

impl MessageView {
    /// How far along it is at `now_ms`, from 0 to 1.
    pub fn progress(&self, now_ms: f64) -> f64 {
        let span = self.arrives_ms - self.sent_ms;
        if span <= 0.0 {
            return 1.0;
        }
        ((now_ms - self.sent_ms) / span).clamp(0.0, 1.0)
    }
}

/// What a short animation shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EffectKind {
    /// A message died (lost, partitioned, receiver down): a burst where it was.
    Death,
    /// A WAL append (and memtable insert).
    Wal,
    /// A WAL sync (group commit).
    Sync,
    /// A memtable flushed to an SSTable.
    Flush,
    /// A compaction.
    Compact,
    /// A node crashed.
    Crash,
}

/// A short animation, timed in real milliseconds so it reads the same at every speed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Effect {
    /// What it shows.
    pub kind: EffectKind,
    /// The node it happens at (the receiver, for a death).
    pub node: u32,
    /// For a death: the sender, the message's kind and where along the way it died.
    pub from: u32,
    /// The dead message's kind.
    pub message: MessageKind,
    /// For a death, how far along its way (0..1).
    pub at: f64,
    /// The client operation it belongs to, if known.
    pub op: Option<u64>,
    /// Real time it started.
    pub born_real_ms: f64,
}

/// A client operation being followed: its path, for highlighting.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Followed {
    /// The operation.
    pub op: u64,
    /// `put`, `get` or `delete`.
    pub kind: String,
    /// The key.
    pub key: String,
    /// The coordinator.
    pub coordinator: u32,
    /// The key's preference list.
    pub preference: Vec<u32>,
    /// Nodes contacted, with the owner each stood in for.
    pub targets: Vec<(u32, Option<u32>)>,
    /// Replicas that appended it to their WAL.
    pub wal: Vec<u32>,
    /// Replicas that acknowledged or answered.
    pub answered: Vec<u32>,
    /// Replicas sent a read repair.
    pub repaired: Vec<u32>,
    /// The outcome, once known.
    pub result: Option<String>,
    /// Its steps, one line each with the cluster time: `104ms n3 WAL append + memtable user123`.
    pub steps: Vec<(u64, String)>,
}

/// Everything drawn. See the module docs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ViewModel {
    /// Cluster time (ms).
    pub now_ms: f64,
    /// Replicas per key, write and read quorums.
    pub n: usize,
    /// Write quorum.
    pub w: usize,
    /// Read quorum.
    pub r: usize,
    /// Whether membership is by gossip (phi is meaningful).
    pub gossip: bool,
    /// Every node, by id.
    pub nodes: Vec<NodeView>,
    /// The ring: (token, owner), sorted by token.
    pub ring: Vec<(u64, u32)>,
    /// Messages in flight.
    pub messages: Vec<MessageView>,
    /// Short animations.
    pub effects: Vec<Effect>,
    /// Cut links (from, to).
    pub cut: Vec<(u32, u32)>,
    /// The operation being followed, if any.
    pub followed: Option<Followed>,
    /// What the centre shows instead of the cluster time, if set (live: the cluster's time of
    /// day, since its clocks are wall clocks).
    pub clock: Option<String>,
    /// The studied key's version at each node that holds it or should (its preference list).
    pub key_cells: Vec<KeyCell>,
    /// The open storage panel: one node's LSM tree.
    pub lsm: Option<storage::LsmView>,
    /// The anti-entropy session drawn as two Merkle trees (in lessons).
    pub merkle: Option<merkle::MerkleView>,
    /// The newest join or leave and the ranges it streams.
    pub moving: Option<moving::MovingView>,
    /// Who has heard whom, under gossip (in lessons that follow gossip).
    pub gossip_grid: Option<gossip::GossipView>,
    /// The ring shares a lesson compared (`shares VNODES`), oldest first, at most
    /// [`SHARES_MAX`].
    pub shares: Vec<RingShares>,
}

/// Ring-share comparisons kept at most.
pub const SHARES_MAX: usize = 3;

/// Each node's share of the ring with `vnodes` tokens per node (a lesson's `shares VNODES`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RingShares {
    /// Tokens per node.
    pub vnodes: u32,
    /// (node, fraction of the ring it is the first owner of), by node.
    pub shares: Vec<(u32, f64)>,
}

impl RingShares {
    /// The largest share over the smallest (infinite when a node owns nothing).
    pub fn spread(&self) -> f64 {
        let max = self.shares.iter().map(|s| s.1).fold(0.0, f64::max);
        let min = self.shares.iter().map(|s| s.1).fold(1.0, f64::min);
        if min > 0.0 { max / min } else { f64::INFINITY }
    }
}

/// The studied key at one node: what the picture writes beside it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KeyCell {
    /// The node.
    pub node: u32,
    /// Its value (`None`: a tombstone; empty with `ts` `None`: nothing stored).
    pub value: Option<String>,
    /// Its version's timestamp, shown as the traces do (`100`), if it holds one.
    pub ts: Option<String>,
    /// Whether another node holds a newer version (or this replica holds none).
    pub stale: bool,
}

impl ViewModel {
    /// The node with id `id`.
    pub fn node(&self, id: u32) -> Option<&NodeView> {
        self.nodes
            .binary_search_by_key(&id, |n| n.id)
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// Index of node `id` in [`ViewModel::nodes`].
    pub fn index_of(&self, id: u32) -> Option<usize> {
        self.nodes.binary_search_by_key(&id, |n| n.id).ok()
    }

    /// Adds an effect, dropping the oldest beyond the bound.
    pub fn push_effect(&mut self, effect: Effect) {
        if self.effects.len() >= EFFECTS_MAX {
            self.effects.remove(0);
        }
        self.effects.push(effect);
    }

    /// Forgets effects older than [`EFFECT_MS`] at real time `real_ms`.
    pub fn expire_effects(&mut self, real_ms: f64) {
        self.effects
            .retain(|e| real_ms - e.born_real_ms < EFFECT_MS);
    }

    /// The key's preference list on this ring: the first `n` distinct owners clockwise from
    /// its token.
    pub fn preference_list(&self, token: u64) -> Vec<u32> {
        crate::layout::preference_list(&self.ring, token, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_clamped_and_instant_messages_have_arrived() {
        let m = MessageView {
            id: 1,
            from: 1,
            to: 2,
            kind: MessageKind::Write,
            sent_ms: 100.0,
            arrives_ms: 110.0,
            op: None,
        };
        assert_eq!(m.progress(95.0), 0.0);
        assert_eq!(m.progress(105.0), 0.5);
        assert_eq!(m.progress(200.0), 1.0);
        let instant = MessageView {
            arrives_ms: 100.0,
            ..m
        };
        assert_eq!(instant.progress(100.0), 1.0);
    }

    #[test]
    fn effects_are_bounded_and_expire() {
        let mut v = ViewModel::default();
        for i in 0..(EFFECTS_MAX + 10) {
            v.push_effect(Effect {
                kind: EffectKind::Wal,
                node: 1,
                from: 1,
                message: MessageKind::Write,
                at: 0.0,
                op: None,
                born_real_ms: i as f64,
            });
        }
        assert_eq!(v.effects.len(), EFFECTS_MAX);
        assert_eq!(v.effects[0].born_real_ms, 10.0);
        v.expire_effects(EFFECT_MS + 100.0);
        assert!(v.effects.iter().all(|e| e.born_real_ms > 100.0));
    }

    #[test]
    fn the_consensus_reads_like_the_peers() {
        let s = |alive, suspect, dead| Seen {
            alive,
            suspect,
            dead,
            phi_max: None,
        };
        assert_eq!(s(4, 0, 0).consensus(), "alive");
        assert_eq!(s(3, 1, 0).consensus(), "doubted");
        assert_eq!(s(1, 3, 0).consensus(), "suspect");
        assert_eq!(s(0, 1, 3).consensus(), "dead");
        assert_eq!(s(0, 0, 0).consensus(), "alive");
    }
}
