//! Anti-entropy in the simulator: replicas that diverged while partitioned converge without
//! any read (a cold key), tombstones included, and a deleted key does not come back as long as
//! the tombstone grace period outlasts a repair cycle; when it does not, the test shows the
//! deleted key returning, which is why the two are tied.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use ringstore_core::NodeId;
use ringstore_core::node::{ClientOk, ClientOp, Consistency, NodeEvent};
use ringstore_core::ring::key_token;
use ringstore_core::sim::log::SimEvent;
use ringstore_core::sim::{Sim, SimConfig};

fn cluster(seed: u64, ae_ms: u64, grace_ms: u64) -> Sim {
    let mut config = SimConfig {
        nodes: 5,
        seed,
        anti_entropy_interval_ms: ae_ms,
        ..SimConfig::default()
    };
    config.lsm.tombstone_grace_ms = grace_ms;
    Sim::new(config).unwrap()
}

fn run(sim: &mut Sim, node: NodeId, op: ClientOp) -> Result<ClientOk, String> {
    let id = sim.client(node, op);
    assert!(sim.run_until_done(id, 10_000));
    sim.history()
        .op(id)
        .unwrap()
        .result
        .clone()
        .unwrap()
        .map_err(|e| e.to_string())
}

fn put(key: &str, value: &str) -> ClientOp {
    ClientOp::Put {
        key: key.into(),
        value: value.into(),
        consistency: None,
    }
}

/// The replicas of `key` and a coordinator that is not one of them.
fn layout(sim: &Sim, key: &str) -> (Vec<NodeId>, NodeId) {
    let replicas = sim.ring().preference_list(key_token(key.as_bytes()), 3);
    let other = sim
        .node_ids()
        .into_iter()
        .find(|n| !replicas.contains(n))
        .unwrap();
    (replicas, other)
}

#[test]
fn a_cold_key_converges_through_anti_entropy_alone() {
    let mut sim = cluster(21, 200, 3_600_000);
    let (replicas, coordinator) = layout(&sim, "cold");
    let stale = replicas[2];
    sim.partition(
        &[stale],
        &sim.node_ids()
            .into_iter()
            .filter(|n| *n != stale)
            .collect::<Vec<_>>(),
        false,
    );
    run(
        &mut sim,
        coordinator,
        put("cold", "only two replicas saw this"),
    )
    .unwrap();
    sim.run_for(100);
    assert_eq!(
        sim.stored(stale, b"cold"),
        None,
        "the cut-off replica must have missed it"
    );
    sim.heal();
    sim.run_for(60_000);
    sim.replicas_agree([&b"cold"[..]]).unwrap();
    assert!(sim.stored(stale, b"cold").is_some());
    let repaired = sim.log().entries().iter().any(|e| {
        matches!(&e.event, SimEvent::Node { node, event: NodeEvent::RepairDone { keys_repaired, .. } } if *node == stale && *keys_repaired > 0)
    });
    assert!(
        repaired,
        "the stale replica should have repaired the key itself"
    );
    let stats = sim.node(stale).unwrap().anti_entropy_stats();
    assert!(stats.sessions_done > 0 && stats.bytes > 0);
}

/// Writes `doomed` everywhere, then deletes it while one replica is cut off, then lets time
/// pass beyond the grace period with compactions on every node. Returns what a read at ALL says
/// afterwards.
fn delete_while_a_replica_is_away(ae_ms: u64, grace_ms: u64) -> (Sim, ClientOk) {
    let mut sim = cluster(22, ae_ms, grace_ms);
    let (replicas, coordinator) = layout(&sim, "doomed");
    let all = Some(Consistency::All);
    run(
        &mut sim,
        coordinator,
        ClientOp::Put {
            key: "doomed".into(),
            value: "v1".into(),
            consistency: all,
        },
    )
    .unwrap();
    let away = replicas[2];
    let rest: Vec<NodeId> = sim.node_ids().into_iter().filter(|n| *n != away).collect();
    sim.partition(&[away], &rest, false);
    run(
        &mut sim,
        coordinator,
        ClientOp::Delete {
            key: "doomed".into(),
            consistency: None,
        },
    )
    .unwrap();
    sim.heal();
    // Time passes: repairs run (or not), the grace period expires, compaction purges.
    for _ in 0..12 {
        sim.run_for(10_000);
        for n in sim.node_ids() {
            sim.compact(n).unwrap();
        }
    }
    let read = run(
        &mut sim,
        coordinator,
        ClientOp::Get {
            key: "doomed".into(),
            consistency: all,
        },
    )
    .unwrap();
    (sim, read)
}

#[test]
fn a_delete_is_repaired_by_anti_entropy_and_never_comes_back() {
    // Grace (60 s) outlasts a repair cycle (each node repairs one range every 200 ms).
    let (sim, read) = delete_while_a_replica_is_away(200, 60_000);
    assert!(
        matches!(read, ClientOk::NotFound { .. }),
        "deleted key came back: {read:?}"
    );
    for n in sim.node_ids() {
        let cell = sim.stored(n, b"doomed");
        assert!(
            cell.as_ref().is_none_or(|c| c.is_tombstone()),
            "{n} still holds the value: {cell:?}"
        );
    }
}

#[test]
fn without_timely_repair_a_purged_delete_comes_back() {
    // No anti-entropy, a 5 s grace: the replica that missed the delete keeps the old value,
    // the others purge the tombstone, and the value is read (and repaired) back to life.
    let (_, read) = delete_while_a_replica_is_away(0, 5_000);
    assert!(
        matches!(&read, ClientOk::Found { value, .. } if value == b"v1"),
        "expected the resurrection this test demonstrates, got {read:?}"
    );
}
