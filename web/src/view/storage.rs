//! The open storage panel's content: one node's LSM tree as the design notes' §1 tells it.
//! The WAL's appends in arrival order and the memtable's keys in sorted order come from the
//! event log (the data-store writes at the node since its last flush); the SSTables per level
//! and the counters come from the store's statistics.

use ringstore_core::NodeId;
use ringstore_core::node::StoreId;
use ringstore_core::sim::log::{SimEvent, show_bytes};
use ringstore_core::sim::{MachineDisk, Sim};
use serde::Serialize;
use std::collections::BTreeSet;

/// Keys listed per row; the rest are counted.
pub const KEYS_SHOWN: usize = 6;

/// One node's storage engine, for the panel.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LsmView {
    /// The node.
    pub node: u32,
    /// The newest WAL appends since the last flush, oldest first (at most [`KEYS_SHOWN`]).
    pub wal: Vec<String>,
    /// How many appends since the last flush.
    pub wal_appends: usize,
    /// Bytes of live WAL.
    pub wal_bytes: u64,
    /// The memtable's keys, sorted (at most [`KEYS_SHOWN`]).
    pub memtable: Vec<String>,
    /// How many keys the memtable holds.
    pub memtable_keys: usize,
    /// Per level, L0 first: (tables, entries).
    pub levels: Vec<(usize, u64)>,
    /// Flushes done.
    pub flushes: u64,
    /// Compactions done.
    pub compactions: u64,
    /// Tombstones compaction dropped after their grace period.
    pub tombstones_purged: u64,
}

/// The storage panel for `node`, if it runs.
pub fn lsm_view<D: MachineDisk>(sim: &Sim<D>, node: u32) -> Option<LsmView> {
    let id = NodeId(node);
    let stats = sim.data_store(id)?.stats();
    let mut appends: Vec<String> = Vec::new();
    let mut flushed = false;
    for entry in sim.log().entries().iter().rev() {
        match &entry.event {
            SimEvent::DiskWrite {
                node: n,
                store: StoreId::Data,
                key,
            } if *n == id && !flushed => appends.push(show_bytes(key)),
            SimEvent::Flush {
                node: n,
                store: StoreId::Data,
            } if *n == id => flushed = true,
            _ => {}
        }
        if flushed {
            break;
        }
    }
    appends.reverse();
    let memtable_keys = stats.memtable_entries + stats.frozen_entries;
    if memtable_keys == 0 {
        // Flushed without a logged flush (`compact NODE` flushes first): nothing is pending.
        appends.clear();
    }
    let keys: BTreeSet<&String> = appends.iter().collect();
    Some(LsmView {
        node,
        wal: appends[appends.len().saturating_sub(KEYS_SHOWN)..].to_vec(),
        wal_appends: appends.len(),
        wal_bytes: stats.wal_bytes,
        memtable: keys
            .iter()
            .take(KEYS_SHOWN)
            .map(|k| k.to_string())
            .collect(),
        memtable_keys,
        levels: stats.levels.iter().map(|l| (l.tables, l.entries)).collect(),
        flushes: stats.flushes,
        compactions: stats.compactions + stats.trivial_moves,
        tombstones_purged: stats.tombstones_purged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::sim::script;

    #[test]
    fn the_panel_lists_wal_appends_in_order_and_memtable_keys_sorted() {
        let config = script::cluster_config(&["nodes=3", "n=3", "w=3", "r=3", "memtable=256"])
            .expect("config");
        let mut sim = script::start_cluster(config).expect("cluster");
        for key in ["zeta", "alpha", "mid"] {
            let op = sim.client(
                NodeId(1),
                ringstore_core::node::ClientOp::Put {
                    key: key.as_bytes().to_vec(),
                    value: b"v".to_vec(),
                    consistency: None,
                },
            );
            sim.run_until_done(op, script::WAIT_MS);
        }
        sim.run_until_quiet(script::WAIT_MS);
        let v = lsm_view(&sim, 1).expect("n1 runs");
        assert_eq!(v.wal, ["zeta", "alpha", "mid"]);
        assert_eq!(v.memtable, ["alpha", "mid", "zeta"]);
        assert_eq!(v.memtable_keys, 3);
        assert_eq!(v.flushes, 0);
        // Enough keys to flush: the WAL and memtable rows start again after the flush.
        script::load_keys(&mut sim, NodeId(1), 12);
        let v = lsm_view(&sim, 1).expect("n1 runs");
        assert!(v.flushes >= 1, "{v:?}");
        assert!(v.levels.iter().map(|l| l.0).sum::<usize>() >= 1, "{v:?}");
        assert!(v.wal_appends < 15, "{v:?}");
    }
}
