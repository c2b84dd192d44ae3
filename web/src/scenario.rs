//! The lessons menu: the golden scripts of `core/tests/scripts/`, each a lesson (a script with
//! narration: `docs/LESSONS.md`), in the order of the design notes' sections. The page plays
//! them step by step ([`crate::lesson`]); the golden tests run the same files, so what the
//! page shows is what the tests pin.

use ringstore_core::sim::SimConfig;
use ringstore_core::sim::script::{self, Lesson};
use serde::Serialize;

/// One scenario of the menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Info {
    /// Its name (the script's file name), used in URLs.
    pub name: &'static str,
    /// The design notes' section it illustrates.
    pub section: &'static str,
    /// A short title.
    pub title: &'static str,
    /// The script.
    #[serde(skip)]
    pub text: &'static str,
}

macro_rules! scenario {
    ($name:literal, $section:literal, $title:literal) => {
        Info {
            name: $name,
            section: $section,
            title: $title,
            text: include_str!(concat!("../../core/tests/scripts/", $name, ".script")),
        }
    };
}

/// Every lesson, in the order of the design notes' sections.
pub const SCENARIOS: [Info; 20] = [
    scenario!(
        "lsm_write_path",
        "§1 Storage engine: LSM trees",
        "The LSM write path: WAL, memtable, SSTables, compaction"
    ),
    scenario!(
        "put_get_design_notes",
        "§2–4 Partitioning, replication, coordination",
        "PUT user123 through coordinator B to replicas C, D, E"
    ),
    scenario!(
        "consistent_hashing_vnodes",
        "§2 Partitioning: consistent hashing",
        "Consistent hashing: the ring, a join, vnodes"
    ),
    scenario!(
        "join_with_streaming",
        "§2 Partitioning: consistent hashing",
        "A node joins: only its new ranges move"
    ),
    scenario!(
        "graceful_leave",
        "§2 Partitioning: consistent hashing",
        "A node leaves: it hands its ranges over"
    ),
    scenario!(
        "leave_with_new_owner_cut_off",
        "§2 Partitioning: consistent hashing",
        "A node leaves while its successor is cut off: nothing acknowledged is lost"
    ),
    scenario!(
        "quorum_write_one_replica_down",
        "§3 Replication: quorum parameters",
        "Quorum write with a replica down"
    ),
    scenario!(
        "hinted_handoff",
        "§3 Replication: sloppy quorum and hinted handoff",
        "Hinted handoff: a stand-in keeps E's write and hands it back"
    ),
    scenario!(
        "sloppy_quorum_vs_strict",
        "§3 Replication: sloppy quorum against strict quorum",
        "What a sloppy quorum promises, and what it does not"
    ),
    scenario!(
        "stale_read_r1",
        "§3 Replication: quorum parameters",
        "A stale read at R = 1 (R + W ≤ N)"
    ),
    scenario!(
        "unmeetable_quorum",
        "§3 Replication: quorum parameters",
        "A quorum that cannot be met"
    ),
    scenario!(
        "read_repair",
        "§4 Coordination, §7.1 Read repair",
        "Read repair of a stale replica"
    ),
    scenario!(
        "gossip_spreading",
        "§5 Failure detection: gossip",
        "Gossip: heartbeats spread in rounds, φ rises for a silent node"
    ),
    scenario!(
        "failure_detection_and_recovery",
        "§5 Failure detection: gossip",
        "Failure detection: φ rises for a silent node"
    ),
    scenario!(
        "lww_clock_skew",
        "§6 Last-write-wins",
        "LWW loses an update under clock skew"
    ),
    scenario!(
        "deletes_tombstones",
        "§6 Last-write-wins: deletes",
        "Deletes: tombstones, skew, and a value that comes back"
    ),
    scenario!(
        "merkle_tree_repair",
        "§7.2 Anti-entropy: Merkle trees",
        "Merkle trees: send only what differs"
    ),
    scenario!(
        "partition_heal_anti_entropy",
        "§7.2 Anti-entropy",
        "Partition, heal, and Merkle repair of a cold key"
    ),
    scenario!(
        "delete_repaired_by_anti_entropy",
        "§7.2 Anti-entropy, §6 deletes",
        "A delete carried by anti-entropy"
    ),
    scenario!(
        "availability_under_partition",
        "Goal recap: available during partitions (AP)",
        "Both sides of a partition accept writes, then converge"
    ),
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Info> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// The scenario's lesson.
pub fn lesson(info: &Info) -> Result<Lesson, String> {
    script::parse_lesson(info.text).map_err(|e| format!("lesson {}: {e}", info.name))
}

/// The configuration the scenario's cluster starts with.
pub fn config(info: &Info) -> Result<SimConfig, String> {
    Ok(lesson(info)?.cluster)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_parses_and_builds_its_cluster() {
        let mut names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SCENARIOS.len());
        for info in &SCENARIOS {
            let lesson = lesson(info).unwrap();
            assert!(lesson.cluster.nodes >= 3, "{}", info.name);
            assert!(!lesson.title.is_empty(), "{}", info.name);
            assert!(lesson.steps.len() >= 3, "{}", info.name);
            // The menu shows the file's own title and section.
            assert_eq!(lesson.title, info.title, "{}", info.name);
            assert_eq!(lesson.section, info.section, "{}", info.name);
        }
        assert!(find("read_repair").is_some());
        assert!(find("nope").is_none());
    }
}
