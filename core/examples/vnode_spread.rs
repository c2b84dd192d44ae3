//! Measures how evenly hashed vnode tokens spread ownership, for choosing `DEFAULT_VNODES`.
//!
//! For each cluster size and vnode count it builds rings over many cluster seeds and prints
//! the most and least loaded node's share relative to the fair share (averaged over seeds),
//! the coefficient of variation of the shares, and the number of distinct peers each node
//! shares a range with at N = 3. Run with
//! `cargo run -p ringstore-core --example vnode_spread --release`.

use ringstore_core::NodeId;
use ringstore_core::ring::Ring;
use std::collections::BTreeSet;

const SEEDS: u64 = 100;
const N: usize = 3;

/// (max / fair, min / fair, stddev / mean) of `shares`.
fn spread(shares: &[f64]) -> (f64, f64, f64) {
    let count = shares.len() as f64;
    let mean = shares.iter().sum::<f64>() / count;
    let max = shares.iter().copied().fold(f64::MIN, f64::max);
    let min = shares.iter().copied().fold(f64::MAX, f64::min);
    let var = shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / count;
    (max / mean, min / mean, var.sqrt() / mean)
}

fn main() {
    println!("nodes vnodes | primary max  min   cv    | replica(N={N}) max  min   cv    | peers");
    for nodes in [5u32, 16, 64] {
        for vnodes in [1u32, 4, 16, 32, 64, 256] {
            let ids: Vec<NodeId> = (1..=nodes).map(NodeId).collect();
            let mut acc = [0.0f64; 7];
            for seed in 0..SEEDS {
                let ring = Ring::build(&ids, vnodes, seed);
                let own = ring.ownership(N);
                let primary: Vec<f64> = own.values().map(|o| o.primary_share).collect();
                let replica: Vec<f64> = own.values().map(|o| o.replica_share).collect();
                let (pmax, pmin, pcv) = spread(&primary);
                let (rmax, rmin, rcv) = spread(&replica);
                // Distinct peers: nodes appearing with this node in some preference list.
                let mut peers = vec![BTreeSet::new(); nodes as usize + 1];
                for (range, _) in ring.ranges() {
                    let list = ring.preference_list(range.end, N);
                    for a in &list {
                        for b in &list {
                            if a != b {
                                peers[a.0 as usize].insert(*b);
                            }
                        }
                    }
                }
                let avg_peers =
                    peers.iter().map(BTreeSet::len).sum::<usize>() as f64 / f64::from(nodes);
                for (slot, v) in acc
                    .iter_mut()
                    .zip([pmax, pmin, pcv, rmax, rmin, rcv, avg_peers])
                {
                    *slot += v / SEEDS as f64;
                }
            }
            println!(
                "{nodes:>5} {vnodes:>6} |        {:.2}  {:.2}  {:.2}  |              {:.2}  {:.2}  {:.2} | {:>5.1}",
                acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6]
            );
        }
    }
}
