//! Saving and resuming a simulated cluster (`Sim::state`, `Sim::resume`), here on `SimDisk`s
//! rebuilt from their durable images: the data, the clock, the configuration, the skews, the
//! partitions and which nodes are down all come back, and unsynced writes do not (a resume is a
//! crash of the whole cluster).

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use ringstore_core::node::{ClientOk, ClientOp, StoreId};
use ringstore_core::sim::network::NetworkConfig;
use ringstore_core::sim::{Sim, SimConfig};
use ringstore_core::storage::{SimDisk, SyncPolicy};
use ringstore_core::{Millis, NodeId};
use std::collections::BTreeMap;

fn run(sim: &mut Sim, node: u32, op: ClientOp) -> Result<ClientOk, String> {
    let id = sim.client(NodeId(node), op);
    assert!(sim.run_until_done(id, 10_000));
    let result = sim.history().op(id).unwrap().result.clone().unwrap();
    result.map_err(|e| e.to_string())
}

fn put(key: &str, value: &str) -> ClientOp {
    ClientOp::Put {
        key: key.into(),
        value: value.into(),
        consistency: None,
    }
}

fn get(key: &str) -> ClientOp {
    ClientOp::Get {
        key: key.into(),
        consistency: None,
    }
}

/// Saves `sim` as a host would: its state, and every disk's durable image.
fn save(
    sim: &Sim,
) -> (
    ringstore_core::sim::SimState,
    BTreeMap<(NodeId, u8), SimDisk>,
) {
    let mut disks = BTreeMap::new();
    for (id, data, hints) in sim.disks() {
        disks.insert((id, 0), SimDisk::from_image(1, data.durable_image()));
        disks.insert((id, 1), SimDisk::from_image(2, hints.durable_image()));
    }
    (sim.state(), disks)
}

fn resume(state: ringstore_core::sim::SimState, disks: BTreeMap<(NodeId, u8), SimDisk>) -> Sim {
    let mut disks = disks;
    Sim::resume(
        state,
        Box::new(move |node, store, seed| {
            let slot = (node, if store == StoreId::Data { 0 } else { 1 });
            disks.remove(&slot).unwrap_or_else(|| SimDisk::new(seed))
        }),
    )
    .unwrap()
}

#[test]
fn a_resumed_cluster_keeps_its_data_clock_and_configuration() {
    let mut sim = Sim::new(SimConfig {
        seed: 11,
        ..SimConfig::default()
    })
    .unwrap();
    assert!(matches!(
        run(&mut sim, 2, put("user123", "Alice")),
        Ok(ClientOk::Written { .. })
    ));
    sim.set_skew(NodeId(4), -30);
    let network = NetworkConfig {
        loss_ppm: 1_000,
        ..NetworkConfig::default()
    };
    sim.set_network(network.clone());
    sim.crash(NodeId(5));
    sim.partition(&[NodeId(1)], &[NodeId(3)], true);
    sim.run_for(300);
    let saved_at = sim.now();

    let (state, disks) = save(&sim);
    let mut resumed = resume(state.clone(), disks);
    assert_eq!(resumed.now(), saved_at);
    assert_eq!(resumed.config().network, network);
    for (after, before) in resumed.state().machines.iter().zip(&state.machines) {
        let what = |m: &ringstore_core::sim::MachineState| (m.id, m.up, m.left, m.skew_ms);
        assert_eq!(what(after), what(before));
        // A restarted node is a new incarnation (a newer gossip generation).
        assert_eq!(after.incarnation, before.incarnation + u64::from(before.up));
    }
    assert_eq!(resumed.state().cut_links, vec![(NodeId(1), NodeId(3))]);
    assert_eq!(resumed.ring().nodes(), sim.ring().nodes());
    assert!(!resumed.is_up(NodeId(5)) && resumed.is_up(NodeId(4)));
    assert!(
        resumed.log().entries()[0]
            .event
            .trace()
            .contains("resumed from its saved state")
    );
    resumed.heal();
    resumed.run_for(200);
    match run(&mut resumed, 1, get("user123")).unwrap() {
        ClientOk::Found { value, .. } => assert_eq!(value, b"Alice"),
        other => panic!("user123 not read back after a resume: {other:?}"),
    }
    resumed.restart(NodeId(5)).unwrap();
    resumed.run_for(200);
    assert!(resumed.is_up(NodeId(5)));
    assert!(resumed.stored(NodeId(5), b"user123").is_some());
}

#[test]
fn unsynced_writes_do_not_survive_a_resume() {
    let mut sim = Sim::new(SimConfig {
        seed: 3,
        sync: SyncPolicy::Never,
        ..SimConfig::default()
    })
    .unwrap();
    assert!(run(&mut sim, 1, put("k", "v")).is_ok());
    assert!(sim.stored(NodeId(1), b"k").is_some() || sim.stored(NodeId(2), b"k").is_some());
    let (state, disks) = save(&sim);
    let resumed = resume(state, disks);
    for id in resumed.node_ids() {
        assert_eq!(
            resumed.stored(id, b"k"),
            None,
            "{id} kept an unsynced write"
        );
    }
}

#[test]
fn a_resumed_cluster_runs_its_workload_and_keeps_its_joined_nodes() {
    let mut config = SimConfig {
        seed: 5,
        ..SimConfig::default()
    };
    config.workload.ops_per_sec = 100;
    let mut sim = Sim::new(config).unwrap();
    sim.add_node(NodeId(6)).unwrap();
    sim.run_for(3_000);
    assert!(sim.ring().nodes().contains(&NodeId(6)), "n6 joined");
    let (state, disks) = save(&sim);
    let mut resumed = resume(state, disks);
    assert_eq!(resumed.node_ids().len(), 6);
    assert!(resumed.ring().nodes().contains(&NodeId(6)));
    let before = resumed.history().ops().count();
    resumed.run_until(Millis(resumed.now().0 + 1_000));
    assert!(
        resumed.history().ops().count() >= before + 90,
        "the workload resumed"
    );
}
