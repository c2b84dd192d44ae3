//! Cluster membership: who is in the cluster, with which ring tokens, and who seems alive.
//!
//! Dynamo has no leader and no membership service, so every node learns the membership by
//! gossip (design notes, section 5) and decides for itself, with a phi-accrual failure
//! detector, which peers it currently believes are up. This module holds the shared types;
//! the protocol is in [`gossip`], the detector in [`phi`], a deterministic mini-simulation
//! used by the tests and the `gossip_detection` example in [`sim`]. What the protocol
//! guarantees, and what it does not, is written down in `docs/ALGORITHM.md`.
//!
//! # Two kinds of state
//!
//! - What a member says **about itself** ([`MemberState`]): its generation (one per process
//!   start), heartbeat counter, status ([`MemberStatus`]), ring tokens and address. Only the
//!   member changes these (except [`gossip::Gossiper::remove`], an operator's override), and
//!   they are gossiped so every node converges to the same values.
//! - What **this node** concludes about a member ([`Verdict`]): Alive, Suspect or Dead come from
//!   the local failure detector and are never gossiped; two nodes may disagree for a while.
//!
//! # Drive loop
//!
//! ```text
//! let mut g = Gossiper::new(me, generation /* e.g. start time in ms */, address, tokens, seeds, config)?;
//! g.set_status(MemberStatus::Alive)?;        // once the node serves its ranges
//! loop {
//!     every config.gossip_interval_ms:  for (to, msg) in g.tick(now, &mut rng) { send(to, msg) }
//!     on a GossipMsg from a peer:       for (to, msg) in g.handle(now, from, msg) { send(to, msg) }
//!     then:                             for e in g.drain_events() { log(e) }
//!                                       g.live_view(now) feeds the coordinator's liveness
//! }
//! ```

pub mod gossip;
pub mod phi;
pub mod sim;

use crate::NodeId;
use crate::ring::Token;
use serde::{Deserialize, Serialize};

pub use gossip::{Gossiper, choose_peers};
pub use phi::{LOG10_E, PhiConfig, PhiDetector};

/// What a member says about its own place in the cluster. Gossiped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Bootstrapping: announced its tokens, not yet serving its ranges.
    Joining,
    /// A full member serving its ranges.
    Alive,
    /// Handing its ranges to others before it leaves.
    Leaving,
    /// Has left the cluster for good; its tokens no longer count.
    Left,
    /// Removed by an operator (a dead node that will not come back). Set by
    /// [`gossip::Gossiper::remove`] on its behalf, with a higher generation so it wins.
    Removed,
}

impl MemberStatus {
    /// Lower-case name, as the node's `/cluster` and the page show it.
    pub fn name(self) -> &'static str {
        match self {
            MemberStatus::Joining => "joining",
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Removed => "removed",
        }
    }
}

/// A member's self-reported state, as this node last heard it.
///
/// Versions follow Scuttlebutt (van Renesse et al., 2008) as Cassandra uses it: `version` is
/// one counter per member and generation, bumped by *every* change the member makes to its own
/// state, heartbeat included; `app_version` is the value `version` had when the status,
/// tokens or address last changed. A peer whose digest says it has version `v` needs the
/// heartbeat if `version > v` and the application state too only if `app_version > v`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberState {
    /// Chosen by the member at each start (e.g. its start time in ms) and larger than any
    /// earlier one: a larger generation means the member restarted, and replaces all it said
    /// before.
    pub generation: u64,
    /// Incremented by the member once per gossip round. A newer heartbeat is the evidence of
    /// life fed to the failure detector.
    pub heartbeat: u64,
    /// The member's version counter (see the type's documentation).
    pub version: u64,
    /// `version` when the application state (status, tokens, address) last changed.
    pub app_version: u64,
    /// What the member says it is doing.
    pub status: MemberStatus,
    /// The member's ring tokens, sorted.
    pub tokens: Vec<Token>,
    /// How to reach the member (opaque to the core: a URL, `host:port`, a tab id).
    pub address: String,
}

impl MemberState {
    /// The member's application state, to send in a [`Delta`].
    pub fn app(&self) -> AppState {
        AppState {
            app_version: self.app_version,
            status: self.status,
            tokens: self.tokens.clone(),
            address: self.address.clone(),
        }
    }

    /// The digest of this state for `node`.
    pub fn digest(&self, node: NodeId) -> Digest {
        Digest {
            node,
            generation: self.generation,
            max_version: self.version,
        }
    }
}

/// A summary of what a node knows about one member: enough for a peer to tell who is behind.
///
/// Postcard encoding: `node` varint u32 (≤ 5 bytes), `generation` and `max_version` varint
/// u64 (≤ 10 bytes each): at most [`DIGEST_BYTES_MAX`] bytes, so the digests of 1,000
/// members take at most 25 KB (typically about 12 KB: a generation in ms takes 6 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Digest {
    /// The member.
    pub node: NodeId,
    /// Its generation as known here (0: not known at all).
    pub generation: u64,
    /// Its `version` as known here.
    pub max_version: u64,
}

/// The largest encoded [`Digest`].
pub const DIGEST_BYTES_MAX: usize = 5 + 10 + 10;

/// A member's application state: everything but the heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppState {
    /// The member's `version` when this state was set.
    pub app_version: u64,
    /// Its status.
    pub status: MemberStatus,
    /// Its tokens, sorted.
    pub tokens: Vec<Token>,
    /// Its address.
    pub address: String,
}

/// The part of a member's state a peer lacks: always the heartbeat and version, and the
/// application state when the peer's copy of it is older (or the peer has an older generation
/// or none at all).
///
/// Postcard encoding, at most [`Delta::bytes_max`] bytes: `node` (≤ 5), `generation`,
/// `heartbeat`, `version` (≤ 10 each), `app` option tag (1), then if present `app_version`
/// (≤ 10), `status` (1), `tokens` length (≤ 5) and tokens (≤ 10 each), `address` length (≤ 5)
/// and bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// The member.
    pub node: NodeId,
    /// Its generation.
    pub generation: u64,
    /// Its heartbeat.
    pub heartbeat: u64,
    /// Its version.
    pub version: u64,
    /// Its application state, if the receiver needs it.
    pub app: Option<AppState>,
}

impl Delta {
    /// An upper bound on this delta's postcard encoding, computed without encoding it.
    pub fn bytes_max(&self) -> usize {
        let head = 5 + 10 + 10 + 10 + 1;
        match &self.app {
            None => head,
            Some(app) => head + 10 + 1 + 5 + 10 * app.tokens.len() + 5 + app.address.len(),
        }
    }
}

/// The gossip protocol's messages (Scuttlebutt's three-way exchange, as in Cassandra).
///
/// ```text
/// A ── Syn { digests of everything A knows } ─────────────────────────────► B
/// A ◄── Ack { deltas A lacks (most-behind first, size-bounded), requests } ── B
/// A ── Ack2 { deltas B requested (size-bounded) } ─────────────────────────► B
/// ```
///
/// The integrator wraps these in one `wire::Message` variant. Bounds: a `Syn` carries one
/// digest per known member (at most `members_max`); the deltas of an `Ack` or `Ack2` fit in
/// `max_deltas_bytes` (by [`Delta::bytes_max`]); the requests of an `Ack` are digests, one per
/// member at most.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMsg {
    /// Opens a round: "this is what I know".
    Syn {
        /// One digest per member the sender knows, itself included.
        digests: Vec<Digest>,
    },
    /// Answers a `Syn`: the state the initiator lacks, and what the responder lacks (each
    /// request is the responder's own digest for that member: "send me what is newer").
    Ack {
        /// State newer than the initiator's digests.
        deltas: Vec<Delta>,
        /// Members the initiator knows more recent state of.
        requests: Vec<Digest>,
    },
    /// Closes a round: the state the responder asked for.
    Ack2 {
        /// State newer than the responder's requests.
        deltas: Vec<Delta>,
    },
}

/// This node's local verdict on a member. Never gossiped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Verdict {
    /// Heard from recently enough (φ below the threshold).
    Alive,
    /// φ at or over the threshold.
    Suspect,
    /// Suspect for longer than `dead_after_ms`.
    Dead,
    /// The member said it left.
    Left,
}

impl Verdict {
    /// Lower-case name, as the node's `/cluster` and the page show it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Alive => "alive",
            Verdict::Suspect => "suspect",
            Verdict::Dead => "dead",
            Verdict::Left => "left",
        }
    }
}

/// Something the membership wants logged (and drawn).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum GossipEvent {
    /// A member this node had never heard of.
    Joined {
        /// The member.
        node: NodeId,
        /// Its status when first heard of.
        status: MemberStatus,
    },
    /// A Suspect or Dead member was heard from again.
    PeerUp {
        /// The member.
        node: NodeId,
    },
    /// A member's φ reached the threshold.
    PeerSuspect {
        /// The member.
        node: NodeId,
        /// Its φ then.
        phi: f64,
    },
    /// A member was suspect for longer than `dead_after_ms`.
    PeerDown {
        /// The member.
        node: NodeId,
    },
    /// A member came back with a larger generation: it restarted.
    PeerRestarted {
        /// The member.
        node: NodeId,
        /// The generation before.
        old_generation: u64,
        /// The new generation.
        generation: u64,
    },
    /// A member's status changed (other than to Left or Removed, which have their own events).
    StatusChanged {
        /// The member.
        node: NodeId,
        /// The new status.
        status: MemberStatus,
    },
    /// A member said it left.
    PeerLeft {
        /// The member.
        node: NodeId,
    },
    /// A member was removed by an operator (here or elsewhere).
    PeerRemoved {
        /// The member.
        node: NodeId,
    },
    /// Another node gossiped that *this* node was removed (or restarted): this node took a
    /// larger generation so its own state wins again.
    Refuted {
        /// This node's new generation.
        generation: u64,
    },
    /// Events were dropped because nobody drained them (the queue is bounded).
    EventsDropped {
        /// How many.
        count: u64,
    },
}

// f64 in PeerSuspect: derive(Eq) would be wrong for NaN, but φ is never NaN (a non-negative
// silence over a positive mean). Tests compare events with PartialEq only.
impl Eq for GossipEvent {}

/// Gossip settings. Every queue and message has a bound here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GossipConfig {
    /// How often [`Gossiper::tick`] is called: one heartbeat and one round per interval.
    pub gossip_interval_ms: u64,
    /// Live peers contacted per round (a seed and a suspected peer may be added, see
    /// [`choose_peers`]).
    pub fanout: usize,
    /// The failure detector's settings; its `initial_interval_ms` should be the gossip
    /// interval.
    pub phi: PhiConfig,
    /// A member suspect for longer than this is Dead.
    pub dead_after_ms: u64,
    /// The deltas of one `Ack` or `Ack2` take at most this many bytes (by
    /// [`Delta::bytes_max`]); the rest wait for later rounds.
    pub max_deltas_bytes: usize,
    /// Members this node tracks at most (removed ones included); newcomers past it are ignored.
    pub members_max: usize,
    /// Tokens per member at most.
    pub tokens_max: usize,
    /// Bytes of a member's address at most.
    pub address_bytes_max: usize,
    /// Undrained events kept at most (older ones are dropped and counted).
    pub events_max: usize,
}

impl Default for GossipConfig {
    /// A 1 s interval, fanout 3, φ threshold 8, Dead 10 s after Suspect, 64 KiB of deltas per
    /// message, 4,096 members, 1,024 tokens each, 256-byte addresses, 4,096 events.
    fn default() -> GossipConfig {
        GossipConfig {
            gossip_interval_ms: 1_000,
            fanout: 3,
            phi: PhiConfig::default(),
            dead_after_ms: 10_000,
            max_deltas_bytes: 64 << 10,
            members_max: 4_096,
            tokens_max: 1_024,
            address_bytes_max: 256,
            events_max: 4_096,
        }
    }
}

/// Why a membership call was refused. Nothing was changed when one is returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum GossipError {
    /// The address is over `address_bytes_max`.
    #[error("address of {len} bytes is over the limit of {max}")]
    AddressTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More tokens than `tokens_max`.
    #[error("{count} tokens is over the limit of {max}")]
    TooManyTokens {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The configuration cannot work (the message says why).
    #[error("bad gossip configuration: {0}")]
    BadConfig(String),
    /// A status change a member cannot make (e.g. Left back to Alive).
    #[error("a member cannot go from {from:?} to {to:?}")]
    BadTransition {
        /// The current status.
        from: MemberStatus,
        /// The refused one.
        to: MemberStatus,
    },
    /// `remove` of this node itself, or of a member not known here.
    #[error("cannot remove {0}: it is this node or not a known member")]
    CannotRemove(NodeId),
}
