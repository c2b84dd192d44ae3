//! The UI socket's codec: round trips of every frame, and bad bytes of every kind.

use super::*;
use crate::membership::GossipEvent;
use crate::node::Consistency;
use crate::storage::LevelStats;

fn state() -> NodeState {
    let member = |id: u32, verdict, phi| Member {
        id: NodeId(id),
        address: format!("127.0.0.1:700{id}"),
        verdict,
        status: MemberStatus::Alive,
        phi,
        in_ring: true,
        tokens: 16,
        primary_share: 0.33,
        replica_share: 1.0,
        partitioned: id == 3,
    };
    NodeState {
        now_ms: 1_700_000_000_123,
        lifecycle: Lifecycle::Normal,
        skew_ms: -250,
        n: 3,
        w: 2,
        r: 2,
        members: vec![
            member(1, Verdict::Alive, None),
            member(2, Verdict::Alive, Some(0.4)),
            member(3, Verdict::Dead, Some(12.5)),
        ],
        hints_held: vec![(NodeId(3), 7)],
        in_flight: 2,
        anti_entropy: AntiEntropyStats {
            sessions_done: 4,
            sessions_failed: 1,
            bytes: 9_000,
            keys_repaired: 2,
        },
        data: LsmStats {
            wal_bytes: 4096,
            last_lsn: 12,
            durable_lsn: 12,
            levels: vec![LevelStats {
                tables: 2,
                bytes: 8192,
                entries: 40,
            }],
            write_amplification: 2.5,
            ..LsmStats::default()
        },
        hints: LsmStats::default(),
    }
}

fn samples() -> Vec<ToPage> {
    let ring = vec![(7, NodeId(1)), (1 << 40, NodeId(2)), (u64::MAX, NodeId(3))];
    vec![
        ToPage::Snapshot(Box::new(Snapshot {
            hello: Hello {
                node: NodeId(1),
                address: "127.0.0.1:7001".into(),
                generation: 1_700_000_000_000,
                fault_injection: true,
                value_bytes_max: 1 << 20,
                update_ms: UPDATE_MS,
            },
            state: state(),
            ring: ring.clone(),
        })),
        ToPage::Update(Box::new(Update {
            state: state(),
            ring: Some(ring),
            messages: vec![MessageSeen {
                at_ms: 1_700_000_000_100,
                direction: Direction::Sent,
                peer: NodeId(2),
                kind: MessageKind::Write,
                label: "Put user123=Alice ts=100".into(),
                dropped: Some(DropCause::Partition),
            }],
            aggregated: vec![Aggregate {
                peer: NodeId(2),
                kind: MessageKind::Gossip,
                sent: 40,
                received: 38,
                dropped: 0,
            }],
            events: vec![
                (
                    1_700_000_000_101,
                    NodeEvent::Membership(GossipEvent::PeerSuspect {
                        node: NodeId(3),
                        phi: 8.25,
                    }),
                ),
                (1_700_000_000_102, NodeEvent::RingChanged { nodes: 3 }),
            ],
            lost: Lost {
                events: 3,
                messages: 1,
                updates: 0,
            },
        })),
        ToPage::Reply {
            id: 9,
            result: Ok(Answer::Found {
                ts_micros: 100_000,
                writer: NodeId(2),
                value: b"Alice".to_vec(),
                value_bytes: 5,
            }),
        },
        ToPage::Reply {
            id: 10,
            result: Err(CommandError::new(
                ErrorCode::QuorumUnavailable { needed: 2, got: 1 },
                "needed 2 replicas to answer in time, got 1",
            )),
        },
        ToPage::Reply {
            id: 11,
            result: Ok(Answer::Faults {
                partitioned: vec![NodeId(3)],
                clock_skew_ms: 0,
            }),
        },
    ]
}

fn commands() -> Vec<ToNode> {
    let c = |id, command| ToNode::Command { id, command };
    vec![
        c(
            1,
            Command::Client(ClientOp::Put {
                key: b"user123".to_vec(),
                value: b"Alice".to_vec(),
                consistency: Some(Consistency::Quorum),
            }),
        ),
        c(
            2,
            Command::Client(ClientOp::Get {
                key: b"user123".to_vec(),
                consistency: Some(Consistency::Count(1)),
            }),
        ),
        c(
            3,
            Command::Client(ClientOp::Delete {
                key: vec![0, 255],
                consistency: None,
            }),
        ),
        c(
            4,
            Command::Partition {
                peers: vec![NodeId(2), NodeId(3)],
            },
        ),
        c(5, Command::Heal),
        c(6, Command::ClockSkew { ms: -500 }),
    ]
}

#[test]
fn every_frame_round_trips() {
    for msg in samples() {
        let bytes = msg.encode().unwrap();
        assert_eq!(ToPage::decode(&bytes).unwrap(), msg);
    }
    for msg in commands() {
        let bytes = msg.encode().unwrap();
        assert_eq!(ToNode::decode(&bytes).unwrap(), msg);
    }
}

#[test]
fn the_header_is_as_documented() {
    let bytes = commands()[4].encode().unwrap();
    assert_eq!(&bytes[0..2], b"RU");
    assert_eq!(bytes[2], UI_VERSION);
    assert_eq!(bytes[3], 2, "to the node");
    let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    assert_eq!(len, bytes.len() - FRAME_HEADER_BYTES);
    let crc = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    assert_eq!(crc, crc32fast::hash(&bytes[12..]));
    assert_eq!(samples()[0].encode().unwrap()[3], 1, "to the page");
}

#[test]
fn every_damaged_byte_is_a_typed_error_never_a_panic() {
    for msg in samples().iter().take(3) {
        let bytes = msg.encode().unwrap();
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= mask;
                assert!(
                    ToPage::decode(&bad).is_err(),
                    "flip {mask:#x} at {i} of {} went unnoticed",
                    bytes.len()
                );
            }
        }
        for cut in 0..bytes.len() {
            assert!(ToPage::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(ToPage::decode(&long), Err(UiError(FrameError::Trailing(1))));
    }
}

#[test]
fn a_frame_for_the_other_end_is_refused() {
    let to_node = commands()[0].encode().unwrap();
    assert_eq!(
        ToPage::decode(&to_node),
        Err(UiError(FrameError::WrongTag {
            got: 2,
            expected: 1
        }))
    );
    let to_page = samples()[2].encode().unwrap();
    assert!(matches!(
        ToNode::decode(&to_page),
        Err(UiError(FrameError::WrongTag { got: 1, .. }))
    ));
}

#[test]
fn bounds_are_checked_before_the_payload_is_read() {
    let mut bytes = commands()[5].encode().unwrap();
    bytes[4..8].copy_from_slice(&(TO_NODE_BYTES_MAX as u32 + 1).to_le_bytes());
    assert_eq!(
        ToNode::decode(&bytes),
        Err(UiError(FrameError::TooLarge {
            len: TO_NODE_BYTES_MAX + 1,
            max: TO_NODE_BYTES_MAX
        }))
    );
    // A command too big to send is refused by the encoder.
    let huge = ToNode::Command {
        id: 1,
        command: Command::Client(ClientOp::Put {
            key: b"k".to_vec(),
            value: vec![7; TO_NODE_BYTES_MAX],
            consistency: None,
        }),
    };
    assert!(matches!(
        huge.encode(),
        Err(UiError(FrameError::TooLarge { .. }))
    ));
}

#[test]
fn garbage_with_a_valid_checksum_is_a_payload_error() {
    for payload in [&[0xffu8; 9][..], &[9u8][..], &[][..]] {
        let mut bytes = vec![b'R', b'U', UI_VERSION, 2];
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        bytes.extend_from_slice(payload);
        assert!(
            matches!(ToNode::decode(&bytes), Err(UiError(FrameError::Payload(_)))),
            "{payload:?}"
        );
    }
    assert_eq!(
        ToNode::decode(b"GET / HTTP/1.1\r\n"),
        Err(UiError(FrameError::BadMagic(*b"GE")))
    );
    let mut other = commands()[4].encode().unwrap();
    other[2] = 9;
    assert_eq!(
        ToNode::decode(&other),
        Err(UiError(FrameError::UnsupportedVersion {
            got: 9,
            speaks: UI_VERSION
        }))
    );
}

#[test]
fn error_codes_are_named_as_the_http_api_names_them() {
    assert_eq!(ErrorCode::BadRequest.name(), "bad_request");
    assert_eq!(
        ErrorCode::QuorumUnavailable { needed: 2, got: 1 }.name(),
        "quorum_unavailable"
    );
    assert_eq!(ErrorCode::FaultInjectionOff.name(), "fault_injection_off");
    let e = CommandError::new(ErrorCode::TooLarge, "value of 9 bytes is over 8");
    assert_eq!(e.to_string(), "too_large: value of 9 bytes is over 8");
}
