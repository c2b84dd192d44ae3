//! Hashes of the event log of a few seeded page clusters (gossip, 200 ops/s, a crash, a
//! partition and a restart), to check that a performance change leaves the simulation's
//! behaviour byte-identical: run it before and after, the lines must match.
//! `cargo run -p ringstore-web --example log_hash --release`
use ringstore_core::NodeId;
use ringstore_web::cluster::{ClusterOptions, SimCluster};
use ringstore_web::page::{WorkloadKnobs, apply_workload};
use std::hash::{Hash, Hasher};

fn main() {
    for (nodes, seed) in [(5u32, 1u64), (16, 11), (16, 3), (64, 12)] {
        let mut c = SimCluster::new(&ClusterOptions {
            seed,
            nodes,
            gossip: true,
            ..ClusterOptions::default()
        })
        .expect("cluster");
        let sim = c.sim_mut();
        let w = apply_workload(
            sim.config().workload.clone(),
            &WorkloadKnobs {
                rate: Some(200),
                ..Default::default()
            },
        );
        sim.set_workload(w);
        sim.run_for(3_000);
        sim.crash(NodeId(2));
        sim.partition(&[NodeId(1)], &[NodeId(3)], false);
        sim.run_for(if nodes == 64 { 3_000 } else { 6_000 });
        sim.restart(NodeId(2)).expect("restart");
        sim.run_for(3_000);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut n = 0u64;
        for e in sim.log().since(0) {
            format!("{e:?}").hash(&mut h);
            n += 1;
        }
        println!(
            "{nodes} nodes seed {seed}: {n} entries (log total {}), hash {:016x}",
            sim.log().total(),
            h.finish()
        );
    }
}
