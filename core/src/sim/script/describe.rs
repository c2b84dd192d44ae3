//! What the script commands that describe state print: `ring`, `stored`, `status`, `lsm`,
//! and the two that compare partitioning schemes without changing anything, `moves` and
//! `shares`, and `fullcopy`, which sets an anti-entropy session's bytes against a full copy. The page's lesson player prints the same lines.

use crate::NodeId;
use crate::node::NodeEvent;
use crate::ring::{Ring, key_token, node_tokens};
use crate::sim::inspect::show_range;
use crate::sim::log::{SimEvent, show_bytes, show_ts};
use crate::sim::{MachineDisk, Sim};

/// The `ring KEY` line: the key's token and preference list.
pub fn describe_ring<D: MachineDisk>(sim: &Sim<D>, key: &str) -> String {
    let token = key_token(key.as_bytes());
    let pref = sim.ring().preference_list(token, sim.config().n);
    let pref: Vec<String> = pref.iter().map(|p| p.to_string()).collect();
    format!(
        "{key}: token {token}, preference list [{}]",
        pref.join(", ")
    )
}

/// The `stored KEY` lines: every node's newest stored version of `key`.
pub fn describe_stored<D: MachineDisk>(sim: &Sim<D>, key: &str) -> Vec<String> {
    sim.node_ids()
        .into_iter()
        .map(|id| {
            let state = if !sim.is_up(id) {
                "down".to_string()
            } else {
                match sim.stored(id, key.as_bytes()) {
                    Some(c) => match c.value {
                        Some(v) => {
                            format!("{} ts={}", show_bytes(&v), show_ts(c.version.ts_micros))
                        }
                        None => format!("tombstone ts={}", show_ts(c.version.ts_micros)),
                    },
                    None => "-".to_string(),
                }
            };
            format!("{id}: {state}")
        })
        .collect()
}

/// The `status` lines: per node, up or down, whom it believes down, hints held, and its phi
/// for each peer under gossip.
pub fn describe_status<D: MachineDisk>(sim: &Sim<D>) -> Vec<String> {
    let now = sim.now();
    let phis: std::collections::BTreeMap<NodeId, String> = sim
        .node_ids()
        .into_iter()
        .filter_map(|id| {
            let phis = sim.node(id)?.phis(now);
            if phis.is_empty() {
                return None;
            }
            let shown: Vec<String> = phis.iter().map(|(p, v)| format!("{p} {v:.1}")).collect();
            Some((id, format!(", phi [{}]", shown.join(", "))))
        })
        .collect();
    sim.snapshot()
        .nodes
        .into_iter()
        .map(|n| {
            let down: Vec<String> = n.believes_down.iter().map(|d| d.to_string()).collect();
            let hints: Vec<String> = n
                .hints_held
                .iter()
                .map(|(o, c)| format!("{c} for {o}"))
                .collect();
            format!(
                "{}: {}, believes down [{}], hints [{}]{}",
                n.id,
                if n.up { "up" } else { "down" },
                down.join(", "),
                hints.join(", "),
                phis.get(&n.id).map(String::as_str).unwrap_or("")
            )
        })
        .collect()
}

/// The `lsm NODE` lines: the node's data store, as the design notes' §1 describes it.
pub fn describe_lsm<D: MachineDisk>(sim: &Sim<D>, node: NodeId) -> Vec<String> {
    let Some(store) = sim.data_store(node) else {
        return vec![format!("{node}: down")];
    };
    let st = store.stats();
    let levels: Vec<String> = st
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.tables > 0)
        .map(|(i, l)| format!("L{i}: {} tables, {} entries", l.tables, l.entries))
        .collect();
    vec![
        format!(
            "{node}: WAL {} bytes (durable to LSN {}/{}), memtable {} keys{}",
            st.wal_bytes,
            st.durable_lsn,
            st.last_lsn,
            st.memtable_entries,
            if st.frozen_memtables > 0 {
                format!(", {} frozen", st.frozen_memtables)
            } else {
                String::new()
            }
        ),
        format!(
            "{node}: SSTables [{}], {} flushes, {} compactions, {} tombstones purged",
            levels.join("; "),
            st.flushes,
            st.compactions,
            st.tombstones_purged
        ),
    ]
}

/// The `moves NODE KEYS` lines: if `node` joined now (with the tokens a join gives it), how
/// many of the keys `key0..key{keys-1}` would change their first owner on the ring, and how
/// many would with a naive `hash mod nodes` placement. Nothing changes.
pub fn describe_moves<D: MachineDisk>(sim: &Sim<D>, node: NodeId, keys: u32) -> Vec<String> {
    let before = sim.ring();
    if before.contains_node(node) {
        return vec![format!("{node} is already on the ring")];
    }
    let config = sim.config();
    let after = before.with_node(node, node_tokens(node, config.vnodes, config.seed));
    let nodes_before: Vec<NodeId> = before.nodes().to_vec();
    let nodes_after: Vec<NodeId> = after.nodes().to_vec();
    let (mut ring_moved, mut to_new, mut mod_moved) = (0u32, 0u32, 0u32);
    for i in 0..keys {
        let token = key_token(format!("key{i}").as_bytes());
        let (a, b) = (before.owner(token), after.owner(token));
        if a != b {
            ring_moved += 1;
            if b == Some(node) {
                to_new += 1;
            }
        }
        let slot = |nodes: &[NodeId]| {
            nodes
                .get((token.0 % nodes.len().max(1) as u64) as usize)
                .copied()
        };
        if slot(&nodes_before) != slot(&nodes_after) {
            mod_moved += 1;
        }
    }
    let pct = |x: u32| f64::from(x) * 100.0 / f64::from(keys.max(1));
    vec![
        format!(
            "if {node} joins, of {keys} keys (key0..key{}):",
            keys.saturating_sub(1)
        ),
        format!(
            "consistent hashing: {ring_moved} change owner ({:.0}%), {to_new} of them to {node}",
            pct(ring_moved)
        ),
        format!(
            "hash mod {} -> hash mod {}: {mod_moved} change owner ({:.0}%)",
            nodes_before.len(),
            nodes_after.len(),
            pct(mod_moved)
        ),
    ]
}

/// Each node's share of the ring (the fraction of tokens it is the first owner of) if every
/// node of today's ring had `vnodes` tokens, by node id (what `shares VNODES` prints, and the
/// page draws). Nothing changes.
pub fn ring_shares<D: MachineDisk>(sim: &Sim<D>, vnodes: u32) -> Vec<(NodeId, f64)> {
    let ring = Ring::build(sim.ring().nodes(), vnodes.max(1), sim.config().seed);
    ring.ownership(sim.config().n)
        .iter()
        .map(|(id, o)| (*id, o.primary_share))
        .collect()
}

/// The `shares VNODES` line: each member's share of the ring (as first owner) if every node
/// held `vnodes` tokens, and the largest share over the smallest. Nothing changes.
pub fn describe_shares<D: MachineDisk>(sim: &Sim<D>, vnodes: u32) -> Vec<String> {
    let own = ring_shares(sim, vnodes);
    let max = own.iter().map(|o| o.1).fold(0.0, f64::max);
    let min = own.iter().map(|o| o.1).fold(1.0, f64::min);
    let each: Vec<String> = own
        .iter()
        .map(|(id, share)| format!("{id} {:.0}%", share * 100.0))
        .collect();
    vec![format!(
        "{} vnode{} per node: {}; largest/smallest {:.1}x",
        vnodes.max(1),
        if vnodes > 1 { "s" } else { "" },
        each.join(", "),
        if min > 0.0 { max / min } else { f64::INFINITY }
    )]
}

/// The `fullcopy NODE` line: the last anti-entropy session `node` finished, its bytes on the
/// wire, and what copying that whole range from the peer would send instead (each key, its
/// value and an 8-byte timestamp, without any framing). Nothing changes.
pub fn describe_full_copy<D: MachineDisk>(sim: &Sim<D>, node: NodeId) -> Vec<String> {
    let last = sim
        .log()
        .entries()
        .iter()
        .rev()
        .find_map(|e| match &e.event {
            SimEvent::Node {
                node: n,
                event:
                    NodeEvent::RepairDone {
                        range, peer, bytes, ..
                    },
            } if *n == node => Some((*range, *peer, *bytes)),
            _ => None,
        });
    let Some((range, peer, bytes)) = last else {
        return vec![format!("{node} has not finished an anti-entropy session")];
    };
    let Some(store) = sim.data_store(peer) else {
        return vec![format!("{peer}: down")];
    };
    let (mut keys, mut full) = (0u64, 0u64);
    if let Ok(all) = store.scan(b"", None, crate::storage::SCAN_LIMIT_MAX) {
        for (key, cell) in all {
            if range.contains(key_token(&key)) {
                keys += 1;
                full += (key.len() + cell.value.map_or(0, |v| v.len()) + 8) as u64;
            }
        }
    }
    vec![
        format!(
            "{node} with {peer} over {}: {bytes} bytes of Merkle hashes and repairs",
            show_range(&range)
        ),
        format!("a full copy of that range from {peer}: {keys} keys, {full} bytes"),
    ]
}
