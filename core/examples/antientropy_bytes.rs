//! Measures what one Merkle repair session costs against copying the whole range, for choosing
//! the tree depth.
//!
//! Two replicas of the whole ring hold the same 1,000,000 keys (16-byte keys, 100-byte values)
//! except for 10 (a newer value on one side, a newer tombstone on the other, a key missing on
//! one side, in turn). For each depth it prints the time to build one tree from scratch, the
//! tree's memory and fullest leaf, and the session's messages, digests, keys streamed and
//! bytes (postcard-encoded, both ways) against the bytes of a full copy. Run with
//! `cargo run -p ringstore-core --release --example antientropy_bytes [keys] [differing]`;
//! `-- --quick` (CI) runs 100,000 keys at depths 10 and 14. It fails if a session at the
//! default depth costs 1% or more of a full copy.

use ringstore_core::antientropy::{bench_bytes, bench_replicas};
use std::time::Instant;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut args = std::env::args().skip(1).filter(|a| a != "--quick");
    let keys: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(if quick { 100_000 } else { 1_000_000 });
    let differing: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    println!(
        "{keys} keys (16 B keys, 100 B values) on two replicas of the full ring, {differing} differing"
    );
    println!(
        "depth  leaves   tree_mem  leaf_max  build_ms | msgs  digests  keys  session_bytes  full_copy_bytes  ratio"
    );
    let depths: &[u8] = if quick {
        &[10, 14]
    } else {
        &[8, 10, 12, 14, 16, 18, 20]
    };
    let mut default_ratio = None;
    for &depth in depths {
        let (mut a, mut b) = match bench_replicas(keys, differing, depth) {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("depth {depth}: {e}");
                continue;
            }
        };
        let started = Instant::now();
        if let Err(e) = a.rebuild_tree(depth) {
            eprintln!("depth {depth}: {e}");
            continue;
        }
        let build_ms = started.elapsed().as_secs_f64() * 1e3;
        let report = match bench_bytes(&mut a, &mut b, differing) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("depth {depth}: {e}");
                continue;
            }
        };
        let s = &report.sync;
        println!(
            "{:>5}  {:>7}  {:>7}K  {:>8}  {:>8.0} | {:>4}  {:>7}  {:>4}  {:>13}  {:>15}  {:.5}%",
            depth,
            1u64 << depth,
            report.tree_bytes / 1024,
            report.leaf_entries_max,
            build_ms,
            s.messages(),
            s.initiator.digests_sent,
            s.keys_streamed(),
            s.bytes_exchanged(),
            report.full_copy_bytes,
            report.ratio() * 100.0,
        );
        if depth == ringstore_core::antientropy::DEPTH_DEFAULT {
            default_ratio = Some(report.ratio());
        }
    }
    match default_ratio {
        Some(r) if r < 0.01 => {}
        other => {
            eprintln!(
                "a session at the default depth should cost under 1% of a full copy: {other:?}"
            );
            std::process::exit(1);
        }
    }
}
