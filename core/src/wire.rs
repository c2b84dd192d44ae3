//! The wire protocol: one message type for everything nodes say to each other, shared by the
//! native WebSocket transport and the simulator's network.
//!
//! Every variant of [`Message`] is documented with who sends it, to whom, and what the receiver
//! does. A message travels in an [`Envelope`]:
//!
//! ```text
//! offset  size  field
//! 0       2     magic     "RS"
//! 2       1     version   WIRE_VERSION; a receiver refuses other versions
//! 3       1     reserved  zero
//! 4       4     len       u32 LE: payload bytes, at most MESSAGE_BYTES_MAX
//! 8       4     crc32     u32 LE over the payload
//! 12      len   payload   the Message, encoded with postcard (serde, varint integers)
//! ```
//!
//! A transport packs one or more envelopes back to back into one transport message of at most
//! [`FRAME_BYTES_MAX`] bytes ([`Envelope::encode_into`] to pack, [`unpack`] to split): the
//! native node's WebSocket links do, and the simulator's network carries every message between
//! two nodes through the same encoder and [`unpack`], so a message over the bound is dropped
//! there as it is on a real link.
//!
//! The header is the shared [`crate::framing`] codec's (format [`ENVELOPE_FORMAT`]): decoding
//! checks the magic, version, bound and checksum before it looks at the payload, and every
//! failure is a [`WireError`], never a panic. The size bound covers the largest legal
//! message: a key and a value at their limits plus framing.

use crate::NodeId;
use crate::framing::{FrameError, FrameFormat, HEADER_BYTES, Tag};
use crate::ring::Range;
use crate::storage::{Cell, StorageFailure, VALUE_BYTES_LIMIT};
use serde::{Deserialize, Serialize};

/// The version of this protocol. Version 2: `ReplicaError::Left`, and `AeMsg::Done` carries
/// the number of entries sent. Version 3: [`Message::StreamRefused`], and
/// `ReplicaError::Storage` carries a typed [`StorageFailure`] instead of text.
pub const WIRE_VERSION: u8 = 3;
/// Bytes of envelope before the payload.
pub const ENVELOPE_BYTES: usize = HEADER_BYTES;
/// The largest payload accepted.
pub const MESSAGE_BYTES_MAX: usize = VALUE_BYTES_LIMIT + (64 << 10);

/// The largest transport message a peer may send: one envelope at the size bound.
pub const FRAME_BYTES_MAX: usize = ENVELOPE_BYTES + MESSAGE_BYTES_MAX;
/// Envelopes decoded from one transport message at most (a peer packing more is refused).
pub const ENVELOPES_PER_FRAME_MAX: usize = 16_384;

/// Identifies a client request at its coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReqId {
    /// The coordinating node.
    pub coordinator: NodeId,
    /// A number the coordinator never reuses while it runs.
    pub seq: u64,
}

/// Why a write is being replicated: shown in traces and the UI, and counted in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WritePurpose {
    /// A client's PUT or DELETE.
    Client,
    /// A coordinator fixing a stale replica it saw during a read.
    ReadRepair,
    /// A node handing a hinted write back to the owner it stood in for.
    HintReplay,
}

/// A replica's reason for refusing a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaError {
    /// The storage engine failed or refused the operation; the failure says whether anything
    /// changed and whether a retry can succeed.
    Storage(StorageFailure),
    /// This node holds as many hints as it may; the write was not stored.
    HintsFull,
    /// This node has left the ring and keeps nothing; the write was not stored.
    Left,
}

/// Everything nodes say to each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Coordinator → replica: store `cell` under `key` (LWW: an older version does not win).
    /// With `hint_for`, the receiver stands in for that unreachable owner: it keeps the write
    /// as a hint and hands it over when the owner is back. The receiver answers
    /// [`Message::ReplicateAck`] once the write is as durable as its sync policy requires.
    Replicate {
        /// The request this belongs to (for acks).
        req: ReqId,
        /// The key.
        key: Vec<u8>,
        /// The versioned value or tombstone.
        cell: Cell,
        /// The owner this write is a hint for, if the receiver is a stand-in.
        hint_for: Option<NodeId>,
        /// Why the write is sent.
        purpose: WritePurpose,
    },
    /// Replica → coordinator: the outcome of a [`Message::Replicate`].
    ReplicateAck {
        /// The request acknowledged.
        req: ReqId,
        /// Stored, or why not.
        result: Result<(), ReplicaError>,
    },
    /// Coordinator → replica: send your newest cell for `key`.
    Read {
        /// The request this belongs to.
        req: ReqId,
        /// The key.
        key: Vec<u8>,
    },
    /// Replica → coordinator: the replica's newest cell (a tombstone if deleted; `None` if it
    /// has never seen the key).
    ReadReply {
        /// The request answered.
        req: ReqId,
        /// The cell, or why it could not be read.
        result: Result<Option<Cell>, ReplicaError>,
    },
    /// New owner → current replica: send me the keys of `range` (by token) that sort after
    /// `after`, with their cells, tombstones included. Answered by [`Message::StreamBatch`].
    /// Used when a node joins (it pulls the ranges it gains) and when a node leaves (the new
    /// owners pull from it, after a [`Message::StreamOffer`]).
    StreamRequest {
        /// The streaming session.
        session: u64,
        /// The token range.
        range: Range,
        /// Resume after this key (`None`: from the start).
        after: Option<Vec<u8>>,
    },
    /// Replica → new owner: one bounded page of a range. `next` is the cursor to request the
    /// following page with, or `None` when the range is complete.
    StreamBatch {
        /// The streaming session.
        session: u64,
        /// The token range.
        range: Range,
        /// Keys and cells.
        entries: Vec<(Vec<u8>, Cell)>,
        /// Where the next page starts, if any.
        next: Option<Vec<u8>>,
    },
    /// Leaving node → new owner: `range` is yours now; pull it from me with
    /// [`Message::StreamRequest`] and tell me with [`Message::StreamDone`].
    StreamOffer {
        /// The streaming session.
        session: u64,
        /// The token range.
        range: Range,
    },
    /// Node ↔ node: one message of a gossip round (digests, then the state each side lacks;
    /// see `membership::GossipMsg`).
    Gossip(crate::membership::GossipMsg),
    /// Replica ↔ replica: one message of a Merkle-tree anti-entropy session over a token range
    /// (see `antientropy::AeMsg`). `initiator` and `session` identify the session on both sides.
    AntiEntropy {
        /// The node that started the session.
        initiator: NodeId,
        /// The initiator's number for it.
        session: u64,
        /// The session's message.
        msg: crate::antientropy::AeMsg,
    },
    /// New owner → leaving node: the offered range has been received and stored.
    StreamDone {
        /// The streaming session.
        session: u64,
        /// Keys received.
        keys: u64,
        /// Bytes received.
        bytes: u64,
    },
    /// Replica → new owner: the page asked for with [`Message::StreamRequest`] cannot be sent
    /// (an entry no frame can carry). The receiver asks another node that holds the range,
    /// and gives the range up, saying why, when none is left.
    StreamRefused {
        /// The streaming session.
        session: u64,
        /// The token range.
        range: Range,
        /// Why.
        reason: String,
    },
}

/// The kind of a message, for colours in the page and counts in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MessageKind {
    /// A client write going to a replica.
    Write,
    /// A read request or reply.
    Read,
    /// An acknowledgement of a write.
    Ack,
    /// Membership gossip.
    Gossip,
    /// A hinted write, stored or handed back.
    Hint,
    /// Read repair or anti-entropy.
    Repair,
    /// Range streaming on joins and leaves.
    Stream,
}

impl MessageKind {
    /// Every kind, in the page's legend order.
    pub const ALL: [MessageKind; 7] = [
        MessageKind::Write,
        MessageKind::Read,
        MessageKind::Ack,
        MessageKind::Gossip,
        MessageKind::Hint,
        MessageKind::Repair,
        MessageKind::Stream,
    ];

    /// Lower-case name, as the page's legend shows it.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Write => "write",
            MessageKind::Read => "read",
            MessageKind::Ack => "ack",
            MessageKind::Gossip => "gossip",
            MessageKind::Hint => "hint",
            MessageKind::Repair => "repair",
            MessageKind::Stream => "stream",
        }
    }
}

impl Message {
    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Replicate {
                hint_for: Some(_), ..
            } => MessageKind::Hint,
            Message::Replicate {
                purpose: WritePurpose::HintReplay,
                ..
            } => MessageKind::Hint,
            Message::Replicate {
                purpose: WritePurpose::ReadRepair,
                ..
            } => MessageKind::Repair,
            Message::Replicate { .. } => MessageKind::Write,
            Message::ReplicateAck { .. } => MessageKind::Ack,
            Message::Read { .. } | Message::ReadReply { .. } => MessageKind::Read,
            Message::StreamRequest { .. }
            | Message::StreamBatch { .. }
            | Message::StreamOffer { .. }
            | Message::StreamDone { .. }
            | Message::StreamRefused { .. } => MessageKind::Stream,
            Message::AntiEntropy { .. } => MessageKind::Repair,
            Message::Gossip(_) => MessageKind::Gossip,
        }
    }
}

/// Why bytes could not be decoded as a peer envelope: what the shared frame check found
/// ([`FrameError`]). Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad wire envelope: {0}")]
pub struct WireError(#[from] pub FrameError);

/// The envelope's frame format: see the module docs for the layout.
pub const ENVELOPE_FORMAT: FrameFormat = FrameFormat {
    magic: *b"RS",
    version: WIRE_VERSION,
    tag: Tag::Reserved,
    payload_bytes_max: MESSAGE_BYTES_MAX,
};

/// Encoding and decoding of [`Message`] frames. See the module docs for the layout.
pub struct Envelope;

impl Envelope {
    /// Encodes `msg` into a frame. Fails only if the message is over the bound.
    pub fn encode(msg: &Message) -> Result<Vec<u8>, WireError> {
        Ok(ENVELOPE_FORMAT.encode(msg)?)
    }

    /// Appends `msg`'s frame to `out`, encoding the payload in place (no intermediate buffer),
    /// so a transport can pack several frames into one write. On an error `out` is left as it
    /// was.
    pub fn encode_into(msg: &Message, out: &mut Vec<u8>) -> Result<(), WireError> {
        Ok(ENVELOPE_FORMAT.encode_into(msg, out)?)
    }

    /// Decodes one frame that must span all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
        Ok(ENVELOPE_FORMAT.decode(bytes)?)
    }

    /// Decodes the frame at the start of `bytes`, which may be followed by more frames (a
    /// transport packs several into one write); returns the message and the bytes it took.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Message, usize), WireError> {
        Ok(ENVELOPE_FORMAT.decode_prefix(bytes)?)
    }
}

/// Splits one transport message into the envelopes packed in it, in order. An empty one, a
/// damaged envelope or more than [`ENVELOPES_PER_FRAME_MAX`] of them is an error.
pub fn unpack(bytes: &[u8]) -> Result<Vec<Message>, WireError> {
    let mut msgs = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if msgs.len() >= ENVELOPES_PER_FRAME_MAX {
            return Err(WireError(FrameError::TooLarge {
                len: bytes.len(),
                max: FRAME_BYTES_MAX,
            }));
        }
        let (msg, used) = Envelope::decode_prefix(rest)?;
        msgs.push(msg);
        rest = &rest[used..];
    }
    if msgs.is_empty() {
        return Err(WireError(FrameError::Truncated {
            got: 0,
            needed: ENVELOPE_BYTES,
        }));
    }
    Ok(msgs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Version;

    fn sample() -> Vec<Message> {
        let req = ReqId {
            coordinator: NodeId(2),
            seq: 7,
        };
        let cell = Cell::put(
            Version {
                ts_micros: 100,
                node: NodeId(2),
            },
            b"Alice".to_vec(),
        );
        vec![
            Message::Replicate {
                req,
                key: b"user123".to_vec(),
                cell: cell.clone(),
                hint_for: Some(NodeId(5)),
                purpose: WritePurpose::Client,
            },
            Message::ReplicateAck {
                req,
                result: Ok(()),
            },
            Message::ReplicateAck {
                req,
                result: Err(ReplicaError::HintsFull),
            },
            Message::Read {
                req,
                key: b"user123".to_vec(),
            },
            Message::ReadReply {
                req,
                result: Ok(Some(cell)),
            },
            Message::ReadReply {
                req,
                result: Ok(None),
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for msg in sample() {
            let bytes = Envelope::encode(&msg).unwrap();
            assert_eq!(Envelope::decode(&bytes).unwrap(), msg);
        }
    }

    #[test]
    fn the_header_is_as_documented() {
        // Written out by hand, so a change to the shared codec cannot move a byte unseen.
        let msg = &sample()[3];
        let payload = postcard::to_allocvec(msg).unwrap();
        let mut expected = b"RS\x03\x00".to_vec();
        expected.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        expected.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        expected.extend_from_slice(&payload);
        assert_eq!(Envelope::encode(msg).unwrap(), expected);
    }

    #[test]
    fn the_encoding_is_compact() {
        let put = &sample()[0];
        let bytes = Envelope::encode(put).unwrap();
        // key 7 + value 5 + versions and framing: well under 64 bytes.
        assert!(bytes.len() < 64, "{} bytes", bytes.len());
    }

    #[test]
    fn damaged_frames_are_typed_errors_never_panics() {
        let bytes = Envelope::encode(&sample()[0]).unwrap();
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= mask;
                let result = Envelope::decode(&bad);
                if i == 3 {
                    continue; // the reserved byte is not checked
                }
                assert!(result.is_err(), "flip {mask:#x} at {i} went unnoticed");
            }
        }
        for cut in 0..bytes.len() {
            assert!(Envelope::decode(&bytes[..cut]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            Envelope::decode(&long),
            Err(WireError(FrameError::Trailing(1)))
        );
    }

    #[test]
    fn oversize_announcements_are_refused_before_reading() {
        let mut bytes = Envelope::encode(&sample()[1]).unwrap();
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Envelope::decode(&bytes),
            Err(WireError(FrameError::TooLarge { .. }))
        ));
    }

    #[test]
    fn garbage_payload_with_a_valid_checksum_is_a_payload_error() {
        let payload = [0xffu8; 9];
        let mut bytes = b"RS\x03\x00".to_vec();
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        assert!(matches!(
            Envelope::decode(&bytes),
            Err(WireError(FrameError::Payload(_)))
        ));
    }

    #[test]
    fn packed_frames_decode_one_after_another() {
        let mut packed = vec![0xAA]; // what was in the buffer before stays
        for msg in sample() {
            Envelope::encode_into(&msg, &mut packed).unwrap();
        }
        assert_eq!(packed[0], 0xAA);
        let mut rest = &packed[1..];
        let mut decoded = Vec::new();
        while !rest.is_empty() {
            let (msg, used) = Envelope::decode_prefix(rest).unwrap();
            decoded.push(msg);
            rest = &rest[used..];
        }
        assert_eq!(decoded, sample());
        // Each packed frame is byte for byte the frame `encode` makes.
        let first = Envelope::encode(&sample()[0]).unwrap();
        assert_eq!(&packed[1..1 + first.len()], &first[..]);
        // A cut in the middle of the second frame is reported, not skipped.
        let cut = &packed[1..1 + first.len() + 5];
        let (_, used) = Envelope::decode_prefix(cut).unwrap();
        assert!(matches!(
            Envelope::decode_prefix(&cut[used..]),
            Err(WireError(FrameError::Truncated { .. }))
        ));
    }

    #[test]
    fn kinds_follow_purpose() {
        let kinds: Vec<_> = sample().iter().map(Message::kind).collect();
        assert_eq!(
            kinds,
            vec![
                MessageKind::Hint,
                MessageKind::Ack,
                MessageKind::Ack,
                MessageKind::Read,
                MessageKind::Read,
                MessageKind::Read
            ]
        );
    }
}
