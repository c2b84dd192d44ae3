//! Merkle-tree anti-entropy: background repair between two replicas of one token range.
//!
//! Read repair only fixes keys that are read; a cold key that missed a write stays stale until
//! something compares the replicas (design notes, section 7.2; Dynamo §4.7; Cassandra's
//! repair). Each replica keeps a [`MerkleTree`] per range it stores, updated on every write.
//! Two replicas then compare their trees top-down and stream only the keys that differ:
//!
//! ```text
//! initiator                                   responder
//!   Request { level 0, [0] }        ─────►
//!                                   ◄─────    Hashes { level 0, [root] }
//!   equal roots: Done               ─────►    (2 small messages: nothing differs)
//!   else Request { level 1, children of differing nodes } …  down to the leaves
//!   per differing leaf: Digests { (key, version) … }  ─────►
//!                                   ◄─────    Repair { entries newer here, keys wanted }
//!   Entries { the wanted cells }    ─────►
//!   Done                            ─────►
//! ```
//!
//! Both sides are pure state machines ([`Session`]): messages and storage reads go in, messages,
//! storage reads and LWW writes come out ([`AeOutput`]). [`sync_pair`] drives two in-memory
//! [`Replica`]s to completion, for tests and for the byte-count benchmark
//! (`cargo run -p ringstore-core --release --example antientropy_bytes`). The guarantees, and
//! what they need from tombstone purging, are in `docs/ALGORITHM.md`.

mod bench;
mod merkle;
mod msg;
mod replica;
mod session;
#[cfg(test)]
mod tests;

pub use bench::{BenchReport, bench_bytes, bench_entry, bench_replicas, full_copy_bytes};
pub use merkle::{
    DEPTH_DEFAULT, DEPTH_MAX, MerkleTree, NodeHash, TreeStats, depth_for_keys, entry_hash,
};
pub use msg::{AeMsg, Digest};
pub use replica::{Replica, SyncReport, sync_pair};
pub use session::{
    AeOutput, INDEXES_PER_REQUEST_MAX, LEAF_ENTRIES_MAX, LEAVES_IN_FLIGHT_MAX, MSG_BYTES_TARGET,
    Role, Session, SessionStats,
};

/// Why a tree operation or a repair session failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum AeError {
    /// A tree deeper than the bound was asked for; nothing was created.
    #[error("a Merkle tree of depth {depth} exceeds the maximum {max}")]
    DepthTooLarge {
        /// The depth asked for.
        depth: u8,
        /// [`DEPTH_MAX`].
        max: u8,
    },
    /// A key's token is outside the tree's range; the tree is unchanged.
    #[error("the key's token is outside the tree's range")]
    TokenOutOfRange,
    /// An entry was removed from a leaf holding none; the tree is unchanged.
    #[error("removed an entry from empty leaf {leaf}")]
    EmptyLeaf {
        /// The leaf.
        leaf: u32,
    },
    /// The peer broke the protocol (message says how); the session has ended and applied
    /// nothing further. Writes it applied before stay: each was an LWW write of a real cell.
    #[error("anti-entropy protocol error: {0}")]
    Protocol(String),
    /// The peer aborted the session (its reason); this side has ended too.
    #[error("the peer aborted: {0}")]
    PeerAborted(String),
    /// A leaf holds more entries than [`LEAF_ENTRIES_MAX`]: the tree is too shallow for the
    /// range. The session has ended; rebuild the tree deeper.
    #[error("leaf {leaf} holds {entries} entries, over the limit {max}")]
    LeafTooLarge {
        /// The leaf.
        leaf: u32,
        /// Entries found.
        entries: usize,
        /// [`LEAF_ENTRIES_MAX`].
        max: usize,
    },
}
