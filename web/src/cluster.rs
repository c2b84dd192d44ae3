//! The simulated cluster as the page drives it, in plain Rust types: options with defaults, and
//! the operations the page's controls call. `lib.rs` wraps it for JavaScript; keeping the logic
//! here lets it be tested on the host without a browser.

use crate::idb_disk::IdbDisk;
use ringstore_core::node::{ClientOp, Consistency, check_quorums};
use ringstore_core::sim::log::{LogEntry, OpId};
use ringstore_core::sim::{ClusterSnapshot, Sim, SimConfig};
use ringstore_core::{Millis, NodeId};
use serde::{Deserialize, Serialize};

/// The console's client operation, for the simulated cluster and live mode alike: `kind` is
/// `put`, `get` or `delete`; `consistency` is `one`, `quorum`, `all`, a number, or empty for
/// the cluster's W or R. The node checks the key and value bounds.
pub fn client_op(
    kind: &str,
    key: &str,
    value: &str,
    consistency: &str,
) -> Result<ClientOp, String> {
    let consistency = match consistency {
        "" => None,
        other => Some(other.parse::<Consistency>()?),
    };
    let key = key.as_bytes().to_vec();
    Ok(match kind {
        "put" => ClientOp::Put {
            key,
            value: value.as_bytes().to_vec(),
            consistency,
        },
        "get" => ClientOp::Get { key, consistency },
        "delete" => ClientOp::Delete { key, consistency },
        other => return Err(format!("unknown operation {other:?}")),
    })
}

/// What the page can choose when it builds a cluster; everything else takes the simulator's
/// defaults. Every field is optional in JavaScript.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterOptions {
    /// The seed of the whole run (0: the simulator's default).
    pub seed: u64,
    /// Nodes (0: the default, 5).
    pub nodes: u32,
    /// Replicas per key, and the write and read quorums (0: the defaults, 3/2/2).
    pub n: usize,
    /// Write quorum.
    pub w: usize,
    /// Read quorum.
    pub r: usize,
    /// Tokens per node (0: the default).
    pub vnodes: u32,
    /// Gossip membership with phi-accrual detection instead of the oracle.
    pub gossip: bool,
    /// When replicas sync their WAL: `always`, `never` or `interval:MS` (empty: always).
    pub sync: String,
    /// A scenario's name (see `scenario::SCENARIOS`): its cluster line decides everything
    /// else, and the fields above are ignored.
    pub scenario: String,
    /// A lesson's text (a teacher's file, at most `script::lesson::LESSON_BYTES_MAX` bytes):
    /// its cluster line decides everything else, as a scenario's does.
    pub lesson: String,
}

impl ClusterOptions {
    /// The simulator configuration these options describe.
    pub fn config(&self) -> SimConfig {
        if let Some(Ok(config)) = crate::scenario::find(&self.scenario).map(crate::scenario::config)
        {
            return config;
        }
        if !self.lesson.is_empty()
            && let Ok(lesson) = ringstore_core::sim::script::parse_lesson(&self.lesson)
        {
            return lesson.cluster;
        }
        let mut config = SimConfig::default();
        let pick = |v: usize, default: usize| if v == 0 { default } else { v };
        if self.seed != 0 {
            config.seed = self.seed;
        }
        if self.nodes != 0 {
            config.nodes = self.nodes;
        }
        if self.vnodes != 0 {
            config.vnodes = self.vnodes;
        }
        config.n = pick(self.n, config.n);
        config.w = pick(self.w, config.w);
        config.r = pick(self.r, config.r);
        if self.gossip {
            config.gossip = Some(SimConfig::fast_gossip());
        }
        if let Some(sync) = crate::page::parse_sync(&self.sync) {
            config.sync = sync;
        }
        config
    }
}

/// Why the page's request could not be done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageError(pub String);

/// A simulated cluster driven by the page. Its machines run on [`IdbDisk`]s, which the page
/// may save to IndexedDB ([`crate::persist`]).
pub struct SimCluster {
    pub(crate) sim: Sim<IdbDisk>,
    /// The options it was built with.
    pub(crate) options: ClusterOptions,
    /// Saves taken so far.
    pub(crate) saves: u64,
}

impl SimCluster {
    /// Builds a cluster; refuses quorums outside 1 ≤ W, R ≤ N ≤ nodes.
    pub fn new(options: &ClusterOptions) -> Result<SimCluster, PageError> {
        if !options.lesson.is_empty() {
            let errors = ringstore_core::sim::script::lesson_errors(&options.lesson);
            if !errors.is_empty() {
                let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                return Err(PageError(lines.join("\n")));
            }
        }
        let config = options.config();
        check_quorums(config.n, config.w, config.r).map_err(|e| PageError(e.to_string()))?;
        if config.nodes == 0 || config.nodes > 256 {
            return Err(PageError(format!(
                "nodes must be 1 to 256, got {}",
                config.nodes
            )));
        }
        if !options.scenario.is_empty() && crate::scenario::find(&options.scenario).is_none() {
            return Err(PageError(format!("no scenario {:?}", options.scenario)));
        }
        if !options.sync.is_empty() && crate::page::parse_sync(&options.sync).is_none() {
            return Err(PageError(format!(
                "sync must be always, never or interval:MS, got {:?}",
                options.sync
            )));
        }
        let mut sim = Sim::with_disks(config, Box::new(|_, _, _| IdbDisk::new()))
            .map_err(|e| PageError(e.to_string()))?;
        if !options.scenario.is_empty() || !options.lesson.is_empty() {
            // As the golden scripts do: the story starts at t = 100 ms (the notes' ts=100).
            sim.run_for(ringstore_core::sim::script::START_MS);
        }
        Ok(SimCluster::from_sim(options.clone(), sim))
    }

    /// Wraps a running simulation (a resumed one) built with `options`.
    pub(crate) fn from_sim(options: ClusterOptions, sim: Sim<IdbDisk>) -> SimCluster {
        SimCluster {
            sim,
            options,
            saves: 0,
        }
    }

    /// The simulation, to draw.
    pub fn sim(&self) -> &Sim<IdbDisk> {
        &self.sim
    }

    /// The simulation, to drive.
    pub fn sim_mut(&mut self) -> &mut Sim<IdbDisk> {
        &mut self.sim
    }

    /// Simulated time.
    pub fn now(&self) -> Millis {
        self.sim.now()
    }

    /// Runs `ms` of simulated time.
    pub fn run_for(&mut self, ms: u64) {
        self.sim.run_for(ms);
    }

    /// Runs the next event; `false` when nothing is scheduled.
    pub fn step(&mut self) -> bool {
        self.sim.step()
    }

    /// The cluster's state for drawing.
    pub fn snapshot(&self) -> ClusterSnapshot {
        self.sim.snapshot()
    }

    /// Log entries with sequence numbers from `seq` that the log still holds.
    pub fn events_since(&self, seq: u64) -> Vec<LogEntry> {
        self.sim.log().since(seq).cloned().collect()
    }

    /// Sends a client operation to `node`: `kind` is `put`, `get` or `delete`; `consistency` is
    /// `one`, `quorum`, `all`, a number, or empty for the cluster's W or R.
    pub fn client(
        &mut self,
        node: u32,
        kind: &str,
        key: &str,
        value: &str,
        consistency: &str,
    ) -> Result<OpId, PageError> {
        let op = client_op(kind, key, value, consistency).map_err(PageError)?;
        if !self.sim.node_ids().contains(&NodeId(node)) {
            return Err(PageError(format!("no node n{node}")));
        }
        Ok(self.sim.client(NodeId(node), op))
    }

    /// A client operation's outcome in words, once it completed.
    pub fn result_of(&self, op: OpId) -> Option<String> {
        let result = self.sim.history().op(op)?.result.clone()?;
        Some(ringstore_core::sim::log::show_result(&result))
    }

    /// Crashes `node` (its unsynced writes are lost).
    pub fn crash(&mut self, node: u32) {
        self.sim.crash(NodeId(node));
    }

    /// Restarts a crashed `node` from its disks.
    pub fn restart(&mut self, node: u32) -> Result<(), PageError> {
        self.sim
            .restart(NodeId(node))
            .map_err(|e| PageError(e.to_string()))
    }

    /// Cuts the links between groups `a` and `b` (only a → b if `one_way`).
    pub fn partition(&mut self, a: &[u32], b: &[u32], one_way: bool) {
        let ids = |g: &[u32]| g.iter().map(|n| NodeId(*n)).collect::<Vec<_>>();
        self.sim.partition(&ids(a), &ids(b), one_way);
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.sim.heal();
    }

    /// Sets `node`'s clock offset.
    pub fn set_skew(&mut self, node: u32, ms: i64) {
        self.sim.set_skew(NodeId(node), ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_to_the_simulator_and_quorums_are_checked() {
        let c = ClusterOptions::default().config();
        assert_eq!((c.nodes, c.n, c.w, c.r), (5, 3, 2, 2));
        let bad = ClusterOptions {
            n: 3,
            w: 4,
            ..ClusterOptions::default()
        };
        assert!(SimCluster::new(&bad).is_err());
    }

    #[test]
    fn the_page_can_put_and_read_back_and_sees_a_crash() {
        let mut cluster = SimCluster::new(&ClusterOptions {
            seed: 9,
            ..ClusterOptions::default()
        })
        .unwrap();
        let put = cluster.client(2, "put", "user123", "Alice", "").unwrap();
        cluster.run_for(200);
        assert!(cluster.result_of(put).unwrap().starts_with("ok"));
        cluster.crash(3);
        cluster.run_for(200);
        let get = cluster.client(1, "get", "user123", "", "quorum").unwrap();
        cluster.run_for(1_000);
        assert!(cluster.result_of(get).unwrap().starts_with("Alice"));
        let snapshot = cluster.snapshot();
        assert_eq!(snapshot.nodes.iter().filter(|n| !n.up).count(), 1);
        assert!(!cluster.events_since(0).is_empty());
        assert!(cluster.client(9, "put", "k", "v", "").is_err());
        assert!(cluster.client(1, "scan", "k", "", "").is_err());
        assert!(cluster.client(1, "get", "k", "", "most").is_err());
    }
}
