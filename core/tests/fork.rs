//! `Sim::fork`: a copy of a running cluster goes on exactly as the original does. A run with a
//! workload and faults (a crash, a restart, a partition, a heal, a join, a client write, a
//! sync policy that loses writes) keeps a fork every few thousand events; from the nearest
//! fork at or before a moment, stepping forward with the same faults at the same event counts
//! reaches that moment with the event log's hash and the clock of the original run. The
//! moments are random: fixed seeds, plus a fresh one each run (printed; replay it with
//! `FORK_SEED=N`).

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use ringstore_core::NodeId;
use ringstore_core::node::ClientOp;
use ringstore_core::sim::{Sim, SimConfig, sim_disks};
use ringstore_core::storage::SyncPolicy;

/// A fault or a client call, applied once `events_run` events have run.
#[derive(Clone, Debug)]
enum Act {
    Crash(u32),
    Restart(u32),
    Partition(Vec<u32>, Vec<u32>),
    Heal,
    Join(u32),
    Put(u32, &'static str),
}

fn apply(sim: &mut Sim, act: &Act) {
    let ids = |g: &[u32]| g.iter().map(|n| NodeId(*n)).collect::<Vec<_>>();
    match act {
        Act::Crash(n) => sim.crash(NodeId(*n)),
        Act::Restart(n) => sim.restart(NodeId(*n)).unwrap(),
        Act::Partition(a, b) => sim.partition(&ids(a), &ids(b), false),
        Act::Heal => sim.heal(),
        Act::Join(n) => sim.add_node(NodeId(*n)).unwrap(),
        Act::Put(n, key) => {
            sim.client(
                NodeId(*n),
                ClientOp::Put {
                    key: key.as_bytes().to_vec(),
                    value: b"v".to_vec(),
                    consistency: None,
                },
            );
        }
    }
}

fn config(seed: u64) -> SimConfig {
    let mut config = SimConfig {
        seed,
        // Writes acknowledged before their sync: a crash loses some, so the disks' durable
        // and volatile contents must both be copied right.
        sync: SyncPolicy::IntervalMs(50),
        ..SimConfig::default()
    };
    config.workload.ops_per_sec = 300;
    // Small memtables: flushes and compactions run often, so forks land between them.
    config.lsm.memtable_bytes_max = 8 << 10;
    config
}

fn acts() -> Vec<(u64, Act)> {
    vec![
        (1_500, Act::Crash(2)),
        (2_000, Act::Put(1, "k1")),
        (4_000, Act::Restart(2)),
        (6_000, Act::Partition(vec![1, 3], vec![2, 4, 5])),
        (8_000, Act::Heal),
        (9_000, Act::Join(6)),
        (11_000, Act::Crash(5)),
    ]
}

/// Steps `sim` until `events` events have run, applying each act whose event count comes up
/// (acts at the count reached are applied too).
fn run_to(sim: &mut Sim, acts: &[(u64, Act)], events: u64) {
    loop {
        let at = sim.events_run();
        for (_, act) in acts.iter().filter(|(e, _)| *e == at) {
            apply(sim, act);
        }
        if at >= events || !sim.step() {
            return;
        }
    }
}

fn check_seed(seed: u64) {
    const TOTAL: u64 = 14_000;
    const EVERY: u64 = 2_500;
    let acts = acts();
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut draw = |below: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % below
    };
    let mut targets: Vec<u64> = (0..12).map(|_| 1 + draw(TOTAL - 1)).collect();
    targets.extend([1_500, 4_000, 9_000, TOTAL]);
    targets.sort_unstable();
    targets.dedup();

    // The original run: a fork at the first event boundary past each multiple of EVERY where
    // no flush or compaction runs, and the hash and clock at every target.
    let mut sim = Sim::new(config(seed)).unwrap();
    let mut forks: Vec<(u64, Sim)> = Vec::new();
    let mut seen = Vec::new();
    let mut next_fork = 0;
    let mut next_target = 0;
    loop {
        let at = sim.events_run();
        for (_, act) in acts.iter().filter(|(e, _)| *e == at) {
            apply(&mut sim, act);
        }
        if at >= next_fork
            && let Some(copy) = sim.fork(sim_disks())
        {
            forks.push((at, copy));
            next_fork = at - at % EVERY + EVERY;
        }
        if targets.get(next_target) == Some(&at) {
            seen.push((at, sim.log().hash(), sim.now()));
            next_target += 1;
        }
        if at >= TOTAL || !sim.step() {
            break;
        }
    }
    assert!(forks.len() >= 4, "seed {seed}: only {} forks", forks.len());
    assert_eq!(
        seen.len(),
        targets.len(),
        "seed {seed}: the run ended early"
    );

    for (target, hash, now) in seen {
        let (from, fork) = forks.iter().rfind(|(at, _)| *at <= target).unwrap();
        let mut copy = fork.fork(sim_disks()).unwrap();
        run_to(&mut copy, &acts, target);
        assert_eq!(
            (copy.events_run(), copy.log().hash(), copy.now()),
            (target, hash, now),
            "seed {seed}: the moment after {target} events, replayed from the fork at {from}"
        );
    }
    // A fork that went on is not changed by its copies.
    let (from, fork) = &forks[0];
    assert_eq!(fork.events_run(), *from);
}

#[test]
fn a_fork_replays_to_any_moment_exactly() {
    let fixed = [1, 7, 42];
    let fresh = match std::env::var("FORK_SEED") {
        Ok(s) => s.parse().unwrap(),
        Err(_) => getrandom::u64().unwrap() % 1_000_000,
    };
    println!("fork test seeds: {fixed:?} and fresh seed {fresh} (replay it: FORK_SEED={fresh})");
    for seed in fixed.into_iter().chain([fresh]) {
        check_seed(seed);
    }
}
