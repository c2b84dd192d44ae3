//! Hinted handoff at the edges: a value at the size limit is hinted and handed back like any
//! other, and the count of hints held follows the hint store (a key hinted twice is one hint).

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use ringstore_core::node::{ClientOk, ClientOp, Consistency};
use ringstore_core::ring::key_token;
use ringstore_core::sim::log::OpId;
use ringstore_core::sim::{Sim, SimConfig};
use ringstore_core::{Millis, NodeId};

/// A four-node cluster at N = 3 with `key`'s second replica crashed; returns the sim, a live
/// coordinator that is not a replica of `key`, and the crashed owner.
fn with_an_owner_down(key: &[u8]) -> (Sim, NodeId, NodeId) {
    let config = SimConfig {
        seed: 7,
        nodes: 4,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(config).unwrap();
    let replicas = sim.ring().preference_list(key_token(key), 3);
    let owner = replicas[1];
    let coordinator = sim
        .node_ids()
        .into_iter()
        .find(|n| !replicas.contains(n))
        .unwrap();
    sim.crash(owner);
    sim.run_for(1_000);
    (sim, coordinator, owner)
}

fn put(sim: &mut Sim, via: NodeId, key: &[u8], value: Vec<u8>) -> OpId {
    let op = ClientOp::Put {
        key: key.to_vec(),
        value,
        consistency: Some(Consistency::All),
    };
    let id = sim.client(via, op);
    assert!(sim.run_until_done(id, 5_000));
    id
}

fn hinted(sim: &Sim, id: OpId) -> usize {
    match &sim.history().op(id).unwrap().result {
        Some(Ok(ClientOk::Written { hinted, .. })) => *hinted,
        other => panic!("the write failed: {other:?}"),
    }
}

fn hints_held(sim: &Sim) -> u64 {
    sim.node_ids()
        .into_iter()
        .filter_map(|n| sim.node(n))
        .map(|n| n.hints_held().values().sum::<u64>())
        .sum()
}

#[test]
fn a_value_at_the_limit_is_hinted_and_handed_back() {
    let key = b"at-the-limit";
    let (mut sim, via, owner) = with_an_owner_down(key);
    let max = sim.config().lsm.value_bytes_max;
    let value = vec![b'x'; max];
    // At consistency ALL, the write succeeds only if a stand-in keeps the hint.
    let id = put(&mut sim, via, key, value.clone());
    assert_eq!(hinted(&sim, id), 1);
    assert_eq!(hints_held(&sim), 1);
    // One byte more is refused by the API, not by a stand-in.
    let op = ClientOp::Put {
        key: key.to_vec(),
        value: vec![b'x'; max + 1],
        consistency: Some(Consistency::All),
    };
    let too_big = sim.client(via, op);
    assert!(sim.run_until_done(too_big, 5_000));
    assert!(matches!(
        sim.history().op(too_big).unwrap().result,
        Some(Err(ringstore_core::node::ClientError::TooLarge { .. }))
    ));

    sim.restart(owner).unwrap();
    let deadline = sim.now().0 + 10_000;
    while hints_held(&sim) > 0 && sim.now().0 < deadline {
        sim.run_for(100);
    }
    assert_eq!(hints_held(&sim), 0, "the hint was never handed back");
    let stored = sim.stored(owner, key).unwrap();
    assert_eq!(stored.value.as_deref(), Some(&value[..]));
}

#[test]
fn a_key_hinted_twice_is_one_hint_and_none_once_replayed() {
    let key = b"hinted-twice";
    let (mut sim, via, owner) = with_an_owner_down(key);
    for round in 0..3u8 {
        let id = put(&mut sim, via, key, vec![round; 10]);
        assert_eq!(hinted(&sim, id), 1);
    }
    assert_eq!(hints_held(&sim), 1, "three writes to one key are one hint");
    sim.restart(owner).unwrap();
    sim.run_until(Millis(sim.now().0 + 5_000));
    assert_eq!(hints_held(&sim), 0);
    let stored = sim.stored(owner, key).unwrap();
    assert_eq!(stored.value.as_deref(), Some(&[2u8; 10][..]));
}
