//! Unit tests of the gossiper: peer choice, the three-message exchange, bounds, status changes,
//! removal, restarts and the verdicts' events.

use super::*;
use crate::DetRng;
use crate::membership::{DIGEST_BYTES_MAX, Digest, GossipMsg, Verdict};
use rand::SeedableRng;

fn n(i: u32) -> NodeId {
    NodeId(i)
}

fn nodes(ids: &[u32]) -> Vec<NodeId> {
    ids.iter().map(|&i| NodeId(i)).collect()
}

fn gossiper(id: u32, generation: u64, seeds: &[u32]) -> Gossiper {
    let tokens = vec![
        Token(u64::from(id) * 1_000),
        Token(u64::from(id) * 1_000 + 1),
    ];
    let mut g = Gossiper::new(
        n(id),
        generation,
        format!("10.0.0.{id}:7000"),
        tokens,
        nodes(seeds),
        GossipConfig::default(),
    )
    .unwrap();
    g.set_status(MemberStatus::Alive).unwrap();
    g
}

/// A full Syn → Ack → Ack2 exchange started by `a`, delivered instantly. Returns the number of
/// deltas each way.
fn exchange(a: &mut Gossiper, b: &mut Gossiper, now: Millis) -> (usize, usize) {
    let syn = GossipMsg::Syn {
        digests: a.digests(),
    };
    let mut to_a = 0;
    let mut to_b = 0;
    for (_, ack) in b.handle(now, a.me(), syn) {
        if let GossipMsg::Ack { deltas, .. } = &ack {
            to_a = deltas.len();
        }
        for (_, ack2) in a.handle(now, b.me(), ack) {
            if let GossipMsg::Ack2 { deltas } = &ack2 {
                to_b = deltas.len();
            }
            assert!(b.handle(now, a.me(), ack2).is_empty());
        }
    }
    (to_a, to_b)
}

#[test]
fn choose_peers_table() {
    // (live, unreachable, seeds, me, fanout) → expectation on every one of 200 draws
    type Check = fn(&[NodeId]) -> bool;
    type Row = (
        &'static [u32],
        &'static [u32],
        &'static [u32],
        u32,
        usize,
        Check,
    );
    let table: [Row; 6] = [
        // A newcomer knows only seeds: it always gossips to exactly one of them.
        (&[], &[], &[1, 2], 5, 3, |p| {
            p.len() == 1 && (p[0] == n(1) || p[0] == n(2))
        }),
        // A seed alone does not gossip to itself.
        (&[], &[], &[1], 1, 3, |p| p.is_empty()),
        // Fanout larger than the live set: all of it, me excluded (plus maybe a seed).
        (&[2, 3, 4], &[], &[9], 4, 5, |p| {
            p.contains(&n(2)) && p.contains(&n(3)) && !p.contains(&n(4)) && p.len() <= 3
        }),
        // Nothing live: always one unreachable (probability 3/1) and one seed.
        (&[], &[5, 6, 7], &[1], 9, 3, |p| {
            p.len() == 2 && [n(5), n(6), n(7)].contains(&p[0]) && p[1] == n(1)
        }),
        // fanout distinct live peers first, then at most an unreachable and a seed.
        (&[1, 2, 3, 4, 5, 6, 7, 8], &[20], &[1, 2], 3, 3, |p| {
            let set: BTreeSet<_> = p.iter().collect();
            (3..=5).contains(&p.len()) && set.len() == p.len() && !p.contains(&n(3))
        }),
        // Fanout 0 still lets a seed or an unreachable peer be tried.
        (&[2], &[3], &[], 1, 0, |p| p.is_empty() || p == [n(3)]),
    ];
    for (row, (live, unreachable, seeds, me, fanout, check)) in table.into_iter().enumerate() {
        let mut rng = DetRng::seed_from_u64(row as u64);
        for _ in 0..200 {
            let p = choose_peers(
                &nodes(live),
                &nodes(unreachable),
                &nodes(seeds),
                n(me),
                fanout,
                &mut rng,
            );
            assert!(check(&p), "row {row}: {p:?}");
        }
    }
}

#[test]
fn choose_peers_is_uniform_and_follows_cassandras_probabilities() {
    let live = nodes(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let mut rng = DetRng::seed_from_u64(3);
    let mut hits: BTreeMap<NodeId, u32> = BTreeMap::new();
    let draws = 10_000;
    for _ in 0..draws {
        for p in choose_peers(&live, &[n(50)], &[n(1)], n(99), 3, &mut rng) {
            *hits.entry(p).or_default() += 1;
        }
    }
    // Each live node: 3/10 of draws by fanout (n1 also gets the seed slot sometimes).
    for i in 2..=10 {
        let h = hits[&n(i)];
        assert!((2_700..3_300).contains(&h), "n{i}: {h}");
    }
    // The unreachable node: probability 1 / (10 + 1).
    let h = hits[&n(50)];
    assert!((800..1_020).contains(&h), "unreachable: {h}");
    // Same inputs, same RNG state: same choice, whatever the input order.
    let a = choose_peers(&live, &[], &[], n(99), 3, &mut DetRng::seed_from_u64(5));
    let mut reversed = live.clone();
    reversed.reverse();
    let b = choose_peers(&reversed, &[], &[], n(99), 3, &mut DetRng::seed_from_u64(5));
    assert_eq!(a, b);
}

#[test]
fn one_exchange_makes_both_sides_know_each_other() {
    let mut a = gossiper(1, 100, &[]);
    let mut b = gossiper(2, 200, &[1]);
    let now = Millis(1_000);
    assert_eq!(exchange(&mut b, &mut a, now), (1, 1));
    for g in [&a, &b] {
        assert_eq!(g.members().len(), 2);
        assert_eq!(g.members()[&n(1)], a.members()[&n(1)]);
        assert_eq!(g.members()[&n(2)], b.members()[&n(2)]);
    }
    assert_eq!(
        a.drain_events(),
        vec![GossipEvent::Joined {
            node: n(2),
            status: MemberStatus::Alive
        }]
    );
    // In sync: a new exchange carries nothing.
    assert_eq!(exchange(&mut a, &mut b, now), (0, 0));
}

#[test]
fn deltas_carry_only_what_the_peer_lacks() {
    let mut a = gossiper(1, 100, &[]);
    let mut b = gossiper(2, 200, &[1]);
    let mut rng = DetRng::seed_from_u64(1);
    exchange(&mut b, &mut a, Millis(0));
    // b heartbeats: a lacks only b's heartbeat, not its application state.
    let syns = b.tick(Millis(1_000), &mut rng);
    assert_eq!(syns.len(), 1);
    let (to, syn) = syns.into_iter().next().unwrap();
    assert_eq!(to, n(1));
    let ack = a.handle(Millis(1_000), n(2), syn);
    let GossipMsg::Ack { deltas, requests } = &ack[0].1 else {
        panic!("expected an Ack, got {ack:?}");
    };
    assert!(deltas.is_empty());
    assert_eq!(requests, &vec![a.members()[&n(2)].digest(n(2))]);
    let ack2 = b.handle(Millis(1_000), n(1), ack[0].1.clone());
    let GossipMsg::Ack2 { deltas } = &ack2[0].1 else {
        panic!("expected an Ack2, got {ack2:?}");
    };
    assert_eq!(deltas.len(), 1);
    assert_eq!((deltas[0].heartbeat, deltas[0].app.is_none()), (1, true));
    // A status change makes the application state travel again.
    b.set_status(MemberStatus::Leaving).unwrap();
    exchange(&mut b, &mut a, Millis(2_000));
    assert_eq!(a.members()[&n(2)].status, MemberStatus::Leaving);
    assert!(a.drain_events().contains(&GossipEvent::StatusChanged {
        node: n(2),
        status: MemberStatus::Leaving
    }));
}

/// A gossiper that knows `count` members, each with 16 tokens, at versions 1..=count.
fn crowded(count: u32) -> Gossiper {
    let mut g = gossiper(1, 1, &[]);
    let deltas: Vec<Delta> = (2..count + 2)
        .map(|i| Delta {
            node: n(i),
            generation: 1_700_000_000_000,
            heartbeat: u64::from(i),
            version: u64::from(i),
            app: Some(AppState {
                app_version: 1,
                status: MemberStatus::Alive,
                tokens: (0..16)
                    .map(|t| Token(u64::MAX - t * 7_919 - u64::from(i)))
                    .collect(),
                address: format!("node-{i}.example.internal:7000"),
            }),
        })
        .collect();
    g.handle(Millis(0), n(2), GossipMsg::Ack2 { deltas });
    g
}

#[test]
fn digests_of_a_thousand_members_fit_and_deltas_respect_the_byte_bound() {
    let mut g = crowded(1_000);
    assert_eq!(g.members().len(), 1_001);
    let digests = g.digests();
    let bytes = postcard::to_allocvec(&GossipMsg::Syn { digests })
        .unwrap()
        .len();
    assert!(
        bytes <= 1_001 * DIGEST_BYTES_MAX + 8,
        "{bytes} bytes of digests"
    );
    assert!(bytes < 16 << 10, "1,000 digests take {bytes} bytes");

    // A stranger knows nothing: it gets as much as fits, the rest later.
    let ack = g.handle(Millis(0), n(5_000), GossipMsg::Syn { digests: vec![] });
    let GossipMsg::Ack { deltas, .. } = &ack[0].1 else {
        panic!("expected an Ack");
    };
    let bound: usize = deltas.iter().map(Delta::bytes_max).sum();
    assert!(bound <= g.config().max_deltas_bytes);
    assert!(
        deltas.len() > 100 && deltas.len() < 1_001,
        "{} deltas",
        deltas.len()
    );
    for d in deltas {
        assert!(postcard::to_allocvec(d).unwrap().len() <= d.bytes_max());
    }
    assert!(g.stats().deltas_deferred > 0);
}

#[test]
fn the_most_behind_deltas_go_first() {
    let mut g = crowded(1_000);
    // The peer knows every member at version 1 except n2 (unknown).
    let digests: Vec<Digest> = (3..1_002)
        .map(|i| Digest {
            node: n(i),
            generation: 1_700_000_000_000,
            max_version: 1,
        })
        .collect();
    let ack = g.handle(Millis(0), n(5_000), GossipMsg::Syn { digests });
    let GossipMsg::Ack { deltas, .. } = &ack[0].1 else {
        panic!("expected an Ack");
    };
    // Unknown first (n2, and n1: g itself), then by how far behind: n1001 (1,000 versions),
    // n1000, …
    let order: Vec<u32> = deltas.iter().take(4).map(|d| d.node.0).collect();
    assert_eq!(order, vec![1, 2, 1_001, 1_000]);
    assert!(
        deltas[2].app.is_none(),
        "the peer has the application state"
    );
    assert!(
        deltas
            .windows(2)
            .skip(2)
            .all(|w| w[0].version >= w[1].version)
    );
}

#[test]
fn set_status_follows_the_lifecycle() {
    use MemberStatus::*;
    // (from, to, allowed)
    let table = [
        (Joining, Alive, true),
        (Joining, Left, true),
        (Alive, Leaving, true),
        (Alive, Alive, true),
        (Leaving, Left, true),
        (Alive, Joining, false),
        (Left, Alive, false),
        (Leaving, Alive, false),
        (Alive, Removed, false),
    ];
    for (from, to, allowed) in table {
        let mut g = Gossiper::new(
            n(1),
            1,
            String::new(),
            vec![],
            vec![],
            GossipConfig::default(),
        )
        .unwrap();
        for step in [Alive, Leaving, Left] {
            if g.members()[&n(1)].status != from {
                g.set_status(step).unwrap();
            }
        }
        assert_eq!(g.members()[&n(1)].status, from);
        let version = g.members()[&n(1)].version;
        assert_eq!(g.set_status(to).is_ok(), allowed, "{from:?} → {to:?}");
        let own = &g.members()[&n(1)];
        let want = if allowed { to } else { from };
        assert_eq!(own.status, want);
        assert_eq!(
            own.version > version,
            allowed && from != to,
            "{from:?} → {to:?}"
        );
    }
}

#[test]
fn bounds_are_enforced() {
    let config = GossipConfig::default();
    let long = "x".repeat(config.address_bytes_max + 1);
    assert!(matches!(
        Gossiper::new(n(1), 1, long.clone(), vec![], vec![], config.clone()),
        Err(GossipError::AddressTooLong { .. })
    ));
    let many = vec![Token(1); config.tokens_max + 1];
    assert!(matches!(
        Gossiper::new(n(1), 1, String::new(), many, vec![], config.clone()),
        Err(GossipError::TooManyTokens { .. })
    ));
    let tight = GossipConfig {
        max_deltas_bytes: 100,
        ..config.clone()
    };
    assert!(matches!(
        Gossiper::new(n(1), 1, String::new(), vec![], vec![], tight),
        Err(GossipError::BadConfig(_))
    ));
    // A delta over a bound is ignored; members past members_max are refused.
    let small = GossipConfig {
        members_max: 3,
        ..config
    };
    let mut g = Gossiper::new(n(1), 1, String::new(), vec![], vec![], small).unwrap();
    let delta = |i: u32, address: &str| Delta {
        node: n(i),
        generation: 1,
        heartbeat: 1,
        version: 1,
        app: Some(AppState {
            app_version: 1,
            status: MemberStatus::Alive,
            tokens: vec![],
            address: address.into(),
        }),
    };
    let deltas = vec![
        delta(2, &long),
        delta(3, "ok"),
        delta(4, "ok"),
        delta(5, "ok"),
    ];
    g.handle(Millis(0), n(2), GossipMsg::Ack2 { deltas });
    assert_eq!(
        g.members().keys().copied().collect::<Vec<_>>(),
        nodes(&[1, 3, 4])
    );
    assert_eq!(g.stats().deltas_ignored, 1);
    assert_eq!(g.stats().members_refused, 1);
}

#[test]
fn silence_makes_a_peer_suspect_then_dead_and_a_heartbeat_brings_it_back() {
    let mut a = gossiper(1, 1, &[]);
    let mut b = gossiper(2, 2, &[1]);
    let mut rng = DetRng::seed_from_u64(9);
    // Ten rounds of 1 s: a learns b's heartbeat rate.
    for s in 0..10 {
        let now = Millis(s * 1_000);
        b.tick(now, &mut rng);
        exchange(&mut b, &mut a, now);
    }
    a.drain_events();
    let last = 9_000;
    // (seconds of silence after the last heartbeat, verdict)
    let table = [
        (1, Verdict::Alive),
        (18, Verdict::Alive),
        (19, Verdict::Suspect),
        (28, Verdict::Suspect),
        (29, Verdict::Dead),
    ];
    for (s, want) in table {
        let now = Millis(last + s * 1_000);
        assert_eq!(a.live_view(now)[&n(2)], want, "{s} s of silence");
        a.tick(now, &mut rng);
    }
    let events = a.drain_events();
    assert!(
        matches!(events[0], GossipEvent::PeerSuspect { node, phi } if node == n(2) && phi >= 8.0)
    );
    assert_eq!(events[1], GossipEvent::PeerDown { node: n(2) });
    // b is heard from again.
    let now = Millis(last + 30_000);
    b.tick(now, &mut rng);
    exchange(&mut b, &mut a, now);
    assert_eq!(a.live_view(now)[&n(2)], Verdict::Alive);
    assert!(a.phi(n(2), now).unwrap() < 0.5);
    assert_eq!(a.drain_events(), vec![GossipEvent::PeerUp { node: n(2) }]);
}

#[test]
fn a_restart_with_a_larger_generation_replaces_the_old_state() {
    let mut a = gossiper(1, 1, &[]);
    let mut b = gossiper(2, 1_000, &[1]);
    exchange(&mut b, &mut a, Millis(1_000));
    a.drain_events();
    let mut b2 = Gossiper::new(
        n(2),
        50_000,
        "new-address".into(),
        vec![Token(7)],
        nodes(&[1]),
        GossipConfig::default(),
    )
    .unwrap();
    exchange(&mut b2, &mut a, Millis(50_000));
    let state = &a.members()[&n(2)];
    assert_eq!(
        (state.generation, state.status),
        (50_000, MemberStatus::Joining)
    );
    assert_eq!(
        (state.tokens.clone(), state.address.as_str()),
        (vec![Token(7)], "new-address")
    );
    assert_eq!(
        a.drain_events(),
        vec![GossipEvent::PeerRestarted {
            node: n(2),
            old_generation: 1_000,
            generation: 50_000
        }]
    );
    assert_eq!(a.detector().window(n(2)).unwrap().samples(), 0);
    // The old incarnation's gossip is ignored from now on.
    exchange(&mut b, &mut a, Millis(51_000));
    assert_eq!(a.members()[&n(2)].generation, 50_000);
}

#[test]
fn removal_spreads_and_a_live_node_refutes_it() {
    let mut a = gossiper(1, 1, &[]);
    let mut b = gossiper(2, 1, &[1]);
    let mut c = gossiper(3, 1, &[1]);
    exchange(&mut b, &mut a, Millis(0));
    exchange(&mut c, &mut a, Millis(0));
    exchange(&mut b, &mut a, Millis(0));
    assert_eq!(b.members().len(), 3);
    assert_eq!(a.remove(n(1)), Err(GossipError::CannotRemove(n(1))));
    assert_eq!(a.remove(n(9)), Err(GossipError::CannotRemove(n(9))));
    a.remove(n(3)).unwrap();
    assert!(!a.live_view(Millis(0)).contains_key(&n(3)));
    exchange(&mut b, &mut a, Millis(10));
    assert_eq!(b.members()[&n(3)].status, MemberStatus::Removed);
    assert!(b.members()[&n(3)].tokens.is_empty());
    assert!(!b.live_view(Millis(10)).contains_key(&n(3)));
    assert!(
        b.drain_events()
            .contains(&GossipEvent::PeerRemoved { node: n(3) })
    );
    // n3 was alive after all: it hears of its removal and takes a larger generation.
    exchange(&mut c, &mut b, Millis(20));
    assert_eq!(c.generation(), 3);
    assert!(
        c.drain_events()
            .contains(&GossipEvent::Refuted { generation: 3 })
    );
    exchange(&mut c, &mut b, Millis(30));
    assert_eq!(b.members()[&n(3)].status, MemberStatus::Alive);
    assert_eq!(b.live_view(Millis(30))[&n(3)], Verdict::Alive);
}

#[test]
fn a_removal_remembered_across_a_restart_spreads_again() {
    let mut a = gossiper(1, 1, &[]);
    let mut b = gossiper(2, 1, &[1]);
    let c = gossiper(3, 1, &[1]);
    let mut c_known = gossiper(4, 1, &[]);
    // b knows n3 alive; a removes n3, then crashes before telling anyone.
    exchange(&mut b, &mut a, Millis(0));
    let mut c = c;
    exchange(&mut c, &mut b, Millis(0));
    exchange(&mut c, &mut a, Millis(0));
    a.remove(n(3)).unwrap();
    let remembered = a.removed();
    assert_eq!(remembered, vec![(n(3), 2)]);
    // a restarts knowing only itself and what it remembered.
    let mut a = gossiper(1, 2, &[]);
    for &(node, generation) in &remembered {
        assert!(a.remember_removed(node, generation));
    }
    assert!(!a.remember_removed(n(1), 5), "never itself");
    assert!(!a.live_view(Millis(10)).contains_key(&n(3)));
    // b's older word on n3 (alive, generation 1) does not bring it back; a's removal wins.
    exchange(&mut b, &mut a, Millis(10));
    assert_eq!(a.members()[&n(3)].status, MemberStatus::Removed);
    assert_eq!(b.members()[&n(3)].status, MemberStatus::Removed);
    // A member already known under a newer generation (it came back) is left alone.
    c_known.remember_removed(n(3), 2);
    exchange(&mut c, &mut c_known, Millis(20));
    assert_eq!(c.generation(), 3, "n3 refutes the removal");
    assert!(!c_known.remember_removed(n(3), 2));
}

#[test]
fn a_member_that_left_is_left_not_dead() {
    let mut a = gossiper(1, 1, &[]);
    let mut b = gossiper(2, 1, &[1]);
    exchange(&mut b, &mut a, Millis(0));
    b.set_status(MemberStatus::Leaving).unwrap();
    b.set_status(MemberStatus::Left).unwrap();
    exchange(&mut b, &mut a, Millis(1_000));
    assert!(
        a.drain_events()
            .contains(&GossipEvent::PeerLeft { node: n(2) })
    );
    // Long silence afterwards: still Left, and not gossiped to.
    let later = Millis(1_000_000);
    assert_eq!(a.live_view(later)[&n(2)], Verdict::Left);
    let out = a.tick(later, &mut DetRng::seed_from_u64(1));
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn the_event_queue_is_bounded() {
    let config = GossipConfig {
        events_max: 2,
        ..GossipConfig::default()
    };
    let mut g = Gossiper::new(n(1), 1, String::new(), vec![], vec![], config).unwrap();
    let deltas = (2..7)
        .map(|i| Delta {
            node: n(i),
            generation: 1,
            heartbeat: 1,
            version: 1,
            app: Some(AppState {
                app_version: 1,
                status: MemberStatus::Alive,
                tokens: vec![],
                address: String::new(),
            }),
        })
        .collect();
    g.handle(Millis(0), n(2), GossipMsg::Ack2 { deltas });
    let events = g.drain_events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0], GossipEvent::EventsDropped { count: 3 });
    assert!(g.drain_events().is_empty());
}

#[test]
fn a_seed_added_later_is_contacted_like_one_given_at_start() {
    let mut late = gossiper(2, 1, &[]);
    let mut rng = DetRng::seed_from_u64(3);
    assert!(
        late.tick(Millis(0), &mut rng).is_empty(),
        "knows nobody yet"
    );
    assert!(late.add_seed(n(1)));
    assert!(!late.add_seed(n(1)), "already a seed");
    assert!(!late.add_seed(n(2)), "never itself");
    assert_eq!(late.seeds(), &[n(1)]);
    let syns = late.tick(Millis(1_000), &mut rng);
    assert_eq!(syns.len(), 1);
    assert_eq!(syns[0].0, n(1));
    // And the exchange then teaches both sides about each other.
    let mut seed = gossiper(1, 1, &[]);
    exchange(&mut late, &mut seed, Millis(1_000));
    assert!(seed.members().contains_key(&n(2)));
    assert!(late.members().contains_key(&n(1)));
}

/// `up_changes` asked after every message and every millisecond tells a node of every change
/// of Alive-ness at the moment reading all verdicts would: a belief set kept from its answers
/// equals one kept from `verdicts` throughout heartbeats, a crash (silence), a restart and a
/// leave, among four members with irregular heartbeats.
#[test]
fn up_changes_agree_with_reading_every_verdict() {
    let mut rng = DetRng::seed_from_u64(3);
    let mut g: Vec<Gossiper> = (1..=4).map(|i| gossiper(i, 1, &[1])).collect();
    let mut incremental: BTreeSet<NodeId> = BTreeSet::new();
    let mut full: BTreeSet<NodeId> = BTreeSet::new();
    let mut changes = 0;
    let mut check = |a: &mut Gossiper, now: Millis, changes: &mut usize| {
        for (node, v) in a.up_changes(now, false) {
            let down = v != Verdict::Alive;
            if down != incremental.contains(&node) {
                *changes += 1;
            }
            if down {
                incremental.insert(node);
            } else {
                incremental.remove(&node);
            }
        }
        for (node, v) in a.verdicts(now) {
            if node == a.me() {
                continue;
            }
            if v == Verdict::Alive {
                full.remove(&node);
            } else {
                full.insert(node);
            }
        }
        assert_eq!(incremental, full, "at {now:?}");
    };
    let mut a = g.remove(0);
    for ms in (0..60_000u64).step_by(50) {
        let now = Millis(ms);
        // n2 crashes at 20 s and restarts (a new generation) at 40 s; n3 leaves at 50 s;
        // n4 heartbeats every 700 ms or 1.3 s.
        if ms == 40_000 {
            g[0] = gossiper(2, 2, &[1]);
        }
        if ms == 50_000 {
            g[1].set_status(MemberStatus::Left).unwrap();
        }
        for (i, b) in g.iter_mut().enumerate() {
            let every = [
                1_000,
                1_000,
                if (ms / 10_000) % 2 == 0 { 700 } else { 1_300 },
            ][i];
            let crashed = i == 0 && (20_000..40_000).contains(&ms);
            if ms % every == 0 && !crashed {
                b.tick(now, &mut rng);
                exchange(b, &mut a, now);
                check(&mut a, now, &mut changes);
            }
        }
        if ms % 1_000 == 0 {
            a.tick(now, &mut rng);
        }
        check(&mut a, now, &mut changes);
    }
    // n2 went down and came back, n3 left: the test saw changes, not a constant answer.
    assert!(changes >= 3, "{changes} changes");
}
