use super::*;
use proptest::prelude::*;

fn n(i: u32) -> NodeId {
    NodeId(i)
}

fn ids(count: u32) -> Vec<NodeId> {
    (1..=count).map(NodeId).collect()
}

/// n1..n5 with one token each at 100, 200, …, 500.
fn five_node_ring() -> Ring {
    Ring::new((1..=5).map(|i| (n(i), vec![Token(u64::from(i) * 100)])))
}

#[test]
fn design_notes_example_user123() {
    // The notes' ring A ─ B ─ C ─ D ─ E with user123 hashing between B and C. n1..n5 stand for
    // A..E; the tokens are placed around user123's real token.
    let key = key_token(b"user123").0;
    let at = |offset: i64| Token(key.wrapping_add_signed(offset));
    let ring = Ring::new([
        (n(3), vec![at(1_000)]),  // C
        (n(1), vec![at(-2_000)]), // A
        (n(5), vec![at(3_000)]),  // E
        (n(2), vec![at(-1_000)]), // B
        (n(4), vec![at(2_000)]),  // D
    ]);
    let token = key_token(b"user123");
    assert_eq!(ring.owner(token), Some(n(3)), "owner is C");
    assert_eq!(ring.preference_list(token, 3), vec![n(3), n(4), n(5)]);
}

#[test]
fn ownership_rule_and_wrap_around() {
    let ring = five_node_ring();
    // (token, expected owner)
    let cases = [
        (0, 1),        // before the first token: first node
        (100, 1),      // equal to a node token: that node
        (101, 2),      // just past it: the next
        (250, 3),      // between B and C: C
        (500, 5),      // the last token
        (501, 1),      // after the last token: wraps to the first
        (u64::MAX, 1), // the very top wraps too
    ];
    for (token, owner) in cases {
        assert_eq!(ring.owner(Token(token)), Some(n(owner)), "token {token}");
        assert_eq!(ring.preference_list(Token(token), 1), vec![n(owner)]);
    }
    assert_eq!(Ring::default().owner(Token(5)), None);
}

#[test]
fn preference_list_is_distinct_clockwise_and_capped() {
    // n1 holds 100 and 300; n2 holds 200; n3 holds 400.
    let ring = Ring::new([
        (n(1), vec![Token(100), Token(300)]),
        (n(2), vec![Token(200)]),
        (n(3), vec![Token(400)]),
    ]);
    // (token, n, expected)
    let cases: &[(u64, usize, &[u32])] = &[
        (150, 2, &[2, 1]),
        (150, 3, &[2, 1, 3]), // skips n1's second token
        (250, 3, &[1, 3, 2]),
        (450, 3, &[1, 2, 3]), // wraps
        (450, 5, &[1, 2, 3]), // only three nodes
        (450, 0, &[]),
    ];
    for &(token, count, expected) in cases {
        let expected: Vec<NodeId> = expected.iter().copied().map(NodeId).collect();
        assert_eq!(
            ring.preference_list(Token(token), count),
            expected,
            "token {token}, n {count}"
        );
    }
    assert!(Ring::default().preference_list(Token(1), 3).is_empty());
}

#[test]
fn walk_yields_every_node_once_in_clockwise_order() {
    let ring = Ring::build(&ids(10), 8, 42);
    let token = key_token(b"k");
    let walked: Vec<NodeId> = ring.walk(token).collect();
    assert_eq!(walked.len(), 10);
    assert_eq!(&walked[..3], ring.preference_list(token, 3).as_slice());
    assert_eq!(walked, ring.preference_list(token, 100));
    assert_eq!(Ring::default().walk(token).count(), 0);
}

#[test]
fn ring_is_independent_of_member_order() {
    let members: Vec<(NodeId, Vec<Token>)> = ids(6)
        .into_iter()
        .map(|node| (node, node_tokens(node, 4, 9)))
        .collect();
    let reversed: Vec<_> = members.iter().rev().cloned().collect();
    assert_eq!(Ring::new(members.clone()), Ring::new(reversed));
}

#[test]
fn token_assignment_is_deterministic_and_seeded() {
    let nodes = ids(5);
    assert_eq!(Ring::build(&nodes, 16, 7), Ring::build(&nodes, 16, 7));
    assert_ne!(node_tokens(n(1), 16, 7), node_tokens(n(1), 16, 8));
    assert_ne!(node_tokens(n(1), 16, 7), node_tokens(n(2), 16, 7));
    let tokens = node_tokens(n(1), 256, 7);
    assert_eq!(tokens.len(), 256);
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "sorted and distinct"
    );
    // A node's first tokens do not change when it gets more vnodes.
    let four = node_tokens(n(3), 4, 7);
    let eight = node_tokens(n(3), 8, 7);
    assert!(four.iter().all(|t| eight.contains(t)));
}

#[test]
fn token_collision_between_nodes_goes_to_the_lower_id() {
    let ring = Ring::new([(n(2), vec![Token(10), Token(20)]), (n(1), vec![Token(10)])]);
    assert_eq!(ring.tokens(), &[(Token(10), n(1)), (Token(20), n(2))]);
}

#[test]
fn token_displays_as_sixteen_hex_digits() {
    assert_eq!(Token(0x3fa2).to_string(), "0x0000000000003fa2");
    assert_eq!(Token(u64::MAX).to_string(), "0xffffffffffffffff");
}

#[test]
fn range_contains_and_width_wrap() {
    let plain = Range::new(Token(10), Token(20));
    let wrapping = Range::new(Token(u64::MAX - 5), Token(4));
    let full = Range::full(Token(7));
    // (range, token, contained)
    let cases = [
        (plain, 10, false),
        (plain, 11, true),
        (plain, 20, true),
        (plain, 21, false),
        (wrapping, u64::MAX - 5, false),
        (wrapping, u64::MAX, true),
        (wrapping, 0, true),
        (wrapping, 4, true),
        (wrapping, 5, false),
        (full, 7, true),
        (full, 0, true),
    ];
    for (range, token, expected) in cases {
        assert_eq!(range.contains(Token(token)), expected, "{range} ∋ {token}");
    }
    assert_eq!(plain.width(), 10);
    assert_eq!(wrapping.width(), 10);
    assert_eq!(full.width(), 1 << 64);
    assert!((full.share() - 1.0).abs() < 1e-12);
}

#[test]
fn ranges_tile_the_ring() {
    let ring = five_node_ring();
    let ranges = ring.ranges();
    assert_eq!(ranges[0], (Range::new(Token(500), Token(100)), n(1)));
    assert_eq!(ranges[2], (Range::new(Token(200), Token(300)), n(3)));
    let total: u128 = ranges.iter().map(|(r, _)| r.width()).sum();
    assert_eq!(total, 1 << 64);
    let single = Ring::new([(n(1), vec![Token(9)])]);
    assert_eq!(single.ranges(), vec![(Range::full(Token(9)), n(1))]);
}

#[test]
fn replica_ranges_at_n3() {
    let ring = five_node_ring();
    // n3 stores its own range (200, 300] and those of n2 and n1 before it: (500, 300].
    assert_eq!(
        ring.replica_ranges(n(3), 3),
        vec![Range::new(Token(500), Token(300))]
    );
    // n1 stores (300, 100]: n4's, n5's and its own, across the wrap.
    assert_eq!(
        ring.replica_ranges(n(1), 3),
        vec![Range::new(Token(300), Token(100))]
    );
    // With N = 5 every node stores the whole ring.
    assert!(ring.replica_ranges(n(2), 5)[0].is_full());
}

#[test]
fn ownership_shares_sum_to_one_and_to_n() {
    for (nodes, vnodes, replicas) in [(1, 1, 3), (3, 4, 3), (5, 16, 3), (20, 16, 2), (8, 64, 5)] {
        let ring = Ring::build(&ids(nodes), vnodes, 3);
        let own = ring.ownership(replicas);
        assert_eq!(own.len(), nodes as usize);
        let primary: f64 = own.values().map(|o| o.primary_share).sum();
        let replica: f64 = own.values().map(|o| o.replica_share).sum();
        let expected = replicas.min(nodes as usize) as f64;
        assert!((primary - 1.0).abs() < 1e-9, "{nodes}×{vnodes}: {primary}");
        assert!(
            (replica - expected).abs() < 1e-9,
            "{nodes}×{vnodes}: {replica}"
        );
        assert!(own.values().all(|o| o.vnodes == vnodes));
        for (node, o) in &own {
            let from_ranges: f64 = ring
                .replica_ranges(*node, replicas)
                .iter()
                .map(Range::share)
                .sum();
            assert!((from_ranges - o.replica_share).abs() < 1e-9);
        }
    }
}

#[test]
fn default_vnodes_keep_replica_load_within_bounds() {
    // The measured table in DEFAULT_VNODES' docs says the most loaded node stores ~1.27× its
    // share at 16 nodes; allow for one unlucky seed.
    let ring = Ring::build(&ids(16), DEFAULT_VNODES, 1);
    let fair = 3.0 / 16.0;
    for (node, o) in ring.ownership(3) {
        assert!(o.replica_share < 1.6 * fair, "{node}: {}", o.replica_share);
        assert!(o.replica_share > 0.5 * fair, "{node}: {}", o.replica_share);
    }
}

#[test]
fn preference_list_on_a_thousand_nodes() {
    let ring = Ring::build(&(0..1_000).map(NodeId).collect::<Vec<_>>(), 16, 5);
    assert_eq!(ring.tokens().len(), 16_000);
    assert_eq!(ring.nodes().len(), 1_000);
    for i in 0u32..10_000 {
        let list = ring.preference_list(key_token(&i.to_le_bytes()), 3);
        assert_eq!(list.len(), 3);
        assert!(list[0] != list[1] && list[1] != list[2] && list[0] != list[2]);
    }
}

#[test]
fn with_and_without_node_are_pure() {
    let ring = Ring::build(&ids(4), 8, 1);
    let joined = ring.with_node(n(9), node_tokens(n(9), 8, 1));
    assert_eq!(ring.nodes().len(), 4, "the original is unchanged");
    assert_eq!(joined.nodes().len(), 5);
    assert_eq!(joined.without_node(n(9)), ring);
    assert_eq!(joined, Ring::build(&[ids(4), vec![n(9)]].concat(), 8, 1));
    // Re-adding a node replaces its tokens.
    let moved = joined.with_node(n(9), vec![Token(1)]);
    assert_eq!(moved.tokens_of(n(9)), vec![Token(1)]);
}

/// Checks `plan` against its contract on every piece of the union of both rings' tokens:
/// each node that gains the piece receives it exactly once, from a node that held it before,
/// and nothing else is sent. Returns the total share that should move.
fn check_plan(before: &Ring, after: &Ring, replicas: usize, plan: &Plan) -> f64 {
    let mut cuts: Vec<Token> = before
        .tokens()
        .iter()
        .chain(after.tokens())
        .map(|(t, _)| *t)
        .collect();
    cuts.sort();
    cuts.dedup();
    let mut expected_total = 0.0;
    let mut prev = cuts.last().copied();
    for &cut in &cuts {
        let piece = Range::new(prev.unwrap(), cut);
        prev = Some(cut);
        let old = before.preference_list(cut, replicas);
        let new = after.preference_list(cut, replicas);
        let mut gained: Vec<NodeId> = new.iter().filter(|x| !old.contains(x)).copied().collect();
        let covering: Vec<&RangeMove> = plan
            .moves
            .iter()
            .filter(|m| m.range.contains(cut))
            .collect();
        for m in &covering {
            assert!(m.range.contains(piece.end) && m.range.width() >= piece.width());
            assert!(old.contains(&m.from), "{piece}: {} did not hold it", m.from);
        }
        let mut received: Vec<NodeId> = covering.iter().map(|m| m.to).collect();
        received.sort();
        gained.sort();
        if old.is_empty() {
            assert!(received.is_empty());
            continue;
        }
        assert_eq!(received, gained, "{piece}: {old:?} -> {new:?}");
        // Applying the moves and dropping what left yields the new replica set.
        let mut applied: Vec<NodeId> = old
            .iter()
            .chain(&received)
            .filter(|x| new.contains(x))
            .copied()
            .collect();
        applied.sort();
        let mut want = new.clone();
        want.sort();
        assert_eq!(applied, want);
        expected_total += piece.share() * gained.len() as f64;
    }
    assert!((plan.total_share() - expected_total).abs() < 1e-9);
    // Merged: no two moves with the same (from, to) are adjacent.
    for w in plan.moves.windows(2) {
        let same_pair = (w[0].from, w[0].to) == (w[1].from, w[1].to);
        assert!(!(same_pair && w[0].range.end == w[1].range.start));
    }
    expected_total
}

#[test]
fn join_moves_about_n_over_nodes_plus_one_to_the_new_node() {
    let ring = Ring::build(&ids(8), 16, 11);
    let newcomer = n(9);
    let tokens = node_tokens(newcomer, 16, 11);
    let plan = ring.plan_join(newcomer, tokens.clone(), 3);
    check_plan(&ring, &ring.with_node(newcomer, tokens), 3, &plan);
    assert!(plan.moves.iter().all(|m| m.to == newcomer));
    let expected = 3.0 / 9.0;
    let moved = plan.total_share();
    assert!(
        (moved - expected).abs() < 0.35 * expected,
        "moved {moved}, expected about {expected}\n{plan}"
    );
    let after = ring.with_node(newcomer, node_tokens(newcomer, 16, 11));
    assert!((moved - after.ownership(3)[&newcomer].replica_share).abs() < 1e-9);
}

#[test]
fn leave_hands_everything_the_node_held_to_others() {
    let ring = Ring::build(&ids(8), 16, 12);
    let leaving = n(4);
    let plan = ring.plan_leave(leaving, 3);
    check_plan(&ring, &ring.without_node(leaving), 3, &plan);
    assert!(plan.moves.iter().all(|m| m.to != leaving));
    let held = ring.ownership(3)[&leaving].replica_share;
    assert!((plan.total_share() - held).abs() < 1e-9);
    // The leaving node streams all of it itself.
    assert!((plan.sent_by(leaving) - held).abs() < 1e-9);
}

#[test]
fn join_into_a_cluster_smaller_than_n_copies_from_the_first_replica() {
    let ring = Ring::new([(n(1), vec![Token(100)]), (n(2), vec![Token(200)])]);
    let plan = ring.plan_join(n(3), vec![Token(300)], 3);
    // n3 needs the whole ring; nobody drops anything, so the first old replica sends it.
    assert_eq!(plan.moves.len(), 2);
    assert!((plan.received_by(n(3)) - 1.0).abs() < 1e-9);
    check_plan(&ring, &ring.with_node(n(3), vec![Token(300)]), 3, &plan);
}

#[test]
fn plan_display_is_a_table() {
    let ring = five_node_ring();
    let plan = ring.plan_leave(n(3), 3);
    let text = plan.to_string();
    assert!(text.starts_with("from  to    ranges   share\n"), "{text}");
    assert!(text.contains("n3    n1"), "{text}");
    assert!(text.lines().last().unwrap().starts_with("total"), "{text}");
    assert!(format!("{plan:#}").contains("n3 -> n1 (0x"));
    assert!(plan_of_nothing().is_empty());
}

fn plan_of_nothing() -> Plan {
    let ring = five_node_ring();
    plan(&ring, &ring, 3)
}

proptest! {
    #[test]
    fn plan_turns_before_replica_sets_into_after_replica_sets(
        nodes in 1u32..10,
        vnodes in 1u32..8,
        seed in any::<u64>(),
        replicas in 1usize..5,
        join in any::<bool>(),
        pick in any::<u32>(),
    ) {
        let ring = Ring::build(&ids(nodes), vnodes, seed);
        let after = if join {
            let newcomer = n(100 + pick % 5);
            ring.with_node(newcomer, node_tokens(newcomer, vnodes, seed))
        } else {
            ring.without_node(n(1 + pick % nodes))
        };
        let plan = plan(&ring, &after, replicas);
        check_plan(&ring, &after, replicas, &plan);
    }
}

#[test]
fn tokens_by_node_agrees_with_tokens_of() {
    let nodes: Vec<NodeId> = (1..=7).map(NodeId).collect();
    let ring = Ring::build(&nodes, 16, 3);
    let grouped = ring.tokens_by_node();
    assert_eq!(grouped.len(), 7);
    for n in nodes {
        assert_eq!(grouped[&n], ring.tokens_of(n));
    }
}

#[test]
fn a_leaving_node_hands_over_everything_it_held_even_when_no_node_gains_it() {
    // Four nodes at N = 4: every node holds every key, so when n4 leaves nobody gains a
    // range (the plan is empty), yet n4 may hold writes that only it acknowledged.
    let ring = Ring::build(&ids(4), 4, 7);
    let after = ring.without_node(n(4));
    assert!(plan(&ring, &after, 4).is_empty());
    let moves = handover(&ring, &after, 4, n(4));
    let share: f64 = moves.iter().map(|m| m.share).sum();
    assert!(
        (share - 1.0).abs() < 1e-9,
        "n4 hands over {share} of the ring"
    );
    for m in &moves {
        assert_eq!(m.from, n(4));
        // The receiver is a replica of the range afterwards.
        assert!(after.preference_list(m.range.end, 4).contains(&m.to));
    }
}

#[test]
fn handover_pairs_a_loser_with_the_gainer_the_plan_names() {
    let ring = Ring::build(&ids(8), 16, 12);
    let leaving = n(4);
    let after = ring.without_node(leaving);
    let plan = plan(&ring, &after, 3);
    let moves = handover(&ring, &after, 3, leaving);
    let held = ring.ownership(3)[&leaving].replica_share;
    let share: f64 = moves.iter().map(|m| m.share).sum();
    assert!((share - held).abs() < 1e-9);
    for m in &moves {
        let sent = plan
            .moves
            .iter()
            .find(|p| p.range.contains(m.range.end))
            .map(|p| (p.from, p.to));
        assert_eq!(sent, Some((leaving, m.to)), "range {}", m.range);
        let token = m.range.end;
        assert_eq!(
            handover_receiver(&ring, &after, 3, leaving, token),
            Some(m.to)
        );
    }
    // Nodes that keep every range they held hand nothing over.
    assert!(handover(&ring, &ring, 3, n(1)).is_empty());
    let joined = ring.with_node(n(9), node_tokens(n(9), 16, 3));
    for node in ids(8) {
        for m in handover(&ring, &joined, 3, node) {
            assert_eq!(m.to, n(9), "a join only hands ranges to the newcomer");
        }
    }
}
