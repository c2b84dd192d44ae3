//! The timeline's host tests: replay to any moment is exact (fixed seeds and a fresh one,
//! printed), back then forward returns to the same moment, a stretch played again gives its
//! inputs back, a fork keeps the original, snapshots stay bounded, and links' inputs round-trip
//! while bad bytes are refused.

use super::*;
use crate::cluster::{ClusterOptions, SimCluster};
use crate::page::{NetworkKnobs, WorkloadKnobs};
use ringstore_core::NodeId;
use std::collections::BTreeMap;

/// A xorshift generator for the test's choices.
struct Draw(u64);
impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(1);
    h.finish() % 1_000_000
}

fn cluster(seed: u64) -> SimCluster {
    let mut c = SimCluster::new(&ClusterOptions {
        seed,
        nodes: 5,
        sync: "interval:50".to_string(),
        ..ClusterOptions::default()
    })
    .unwrap();
    c.give(Input::Workload(WorkloadKnobs {
        rate: Some(300),
        ..WorkloadKnobs::default()
    }))
    .unwrap();
    c
}

/// A random input to the cluster, as the page's controls give them.
fn some_input(d: &mut Draw) -> Input {
    let node = 1 + d.below(5) as u32;
    match d.below(8) {
        0 => Input::Crash { node },
        1 => Input::Restart { node },
        2 => Input::Partition {
            a: vec![node],
            b: (1..=5).filter(|n| *n != node).collect(),
            one_way: d.below(2) == 0,
        },
        3 => Input::Heal,
        4 => Input::Skew {
            node,
            ms: d.below(200) as i64 - 100,
        },
        5 => Input::Network(NetworkKnobs {
            loss_pct: Some(d.below(10) as f64),
            ..NetworkKnobs::default()
        }),
        _ => Input::Client {
            node,
            kind: ["put", "get", "delete"][d.below(3) as usize].to_string(),
            key: format!("k{}", d.below(20)),
            value: "v".to_string(),
            consistency: String::new(),
        },
    }
}

/// Runs `c` as the page does (frames of `run_until`, single steps) with random inputs;
/// returns each moment's hash, and its clock where the moment's clock is the last event's
/// or the last input's (after a bare `run_until` the page's clock runs ahead of both).
fn drive(c: &mut SimCluster, d: &mut Draw, iterations: usize) -> BTreeMap<u64, (u64, Option<u64>)> {
    let mut seen = BTreeMap::new();
    for _ in 0..iterations {
        let stepped = if d.below(3) == 0 {
            c.step();
            true
        } else {
            let t = c.now().0 + 1 + d.below(40);
            c.run_until(t);
            false
        };
        let gave = d.below(6) == 0 && c.give(some_input(d)).is_ok();
        let clock = (stepped || gave).then(|| c.now().0);
        let events = c.sim().events_run();
        match seen.get(&events) {
            // A later run_until at the same moment moved only the clock.
            Some((_, Some(_))) if clock.is_none() && !gave => {}
            _ => {
                seen.insert(events, (c.sim().log().hash(), clock));
            }
        }
    }
    seen
}

fn check(seed: u64) {
    let mut d = Draw(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut c = cluster(seed);
    let seen = drive(&mut c, &mut d, 3_000);
    let end = c.sim().events_run();
    assert!(end > 3 * EVERY_EVENTS, "seed {seed}: only {end} events");
    assert!(c.timeline().stats(c.sim()).snapshots >= 3, "seed {seed}");
    let moments: Vec<u64> = seen.keys().copied().collect();
    let mut targets: Vec<u64> = (0..20)
        .map(|_| moments[d.below(moments.len() as u64) as usize])
        .collect();
    targets.extend([moments[0], end]);
    for target in targets {
        c.go_to(target).unwrap();
        let (hash, clock) = seen[&target];
        assert_eq!(
            (c.sim().events_run(), c.sim().log().hash()),
            (target, hash),
            "seed {seed}: moment {target}"
        );
        if let Some(clock) = clock {
            assert_eq!(
                c.now().0,
                clock,
                "seed {seed}: the clock at moment {target}"
            );
        }
    }
    // Back at the end and on: the same as the run that never went back.
    c.go_to(end).unwrap();
    assert_eq!(c.sim().log().hash(), seen[&end].0, "seed {seed}");
}

#[test]
fn any_moment_is_replayed_exactly_from_the_nearest_snapshot() {
    let fresh = fresh_seed();
    println!("timeline seeds: 3, 11 and fresh seed {fresh}");
    for seed in [3, 11, fresh] {
        check(seed);
    }
}

#[test]
fn stepping_back_then_forward_returns_to_the_same_moment() {
    let mut c = cluster(5);
    c.run_until(2_000);
    for _ in 0..50 {
        c.step();
    }
    let (events, hash, now) = (c.sim().events_run(), c.sim().log().hash(), c.now());
    for back in 1..=20 {
        c.go_to(events - back).unwrap();
        assert_eq!(c.sim().events_run(), events - back);
    }
    for _ in 0..20 {
        c.step();
    }
    assert_eq!(
        (c.sim().events_run(), c.sim().log().hash(), c.now()),
        (events, hash, now)
    );
}

#[test]
fn playing_a_stretch_again_gives_its_inputs_back() {
    let mut c = cluster(8);
    c.run_until(500);
    c.crash(2);
    c.run_until(900);
    c.partition(&[1], &[3, 4, 5], false);
    c.run_until(1_500);
    let (events, hash) = (c.sim().events_run(), c.sim().log().hash());
    c.go_to(10).unwrap();
    // Played forward in frames, as the page plays: the crash and the partition come back.
    c.run_until(1_500);
    assert_eq!((c.sim().events_run(), c.sim().log().hash()), (events, hash));
    assert!(!c.sim().is_up(NodeId(2)));
}

#[test]
fn a_change_in_the_past_forks_and_the_original_run_is_kept() {
    let mut c = cluster(13);
    c.run_until(800);
    c.crash(3);
    c.run_until(2_000);
    let (end, hash) = (c.sim().events_run(), c.sim().log().hash());
    let crashed_at = c.timeline().inputs()[1].events;
    c.go_to(crashed_at - 1).unwrap();
    c.crash(4);
    c.run_until(2_000);
    let view = c.timeline().view(c.now().0);
    assert_eq!(view.branch, 2);
    assert_eq!(view.branches.len(), 2);
    assert_eq!(view.branches[1].forked_from, Some((1, crashed_at - 1)));
    assert!(c.sim().is_up(NodeId(3)) && !c.sim().is_up(NodeId(4)));
    assert_ne!(c.sim().log().hash(), hash);
    c.switch_branch(1).unwrap();
    assert_eq!((c.sim().events_run(), c.sim().log().hash()), (end, hash));
    assert!(!c.sim().is_up(NodeId(3)));
}

/// Runs the cluster on screen until at least `events` events have run.
fn run_past(c: &mut SimCluster, events: u64) {
    let mut t = c.now().0;
    while c.sim().events_run() < events {
        t += 50;
        c.run_until(t);
    }
}

/// Whether the moments a third of the way and at the end still replay exactly.
fn still_exact(c: &mut SimCluster) {
    let (events, hash) = (c.sim().events_run(), c.sim().log().hash());
    c.go_to(events / 3).unwrap();
    c.go_to(events).unwrap();
    assert_eq!((c.sim().events_run(), c.sim().log().hash()), (events, hash));
}

#[test]
fn snapshots_stay_within_their_count_and_the_heap_budget_and_cover_the_run() {
    let mut c = cluster(21);
    c.give(Input::Workload(WorkloadKnobs {
        rate: Some(1_000),
        ..WorkloadKnobs::default()
    }))
    .unwrap();
    let (every, max) = (500, 8);
    c.timeline_mut().limit_snapshots(every, max);
    run_past(&mut c, 40 * every);
    let stats = c.timeline().stats(c.sim());
    assert!(
        stats.snapshots <= max && stats.snapshots > max / 2,
        "{stats:?}"
    );
    assert!(stats.every > every, "{stats:?}");
    assert!(stats.file_bytes > 0);
    still_exact(&mut c);

    // The heap over its budget: the next snapshot thins them down to the minimum.
    let heap = Rc::new(std::cell::Cell::new(HEAP_BUDGET_BYTES + 1));
    let read = heap.clone();
    c.timeline_mut()
        .set_heap_probe(Some(Box::new(move || read.get())));
    let before = c.timeline().stats(c.sim());
    let to = c.sim().events_run() + 2 * before.every;
    run_past(&mut c, to);
    let thinned = c.timeline().stats(c.sim());
    assert!(
        thinned.snapshots <= SNAPSHOTS_MIN,
        "{before:?} then {thinned:?}"
    );
    assert!(thinned.every > before.every, "{before:?} then {thinned:?}");
    still_exact(&mut c);

    // Within the budget again: snapshots are taken again.
    heap.set(0);
    let to = c.sim().events_run() + 3 * thinned.every;
    run_past(&mut c, to);
    let again = c.timeline().stats(c.sim());
    assert!(
        again.snapshots > thinned.snapshots,
        "{thinned:?} then {again:?}"
    );
    still_exact(&mut c);
}

#[test]
fn a_links_inputs_round_trip_and_bad_bytes_are_refused() {
    let inputs = vec![
        Logged {
            events: 10,
            now_ms: 12,
            input: Input::Crash { node: 2 },
        },
        Logged {
            events: 90,
            now_ms: 140,
            input: Input::Network(NetworkKnobs {
                loss_pct: Some(5.0),
                ..NetworkKnobs::default()
            }),
        },
    ];
    let bytes = encode_inputs(&inputs).unwrap();
    assert_eq!(decode_inputs(&bytes).unwrap(), inputs);
    let mut flipped = bytes.clone();
    flipped[7] ^= 1;
    assert!(matches!(
        decode_inputs(&flipped),
        Err(InputsError::Checksum { .. })
    ));
    let mut version = bytes.clone();
    version[0] = 9;
    assert_eq!(decode_inputs(&version), Err(InputsError::Version(9)));
    assert_eq!(decode_inputs(&bytes[..3]), Err(InputsError::Length(3)));
    // A link's inputs replay the run: a fresh cluster given them reaches the same moment.
    let mut a = cluster(2);
    a.run_until(300);
    a.crash(2);
    a.run_until(700);
    let code = encode_inputs(a.timeline().inputs()).unwrap();
    let mut b = SimCluster::new(&ClusterOptions {
        seed: 2,
        nodes: 5,
        sync: "interval:50".to_string(),
        ..ClusterOptions::default()
    })
    .unwrap();
    b.load_inputs(decode_inputs(&code).unwrap()).unwrap();
    b.play_to(a.sim().events_run()).unwrap();
    assert_eq!(b.sim().log().hash(), a.sim().log().hash());
}
