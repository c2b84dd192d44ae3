//! The what-if copy: a simulation of the live cluster, built from what the page sees of it,
//! so a user can try a failure there without touching the real nodes.
//!
//! It takes the members (the merged [`Live::node_ids`], left ones apart), their tokens on the
//! merged ring ([`SimConfig::tokens`]: the simulated ring is the live one, token for token)
//! and N/W/R. Everything the live cluster does not tell (latencies, disks, the workload) takes
//! the simulator's defaults; membership is gossip with phi-accrual detection, as on real nodes,
//! at the simulator's faster pace. The simulator numbers nodes 1..k: a live cluster whose ids
//! have gaps is renumbered in order, and the description says how.

use super::Live;
use crate::view::Status;
use ringstore_core::NodeId;
use ringstore_core::node::check_quorums;
use ringstore_core::ring::Token;
use ringstore_core::sim::SimConfig;

/// A simulation configuration of the live cluster, and a sentence describing it.
#[derive(Clone, Debug)]
pub struct WhatIf {
    /// The configuration.
    pub config: SimConfig,
    /// `a simulation of the live cluster at 127.0.0.1:7001: 3 nodes, N=3 W=2 R=2` (and the
    /// renumbering, if any).
    pub description: String,
}

impl Live {
    /// The what-if configuration, or why there is none yet.
    pub fn what_if(&self, real_ms: f64) -> Result<WhatIf, String> {
        let (ring, from) = self
            .ring(real_ms)
            .ok_or("no node has sent its ring yet: wait until the page is connected")?;
        let state = from
            .state
            .as_ref()
            .ok_or("no node has sent its state yet")?;
        let ids: Vec<u32> = self
            .node_ids()
            .into_iter()
            .filter(|id| self.status(*id, real_ms) != Status::Left)
            .filter(|id| ring.iter().any(|(_, n)| n.0 == *id))
            .collect();
        if ids.is_empty() {
            return Err("the ring has no members".into());
        }
        if ids.len() > 256 {
            return Err(format!(
                "{} nodes: the simulator takes at most 256",
                ids.len()
            ));
        }
        let (n, w, r) = (state.n as usize, state.w as usize, state.r as usize);
        check_quorums(n, w, r)
            .map_err(|e| format!("the cluster reports N={n} W={w} R={r}: {e}"))?;
        let renumbered: Vec<(u32, u32)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as u32 + 1))
            .collect();
        let tokens: Vec<(NodeId, Vec<Token>)> = renumbered
            .iter()
            .map(|(live, sim)| {
                let mut t: Vec<Token> = ring
                    .iter()
                    .filter(|(_, o)| o.0 == *live)
                    .map(|(t, _)| Token(*t))
                    .collect();
                t.sort();
                (NodeId(*sim), t)
            })
            .collect();
        let vnodes = tokens.iter().map(|(_, t)| t.len()).max().unwrap_or(1) as u32;
        let config = SimConfig {
            nodes: ids.len() as u32,
            n,
            w,
            r,
            vnodes,
            gossip: Some(SimConfig::fast_gossip()),
            tokens: Some(tokens),
            ..SimConfig::default()
        };
        let mut description = format!(
            "what-if: a simulation of the live cluster at {}: {} nodes, N={n} W={w} R={r}",
            self.seed,
            ids.len()
        );
        let moved: Vec<String> = renumbered
            .iter()
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("n{a} is n{b}"))
            .collect();
        if !moved.is_empty() {
            description.push_str(&format!(" ({})", moved.join(", ")));
        }
        Ok(WhatIf {
            config,
            description,
        })
    }
}

/// The page's simulated cluster for a what-if configuration (in memory: it is not saved).
pub fn build(config: SimConfig) -> Result<crate::cluster::SimCluster, String> {
    let sim = ringstore_core::sim::Sim::with_disks(
        config.clone(),
        Box::new(|_, _, _| crate::idb_disk::IdbDisk::new()),
    )
    .map_err(|e| e.to_string())?;
    let options = crate::cluster::ClusterOptions {
        nodes: config.nodes,
        n: config.n,
        w: config.w,
        r: config.r,
        vnodes: config.vnodes,
        gossip: true,
        ..crate::cluster::ClusterOptions::default()
    };
    Ok(crate::cluster::SimCluster::from_sim(options, sim))
}
