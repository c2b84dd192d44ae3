//! A native node on tokio: startup, the tasks and threads it runs, and shutdown.
//!
//! ```text
//!             HTTP clients                 peers (WebSocket, one inbound connection each)
//!                  │ axum handlers                  │ inbound tasks: handshake, unpack
//!   client queue ──┤ (1,024, awaited)               ├── peer queue (1,024 batches, awaited)
//!                  ▼                                ▼
//!        ┌──────────────────── node task (owns the core's Node) ─────────────────────┐
//!        │ completions > timers > peer batches > control > client requests            │
//!        └──┬───────────────┬──────────────────┬───────────────────────┬─────────────┘
//!    storage│      try_send │ (4,096 per peer) │ oneshot              │ watch
//!           ▼               ▼                  ▼                      ▼
//!   in memory: here;   link tasks: dial,   the waiting HTTP       persister: the state
//!   else try_send to   handshake, pack,    request                file on a blocking thread
//!   storage threads    write, reconnect
//!   (8,192 per queue), syncers: group commit
//! ```
//!
//! The node task never awaits anything but its next input: every output is done at once
//! without waiting (a storage operation in memory) or is a non-blocking hand-off, so a slow
//! disk, peer or client can fill its own bounded queue (and lose what does not fit, counted in
//! the metrics) but never stall the node.
//!
//! **The node task** ([`driver`]) takes up to 64 inputs of a kind per turn, in priority order,
//! and feeds each to `Node::handle` with the node's clock (wall clock plus the injected skew).
//! A full queue never blocks it: a message is dropped and counted
//! (`ringstore_messages_dropped_total{reason}`; Dynamo's quorums cope with loss), a storage
//! operation fails at once (the replica refuses, which the coordinator counts like a loss).
//! Nothing holds a lock across an await; the HTTP handlers only await their oneshot.
//!
//! **Peers.** A link ([`crate::peer::link`]) packs whatever is queued for its peer into one
//! WebSocket message (frames back to back, never over one frame's bound; a larger burst is fed
//! message by message and flushed once), reconnects with exponential backoff (50 ms to 5 s,
//! jittered), drops what it holds while it cannot connect (stale by then), and gives up a write
//! that makes no progress for 5 s (the peer stopped reading). An inbound connection
//! ([`crate::peer::inbound`]) hands each WebSocket message to the node task as one batch,
//! awaited, so a peer that floods is slowed by TCP. A peer's address comes from its handshake
//! (freshest: a restarted node may listen elsewhere), else gossip (`MemberState::address`),
//! else the remembered ring.
//!
//! **Membership on real processes.** A new node without `--join` starts a cluster: it is in its
//! own ring at once. With `--join` it is joining: its seeds are resolved by address (a dial and a
//! handshake, which tells their ids: `Node::add_seed`), it listens to gossip for
//! `--join-delay-ms` (three gossip rounds by default), then streams the ranges it gains and
//! announces `Alive`. The gossip generation is the start time in ms; phi's initial interval
//! follows `--gossip-interval-ms`, and `--dead-after-ms` sets how long Suspect lasts before Dead.
//!
//! **Fault injection** (`--allow-fault-injection`; without it the endpoints answer 404):
//! `POST /admin/partition` adds peers to a set the node task checks for every message it sends
//! and receives (dropped and counted with `reason="partition"`), `/admin/heal` clears it,
//! `/admin/clock-skew-ms` sets the offset added to the clock the core sees (LWW timestamps,
//! timers, phi). Gossip is indirect, so cutting one link does not make a peer suspect (its
//! heartbeats still arrive through others): isolating a node means cutting it on both sides.
//!
//! **Logs** (`tracing`, `RUST_LOG`): one line per lifecycle event: a member joined, up, suspect
//! with its phi, down, restarted, left; this node joining and joined; streams; hints replayed
//! or dropped; repairs that repaired keys; peers connected, lost, refused.
//!
//! **Limits**, each a named constant: client queue 1,024; peer queue 1,024 batches; link queue
//! 4,096 messages; storage queues 8,192; requests in flight per coordinator 10,000
//! (`NodeConfig`, then `503 overloaded`); values `--value-bytes-max` (1 MiB, at most 16 MiB),
//! keys 1,024 bytes; peer frames one envelope's bound; handshake frames 4 KiB; before a peer's
//! handshake completes, 8.3 KiB read and 64 such connections at once; HTTP request heads
//! 128 KiB (else 431; paths 64 KiB, else 414), sent within 10 s; a refused value's body, and a
//! closing connection's, read and dropped up to 64 MiB or 5 s; feed 1,024 events per
//! subscriber; the UI socket's bounds are in [`crate::ui_socket`]. The timer heap holds one
//! entry per timer the node set; request timers are bounded by the requests accepted in one
//! request timeout.

pub mod driver;
pub mod storage;

use crate::feed::{Feed, FeedEvent};
use crate::metrics::Metrics;
use crate::options::NodeOptions;
use crate::peer::handshake::Secret;
use crate::peer::link::{WsClient, resolve_seed};
use crate::peer::{PeerContext, PeerInbound};
use crate::state::{self, NodeState, RingMember};
use crate::store::{Store, wall_clock};
use crate::view::NodeView;
use anyhow::{Context, bail};
use driver::{Driver, Inputs};
use ringstore_core::membership::GossipConfig;
use ringstore_core::node::{
    CLIENT_VALUE_BYTES_MAX, ClientError, ClientOp, ClientResult, Membership, Node, NodeConfig,
    check_quorums, hint_store_config,
};
use ringstore_core::storage::LsmConfig;
use ringstore_core::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{info, warn};

/// Client requests queued for the node task at most (handlers wait for room).
pub const CLIENT_QUEUE_MAX: usize = 1_024;
/// Batches of peer messages queued for the node task at most (connections wait for room).
pub const PEER_QUEUE_MAX: usize = 1_024;
/// Control commands queued at most.
pub const CONTROL_QUEUE_MAX: usize = 256;
/// The file the bound address is written to, in the data directory.
pub const ADDRESS_FILE: &str = "address";

/// A command for the node task (from the HTTP layer and the transport).
pub enum Control {
    /// Answer with a snapshot of what the node knows.
    View(oneshot::Sender<NodeView>),
    /// Drop all traffic to and from these peers (added to those already cut).
    Partition(Vec<NodeId>),
    /// Stop dropping traffic.
    Heal,
    /// Set the offset added to this node's clock.
    ClockSkew(i64),
    /// A peer connected and said where it can be reached.
    PeerHello {
        /// The peer.
        id: NodeId,
        /// Its advertised address.
        address: String,
    },
    /// A `--join` address turned out to be this node.
    SeedResolved {
        /// The seed's id.
        id: NodeId,
        /// Its address.
        address: String,
        /// The connection, already through the handshake.
        ws: Box<WsClient>,
    },
    /// Stop the node task.
    Shutdown,
}

/// A client request for the node task.
pub struct ClientCall {
    /// The operation.
    pub op: ClientOp,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<ClientResult>,
}

/// A cheap, cloneable handle on a running node, for the HTTP layer (and the UI socket): one
/// `Arc`, since axum clones its state for every request.
#[derive(Clone)]
pub struct NodeHandle(Arc<NodeHandleInner>);

impl std::ops::Deref for NodeHandle {
    type Target = NodeHandleInner;
    fn deref(&self) -> &NodeHandleInner {
        &self.0
    }
}

/// What a [`NodeHandle`] holds.
pub struct NodeHandleInner {
    /// The node's id.
    pub id: NodeId,
    /// Its advertised address.
    pub address: String,
    clients: mpsc::Sender<ClientCall>,
    control: mpsc::Sender<Control>,
    /// Where inbound peer connections deliver.
    pub peers: mpsc::Sender<PeerInbound>,
    feed: broadcast::Sender<FeedEvent>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The data store (for statistics and replica reads).
    pub data: Arc<Store>,
    /// The hint store (for statistics).
    pub hints: Arc<Store>,
    /// What the transport needs.
    pub peer_ctx: PeerContext,
    /// The largest value accepted.
    pub value_bytes_max: usize,
    /// Whether the admin endpoints are on.
    pub fault_injection: bool,
    /// Origins of pages, besides the cluster's own, that may open the UI socket
    /// (`--ui-allow-origin`).
    pub ui_allow_origins: Vec<String>,
}

impl NodeHandle {
    /// Runs a client operation at this node as coordinator.
    pub async fn client(&self, op: ClientOp) -> ClientResult {
        let (reply, rx) = oneshot::channel();
        if self.clients.send(ClientCall { op, reply }).await.is_err() {
            return Err(ClientError::NodeDown);
        }
        rx.await.unwrap_or(Err(ClientError::NodeDown))
    }

    /// A snapshot of what the node knows (`None` if it is shutting down).
    pub async fn view(&self) -> Option<NodeView> {
        let (tx, rx) = oneshot::channel();
        self.control.send(Control::View(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Sends a command to the node task; `false` if it is gone.
    pub async fn control(&self, control: Control) -> bool {
        self.control.send(control).await.is_ok()
    }

    /// The control queue, for the transport.
    pub fn control_sender(&self) -> mpsc::Sender<Control> {
        self.control.clone()
    }

    /// Subscribes to the node's events and sampled messages (see [`crate::feed`]).
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.feed.subscribe()
    }
}

/// The identity and settings a node starts with: the remembered state, checked against the
/// command line, or a fresh one.
fn resolve_state(
    opts: &NodeOptions,
    prior: Option<NodeState>,
    now_ms: u64,
) -> anyhow::Result<NodeState> {
    let dir = opts.data_dir.display();
    let mut state = match prior {
        Some(s) => {
            if s.id != opts.id {
                bail!(
                    "{dir} holds the data of node {}; refusing to start it as {} (pass --id {} or another --data-dir)",
                    s.id,
                    opts.id,
                    s.id
                );
            }
            if let Some(n) = opts.n
                && n != s.n
            {
                bail!(
                    "{dir} was created with N={}; N cannot change (got --n {n})",
                    s.n
                );
            }
            s
        }
        None => {
            let n = opts.n.unwrap_or(3);
            let mut seed = [0u8; 8];
            getrandom::fill(&mut seed).context("no entropy source for the node's tokens")?;
            let tokens =
                ringstore_core::ring::node_tokens(opts.id, opts.vnodes, u64::from_le_bytes(seed));
            let joined = opts.join.is_empty();
            NodeState {
                id: opts.id,
                ring: if joined {
                    vec![RingMember {
                        id: opts.id,
                        tokens: tokens.clone(),
                        address: String::new(),
                    }]
                } else {
                    Vec::new()
                },
                tokens,
                n,
                w: n / 2 + 1,
                r: n / 2 + 1,
                created_ms: now_ms,
                last_generation: 0,
                joined,
                removed: Vec::new(),
            }
        }
    };
    state.w = opts.w.unwrap_or(state.w);
    state.r = opts.r.unwrap_or(state.r);
    check_quorums(state.n, state.w, state.r)?;
    state.last_generation = now_ms.max(state.last_generation + 1);
    if !state.joined && opts.join.is_empty() && state.ring.iter().all(|m| m.id == opts.id) {
        bail!(
            "node {} has not finished joining its cluster: start it with --join ADDR",
            opts.id
        );
    }
    Ok(state)
}

/// The repository's `www/`, if this binary was built from a checkout that has one.
pub fn default_www() -> Option<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../www"));
    dir.is_dir().then(|| dir.to_path_buf())
}

fn write_address_file(dir: &Path, addr: &SocketAddr) -> std::io::Result<()> {
    let tmp = dir.join(format!("{ADDRESS_FILE}.tmp"));
    std::fs::write(&tmp, format!("{addr}\n"))?;
    std::fs::rename(&tmp, dir.join(ADDRESS_FILE))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Runs a node until Ctrl-C or SIGTERM: opens its data directory, binds, serves, and shuts
/// down cleanly (the WALs sealed).
pub async fn run(opts: NodeOptions) -> anyhow::Result<()> {
    let dir = opts.data_dir.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = std::fs::remove_file(dir.join(ADDRESS_FILE));
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("listening on {}", opts.listen))?;
    let local = listener.local_addr()?;
    let address = opts.advertise.clone().unwrap_or_else(|| local.to_string());
    let now_ms = wall_clock().0;
    let prior = state::load(&dir)?;
    let mut node_state = resolve_state(&opts, prior, now_ms)?;
    if let Some(me) = node_state.ring.iter_mut().find(|m| m.id == opts.id) {
        me.address = address.clone();
    }
    state::store(&dir, &node_state)?;

    let value_bytes_max = opts.value_bytes_max.clamp(1, CLIENT_VALUE_BYTES_MAX);
    let lsm = LsmConfig {
        sync: opts.sync_policy(),
        value_bytes_max,
        memtable_bytes_max: opts.memtable_bytes_max.max(value_bytes_max + (64 << 10)),
        ..LsmConfig::default()
    };
    // Hints are few (bounded by hints_max) and consumed soon: a smaller memtable will do.
    let hint_lsm = LsmConfig {
        memtable_bytes_max: (lsm.memtable_bytes_max / 4).max(value_bytes_max + (64 << 10)),
        ..hint_store_config(&lsm)
    };
    let (data_dir, hint_dir) = (dir.join("data"), dir.join("hints"));
    let (data, hints) = tokio::task::spawn_blocking(move || {
        anyhow::Ok((
            Store::open_indexed(&data_dir, lsm)?,
            Store::open(&hint_dir, hint_lsm)?,
        ))
    })
    .await??;
    let (data, hints) = (Arc::new(data), Arc::new(hints));

    let me = opts.id;
    let mut addresses = BTreeMap::new();
    for m in &node_state.ring {
        if m.id != me && !m.address.is_empty() {
            addresses.insert(m.id, m.address.clone());
        }
    }
    let interval = opts.gossip_interval_ms.max(1);
    let mut gossip = GossipConfig {
        gossip_interval_ms: interval,
        dead_after_ms: opts.dead_after_ms,
        ..GossipConfig::default()
    };
    gossip.phi.initial_interval_ms = interval;
    gossip.phi.interval_ms_max = gossip.phi.interval_ms_max.max(5 * interval);
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).context("no entropy source")?;
    let joining = !node_state.joined;
    let config = NodeConfig {
        request_timeout_ms: opts.request_timeout_ms,
        value_bytes_max,
        hint_replay_interval_ms: opts.hint_replay_interval_ms.max(1),
        anti_entropy_interval_ms: opts.anti_entropy_interval_ms,
        anti_entropy_keys_per_sec: opts.anti_entropy_keys_per_sec,
        tokens: node_state.tokens.clone(),
        membership: Membership::Gossip {
            seeds: addresses.keys().copied().collect(),
            config: gossip,
        },
        generation: node_state.last_generation,
        address: address.clone(),
        removed: node_state.removed.clone(),
        seed: u64::from_le_bytes(seed),
        joining,
        join_delay_ms: opts.join_delay_ms.unwrap_or(3 * interval),
        ..NodeConfig::new(me, node_state.n, node_state.w, node_state.r)?
    };
    let ring = node_state.ring();
    let (node, outputs) = Node::new(config, ring, Millis(now_ms))?;

    let metrics = Arc::new(Metrics::new());
    let peer_ctx = PeerContext {
        me,
        address: address.clone(),
        n: u32::try_from(node_state.n).unwrap_or(u32::MAX),
        secret: Secret::new(opts.cluster_secret.as_deref()),
        metrics: metrics.clone(),
        pending_handshakes: Arc::new(tokio::sync::Semaphore::new(
            crate::peer::inbound::PENDING_HANDSHAKES_MAX,
        )),
    };
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let storage =
        storage::StorageThreads::start(data.clone(), hints.clone(), done_tx, metrics.clone())?;
    let (client_tx, client_rx) = mpsc::channel(CLIENT_QUEUE_MAX);
    let (peer_tx, peer_rx) = mpsc::channel(PEER_QUEUE_MAX);
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE_MAX);
    let (persist_tx, persist_rx) = watch::channel(node_state.clone());
    let feed = Feed::new();
    let handle = NodeHandle(Arc::new(NodeHandleInner {
        id: me,
        address: address.clone(),
        clients: client_tx,
        control: control_tx.clone(),
        peers: peer_tx,
        feed: feed.sender(),
        metrics: metrics.clone(),
        data: data.clone(),
        hints: hints.clone(),
        peer_ctx: peer_ctx.clone(),
        value_bytes_max,
        fault_injection: opts.allow_fault_injection,
        ui_allow_origins: opts.ui_allow_origin.clone(),
    }));
    let driver = Driver {
        node,
        skew_ms: 0,
        timers: BinaryHeap::new(),
        timer_seq: 0,
        clients: HashMap::new(),
        next_client: 1,
        links: BTreeMap::new(),
        addresses,
        heard: BTreeMap::new(),
        partitioned: BTreeSet::new(),
        storage,
        pending: VecDeque::new(),
        metrics,
        feed,
        peer_ctx: peer_ctx.clone(),
        fault_injection: opts.allow_fault_injection,
        state: node_state,
        persist: persist_tx,
    };
    let inputs = Inputs {
        completions: done_rx,
        peers: peer_rx,
        control: control_rx,
        clients: client_rx,
    };
    let driver_task = tokio::spawn(driver.run(inputs, outputs));
    let persister = tokio::spawn(driver::persister(dir.clone(), persist_rx));
    for addr in &opts.join {
        if *addr != address {
            tokio::spawn(resolve_seed(
                peer_ctx.clone(),
                addr.clone(),
                control_tx.clone(),
            ));
        }
    }

    let www = opts.www.clone().or_else(default_www);
    let app = crate::http::router(handle.clone(), www);
    write_address_file(&dir, &local)?;
    info!(
        "{me}: listening on {local} (advertised as {address}), data in {}, {}",
        dir.display(),
        if joining { "joining" } else { "serving" }
    );
    if opts.cluster_secret.is_none() && !local.ip().is_loopback() {
        warn!(
            "{me}: listening on {local}, beyond this machine, WITHOUT a cluster secret: anyone who \
             can reach this port can join the cluster as a peer under any id and read or \
             change every key; set --cluster-secret (or RINGSTORE_CLUSTER_SECRET) on every node"
        );
    }
    println!("ringstore {me} listening on {local}");
    crate::serve::serve(listener, app, shutdown_signal()).await?;

    info!("{me}: shutting down");
    handle.control(Control::Shutdown).await;
    drop(handle);
    let storage = driver_task.await?;
    persister.abort();
    tokio::task::spawn_blocking(move || {
        storage.join();
        for store in [data, hints] {
            if let Ok(store) = Arc::try_unwrap(store)
                && let Err(e) = store.close()
            {
                // The WAL was not sealed: the next start treats its tail as torn, not sealed.
                warn!("closing a store at shutdown failed: {e}");
            }
        }
    })
    .await?;
    let _ = std::fs::remove_file(dir.join(ADDRESS_FILE));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        node: NodeOptions,
    }

    fn opts(args: &[&str]) -> NodeOptions {
        let mut all = vec!["ringstore", "--data-dir", "/tmp/x"];
        all.extend_from_slice(args);
        Cli::parse_from(all).node
    }

    #[test]
    fn a_data_dir_keeps_its_node_id_and_n() {
        let first = resolve_state(&opts(&["--id", "3"]), None, 1_000).unwrap();
        assert_eq!((first.id, first.n, first.w, first.r), (NodeId(3), 3, 2, 2));
        assert!(first.joined, "no --join: a new cluster");
        assert_eq!(first.tokens.len(), 16);
        let again = resolve_state(&opts(&["--id", "n3"]), Some(first.clone()), 2_000).unwrap();
        assert_eq!(again.tokens, first.tokens, "a restart keeps its tokens");
        assert_eq!(again.last_generation, 2_000);
        let err = resolve_state(&opts(&["--id", "4"]), Some(first.clone()), 2_000).unwrap_err();
        assert!(err.to_string().contains("refusing"), "{err}");
        assert!(
            resolve_state(
                &opts(&["--id", "3", "--n", "5"]),
                Some(first.clone()),
                2_000
            )
            .is_err()
        );
        // The generation grows even if the clock stepped back.
        let back = resolve_state(&opts(&["--id", "3"]), Some(again.clone()), 10).unwrap();
        assert!(back.last_generation > again.last_generation);
        assert!(resolve_state(&opts(&["--id", "3", "--w", "4"]), None, 0).is_err());
    }

    #[test]
    fn a_new_node_with_join_starts_by_joining() {
        let s = resolve_state(&opts(&["--id", "2", "--join", "127.0.0.1:7001"]), None, 5).unwrap();
        assert!(!s.joined);
        assert!(s.ring.is_empty());
        // Crashed while joining and restarted without --join: refused, with the fix.
        let err = resolve_state(&opts(&["--id", "2"]), Some(s), 6).unwrap_err();
        assert!(err.to_string().contains("--join"), "{err}");
    }
}
