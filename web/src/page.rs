//! What the page's panels ask of a simulated cluster, in plain Rust tested on the host:
//! network and workload knobs, the checker, operations, a node's details, the configuration
//! (`Cluster`'s methods in `cluster_js.rs` convert them for JavaScript); and the page's free
//! JavaScript functions: the URL settings and the scenario list.

use crate::{to_js, url};
use ringstore_core::NodeId;
use ringstore_core::sim::MachineDisk;
use ringstore_core::sim::log::{OpKind, show_bytes, show_result};
use ringstore_core::sim::network::NetworkConfig;
use ringstore_core::sim::workload::WorkloadConfig;
use ringstore_core::storage::SyncPolicy;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::{JsError, JsValue, wasm_bindgen};

/// `always`, `never` or `interval:MS` as the core spells them (an empty string is `always`).
pub fn parse_sync(s: &str) -> Option<SyncPolicy> {
    if s.is_empty() {
        Some(SyncPolicy::Always)
    } else {
        s.parse().ok()
    }
}

/// Network knobs from the page (every field optional).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NetworkKnobs {
    /// Smallest latency, ms.
    pub latency_min: Option<u64>,
    /// Largest latency, ms.
    pub latency_max: Option<u64>,
    /// Loss, percent.
    pub loss_pct: Option<f64>,
}

/// Workload knobs from the page (every field optional).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadKnobs {
    /// Operations per simulated second.
    pub rate: Option<u32>,
    /// Percentage of reads.
    pub read_pct: Option<u8>,
    /// Number of keys.
    pub keys: Option<u32>,
}

/// Applies network knobs to a configuration, within bounds (latency up to 5 s, loss 0–100%).
pub fn apply_network(mut net: NetworkConfig, k: &NetworkKnobs) -> NetworkConfig {
    if let Some(lo) = k.latency_min {
        net.latency_min_ms = lo.min(5_000);
    }
    if let Some(hi) = k.latency_max {
        net.latency_max_ms = hi.min(5_000);
    }
    net.latency_max_ms = net.latency_max_ms.max(net.latency_min_ms);
    if let Some(p) = k.loss_pct {
        net.loss_ppm = (p.clamp(0.0, 100.0) * 10_000.0).round() as u32;
    }
    net
}

/// Applies workload knobs, within bounds (rate up to 5,000/s, keys 1–100,000).
pub fn apply_workload(mut w: WorkloadConfig, k: &WorkloadKnobs) -> WorkloadConfig {
    if let Some(rate) = k.rate {
        w.ops_per_sec = rate.min(5_000);
    }
    if let Some(reads) = k.read_pct {
        w.read_pct = reads.min(100);
        w.delete_pct = w.delete_pct.min(100 - w.read_pct);
    }
    if let Some(keys) = k.keys {
        w.keys = keys.clamp(1, 100_000);
    }
    w
}

/// A client operation as the page lists it.
#[derive(Clone, Debug, Serialize)]
pub struct OpView {
    /// Its id.
    pub op: u64,
    /// `put`, `get`, `delete`.
    pub kind: &'static str,
    /// The key.
    pub key: String,
    /// The coordinator.
    pub node: u32,
    /// Cluster time sent.
    pub invoked: u64,
    /// Cluster time answered.
    pub completed: Option<u64>,
    /// The outcome in words.
    pub result: Option<String>,
}

/// Operation `op` as the page lists it.
pub fn op_view<D: MachineDisk>(sim: &ringstore_core::sim::Sim<D>, op: u64) -> Option<OpView> {
    let o = sim.history().op(op)?;
    Some(OpView {
        op,
        kind: match o.kind {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::Delete => "delete",
        },
        key: show_bytes(&o.key),
        node: o.node.0,
        invoked: o.invoked.0,
        completed: o.completed.map(|c| c.0),
        result: o.result.as_ref().map(show_result),
    })
}

/// The checker's counters and recent anomalies, with their operations.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckerView {
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub failed: u64,
    /// Stale reads.
    pub stale_reads: u64,
    /// Stale reads that broke the quorum invariant (R + W > N, failures within tolerance).
    pub strict_violations: u64,
    /// LWW lost updates.
    pub lost_updates: u64,
    /// The newest stale reads: (the write missed, the read, the verdict), newest first.
    pub stale: Vec<(Option<OpView>, Option<OpView>, Verdict)>,
    /// The newest lost updates: (the winning write, the losing write, the verdict).
    pub lost: Vec<(Option<OpView>, Option<OpView>, Verdict)>,
}

/// What an anomaly means, in words.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// Whether it broke an invariant the design promises.
    pub violation: bool,
    /// Why it happened, or why it is allowed.
    pub why: String,
}

/// Anomalies listed at most per kind.
const ANOMALIES_SHOWN: usize = 20;

/// Why a stale read happened: R + W ≤ N, a hinted write or a failure allow it; otherwise it
/// is a violation.
fn stale_verdict<D: MachineDisk>(
    sim: &ringstore_core::sim::Sim<D>,
    a: &ringstore_core::sim::history::Anomaly,
) -> Verdict {
    let n = sim.config().n;
    if !a.stable {
        return Verdict {
            violation: false,
            why: "expected: the write was hinted (sloppy quorum), or a crash lost data or the \
                  ring changed in between"
                .to_string(),
        };
    }
    let quorum = |op| sim.history().op(op).map_or(0, |o| o.quorum);
    let (w, r) = (quorum(a.write), quorum(a.other));
    if a.intersect {
        Verdict {
            violation: true,
            why: format!(
                "a violation: R + W > N (W = {w}, R = {r}, N = {n}) and no failure beyond tolerance"
            ),
        }
    } else {
        Verdict {
            violation: false,
            why: format!(
                "expected: R + W ≤ N (W = {w}, R = {r}, N = {n}) allows this read to miss the write"
            ),
        }
    }
}

/// Why an update was lost: last-write-wins, under clock skew when a clock is off.
fn lost_verdict<D: MachineDisk>(sim: &ringstore_core::sim::Sim<D>) -> Verdict {
    let skewed = sim.snapshot().nodes.iter().any(|n| n.skew_ms != 0);
    Verdict {
        violation: false,
        why: if skewed {
            "last-write-wins under clock skew: the later write got an older timestamp and lost, \
             the design's known trade-off (§6)"
                .to_string()
        } else {
            "concurrent writes: last-write-wins keeps the larger timestamp (§6)".to_string()
        },
    }
}

/// The checker as the page shows it.
pub fn checker<D: MachineDisk>(sim: &ringstore_core::sim::Sim<D>) -> CheckerView {
    let live = sim.history().live();
    let stale: Vec<_> = live
        .recent_stale
        .iter()
        .rev()
        .take(ANOMALIES_SHOWN)
        .map(|a| (a, stale_verdict(sim, a)))
        .collect();
    let lost = if live.recent_lost.is_empty() {
        Vec::new()
    } else {
        let verdict = lost_verdict(sim);
        live.recent_lost
            .iter()
            .rev()
            .take(ANOMALIES_SHOWN)
            .map(|a| {
                (
                    op_view(sim, a.write),
                    op_view(sim, a.other),
                    verdict.clone(),
                )
            })
            .collect()
    };
    CheckerView {
        ok: live.ok,
        failed: live.failed,
        stale_reads: live.stale_reads,
        strict_violations: live.strict_violations,
        lost_updates: live.lost_updates,
        stale: stale
            .into_iter()
            .map(|(a, v)| (op_view(sim, a.write), op_view(sim, a.other), v))
            .collect(),
        lost,
    }
}

/// The configuration as the page's controls show it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigView {
    /// The seed.
    pub seed: u64,
    /// Nodes in the run (every id ever added).
    pub nodes: u32,
    /// N, W, R.
    pub n: usize,
    /// W.
    pub w: usize,
    /// R.
    pub r: usize,
    /// Tokens per node.
    pub vnodes: u32,
    /// Sync policy.
    pub sync: String,
    /// Gossip or oracle.
    pub gossip: bool,
    /// Latency range.
    pub latency_min: u64,
    /// Latency range.
    pub latency_max: u64,
    /// Loss, percent.
    pub loss_pct: f64,
    /// Workload rate.
    pub rate: u32,
    /// Reads, percent.
    pub read_pct: u8,
    /// Keys.
    pub keys: u32,
}

/// The configuration of a run.
pub fn config_view<D: MachineDisk>(sim: &ringstore_core::sim::Sim<D>) -> ConfigView {
    let c = sim.config();
    ConfigView {
        seed: c.seed,
        nodes: sim.node_ids().len() as u32,
        n: c.n,
        w: c.w,
        r: c.r,
        vnodes: c.vnodes,
        sync: c.sync.to_string(),
        gossip: c.gossip.is_some(),
        latency_min: c.network.latency_min_ms,
        latency_max: c.network.latency_max_ms,
        loss_pct: f64::from(c.network.loss_ppm) / 10_000.0,
        rate: c.workload.ops_per_sec,
        read_pct: c.workload.read_pct,
        keys: c.workload.keys,
    }
}

/// One node in detail, for its panel.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeDetail {
    /// The node.
    pub id: u32,
    /// Whether it runs.
    pub up: bool,
    /// Its clock offset.
    pub skew_ms: i64,
    /// What every other running node thinks of it.
    pub opinions: Vec<crate::view::Opinion>,
    /// Its data store.
    pub data: Option<ringstore_core::storage::LsmStats>,
    /// Its hint store.
    pub hints_store: Option<ringstore_core::storage::LsmStats>,
    /// Hints held per owner.
    pub hints: Vec<(u32, u64)>,
    /// Its tokens, as hex prefixes.
    pub tokens: Vec<String>,
}

/// Node `id` in detail.
pub fn node_detail<D: MachineDisk>(sim: &ringstore_core::sim::Sim<D>, id: u32) -> NodeDetail {
    let node = NodeId(id);
    let hints = sim
        .node(node)
        .map(|n| n.hints_held().iter().map(|(o, c)| (o.0, *c)).collect())
        .unwrap_or_default();
    let skew_ms = sim
        .local_time(node)
        .0
        .cast_signed()
        .saturating_sub(sim.now().0.cast_signed());
    NodeDetail {
        id,
        up: sim.is_up(node),
        skew_ms,
        opinions: crate::view::sim_source::opinions(sim, id),
        data: sim.data_store(node).map(|l| l.stats()),
        hints_store: sim.hint_store(node).map(|l| l.stats()),
        hints,
        tokens: sim
            .ring()
            .tokens_of(node)
            .iter()
            .map(|t| format!("{:04x}…", t.0 >> 48))
            .collect(),
    }
}

/// Reads the page's settings from a query string: `{settings, warnings}`.
#[wasm_bindgen(js_name = parseQuery)]
pub fn parse_query(query: &str) -> Result<JsValue, JsError> {
    to_js(&url::parse(query))
}

/// The query string for settings (only what differs from the defaults).
#[wasm_bindgen(js_name = toQuery)]
pub fn to_query(settings: JsValue) -> Result<String, JsError> {
    let s: url::Settings =
        serde_wasm_bindgen::from_value(settings).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(s.to_query())
}

/// The scenarios, in the design notes' order: `[{name, section, title}]`.
#[wasm_bindgen]
pub fn scenarios() -> Result<JsValue, JsError> {
    to_js(&crate::scenario::SCENARIOS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ClusterOptions, SimCluster as Inner};

    #[test]
    fn sync_policies_parse_and_print_back() {
        for s in ["always", "never", "interval:100"] {
            assert_eq!(parse_sync(s).unwrap().to_string(), s);
        }
        assert_eq!(parse_sync(""), Some(SyncPolicy::Always));
        assert_eq!(parse_sync("interval:0"), None);
        assert_eq!(parse_sync("sometimes"), None);
    }

    #[test]
    fn knobs_stay_in_bounds() {
        let net = apply_network(
            NetworkConfig::default(),
            &NetworkKnobs {
                latency_min: Some(50),
                latency_max: Some(10),
                loss_pct: Some(150.0),
            },
        );
        assert_eq!(
            (net.latency_min_ms, net.latency_max_ms, net.loss_ppm),
            (50, 50, 1_000_000)
        );
        let w = apply_workload(
            WorkloadConfig::default(),
            &WorkloadKnobs {
                rate: Some(9_999),
                read_pct: Some(100),
                keys: Some(0),
            },
        );
        assert_eq!(
            (w.ops_per_sec, w.read_pct, w.delete_pct, w.keys),
            (5_000, 100, 0, 1)
        );
    }

    #[test]
    fn the_page_sees_the_checker_and_a_nodes_details() {
        let mut c = Inner::new(&ClusterOptions {
            scenario: "lww_clock_skew".into(),
            ..ClusterOptions::default()
        })
        .unwrap();
        let sim = c.sim_mut();
        sim.set_skew(NodeId(1), -50);
        sim.run_for(100);
        let put = |v: &str| ringstore_core::node::ClientOp::Put {
            key: b"user123".to_vec(),
            value: v.as_bytes().to_vec(),
            consistency: None,
        };
        let a = sim.client(NodeId(2), put("Alice"));
        sim.run_until_done(a, 1_000);
        sim.run_for(5);
        let b = sim.client(NodeId(1), put("Bob"));
        sim.run_until_done(b, 1_000);
        let view = checker(c.sim());
        assert_eq!(view.lost_updates, 1);
        let (winner, loser, _) = &view.lost[0];
        assert_eq!(winner.as_ref().unwrap().op, a);
        assert_eq!(loser.as_ref().unwrap().op, b);
        let d = node_detail(c.sim(), 1);
        assert_eq!(d.skew_ms, -50);
        assert_eq!(d.opinions.len(), 4);
        assert_eq!(d.tokens.len(), 1, "the notes' layout: one token per node");
        let cfg = config_view(c.sim());
        assert_eq!((cfg.nodes, cfg.n, cfg.sync.as_str()), (5, 3, "always"));
    }

    #[test]
    fn options_choose_sync_and_bad_ones_are_refused() {
        let c = Inner::new(&ClusterOptions {
            sync: "interval:50".into(),
            ..ClusterOptions::default()
        })
        .unwrap();
        assert_eq!(c.sim().config().sync, SyncPolicy::IntervalMs(50));
        assert!(
            Inner::new(&ClusterOptions {
                sync: "maybe".into(),
                ..ClusterOptions::default()
            })
            .is_err()
        );
        assert!(
            Inner::new(&ClusterOptions {
                scenario: "nope".into(),
                ..ClusterOptions::default()
            })
            .is_err()
        );
    }
}
