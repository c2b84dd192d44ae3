//! The UI socket's protocol: what a native node tells a page that watches it over `/ws/ui`,
//! and the commands the page sends back. The node (server, `ringstore-node`) and the page
//! (client, `ringstore-web`, compiled to wasm) both use these types and this codec, so the two
//! ends cannot drift apart.
//!
//! # The conversation
//!
//! ```text
//! page                                   node
//!  │ ── WebSocket upgrade GET /ws/ui ──►  │  subscribes to its feed, then
//!  │ ◄──────────── Snapshot ────────────  │  who it is, what it allows, its state, its ring
//!  │ ◄──────────── Update ──────────────  │  every UPDATE_MS: state (ring only if it changed),
//!  │ ◄──────────── Update ──────────────  │  messages, aggregated counts, events, what was lost
//!  │ ── Command { id, .. } ────────────►  │  a client operation or a fault injection
//!  │ ◄──────────── Reply { id, .. } ────  │  exactly one per command, in any order
//! ```
//!
//! Messages are sent individually up to [`MESSAGES_PER_UPDATE`] per update; every other
//! message of the interval (beyond that bound, or past the node's feed rate) is only counted,
//! per peer and kind, in [`Update::aggregated`]. Events are bounded the same way and what
//! does not fit is counted in [`Lost`]. A page that reads too slowly never slows the node:
//! the node drops (and counts) what it cannot send.
//!
//! # Frames
//!
//! One frame per binary WebSocket message:
//!
//! ```text
//! offset  size  field
//! 0       2     magic      "RU"
//! 2       1     version    UI_VERSION; a receiver refuses other versions
//! 3       1     direction  1: to the page (ToPage), 2: to the node (ToNode)
//! 4       4     len        u32 LE: payload bytes, at most TO_PAGE_BYTES_MAX / TO_NODE_BYTES_MAX
//! 8       4     crc32      u32 LE over the payload
//! 12      len   payload    the message, encoded with postcard (serde, varint integers)
//! ```
//!
//! The header is the shared [`crate::framing`] codec's, with the direction as its checked tag
//! byte ([`UiFrame::FORMAT`]): decoding checks the magic, version, direction, bound and
//! checksum before it looks at the payload; every failure is a [`UiError`], never a panic.
//! The direction byte keeps a frame meant for one end from being read by the other.

use crate::NodeId;
use crate::framing::{FrameError, FrameFormat, HEADER_BYTES, Tag};
use crate::membership::{MemberStatus, Verdict};
use crate::node::{AntiEntropyStats, ClientOp, Lifecycle, NodeEvent};
use crate::storage::LsmStats;
use crate::wire::MessageKind;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version of this protocol. 2: client operations are one [`Command::Client`] carrying
/// the core's [`ClientOp`] (version 1 had `Put`, `Get` and `Delete` commands of its own).
/// 3: [`DropCause::TooLarge`], the node events of a stream that failed, and the storage
/// statistics carry `wal_torn_bytes_cut`.
pub const UI_VERSION: u8 = 3;
/// The path of the UI socket on every node.
pub const UI_PATH: &str = "/ws/ui";
/// Bytes of frame before the payload.
pub const FRAME_HEADER_BYTES: usize = HEADER_BYTES;
/// The largest frame payload a node sends (a snapshot of a large ring fits many times over).
pub const TO_PAGE_BYTES_MAX: usize = 1 << 20;
/// The largest frame payload a page sends: a command with a key and a value of a few KiB.
pub const TO_NODE_BYTES_MAX: usize = 32 << 10;
/// How often a node sends an update.
pub const UPDATE_MS: u64 = 250;
/// Messages sent individually per update at most; the rest are aggregated.
pub const MESSAGES_PER_UPDATE: usize = 64;
/// Protocol events sent per update at most (client requests' `RequestStarted` apart).
pub const EVENTS_PER_UPDATE: usize = 64;
/// `RequestStarted` events sent per update at most (they come with every client request).
pub const REQUESTS_PER_UPDATE: usize = 16;
/// Commands one page may have in flight on one connection; more are refused (`overloaded`).
pub const COMMANDS_IN_FLIGHT_MAX: usize = 16;
/// Bytes of a value a read sends back to the page at most (the page shows values, it does not
/// store them); the reply says how long the whole value is.
pub const VALUE_SHOWN_BYTES_MAX: usize = 1024;

/// The first two bytes of every UI frame.
pub const UI_MAGIC: [u8; 2] = *b"RU";
/// The direction byte of a frame to the page.
pub const TO_PAGE: u8 = 1;
/// The direction byte of a frame to the node.
pub const TO_NODE: u8 = 2;

/// Why bytes could not be decoded as a UI frame: what the shared frame check found
/// ([`FrameError`]; [`FrameError::WrongTag`] is a frame for the other end). Nothing was
/// changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad UI frame: {0}")]
pub struct UiError(#[from] pub FrameError);

/// A message that travels in a UI frame: its format (direction byte and bound).
pub trait UiFrame: Serialize + DeserializeOwned {
    /// Its frame format: [`UI_MAGIC`], [`UI_VERSION`], the direction as the tag, the bound.
    const FORMAT: FrameFormat;

    /// Encodes the message into one frame. Fails only if it is over the bound.
    fn encode(&self) -> Result<Vec<u8>, UiError> {
        Ok(Self::FORMAT.encode(self)?)
    }

    /// Decodes one frame that spans all of `bytes`.
    fn decode(bytes: &[u8]) -> Result<Self, UiError> {
        Ok(Self::FORMAT.decode(bytes)?)
    }
}

/// Everything a node sends to a page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToPage {
    /// The first frame on every connection.
    Snapshot(Box<Snapshot>),
    /// Every [`UPDATE_MS`] after the snapshot.
    Update(Box<Update>),
    /// The answer to one command. A frame that could not be decoded is answered with id 0
    /// (pages number their commands from 1).
    Reply {
        /// The command's id.
        id: u32,
        /// Its outcome.
        result: Result<Answer, CommandError>,
    },
}

impl UiFrame for ToPage {
    const FORMAT: FrameFormat = FrameFormat {
        magic: UI_MAGIC,
        version: UI_VERSION,
        tag: Tag::Checked(TO_PAGE),
        payload_bytes_max: TO_PAGE_BYTES_MAX,
    };
}

/// Everything a page sends to a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToNode {
    /// Do this and answer with a [`ToPage::Reply`] carrying the same id.
    Command {
        /// Chosen by the page, 1 and up.
        id: u32,
        /// What to do.
        command: Command,
    },
}

impl UiFrame for ToNode {
    const FORMAT: FrameFormat = FrameFormat {
        magic: UI_MAGIC,
        version: UI_VERSION,
        tag: Tag::Checked(TO_NODE),
        payload_bytes_max: TO_NODE_BYTES_MAX,
    };
}

/// Who the node is and what it allows; sent once, in the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The node's id.
    pub node: NodeId,
    /// Where its peers reach it (and where the page reached it, usually).
    pub address: String,
    /// Its gossip generation (its start time in ms): a new one means it restarted.
    pub generation: u64,
    /// Whether it accepts partition, heal and clock skew commands
    /// (`--allow-fault-injection`).
    pub fault_injection: bool,
    /// The largest value it accepts.
    pub value_bytes_max: u64,
    /// How often it sends updates.
    pub update_ms: u64,
}

/// One member as the sending node sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The member.
    pub id: NodeId,
    /// Where it is reached (empty if the sender does not know).
    pub address: String,
    /// The sender's verdict (`Alive` for itself).
    pub verdict: Verdict,
    /// What the member says it is doing.
    pub status: MemberStatus,
    /// φ of its heartbeats at the sender (none for itself and members never heard from).
    pub phi: Option<f64>,
    /// Whether it is in the sender's ring.
    pub in_ring: bool,
    /// Its tokens in that ring.
    pub tokens: u32,
    /// Share of the ring it owns as first replica.
    pub primary_share: f64,
    /// Share of the keys it stores at N replicas.
    pub replica_share: f64,
    /// Whether the sender cuts traffic to and from it (fault injection).
    pub partitioned: bool,
}

/// What a node knows now: sent in the snapshot and in every update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// The node's clock (ms since the Unix epoch, skew included).
    pub now_ms: u64,
    /// Where it is in its life in the cluster.
    pub lifecycle: Lifecycle,
    /// Clock skew injected at it.
    pub skew_ms: i64,
    /// Replicas per key.
    pub n: u32,
    /// Default write quorum.
    pub w: u32,
    /// Default read quorum.
    pub r: u32,
    /// Every member it knows, itself included, by id.
    pub members: Vec<Member>,
    /// Hints it holds, per owner.
    pub hints_held: Vec<(NodeId, u64)>,
    /// Requests it coordinates now.
    pub in_flight: u64,
    /// Anti-entropy totals.
    pub anti_entropy: AntiEntropyStats,
    /// Its data store's statistics.
    pub data: LsmStats,
    /// Its hint store's statistics.
    pub hints: LsmStats,
}

/// One token of a ring: its value and the node holding it.
pub type RingToken = (u64, NodeId);

/// The first frame: who, what it allows, its state and the ring it routes by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Who the node is.
    pub hello: Hello,
    /// Its state.
    pub state: NodeState,
    /// Its ring, sorted by token.
    pub ring: Vec<RingToken>,
}

/// Which way a message went, seen from the sending node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// From the node to the peer.
    Sent,
    /// From the peer to the node.
    Received,
}

/// Why a message to a peer was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropCause {
    /// The peer's send queue was full.
    QueueFull,
    /// Fault injection cuts the peer off.
    Partition,
    /// No address is known for the peer.
    NoRoute,
    /// The connection failed with the message queued.
    Disconnected,
    /// The message's encoding is over the wire's frame bound.
    TooLarge,
}

impl DropCause {
    /// Every cause, in a fixed order (the metrics' label values).
    pub const ALL: [DropCause; 5] = [
        DropCause::QueueFull,
        DropCause::Partition,
        DropCause::NoRoute,
        DropCause::Disconnected,
        DropCause::TooLarge,
    ];

    /// Lower-case name, as the metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            DropCause::QueueFull => "queue_full",
            DropCause::Partition => "partition",
            DropCause::NoRoute => "no_route",
            DropCause::Disconnected => "disconnected",
            DropCause::TooLarge => "too_large",
        }
    }
}

/// One message sent, received or dropped at the node, sent to the page individually.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSeen {
    /// The node's clock when it happened.
    pub at_ms: u64,
    /// Which way.
    pub direction: Direction,
    /// The other node.
    pub peer: NodeId,
    /// Its kind (the page's colour).
    pub kind: MessageKind,
    /// A one-line label, as the simulator's log writes it (`Put user123=Alice ts=100`).
    pub label: String,
    /// Why it was not sent, if it was dropped.
    pub dropped: Option<DropCause>,
}

/// Messages of one kind with one peer in one interval that were not sent individually.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The peer.
    pub peer: NodeId,
    /// The kind.
    pub kind: MessageKind,
    /// Sent to the peer.
    pub sent: u64,
    /// Received from it.
    pub received: u64,
    /// Meant for it but dropped.
    pub dropped: u64,
}

/// What this connection could not carry, since it opened (cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    /// Protocol events not sent: over the per-update bounds, or dropped because this
    /// connection fell behind the node's feed (a lag skips events and messages alike and
    /// cannot tell them apart: it is all counted here; the messages are still in the
    /// aggregated counts).
    pub events: u64,
    /// Messages the node's feed published but this connection did not send individually,
    /// because the update already carried [`MESSAGES_PER_UPDATE`] (they are still in the
    /// aggregated counts, like those past the feed's own rate).
    pub messages: u64,
    /// Updates not sent because the page did not read the previous ones in time.
    pub updates: u64,
}

/// What changed since the last frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// The node's state now.
    pub state: NodeState,
    /// The ring, only when it changed since the last frame.
    pub ring: Option<Vec<RingToken>>,
    /// Messages since the last update, individually (at most [`MESSAGES_PER_UPDATE`]).
    pub messages: Vec<MessageSeen>,
    /// Every other message since the last update, counted per peer and kind.
    pub aggregated: Vec<Aggregate>,
    /// Protocol events since the last update, with the node's clock (bounded, see the
    /// module docs).
    pub events: Vec<(u64, NodeEvent)>,
    /// What this connection lost so far.
    pub lost: Lost,
}

/// Something a page asks a node to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A put, get or delete coordinated by this node: the HTTP API's operation, with its
    /// bounds and error codes (a read's reply carries at most [`VALUE_SHOWN_BYTES_MAX`] bytes of
    /// the value).
    Client(ClientOp),
    /// Drop all traffic to and from these peers at this node (fault injection only).
    Partition {
        /// The peers cut off (added to those already cut).
        peers: Vec<NodeId>,
    },
    /// Restore every link at this node (fault injection only).
    Heal,
    /// Set the offset added to this node's clock (fault injection only).
    ClockSkew {
        /// The offset.
        ms: i64,
    },
}

/// A command's successful outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// A put or delete reached its W replicas.
    Written {
        /// The LWW timestamp written (microseconds of the coordinator's clock).
        ts_micros: u64,
        /// The coordinator that stamped it.
        writer: NodeId,
        /// Replicas that acknowledged.
        acks: u32,
        /// Of those, stand-ins that hold a hint.
        hinted: u32,
    },
    /// A read found a value.
    Found {
        /// Its timestamp, in microseconds.
        ts_micros: u64,
        /// Who wrote it.
        writer: NodeId,
        /// Its first [`VALUE_SHOWN_BYTES_MAX`] bytes.
        value: Vec<u8>,
        /// Its whole length.
        value_bytes: u64,
    },
    /// A read found nothing, or a tombstone written at `deleted_ts_micros`.
    NotFound {
        /// The tombstone's timestamp in microseconds, if the key was deleted.
        deleted_ts_micros: Option<u64>,
    },
    /// A fault injection command took effect; the node's faults now.
    Faults {
        /// Peers it cuts off.
        partitioned: Vec<NodeId>,
        /// Its clock skew.
        clock_skew_ms: i64,
    },
}

/// Why a command failed: the HTTP API's error codes, and two of the socket's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// A bad key or parameter (`bad_request`).
    BadRequest,
    /// A value over the node's limit (`too_large`).
    TooLarge,
    /// Fewer than W or R replicas answered in time (`quorum_unavailable`).
    QuorumUnavailable {
        /// Answers required.
        needed: u32,
        /// Answers received.
        got: u32,
    },
    /// Too many requests in flight, at the node or on this connection (`overloaded`).
    Overloaded,
    /// The node is joining or stopping (`unavailable`).
    Unavailable,
    /// The node was not started with `--allow-fault-injection` (`fault_injection_off`).
    FaultInjectionOff,
    /// The page sent bytes that are not a command frame (`bad_frame`).
    BadFrame,
}

impl ErrorCode {
    /// The code's name, as the HTTP API spells it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::QuorumUnavailable { .. } => "quorum_unavailable",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::FaultInjectionOff => "fault_injection_off",
            ErrorCode::BadFrame => "bad_frame",
        }
    }
}

/// A failed command: its code and a sentence for the page to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// Why, in words.
    pub message: String,
}

impl CommandError {
    /// An error with its code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> CommandError {
        CommandError {
            code,
            message: message.into(),
        }
    }
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

#[cfg(test)]
mod tests;
