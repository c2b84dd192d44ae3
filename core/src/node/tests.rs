//! Table-driven tests of the node's pure decisions, and of single request flows driven by hand
//! (no simulator): quorum levels, replica choice with stand-ins, LWW resolution, early failure.

use super::*;
use crate::ring::{Range, Ring, Token, key_token};
use crate::storage::Version;
use crate::wire::{Message, ReqId};

fn v(ts: u64, node: u32) -> Version {
    Version {
        ts_micros: ts,
        node: NodeId(node),
    }
}

/// The design notes' ring: n1..n5 with one token each, user123 just before n3.
fn notes_ring() -> Ring {
    let anchor = key_token(b"user123").0.wrapping_add(1);
    let step = u64::MAX / 5;
    Ring::new((1..=5u32).map(|i| {
        let offset = (i64::from(i) - 3) as u64;
        (
            NodeId(i),
            vec![Token(anchor.wrapping_add(offset.wrapping_mul(step)))],
        )
    }))
}

fn config(id: u32) -> NodeConfig {
    NodeConfig::new(NodeId(id), 3, 2, 2).unwrap()
}

fn node(id: u32) -> Node {
    Node::new(config(id), notes_ring(), Millis(100)).unwrap().0
}

#[test]
fn consistency_levels_resolve_against_n() {
    let cases = [
        (Consistency::One, 3, Ok(1)),
        (Consistency::Quorum, 3, Ok(2)),
        (Consistency::Quorum, 5, Ok(3)),
        (Consistency::Quorum, 4, Ok(3)),
        (Consistency::All, 3, Ok(3)),
        (Consistency::Count(2), 3, Ok(2)),
    ];
    for (level, n, want) in cases {
        assert_eq!(level.required(n), want, "{level} with N={n}");
    }
    assert!(matches!(
        Consistency::Count(0).required(3),
        Err(ClientError::BadRequest(_))
    ));
    assert!(matches!(
        Consistency::Count(4).required(3),
        Err(ClientError::BadRequest(_))
    ));
}

#[test]
fn lww_picks_the_greatest_timestamp_then_node() {
    let replies = [
        Some(Cell::put(v(100, 1), b"Alice".to_vec())),
        Some(Cell::put(v(90, 9), b"old".to_vec())),
        None,
        Some(Cell::put(v(100, 2), b"tie, higher node".to_vec())),
    ];
    assert_eq!(resolve_lww(replies.iter()).unwrap().version, v(100, 2));
    assert_eq!(resolve_lww([None, None].iter()), None);
}

#[test]
fn write_targets_replace_down_replicas_with_the_next_healthy_nodes() {
    let mut b = node(2);
    let (preference, targets) = b.write_targets(b"user123");
    assert_eq!(preference, vec![NodeId(3), NodeId(4), NodeId(5)]);
    assert_eq!(
        targets,
        vec![(NodeId(3), None), (NodeId(4), None), (NodeId(5), None)]
    );
    b.handle(
        Millis(100),
        Input::PeerStatus {
            node: NodeId(5),
            up: false,
        },
    );
    b.handle(
        Millis(100),
        Input::PeerStatus {
            node: NodeId(3),
            up: false,
        },
    );
    let (_, targets) = b.write_targets(b"user123");
    // Clockwise past E come A (n1) and B (n2): they stand in for C and E.
    assert_eq!(
        targets,
        vec![
            (NodeId(1), Some(NodeId(3))),
            (NodeId(4), None),
            (NodeId(2), Some(NodeId(5)))
        ]
    );
}

#[test]
fn versions_from_one_coordinator_strictly_increase_even_if_its_clock_stands_still() {
    let mut b = node(2);
    let first = b.next_version(Millis(100));
    let second = b.next_version(Millis(100));
    let third = b.next_version(Millis(99));
    assert!(
        first < second && second < third,
        "{first:?} {second:?} {third:?}"
    );
    assert_eq!(first, v(100_000, 2));
}

#[test]
fn bad_requests_are_refused_without_sending_anything() {
    let mut b = node(2);
    let out = b.handle(
        Millis(100),
        Input::Client {
            client: 1,
            op: ClientOp::Put {
                key: Vec::new(),
                value: b"x".to_vec(),
                consistency: None,
            },
        },
    );
    assert!(
        matches!(
            &out[..],
            [Output::Reply {
                client: 1,
                result: Err(ClientError::BadRequest(_))
            }]
        ),
        "{out:?}"
    );
    let out = b.handle(
        Millis(100),
        Input::Client {
            client: 2,
            op: ClientOp::Put {
                key: b"k".to_vec(),
                value: vec![0; (1 << 20) + 1],
                consistency: None,
            },
        },
    );
    assert!(
        matches!(
            &out[..],
            [Output::Reply {
                client: 2,
                result: Err(ClientError::TooLarge { .. })
            }]
        ),
        "{out:?}"
    );
}

#[test]
fn a_quorum_that_cannot_be_met_fails_at_once() {
    let mut b = node(2);
    for down in [3, 4, 5, 1] {
        b.handle(
            Millis(100),
            Input::PeerStatus {
                node: NodeId(down),
                up: false,
            },
        );
    }
    let out = b.handle(
        Millis(100),
        Input::Client {
            client: 7,
            op: ClientOp::Put {
                key: b"user123".to_vec(),
                value: b"A".to_vec(),
                consistency: None,
            },
        },
    );
    assert_eq!(
        out,
        vec![Output::Reply {
            client: 7,
            result: Err(ClientError::QuorumUnavailable { needed: 2, got: 1 })
        }]
    );
}

/// Drives one PUT by hand: the coordinator sends three writes, and replies after the second ack.
#[test]
fn a_put_is_acknowledged_after_w_acks() {
    let mut b = node(2);
    let out = b.handle(
        Millis(100),
        Input::Client {
            client: 9,
            op: ClientOp::Put {
                key: b"user123".to_vec(),
                value: b"Alice".to_vec(),
                consistency: None,
            },
        },
    );
    let sends: Vec<(NodeId, ReqId)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::Replicate { req, .. },
            } => Some((*to, *req)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sends.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
        vec![NodeId(3), NodeId(4), NodeId(5)]
    );
    let req = sends[0].1;
    let ack = |from: u32| Input::Message {
        from: NodeId(from),
        msg: Message::ReplicateAck {
            req,
            result: Ok(()),
        },
    };
    assert!(
        b.handle(Millis(104), ack(3)).is_empty(),
        "one ack is not a quorum"
    );
    let out = b.handle(Millis(105), ack(4));
    assert_eq!(
        out,
        vec![Output::Reply {
            client: 9,
            result: Ok(ClientOk::Written {
                version: v(100_000, 2),
                acks: 2,
                hinted: 0
            })
        }]
    );
    // A late third ack and a timeout change nothing.
    assert!(b.handle(Millis(106), ack(5)).is_empty());
    assert!(
        b.handle(Millis(2000), Input::Timer(Timer::RequestTimeout(req.seq)))
            .is_empty()
    );
}

#[test]
fn consistency_levels_parse_from_words_and_numbers() {
    assert_eq!("QUORUM".parse::<Consistency>(), Ok(Consistency::Quorum));
    assert_eq!("one".parse::<Consistency>(), Ok(Consistency::One));
    assert_eq!("all".parse::<Consistency>(), Ok(Consistency::All));
    assert_eq!("2".parse::<Consistency>(), Ok(Consistency::Count(2)));
    assert!("most".parse::<Consistency>().is_err());
}

/// Feeds every storage operation in `out` back to `node` with `result`; returns what it said.
fn complete_storage(node: &mut Node, out: Vec<Output>, result: &StorageResult) -> Vec<Output> {
    let mut said = Vec::new();
    for o in out {
        match o {
            Output::Storage { op, storage } => {
                let result = match (&storage, result) {
                    (StorageOp::CountHints, _) => StorageResult::HintKeys(BTreeSet::new()),
                    (StorageOp::Read { .. }, _) => StorageResult::Read(None),
                    (StorageOp::ScanRange { .. }, _) => StorageResult::Range {
                        entries: Vec::new(),
                        next: None,
                    },
                    _ => result.clone(),
                };
                let more = node.handle(Millis(100), Input::Storage { op, result });
                said.extend(complete_storage(node, more, &StorageResult::Written));
            }
            other => said.push(other),
        }
    }
    said
}

fn replicate(key: &[u8], ts: u64) -> Input {
    Input::Message {
        from: NodeId(2),
        msg: Message::Replicate {
            req: ReqId {
                coordinator: NodeId(2),
                seq: 7,
            },
            key: key.to_vec(),
            cell: Cell::put(v(ts, 2), b"Alice".to_vec()),
            hint_for: None,
            purpose: crate::wire::WritePurpose::Client,
        },
    }
}

#[test]
fn a_leaving_replica_acks_a_write_only_once_a_hint_for_its_receiver_is_durable() {
    // C (n3) leaves; user123's replicas become D, E, A, so A (n1) receives C's copy.
    let (mut c, out) = Node::new(config(3), notes_ring(), Millis(100)).unwrap();
    complete_storage(&mut c, out, &StorageResult::Written);
    let out = c.handle(Millis(100), Input::Leave);
    let offers: Vec<NodeId> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::StreamOffer { .. },
            } => Some(*to),
            _ => None,
        })
        .collect();
    assert!(offers.contains(&NodeId(1)), "offers go to {offers:?}");
    assert_eq!(c.lifecycle(), &Lifecycle::Leaving);

    // A write for user123 arrives: C reads its copy, then writes the data and a hint for A.
    let out = c.handle(Millis(100), replicate(b"user123", 200));
    let [Output::Storage { op: read, .. }] = out.as_slice() else {
        panic!("expected one read, got {out:?}");
    };
    let out = c.handle(
        Millis(100),
        Input::Storage {
            op: *read,
            result: StorageResult::Read(None),
        },
    );
    let writes: Vec<(u64, StoreId)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Storage {
                op,
                storage: StorageOp::Write { store, .. },
            } => Some((*op, *store)),
            _ => None,
        })
        .collect();
    assert_eq!(writes.len(), 2, "{out:?}");
    assert!(writes.iter().any(|(_, s)| *s == StoreId::Hints));
    // The data write alone does not acknowledge it.
    let data = writes.iter().find(|(_, s)| *s == StoreId::Data).unwrap().0;
    let out = c.handle(
        Millis(100),
        Input::Storage {
            op: data,
            result: StorageResult::Written,
        },
    );
    assert!(
        !out.iter().any(|o| matches!(
            o,
            Output::Send {
                msg: Message::ReplicateAck { .. },
                ..
            }
        )),
        "acked before the hint was durable: {out:?}"
    );
    let hint = writes.iter().find(|(_, s)| *s == StoreId::Hints).unwrap().0;
    let out = c.handle(
        Millis(100),
        Input::Storage {
            op: hint,
            result: StorageResult::Written,
        },
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            to: NodeId(2),
            msg: Message::ReplicateAck { result: Ok(()), .. }
        }
    )));
    assert_eq!(c.hints_held().get(&NodeId(1)), Some(&1));
    // Offers unconfirmed and a hint held: C has not left.
    assert_eq!(c.lifecycle(), &Lifecycle::Leaving);
}

#[test]
fn a_node_that_left_refuses_writes() {
    // n3 with nothing to hand over in a one-node ring leaves at once.
    let ring = Ring::new([(NodeId(3), vec![Token(7)])]);
    let (mut c, out) = Node::new(config(3), ring, Millis(100)).unwrap();
    complete_storage(&mut c, out, &StorageResult::Written);
    c.handle(Millis(100), Input::Leave);
    assert_eq!(c.lifecycle(), &Lifecycle::Left);
    let out = c.handle(Millis(100), replicate(b"user123", 200));
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Send {
                msg: Message::ReplicateAck {
                    result: Err(crate::wire::ReplicaError::Left),
                    ..
                },
                ..
            }
        )),
        "{out:?}"
    );
    assert!(!out.iter().any(|o| matches!(o, Output::Storage { .. })));
}

/// Serves one `StreamRequest` for `range` from `node`, its scan answering `entries` (and the
/// end of the range); returns what the node sent.
fn serve_stream(node: &mut Node, range: Range, entries: Vec<(Vec<u8>, Cell)>) -> Vec<Message> {
    let out = node.handle(
        Millis(100),
        Input::Message {
            from: NodeId(4),
            msg: Message::StreamRequest {
                session: 1,
                range,
                after: None,
            },
        },
    );
    let mut sent = Vec::new();
    for o in out {
        if let Output::Storage { op, storage } = o {
            assert!(
                matches!(storage, StorageOp::ScanRange { .. }),
                "{storage:?}"
            );
            let result = StorageResult::Range {
                entries: entries.clone(),
                next: None,
            };
            for o in node.handle(Millis(100), Input::Storage { op, result }) {
                if let Output::Send { msg, .. } = o {
                    sent.push(msg);
                }
            }
        }
    }
    sent
}

#[test]
fn stream_pages_are_bounded_by_bytes_so_large_values_fit_in_a_frame() {
    // 24 values of 900 KiB in one range (about 22 MB): as one page it is over the frame
    // limit, and a join waits for it for ever.
    let (mut a, out) = Node::new(config(1), notes_ring(), Millis(100)).unwrap();
    complete_storage(&mut a, out, &StorageResult::Written);
    let entries: Vec<(Vec<u8>, Cell)> = (0..24)
        .map(|i| {
            let key = format!("big{i:02}").into_bytes();
            (key, Cell::put(v(100 + i, 2), vec![7; 900 << 10]))
        })
        .collect();
    let range = Range::new(Token(0), Token(u64::MAX));
    let sent = serve_stream(&mut a, range, entries.clone());
    let [
        Message::StreamBatch {
            entries: page,
            next,
            ..
        },
    ] = sent.as_slice()
    else {
        panic!("expected one page, got {} messages", sent.len());
    };
    assert!(
        crate::wire::Envelope::encode(&sent[0]).is_ok(),
        "a page of {} entries does not fit in a frame",
        page.len()
    );
    assert!(!page.is_empty() && page.len() < entries.len());
    let bytes: usize = page.iter().map(|(k, c)| k.len() + c.footprint()).sum();
    assert!(
        bytes <= STREAM_PAGE_BYTES_TARGET,
        "{bytes} bytes in one page"
    );
    // The cursor resumes after the last entry sent.
    assert_eq!(next.as_ref(), page.last().map(|(k, _)| k));

    // An entry larger than the target travels alone.
    let huge = vec![(b"huge".to_vec(), Cell::put(v(1, 2), vec![1; 3 << 20]))];
    let sent = serve_stream(&mut a, range, [huge.clone(), entries].concat());
    let [Message::StreamBatch { entries: page, .. }] = sent.as_slice() else {
        panic!("{} messages", sent.len());
    };
    assert_eq!(page, &huge);
}

#[test]
fn a_range_that_cannot_be_streamed_ends_in_an_error_not_a_retry_loop() {
    // The source holds an entry no frame can carry: it refuses the page, saying why.
    let (mut a, out) = Node::new(config(1), notes_ring(), Millis(100)).unwrap();
    complete_storage(&mut a, out, &StorageResult::Written);
    let too_big = crate::wire::MESSAGE_BYTES_MAX + 1;
    let entries = vec![(b"k".to_vec(), Cell::put(v(1, 2), vec![0; too_big]))];
    let range = Range::new(Token(0), Token(u64::MAX));
    let sent = serve_stream(&mut a, range, entries);
    let [Message::StreamRefused { reason, .. }] = sent.as_slice() else {
        let batches = sent
            .iter()
            .filter(|m| matches!(m, Message::StreamBatch { .. }))
            .count();
        panic!(
            "expected a refusal, got {batches} pages and {} messages",
            sent.len()
        );
    };
    assert!(reason.contains("frame"), "{reason}");

    // The joiner, refused by every source, stops asking and says so: it does not finish
    // joining without the range.
    let config = NodeConfig {
        joining: true,
        tokens: vec![Token(key_token(b"user123").0.wrapping_add(7))],
        ..config(6)
    };
    let (mut j, out) = Node::new(config, notes_ring(), Millis(100)).unwrap();
    let out = complete_storage(&mut j, out, &StorageResult::Written);
    let j_out = out
        .into_iter()
        .chain(j.handle(Millis(100), Input::Timer(Timer::JoinStart)));
    let requests: Vec<(NodeId, u64, Range)> = j_out
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::StreamRequest { session, range, .. },
            } => Some((to, session, range)),
            _ => None,
        })
        .collect();
    assert!(!requests.is_empty());
    let mut asked = Vec::new();
    let mut failed = Vec::new();
    let mut pending: Vec<(NodeId, u64, Range)> = requests;
    while let Some((to, session, range)) = pending.pop() {
        asked.push(to);
        assert!(asked.len() < 20, "asked again and again: {asked:?}");
        let out = j.handle(
            Millis(200),
            Input::Message {
                from: to,
                msg: Message::StreamRefused {
                    session,
                    range,
                    reason: "over the frame limit".into(),
                },
            },
        );
        for o in out {
            match o {
                Output::Send {
                    to,
                    msg: Message::StreamRequest { session, range, .. },
                } => pending.push((to, session, range)),
                Output::Event(NodeEvent::StreamFailed { range, .. }) => failed.push(range),
                _ => {}
            }
        }
    }
    assert!(!failed.is_empty());
    assert_eq!(j.lifecycle(), &Lifecycle::Joining);
    // A late page timeout asks nobody again.
    for attempt in 1..5 {
        for session in 0..20 {
            let out = j.handle(
                Millis(5_000),
                Input::Timer(Timer::StreamTimeout { session, attempt }),
            );
            assert!(out.is_empty(), "{out:?}");
        }
    }
    // Nor does an offer of the range (a leaving node repeats its offers).
    let offer = Message::StreamOffer {
        session: 99,
        range: failed[0],
    };
    let out = j.handle(
        Millis(6_000),
        Input::Message {
            from: NodeId(1),
            msg: offer,
        },
    );
    assert!(
        !out.iter().any(|o| matches!(
            o,
            Output::Send {
                msg: Message::StreamRequest { .. },
                ..
            }
        )),
        "{out:?}"
    );
}

/// Two replicas whose disks are full make a write fail with their cause, not a bare count.
#[test]
fn a_write_refused_by_full_disks_names_the_cause() {
    let mut b = node(2);
    let out = b.handle(
        Millis(100),
        Input::Client {
            client: 9,
            op: ClientOp::Put {
                key: b"user123".to_vec(),
                value: b"Alice".to_vec(),
                consistency: None,
            },
        },
    );
    let req = out
        .iter()
        .find_map(|o| match o {
            Output::Send {
                msg: Message::Replicate { req, .. },
                ..
            } => Some(*req),
            _ => None,
        })
        .unwrap();
    let full = crate::storage::StorageFailure::DiskFull("no space left on the device".into());
    let refuse = |from: u32| Input::Message {
        from: NodeId(from),
        msg: Message::ReplicateAck {
            req,
            result: Err(crate::wire::ReplicaError::Storage(full.clone())),
        },
    };
    assert!(b.handle(Millis(104), refuse(3)).is_empty());
    let out = b.handle(Millis(105), refuse(4));
    assert_eq!(
        out,
        vec![Output::Reply {
            client: 9,
            result: Err(ClientError::StorageUnavailable {
                needed: 2,
                got: 0,
                failures: vec![(NodeId(3), full.clone()), (NodeId(4), full.clone())],
            })
        }]
    );
    assert!(full.retryable() && !full.state_may_have_changed());
}
