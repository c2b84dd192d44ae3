//! The cluster with gossip membership: a crashed node is detected by every node and seen alive
//! again after a restart; views converge after a partition heals; joins and leaves spread by
//! gossip alone; an operator removes a dead node.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use ringstore_core::NodeId;
use ringstore_core::membership::{GossipEvent, MemberStatus};
use ringstore_core::node::{ClientOk, ClientOp, Consistency, NodeEvent};
use ringstore_core::sim::log::SimEvent;
use ringstore_core::sim::{Sim, SimConfig};

fn gossiping(nodes: u32, seed: u64) -> Sim {
    let config = SimConfig {
        nodes,
        seed,
        gossip: Some(SimConfig::fast_gossip()),
        ..SimConfig::default()
    };
    let mut sim = Sim::new(config).unwrap();
    sim.run_for(3_000); // every node hears of every other
    sim
}

/// Whether every running node believes exactly the nodes in `down` are down.
fn everyone_believes(sim: &Sim, down: &[NodeId]) -> bool {
    sim.node_ids()
        .into_iter()
        .filter(|n| sim.is_up(*n))
        .all(|observer| {
            let node = sim.node(observer).unwrap();
            sim.node_ids()
                .into_iter()
                .filter(|p| *p != observer)
                .all(|p| node.believes_up(p) != down.contains(&p))
        })
}

/// Whether every running node's gossip view holds the same members with the same statuses.
fn views_agree(sim: &Sim) -> bool {
    let views: Vec<Vec<(NodeId, MemberStatus)>> = sim
        .node_ids()
        .into_iter()
        .filter(|n| sim.is_up(*n))
        .map(|n| {
            let g = sim.node(n).unwrap().gossiper().unwrap();
            g.members().iter().map(|(id, m)| (*id, m.status)).collect()
        })
        .collect();
    views.windows(2).all(|w| w[0] == w[1])
}

fn gossip_events(sim: &Sim, observer: NodeId) -> Vec<GossipEvent> {
    sim.log()
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            SimEvent::Node {
                node,
                event: NodeEvent::Membership(g),
            } if *node == observer => Some(g.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_crashed_node_is_detected_by_everyone_and_seen_again_after_restart() {
    let mut sim = gossiping(6, 31);
    assert!(everyone_believes(&sim, &[]), "all alive after start-up");
    assert!(views_agree(&sim));
    sim.crash(NodeId(4));
    let crashed_at = sim.now();
    let mut detected = None;
    for _ in 0..100 {
        sim.run_for(100);
        if everyone_believes(&sim, &[NodeId(4)]) {
            detected = Some(sim.now().0 - crashed_at.0);
            break;
        }
    }
    let detected = detected.expect("every node should suspect the crashed node within 10 s");
    assert!(
        detected >= 1_000,
        "detected too fast to be phi ({detected} ms)"
    );
    assert!(
        gossip_events(&sim, NodeId(1))
            .iter()
            .any(|e| matches!(e, GossipEvent::PeerSuspect { node, .. } if *node == NodeId(4)))
    );
    sim.restart(NodeId(4)).unwrap();
    let mut back = false;
    for _ in 0..50 {
        sim.run_for(100);
        if everyone_believes(&sim, &[]) {
            back = true;
            break;
        }
    }
    assert!(back, "the restarted node is seen alive again");
    assert!(
        gossip_events(&sim, NodeId(1))
            .iter()
            .any(|e| matches!(e, GossipEvent::PeerRestarted { node, .. } if *node == NodeId(4)))
    );
}

#[test]
fn views_converge_after_a_partition_heals() {
    let mut sim = gossiping(6, 32);
    let (a, b) = (
        [NodeId(1), NodeId(2), NodeId(3)],
        [NodeId(4), NodeId(5), NodeId(6)],
    );
    sim.partition(&a, &b, false);
    sim.run_for(4_000);
    assert!(
        !sim.node(NodeId(1)).unwrap().believes_up(NodeId(5)),
        "the other side looks down"
    );
    sim.heal();
    sim.run_for(3_000);
    assert!(everyone_believes(&sim, &[]));
    assert!(views_agree(&sim));
}

#[test]
fn joins_and_leaves_spread_by_gossip() {
    let mut sim = gossiping(5, 33);
    for i in 0..100 {
        let op = ClientOp::Put {
            key: format!("key{i}").into_bytes(),
            value: b"v".to_vec(),
            consistency: Some(Consistency::All),
        };
        let id = sim.client(NodeId(1 + i % 5), op);
        assert!(sim.run_until_done(id, 5_000));
    }
    sim.add_node(NodeId(6)).unwrap();
    sim.run_for(5_000);
    for n in [1, 2, 3, 4, 5, 6] {
        let ring = sim.node(NodeId(n)).unwrap().ring();
        assert!(
            ring.contains_node(NodeId(6)),
            "n{n} does not see n6 in its ring"
        );
    }
    sim.leave(NodeId(2));
    sim.run_for(5_000);
    assert!(!sim.is_up(NodeId(2)), "n2 stops after leaving");
    for n in [1, 3, 4, 5, 6] {
        let ring = sim.node(NodeId(n)).unwrap().ring();
        assert!(
            !ring.contains_node(NodeId(2)),
            "n{n} still has n2 in its ring"
        );
        assert_eq!(ring.nodes().len(), 5);
    }
    assert!(views_agree(&sim));
    for i in 0..100 {
        let op = ClientOp::Get {
            key: format!("key{i}").into_bytes(),
            consistency: Some(Consistency::All),
        };
        let id = sim.client(NodeId(1), op);
        assert!(sim.run_until_done(id, 5_000));
        let result = sim.history().op(id).unwrap().result.clone().unwrap();
        assert!(
            matches!(result, Ok(ClientOk::Found { .. })),
            "key{i}: {result:?}"
        );
    }
}

#[test]
fn an_operator_removes_a_dead_node() {
    let mut sim = gossiping(5, 34);
    sim.crash(NodeId(3));
    sim.run_for(4_000);
    sim.remove_node(NodeId(3), NodeId(1));
    sim.run_for(3_000);
    for n in [1, 2, 4, 5] {
        let ring = sim.node(NodeId(n)).unwrap().ring();
        assert!(
            !ring.contains_node(NodeId(3)),
            "n{n} still routes to the removed node"
        );
    }
}
