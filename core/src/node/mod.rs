//! A ringstore node as a sans-IO state machine: coordinator and replica in one.
//!
//! [`Node::handle`] takes the node's local time and one [`Input`] (a client request, a message
//! from a peer, a timer, the result of a storage operation, a liveness verdict) and returns the
//! [`Output`]s it wants done: messages to send, replies to clients, timers to set, storage
//! operations to run, events to log. It never touches a disk, socket or clock itself, so the
//! simulator, the native node and the browser drive the same code.
//!
//! # Drive loop
//!
//! ```text
//! loop {
//!     let input = next input (client, network, timer, storage completion, liveness);
//!     for output in node.handle(local_now, input) {
//!         Send      => deliver to the peer (a message to self too: the coordinator is often a replica)
//!         Reply     => answer the client
//!         SetTimer  => call back with Input::Timer at that local time (stale timers are ignored)
//!         Storage   => run it on the node's storage; feed back Input::Storage with its result,
//!                      a write only once it is as durable as the sync policy requires
//!         Event     => log it
//!     }
//! }
//! ```
//!
//! The coordinator's logic is in [`coordinator`], the replica's and hinted handoff's in
//! [`replica`]; what each storage operation reads is defined once for every driver in
//! [`storage_io`].

mod antientropy;
mod config_check;
mod coordinator;
mod membership;
mod replica;
mod storage_io;
mod stream;
#[cfg(test)]
mod tests;

use crate::ring::Ring;
use crate::storage::{CLIENT_KEY_BYTES_MAX, Cell, StorageFailure, Version};
use crate::wire::{Message, ReqId};
use crate::{Millis, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub use antientropy::{AE_SESSION_TIMEOUT_MS, AntiEntropyStats, RESPONDER_SESSIONS_MAX};
pub use config_check::{NodeError, QuorumError, check_quorums};
pub use coordinator::resolve_lww;
pub use membership::Membership;
pub use replica::{
    CLIENT_VALUE_BYTES_MAX, HINT_OVERHEAD_BYTES, decode_hint, hint_key, hint_store_config,
    split_hint_key,
};
pub use storage_io::{
    RangePage, ReadStore, SyncWaiters, WriteBatch, WriteOutcome, apply_write, run_read, scan_range,
    scan_ranges, sync_completions,
};
pub use stream::{
    Lifecycle, OFFER_RETRY_MS, STREAM_PAGE_BYTES_TARGET, STREAM_PAGE_KEYS, STREAM_PAGE_TIMEOUT_MS,
};

/// A consistency level for one request: how many replicas must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consistency {
    /// One replica.
    One,
    /// A majority of the N replicas: N/2 + 1.
    Quorum,
    /// All N replicas.
    All,
    /// Exactly this many (1 to N).
    Count(u32),
}

impl Consistency {
    /// The number of answers this level needs with `n` replicas.
    pub fn required(self, n: usize) -> Result<usize, ClientError> {
        match self {
            Consistency::One => Ok(1),
            Consistency::Quorum => Ok(n / 2 + 1),
            Consistency::All => Ok(n),
            Consistency::Count(k) if k >= 1 && (k as usize) <= n => Ok(k as usize),
            Consistency::Count(k) => Err(ClientError::BadRequest(format!(
                "a consistency of {k} is outside 1..={n} (N)"
            ))),
        }
    }
}

impl core::str::FromStr for Consistency {
    type Err = String;

    /// `one`, `quorum`, `all` (any case), or a number of replicas.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "one" => Ok(Consistency::One),
            "quorum" => Ok(Consistency::Quorum),
            "all" => Ok(Consistency::All),
            n => n
                .parse::<u32>()
                .map(Consistency::Count)
                .map_err(|_| format!("bad consistency {value:?}: one, quorum, all or a number")),
        }
    }
}

impl core::fmt::Display for Consistency {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Consistency::One => f.write_str("ONE"),
            Consistency::Quorum => f.write_str("QUORUM"),
            Consistency::All => f.write_str("ALL"),
            Consistency::Count(k) => write!(f, "{k}"),
        }
    }
}

/// A client's operation, as any node accepts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientOp {
    /// Store `value` under `key`.
    Put {
        /// The key, 1 to 1,024 bytes.
        key: Vec<u8>,
        /// The value, at most the node's `value_bytes_max`.
        value: Vec<u8>,
        /// Acks required, or the cluster's W.
        consistency: Option<Consistency>,
    },
    /// Read the newest value of `key`.
    Get {
        /// The key.
        key: Vec<u8>,
        /// Replies required, or the cluster's R.
        consistency: Option<Consistency>,
    },
    /// Delete `key` (a timestamped tombstone).
    Delete {
        /// The key.
        key: Vec<u8>,
        /// Acks required, or the cluster's W.
        consistency: Option<Consistency>,
    },
}

impl ClientOp {
    /// `put`, `get` or `delete`, as the HTTP API's metrics and the page's console name it.
    pub fn name(&self) -> &'static str {
        match self {
            ClientOp::Put { .. } => "put",
            ClientOp::Get { .. } => "get",
            ClientOp::Delete { .. } => "delete",
        }
    }

    /// The key the operation is about.
    pub fn key(&self) -> &[u8] {
        match self {
            ClientOp::Put { key, .. }
            | ClientOp::Get { key, .. }
            | ClientOp::Delete { key, .. } => key,
        }
    }
}

/// A successful client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientOk {
    /// A put or delete reached its write quorum.
    Written {
        /// The LWW version written.
        version: Version,
        /// Replicas that acknowledged before the reply (at least W).
        acks: usize,
        /// How many of those acks came from stand-ins holding a hint (a sloppy quorum): such a
        /// write does not promise that a quorum read sees it until the hints are handed over.
        hinted: usize,
    },
    /// A read found a live value.
    Found {
        /// The newest version among the replies.
        version: Version,
        /// Its value.
        value: Vec<u8>,
    },
    /// A read found nothing, or a tombstone (whose version is given).
    NotFound {
        /// The tombstone's version, if the key was deleted.
        version: Option<Version>,
    },
}

/// Why a client operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ClientError {
    /// A bad key, value or parameter. Nothing was written.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The value is over the node's limit. Nothing was written.
    #[error("value of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Fewer than the required replicas answered in time. A write may still have reached some
    /// replicas (and may become visible later): the outcome is unknown, as in any Dynamo.
    #[error("quorum unavailable: needed {needed} replicas, got {got}")]
    QuorumUnavailable {
        /// Answers required.
        needed: usize,
        /// Answers received.
        got: usize,
    },
    /// Fewer than the required replicas stored the write, and some refused it because of
    /// their storage (a full disk, a poisoned engine): the failures name the replicas and the
    /// cause. As with [`ClientError::QuorumUnavailable`], the write may still have reached
    /// other replicas; a replica whose failure says nothing changed did not store it.
    #[error(
        "storage unavailable: needed {needed} replicas, got {got}; {}",
        describe_failures(failures)
    )]
    StorageUnavailable {
        /// Acknowledgements required.
        needed: usize,
        /// Acknowledgements received.
        got: usize,
        /// The replicas whose storage refused the write, and why.
        failures: Vec<(NodeId, StorageFailure)>,
    },
    /// The node the client contacted is down (the client could not reach a coordinator).
    #[error("the coordinator is down")]
    NodeDown,
    /// The coordinator has too many requests in flight. Nothing was sent.
    #[error("overloaded: {in_flight} requests in flight")]
    Overloaded {
        /// Requests in flight.
        in_flight: usize,
    },
}

/// `n1: disk full: ...; n2: ...`, for [`ClientError::StorageUnavailable`]'s message.
fn describe_failures(failures: &[(NodeId, StorageFailure)]) -> String {
    let parts: Vec<String> = failures.iter().map(|(n, f)| format!("{n}: {f}")).collect();
    parts.join("; ")
}

/// The outcome of a client operation.
pub type ClientResult = Result<ClientOk, ClientError>;

/// A client request's identity, chosen by the driver.
pub type ClientId = u64;

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
    /// [`Message::StreamRefused`]). It is not asked for again; a joining node stays joining.
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
    /// it last stopped ([`Node::removed`], kept beside the remembered ring). The node starts
    /// with them as removed and gossips the removal again, so a removal taken through this
    /// node survives a crash before it had spread.
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

/// What a storage operation's completion is for.
#[derive(Debug)]
enum StorageWait {
    /// A replica write (to the data store, or a hint for `hint`'s owner, key and version);
    /// ack `req` to `coordinator`, alone or, with `group`, once every write of the group is
    /// done.
    ReplicaWrite {
        coordinator: NodeId,
        req: ReqId,
        hint: Option<(NodeId, Vec<u8>, Version)>,
        group: Option<u64>,
    },
    /// A replica write to hand on to `receivers`, waiting for this node's own copy of the
    /// key (see `replica.rs`).
    HandOnCheck {
        coordinator: NodeId,
        req: ReqId,
        key: Vec<u8>,
        cell: Cell,
        receivers: Vec<NodeId>,
    },
    /// A replica read for `req`.
    ReplicaRead { coordinator: NodeId, req: ReqId },
    /// A scan of hints for `owner`.
    HintScan { owner: NodeId },
    /// Marking a replayed hint consumed.
    HintConsumed,
    /// Counting hints at start.
    HintCount,
    /// A page to serve to a node pulling `range`.
    StreamServe {
        to: NodeId,
        session: u64,
        range: crate::ring::Range,
    },
    /// A received page being stored; then ask for `next`.
    StreamStore { session: u64, next: Option<Vec<u8>> },
    /// A page of a range scan for a repair session.
    RepairScan {
        key: antientropy::SessionKey,
        range: crate::ring::Range,
        purpose: antientropy::ScanPurpose,
    },
    /// A write of a newer version found by a repair session.
    RepairWrite,
}

/// A ringstore node. See the module docs.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    ring: Ring,
    /// The ring this node started with; gossip adds and removes members from it.
    base_ring: Ring,
    gossip: Option<crate::membership::Gossiper>,
    /// What the gossiped ring was last built from (see `after_gossip_ring`).
    ring_inputs: Option<membership::RingInputs>,
    /// The gossiper's [`crate::membership::Gossiper::ring_epoch`] when `ring_inputs` was
    /// last checked.
    ring_epoch: Option<u64>,
    rng: crate::DetRng,
    down: BTreeSet<NodeId>,
    /// `down` was changed by an input, not from gossip, since gossip's last look at it: the
    /// next look compares every member (see `after_gossip`).
    down_from_input: bool,
    next_seq: u64,
    last_ts: u64,
    writes: BTreeMap<u64, coordinator::PendingWrite>,
    reads: BTreeMap<u64, coordinator::PendingRead>,
    storage: BTreeMap<u64, StorageWait>,
    hints: replica::HintBook,
    acks: replica::AckGroups,
    lifecycle: Lifecycle,
    streams: stream::Streams,
    ae: antientropy::AntiEntropy,
    out: Vec<Output>,
}

impl Node {
    /// A node starting (or restarting) at local time `now` with `ring`. The outputs start hint
    /// handoff: counting hints left from before a restart, and the replay timer. Refuses a
    /// configuration that cannot work (N/W/R, or membership the gossiper refuses).
    pub fn new(
        config: NodeConfig,
        ring: Ring,
        now: Millis,
    ) -> Result<(Node, Vec<Output>), NodeError> {
        check_quorums(config.n, config.w, config.r)?;
        let seed = config.seed;
        let mut node = Node {
            config,
            base_ring: ring.clone(),
            ring,
            gossip: None,
            ring_inputs: None,
            ring_epoch: None,
            rng: <crate::DetRng as rand::SeedableRng>::seed_from_u64(seed),
            down: BTreeSet::new(),
            down_from_input: false,
            next_seq: 1,
            last_ts: 0,
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            storage: BTreeMap::new(),
            hints: replica::HintBook::default(),
            acks: replica::AckGroups::default(),
            lifecycle: Lifecycle::Normal,
            streams: stream::Streams::default(),
            ae: antientropy::AntiEntropy::default(),
            out: Vec::new(),
        };
        node.storage_op(StorageOp::CountHints, StorageWait::HintCount);
        node.set_timer(
            Millis(now.0 + node.config.hint_replay_interval_ms),
            Timer::HintReplay,
        );
        node.start_membership(now)?;
        if node.config.joining {
            node.lifecycle = Lifecycle::Joining;
            let delay = match node.config.membership {
                Membership::Oracle => 0,
                Membership::Gossip { .. } => node.config.join_delay_ms,
            };
            node.set_timer(Millis(now.0 + delay), Timer::JoinStart);
        }
        let ae = node.config.anti_entropy_interval_ms;
        if ae > 0 {
            // Spread the nodes' first repairs over one interval.
            let offset = u64::from(node.config.id.0).wrapping_mul(7919) % ae;
            node.set_timer(Millis(now.0 + ae + offset), Timer::AntiEntropy);
        }
        let out = std::mem::take(&mut node.out);
        Ok((node, out))
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The ring this node routes by.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Whether this node currently believes `node` is up.
    pub fn believes_up(&self, node: NodeId) -> bool {
        node == self.config.id || !self.down.contains(&node)
    }

    /// Requests this node is coordinating.
    pub fn in_flight(&self) -> usize {
        self.writes.len() + self.reads.len()
    }

    /// Where this node is in its life in the cluster.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Members an operator removed, with the removal's generation: what a driver keeps with
    /// the ring it remembers, and gives back in [`NodeConfig::removed`] at the next start.
    /// Empty under an oracle (its driver tells every node of a removal).
    pub fn removed(&self) -> Vec<(NodeId, u64)> {
        self.gossip
            .as_ref()
            .map(|g| g.removed())
            .unwrap_or_default()
    }

    /// Hints held, per owner (as far as this node has counted).
    pub fn hints_held(&self) -> &BTreeMap<NodeId, u64> {
        self.hints.counts()
    }

    /// Handles one input at local time `now`; returns what to do.
    pub fn handle(&mut self, now: Millis, input: Input) -> Vec<Output> {
        match input {
            Input::Client { client, op } => self.on_client(now, client, op),
            Input::Message { from, msg } => self.on_message(now, from, msg),
            Input::Timer(Timer::RequestTimeout(seq)) => self.on_request_timeout(seq),
            Input::Timer(Timer::HintReplay) => self.on_hint_replay_timer(now),
            Input::Timer(Timer::AntiEntropy) => self.on_anti_entropy_timer(now),
            Input::Timer(Timer::AntiEntropyTimeout { initiator, session }) => {
                self.on_anti_entropy_timeout(now, initiator, session)
            }
            Input::Timer(Timer::StreamTimeout { session, attempt }) => {
                self.on_stream_timeout(now, session, attempt)
            }
            Input::Timer(Timer::OfferRetry { session, attempt }) => {
                self.on_offer_retry(now, session, attempt)
            }
            Input::Timer(Timer::GossipTick) => self.on_gossip_tick(now),
            Input::Timer(Timer::JoinStart) => self.start_join(now),
            Input::Leave => self.start_leave(now),
            Input::Remove { node } => self.on_remove(node),
            Input::RingChanged { members } => {
                self.ring_inputs = None;
                let new = Ring::new(members);
                let old = std::mem::replace(&mut self.ring, new.clone());
                if old != new {
                    self.hand_over_lost_ranges(now, &old, &new);
                }
            }
            Input::Storage { op, result } => self.on_storage(now, op, result),
            Input::PeerStatus { node, up } => {
                self.down_from_input = true;
                self.on_peer_status(now, node, up);
            }
        }
        std::mem::take(&mut self.out)
    }

    fn on_message(&mut self, now: Millis, from: NodeId, msg: Message) {
        match msg {
            Message::Replicate {
                req,
                key,
                cell,
                hint_for,
                purpose: _,
            } => {
                self.on_replicate(from, req, key, cell, hint_for);
            }
            Message::ReplicateAck { req, result } => self.on_replicate_ack(now, from, req, result),
            Message::Read { req, key } => self.on_read(from, req, key),
            Message::ReadReply { req, result } => self.on_read_reply(from, req, result),
            Message::StreamRequest {
                session,
                range,
                after,
            } => self.on_stream_request(from, session, range, after),
            Message::StreamBatch {
                session,
                entries,
                next,
                ..
            } => self.on_stream_batch(now, from, session, entries, next),
            Message::StreamOffer { session, range } => {
                self.on_stream_offer(now, from, session, range)
            }
            Message::StreamDone { session, .. } => self.on_stream_done(from, session),
            Message::StreamRefused {
                session, reason, ..
            } => self.on_stream_refused(now, from, session, reason),
            Message::AntiEntropy {
                initiator,
                session,
                msg,
            } => self.on_anti_entropy_message(now, from, initiator, session, msg),
            Message::Gossip(msg) => self.on_gossip(now, from, msg),
        }
    }

    /// Records a verdict on a peer, from an oracle or the failure detector.
    pub(super) fn on_peer_status(&mut self, now: Millis, node: NodeId, up: bool) {
        if node == self.config.id {
            return;
        }
        if up {
            if self.down.remove(&node) {
                // An owner is back: offer its hints now rather than at the next round.
                self.replay_hints_to(now, node);
            }
        } else {
            self.down.insert(node);
        }
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn req_id(&mut self) -> ReqId {
        ReqId {
            coordinator: self.config.id,
            seq: self.next_seq(),
        }
    }

    /// The next LWW version from this coordinator's clock: microseconds, strictly increasing
    /// even when the clock stands still or steps back.
    fn next_version(&mut self, now: Millis) -> Version {
        let ts = (now.0.saturating_mul(1000)).max(self.last_ts + 1);
        self.last_ts = ts;
        Version {
            ts,
            node: self.config.id,
        }
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.out.push(Output::Send { to, msg });
    }

    fn reply(&mut self, client: ClientId, result: ClientResult) {
        self.out.push(Output::Reply { client, result });
    }

    fn set_timer(&mut self, at: Millis, timer: Timer) {
        self.out.push(Output::SetTimer { at, timer });
    }

    fn event(&mut self, event: NodeEvent) {
        self.out.push(Output::Event(event));
    }

    fn storage_op(&mut self, storage: StorageOp, wait: StorageWait) {
        let op = self.next_seq();
        self.storage.insert(op, wait);
        self.out.push(Output::Storage { op, storage });
    }

    fn on_storage(&mut self, now: Millis, op: u64, result: StorageResult) {
        let Some(wait) = self.storage.remove(&op) else {
            return;
        };
        match wait {
            StorageWait::ReplicaWrite {
                coordinator,
                req,
                hint,
                group,
            } => {
                self.on_replica_write_done(now, coordinator, req, hint, group, result);
            }
            StorageWait::HandOnCheck {
                coordinator,
                req,
                key,
                cell,
                receivers,
            } => self.on_hand_on_check(coordinator, req, key, cell, receivers, result),
            StorageWait::ReplicaRead { coordinator, req } => {
                self.on_replica_read_done(coordinator, req, result);
            }
            StorageWait::HintScan { owner } => self.on_hint_scan(now, owner, result),
            StorageWait::HintConsumed | StorageWait::RepairWrite => {}
            StorageWait::RepairScan {
                key,
                range,
                purpose,
            } => self.on_repair_scan(key, range, purpose, result),
            StorageWait::StreamServe { to, session, range } => {
                self.on_stream_served(to, session, range, result)
            }
            StorageWait::StreamStore { session, next } => {
                if matches!(result, StorageResult::Written) {
                    self.on_stream_page_stored(now, session, next);
                }
            }
            StorageWait::HintCount => {
                if let StorageResult::HintKeys(keys) = result {
                    self.hints.set_keys(keys);
                    self.maybe_finish_leave();
                }
            }
        }
    }
}

/// Checks a client key against the limits.
fn check_client_key(key: &[u8]) -> Result<(), ClientError> {
    if key.is_empty() || key.len() > CLIENT_KEY_BYTES_MAX {
        return Err(ClientError::BadRequest(format!(
            "key of {} bytes is outside 1..={CLIENT_KEY_BYTES_MAX}",
            key.len()
        )));
    }
    Ok(())
}
