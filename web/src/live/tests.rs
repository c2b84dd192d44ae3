//! The live source on the host, no sockets: frames built with the core's codec are fed as the
//! page's sockets would deliver them, at chosen real times.

use super::*;
use crate::view::{Status, ViewModel};
use ringstore_core::membership::{MemberStatus, Verdict};
use ringstore_core::node::{AntiEntropyStats, ClientOp, Lifecycle};
use ringstore_core::storage::LsmStats;
use ringstore_core::ui::{
    Answer, Command, CommandError, DropCause, ErrorCode, Member, ToNode, UPDATE_MS,
};
use ringstore_core::wire::MessageKind;

const A1: &str = "127.0.0.1:7001";
const A2: &str = "127.0.0.1:7002";
const A3: &str = "127.0.0.1:7003";

fn addr(id: u32) -> String {
    format!("127.0.0.1:700{id}")
}

fn member(id: u32, verdict: Verdict, phi: Option<f64>) -> Member {
    Member {
        id: NodeId(id),
        address: addr(id),
        verdict,
        status: MemberStatus::Alive,
        phi,
        in_ring: true,
        tokens: 2,
        primary_share: 0.33,
        replica_share: 1.0,
        partitioned: false,
    }
}

fn state(me: u32, now_ms: u64, others: &[(u32, Verdict, Option<f64>)]) -> NodeState {
    let mut members = vec![member(me, Verdict::Alive, None)];
    members.extend(others.iter().map(|&(id, v, phi)| member(id, v, phi)));
    members.sort_by_key(|m| m.id);
    NodeState {
        now_ms,
        lifecycle: Lifecycle::Normal,
        skew_ms: 0,
        n: 3,
        w: 2,
        r: 2,
        members,
        hints_held: vec![],
        in_flight: 0,
        anti_entropy: AntiEntropyStats::default(),
        data: LsmStats {
            last_lsn: 5,
            wal_bytes: 100 * u64::from(me),
            ..LsmStats::default()
        },
        hints: LsmStats::default(),
    }
}

fn ring3() -> Vec<RingToken> {
    vec![
        (10, NodeId(1)),
        (20, NodeId(2)),
        (30, NodeId(3)),
        (1 << 62, NodeId(1)),
        (1 << 63, NodeId(2)),
        (u64::MAX - 5, NodeId(3)),
    ]
}

fn snapshot(me: u32, faults: bool, st: NodeState, ring: Vec<RingToken>) -> Vec<u8> {
    ToPage::Snapshot(Box::new(Snapshot {
        hello: Hello {
            node: NodeId(me),
            address: addr(me),
            generation: 1_000 + u64::from(me),
            fault_injection: faults,
            value_bytes_max: 1 << 20,
            update_ms: UPDATE_MS,
        },
        state: st,
        ring,
    }))
    .encode()
    .unwrap()
}

fn update(st: NodeState, messages: Vec<MessageSeen>, aggregated: Vec<Aggregate>) -> Vec<u8> {
    ToPage::Update(Box::new(Update {
        state: st,
        ring: None,
        messages,
        aggregated,
        events: vec![],
        lost: Lost::default(),
    }))
    .encode()
    .unwrap()
}

fn all_alive(me: u32) -> Vec<(u32, Verdict, Option<f64>)> {
    (1..=3)
        .filter(|i| *i != me)
        .map(|i| (i, Verdict::Alive, Some(0.5)))
        .collect()
}

/// A page connected to three healthy nodes at real time 1,000 ms.
fn three(faults: bool) -> Live {
    let mut live = Live::new(A1.into(), 0.0);
    live.opened(A1, 10.0);
    live.feed(
        A1,
        &snapshot(1, faults, state(1, 50_000, &all_alive(1)), ring3()),
        20.0,
    )
    .unwrap();
    // The seed's membership names the others: the page dials them.
    assert_eq!(live.wanted(), vec![A1.to_string(), A2.into(), A3.into()]);
    for id in [2, 3] {
        live.opened(&addr(id), 30.0);
        let s = snapshot(id, faults, state(id, 50_000, &all_alive(id)), ring3());
        live.feed(&addr(id), &s, 40.0).unwrap();
    }
    live
}

fn model(live: &mut Live, real_ms: f64) -> ViewModel {
    let mut m = ViewModel::default();
    live.fill(&mut m, real_ms);
    m
}

#[test]
fn three_connected_nodes_fill_the_same_view_model_as_the_simulator() {
    let mut live = three(true);
    let m = model(&mut live, 100.0);
    assert_eq!(
        m.nodes.iter().map(|n| n.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(
        m.nodes.iter().all(|n| n.status == Status::Up),
        "{:?}",
        m.nodes
    );
    assert!(
        m.nodes
            .iter()
            .all(|n| n.seen.alive == 2 && n.seen.consensus() == "alive")
    );
    assert_eq!(m.ring.len(), 6);
    assert_eq!((m.n, m.w, m.r), (3, 2, 2));
    assert!(m.gossip);
    // The centre shows the cluster's time of day (node clock 50,000 ms at real 40 ms; the
    // picture runs PLAYBACK_MS behind).
    assert_eq!(m.clock.as_deref(), Some("00:00:49.6 UTC"));
    assert_eq!(m.node(2).unwrap().storage.as_ref().unwrap().wal_bytes, 200);
    assert_eq!(live.wanted().len(), 3, "no second socket to a reached node");
    let d = live.node_detail(3, 100.0);
    assert!(d.up);
    assert_eq!(d.opinions.len(), 2);
    assert_eq!(d.tokens.len(), 2);
}

#[test]
fn a_closed_socket_shows_its_node_down_at_once_and_a_silent_one_within_three_updates() {
    let mut live = three(false);
    live.closed(A3, "connection refused", 500.0);
    let m = model(&mut live, 510.0);
    assert_eq!(m.node(3).unwrap().status, Status::Down);
    assert_eq!(m.node(2).unwrap().status, Status::Up);
    // Its last storage stays on show.
    assert!(m.node(3).unwrap().storage.is_some());
    let (_, lines) = live.log_since(0, &crate::logview::Filter::default());
    assert!(
        lines
            .iter()
            .any(|l| l.text.contains("n3 unreachable") && l.text.contains("connection refused"))
    );
    // n2 stays open but goes quiet while n1 keeps talking.
    for t in [300.0, 550.0, 800.0, 1_050.0] {
        live.feed(
            A1,
            &update(state(1, 50_000 + t as u64, &all_alive(1)), vec![], vec![]),
            t,
        )
        .unwrap();
    }
    assert_eq!(live.status(2, 40.0 + STALE_MS - 1.0), Status::Up);
    let m = model(&mut live, 40.0 + STALE_MS + 1.0);
    assert_eq!(m.node(2).unwrap().status, Status::Down);
    assert_eq!(m.node(1).unwrap().status, Status::Up);
    // A node that cannot see itself is not an observer: n2's opinions no longer count.
    assert_eq!(live.opinions(3, 40.0 + STALE_MS + 1.0).len(), 1);
}

#[test]
fn opinions_merge_per_observer_with_the_worst_credible_verdict_and_the_highest_phi() {
    let mut live = three(false);
    live.feed(
        A1,
        &update(
            state(
                1,
                50_250,
                &[
                    (2, Verdict::Alive, Some(0.3)),
                    (3, Verdict::Suspect, Some(9.5)),
                ],
            ),
            vec![],
            vec![],
        ),
        290.0,
    )
    .unwrap();
    let m = model(&mut live, 300.0);
    let n3 = m.node(3).unwrap();
    assert_eq!((n3.seen.alive, n3.seen.suspect, n3.seen.dead), (1, 1, 0));
    assert_eq!(n3.seen.phi_max, Some(9.5));
    assert_eq!(n3.seen.consensus(), "doubted");
    let ops = live.opinions(3, 300.0);
    assert!(
        ops.iter()
            .any(|o| o.observer == 1 && o.verdict == "suspect")
    );
    assert!(ops.iter().any(|o| o.observer == 2 && o.verdict == "alive"));
}

#[test]
fn the_ring_is_the_one_most_fresh_nodes_route_by_and_on_a_tie_the_larger() {
    let mut live = three(false);
    let mut four = ring3();
    four.push((40, NodeId(4)));
    four.sort();
    let mut u = Update {
        state: state(1, 50_250, &all_alive(1)),
        ring: Some(four.clone()),
        messages: vec![],
        aggregated: vec![],
        events: vec![],
        lost: Lost::default(),
    };
    live.feed(
        A1,
        &ToPage::Update(Box::new(u.clone())).encode().unwrap(),
        100.0,
    )
    .unwrap();
    assert_eq!(
        live.ring(110.0).unwrap().0.len(),
        6,
        "two of three still route by the old ring"
    );
    u.state = state(2, 50_250, &all_alive(2));
    live.feed(A2, &ToPage::Update(Box::new(u)).encode().unwrap(), 120.0)
        .unwrap();
    assert_eq!(live.ring(130.0).unwrap().0, four.as_slice());
    // A tie (n3 gone quiet: one ring each among... ) still prefers the newer, larger ring.
    live.closed(A1, "", 140.0);
    assert_eq!(live.ring(150.0).unwrap().0, four.as_slice());
}

#[test]
fn partitioned_members_show_as_cut_links_both_ways() {
    let mut live = three(true);
    let mut s = state(1, 50_250, &all_alive(1));
    for m in s.members.iter_mut().filter(|m| m.id.0 == 3) {
        m.partitioned = true;
    }
    live.feed(A1, &update(s, vec![], vec![]), 100.0).unwrap();
    let m = model(&mut live, 110.0);
    assert_eq!(m.cut, vec![(1, 3), (3, 1)]);
}

#[test]
fn messages_are_one_dot_each_and_aggregates_a_few_with_their_true_rate_counted() {
    let mut live = three(false);
    let seen = |direction, peer: u32, dropped| MessageSeen {
        at_ms: 50_100,
        direction,
        peer: NodeId(peer),
        kind: MessageKind::Write,
        label: "Put user123=Alice".into(),
        dropped,
    };
    // n1 sent to n2 (n2 reports receiving it: drawn once), and a drop to n3.
    let from_n1 = vec![
        seen(Direction::Sent, 2, None),
        seen(Direction::Sent, 3, Some(DropCause::Partition)),
    ];
    live.feed(
        A1,
        &update(state(1, 50_250, &all_alive(1)), from_n1, vec![]),
        300.0,
    )
    .unwrap();
    live.feed(
        A2,
        &update(
            state(2, 50_250, &all_alive(2)),
            vec![seen(Direction::Received, 1, None)],
            vec![],
        ),
        300.0,
    )
    .unwrap();
    // n3 aggregated 500 gossip messages to n1 in the interval.
    let agg = Aggregate {
        peer: NodeId(1),
        kind: MessageKind::Gossip,
        sent: 500,
        received: 0,
        dropped: 0,
    };
    live.feed(
        A3,
        &update(state(3, 50_250, &all_alive(3)), vec![], vec![agg]),
        300.0,
    )
    .unwrap();
    // The n1 → n2 write left at n1's 50,100 ms, that is page time 300 - 150 = 150.
    let m = model(&mut live, 150.0 + PLAYBACK_MS + 10.0);
    let died = m
        .effects
        .iter()
        .any(|e| e.kind == EffectKind::Death && e.node == 3 && e.from == 1);
    assert!(died, "the dropped message dies visibly: {:?}", m.effects);
    let writes: Vec<_> = m
        .messages
        .iter()
        .filter(|d| d.kind == MessageKind::Write)
        .collect();
    assert_eq!(writes.len(), 1, "{:?}", m.messages);
    assert_eq!((writes[0].from, writes[0].to), (1, 2));
    let mut all = Vec::new();
    for t in (0..40).map(|i| 300.0 + f64::from(i) * 20.0) {
        let m = model(&mut live, t);
        all.extend(
            m.messages
                .iter()
                .filter(|d| d.kind == MessageKind::Gossip)
                .map(|d| d.id),
        );
    }
    all.sort();
    all.dedup();
    assert_eq!(
        all.len() as u64,
        DOTS_PER_AGGREGATE,
        "representative dots only"
    );
    let t = live.traffic(310.0);
    assert_eq!(
        t[0],
        (
            3,
            1,
            MessageKind::Gossip,
            500.0 * 1000.0 / RATE_WINDOW_MS,
            500
        )
    );
    assert!(
        t.iter()
            .any(|l| (l.0, l.1, l.2, l.4) == (1, 2, MessageKind::Write, 1))
    );
    assert!(
        !t.iter().any(|l| (l.0, l.1) == (2, 1)),
        "a received message is not counted twice"
    );
    // Dots are bounded however much arrives.
    for i in 0..(DOTS_MAX + 100) {
        live.push_dot(1, 2, MessageKind::Read, i as f64);
    }
    assert!(live.dots.len() <= DOTS_MAX);
}

#[test]
fn client_commands_go_to_their_coordinator_and_each_gets_one_outcome() {
    let mut live = three(false);
    let op = live
        .client(2, "put", "user123", "Alice", "quorum", 100.0)
        .unwrap();
    let out = live.take_outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, A2);
    let ToNode::Command { id, command } = ToNode::decode(&out[0].1).unwrap();
    assert_eq!(
        command,
        Command::Client(ClientOp::Put {
            key: b"user123".to_vec(),
            value: b"Alice".to_vec(),
            consistency: Some(ringstore_core::node::Consistency::Quorum),
        })
    );
    assert_eq!(live.result_of(op), None);
    let reply = ToPage::Reply {
        id,
        result: Ok(Answer::Written {
            ts_micros: 1_764_631_234_567_890,
            writer: NodeId(2),
            acks: 3,
            hinted: 0,
        }),
    };
    live.feed(A2, &reply.encode().unwrap(), 120.0).unwrap();
    let r = live.result_of(op).unwrap();
    assert!(r.starts_with("ok acks=3 ts=1764631234567890"), "{r}");
    assert!(r.contains("23:20:34.567 UTC"), "{r}");
    // An error reply reads as one.
    let op2 = live.client(1, "get", "user123", "", "all", 130.0).unwrap();
    let ToNode::Command { id, .. } = ToNode::decode(&live.take_outbox()[0].1).unwrap();
    let err = ToPage::Reply {
        id,
        result: Err(CommandError::new(
            ErrorCode::QuorumUnavailable { needed: 3, got: 2 },
            "2 of 3 replicas answered",
        )),
    };
    live.feed(A1, &err.encode().unwrap(), 140.0).unwrap();
    assert_eq!(
        live.result_of(op2).unwrap(),
        "error: quorum_unavailable: 2 of 3 replicas answered"
    );
    // A closed connection fails what waits on it; an unreachable node refuses at once.
    let op3 = live.client(3, "delete", "user123", "", "", 150.0).unwrap();
    live.closed(A3, "", 160.0);
    assert!(
        live.result_of(op3)
            .unwrap()
            .starts_with("error: unavailable")
    );
    assert!(
        live.client(3, "get", "k", "", "", 170.0)
            .unwrap_err()
            .contains("not connected")
    );
    assert!(live.client(1, "get", "", "", "", 170.0).is_err());
    assert!(live.client(1, "get", "k", "", "most", 170.0).is_err());
    assert!(live.client(1, "patch", "k", "", "", 170.0).is_err());
    // No more than the protocol allows in flight to one node, and silence times out.
    for _ in 0..ringstore_core::ui::COMMANDS_IN_FLIGHT_MAX {
        live.client(1, "get", "k", "", "", 200.0).unwrap();
    }
    assert!(
        live.client(1, "get", "k", "", "", 200.0)
            .unwrap_err()
            .starts_with("overloaded")
    );
    live.expire_commands(200.0 + commands::COMMAND_TIMEOUT_MS + 1.0);
    assert!(live.pending.is_empty());
    assert!(live.client(1, "get", "k", "", "", 20_000.0).is_ok());
    // A value over the frame bound is refused before it leaves.
    let big = "x".repeat(ringstore_core::ui::TO_NODE_BYTES_MAX + 1);
    assert!(
        live.client(1, "put", "k", &big, "", 20_000.0)
            .unwrap_err()
            .starts_with("too_large")
    );
}

#[test]
fn faults_go_to_each_side_only_where_injection_is_allowed() {
    let mut off = three(false);
    let e = off.partition(&[1], &[2, 3], 100.0).unwrap_err();
    assert!(e.contains("--allow-fault-injection"), "{e}");
    assert!(off.set_skew(1, 50, 100.0).is_err());
    assert!(off.take_outbox().is_empty());

    let mut live = three(true);
    assert_eq!(live.partition(&[1], &[2, 3], 100.0).unwrap(), 3);
    let mut sent: Vec<(String, Vec<NodeId>)> = live
        .take_outbox()
        .into_iter()
        .map(|(a, bytes)| match ToNode::decode(&bytes).unwrap() {
            ToNode::Command {
                command: Command::Partition { peers },
                ..
            } => (a, peers),
            other => panic!("{other:?}"),
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        vec![
            (A1.to_string(), vec![NodeId(2), NodeId(3)]),
            (A2.to_string(), vec![NodeId(1)]),
            (A3.to_string(), vec![NodeId(1)]),
        ]
    );
    assert!(live.partition(&[], &[1], 100.0).is_err());
    // An unreachable node is not told; the others still cut it off.
    live.closed(A3, "", 105.0);
    assert_eq!(live.partition(&[3], &[1, 2], 105.0).unwrap(), 2);
    let out = live.take_outbox();
    assert!(out.iter().all(|(a, _)| a != A3));
    assert_eq!(
        live.heal(110.0).unwrap(),
        2,
        "heal goes to every reachable node"
    );
    assert_eq!(live.take_outbox().len(), 2);
    // A fast slider: one skew in flight, then only the newest value.
    live.set_skew(2, 10, 120.0).unwrap();
    live.set_skew(2, 20, 121.0).unwrap();
    live.set_skew(2, 30, 122.0).unwrap();
    let out = live.take_outbox();
    assert_eq!(out.len(), 1);
    let ToNode::Command { id, .. } = ToNode::decode(&out[0].1).unwrap();
    let ok = ToPage::Reply {
        id,
        result: Ok(Answer::Faults {
            partitioned: vec![],
            clock_skew_ms: 10,
        }),
    };
    live.feed(A2, &ok.encode().unwrap(), 130.0).unwrap();
    let out = live.take_outbox();
    assert_eq!(out.len(), 1);
    assert!(matches!(
        ToNode::decode(&out[0].1).unwrap(),
        ToNode::Command {
            command: Command::ClockSkew { ms: 30 },
            ..
        }
    ));
    // A refused fault command becomes a notice.
    let ToNode::Command { id, .. } = ToNode::decode(&out[0].1).unwrap();
    let no = ToPage::Reply {
        id,
        result: Err(CommandError::new(ErrorCode::FaultInjectionOff, "off")),
    };
    live.feed(A2, &no.encode().unwrap(), 140.0).unwrap();
    assert!(
        live.take_notices()
            .iter()
            .any(|n| n.contains("fault_injection_off"))
    );
}

#[test]
fn bad_frames_are_counted_and_change_nothing() {
    let mut live = three(false);
    let before = model(&mut live, 100.0);
    let mut frame = update(state(1, 50_250, &[]), vec![], vec![]);
    let last = frame.len() - 1;
    frame[last] ^= 0xff;
    assert!(
        live.feed(A1, &frame, 100.0)
            .unwrap_err()
            .contains("checksum")
    );
    assert!(live.feed(A1, b"RU", 100.0).is_err());
    assert!(live.feed(A1, &[0u8; 64], 100.0).is_err());
    // A frame meant for a node, sent to the page.
    let wrong = ToNode::Command {
        id: 1,
        command: Command::Heal,
    }
    .encode()
    .unwrap();
    assert!(live.feed(A1, &wrong, 100.0).is_err());
    assert_eq!(live.conns[A1].bad_frames, 4);
    assert_eq!(model(&mut live, 100.0).nodes, before.nodes);
}

#[test]
fn addresses_are_checked_with_clear_errors() {
    assert_eq!(parse_address("127.0.0.1:7001").unwrap(), "127.0.0.1:7001");
    assert_eq!(
        parse_address(" http://localhost:7001/ ").unwrap(),
        "localhost:7001"
    );
    assert_eq!(parse_address("ws://h:1/ws/ui").unwrap(), "h:1");
    assert_eq!(parse_address("[::1]:7001").unwrap(), "[::1]:7001");
    assert!(parse_address("").unwrap_err().0.contains("e.g."));
    assert!(
        parse_address("localhost")
            .unwrap_err()
            .0
            .contains("no port")
    );
    assert!(
        parse_address("h:99999")
            .unwrap_err()
            .0
            .contains("not a port")
    );
    assert!(parse_address("h:0").is_err());
    assert!(parse_address("ftp://h:1").unwrap_err().0.contains("ftp"));
    assert!(parse_address("a b:1").is_err());
}

#[test]
fn the_what_if_copy_has_the_live_members_ring_and_quorums() {
    let live = three(false);
    let w = live.what_if(100.0).unwrap();
    assert_eq!(w.config.nodes, 3);
    assert_eq!((w.config.n, w.config.w, w.config.r), (3, 2, 2));
    let tokens = w.config.tokens.clone().unwrap();
    let mut flat: Vec<(u64, u32)> = tokens
        .iter()
        .flat_map(|(n, ts)| ts.iter().map(move |t| (t.0, n.0)))
        .collect();
    flat.sort();
    let live_ring: Vec<(u64, u32)> = ring3().iter().map(|(t, n)| (*t, n.0)).collect();
    assert_eq!(flat, live_ring);
    assert!(
        w.description
            .contains("simulation of the live cluster at 127.0.0.1:7001")
    );
    // It builds and runs.
    let mut c = what_if::build(w.config).unwrap();
    c.run_for(500);
    let ring: Vec<(u64, u32)> = c
        .sim()
        .ring()
        .tokens()
        .iter()
        .map(|(t, n)| (t.0, n.0))
        .collect();
    assert_eq!(ring, live_ring);
    assert!(
        Live::new(A1.into(), 0.0).what_if(0.0).is_err(),
        "nothing to copy before a snapshot"
    );
}

#[test]
fn events_and_storage_work_reach_the_log_and_the_animations() {
    let mut live = three(false);
    let mut s = state(2, 50_250, &all_alive(2));
    s.data.last_lsn = 9;
    s.data.flushes = 1;
    let u = Update {
        state: s,
        ring: None,
        messages: vec![],
        aggregated: vec![],
        events: vec![(
            50_200,
            ringstore_core::node::NodeEvent::RingChanged { nodes: 3 },
        )],
        lost: Lost {
            events: 3,
            messages: 10,
            updates: 1,
        },
    };
    live.feed(A2, &ToPage::Update(Box::new(u)).encode().unwrap(), 300.0)
        .unwrap();
    assert_eq!(live.conns[A2].lost.messages, 10);
    let (_, lines) = live.log_since(0, &crate::logview::Filter::default());
    assert!(
        lines
            .iter()
            .any(|l| l.class == "protocol" && l.text.starts_with("n2 ")),
        "{lines:?}"
    );
    let mut kinds = Vec::new();
    for t in [300.0, 400.0, 500.0, 600.0] {
        kinds.extend(model(&mut live, t).effects.iter().map(|e| (e.kind, e.node)));
    }
    assert!(kinds.contains(&(EffectKind::Wal, 2)));
    assert!(kinds.contains(&(EffectKind::Flush, 2)));
}

#[test]
fn a_snapshot_from_a_second_name_for_a_reached_node_is_a_duplicate() {
    let mut live = three(false);
    live.opened("localhost:7001", 100.0);
    live.feed(
        "localhost:7001",
        &snapshot(1, false, state(1, 50_000, &all_alive(1)), ring3()),
        110.0,
    )
    .unwrap();
    assert!(live.conns["localhost:7001"].duplicate);
    assert!(!live.wanted().contains(&"localhost:7001".to_string()));
    assert_eq!(model(&mut live, 120.0).nodes.len(), 3);
}
