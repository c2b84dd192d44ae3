//! The options of one native node: what `ringstore node --help` lists. The defaults suit a
//! real deployment; tests and the demo shorten the intervals with the same flags.

use clap::{Args, ValueEnum};
use ringstore_core::NodeId;
use ringstore_core::storage::SyncPolicy;
use std::net::SocketAddr;
use std::path::PathBuf;

/// When a replica makes its WAL durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SyncChoice {
    /// Before every acknowledgement (writes waiting together share one fdatasync).
    Always,
    /// Every `--sync-interval-ms`; a crash loses at most that much.
    Interval,
    /// Only when a WAL segment rotates.
    Never,
}

/// `ringstore node`: one node of a cluster.
#[derive(Args, Clone, Debug)]
pub struct NodeOptions {
    /// This node's id in the cluster (`3` or `n3`). A restarted node must keep its id: the
    /// data directory remembers it and refuses another.
    #[arg(long, value_parser = parse_node_id)]
    pub id: NodeId,
    /// Address to listen on for peers, clients and the page (one port for all). Port 0 picks a
    /// free port; the bound address is printed and written to DIR/address.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub listen: SocketAddr,
    /// Address other nodes reach this one at (default: the bound listen address).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Directory of this node's data, hints and identity.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// A node of the cluster to join (`host:port`); repeat for more. A new node with --join
    /// streams the ranges it gains before it serves them; without it, it starts a new
    /// cluster. A restarted node needs none: it remembers its ring.
    #[arg(long = "join", value_name = "ADDR")]
    pub join: Vec<String>,
    /// Replicas per key, N (a cluster-wide setting, fixed at a node's first start).
    #[arg(long)]
    pub n: Option<usize>,
    /// Default write quorum, W.
    #[arg(long)]
    pub w: Option<usize>,
    /// Default read quorum, R.
    #[arg(long)]
    pub r: Option<usize>,
    /// Ring tokens (virtual nodes) of this node, fixed at its first start.
    #[arg(long, default_value_t = ringstore_core::ring::DEFAULT_VNODES)]
    pub vnodes: u32,
    /// When writes are made durable.
    #[arg(long, value_enum, default_value_t = SyncChoice::Always)]
    pub sync: SyncChoice,
    /// The WAL sync interval under `--sync interval`.
    #[arg(long, default_value_t = 100)]
    pub sync_interval_ms: u64,
    /// The largest value accepted, in bytes (at most 16 MiB less the 32 bytes a hint adds).
    #[arg(long, default_value_t = 1 << 20)]
    pub value_bytes_max: usize,
    /// Bytes of writes a store's memtable holds before it is flushed (the WAL preallocates as
    /// much, and recovery after a crash reads that much of the last segment).
    #[arg(long, default_value_t = 64 << 20)]
    pub memtable_bytes_max: usize,
    /// A secret every peer must prove in its handshake (HMAC-SHA256 over fresh nonces).
    #[arg(long, env = "RINGSTORE_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// Serve the fault-injection endpoints (/admin/partition, /admin/heal,
    /// /admin/clock-skew-ms); without this flag they answer 404.
    #[arg(long)]
    pub allow_fault_injection: bool,
    /// The origin of a web page, besides those the cluster's nodes serve, that may open this
    /// node's UI socket (`/ws/ui`), e.g. `http://127.0.0.1:8000` for the page served by
    /// `python3 -m http.server`; repeat for more. Other pages are refused (403).
    #[arg(long, value_name = "ORIGIN", value_parser = crate::origin::parse_allowed)]
    pub ui_allow_origin: Vec<String>,
    /// Directory of the static page (default: the repository's www/).
    #[arg(long)]
    pub www: Option<PathBuf>,
    /// Gossip round interval.
    #[arg(long, default_value_t = 1_000)]
    pub gossip_interval_ms: u64,
    /// How long a suspected peer stays Suspect before it counts as Dead.
    #[arg(long, default_value_t = 10_000)]
    pub dead_after_ms: u64,
    /// Interval between anti-entropy sessions (one range with one replica each; 0: off).
    #[arg(long, default_value_t = 10_000)]
    pub anti_entropy_interval_ms: u64,
    /// Anti-entropy's budget: keys its range scans may load per second on average, for the
    /// sessions this node starts and those it answers (0: no budget). Over it, the next
    /// session waits until the debt is paid; a session in progress is never slowed.
    #[arg(long, default_value_t = 10_000)]
    pub anti_entropy_keys_per_sec: u64,
    /// Interval between hint replay rounds.
    #[arg(long, default_value_t = 1_000)]
    pub hint_replay_interval_ms: u64,
    /// How long a coordinator waits for W or R answers.
    #[arg(long, default_value_t = 1_000)]
    pub request_timeout_ms: u64,
    /// Threads that run the node's tasks (HTTP connections, peer links, the node task). With
    /// 1 they all share one thread and hand work to each other without waking another
    /// thread; storage runs on its own threads either way.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// How long a joining node listens to gossip before it plans what to stream (default:
    /// three gossip rounds).
    #[arg(long)]
    pub join_delay_ms: Option<u64>,
}

impl NodeOptions {
    /// The storage engines' sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        match self.sync {
            SyncChoice::Always => SyncPolicy::Always,
            SyncChoice::Interval => SyncPolicy::IntervalMs(self.sync_interval_ms.max(1)),
            SyncChoice::Never => SyncPolicy::Never,
        }
    }
}

/// Parses `3` or `n3` (ids 0 and u32::MAX are reserved).
pub fn parse_node_id(s: &str) -> Result<NodeId, String> {
    let id: NodeId = s.parse()?;
    if id.0 == 0 || id == NodeId::HINT_CONSUMED {
        return Err(format!(
            "node id {s} is reserved; use 1 to {}",
            u32::MAX - 1
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_parse_with_or_without_the_n() {
        assert_eq!(parse_node_id("3"), Ok(NodeId(3)));
        assert_eq!(parse_node_id("n42"), Ok(NodeId(42)));
        assert!(parse_node_id("0").is_err());
        assert!(parse_node_id("node3").is_err());
        assert!(parse_node_id(&u32::MAX.to_string()).is_err());
    }
}
