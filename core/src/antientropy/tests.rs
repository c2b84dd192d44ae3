//! Tests of the Merkle tree and the repair session: what a session sends for identical and
//! nearly identical replicas, that tombstones win and lose by LWW like values, that any two
//! replicas converge to their LWW merge, and that decoding or answering garbage never panics.

use super::*;
use crate::NodeId;
use crate::ring::{Range, Token, key_token};
use crate::storage::{Cell, Version};
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};

fn v(ts: u64) -> Version {
    Version {
        ts_micros: ts,
        node: NodeId(1),
    }
}

fn put(ts: u64, value: &[u8]) -> Cell {
    Cell::put(v(ts), value.to_vec())
}

fn full() -> Range {
    Range::full(Token(0))
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// `n` keys at version 1 on a replica of the whole ring.
fn replica_with(n: u32, depth: u8) -> Replica {
    let entries = (0..n).map(|i| (key(i), put(1, b"value")));
    Replica::from_entries(full(), depth, entries).unwrap()
}

fn lww_merge(a: &BTreeMap<Vec<u8>, Cell>, b: &BTreeMap<Vec<u8>, Cell>) -> BTreeMap<Vec<u8>, Cell> {
    let mut out = a.clone();
    for (k, c) in b {
        match out.get(k) {
            Some(old) if old.version >= c.version => {}
            _ => {
                out.insert(k.clone(), c.clone());
            }
        }
    }
    out
}

#[test]
fn leaf_ranges_tile_the_range_and_hold_their_tokens() {
    let ranges = [
        full(),
        Range::full(Token(u64::MAX - 5)),
        Range::new(Token(100), Token(1_000_100)),
        Range::new(Token(u64::MAX - 1000), Token(5000)), // wraps
        Range::new(Token(10), Token(13)),                // narrower than the leaf count
    ];
    for range in ranges {
        let tree = MerkleTree::new(range, 4).unwrap();
        let tiles: Vec<Range> = (0..tree.leaf_count())
            .filter_map(|i| tree.leaf_range(i))
            .collect();
        assert_eq!(tiles.first().map(|r| r.start), Some(range.start), "{range}");
        assert_eq!(tiles.last().map(|r| r.end), Some(range.end), "{range}");
        for pair in tiles.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "{range}");
        }
        let width: u128 = tiles.iter().map(Range::width).sum();
        assert_eq!(width, range.width(), "{range}");
        for i in 0..tree.leaf_count() {
            if let Some(r) = tree.leaf_range(i) {
                for t in [r.start.0.wrapping_add(1), r.end.0] {
                    assert_eq!(tree.leaf_of(Token(t)), Some(i), "{range} leaf {i}");
                }
            }
        }
        if !range.is_full() {
            assert_eq!(tree.leaf_of(range.start), None);
        }
    }
}

#[test]
fn depth_past_the_bound_is_refused() {
    assert!(matches!(
        MerkleTree::new(full(), DEPTH_MAX + 1),
        Err(AeError::DepthTooLarge { .. })
    ));
    assert!(MerkleTree::new(full(), DEPTH_DEFAULT).is_ok());
}

#[test]
fn depth_for_keys_aims_at_32_keys_per_leaf() {
    assert_eq!(depth_for_keys(0), 0);
    assert_eq!(depth_for_keys(32), 0);
    assert_eq!(depth_for_keys(33), 1);
    assert_eq!(depth_for_keys(32 * 1024), 10);
    assert_eq!(depth_for_keys(1_000_000), 15);
    assert_eq!(depth_for_keys(u64::MAX), DEPTH_MAX);
}

#[test]
fn insert_then_remove_leaves_an_empty_tree() {
    let mut tree = MerkleTree::new(full(), 6).unwrap();
    let empty = tree.clone();
    tree.insert(b"a", &put(1, b"x")).unwrap();
    tree.insert(b"b", &Cell::tombstone(v(2))).unwrap();
    assert_ne!(tree.root(), empty.root());
    tree.remove(b"a", &put(1, b"x")).unwrap();
    tree.remove(b"b", &Cell::tombstone(v(2))).unwrap();
    assert_eq!(tree, empty);
    assert_eq!(tree.root(), NodeHash::EMPTY);
    assert!(matches!(
        tree.remove(b"a", &put(1, b"x")),
        Err(AeError::EmptyLeaf { .. })
    ));
}

#[test]
fn duplicate_entries_do_not_cancel() {
    // With XOR, two equal entry hashes in one leaf would cancel to an empty leaf.
    let mut tree = MerkleTree::new(full(), 0).unwrap();
    tree.insert(b"a", &put(1, b"x")).unwrap();
    tree.insert(b"a", &put(1, b"x")).unwrap();
    assert_ne!(tree.root(), NodeHash::EMPTY);
}

#[test]
fn keys_outside_the_range_are_refused() {
    let token = key_token(b"k").0;
    let range = Range::new(Token(token), Token(token.wrapping_add(10)));
    let mut tree = MerkleTree::new(range, 3).unwrap();
    assert_eq!(
        tree.insert(b"k", &put(1, b"x")),
        Err(AeError::TokenOutOfRange)
    );
    assert_eq!(tree.stats().entries, 0);
}

#[test]
fn identical_replicas_exchange_only_their_roots() {
    let mut a = replica_with(500, 10);
    let mut b = replica_with(500, 10);
    let report = sync_pair(&mut a, &mut b).unwrap();
    // Request(root), Hashes(root), Done.
    assert_eq!(report.messages(), 3);
    assert_eq!(report.initiator.nodes_compared, 1);
    assert_eq!(report.keys_streamed(), 0);
    assert_eq!(report.initiator.digests_sent, 0);
    assert!(report.bytes_exchanged() < 64, "{report:?}");
}

#[test]
fn one_differing_key_streams_exactly_that_key() {
    // Depth 4 over 500 keys: ~31 keys share the differing leaf, yet only one is streamed.
    let mut a = replica_with(500, 4);
    let mut b = replica_with(500, 4);
    b.put(&key(42), put(2, b"newer")).unwrap();
    let report = sync_pair(&mut a, &mut b).unwrap();
    assert_eq!(report.keys_streamed(), 1);
    assert_eq!(report.initiator.leaves_differing, 1);
    // Two nodes per level below the root, and the root.
    assert_eq!(report.initiator.nodes_compared, 1 + 2 * 4);
    assert_eq!(a.get(&key(42)), Some(&put(2, b"newer")));
    assert_eq!(a.to_map(), b.to_map());
    assert_eq!(a.tree(), b.tree());
}

#[test]
fn tombstone_beats_an_older_value_on_both_sides() {
    for initiator_has_tombstone in [true, false] {
        let mut a = replica_with(50, 5);
        let mut b = replica_with(50, 5);
        let (deleter, stale) = if initiator_has_tombstone {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        deleter.put(&key(7), Cell::tombstone(v(5))).unwrap();
        stale.put(&key(7), put(3, b"stale")).unwrap();
        sync_pair(&mut a, &mut b).unwrap();
        assert_eq!(a.get(&key(7)), Some(&Cell::tombstone(v(5))));
        assert_eq!(b.get(&key(7)), Some(&Cell::tombstone(v(5))));
        // A second session has nothing to do: the deleted key did not come back.
        let again = sync_pair(&mut a, &mut b).unwrap();
        assert_eq!(again.keys_streamed(), 0);
    }
}

#[test]
fn newer_value_beats_an_older_tombstone() {
    let mut a = replica_with(50, 5);
    let mut b = replica_with(50, 5);
    a.put(&key(7), Cell::tombstone(v(5))).unwrap();
    b.put(&key(7), put(6, b"rewritten")).unwrap();
    sync_pair(&mut a, &mut b).unwrap();
    assert_eq!(a.get(&key(7)), Some(&put(6, b"rewritten")));
    assert_eq!(b.get(&key(7)), Some(&put(6, b"rewritten")));
}

#[test]
fn empty_replica_receives_everything_without_digests() {
    let mut a = replica_with(300, 3);
    let mut b = Replica::new(full(), 3).unwrap();
    let report = sync_pair(&mut a, &mut b).unwrap();
    assert_eq!(report.keys_streamed(), 300);
    assert_eq!(report.initiator.digests_sent, 0);
    assert_eq!(a.to_map(), b.to_map());
    // And the other way round: the empty side sends empty digests and receives everything.
    let mut c = Replica::new(full(), 3).unwrap();
    let report = sync_pair(&mut c, &mut a).unwrap();
    assert_eq!(report.keys_streamed(), 300, "{report:?}");
    assert!(c.to_map() == a.to_map(), "{report:?}");
}

#[test]
fn large_leaves_are_split_into_bounded_messages() {
    // One leaf (depth 0) holding 2,000 entries of 1 KiB: several digest and entry chunks.
    let big = vec![7u8; 1024];
    let a_entries = (0..2000).map(|i| (key(i), put(2, &big)));
    let b_entries = (0..2000).map(|i| (key(i), put(1 + u64::from(i % 2), &big)));
    let mut a = Replica::from_entries(full(), 0, a_entries).unwrap();
    let mut b = Replica::from_entries(full(), 0, b_entries).unwrap();
    let report = sync_pair(&mut a, &mut b).unwrap();
    assert_eq!(report.keys_streamed(), 1000);
    assert!(report.messages() > 20, "{report:?}");
    assert_eq!(a.to_map(), b.to_map());
}

#[test]
fn wrap_around_range_repairs_only_its_keys() {
    let range = Range::new(Token(u64::MAX / 4 * 3), Token(u64::MAX / 4));
    let in_range: Vec<Vec<u8>> = (0..400)
        .map(key)
        .filter(|k| range.contains(key_token(k)))
        .collect();
    assert!(in_range.len() > 100);
    let a_entries = in_range.iter().map(|k| (k.clone(), put(1, b"a")));
    let b_entries = in_range
        .iter()
        .step_by(3)
        .map(|k| (k.clone(), put(2, b"b")));
    let mut a = Replica::from_entries(range, 6, a_entries).unwrap();
    let mut b = Replica::from_entries(range, 6, b_entries).unwrap();
    let want = lww_merge(&a.to_map(), &b.to_map());
    sync_pair(&mut a, &mut b).unwrap();
    assert_eq!(a.to_map(), want);
    assert_eq!(b.to_map(), want);
    assert_eq!(
        b.put(&key(0), put(9, b"x")).is_err(),
        !range.contains(key_token(&key(0)))
    );
}

#[test]
fn bench_on_a_small_size_streams_only_the_differing_keys() {
    let (mut a, mut b) = bench_replicas(20_000, 10, 12).unwrap();
    let report = bench_bytes(&mut a, &mut b, 10).unwrap();
    assert_eq!(report.sync.keys_streamed(), 10);
    assert!(report.ratio() < 0.01, "{report:?}");
    assert_eq!(a.to_map(), b.to_map());
}

#[test]
fn responder_aborts_on_a_bad_request() {
    let tree = MerkleTree::new(full(), 3).unwrap();
    let bad = [
        AeMsg::Request {
            range: full(),
            depth: 3,
            level: 2,
            indexes: vec![4],
        },
        AeMsg::Request {
            range: full(),
            depth: 5,
            level: 0,
            indexes: vec![0],
        },
        AeMsg::Digests {
            range: full(),
            leaf: 8,
            digests: vec![],
            more: false,
        },
        AeMsg::Hashes {
            range: full(),
            level: 0,
            hashes: vec![],
        },
        AeMsg::Done {
            range: Range::full(Token(1)),
            entries: 0,
        },
    ];
    for msg in bad {
        let mut s = Session::respond(&tree);
        let out = s.handle(&tree, msg.clone());
        assert!(
            out.iter()
                .any(|o| matches!(o, AeOutput::Failed(AeError::Protocol(_)))),
            "{msg:?} gave {out:?}"
        );
        assert!(
            out.iter()
                .any(|o| matches!(o, AeOutput::Send(AeMsg::Abort { .. }))),
            "{msg:?}"
        );
        assert!(s.is_over() && !s.is_finished());
        assert!(
            s.handle(&tree, msg).is_empty(),
            "an ended session ignores input"
        );
    }
}

#[test]
fn initiator_rejects_entries_outside_the_leaf() {
    let tree = MerkleTree::new(full(), 0).unwrap();
    let (mut s, _) = Session::initiate(&tree);
    let out = s.handle(
        &tree,
        AeMsg::Repair {
            range: full(),
            leaf: 0,
            entries: vec![(b"k".to_vec(), put(1, b"x"))],
            want: vec![],
            more: false,
        },
    );
    assert!(
        out.iter().any(|o| matches!(o, AeOutput::Failed(_))),
        "{out:?}"
    );
}

fn arb_range() -> impl Strategy<Value = Range> {
    prop_oneof![
        Just(full()),
        (any::<u64>(), any::<u64>()).prop_map(|(s, e)| Range::new(Token(s), Token(e))),
    ]
}

/// A replica's entries: key index → (version, tombstone?).
fn arb_side() -> impl Strategy<Value = BTreeMap<u16, (u64, bool)>> {
    prop::collection::btree_map(0u16..300, (1u64..6, any::<bool>()), 0..200)
}

fn side_entries(range: Range, side: &BTreeMap<u16, (u64, bool)>) -> Vec<(Vec<u8>, Cell)> {
    side.iter()
        .map(|(&i, &(ts, tomb))| {
            let k = key(u32::from(i));
            // Different sides may give one version different contents only if the version
            // differs: mix the node id in so equal versions are equal writes.
            let version = Version {
                ts_micros: ts,
                node: NodeId(u32::from(tomb)),
            };
            let cell = if tomb {
                Cell::tombstone(version)
            } else {
                Cell::put(version, format!("v{ts}").into_bytes())
            };
            (k, cell)
        })
        .filter(|(k, _)| range.contains(key_token(k)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_two_replicas_converge_to_their_lww_merge(
        range in arb_range(),
        depth in 0u8..9,
        a_side in arb_side(),
        b_side in arb_side(),
    ) {
        let mut a = Replica::from_entries(range, depth, side_entries(range, &a_side)).unwrap();
        let mut b = Replica::from_entries(range, depth, side_entries(range, &b_side)).unwrap();
        let want = lww_merge(&a.to_map(), &b.to_map());
        let report = sync_pair(&mut a, &mut b).unwrap();
        prop_assert_eq!(a.to_map(), want.clone());
        prop_assert_eq!(b.to_map(), want);
        prop_assert_eq!(a.tree(), b.tree());
        // Only keys that differed travelled.
        let differing = a_side.len() + b_side.len();
        prop_assert!(report.keys_streamed() as usize <= differing);
        let again = sync_pair(&mut a, &mut b).unwrap();
        prop_assert_eq!(again.messages(), 3);
    }

    #[test]
    fn incremental_trees_equal_trees_built_from_scratch(
        range in arb_range(),
        depth in 0u8..9,
        writes in prop::collection::vec((0u16..100, 1u64..20, any::<bool>()), 0..300),
    ) {
        let mut replica = Replica::new(range, depth).unwrap();
        for (i, ts, tomb) in writes {
            let k = key(u32::from(i));
            if !range.contains(key_token(&k)) {
                prop_assert!(replica.put(&k, put(ts, b"x")).is_err());
                continue;
            }
            let version = Version { ts_micros: ts, node: NodeId(u32::from(tomb)) };
            let cell = if tomb { Cell::tombstone(version) } else { Cell::put(version, vec![ts as u8]) };
            replica.put(&k, cell).unwrap();
        }
        let rebuilt = MerkleTree::build(range, depth, replica.to_map()).unwrap();
        prop_assert_eq!(replica.tree(), &rebuilt);
        prop_assert_eq!(rebuilt.stats().entries, replica.len() as u64);
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        // Whatever decodes is answered without a panic, too.
        if let Ok(msg) = postcard::from_bytes::<AeMsg>(&bytes) {
            let tree = MerkleTree::new(full(), 4).unwrap();
            let mut r = Session::respond(&tree);
            let _ = r.handle(&tree, msg.clone());
            let (mut i, _) = Session::initiate(&tree);
            let _ = i.handle(&tree, msg);
        }
    }
}

/// The initiator sends its last `Entries` and `Done` together; the network may deliver `Done`
/// first. The responder must still apply the entries, and finish only once they are in.
#[test]
fn entries_overtaken_by_done_are_still_applied() {
    let mut a = replica_with(200, 4);
    let mut b = replica_with(200, 4);
    a.put(&key(7), Cell::tombstone(v(9))).unwrap();
    let (mut sa, first) = Session::initiate(a.tree());
    let mut sb = Session::respond(b.tree());
    let mut to_a: VecDeque<AeMsg> = VecDeque::new();
    let mut to_b: VecDeque<AeMsg> = first
        .into_iter()
        .filter_map(|o| match o {
            AeOutput::Send(m) => Some(m),
            _ => None,
        })
        .collect();
    let mut reordered = false;
    for _ in 0..1_000 {
        // Done overtakes any Entries queued before it.
        if let Some(done) = to_b.iter().position(|m| matches!(m, AeMsg::Done { .. }))
            && to_b.iter().any(|m| matches!(m, AeMsg::Entries { .. }))
            && done > 0
        {
            let msg = to_b.remove(done).unwrap();
            to_b.push_front(msg);
            reordered = true;
        }
        let (outputs, side_a) = if let Some(m) = to_b.pop_front() {
            let was_done = matches!(m, AeMsg::Done { .. });
            let out = sb.handle(b.tree(), m);
            if was_done && reordered {
                assert!(!sb.is_finished(), "finished before its entries arrived");
            }
            (out, false)
        } else if let Some(m) = to_a.pop_front() {
            (sa.handle(a.tree(), m), true)
        } else {
            break;
        };
        let mut work: VecDeque<AeOutput> = outputs.into();
        while let Some(o) = work.pop_front() {
            let (replica, session, outbox) = if side_a {
                (&mut a, &mut sa, &mut to_b)
            } else {
                (&mut b, &mut sb, &mut to_a)
            };
            match o {
                AeOutput::Send(m) => outbox.push_back(m),
                AeOutput::LoadLeaf { leaf, range } => {
                    let entries = replica.entries_in(range);
                    work.extend(session.leaf_loaded(replica.tree(), leaf, entries));
                }
                AeOutput::Apply { key, cell } => {
                    replica.put(&key, cell).unwrap();
                }
                AeOutput::Finished(_) => {}
                AeOutput::Failed(e) => panic!("{e}"),
            }
        }
    }
    assert!(reordered, "the test never put Done before Entries");
    assert!(sa.is_finished() && sb.is_finished());
    assert_eq!(b.get(&key(7)), Some(&Cell::tombstone(v(9))));
    assert_eq!(a.to_map(), b.to_map());
}
