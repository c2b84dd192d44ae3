//! How fast the page's simulation runs natively, with the page's defaults (gossip, 200 client
//! operations per second), and what building the view model costs per frame and per refresh.
//! `cargo run -p ringstore-web --example page_speed --release [-- [--gossip] [--seconds=S] NODES...]`
//! (`--gossip`: only the gossip rows; `--seconds`: simulated seconds timed, 10 by default; a
//! short gossip-only run is what to give `valgrind --tool=callgrind`).
use ringstore_web::cluster::{ClusterOptions, SimCluster};
use ringstore_web::page::{WorkloadKnobs, apply_workload};
use ringstore_web::view::ViewModel;
use ringstore_web::view::sim_source::SimSource;
use std::time::Instant;

fn run(nodes: u32, gossip: bool, sim_s: u64) {
    let mut c = SimCluster::new(&ClusterOptions {
        seed: 12,
        nodes,
        gossip,
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
    sim.run_for(2_000);
    let t = Instant::now();
    let cpu0 = cpu_s();
    sim.run_for(sim_s * 1000);
    let real = t.elapsed().as_secs_f64();
    let cpu = cpu_s().zip(cpu0).map(|(b, a)| b - a);
    let mut source = SimSource::new(sim);
    let mut model = ViewModel::default();
    let t = Instant::now();
    for _ in 0..100 {
        source.refresh(sim, &mut model);
    }
    let refresh_ms = t.elapsed().as_secs_f64() * 10.0;
    let t = Instant::now();
    for i in 0..100 {
        sim.run_for(1);
        source.frame(sim, &mut model, sim.now().0 as f64, f64::from(i));
    }
    let frame_ms = t.elapsed().as_secs_f64() * 10.0;
    println!(
        "{nodes:>3} nodes, {}: {:.1} simulated s per real s ({}); view refresh {refresh_ms:.3} ms, frame (1 ms run + update) {frame_ms:.3} ms",
        if gossip { "gossip" } else { "oracle" },
        sim_s as f64 / real,
        cpu.map_or("CPU time unknown".to_string(), |c| format!(
            "{:.1} per CPU s",
            sim_s as f64 / c
        ))
    );
}

/// This thread's CPU time so far, in s (Linux: `/proc/thread-self/schedstat`), which a busy
/// machine disturbs less than wall time.
fn cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gossip_only = args.iter().any(|a| a == "--gossip");
    let sim_s = args
        .iter()
        .find_map(|a| a.strip_prefix("--seconds=")?.parse().ok())
        .unwrap_or(10u64);
    let sizes: Vec<u32> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![16, 64]
    } else {
        sizes
    };
    for n in sizes {
        run(n, true, sim_s);
        if !gossip_only {
            run(n, false, sim_s);
        }
    }
}
