//! The node's interface to its driver, apart from client operations (`client.rs`) and events
//! (`event.rs`): every [`Input`] it reacts to, every [`Output`] it asks for, the [`Timer`]s it
//! sets, and the storage operations ([`StorageOp`], [`StorageResult`]) a driver runs on its
//! two stores ([`StoreId`]). See the drive loop in the module docs of `node`.

use super::{ClientId, ClientOp, ClientResult, NodeEvent};
use crate::storage::{Cell, StorageFailure};
use crate::wire::Message;
use crate::{Millis, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The node's two stores: replicated data, and hints held for unreachable owners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StoreId {
    /// The node's share of the key space.
    Data,
    /// Writes held for other nodes (keys prefixed by the owner's id).
    Hints,
}

/// A storage operation the node asks its driver to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageOp {
    /// Apply a write; complete it once it is as durable as the sync policy requires.
    Write {
        /// Which store.
        store: StoreId,
        /// The key.
        key: Vec<u8>,
        /// The cell.
        cell: Cell,
    },
    /// Read the newest cell of a data key.
    Read {
        /// The key.
        key: Vec<u8>,
    },
    /// Up to `limit` live hints for `owner`, in key order (hint-store keys and cells).
    ScanHints {
        /// The owner.
        owner: NodeId,
        /// At most this many.
        limit: usize,
    },
    /// List the hint-store keys of the live hints (at start, to resume handoff after a
    /// restart; at most `hints_max` of them).
    CountHints,
    /// Apply several writes to the data store as one batch (streamed or repaired data); each
    /// cell wins or loses by LWW. Complete it once durable, like [`StorageOp::Write`].
    WriteBatch {
        /// Keys and cells.
        entries: Vec<(Vec<u8>, Cell)>,
    },
    /// A page of the data store's keys whose token is in `range`, in key order, after `after`:
    /// at most `limit` keys, tombstones included, with the cursor to continue from.
    ScanRange {
        /// The token range.
        range: crate::ring::Range,
        /// Resume after this key.
        after: Option<Vec<u8>>,
        /// At most this many keys.
        limit: usize,
    },
}

/// The result of a [`StorageOp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageResult {
    /// The write is applied and durable enough.
    Written,
    /// The cell read (a tombstone if deleted; `None` if never seen).
    Read(Option<Cell>),
    /// Live hint entries: hint-store key and cell.
    Hints(Vec<(Vec<u8>, Cell)>),
    /// The hint-store keys of the live hints.
    HintKeys(BTreeSet<Vec<u8>>),
    /// A page of a range: keys and cells, and where the next page starts (`None`: done).
    Range {
        /// Keys and cells whose token is in the range.
        entries: Vec<(Vec<u8>, Cell)>,
        /// The cursor for the next page.
        next: Option<Vec<u8>>,
    },
    /// The operation failed; the failure says whether anything changed and whether a retry
    /// can succeed.
    Failed(StorageFailure),
}

/// Timers the node sets. A timer that fires after what it guards is gone is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Timer {
    /// A coordinated request's deadline.
    RequestTimeout(u64),
    /// Time to hand hints back to owners that are up.
    HintReplay,
    /// Time to repair the next range with a replica.
    AntiEntropy,
    /// A repair session's deadline.
    AntiEntropyTimeout {
        /// The node that initiated the session.
        initiator: NodeId,
        /// Its number for the session.
        session: u64,
    },
    /// Time for a gossip round.
    GossipTick,
    /// Time for a joining node to compute what it streams.
    JoinStart,
    /// A streamed page's deadline.
    StreamTimeout {
        /// The streaming session.
        session: u64,
        /// Which request of the session it guards.
        attempt: u64,
    },
    /// Time to offer a handed-over range again, if its receiver has not confirmed it.
    OfferRetry {
        /// The offer's session.
        session: u64,
        /// Which offer of the session it guards.
        attempt: u64,
    },
}

/// What the node wants its driver to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// Send `msg` to `to` (possibly this node itself).
    Send {
        /// The destination.
        to: NodeId,
        /// The message.
        msg: Message,
    },
    /// Answer a client.
    Reply {
        /// The client request.
        client: ClientId,
        /// The outcome.
        result: ClientResult,
    },
    /// Call back with [`Input::Timer`] at local time `at`.
    SetTimer {
        /// Local time.
        at: Millis,
        /// The timer.
        timer: Timer,
    },
    /// Run a storage operation and call back with [`Input::Storage`].
    Storage {
        /// Identifies the operation in the callback.
        op: u64,
        /// The operation.
        storage: StorageOp,
    },
    /// Log an event.
    Event(NodeEvent),
}

/// What the node reacts to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A client request arriving at this node, which coordinates it.
    Client {
        /// Chosen by the driver; used in the reply.
        client: ClientId,
        /// The operation.
        op: ClientOp,
    },
    /// A message from a peer (or from this node to itself).
    Message {
        /// The sender.
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// A timer set with [`Output::SetTimer`] fired.
    Timer(Timer),
    /// A storage operation finished.
    Storage {
        /// The operation's id from [`Output::Storage`].
        op: u64,
        /// Its result.
        result: StorageResult,
    },
    /// The operator asks this node to leave the ring, handing its ranges over first.
    Leave,
    /// The operator removes `node`, a dead member that will not come back: it leaves every
    /// ring without streaming (anti-entropy then restores the replica count).
    Remove {
        /// The node to remove.
        node: NodeId,
    },
    /// The ring changed (an oracle's notice; gossip makes the same change itself).
    RingChanged {
        /// Every member and its tokens.
        members: Vec<(NodeId, Vec<crate::ring::Token>)>,
    },
    /// The failure detector's (or, in tests, an oracle's) verdict on a peer.
    PeerStatus {
        /// The peer.
        node: NodeId,
        /// Whether it is up.
        up: bool,
    },
}
