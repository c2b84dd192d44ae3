//! The messages of a repair session ([`AeMsg`]), as the integrator wraps them in the wire
//! `Message`. Sizes are what postcard spends on them: hashes are fixed 8-byte arrays, integers
//! are varints, and every list is bounded by the session that reads it (see `Session`).

use super::merkle::NodeHash;
use crate::ring::Range;
use crate::storage::{Cell, Version};
use serde::{Deserialize, Serialize};

/// One entry as the initiator summarises it under a differing leaf: enough to decide LWW.
/// Versions are unique per write, so equal versions mean the same cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// The key.
    pub key: Vec<u8>,
    /// Its version on the initiator (value or tombstone).
    pub version: Version,
}

/// The messages of a repair session. Every variant names its range, so a node can run
/// sessions for several ranges with the same peer. Encoded with postcard inside the wire
/// envelope; [`AeMsg::encoded_len`] is what the byte counts add up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AeMsg {
    /// Initiator → responder: send your hashes of these nodes of `level`. The first request of
    /// a session is level 0, index 0 (the root); `depth` must equal the responder's tree's.
    Request {
        /// The range being repaired.
        range: Range,
        /// The initiator's tree depth.
        depth: u8,
        /// The level (0 = root).
        level: u8,
        /// Node indexes on that level, at most [`super::INDEXES_PER_REQUEST_MAX`].
        indexes: Vec<u32>,
    },
    /// Responder → initiator: the hashes asked for, in the order of the request's indexes.
    Hashes {
        /// The range being repaired.
        range: Range,
        /// The level they are on.
        level: u8,
        /// One hash per requested index.
        hashes: Vec<NodeHash>,
    },
    /// Initiator → responder: the initiator's entries under differing leaf `leaf`, as digests
    /// sorted by key; `more` says another chunk for this leaf follows.
    Digests {
        /// The range being repaired.
        range: Range,
        /// The leaf.
        leaf: u32,
        /// A chunk of the initiator's digests.
        digests: Vec<Digest>,
        /// Whether more chunks follow for this leaf.
        more: bool,
    },
    /// Responder → initiator, once it has all digests of a leaf: the responder's cells that
    /// are newer than the initiator's or missing there, and the keys the initiator should
    /// send (missing on the responder, or older there).
    Repair {
        /// The range being repaired.
        range: Range,
        /// The leaf.
        leaf: u32,
        /// Cells for the initiator to apply (LWW).
        entries: Vec<(Vec<u8>, Cell)>,
        /// Keys whose cells the initiator should send.
        want: Vec<Vec<u8>>,
        /// Whether more chunks follow for this leaf.
        more: bool,
    },
    /// Initiator → responder: cells for the responder to apply (LWW): the keys it wanted, or
    /// every entry of a leaf where the responder has none.
    Entries {
        /// The range being repaired.
        range: Range,
        /// The leaf.
        leaf: u32,
        /// The cells.
        entries: Vec<(Vec<u8>, Cell)>,
        /// Whether more chunks follow for this leaf.
        more: bool,
    },
    /// Initiator → responder: the session is complete once the responder holds the `entries`
    /// keys the initiator sent it ([`AeMsg::Entries`] can arrive after this message, which is
    /// sent right behind them).
    Done {
        /// The range repaired.
        range: Range,
        /// Keys (with their cells) the initiator sent in the session's `Entries` messages.
        entries: u64,
    },
    /// Either side → the other: the session ended with an error (the reason).
    Abort {
        /// The range.
        range: Range,
        /// Why.
        reason: String,
    },
}

impl AeMsg {
    /// The range the message is about.
    pub fn range(&self) -> Range {
        match self {
            AeMsg::Request { range, .. }
            | AeMsg::Hashes { range, .. }
            | AeMsg::Digests { range, .. }
            | AeMsg::Repair { range, .. }
            | AeMsg::Entries { range, .. }
            | AeMsg::Done { range, .. }
            | AeMsg::Abort { range, .. } => *range,
        }
    }

    /// The message's postcard-encoded size in bytes (without the wire envelope).
    pub fn encoded_len(&self) -> usize {
        postcard_len(self)
    }
}

/// The variant's name, for errors.
pub(crate) fn msg_name(msg: &AeMsg) -> &'static str {
    match msg {
        AeMsg::Request { .. } => "Request",
        AeMsg::Hashes { .. } => "Hashes",
        AeMsg::Digests { .. } => "Digests",
        AeMsg::Repair { .. } => "Repair",
        AeMsg::Entries { .. } => "Entries",
        AeMsg::Done { .. } => "Done",
        AeMsg::Abort { .. } => "Abort",
    }
}

/// The postcard-encoded size of `value`, in bytes, without encoding it.
pub(crate) fn postcard_len<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::serialize_with_flavor::<_, _, usize>(value, postcard::ser_flavors::Size::default())
        .unwrap_or(0)
}
