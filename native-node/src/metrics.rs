//! The node's Prometheus metrics (`GET /metrics`, text exposition format), on the maintained
//! `prometheus-client` crate.
//!
//! Counters that the node task bumps on its hot path (messages by kind) are resolved once at
//! start and kept as handles (an atomic add each); the storage engines' statistics are read at
//! scrape time, so keeping them costs nothing between scrapes.

use crate::store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use ringstore_core::storage::LsmStats;
use ringstore_core::ui::DropCause;
use ringstore_core::wire::MessageKind;
use std::sync::atomic::AtomicU64;

/// Every message kind, in a fixed order (indexes of the per-kind arrays).
pub const KINDS: [MessageKind; 7] = [
    MessageKind::Write,
    MessageKind::Read,
    MessageKind::Ack,
    MessageKind::Gossip,
    MessageKind::Hint,
    MessageKind::Repair,
    MessageKind::Stream,
];

/// The index of `kind` in [`KINDS`].
pub fn kind_index(kind: MessageKind) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpResult {
    op: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Op {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindReason {
    kind: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLevel {
    store: &'static str,
    level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The node's metrics. Cheap to share (`Arc`); every handle is an atomic.
pub struct Metrics {
    registry: Registry,
    requests: Family<OpResult, Counter>,
    latency: Family<Op, Histogram, fn() -> Histogram>,
    quorum_failures: Family<Op, Counter>,
    /// Read repairs sent by this coordinator.
    pub read_repairs: Counter,
    /// Hints this node stored for unreachable owners.
    pub hints_stored: Counter,
    /// Hints handed back to their owners.
    pub hints_replayed: Counter,
    /// Hints dropped (too old, or the hint store full).
    pub hints_dropped: Counter,
    /// Hints held now.
    pub hints_held: Gauge,
    /// Anti-entropy bytes exchanged by completed sessions.
    pub anti_entropy_bytes: Counter,
    /// Keys written because a replica had a newer version.
    pub anti_entropy_keys_repaired: Counter,
    /// Anti-entropy sessions completed.
    pub anti_entropy_sessions: Counter,
    /// Anti-entropy sessions failed or timed out.
    pub anti_entropy_failures: Counter,
    /// Gossip rounds run.
    pub gossip_rounds: Counter,
    /// Keys received by streaming (joins, leaves, ring changes).
    pub stream_keys: Counter,
    /// Requests being coordinated now.
    pub in_flight: Gauge,
    /// Members by this node's verdict.
    members: Family<VerdictLabel, Gauge>,
    sent: [Counter; 7],
    received: [Counter; 7],
    dropped: Vec<[Counter; 7]>,
    /// Peer connections refused in the handshake, by reason.
    handshakes_refused: Family<Reason, Counter>,
    /// Peer connections closed because a frame did not decode.
    pub bad_frames: Counter,
    /// Storage operations refused because the storage queue was full.
    pub storage_queue_full: Counter,
    /// Storage operations the node task ran itself (in memory, without waiting).
    pub storage_inline: Counter,
    /// Storage operations handed to a storage thread.
    pub storage_queued: Counter,
    /// UI sockets (`/ws/ui`) open now.
    pub ui_connections: Gauge,
    /// UI updates skipped because a page did not read the previous ones.
    pub ui_updates_skipped: Counter,
    /// UI frames from pages that did not decode.
    pub ui_bad_frames: Counter,
    storage_gauges: Vec<(&'static str, Family<StoreLabel, Gauge>)>,
    storage_float: Family<StoreLabel, FloatGauge>,
    level_tables: Family<StoreLevel, Gauge>,
    level_bytes: Family<StoreLevel, Gauge>,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 3.3 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

/// The storage statistics exported as gauges: metric suffix and help.
const STORAGE_GAUGES: [(&str, &str); 15] = [
    ("wal_bytes", "Bytes of live WAL segments"),
    ("wal_syncs", "WAL syncs done (each may cover many writes)"),
    ("memtable_entries", "Keys in the active memtable"),
    ("memtable_bytes", "Bytes in the active memtable"),
    ("frozen_memtables", "Frozen memtables waiting for a flush"),
    ("flushes", "Flushes done"),
    ("compactions", "Compactions done"),
    (
        "user_bytes_written",
        "Bytes of keys and cells written by users",
    ),
    ("wal_bytes_written", "Bytes appended to the WAL"),
    (
        "tombstones_purged",
        "Tombstones dropped after their grace period",
    ),
    (
        "write_stalls",
        "Writes that waited for flushes or compactions",
    ),
    ("block_cache_hits", "Block cache hits"),
    ("block_cache_misses", "Block cache misses"),
    (
        "poisoned",
        "1 if the engine stopped accepting writes after a disk error",
    ),
    (
        "wal_torn_bytes_cut",
        "Bytes of torn WAL tail cut when the store was opened",
    ),
];

fn storage_value(stats: &LsmStats, name: &str) -> i64 {
    let v = match name {
        "wal_bytes" => stats.wal_bytes,
        "wal_syncs" => stats.wal_syncs,
        "memtable_entries" => stats.memtable_entries as u64,
        "memtable_bytes" => stats.memtable_bytes as u64,
        "frozen_memtables" => stats.frozen_memtables as u64,
        "flushes" => stats.flushes,
        "compactions" => stats.compactions,
        "user_bytes_written" => stats.user_bytes_written,
        "wal_bytes_written" => stats.wal_bytes_written,
        "tombstones_purged" => stats.tombstones_purged,
        "write_stalls" => stats.write_stalls,
        "block_cache_hits" => stats.block_cache_hits,
        "block_cache_misses" => stats.block_cache_misses,
        "poisoned" => u64::from(stats.poisoned.is_some()),
        "wal_torn_bytes_cut" => stats.wal_torn_bytes_cut,
        _ => 0,
    };
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered under the `ringstore_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ringstore");
        let requests = Family::<OpResult, Counter>::default();
        registry.register(
            "requests",
            "Client requests by operation and result",
            requests.clone(),
        );
        let latency: Family<Op, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Client request latency at this coordinator, by operation",
            latency.clone(),
        );
        let quorum_failures = Family::<Op, Counter>::default();
        registry.register(
            "quorum_failures",
            "Requests that got fewer than W or R answers in time",
            quorum_failures.clone(),
        );
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let read_repairs = counter("read_repairs", "Read repairs sent by this coordinator");
        let hints_stored = counter("hints_stored", "Hints stored for unreachable owners");
        let hints_replayed = counter("hints_replayed", "Hints handed back to their owners");
        let hints_dropped = counter(
            "hints_dropped",
            "Hints dropped: too old, or hint store full",
        );
        let anti_entropy_bytes = counter(
            "anti_entropy_bytes",
            "Bytes exchanged by completed anti-entropy sessions",
        );
        let anti_entropy_keys_repaired = counter(
            "anti_entropy_keys_repaired",
            "Keys written because a replica had a newer version",
        );
        let anti_entropy_sessions = counter("anti_entropy_sessions", "Repair sessions completed");
        let anti_entropy_failures = counter(
            "anti_entropy_failures",
            "Repair sessions failed or timed out",
        );
        let gossip_rounds = counter("gossip_rounds", "Gossip rounds run");
        let stream_keys = counter("stream_keys", "Keys received by range streaming");
        let bad_frames = counter(
            "peer_bad_frames",
            "Peer connections closed because a frame did not decode",
        );
        let storage_queue_full = counter(
            "storage_queue_full",
            "Storage operations refused because the storage queue was full",
        );
        let storage_inline = counter(
            "storage_inline",
            "Storage operations the node task ran itself (a write appended, or a read answered from memory)",
        );
        let storage_queued = counter(
            "storage_queued",
            "Storage operations handed to a storage thread (disk reads, scans, large or blocked writes)",
        );
        let ui_updates_skipped = counter(
            "ui_updates_skipped",
            "UI socket updates skipped because the page did not read the previous ones",
        );
        let ui_bad_frames = counter(
            "ui_bad_frames",
            "UI socket frames from pages that did not decode",
        );
        let ui_connections = Gauge::default();
        registry.register(
            "ui_connections",
            "UI sockets (/ws/ui) open now",
            ui_connections.clone(),
        );
        let hints_held = Gauge::default();
        registry.register(
            "hints_held",
            "Hints held for other nodes",
            hints_held.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Requests this node is coordinating",
            in_flight.clone(),
        );
        let members = Family::<VerdictLabel, Gauge>::default();
        registry.register(
            "members",
            "Members by this node's verdict (alive, suspect, dead, left)",
            members.clone(),
        );
        let sent_family = Family::<Kind, Counter>::default();
        registry.register(
            "messages_sent",
            "Messages handed to peer connections, by kind",
            sent_family.clone(),
        );
        let received_family = Family::<Kind, Counter>::default();
        registry.register(
            "messages_received",
            "Messages received from peers, by kind",
            received_family.clone(),
        );
        let dropped_family = Family::<KindReason, Counter>::default();
        registry.register(
            "messages_dropped",
            "Messages to peers not sent, by kind and reason",
            dropped_family.clone(),
        );
        let handshakes_refused = Family::<Reason, Counter>::default();
        registry.register(
            "peer_handshakes_refused",
            "Peer connections refused in the handshake, by reason",
            handshakes_refused.clone(),
        );
        let per_kind = |family: &Family<Kind, Counter>| -> [Counter; 7] {
            KINDS.map(|k| family.get_or_create(&Kind { kind: k.name() }).clone())
        };
        let sent = per_kind(&sent_family);
        let received = per_kind(&received_family);
        let dropped = DropCause::ALL
            .iter()
            .map(|r| {
                KINDS.map(|k| {
                    dropped_family
                        .get_or_create(&KindReason {
                            kind: k.name(),
                            reason: r.name(),
                        })
                        .clone()
                })
            })
            .collect();
        let storage_float = Family::<StoreLabel, FloatGauge>::default();
        let storage = registry.sub_registry_with_prefix("storage");
        let storage_gauges = STORAGE_GAUGES
            .iter()
            .map(|&(name, help)| {
                let family = Family::<StoreLabel, Gauge>::default();
                storage.register(name, help, family.clone());
                (name, family)
            })
            .collect();
        storage.register(
            "write_amplification",
            "(WAL + flush + compaction bytes) / user bytes",
            storage_float.clone(),
        );
        let level_tables = Family::<StoreLevel, Gauge>::default();
        storage.register("level_tables", "SSTables per level", level_tables.clone());
        let level_bytes = Family::<StoreLevel, Gauge>::default();
        storage.register(
            "level_bytes",
            "SSTable bytes per level",
            level_bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            quorum_failures,
            read_repairs,
            hints_stored,
            hints_replayed,
            hints_dropped,
            hints_held,
            anti_entropy_bytes,
            anti_entropy_keys_repaired,
            anti_entropy_sessions,
            anti_entropy_failures,
            gossip_rounds,
            stream_keys,
            in_flight,
            members,
            sent,
            received,
            dropped,
            handshakes_refused,
            bad_frames,
            storage_queue_full,
            storage_inline,
            storage_queued,
            ui_connections,
            ui_updates_skipped,
            ui_bad_frames,
            storage_gauges,
            storage_float,
            level_tables,
            level_bytes,
        }
    }

    /// Records one client request: its operation (`put`, `get`, `delete`), result label and
    /// latency.
    pub fn request(&self, op: &'static str, result: &'static str, seconds: f64) {
        self.requests.get_or_create(&OpResult { op, result }).inc();
        self.latency.get_or_create(&Op { op }).observe(seconds);
        if result == "quorum_unavailable" {
            self.quorum_failures.get_or_create(&Op { op }).inc();
        }
    }

    /// A message handed to a peer's connection.
    pub fn sent(&self, kind: MessageKind) {
        self.sent[kind_index(kind)].inc();
    }

    /// A message received from a peer.
    pub fn received(&self, kind: MessageKind) {
        self.received[kind_index(kind)].inc();
    }

    /// A message not sent.
    pub fn dropped(&self, kind: MessageKind, reason: DropCause) {
        let r = DropCause::ALL
            .iter()
            .position(|x| *x == reason)
            .unwrap_or(0);
        if let Some(row) = self.dropped.get(r) {
            row[kind_index(kind)].inc();
        }
    }

    /// A peer connection refused in the handshake.
    pub fn handshake_refused(&self, reason: &'static str) {
        self.handshakes_refused
            .get_or_create(&Reason { reason })
            .inc();
    }

    /// Sets the members-by-verdict gauges.
    pub fn set_members(&self, counts: [(&'static str, i64); 4]) {
        for (state, n) in counts {
            self.members.get_or_create(&VerdictLabel { state }).set(n);
        }
    }

    /// Reads both stores' statistics and encodes every metric as Prometheus text.
    pub fn render(&self, stores: &[(&'static str, &Store)]) -> String {
        let mut out = String::new();
        for &(store, s) in stores {
            let stats = s.stats();
            let label = StoreLabel { store };
            self.storage_float
                .get_or_create(&label)
                .set(stats.write_amplification);
            for (level, l) in stats.levels.iter().enumerate() {
                let key = StoreLevel {
                    store,
                    level: level.to_string(),
                };
                self.level_tables
                    .get_or_create(&key)
                    .set(i64::try_from(l.tables).unwrap_or(i64::MAX));
                self.level_bytes
                    .get_or_create(&key)
                    .set(i64::try_from(l.bytes).unwrap_or(i64::MAX));
            }
            for (name, family) in &self.storage_gauges {
                family
                    .get_or_create(&label)
                    .set(storage_value(&stats, name));
            }
        }
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
