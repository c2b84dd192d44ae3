//! How long a gossiping cluster takes to notice a crash, by cluster size.
//!
//! For each size, the mini-simulation in `ringstore_core::membership::sim` cold-starts the
//! cluster (everyone knows only 3 seeds), waits until all know all, warms the failure
//! detectors up for 30 rounds, crashes one node and measures the rounds (1 s gossip
//! intervals) and simulated time until every live node's verdict on it is Suspect (φ ≥ 8),
//! then Dead (suspect for 10 s more). Default settings, fanout 3, no message loss.
//!
//! ```text
//! cargo run -p ringstore-core --example gossip_detection --release [-- --quick]
//! ```
//!
//! `--quick` (CI) measures 16 and 64 nodes only.

use ringstore_core::membership::sim::{log2_ceil, rounds_until_all_know_failure};

fn main() {
    let fanout = 3;
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[(usize, u64)] = if quick {
        &[(16, 1), (64, 2)]
    } else {
        &[(16, 1), (64, 2), (256, 3), (1_024, 4)]
    };
    println!("nodes  log2(N) | converge | suspect everywhere | dead everywhere");
    println!("               |   rounds |  rounds   sim time |  rounds  sim time");
    for &(nodes, seed) in sizes {
        match rounds_until_all_know_failure(nodes, fanout, seed) {
            Some(r) => println!(
                "{nodes:>5}  {:>7} | {:>8} | {:>7}  {:>7.1} s | {:>6}  {:>6.1} s",
                log2_ceil(nodes),
                r.converge_rounds,
                r.suspect_rounds,
                r.suspect_ms as f64 / 1_000.0,
                r.dead_rounds,
                r.dead_ms as f64 / 1_000.0,
            ),
            None => println!(
                "{nodes:>5}  {:>7} | did not converge or detect",
                log2_ceil(nodes)
            ),
        }
    }
}
