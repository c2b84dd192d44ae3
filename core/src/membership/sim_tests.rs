//! Convergence and detection properties of gossip, checked on the mini-simulation.
//!
//! Bounds are in rounds (gossip intervals). Dissemination is O(log N) rounds; detection is
//! about 18.4 mean heartbeat intervals (φ = 8) plus the time the last heartbeat takes to
//! spread, plus `dead_after_ms` for Dead. On failure the message names the seed to replay.

use super::*;

/// The rounds a cold start may take: a small constant times ⌈log₂ N⌉, plus the two or three
/// rounds it takes everyone to reach a seed and back.
fn converge_bound(nodes: usize) -> u64 {
    3 * log2_ceil(nodes) + 4
}

#[test]
fn a_cold_start_converges_in_logarithmic_rounds() {
    for nodes in [8, 16, 32, 64] {
        for seed in 0..3 {
            let mut sim = GossipSim::new(SimConfig::new(nodes, seed)).unwrap();
            let bound = converge_bound(nodes);
            let rounds = sim.run_until_converged(bound);
            assert!(
                rounds.is_some(),
                "{nodes} nodes, seed {seed}: not converged in {bound} rounds"
            );
            // Nobody is suspected once converged and warm.
            sim.run_rounds(20);
            for n in sim.up_nodes() {
                let view = sim.gossiper(n).unwrap().live_view(sim.now());
                assert_eq!(view.len(), nodes);
                assert!(
                    view.values().all(|v| *v == Verdict::Alive),
                    "seed {seed}: {view:?}"
                );
            }
        }
    }
}

#[test]
fn a_lossy_network_still_converges() {
    for (nodes, loss_ppm) in [(16, 100_000), (64, 100_000), (32, 300_000)] {
        let seed = 11;
        let mut config = SimConfig::new(nodes, seed);
        config.loss_ppm = loss_ppm;
        let mut sim = GossipSim::new(config).unwrap();
        // Each lost message can cost a node a round; allow twice the lossless bound.
        let bound = 2 * converge_bound(nodes);
        let rounds = sim.run_until_converged(bound);
        assert!(
            rounds.is_some(),
            "{nodes} nodes, loss {loss_ppm} ppm, seed {seed}: not converged"
        );
    }
}

#[test]
fn a_partition_heals_and_changes_made_on_both_sides_spread() {
    let nodes = 32;
    let seed = 5;
    let mut config = SimConfig::new(nodes, seed);
    config.loss_ppm = 50_000;
    let mut sim = GossipSim::new(config).unwrap();
    assert!(sim.run_until_converged(2 * converge_bound(nodes)).is_some());
    sim.run_rounds(10);

    // Split 1..=16 (with every seed) from 17..=32, long enough for each side to call the
    // other Dead.
    let left: Vec<NodeId> = (1..=16).map(NodeId).collect();
    sim.partition(&left);
    sim.run_rounds(40);
    for n in sim.up_nodes() {
        let view = sim.gossiper(n).unwrap().live_view(sim.now());
        let other = if n.0 <= 16 { NodeId(32) } else { NodeId(1) };
        assert_eq!(view[&other], Verdict::Dead, "{n} on {other}, seed {seed}");
    }
    // Meanwhile one node leaves on the right side, and a new node joins on the left.
    sim.partition(&[left.clone(), vec![NodeId(33)]].concat());
    sim.start(NodeId(33)).unwrap();
    sim.run_rounds(1);
    // (Set through the gossiper of n20: its state is what the cluster must learn.)
    sim.set_status(NodeId(20), MemberStatus::Leaving).unwrap();
    sim.run_rounds(10);
    assert!(!sim.converged());

    sim.heal();
    // Dead peers are tried with probability |unreachable| / (|live| + 1) per round, about
    // one in two here, so the sides find each other within a few rounds and then spread
    // what they learn in O(log N).
    let bound = 2 * converge_bound(nodes) + 4;
    let rounds = sim.run_until_converged(bound);
    assert!(
        rounds.is_some(),
        "seed {seed}: not healed in {bound} rounds"
    );
    // Verdicts recover too, within a few rounds more.
    sim.run_rounds(5);
    for n in sim.up_nodes() {
        let view = sim.gossiper(n).unwrap().live_view(sim.now());
        assert_eq!(view.len(), 33, "{n}");
        assert!(view.values().all(|v| *v == Verdict::Alive), "{n}: {view:?}");
        assert_eq!(
            sim.gossiper(n).unwrap().members()[&NodeId(20)].status,
            MemberStatus::Leaving
        );
    }
}

/// Rounds every live node may take to call a crashed node Suspect: φ = 8 after 18.4 mean
/// intervals (a mean a little over one interval, as arrivals sometimes skip a heartbeat), plus
/// the spread of the last heartbeat.
fn suspect_bound(nodes: usize) -> u64 {
    24 + log2_ceil(nodes)
}

#[test]
fn a_crashed_node_is_suspected_then_dead_everywhere_and_a_restart_is_recognised() {
    let nodes = 24;
    let seed = 3;
    let mut sim = GossipSim::new(SimConfig::new(nodes, seed)).unwrap();
    assert!(sim.run_until_converged(converge_bound(nodes)).is_some());
    sim.run_rounds(30);
    let victim = NodeId(7);
    sim.crash(victim);
    let crashed_at = sim.now();

    // φ = 8 takes 18.4 mean intervals (μ ≈ 1 s) of silence, counted from each node's last
    // arrival of the victim's heartbeat (up to a round or two before the crash): nobody
    // suspects it after 16 rounds, everybody does after 24, and nobody calls it Dead yet
    // (that takes 10 s more).
    sim.run_rounds(16);
    let verdicts = sim.verdicts_on(victim);
    assert!(
        verdicts.iter().all(|v| *v == Some(Verdict::Alive)),
        "seed {seed}: {verdicts:?}"
    );
    sim.run_rounds(24 - 16);
    let verdicts = sim.verdicts_on(victim);
    assert!(
        verdicts.iter().all(|v| *v == Some(Verdict::Suspect)),
        "seed {seed}: {verdicts:?}"
    );
    // Dead everywhere dead_after_ms (10 rounds) after the last suspicion began.
    sim.run_rounds(suspect_bound(nodes) + 11 - 24);
    let verdicts = sim.verdicts_on(victim);
    assert!(
        verdicts.iter().all(|v| *v == Some(Verdict::Dead)),
        "seed {seed}: {verdicts:?}"
    );
    for node in sim.up_nodes() {
        let saw = |want: fn(&GossipEvent) -> bool| {
            sim.events()
                .iter()
                .any(|(at, n, e)| *n == node && *at > crashed_at && want(e))
        };
        assert!(
            saw(|e| matches!(
                e,
                GossipEvent::PeerSuspect {
                    node: NodeId(7),
                    ..
                }
            )),
            "{node}"
        );
        assert!(
            saw(|e| matches!(e, GossipEvent::PeerDown { node: NodeId(7) })),
            "{node}"
        );
    }

    // The victim restarts with a larger generation and knows only the seeds.
    let restarted_at = sim.now();
    sim.start(victim).unwrap();
    let bound = converge_bound(nodes) + 2;
    sim.run_rounds(bound);
    let verdicts = sim.verdicts_on(victim);
    assert!(
        verdicts.iter().all(|v| *v == Some(Verdict::Alive)),
        "seed {seed}: {verdicts:?}"
    );
    assert!(sim.converged());
    for node in sim.up_nodes().into_iter().filter(|&n| n != victim) {
        let events: Vec<&GossipEvent> = sim
            .events()
            .iter()
            .filter(|(at, n, _)| *n == node && *at >= restarted_at)
            .map(|(_, _, e)| e)
            .collect();
        assert!(
            events.iter().any(|e| matches!(
                e,
                GossipEvent::PeerRestarted {
                    node: NodeId(7),
                    ..
                }
            )),
            "{node}: {events:?}"
        );
        assert!(
            events.contains(&&GossipEvent::PeerUp { node: victim }),
            "{node}: {events:?}"
        );
    }
}

#[test]
fn detection_time_for_16_and_64_nodes() {
    for (nodes, seed) in [(16, 1), (64, 2)] {
        let report = rounds_until_all_know_failure(nodes, 3, seed);
        let Some(r) = report else {
            panic!("{nodes} nodes, seed {seed}: no detection");
        };
        assert!(r.converge_rounds <= converge_bound(nodes), "{r:?}");
        assert!(
            (18..=suspect_bound(nodes)).contains(&r.suspect_rounds),
            "{r:?}"
        );
        assert!(r.dead_rounds >= r.suspect_rounds + 10, "{r:?}");
        assert!(r.dead_rounds <= suspect_bound(nodes) + 12, "{r:?}");
        assert_eq!(r.suspect_ms.div_ceil(1_000), r.suspect_rounds);
    }
}

#[test]
fn a_run_replays_exactly_from_its_seed() {
    let run = |seed| {
        let mut config = SimConfig::new(12, seed);
        config.loss_ppm = 100_000;
        let mut sim = GossipSim::new(config).unwrap();
        sim.run_rounds(10);
        sim.crash(NodeId(4));
        sim.run_rounds(35);
        (sim.events().to_vec(), sim.messages_sent())
    };
    assert_eq!(run(8), run(8));
    assert_ne!(run(8).1, run(9).1);
}

#[test]
fn log2_ceil_table() {
    for (n, want) in [
        (0, 0),
        (1, 0),
        (2, 1),
        (3, 2),
        (16, 4),
        (17, 5),
        (1_024, 10),
    ] {
        assert_eq!(log2_ceil(n), want, "{n}");
    }
}
