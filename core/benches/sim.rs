//! Simulator throughput: simulated events per second of real time, natively, for a 64-node
//! cluster under a steady client workload (and a 16-node one for comparison).
//!
//! `cargo bench -p ringstore-core --bench sim` runs 20 simulated seconds per cluster;
//! `-- --quick` runs 2 (CI uses it so the benchmark cannot rot).

use ringstore_core::sim::workload::WorkloadConfig;
use ringstore_core::sim::{Sim, SimConfig};
use std::time::Instant;

fn run(nodes: u32, ops_per_sec: u32, sim_secs: u64) -> (u64, f64, u64) {
    let config = SimConfig {
        seed: 42,
        nodes,
        vnodes: 16,
        workload: WorkloadConfig {
            ops_per_sec,
            keys: 10_000,
            ..WorkloadConfig::default()
        },
        log_capacity: 10_000,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(config).expect("simulator");
    let started = Instant::now();
    sim.run_for(sim_secs * 1000);
    let secs = started.elapsed().as_secs_f64();
    let ops = sim.history().ops().count() as u64;
    (sim.log().total(), secs, ops)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sim_secs = if quick { 2 } else { 20 };
    println!("simulator throughput ({sim_secs} simulated s per row, one thread)");
    println!(
        "{:>6} {:>10} {:>12} {:>10} {:>14} {:>16}",
        "nodes", "client/s", "events", "real s", "events/s", "sim s per real s"
    );
    for (nodes, rate) in [(16, 200), (64, 200), (64, 1000)] {
        let (events, secs, ops) = run(nodes, rate, sim_secs);
        println!(
            "{nodes:>6} {rate:>10} {events:>12} {secs:>10.2} {:>14.0} {:>16.1}   ({ops} client operations)",
            events as f64 / secs,
            sim_secs as f64 / secs
        );
    }
}
