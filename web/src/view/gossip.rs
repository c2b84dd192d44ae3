//! Who has heard whom (the design notes' §5): a grid with a row per node that listens and a
//! column per node it may have heard of. A cell says how many gossip rounds have passed since
//! the listener last heard a newer heartbeat of the column's node, and what it concludes
//! (alive, suspect, dead). Round by round, news fills the grid from the diagonal outwards; a
//! node that falls silent fades down its column while φ rises.

use ringstore_core::membership::Verdict;
use ringstore_core::sim::{MachineDisk, Sim};
use serde::Serialize;

/// Nodes drawn at most (a larger cluster gets no grid: cells too small to read).
pub const NODES_MAX: usize = 16;

/// What one node knows of another.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Heard {
    /// The listener itself.
    Me,
    /// The listener is down: it knows nothing now.
    Down,
    /// Never heard of it.
    Unknown,
    /// Heard of it, and believes it alive.
    Alive,
    /// Heard of it, and its φ crossed the threshold.
    Suspect,
    /// Heard of it, and has declared it dead (or it left).
    Dead,
}

/// One cell of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GossipCell {
    /// What the row's node knows of the column's.
    pub heard: Heard,
    /// Whole gossip rounds since the row's node last heard a newer heartbeat of the column's
    /// (`None`: no heartbeat heard yet, or not applicable).
    pub age_rounds: Option<u32>,
    /// The row's φ for the column's node.
    pub phi: Option<f64>,
}

/// The grid.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GossipView {
    /// Gossip rounds so far (cluster time over the gossip interval).
    pub round: u64,
    /// The nodes, in row and column order.
    pub nodes: Vec<u32>,
    /// Row-major: `cells[row * nodes.len() + column]`.
    pub cells: Vec<GossipCell>,
}

impl GossipView {
    /// The cell where `row` listens to `column`.
    pub fn cell(&self, row: usize, column: usize) -> Option<&GossipCell> {
        self.cells.get(row * self.nodes.len() + column)
    }

    /// How many listening nodes have heard of `subject` (itself included).
    pub fn heard_of(&self, subject: u32) -> usize {
        let Some(c) = self.nodes.iter().position(|&n| n == subject) else {
            return 0;
        };
        (0..self.nodes.len())
            .filter_map(|r| self.cell(r, c))
            .filter(|x| !matches!(x.heard, Heard::Unknown | Heard::Down))
            .count()
    }
}

/// The grid for a cluster that gossips and has at most [`NODES_MAX`] nodes.
pub fn gossip_view<D: MachineDisk>(sim: &Sim<D>) -> Option<GossipView> {
    let interval = sim.config().gossip.as_ref()?.gossip_interval_ms.max(1);
    let ids = sim.node_ids();
    if ids.len() > NODES_MAX {
        return None;
    }
    let mut cells = Vec::with_capacity(ids.len() * ids.len());
    for &row in &ids {
        let listener = sim.node(row).and_then(|n| n.gossiper());
        let now = sim.local_time(row);
        for &column in &ids {
            let cell = |heard| GossipCell {
                heard,
                age_rounds: None,
                phi: None,
            };
            let Some(g) = listener else {
                cells.push(cell(Heard::Down));
                continue;
            };
            if row == column {
                cells.push(cell(Heard::Me));
                continue;
            }
            if !g.members().contains_key(&column) {
                cells.push(cell(Heard::Unknown));
                continue;
            }
            let heard = match g.verdict(column, now) {
                Some(Verdict::Alive) | None => Heard::Alive,
                Some(Verdict::Suspect) => Heard::Suspect,
                Some(Verdict::Dead | Verdict::Left) => Heard::Dead,
            };
            let age_rounds = g.detector().window(column).map(|w| {
                u32::try_from(now.0.saturating_sub(w.last_arrival().0) / interval)
                    .unwrap_or(u32::MAX)
            });
            cells.push(GossipCell {
                heard,
                age_rounds,
                phi: g.phi(column, now),
            });
        }
    }
    Some(GossipView {
        round: sim.now().0 / interval,
        nodes: ids.iter().map(|n| n.0).collect(),
        cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::NodeId;
    use ringstore_core::sim::script;

    fn gossiping(nodes: u32) -> Sim {
        let nodes = format!("nodes={nodes}");
        let config = script::cluster_config(&[
            nodes.as_str(),
            "seed=2",
            "latency=20..30",
            "tail=0",
            "membership=gossip",
            "ae=0",
        ])
        .expect("config");
        script::start_cluster(config).expect("cluster")
    }

    #[test]
    fn news_spreads_from_the_diagonal_in_rounds_and_a_silent_node_fades() {
        let mut sim = gossiping(8);
        let v = gossip_view(&sim).expect("a gossiping cluster has a grid");
        assert_eq!(v.nodes, (1..=8).collect::<Vec<_>>());
        for i in 0..8 {
            assert_eq!(v.cell(i, i).map(|c| c.heard), Some(Heard::Me));
        }
        let start = v.heard_of(1);
        assert!(start < 8, "n1 is not yet known to all at the start: {v:?}");
        // A few rounds later n1's heartbeat has reached everyone, without anyone broadcasting.
        let mut rounds = 0;
        while gossip_view(&sim).expect("grid").heard_of(1) < 8 {
            sim.run_for(100);
            rounds += 1;
            assert!(rounds < 20, "n1's news did not spread in 20 rounds");
        }
        assert!(rounds >= 1);
        sim.run_for(1_000);
        let v = gossip_view(&sim).expect("grid");
        assert!(v.round >= 10, "{}", v.round);
        let n5 = 4;
        for r in (0..8).filter(|&r| r != n5) {
            let c = v.cell(r, n5).expect("cell");
            assert_eq!(c.heard, Heard::Alive, "row {r}: {c:?}");
            assert!(c.age_rounds.is_some_and(|a| a <= 3), "row {r}: {c:?}");
        }
        // n5 falls silent: its row goes dark, its column ages and turns suspect.
        sim.crash(NodeId(5));
        sim.run_for(2_500);
        let v = gossip_view(&sim).expect("grid");
        assert!((0..8).all(|c| v.cell(n5, c).map(|x| x.heard) == Some(Heard::Down)));
        let column: Vec<&GossipCell> = (0..8)
            .filter(|&r| r != n5)
            .filter_map(|r| v.cell(r, n5))
            .collect();
        assert!(
            column.iter().all(|c| c.age_rounds.is_some_and(|a| a >= 15)),
            "{column:?}"
        );
        assert!(
            column.iter().any(|c| c.heard == Heard::Suspect),
            "{column:?}"
        );
        let n1 = v.cell(1, 0).expect("cell");
        assert!(n1.age_rounds.is_some_and(|a| a <= 3), "{n1:?}");
    }

    #[test]
    fn no_grid_without_gossip_or_beyond_sixteen_nodes() {
        let config = script::cluster_config(&["nodes=5"]).expect("config");
        let sim = script::start_cluster(config).expect("cluster");
        assert_eq!(gossip_view(&sim), None);
        assert_eq!(gossip_view(&gossiping(17)), None);
    }
}
